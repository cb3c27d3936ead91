//! Any datagram: parse, decode every view, validate, print with edits, build replies.
//! Nothing reachable from input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_msg::build::{ReplyOpts, build_ack, build_cancel, build_reply};
use sip_msg::{EditList, HeaderName, Message};

fn exercise(m: &Message) {
    let _ = m.validate();
    let _ = m.top_via().map(|v| (v.branch(), v.rport(), v.received()));
    let _ = m.vias().count();
    let _ = m.cseq();
    let _ = m.call_id();
    let _ = m.from().map(|a| a.tag());
    let _ = m.to().map(|a| a.tag());
    let _ = m.max_forwards();
    let _ = m.expires();
    let _ = m.contacts().count();
    let _ = m.routes().count();
    let _ = m.record_routes().count();
    let _ = m.content_type();
    let _ = m.proxy_require().count();
    let _ = m.reasons().count();
    let _ = m.request_uri();
    let _ = m.header_values(HeaderName::Via).count();
    let mut edits = EditList::new();
    edits.prepend_via(b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz");
    edits.remove_first_route();
    edits.set_max_forwards(69);
    edits.set_top_via_param(b"received", Some(b"192.0.2.2"));
    edits.remove_header(b"Contact");
    edits.replace_body(b"x");
    let mut out = Vec::with_capacity(4096);
    m.write_to(&edits, &mut out);
    let _ = build_reply(m, 400, b"Bad Request", &ReplyOpts::default());
    let _ = build_cancel(m, &[]);
    let _ = build_ack(m, m);
}

fuzz_target!(|data: &[u8]| {
    match Message::parse_slice(data) {
        Ok(m) => exercise(&m),
        Err(e) => {
            if let Some(m) = e.partial() {
                exercise(m);
            }
        }
    }
});
