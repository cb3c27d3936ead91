//! Cost of running a request_route shaped like the stock/lab cfg over a parsed ~700-byte
//! INVITE: sanity-ish checks, is_method, has_totag, if/else chains, `$var` assignment, an xlog
//! at a disabled level, a Record-Route append and a forward that prints and "sends" the
//! message. Uses the test module table (tests/common), not the real modules.
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

use criterion::{Criterion, criterion_group, criterion_main};
use sip_script::abi::{Host, LocalAddr, LogLevel, Millis, SendError};
use sip_script::{Ctx, Outcome, Proto, RouteKind};

#[path = "../tests/common/mod.rs"]
mod common;

const CFG: &str = r#"
debug=2
request_route {
    route(REQINIT);
    if (is_method("CANCEL")) {
        sl_send_reply("200", "canceling");
        exit;
    }
    route(WITHINDLG);
    if (is_method("INVITE|SUBSCRIBE")) {
        record_route();
    }
    $var(dest) = $rU;
    if ($var(dest) == "alice") {
        $du = "sip:127.0.0.1:5092";
    } else if ($var(dest) == "bob") {
        $var(n) = $var(n) + 1;
    } else {
        sl_send_reply("404", "Not here");
        exit;
    }
    xlog("L_DBG", "routing $rm $ru to $var(dest) from $si:$sp\n");
    route(RELAY);
}

route[REQINIT] {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if ($ua =~ "friendly|scanner|sipcli|sipvicious|VaxSIPUserAgent") {
        exit;
    }
}

route[WITHINDLG] {
    if (!has_totag()) return;
    if (is_method("ACK")) { forward(); exit; }
    sl_send_reply("404", "Not here");
    exit;
}

route[RELAY] {
    if (!forward()) {
        sl_send_reply("500", "Server error");
    }
    exit;
}
"#;

/// A host that drops sends and logs (the bench measures the script, not I/O).
struct NullHost {
    local: Vec<LocalAddr>,
    sent: usize,
}

impl Host for NullHost {
    fn send(&mut self, _p: Proto, _dst: SocketAddr, bytes: &[u8]) -> Result<(), SendError> {
        self.sent += bytes.len();
        Ok(())
    }
    fn log(&mut self, _level: LogLevel, _module: &str, _text: &str) {}
    fn now(&self) -> Millis {
        Millis(0)
    }
    fn random_u32(&mut self) -> u32 {
        4
    }
    fn sleep_ms(&mut self, _ms: u64) {}
    fn local_addrs(&self) -> &[LocalAddr] {
        &self.local
    }
    fn resolve(&mut self, _name: &str) -> Vec<IpAddr> {
        Vec::new()
    }
    fn pid(&self) -> u32 {
        1
    }
    fn rank(&self) -> i32 {
        1
    }
}

fn bench(c: &mut Criterion) {
    let script = common::script(CFG);
    let mut rt = script.new_runtime();
    script.init_modules(&mut rt).expect("init");
    let msg = common::parse(common::INVITE);
    assert!(msg.as_bytes().len() >= 650, "{}", msg.as_bytes().len());
    let mut host = NullHost {
        local: vec![LocalAddr {
            host: "127.0.0.1".into(),
            port: Some(5060),
            proto: Proto::Udp,
        }],
        sent: 0,
    };
    // One checked run: the route forwards and ends with exit.
    {
        let mut ctx = Ctx::new(
            &mut rt,
            &mut host,
            &msg,
            common::source(),
            RouteKind::Request,
        );
        assert_eq!(
            script.run_request(&mut ctx),
            Outcome::Exit {
                drop: false,
                ret: 0
            }
        );
    }
    assert!(host.sent > 500, "forward sent the message");
    c.bench_function("run_request stock-like INVITE", |b| {
        b.iter(|| {
            let mut ctx = Ctx::new(
                &mut rt,
                &mut host,
                black_box(&msg),
                common::source(),
                RouteKind::Request,
            );
            black_box(script.run_request(&mut ctx))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
