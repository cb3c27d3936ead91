//! Parse and print cost for a typical ~700-byte INVITE; rsip parse of the same bytes for scale.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sip_msg::{EditList, Message};

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A typical proxied INVITE: two Vias with rport, Record-Route, Route, Contact, SDP.
fn invite() -> Vec<u8> {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.15:5060;branch=z9hG4bKnashds8;rport=5060;received=192.0.2.4\r\n\
Record-Route: <sip:proxy1.atlanta.example.com;lr>\r\n\
Route: <sip:proxy2.biloxi.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
User-Agent: siplab-bench/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n\
{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// The decode the proxy does for every request: index plus Via/CSeq/Call-ID/From-tag.
fn decode(buf: Vec<u8>) -> Option<(usize, u32, usize, usize)> {
    let m = Message::parse(buf).ok()?;
    let branch_len = m.top_via().ok()?.branch()?.len();
    let cseq = m.cseq().ok()?.number;
    let call_id_len = m.call_id().ok()?.len();
    let tag_len = m.from().ok()?.tag()?.len();
    Some((branch_len, cseq, call_id_len, tag_len))
}

fn bench(c: &mut Criterion) {
    let invite = invite();
    assert!(
        (600..=800).contains(&invite.len()),
        "bench message is {} bytes",
        invite.len()
    );
    assert!(
        decode(invite.clone()).is_some(),
        "bench message must parse and decode"
    );
    assert!(
        rsip::SipMessage::try_from(invite.as_slice()).is_ok(),
        "rsip must accept it"
    );
    let mut g = c.benchmark_group("sip-msg");
    g.bench_function("index only", |b| {
        b.iter_batched(
            || invite.clone(),
            |buf| black_box(Message::parse(buf).is_ok()),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("index+via+cseq+callid+fromtag", |b| {
        b.iter_batched(
            || invite.clone(),
            |buf| black_box(decode(buf)),
            criterion::BatchSize::SmallInput,
        )
    });
    let msg = Message::parse_slice(&invite)
        .map_err(|e| e.error)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut edits = EditList::new();
    edits.prepend_via(b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsiplab.0");
    edits.remove_first_route();
    edits.set_max_forwards(69);
    let mut out = Vec::with_capacity(2048);
    g.bench_function("print with 3 edits", |b| {
        b.iter(|| {
            out.clear();
            msg.write_to(black_box(&edits), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("rsip parse (oracle, for scale)", |b| {
        b.iter(|| black_box(rsip::SipMessage::try_from(black_box(invite.as_slice())).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
