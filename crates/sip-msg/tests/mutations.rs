//! Robustness: 200,000+ deterministic random mutations of the corpus messages go through
//! parse, every typed view, validation, printing with edits and reply building without a
//! panic. Stable Rust, no extra crates: a xorshift generator with a fixed seed.

mod common;

use sip_msg::build::{ReplyOpts, build_ack, build_cancel, build_reply};
use sip_msg::{Contact, EditList, HeaderName, InsertAt, Message, Uri};

/// xorshift64*: small, fast, deterministic.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\r\n\0\"<>,;:=@? \t%[]\\/";

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut m = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(m.len() + 1);
        match rng.below(6) {
            0 => {
                if let Some(b) = m.get_mut(pos) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => m.truncate(pos),
            2 => m.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            3 => {
                if pos < m.len() {
                    m.remove(pos);
                }
            }
            4 => {
                if let Some(b) = m.get_mut(pos) {
                    *b = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
            _ => {
                // Duplicate a chunk (repeated headers, long values).
                let len = rng.below(40);
                let end = (pos + len).min(m.len());
                let chunk = m[pos.min(end)..end].to_vec();
                let at = rng.below(m.len() + 1);
                m.splice(at..at, chunk);
            }
        }
    }
    m
}

/// Touches every typed view and builder; results are ignored, panics are not.
fn exercise(m: &Message, out: &mut Vec<u8>) -> usize {
    let mut seen = 0;
    seen += m.headers().count();
    seen += usize::from(m.validate().is_ok());
    if let Ok(v) = m.top_via() {
        seen += v.branch().map_or(0, <[u8]>::len);
        seen += usize::from(v.rport().is_some()) + usize::from(v.received().is_some());
        seen += usize::from(v.maddr().is_some()) + usize::from(v.ttl().is_some());
    }
    seen += m.vias().filter(Result::is_ok).count();
    seen += m.cseq().map_or(0, |c| c.number as usize % 7);
    seen += m.call_id().map_or(0, <[u8]>::len);
    for addr in [m.from(), m.to()].into_iter().flatten() {
        seen += addr.tag().map_or(0, <[u8]>::len) + addr.display().map_or(0, <[u8]>::len);
    }
    seen += m.max_forwards().ok().flatten().unwrap_or(0) as usize % 3;
    seen += m.expires().ok().flatten().unwrap_or(0) as usize % 3;
    for c in m.contacts().flatten() {
        if let Contact::Addr(a) = c {
            seen += a.params.iter().count();
        }
    }
    seen +=
        m.routes().filter(Result::is_ok).count() + m.record_routes().filter(Result::is_ok).count();
    seen += m
        .content_type()
        .ok()
        .flatten()
        .map_or(0, |c| c.params.iter().count());
    seen += m.require().count() + m.proxy_require().count() + m.supported().count();
    seen += m
        .reasons()
        .filter_map(Result::ok)
        .filter_map(|r| r.cause())
        .count();
    seen += m.request_uri().map_or(0, |u| u.params.iter().count());
    seen += m.body().len() + m.content_length().unwrap_or(0) as usize % 5;
    for v in m.header_values(HeaderName::Via) {
        seen += Uri::parse(m.slice(v)).map_or(0, |u| u.raw.len());
    }

    let mut edits = EditList::new();
    edits.prepend_via(b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz");
    edits.remove_top_via();
    edits.remove_first_route();
    edits.set_max_forwards(69);
    edits.set_top_via_param(b"received", Some(b"192.0.2.2"));
    edits.set_top_via_param(b"rport", Some(b"5060"));
    edits.remove_header(b"m");
    edits.insert_header(InsertAt::AfterLast(HeaderName::Route), b"Route: <sip:x;lr>");
    edits.set_request_uri(b"sip:new@example.net");
    edits.replace_body(b"v=0\r\n");
    out.clear();
    m.write_to(&edits, out);
    seen += out.len();
    out.clear();
    m.write_to(&EditList::new(), out);
    seen += out.len();

    let opts = ReplyOpts {
        to_tag: Some(b"tt"),
        server: Some(b"siplab"),
        record_route: true,
        extra_headers: &[],
    };
    seen += build_reply(m, 400, b"Bad Request", &opts).len();
    seen += build_cancel(m, &[b"Reason: SIP;cause=200"]).map_or(0, |c| c.len());
    seen += build_ack(m, m).map_or(0, |a| a.len());
    seen
}

#[test]
fn corpus_mutations_never_panic() {
    const ROUNDS: usize = 200_000;
    let corpus: Vec<Vec<u8>> = common::corpus_messages()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let mut rng = XorShift(0x5EED_0F51_B1AB);
    let mut out = Vec::with_capacity(8192);
    let (mut parsed, mut partial, mut total) = (0usize, 0usize, 0usize);
    for round in 0..ROUNDS {
        let input = &corpus[round % corpus.len()];
        let mutated = mutate(&mut rng, input);
        match Message::parse(mutated) {
            Ok(m) => {
                parsed += 1;
                total = total.wrapping_add(exercise(&m, &mut out));
            }
            Err(e) => {
                assert!(e.status() >= 400, "error status {}", e.status());
                if let Some(m) = e.partial() {
                    partial += 1;
                    total = total.wrapping_add(exercise(m, &mut out));
                }
            }
        }
    }
    // Mutations must reach deep code paths, not just bounce off the start line.
    assert!(
        parsed > ROUNDS / 5,
        "only {parsed} of {ROUNDS} mutations parsed"
    );
    assert!(partial > ROUNDS / 20, "only {partial} partial messages");
    assert!(total > 0);
}
