//! Wire input never panics the pure module logic: every RFC 4475 message (and random byte
//! flips of them) that parses, in full or partially, goes through the helpers the binary
//! calls and the checks scripts run.

use std::path::PathBuf;

use proptest::prelude::*;
use sip_modules::core::{
    build_forward, error_reply, forward::Source, forward_reply, stateless_branch, uri_destination,
};
use sip_modules::rr::loose_route;
use sip_modules::sanity::sanity_check;
use sip_modules::sl::{SlReply, build_sl_reply};
use sip_msg::{EditList, Message};

fn corpus() -> Vec<Vec<u8>> {
    let shared = std::env::var_os("SIPLAB_SHARED").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let dir = shared.join("corpus/rfc4475");
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "dat") {
                if let Ok(b) = std::fs::read(e.path()) {
                    out.push(b);
                }
            }
        }
    }
    out
}

fn exercise(bytes: &[u8]) {
    let msg = match Message::parse(bytes.to_vec()) {
        Ok(m) => m,
        Err(e) => match e.into_partial() {
            Some(p) => {
                let _ = error_reply(&p, 400, "127.0.0.1:5060");
                return;
            }
            None => return,
        },
    };
    let _ = error_reply(&msg, 400, "127.0.0.1:5060");
    let _ = forward_reply(&msg);
    let _ = stateless_branch(&msg);
    let _ = sanity_check(&msg, u32::MAX, u32::MAX, &[]);
    let _ = build_sl_reply(&msg, 180, b"Ringing", &SlReply::default());
    if let Some(uri) = msg.request_uri_bytes() {
        let _ = uri_destination(uri);
        let mut edits = EditList::new();
        let _ = loose_route(&msg, uri, &mut edits, &|u| u.port == Some(5060));
        let src = Source {
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            port: 5060,
        };
        let _ = build_forward(&msg, &edits, "10.0.0.1:5060", src, true);
    }
}

#[test]
fn rfc4475_corpus_never_panics() {
    let all = corpus();
    assert!(all.len() > 40, "corpus not found ({} files)", all.len());
    for m in &all {
        exercise(m);
    }
}

proptest! {
    #[test]
    fn mutated_corpus_never_panics(pick in 0usize..64, flips in proptest::collection::vec((0usize..4096, any::<u8>()), 1..8)) {
        let all = corpus();
        prop_assume!(!all.is_empty());
        let mut m = all[pick % all.len()].clone();
        for (pos, b) in flips {
            if !m.is_empty() {
                let i = pos % m.len();
                m[i] = b;
            }
        }
        exercise(&m);
    }
}
