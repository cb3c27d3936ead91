//! Test helpers: a parsed INVITE, the runtime's recording `TestHost`, and a way to run one
//! handler on a message.

use std::net::SocketAddr;
use std::path::PathBuf;

use sip_msg::Message;
use sip_script::CoreParams;
use sip_script::abi::{Arg, Ctx, Format, RouteKind, Source};
use sip_script::runtime::Runtime;
use sip_script::testhost::TestHost;

/// The UAC the test requests come from (192.0.2.10:5091), received on the test host's
/// socket 127.0.0.1:5060.
pub fn source() -> Source {
    TestHost::source(SocketAddr::from(([192, 0, 2, 10], 5091)))
}

/// The text of the only datagram sent.
pub fn only_send(host: &TestHost) -> String {
    assert_eq!(
        host.sent.len(),
        1,
        "expected exactly one send, got {:?}",
        host.sent
    );
    host.sent
        .first()
        .map(|s| String::from_utf8_lossy(&s.bytes).into_owned())
        .unwrap_or_default()
}

pub const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5091>\r\n\
Record-Route: <sip:proxy0.example.org;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

/// The INVITE with `from` replaced by `to` (first occurrence).
pub fn invite_with(from: &str, to: &str) -> String {
    INVITE.replacen(from, to, 1)
}

pub fn parse(text: &str) -> Message {
    match Message::parse(text.as_bytes().to_vec()) {
        Ok(m) => m,
        Err(e) => panic!("test message does not parse: {e}"),
    }
}

/// A runtime with the given `debug` level and default core params otherwise.
pub fn runtime(debug: i64) -> Runtime {
    Runtime::new(&CoreParams {
        debug,
        ..CoreParams::default()
    })
}

/// Runs `f` with a fresh request-route context over `msg`.
pub fn with_ctx<R>(
    rt: &mut Runtime,
    host: &mut TestHost,
    msg: &Message,
    f: impl FnOnce(&mut Ctx<'_>) -> R,
) -> R {
    let mut ctx = Ctx::new(rt, host, msg, source(), RouteKind::Request);
    f(&mut ctx)
}

/// A constant string argument.
pub fn s(text: &str) -> Arg {
    Arg::Str(text.to_string())
}

/// A constant format argument (formats with PVs are tested through the compiler).
pub fn fmt(text: &str) -> Arg {
    Arg::Format(Format::literal(text))
}

pub fn int(i: i64) -> Arg {
    Arg::Int(i)
}

/// The RFC 4475 torture messages: `$SIPLAB_SHARED/corpus/rfc4475`, else
/// `<workspace>/../shared/corpus/rfc4475`.
pub fn rfc4475_dir() -> PathBuf {
    let shared = std::env::var_os("SIPLAB_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    shared.join("corpus/rfc4475")
}
