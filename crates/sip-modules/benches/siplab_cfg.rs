//! Cost of the request_route of `etc/siplab.cfg` (the lab's default config) with the real
//! modules over a parsed ~700-byte INVITE addressed to the proxy (issue 3: ≤ 2 µs).
//!
//! Timed per iteration: `Ctx::new` + `Script::run_request` over an already parsed message,
//! with a fresh [`TestHost`] built outside the timed part (criterion `iter_batched_ref`, so
//! building and dropping the host is not timed). Inside the timed part the route runs
//! mf_process_maxfwd_header, sanity_check, the `xlog("L_INFO", ...)` line (enabled at
//! `debug=2`: formatted and handed to the host, which records it as a String), has_totag,
//! is_method, record_route, `uri == myself`, `$du = GW` and forward(), which prints the
//! message with its edits and hands the bytes to the host (recorded as a Vec copy).
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sip_msg::Message;
use sip_script::testhost::TestHost;
use sip_script::{Ctx, FsLoader, Outcome, RouteKind};

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// An initial INVITE for this proxy (R-URI 127.0.0.1:5060, so `uri == myself`) from a UAC
/// at 192.0.2.10:5091, shaped like a SIPp/softphone INVITE with SDP.
fn invite() -> Vec<u8> {
    format!(
        "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bK-2231-1-0;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=2231SIPpTag001\r\n\
To: Bob <sip:bob@127.0.0.1:5060>\r\n\
Call-ID: 1-2231@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5091;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
Supported: replaces, timer\r\n\
User-Agent: siplab-bench/1.0\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n\
{SDP}",
        SDP.len()
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let cfg_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../etc/siplab.cfg");
    let cfg = sip_script::load(&cfg_path, &[], &FsLoader)
        .unwrap_or_else(|e| panic!("load {}: {e}", cfg_path.display()));
    let script = sip_script::compile(&cfg, sip_modules::all_modules())
        .unwrap_or_else(|e| panic!("compile {}: {e:?}", cfg_path.display()));
    let mut rt = script.new_runtime();
    script
        .init_modules(&mut rt)
        .unwrap_or_else(|e| panic!("init: {e}"));
    let bytes = invite();
    assert!(
        (600..=800).contains(&bytes.len()),
        "bench message is {} bytes",
        bytes.len()
    );
    let msg = Message::parse(bytes).unwrap_or_else(|e| panic!("parse: {e}"));
    let src = TestHost::source(SocketAddr::from(([192, 0, 2, 10], 5091)));

    // One checked run: the call takes the forward path to the gateway and logs one line.
    let mut host = TestHost::new();
    {
        let mut ctx = Ctx::new(&mut rt, &mut host, &msg, src.clone(), RouteKind::Request);
        let outcome = script.run_request(&mut ctx);
        assert!(
            matches!(outcome, Outcome::Exit { drop: false, .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(host.sent.len(), 1, "logs: {:?}", host.log_texts());
    assert_eq!(
        host.sent.first().map(|s| s.dst),
        Some(SocketAddr::from(([127, 0, 0, 1], 5070))),
        "forwarded to GW"
    );
    assert_eq!(
        host.log_texts(),
        ["INVITE sip:bob@127.0.0.1:5060 from 192.0.2.10:5091 (worker 4242)\n"]
    );

    c.bench_function("siplab.cfg request_route INVITE to myself", |b| {
        b.iter_batched_ref(
            TestHost::new,
            |host| {
                let mut ctx = Ctx::new(
                    &mut rt,
                    host,
                    black_box(&msg),
                    src.clone(),
                    RouteKind::Request,
                );
                black_box(script.run_request(&mut ctx))
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
