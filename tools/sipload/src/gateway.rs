//! The UAS/gateway emulator: a UDP socket served by a background thread that answers
//! INVITEs per a [`Mode`] (the spec's lab gateway: `ring`, `answer`, `reject:CODE`, `silent`),
//! answers CANCEL with 200 then 487 for the INVITE, BYE with 200 and OPTIONS with a chosen
//! code, and records every datagram it receives with a monotonic timestamp.

use crate::datagram::Datagram;
use crate::error::SiploadError;
use sip_msg::Message;
use sip_msg::build::{ReplyOpts, build_reply};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// RFC 3261 T1 and T2, for the optional final-reply retransmission (timer G).
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Timer H: give up retransmitting a final reply that is never ACKed.
const TIMER_H: Duration = Duration::from_secs(32);
/// Longest the serving thread blocks, so a stop request is seen promptly.
const POLL: Duration = Duration::from_millis(20);

/// How the gateway answers an INVITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 180 after `ring_ms` (none when `None`), 200 after `answer_ms`.
    Answer {
        ring_ms: Option<u64>,
        answer_ms: u64,
    },
    /// 180 at once, then never a final reply.
    Ring,
    /// A final `code` after `delay_ms`, preceded by an immediate 180 when `ring`.
    Reject {
        code: u16,
        delay_ms: u64,
        ring: bool,
    },
    /// Never replies to the INVITE (CANCEL, BYE and OPTIONS are still answered).
    Silent,
    /// The first INVITE transaction of a Call-ID gets `code`, every later one (a new branch
    /// of the same call, e.g. serial forking back to this gateway) gets 200.
    RejectThenAnswer { code: u16 },
}

impl FromStr for Mode {
    type Err = SiploadError;

    /// `ring`, `silent`, `answer` (180 + 200 at once), `answer:MS` (180, 200 after MS),
    /// `reject:CODE[:MS]`, `ring-reject:CODE[:MS]` (180 first), `reject-then-answer:CODE`.
    fn from_str(s: &str) -> Result<Mode, SiploadError> {
        let bad = || SiploadError::Config(format!("unknown gateway mode `{s}`"));
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let nums: Vec<u64> = parts
            .map(|p| p.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let code = |n: Option<&u64>| -> Result<u16, SiploadError> {
            match n.copied() {
                Some(c) if (300..700).contains(&c) => Ok(c as u16),
                _ => Err(bad()),
            }
        };
        match (name, nums.len()) {
            ("ring", 0) => Ok(Mode::Ring),
            ("silent", 0) => Ok(Mode::Silent),
            ("answer", 0 | 1) => Ok(Mode::Answer {
                ring_ms: Some(0),
                answer_ms: nums.first().copied().unwrap_or(0),
            }),
            ("reject" | "ring-reject", 1 | 2) => Ok(Mode::Reject {
                code: code(nums.first())?,
                delay_ms: nums.get(1).copied().unwrap_or(0),
                ring: name == "ring-reject",
            }),
            ("reject-then-answer", 1) => Ok(Mode::RejectThenAnswer {
                code: code(nums.first())?,
            }),
            _ => Err(bad()),
        }
    }
}

/// What a gateway does besides its INVITE mode.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The answer to INVITEs of calls without a per-call mode.
    pub mode: Mode,
    /// Status code for OPTIONS.
    pub options_code: u16,
    /// Send `100 Trying` to every new INVITE (a UAS may; off by default).
    pub send_100: bool,
    /// Retransmit final INVITE replies until ACK (RFC timer G). Off by default so tests see
    /// exactly the replies the mode sends.
    pub retransmit_finals: bool,
    /// Fraction of received datagrams silently dropped (as if lost on the wire).
    pub drop_rate: f64,
    /// Seed of the drop decision.
    pub seed: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            mode: Mode::Answer {
                ring_ms: Some(0),
                answer_ms: 0,
            },
            options_code: 200,
            send_100: false,
            retransmit_finals: false,
            drop_rate: 0.0,
            seed: 0x5eed,
        }
    }
}

impl GatewayConfig {
    pub fn with_mode(mode: Mode) -> GatewayConfig {
        GatewayConfig {
            mode,
            ..GatewayConfig::default()
        }
    }
}

#[derive(Default)]
struct Log {
    received: Vec<Datagram>,
    sent: Vec<Datagram>,
    call_modes: HashMap<String, Mode>,
    dropped: u64,
}

struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock leaves a consistent Vec; keep reading it.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running gateway; dropping it stops and joins its thread.
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("addr", &self.addr).finish()
    }
}

impl Gateway {
    /// A gateway on an ephemeral port of 127.0.0.1.
    pub fn start(cfg: GatewayConfig) -> Result<Gateway, SiploadError> {
        Gateway::bind(
            "127.0.0.1:0"
                .parse()
                .map_err(|_| SiploadError::Config("loopback address".into()))?,
            cfg,
        )
    }

    /// A gateway on `addr`.
    pub fn bind(addr: SocketAddr, cfg: GatewayConfig) -> Result<Gateway, SiploadError> {
        if !(0.0..=1.0).contains(&cfg.drop_rate) {
            return Err(SiploadError::Config(format!(
                "drop rate {} is not within 0..1",
                cfg.drop_rate
            )));
        }
        let sock = UdpSocket::bind(addr)?;
        let addr = sock.local_addr()?;
        let shared = Arc::new(Shared {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let mut engine = Engine {
            sock,
            addr,
            rng: cfg.seed | 1,
            cfg,
            shared: Arc::clone(&shared),
            txns: Vec::new(),
            by_key: HashMap::new(),
            invites_per_call: HashMap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("gateway {addr}"))
            .spawn(move || engine.run())?;
        Ok(Gateway {
            shared,
            addr,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answer INVITEs of `call_id` with `mode` instead of the configured one.
    pub fn set_call_mode(&self, call_id: &str, mode: Mode) {
        self.shared
            .lock()
            .call_modes
            .insert(call_id.to_string(), mode);
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<Datagram> {
        self.shared.lock().received.clone()
    }

    /// Every received request with this method.
    pub fn requests(&self, method: &str) -> Vec<Datagram> {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|d| d.is_request(method))
            .cloned()
            .collect()
    }

    /// Everything the gateway sent, in order.
    pub fn sent(&self) -> Vec<Datagram> {
        self.shared.lock().sent.clone()
    }

    /// Datagrams dropped on purpose (`drop_rate`).
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// The first received datagram (already there or arriving within `limit`) that `pred` accepts.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&Datagram) -> bool) -> Option<Datagram> {
        self.wait_count(limit, 1, pred).into_iter().next()
    }

    /// Waits up to `limit` until at least `n` received datagrams satisfy `pred`; returns all
    /// that do (fewer than `n` on timeout).
    pub fn wait_count(
        &self,
        limit: Duration,
        n: usize,
        pred: impl Fn(&Datagram) -> bool,
    ) -> Vec<Datagram> {
        let deadline = Instant::now() + limit;
        let mut log = self.shared.lock();
        loop {
            let found: Vec<Datagram> = log.received.iter().filter(|d| pred(d)).cloned().collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if found.len() >= n || left.is_zero() {
                return found;
            }
            log = match self.shared.changed.wait_timeout(log, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Stops the serving thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The standard reason phrase the gateway uses for `code`.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Reply",
    }
}

/// Timed work of the serving thread, ordered by (deadline, sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    /// Send this reply to the INVITE unless it already has a final one.
    Reply(u16),
    /// Re-send the final reply unless ACKed; the next interval doubles up to T2.
    RetransmitFinal(Duration),
}

/// One INVITE server transaction.
struct InviteTxn {
    invite: Message,
    peer: SocketAddr,
    branch: String,
    to_tag: String,
    last_reply: Option<Vec<u8>>,
    final_code: Option<u16>,
    final_at: Option<Instant>,
    acked: bool,
}

struct Engine {
    sock: UdpSocket,
    addr: SocketAddr,
    cfg: GatewayConfig,
    shared: Arc<Shared>,
    txns: Vec<InviteTxn>,
    /// (Call-ID, CSeq number) → INVITE transactions (one per branch).
    by_key: HashMap<(String, u32), Vec<usize>>,
    invites_per_call: HashMap<String, u32>,
    timers: BinaryHeap<Reverse<(Instant, u64, usize, Action)>>,
    seq: u64,
    rng: u64,
}

impl Engine {
    fn run(&mut self) {
        let mut buf = vec![0u8; 65535];
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.fire_due(Instant::now());
            let now = Instant::now();
            let wait = self
                .timers
                .peek()
                .map_or(POLL, |Reverse((at, ..))| at.saturating_duration_since(now))
                .clamp(Duration::from_millis(1), POLL);
            if self.sock.set_read_timeout(Some(wait)).is_err() {
                std::thread::sleep(wait);
            }
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let at = Instant::now();
                    if self.lost() {
                        self.shared.lock().dropped += 1;
                        continue;
                    }
                    let d = Datagram::new(at, from, buf.get(..n).unwrap_or_default().to_vec());
                    self.shared.lock().received.push(d.clone());
                    self.shared.changed.notify_all();
                    self.handle(d);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                // ICMP errors surface here on some systems; the socket stays usable.
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// xorshift64: the drop decision needs no quality, only a fixed seed.
    fn lost(&mut self) -> bool {
        if self.cfg.drop_rate <= 0.0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64 <= self.cfg.drop_rate
    }

    fn send(&mut self, bytes: Vec<u8>, to: SocketAddr) {
        // A failed send is a lost datagram; the peers retransmit as over any UDP path.
        let _ = self.sock.send_to(&bytes, to);
        let d = Datagram::new(Instant::now(), to, bytes);
        self.shared.lock().sent.push(d);
    }

    fn schedule(&mut self, after: Duration, txn: usize, action: Action) {
        self.seq += 1;
        self.timers
            .push(Reverse((Instant::now() + after, self.seq, txn, action)));
    }

    fn fire_due(&mut self, now: Instant) {
        while let Some(Reverse((at, _, txn, action))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match action {
                Action::Reply(code) => self.reply_invite(txn, code),
                Action::RetransmitFinal(interval) => self.retransmit_final(txn, interval),
            }
        }
    }

    fn handle(&mut self, d: Datagram) {
        let Some(msg) = d.msg else { return };
        if !msg.is_request() {
            return;
        }
        match msg.method_bytes() {
            Some(b"INVITE") => self.on_invite(msg, d.peer),
            Some(b"CANCEL") => self.on_cancel(&msg, d.peer),
            Some(b"ACK") => self.on_ack(&msg),
            Some(b"OPTIONS") => {
                let code = self.cfg.options_code;
                self.reply_plain(&msg, code, d.peer, None);
            }
            _ => self.reply_plain(&msg, 200, d.peer, None),
        }
    }

    /// Call-ID, CSeq number and top-Via branch: what identifies an INVITE transaction here.
    fn key_of(msg: &Message) -> Option<(String, u32, String)> {
        let call_id = String::from_utf8_lossy(msg.call_id().ok()?).into_owned();
        let cseq = msg.cseq().ok()?.number;
        let via = msg.top_via().ok()?;
        let branch = String::from_utf8_lossy(via.branch().unwrap_or_default()).into_owned();
        Some((call_id, cseq, branch))
    }

    fn find(&self, call_id: &str, cseq: u32, branch: &str) -> Option<usize> {
        self.by_key
            .get(&(call_id.to_string(), cseq))?
            .iter()
            .copied()
            .find(|&i| self.txns.get(i).is_some_and(|t| t.branch == branch))
    }

    fn on_invite(&mut self, msg: Message, peer: SocketAddr) {
        let Some((call_id, cseq, branch)) = Engine::key_of(&msg) else {
            self.reply_plain(&msg, 400, peer, None);
            return;
        };
        if let Some(i) = self.find(&call_id, cseq, &branch) {
            // A retransmission: repeat the last reply, as a UAS transaction does.
            if let Some(last) = self.txns.get(i).and_then(|t| t.last_reply.clone()) {
                self.send(last, peer);
            }
            return;
        }
        let id = self.txns.len();
        let earlier = self.invites_per_call.entry(call_id.clone()).or_insert(0);
        let nth = *earlier;
        *earlier += 1;
        self.txns.push(InviteTxn {
            invite: msg,
            peer,
            branch,
            to_tag: format!("gw{}-{id}", self.addr.port()),
            last_reply: None,
            final_code: None,
            final_at: None,
            acked: false,
        });
        self.by_key
            .entry((call_id.clone(), cseq))
            .or_default()
            .push(id);
        let mode = self
            .shared
            .lock()
            .call_modes
            .get(&call_id)
            .cloned()
            .unwrap_or_else(|| self.cfg.mode.clone());
        if self.cfg.send_100 {
            self.reply_invite(id, 100);
        }
        let ms = Duration::from_millis;
        match mode {
            Mode::Answer { ring_ms, answer_ms } => {
                if let Some(r) = ring_ms {
                    self.reply_at(id, ms(r), 180);
                }
                self.reply_at(id, ms(answer_ms), 200);
            }
            Mode::Ring => self.reply_invite(id, 180),
            Mode::Reject {
                code,
                delay_ms,
                ring,
            } => {
                if ring {
                    self.reply_invite(id, 180);
                }
                self.reply_at(id, ms(delay_ms), code);
            }
            Mode::Silent => {}
            Mode::RejectThenAnswer { code } => {
                self.reply_invite(id, if nth == 0 { code } else { 200 });
            }
        }
    }

    /// A reply now when `after` is zero (keeps the order of immediate replies), else later.
    fn reply_at(&mut self, txn: usize, after: Duration, code: u16) {
        if after.is_zero() {
            self.reply_invite(txn, code);
        } else {
            self.schedule(after, txn, Action::Reply(code));
        }
    }

    fn reply_invite(&mut self, txn: usize, code: u16) {
        let Some(t) = self.txns.get(txn) else { return };
        if t.final_code.is_some() {
            return;
        }
        let contact = format!("Contact: <sip:gw@{}>", self.addr);
        let extra: Vec<&[u8]> = if code > 100 && code < 300 {
            vec![contact.as_bytes()]
        } else {
            Vec::new()
        };
        let opts = ReplyOpts {
            to_tag: Some(t.to_tag.as_bytes()),
            server: None,
            record_route: code > 100 && code < 300,
            extra_headers: &extra,
        };
        let bytes = build_reply(&t.invite, code, reason_phrase(code).as_bytes(), &opts);
        let peer = t.peer;
        if let Some(t) = self.txns.get_mut(txn) {
            t.last_reply = Some(bytes.clone());
            if code >= 200 {
                t.final_code = Some(code);
                t.final_at = Some(Instant::now());
            }
        }
        self.send(bytes, peer);
        if code >= 200 && self.cfg.retransmit_finals {
            self.schedule(T1, txn, Action::RetransmitFinal(T1));
        }
    }

    fn retransmit_final(&mut self, txn: usize, interval: Duration) {
        let Some(t) = self.txns.get(txn) else { return };
        let expired = t.final_at.is_none_or(|at| at.elapsed() >= TIMER_H);
        if t.acked || expired {
            return;
        }
        if let Some(bytes) = t.last_reply.clone() {
            let peer = t.peer;
            self.send(bytes, peer);
        }
        let next = (interval * 2).min(T2);
        self.schedule(next, txn, Action::RetransmitFinal(next));
    }

    fn on_cancel(&mut self, msg: &Message, peer: SocketAddr) {
        let found = Engine::key_of(msg).and_then(|(c, n, b)| self.find(&c, n, &b));
        let Some(i) = found else {
            self.reply_plain(msg, 481, peer, None);
            return;
        };
        let tag = self.txns.get(i).map(|t| t.to_tag.clone());
        self.reply_plain(msg, 200, peer, tag.as_deref());
        self.reply_invite(i, 487);
    }

    fn on_ack(&mut self, msg: &Message) {
        let Some((call_id, cseq, branch)) = Engine::key_of(msg) else {
            return;
        };
        // A non-2xx ACK shares the INVITE's branch; a 2xx ACK is a new transaction of the
        // dialog and acknowledges every 2xx of that CSeq.
        let ids: Vec<usize> = match self.find(&call_id, cseq, &branch) {
            Some(i) => vec![i],
            None => self
                .by_key
                .get(&(call_id, cseq))
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|&i| {
                    self.txns
                        .get(i)
                        .is_some_and(|t| t.final_code.is_some_and(|c| c < 300))
                })
                .collect(),
        };
        for i in ids {
            if let Some(t) = self.txns.get_mut(i) {
                t.acked = true;
            }
        }
    }

    fn reply_plain(&mut self, req: &Message, code: u16, peer: SocketAddr, to_tag: Option<&str>) {
        let default_tag = format!("gw{}-x", self.addr.port());
        let opts = ReplyOpts {
            to_tag: Some(to_tag.unwrap_or(&default_tag).as_bytes()),
            ..ReplyOpts::default()
        };
        let bytes = build_reply(req, code, reason_phrase(code).as_bytes(), &opts);
        self.send(bytes, peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_the_command_line_forms() {
        let p = |s: &str| s.parse::<Mode>().unwrap();
        assert_eq!(p("ring"), Mode::Ring);
        assert_eq!(p("silent"), Mode::Silent);
        assert_eq!(
            p("answer"),
            Mode::Answer {
                ring_ms: Some(0),
                answer_ms: 0
            }
        );
        assert_eq!(
            p("answer:1000"),
            Mode::Answer {
                ring_ms: Some(0),
                answer_ms: 1000
            }
        );
        assert_eq!(
            p("reject:486"),
            Mode::Reject {
                code: 486,
                delay_ms: 0,
                ring: false
            }
        );
        assert_eq!(
            p("ring-reject:603:500"),
            Mode::Reject {
                code: 603,
                delay_ms: 500,
                ring: true
            }
        );
        assert_eq!(
            p("reject-then-answer:503"),
            Mode::RejectThenAnswer { code: 503 }
        );
        for bad in ["", "reject", "reject:200", "reject:abc", "ring:5", "loud"] {
            assert!(bad.parse::<Mode>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn a_drop_rate_outside_zero_to_one_is_refused() {
        let cfg = GatewayConfig {
            drop_rate: 1.5,
            ..GatewayConfig::default()
        };
        assert!(matches!(Gateway::start(cfg), Err(SiploadError::Config(_))));
    }
}
