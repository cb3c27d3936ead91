use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use sip_script::abi::{Ctx, SerError, TmApi};
use sip_script::testhost::TestHost;

use super::*;
use crate::testutil::{INVITE, fmt, int, invite_with, only_send, parse, runtime, source, with_ctx};

fn to_line(reply: &str) -> &str {
    reply
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap_or_default()
}

use sip_script::abi::Stat;

#[test]
fn sl_send_reply_180_adds_to_tag_and_server() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(180), fmt("Ringing")])
    });
    assert_eq!(rc, 1);
    let reply = only_send(&host);
    assert!(reply.starts_with("SIP/2.0 180 Ringing\r\n"));
    let to = to_line(&reply);
    let tag = to.split(";tag=").nth(1).unwrap_or_default();
    let (prefix, suffix) = tag.split_once('.').unwrap_or_default();
    assert_eq!(prefix.len(), 32, "{to}");
    assert_eq!(suffix.len(), 8, "{to}");
    assert!(tag.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'));
    assert!(reply.contains(&format!("Server: {DEFAULT_SERVER}\r\n")));
    assert!(reply.contains("Record-Route: <sip:proxy0.example.org;lr>\r\n"));
    assert!(reply.ends_with("Content-Length: 0\r\n\r\n"));
    assert_eq!(host.sent.first().map(|s| s.dst), Some(source().addr));
    assert_eq!(
        host.counted,
        vec![Stat::SlSentReplies],
        "a 180 is no error reply"
    );
}

#[test]
fn sl_counts_error_replies_separately() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(486), fmt("Busy Here")])
    });
    assert_eq!(
        host.counted,
        vec![Stat::SlSentReplies, Stat::SlSentErrReplies]
    );
}

#[test]
fn sl_reply_below_180_has_no_tag_and_4xx_no_record_route() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(100), fmt("Trying")]);
        w_sl_send_reply(ctx, &[int(404), fmt("Not Here")]);
    });
    let texts: Vec<String> = host
        .sent
        .iter()
        .map(|s| String::from_utf8_lossy(&s.bytes).into_owned())
        .collect();
    assert_eq!(to_line(&texts[0]), "To: <sip:bob@example.com>");
    assert!(!texts[0].contains("Record-Route"), "100 is below 180");
    assert!(to_line(&texts[1]).contains(";tag="));
    assert!(!texts[1].contains("Record-Route"));
}

#[test]
fn sl_tag_is_stable_for_a_retransmission_and_kept_when_present() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(503), fmt("Out of Gateways")])
    });
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(503), fmt("Out of Gateways")])
    });
    assert_eq!(host.sent[0].bytes, host.sent[1].bytes);
    let in_dialog = parse(&invite_with(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=b1",
    ));
    let mut host = TestHost::new();
    with_ctx(&mut rt, &mut host, &in_dialog, |ctx| {
        w_sl_send_reply(ctx, &[int(481), fmt("No Such Call")])
    });
    assert_eq!(
        to_line(&only_send(&host)),
        "To: <sip:bob@example.com>;tag=b1"
    );
}

#[test]
fn sl_never_answers_ack() {
    let ack = parse(
        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKa\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n",
    );
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &ack, |ctx| {
        (
            w_sl_send_reply(ctx, &[int(200), fmt("OK")]),
            w_sl_reply_error(ctx, &[]),
            w_send_reply(ctx, &[int(500), fmt("x")]),
        )
    });
    assert_eq!(rc, (-1, -1, -1));
    assert!(host.sent.is_empty());
}

#[test]
fn sl_reply_error_uses_last_error_or_generic_500() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| w_sl_reply_error(ctx, &[]));
    assert!(only_send(&host).starts_with(&format!("SIP/2.0 500 {GENERIC_ERROR_REASON}\r\n")));
    let mut host = TestHost::new();
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.ser_error = Some(SerError {
            status: 416,
            reason: "Unsupported URI Scheme".into(),
        });
        w_sl_reply_error(ctx, &[])
    });
    assert!(only_send(&host).starts_with("SIP/2.0 416 Unsupported URI Scheme\r\n"));
}

#[test]
fn sl_server_header_follows_core_params() {
    let msg = parse(INVITE);
    let mut host = TestHost::new();
    let mut rt = sip_script::runtime::Runtime::new(&sip_script::CoreParams {
        server_header: Some("Server: lab proxy".into()),
        ..sip_script::CoreParams::default()
    });
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(403), fmt("No")])
    });
    assert!(only_send(&host).contains("\r\nServer: lab proxy\r\n"));
    let mut host = TestHost::new();
    let mut rt = sip_script::runtime::Runtime::new(&sip_script::CoreParams {
        server_signature: false,
        ..sip_script::CoreParams::default()
    });
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_sl_send_reply(ctx, &[int(403), fmt("No")])
    });
    assert!(!only_send(&host).contains("Server:"));
}

/// A tm stand-in that claims a transaction and records the reply it was asked for.
struct FakeTm(AtomicU16);

impl TmApi for FakeTm {
    fn has_transaction(&self, _ctx: &Ctx<'_>) -> bool {
        true
    }
    fn reply(&self, _ctx: &mut Ctx<'_>, code: u16, _reason: &str) -> i32 {
        self.0.store(code, Ordering::SeqCst);
        1
    }
    fn reply_code(&self, _ctx: &Ctx<'_>) -> i32 {
        0
    }
}

#[test]
fn send_reply_is_stateless_without_tm_and_stateful_with_a_transaction() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_send_reply(ctx, &[int(404), fmt("Not Found")])
    });
    assert!(only_send(&host).starts_with("SIP/2.0 404 Not Found\r\n"));

    let tm = Arc::new(FakeTm(AtomicU16::new(0)));
    rt.register_api::<dyn TmApi>(tm.clone());
    let mut host = TestHost::new();
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_send_reply(ctx, &[int(486), fmt("Busy Here")])
    });
    assert_eq!(rc, 1);
    assert!(host.sent.is_empty(), "tm sends, not sl");
    assert_eq!(tm.0.load(Ordering::SeqCst), 486);
}

#[test]
fn ack_to_local_reply_is_recognised() {
    let msg = parse(INVITE);
    let seed = source().local.addr.to_string();
    let tag = stateless_to_tag(&msg, &seed);
    let ack = parse(&format!(
        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1\r\n\
From: <sip:a@b>;tag=from1\r\nTo: <sip:bob@example.com>;tag={tag}\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n"
    ));
    assert!(is_ack_to_local_reply(&ack, &seed));
    assert!(!is_ack_to_local_reply(&ack, "10.9.9.9:5060"));
}
