//! Stateless replies (Kamailio `sl_funcs.c` / `build_res_buf_from_sip_req` behaviour),
//! pure: the caller sends the bytes back to the source.

use sip_msg::build::{ReplyOpts, build_reply};
use sip_msg::{Message, Method};

use crate::core::forward::md5_hex;

/// The `Server:` header value when the cfg sets no `server_header`.
pub const DEFAULT_SERVER: &str = "siplab (0.1 (x86_64/linux))";

/// The prefix (32 hex) of every stateless To-tag: constant per proxy instance (`seed`
/// names it, e.g. the listen address), so an ACK to a local reply is recognisable.
pub fn to_tag_prefix(seed: &str) -> String {
    md5_hex(&[b"siplab-sl", seed.as_bytes()])
}

/// The To-tag of a stateless reply, `<32 hex>.<8 hex>`: the instance prefix and a suffix
/// from the top Via (host, port, branch), so a retransmitted request gets the same tag.
pub fn stateless_to_tag(req: &Message, seed: &str) -> String {
    let (host, port, branch) = req.top_via().map_or((&b""[..], None, &b""[..]), |v| {
        (v.host_raw, v.port, v.branch().unwrap_or_default())
    });
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    let suffix = md5_hex(&[host, port.as_bytes(), branch]);
    let mut tag = to_tag_prefix(seed);
    tag.push('.');
    tag.push_str(suffix.get(..8).unwrap_or_default());
    tag
}

/// True for an ACK whose To-tag carries this instance's stateless prefix: the ACK of a
/// negative reply `sl` sent, which Kamailio swallows before the script (`sl_filter_ACK`).
pub fn is_ack_to_local_reply(req: &Message, seed: &str) -> bool {
    req.method() == Some(Method::Ack)
        && req
            .to_tag()
            .is_some_and(|tag| tag.starts_with(to_tag_prefix(seed).as_bytes()))
}

/// What a stateless reply carries besides code and reason.
#[derive(Clone, Debug, Default)]
pub struct SlReply<'a> {
    /// `Server:` value; `None` leaves the header out (`server_signature=no`).
    pub server: Option<&'a str>,
    /// Seed of the To-tag prefix (see [`to_tag_prefix`]).
    pub tag_seed: &'a str,
    /// Extra header lines (`Name: value`, no line end), e.g. sanity's `Unsupported:`.
    pub extra_headers: &'a [&'a [u8]],
}

/// Builds a stateless reply to `req`; `None` for ACKs (never answered) and replies.
/// Copies Via/From/To/Call-ID/CSeq, Record-Route only for 180–299, adds the To-tag when
/// the code is ≥ 180 and To has none, `Server:` and `Content-Length: 0`.
pub fn build_sl_reply(
    req: &Message,
    code: u16,
    reason: &[u8],
    opts: &SlReply<'_>,
) -> Option<Vec<u8>> {
    if !req.is_request() || req.method() == Some(Method::Ack) {
        return None;
    }
    let tag = stateless_to_tag(req, opts.tag_seed);
    let reply_opts = ReplyOpts {
        to_tag: Some(tag.as_bytes()),
        server: opts.server.map(str::as_bytes),
        record_route: (180..300).contains(&code),
        extra_headers: opts.extra_headers,
    };
    Some(build_reply(req, code, reason, &reply_opts))
}
