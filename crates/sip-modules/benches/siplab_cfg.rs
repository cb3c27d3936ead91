//! Cost of the request_route of `etc/siplab.cfg` (the lab's default config: stateless
//! forward) with the real modules over a parsed ~700-byte INVITE addressed to the proxy
//! (issue 3: ≤ 2 µs), and of `etc/examples/stateful-lab.cfg` (the same proxy with tm) for
//! comparison.
//!
//! Timed per iteration, as a worker does per request: `Ctx::new`, `set_script`,
//! `Script::run_request` and `Script::run_post_script` over an already parsed message. Not
//! timed: building, parsing and validating the message as the worker does before the script
//! (`Message::validate`, which keeps the top Via, R-URI and From/To tags it decodes; timed
//! apart as "parse + validate"; every iteration gets a new Via branch and Call-ID, so tm sees
//! a new transaction, not a retransmission), building and dropping the fresh [`TestHost`],
//! and the timer ticks that expire the transactions every [`PURGE_EVERY`] iterations so the
//! shm table never fills. The route runs mf_process_maxfwd_header, sanity_check, the
//! `xlog("L_INFO", ...)` line (enabled at `debug=2`: formatted and handed to the host, which
//! records it as a String), is_method, has_totag, record_route, `uri == myself`, `$du = GW`
//! and forward() (the INVITE printed with its edits to the gateway; the host records the send
//! as a byte copy) — plus t_check_trans and t_relay (100 Trying upstream) in the stateful
//! cfg. Two `Instant::now()` calls per iteration are inside the measured time (tens of ns).
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sip_msg::Message;
use sip_script::abi::{Millis, Source};
use sip_script::testhost::TestHost;
use sip_script::{Ctx, FsLoader, Outcome, RouteKind, Runtime, Script};
use sip_shm::Region;

/// Transactions live in shm until their timers expire: tick them away this often.
const PURGE_EVERY: u64 = 256;
/// Far enough past fr_timer (30 s) and wt_timer (5 s) for every transaction to be freed.
const PURGE_STEP_MS: u64 = 200_000;

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// An initial INVITE for this proxy (R-URI 127.0.0.1:5060, so `uri == myself`) from a UAC
/// at 192.0.2.10:5091, shaped like a SIPp/softphone INVITE with SDP; `n` makes the Via
/// branch and Call-ID unique.
fn invite(n: u64) -> Vec<u8> {
    format!(
        "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bK-{n:08}-1-0;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=2231SIPpTag001\r\n\
To: Bob <sip:bob@127.0.0.1:5060>\r\n\
Call-ID: {n:08}-2231@192.0.2.10\r\n\
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

/// A compiled cfg, one worker runtime over a heap shm region, and a virtual clock.
struct Worker {
    script: &'static Script,
    rt: Runtime,
    src: Source,
    now_ms: u64,
    next_call: u64,
}

impl Worker {
    fn new(cfg_path: &Path) -> Worker {
        let cfg = sip_script::load(cfg_path, &[], &FsLoader)
            .unwrap_or_else(|e| panic!("load {}: {e}", cfg_path.display()));
        let script = sip_script::compile(&cfg, sip_modules::all_modules())
            .unwrap_or_else(|e| panic!("compile {}: {}", cfg_path.display(), cfg.render(&e)));
        let script: &'static Script = Box::leak(Box::new(script));
        // As in the binary: mod_init runs with the shm region mapped (tm builds its table).
        let region: &'static Region = Box::leak(Box::new(
            Region::heap(8 << 20).unwrap_or_else(|e| panic!("heap region: {e}")),
        ));
        let mut rt = script.new_runtime();
        rt.set_shm(region);
        script
            .init_modules(&mut rt)
            .unwrap_or_else(|e| panic!("init: {e}"));
        Worker {
            script,
            rt,
            src: TestHost::source(SocketAddr::from(([192, 0, 2, 10], 5091))),
            now_ms: 1_000,
            next_call: 0,
        }
    }

    /// A fresh INVITE, parsed and validated as the worker does before the script, and a fresh
    /// host at the current time (not timed).
    fn prepare(&mut self) -> (Message, TestHost) {
        self.next_call += 1;
        let msg = Message::parse(invite(self.next_call)).unwrap_or_else(|e| panic!("parse: {e}"));
        // The worker validates every request before its request_route (`handle_request`).
        msg.validate().unwrap_or_else(|e| panic!("validate: {e}"));
        let mut host = TestHost::new();
        host.now = Millis(self.now_ms);
        (msg, host)
    }

    /// What a worker runs per request.
    fn run(&mut self, msg: &Message, host: &mut TestHost) -> Outcome {
        let mut ctx = Ctx::new(
            &mut self.rt,
            host,
            msg,
            self.src.clone(),
            RouteKind::Request,
        );
        ctx.set_script(self.script);
        let outcome = self.script.run_request(&mut ctx);
        self.script.run_post_script(&mut ctx);
        outcome
    }

    /// Advances the clock past every transaction timer and lets the timer hooks free them.
    fn purge(&mut self) {
        self.now_ms += PURGE_STEP_MS;
        let mut host = TestHost::new();
        host.now = Millis(self.now_ms);
        self.script.run_timers(&mut self.rt, &mut host);
    }

    /// Times `iters` requests (each one new), purging transactions outside the timing.
    fn timed(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for i in 0..iters {
            let (msg, mut host) = self.prepare();
            let start = Instant::now();
            let outcome = self.run(black_box(&msg), &mut host);
            total += start.elapsed();
            black_box(outcome);
            if i % PURGE_EVERY == PURGE_EVERY - 1 {
                self.purge();
            }
        }
        self.purge();
        total
    }
}

fn etc(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../etc")
        .join(rel)
}

/// The sends of one run: (destination, first line).
fn sends(host: &TestHost) -> Vec<(SocketAddr, String)> {
    host.sent
        .iter()
        .map(|s| {
            let text = String::from_utf8_lossy(&s.bytes);
            (s.dst, text.lines().next().unwrap_or_default().to_string())
        })
        .collect()
}

const UAC: ([u8; 4], u16) = ([192, 0, 2, 10], 5091);
const GW: ([u8; 4], u16) = ([127, 0, 0, 1], 5070);

const LOG_LINE: &str = "INVITE sip:bob@127.0.0.1:5060 from 192.0.2.10:5091 (worker 4242)\n";
const INVITE_LINE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0";

/// Stateful etc/examples/stateful-lab.cfg, checked: 100 Trying upstream, the INVITE to the gateway, one
/// log line — many runs across purges, so every request takes the t_relay path (a full
/// table would answer 500 instead).
fn checked_stateful() -> Worker {
    let mut stateful = Worker::new(&etc("examples/stateful-lab.cfg"));
    for i in 0..3 * PURGE_EVERY {
        let (msg, mut host) = stateful.prepare();
        let outcome = stateful.run(&msg, &mut host);
        assert!(
            matches!(outcome, Outcome::Exit { drop: false, .. }),
            "{outcome:?}"
        );
        let out = sends(&host);
        assert_eq!(out.len(), 2, "{out:?} logs: {:?}", host.log_texts());
        assert_eq!(out[0].0, SocketAddr::from(UAC));
        assert!(out[0].1.starts_with("SIP/2.0 100 "), "{out:?}");
        assert_eq!(out[1], (SocketAddr::from(GW), INVITE_LINE.to_string()));
        assert_eq!(host.log_texts(), [LOG_LINE]);
        if i % PURGE_EVERY == PURGE_EVERY - 1 {
            stateful.purge();
        }
    }
    stateful
}

/// The default etc/siplab.cfg, checked: forward() to the gateway.
fn checked_stateless() -> Worker {
    let mut stateless = Worker::new(&etc("siplab.cfg"));
    let (msg, mut host) = stateless.prepare();
    let outcome = stateless.run(&msg, &mut host);
    assert!(
        matches!(outcome, Outcome::Exit { drop: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        sends(&host),
        [(SocketAddr::from(GW), INVITE_LINE.to_string())],
        "logs: {:?}",
        host.log_texts()
    );
    assert_eq!(host.log_texts(), [LOG_LINE]);
    stateless
}

fn bench(c: &mut Criterion) {
    assert!(
        (600..=800).contains(&invite(0).len()),
        "bench message is {} bytes",
        invite(0).len()
    );
    // Each worker is built and checked when its benchmark runs (criterion calls the
    // closure several times; a name filter skips it and the setup).
    let mut stateful: Option<Worker> = None;
    c.bench_function(
        "stateful-lab.cfg (tm, t_relay) request_route INVITE to myself",
        |b| {
            let w = stateful.get_or_insert_with(checked_stateful);
            b.iter_custom(|iters| w.timed(iters))
        },
    );
    // What the worker does before the script, timed apart so the whole per-request cost
    // is known: parse (copying the datagram into the message) and validate.
    c.bench_function("INVITE parse + validate (before the script)", |b| {
        b.iter_batched(
            || invite(7),
            |bytes| {
                let msg = Message::parse(black_box(bytes)).map_err(|e| e.to_string());
                black_box(msg.map(|m| m.validate().is_ok()))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let mut stateless: Option<Worker> = None;
    c.bench_function("siplab.cfg request_route INVITE to myself", |b| {
        let w = stateless.get_or_insert_with(checked_stateless);
        b.iter_custom(|iters| w.timed(iters))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
