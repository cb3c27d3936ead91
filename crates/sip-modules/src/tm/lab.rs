//! Test lab: cfg text compiled with the real compiler, one heap [`Region`] shared by several
//! "workers" (each its own [`Runtime`] and recording host) and a timer process, all driven
//! by hand in one thread with a virtual clock — the deterministic twin of the binary.

use std::net::SocketAddr;

use sip_msg::Message;
use sip_msg::build::{ReplyOpts, build_reply};
use sip_script::abi::{Ctx, Host, LocalAddr, LogLevel, Millis, ReplyDisposition, SendError};
use sip_script::testhost::TestHost;
use sip_script::{Outcome, Proto, RouteKind, Runtime, Script, compile, load_str};
use sip_shm::Region;

use super::table::{Stat, Table};

/// The UAC every test request comes from.
pub const UAC: &str = "192.0.2.10:5091";
/// The first gateway (`$du` in the lab cfgs).
pub const GW1: &str = "10.0.0.20:5070";
/// The second gateway.
pub const GW2: &str = "10.0.0.21:5070";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A compiled cfg and the shared region its workers use.
pub struct Lab {
    pub script: &'static Script,
    pub region: &'static Region,
}

impl Lab {
    /// Compiles `cfg` (with `-A` style `defines`) over an 8 MiB heap region.
    pub fn new(cfg: &str) -> Lab {
        Lab::with_region(cfg, 8 << 20)
    }

    pub fn with_region(cfg: &str, bytes: usize) -> Lab {
        let cfg = load_str("lab.cfg", cfg, &[]).unwrap_or_else(|e| panic!("load: {e}"));
        let script = compile(&cfg, crate::all_modules())
            .unwrap_or_else(|e| panic!("compile: {}", cfg.render(&e)));
        let region: &'static Region = Box::leak(Box::new(
            Region::heap(bytes).unwrap_or_else(|e| panic!("heap region: {e}")),
        ));
        let lab = Lab {
            script: Box::leak(Box::new(script)),
            region,
        };
        // The binary runs mod_init once before fork: that creates the table.
        drop(lab.worker());
        lab
    }

    /// A worker (or the timer process): its own runtime over the shared region.
    pub fn worker(&self) -> Worker {
        let mut rt = self.script.new_runtime();
        rt.set_shm(self.region);
        self.script
            .init_modules(&mut rt)
            .unwrap_or_else(|e| panic!("init: {e}"));
        Worker {
            script: self.script,
            rt,
            host: LabHost::default(),
        }
    }

    pub fn table(&self) -> Table {
        Table::open(self.region).unwrap_or_else(|e| panic!("table: {e}"))
    }

    /// `tm.stats` `current`.
    pub fn current(&self) -> u64 {
        let t = self.table();
        t.stat(Stat::Created) - t.stat(Stat::Freed)
    }
}

/// A recording host with a hook that runs inside `send` (to interleave another worker at
/// the exact moment a datagram leaves).
#[derive(Default)]
pub struct LabHost {
    pub inner: TestHost,
    #[allow(clippy::type_complexity)]
    pub on_send: Option<Box<dyn FnMut(SocketAddr, &[u8])>>,
}

impl Host for LabHost {
    fn send(&mut self, proto: Proto, dst: SocketAddr, bytes: &[u8]) -> Result<(), SendError> {
        if let Some(hook) = self.on_send.as_mut() {
            hook(dst, bytes);
        }
        self.inner.send(proto, dst, bytes)
    }
    fn log(&mut self, level: LogLevel, module: &str, text: &str) {
        self.inner.log(level, module, text);
    }
    fn now(&self) -> Millis {
        self.inner.now
    }
    fn random_u32(&mut self) -> u32 {
        self.inner.random_u32()
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.inner.sleep_ms(ms);
    }
    fn local_addrs(&self) -> &[LocalAddr] {
        self.inner.local_addrs()
    }
    fn resolve(&mut self, name: &str) -> Vec<std::net::IpAddr> {
        self.inner.resolve(name)
    }
    fn pid(&self) -> u32 {
        self.inner.pid
    }
    fn rank(&self) -> i32 {
        self.inner.rank
    }
}

/// One datagram a worker sent.
#[derive(Clone, Debug)]
pub struct Out {
    pub dst: SocketAddr,
    pub text: String,
}

impl Out {
    pub fn msg(&self) -> Message {
        Message::parse(self.text.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
    /// The start line.
    pub fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }
    pub fn has_header(&self, line: &str) -> bool {
        self.text.lines().any(|l| l == line)
    }
}

pub struct Worker {
    pub script: &'static Script,
    pub rt: Runtime,
    pub host: LabHost,
}

impl Worker {
    /// Sets this worker's clock (ms).
    pub fn at(&mut self, ms: u64) -> &mut Self {
        self.host.inner.now = Millis(ms);
        self
    }

    /// A request from `src` through request_route and the post-script hooks.
    pub fn request(&mut self, text: &str, src: &str) -> Outcome {
        self.request_on(text, src, None)
    }

    /// A request received on a socket with `listen=… advertise host:port`.
    pub fn request_on(&mut self, text: &str, src: &str, advertise: Option<(&str, u16)>) -> Outcome {
        let msg = Message::parse(text.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
        let mut source = TestHost::source(addr(src));
        source.local.advertise = advertise.map(|(h, p)| (h.to_string(), p));
        let mut ctx = Ctx::new(
            &mut self.rt,
            &mut self.host,
            &msg,
            source,
            RouteKind::Request,
        );
        ctx.set_script(self.script);
        let out = self.script.run_request(&mut ctx);
        self.script.run_post_script(&mut ctx);
        out
    }

    /// A reply from `src` through the core `reply_route` (if any; `drop` or 0 there
    /// discards it) and then the reply hooks (tm), as the binary's worker does;
    /// `Forward` = stateless.
    pub fn reply(&mut self, text: &str, src: &str) -> ReplyDisposition {
        let msg = Message::parse(text.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
        let mut ctx = Ctx::new(
            &mut self.rt,
            &mut self.host,
            &msg,
            TestHost::source(addr(src)),
            RouteKind::Reply,
        );
        ctx.set_script(self.script);
        if let Some(Outcome::Exit { drop: true, .. } | Outcome::Exit { ret: 0, .. }) =
            self.script.run_named(RouteKind::Reply, None, &mut ctx)
        {
            return ReplyDisposition::Consumed;
        }
        self.script.run_reply_hooks(&mut ctx)
    }

    /// One timer tick at `ms`.
    pub fn tick(&mut self, ms: u64) {
        self.host.inner.now = Millis(ms);
        self.script.run_timers(&mut self.rt, &mut self.host);
    }

    /// Ticks every 62.5 ms (as the timer process does) from after `from` up to `to`.
    pub fn tick_until(&mut self, from: u64, to: u64) {
        let mut t = from;
        while t < to {
            t = (t + 62).min(to);
            self.tick(t);
        }
    }

    /// Everything sent since the last call.
    pub fn take(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.host.inner.sent)
            .into_iter()
            .map(|s| Out {
                dst: s.dst,
                text: String::from_utf8_lossy(&s.bytes).into_owned(),
            })
            .collect()
    }

    pub fn logs(&self) -> Vec<&str> {
        self.host.inner.log_texts()
    }
}

/// A gateway's reply to `req` (as the proxy sent it): every Via kept, a To-tag for ≥ 180.
pub fn reply_to(req: &Out, code: u16, reason: &str, to_tag: &str, extra: &[&str]) -> String {
    let extra: Vec<&[u8]> = extra.iter().map(|s| s.as_bytes()).collect();
    let opts = ReplyOpts {
        to_tag: (code >= 180).then_some(to_tag.as_bytes()),
        server: None,
        record_route: true,
        extra_headers: &extra,
    };
    String::from_utf8_lossy(&build_reply(&req.msg(), code, reason.as_bytes(), &opts)).into_owned()
}

/// The sends to `dst` among `outs`.
pub fn to<'o>(outs: &'o [Out], dst: &str) -> Vec<&'o Out> {
    let d = addr(dst);
    outs.iter().filter(|o| o.dst == d).collect()
}

/// The test INVITE (from [`UAC`], for `bob@example.com`).
pub const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5091>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

/// The UAC's ACK for a negative final with to-tag `tag` (same branch as the INVITE).
pub fn ack_for(tag: &str) -> String {
    format!(
        "ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>;tag={tag}\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 ACK\r\n\
Content-Length: 0\r\n\
\r\n"
    )
}

/// The UAC's CANCEL for [`INVITE`], with optional extra header lines.
pub fn cancel(extra: &str) -> String {
    format!(
        "CANCEL sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 CANCEL\r\n\
{extra}Content-Length: 0\r\n\
\r\n"
    )
}

/// The to-tag of a reply's To header.
pub fn to_tag(text: &str) -> String {
    let m = Message::parse(text.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
    m.to()
        .ok()
        .and_then(|t| t.tag().map(|t| String::from_utf8_lossy(t).into_owned()))
        .unwrap_or_default()
}

/// The stock-like stateful cfg the tests run: t_check_trans idiom, `$du` = GW1,
/// failure_route to GW2 with a header added there, a header added in onreply_route.
pub const STATEFUL: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "xlog.so"
#!ifdef FRT
modparam("tm", "fr_timer", FRT)
#!endif
#!ifdef FRINV
modparam("tm", "fr_inv_timer", FRINV)
#!endif
request_route {
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    if (!is_method("ACK")) {
        t_check_trans();
    }
    if (is_method("ACK")) {
        if (t_check_trans()) {
            exit;
        }
    }
    if ($rU == "fo") {
        t_on_failure("NEXT_GW");
    }
    t_on_reply("REPLY");
    $du = "sip:10.0.0.20:5070";
    if (!t_relay()) {
        sl_reply_error();
    }
    exit;
}

onreply_route[REPLY] {
    xlog("L_INFO", "onreply $rs $T_reply_code\n");
    append_hf("X-Onreply: $rs\r\n");
}

failure_route[NEXT_GW] {
    if (t_is_canceled()) {
        exit;
    }
    xlog("L_INFO", "failure $T_reply_code $T_reply_reason ru=$ru\n");
    if (t_check_status("486|408")) {
        append_hf("X-Failover: 1\r\n");
        $du = "sip:10.0.0.21:5070";
        t_relay();
    }
}
"#;
