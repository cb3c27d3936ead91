//! "No input can crash a worker" for the stateful path: tens of thousands of mutated
//! requests and replies go through lab workers running a stock-like stateful cfg while
//! valid calls, CANCELs, retransmissions and timer ticks keep live transactions around
//! them. Deterministic (xorshift with fixed seeds). Each run ends by driving the clock past
//! every timer: the table must be empty and every shm byte back.

use std::collections::VecDeque;
use std::net::SocketAddr;

use sip_msg::Message;
use sip_script::abi::{Ctx, ReplyDisposition};
use sip_script::testhost::TestHost;
use sip_script::{Outcome, RouteKind};

use super::lab::{GW1, GW2, Lab, Out, UAC, Worker, addr, reply_to};
use super::table::Stat;

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

    /// True with probability `pct`/100.
    fn pct(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn one_of(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

/// A third next hop (branch_route moves some branches there).
const GW3: &str = "10.0.0.22:5070";

/// Buckets of the fuzz table: small, so cells share buckets and a "wrong bucket" branch
/// usually names a bucket that has cells.
const HASH_SIZE: u32 = 64;

/// The stock-like stateful cfg: t_check_trans idiom, t_relay, failure_route (serial
/// forking on 486/408/503, re-armed so it runs until the branch slots are used up), a core
/// reply_route looking the transaction up, onreply_route (drops 183 and 603), branch_route
/// (a header per branch, one branch moved to GW3, `drop` for user "drop"), parallel forking
/// for user "fork", a local t_reply for user "local", an unmatched CANCEL relayed for user
/// "fo". Short timers so calls end within the run.
const CFG: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "corex.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "xlog.so"
modparam("tm", "hash_size", 64)
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 6000)
modparam("tm", "wt_timer", 3000)
request_route {
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        } else if ($rU == "fo") {
            $du = "sip:10.0.0.20:5070";
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
    if ($rU == "local" && !is_method("ACK")) {
        if (t_newtran()) {
            t_reply("404", "Not Here");
        }
        exit;
    }
    if ($rU == "fork") {
        append_branch("sip:fork@10.0.0.21:5070");
    }
    if ($rU == "fo" || $rU == "drop" || $rU == "fork") {
        t_on_failure("NEXT_GW");
    }
    t_on_reply("REPLY");
    t_on_branch("BR");
    $du = "sip:10.0.0.20:5070";
    if (!t_relay()) {
        sl_reply_error();
    }
    exit;
}

branch_route[BR] {
    append_hf("X-Branch: $T_branch_idx\r\n");
    if ($rU == "drop" && $T_branch_idx == 0) {
        drop;
    }
    if ($T_branch_idx == 2) {
        $du = "sip:10.0.0.22:5070";
    }
}

reply_route {
    if (!t_check_trans()) {
        xlog("L_DBG", "reply without transaction\n");
    }
}

onreply_route[REPLY] {
    xlog("L_INFO", "onreply $rs $T_reply_code\n");
    if ($rs == 183 || $rs == 603) {
        drop;
    }
    append_hf("X-Onreply: $rs\r\n");
}

failure_route[NEXT_GW] {
    if (t_is_canceled()) {
        exit;
    }
    xlog("L_INFO", "failure $T_reply_code $T_reply_reason ru=$ru\n");
    if (t_check_status("486|408|503")) {
        append_hf("X-Failover: 1\r\n");
        $du = "sip:10.0.0.21:5070";
        t_on_failure("NEXT_GW");
        t_relay();
    }
}
"#;

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fed {
    /// Only CR/LF/whitespace: a keepalive.
    Keepalive,
    /// Did not parse (the binary answers from the partial message or drops it).
    Unparsed,
    /// A request that failed `validate()` (the binary answers it statelessly).
    Invalid,
    /// An ACK to one of sl's local replies (`sl_filter_ACK`).
    SlAck,
    /// A request that ran request_route and the post-script hooks.
    Routed,
    /// A reply tm took.
    Consumed,
    /// A reply left to the core's stateless forward.
    Forwarded,
}

/// One datagram through a lab worker the way the binary's worker handles it
/// (`crates/siplab/src/worker.rs`): parse; a request is validated, sl's ACK filter runs,
/// then request_route and the post-script hooks; a reply runs the core reply_route and the
/// reply hooks. The core's "first Via is ours" check is left out so that every parsed
/// reply reaches tm — a superset of what the binary lets through.
fn feed(w: &mut Worker, data: &[u8], src: SocketAddr) -> Fed {
    if data
        .iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
    {
        return Fed::Keepalive;
    }
    let msg = match Message::parse(data.to_vec()) {
        Ok(m) => m,
        Err(e) => {
            if std::env::var_os("SIPLAB_FUZZ_DEBUG").is_some_and(|v| v == "2") {
                eprintln!("UNPARSED {}: {:?}", e.error, String::from_utf8_lossy(data));
            }
            return Fed::Unparsed;
        }
    };
    let fed = if msg.is_request() {
        if msg.validate().is_err() {
            return Fed::Invalid;
        }
        let seed = TestHost::source(src).local.addr.to_string();
        if crate::sl::is_ack_to_local_reply(&msg, &seed) {
            return Fed::SlAck;
        }
        let mut ctx = Ctx::new(
            &mut w.rt,
            &mut w.host,
            &msg,
            TestHost::source(src),
            RouteKind::Request,
        );
        ctx.set_script(w.script);
        // An Outcome::Error is a script failure the binary logs; only a panic is a bug.
        let _: Outcome = w.script.run_request(&mut ctx);
        w.script.run_post_script(&mut ctx);
        Fed::Routed
    } else {
        let mut ctx = Ctx::new(
            &mut w.rt,
            &mut w.host,
            &msg,
            TestHost::source(src),
            RouteKind::Reply,
        );
        ctx.set_script(w.script);
        match w.script.run_named(RouteKind::Reply, None, &mut ctx) {
            Some(Outcome::Exit { drop: true, .. } | Outcome::Exit { ret: 0, .. }) => Fed::Forwarded,
            _ => match w.script.run_reply_hooks(&mut ctx) {
                ReplyDisposition::Consumed => Fed::Consumed,
                ReplyDisposition::Forward => Fed::Forwarded,
            },
        }
    };
    // The recording host would grow for ever over a long run.
    w.host.inner.logs.clear();
    w.host.inner.counted.clear();
    fed
}

const INTERESTING: &[u8] = b"\r\n\0\"<>,;:=@? \t%[]\\/.";

/// Byte-level mutations as `sip-msg/tests/mutations.rs` does them: bit flips,
/// truncation, insertion/replacement of CR/LF/NUL/quotes/separators, deletion, chunk
/// duplication.
fn mutate_bytes(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut m = input.to_vec();
    for _ in 0..1 + rng.below(2) {
        let pos = rng.below(m.len() + 1);
        match rng.below(7) {
            0 => {
                if let Some(b) = m.get_mut(pos) {
                    *b ^= 1 << rng.below(8);
                }
            }
            // A cut before the blank line never parses: mostly cut inside the body.
            1 => {
                let body = m.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4);
                match body {
                    Some(at) if rng.pct(70) => m.truncate(pos.max(at)),
                    _ => m.truncate(pos.max(m.len() / 2)),
                }
            }
            2 => m.insert(pos, *rng.pick(INTERESTING)),
            3 => {
                if pos < m.len() {
                    m.remove(pos);
                }
            }
            4 => {
                if let Some(b) = m.get_mut(pos) {
                    *b = *rng.pick(INTERESTING);
                }
            }
            5 => {
                let len = rng.below(40);
                let end = (pos + len).min(m.len());
                let chunk = m[pos.min(end)..end].to_vec();
                let at = rng.below(m.len() + 1);
                m.splice(at..at, chunk);
            }
            _ => {
                // Duplicate or drop one whole header line.
                let text = String::from_utf8_lossy(&m).into_owned();
                let lines: Vec<&str> = text.split("\r\n").collect();
                if lines.len() > 2 {
                    let i = 1 + rng.below(lines.len() - 2);
                    let mut out: Vec<&str> = lines.clone();
                    if rng.pct(50) {
                        out.insert(i, lines[i]);
                    } else {
                        out.remove(i);
                    }
                    m = out.join("\r\n").into_bytes();
                }
            }
        }
    }
    m
}

/// The byte range of the first line of `text` whose name is one of `names`
/// (case-insensitive, compact forms included by the caller), without its CRLF.
fn header_line(text: &str, names: &[&str]) -> Option<(usize, usize)> {
    let mut at = 0;
    for line in text.split("\r\n") {
        if line.is_empty() {
            return None;
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) && line.contains(':') {
            return Some((at, at + line.len()));
        }
        at += line.len() + 2;
    }
    None
}

/// The byte range of the top Via's branch value in `text`.
fn branch_range(text: &str) -> Option<(usize, usize)> {
    let (start, end) = header_line(text, &["Via", "v"])?;
    let line = &text[start..end];
    let at = line.find("branch=")? + "branch=".len();
    let len = line[at..]
        .find([';', ',', ' ', '\r'])
        .unwrap_or(line.len() - at);
    Some((start + at, start + at + len))
}

/// Kamailio's reversed-nibble hex.
fn reverse_hex(mut v: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::new();
    loop {
        s.push(char::from(HEX[(v & 0xf) as usize]));
        v >>= 4;
        if v == 0 {
            return s;
        }
    }
}

/// A near-valid variant of one of our branches `z9hG4bK<bucket>.<md5>.<branch>` (wrong
/// bucket, bucket or branch number out of range, 31/33 hex chars, stray parts, another
/// cell's md5), so `decode_branch` and the cell lookup see what a broken or hostile
/// gateway could send.
fn mutate_branch(rng: &mut XorShift, branch: &str, others: &[String]) -> String {
    let Some(rest) = branch.strip_prefix("z9hG4bK") else {
        return format!("z9hG4bK{}", reverse_hex(rng.next()));
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let [bucket, md5, no] = parts[..] else {
        return format!("{branch}.{}", rng.below(16));
    };
    let md5_of = |b: &str| b.split('.').nth(1).unwrap_or("").to_string();
    let bucket = match rng.below(4) {
        0 => reverse_hex(rng.below(HASH_SIZE as usize) as u64),
        1 => rng
            .pick(&[
                "04",
                "ffffffff",
                "fffffffff",
                "",
                "0000000000",
                "g",
                "-1",
                "F",
            ])
            .to_string(),
        _ => bucket.to_string(),
    };
    let no = match rng.below(4) {
        0 => rng
            .pick(&[
                "c",
                "b",
                "d",
                "ff",
                "10",
                "00",
                "0000000",
                "fffffffff",
                "",
                "B",
                "1",
                "2",
            ])
            .to_string(),
        1 => reverse_hex(rng.next() % 300),
        _ => no.to_string(),
    };
    let mut md5 = md5.to_string();
    match rng.below(9) {
        0 => {
            md5.pop();
        }
        1 => md5.push(*rng.pick(&['0', 'a', 'f'])),
        2 => {
            let at = rng.below(md5.len().max(1));
            if at < md5.len() {
                md5.replace_range(at..=at, rng.one_of(&["0", "f", "g", "A", ".", "%"]));
            }
        }
        3 => md5 = md5.to_ascii_uppercase(),
        4 if !others.is_empty() => {
            let other: &String = rng.pick(others);
            md5 = md5_of(other);
        }
        5 => md5.clear(),
        _ => {}
    }
    match rng.below(10) {
        0 => format!("z9hG4bK{bucket}.{md5}.{no}.0"),
        1 => format!("z9hG4bK{bucket}.{md5}"),
        2 => format!("z9hG4bk{bucket}.{md5}.{no}"),
        3 => format!("z9hG4bK{bucket}..{md5}.{no}"),
        4 => format!("z9hG4bK{bucket}.{}.{no}", md5.repeat(40)),
        _ => format!("z9hG4bK{bucket}.{md5}.{no}"),
    }
}

/// Replaces the CSeq line: another method, a huge or odd number.
fn mutate_cseq(rng: &mut XorShift, text: &str) -> String {
    let Some((start, end)) = header_line(text, &["CSeq"]) else {
        return text.to_string();
    };
    let line = &text[start..end];
    let mut words = line["CSeq:".len().min(line.len())..].split_whitespace();
    let num = words.next().unwrap_or("1").to_string();
    let method = words.next().unwrap_or("INVITE").to_string();
    let num = if rng.pct(50) {
        rng.pick(&[
            "0",
            "2",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "99999999999999999999999999",
            "-1",
            "",
            "1.5",
        ])
        .to_string()
    } else {
        num
    };
    let method = if rng.pct(70) {
        rng.pick(&[
            "INVITE", "ACK", "CANCEL", "BYE", "MESSAGE", "FOO", "invite", "", "INVITEX", "PRACK",
        ])
        .to_string()
    } else {
        method
    };
    format!("{}CSeq: {num} {method}{}", &text[..start], &text[end..])
}

/// Replaces the status code of a reply's start line.
fn mutate_status(rng: &mut XorShift, text: &str) -> String {
    let Some(rest) = text.strip_prefix("SIP/2.0 ") else {
        return text.to_string();
    };
    let code = rng.pick(&[
        "100", "101", "180", "181", "183", "199", "200", "202", "299", "300", "302", "401", "407",
        "408", "480", "486", "487", "500", "503", "600", "603", "699", "0", "099", "700", "1000",
        "65536",
    ]);
    format!("SIP/2.0 {code}{}", &rest[3.min(rest.len())..])
}

/// Structured damage that keeps the message parsing: Call-ID, tags, Via removed or
/// doubled, Content-Length, Max-Forwards.
fn mutate_fields(rng: &mut XorShift, text: &str) -> String {
    let replace = |text: &str, names: &[&str], line: &str| match header_line(text, names) {
        Some((s, e)) => format!("{}{line}{}", &text[..s], &text[e..]),
        None => text.to_string(),
    };
    match rng.below(10) {
        0 => replace(text, &["Call-ID", "i"], "Call-ID: fuzz-other@192.0.2.10"),
        8 => {
            // One header line repeated hundreds of times (Vias, Record-Routes, ...).
            let lines: Vec<&str> = text.split("\r\n").collect();
            let i = 1 + rng.below(lines.len().saturating_sub(3).max(1));
            let times = 100 + rng.below(300);
            let mut out: Vec<&str> = lines[..i].to_vec();
            out.extend(std::iter::repeat_n(lines[i], times));
            out.extend_from_slice(&lines[i..]);
            out.join("\r\n")
        }
        9 => {
            // A body of tens of kilobytes, Content-Length to match.
            let head = text.split("\r\n\r\n").next().unwrap_or(text);
            let body = "a=x\r\n".repeat(1_000 + rng.below(9_000));
            let head = match header_line(head, &["Content-Length", "l"]) {
                Some((s, e)) => format!("{}{}", &head[..s], &head[e + 2.min(head.len() - e)..]),
                None => head.to_string(),
            };
            format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        }
        1 => match header_line(text, &["To", "t"]) {
            Some((s, e)) => {
                let line = &text[s..e];
                let line = match line.find(";tag=") {
                    Some(at) if rng.pct(50) => line[..at].to_string(),
                    Some(at) => format!("{};tag=other", &line[..at]),
                    None => format!("{line};tag=x{}", rng.below(9)),
                };
                format!("{}{line}{}", &text[..s], &text[e..])
            }
            None => text.to_string(),
        },
        2 => match header_line(text, &["From", "f"]) {
            Some((s, e)) => {
                let line = text[s..e].replace(";tag=", ";tag=z");
                format!("{}{line}{}", &text[..s], &text[e..])
            }
            None => text.to_string(),
        },
        3 => match header_line(text, &["Via", "v"]) {
            Some((s, e)) => format!("{}{}", &text[..s], &text[e + 2..]),
            None => text.to_string(),
        },
        4 => match header_line(text, &["Via", "v"]) {
            Some((s, e)) => {
                let line = text[s..e].to_string();
                format!("{}{line}\r\n{}", &text[..s], &text[s..])
            }
            None => text.to_string(),
        },
        5 => replace(
            text,
            &["Content-Length", "l"],
            rng.one_of(&[
                "Content-Length: 4294967296",
                "Content-Length: 99999",
                "Content-Length: 0",
                "Content-Length: -1",
            ]),
        ),
        6 => replace(
            text,
            &["Max-Forwards"],
            rng.one_of(&["Max-Forwards: 0", "Max-Forwards: 1", "Max-Forwards: 256"]),
        ),
        _ => match header_line(text, &["Via", "v"]) {
            // The top Via's sent-by changed: a reply or request from elsewhere.
            Some((s, e)) => {
                let line = text[s..e]
                    .replacen("127.0.0.1", "127.0.0.2", 1)
                    .replacen("192.0.2.10", "192.0.2.11", 1)
                    .replacen(":5060", ":5061", 1);
                format!("{}{line}{}", &text[..s], &text[e..])
            }
            None => text.to_string(),
        },
    }
}

/// A request's (or reply's) top-Via branch changed to `branch`.
fn with_branch(text: &str, branch: &str) -> String {
    match branch_range(text) {
        Some((s, e)) => format!("{}{branch}{}", &text[..s], &text[e..]),
        None => text.to_string(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Invite,
    Message,
    Bye,
}

/// A valid call the driver runs next to the fuzz input.
struct Call {
    n: u32,
    kind: Kind,
    user: &'static str,
    /// The To-tag of the final reply relayed upstream (for the ACK / in-dialog BYE).
    final_tag: Option<String>,
    final_code: u16,
}

impl Call {
    fn call_id(&self) -> String {
        format!("fz-{}@192.0.2.10", self.n)
    }

    fn request_with(&self, method: &str, branch: &str, cseq: &str, to_tag: Option<&str>) -> String {
        let n = self.n;
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let (body, ctype) = if method == "INVITE" || method == "MESSAGE" {
            ("v=0\r\n", "Content-Type: application/sdp\r\n")
        } else {
            ("", "")
        };
        let branch = if branch.is_empty() {
            String::new()
        } else {
            format!(";branch={branch}")
        };
        format!(
            "{method} sip:{user}@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=f{n}\r\n\
To: <sip:{user}@example.com>{to_tag}\r\n\
Call-ID: {cid}\r\n\
CSeq: {cseq}\r\n\
Contact: <sip:alice@192.0.2.10:5091>\r\n\
{ctype}Content-Length: {len}\r\n\
\r\n\
{body}",
            user = self.user,
            cid = self.call_id(),
            len = body.len(),
        )
    }

    /// Calls with n % 7 == 3 use an RFC 2543 request (no branch): the whole-message
    /// matching path.
    fn branch(&self) -> String {
        if self.n % 7 == 3 {
            String::new()
        } else {
            format!("z9hG4bK-fz{}", self.n)
        }
    }

    /// The call's request (INVITE, out-of-dialog MESSAGE, or in-dialog BYE).
    fn request(&self) -> String {
        match self.kind {
            Kind::Invite => self.request_with("INVITE", &self.branch(), "1 INVITE", None),
            Kind::Message => self.request_with("MESSAGE", &self.branch(), "1 MESSAGE", None),
            Kind::Bye => self.request_with("BYE", &self.branch(), "2 BYE", Some("gw")),
        }
    }

    /// The CANCEL; every other call's carries Reason headers (tm copies them into the
    /// CANCELs it sends downstream).
    fn cancel(&self) -> String {
        let cseq = if self.kind == Kind::Bye { "2" } else { "1" };
        let cancel = self.request_with("CANCEL", &self.branch(), &format!("{cseq} CANCEL"), None);
        if self.n % 2 == 0 {
            cancel.replacen(
                "Content-Length: 0\r\n",
                "Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n\
Reason: Q.850;cause=16\r\nContent-Length: 0\r\n",
                1,
            )
        } else {
            cancel
        }
    }

    /// The ACK of the final reply: hop-by-hop (same branch) for a negative one,
    /// end-to-end (new branch) for a 2xx.
    fn ack(&self) -> String {
        let tag = self.final_tag.as_deref().unwrap_or("gw");
        if (200..300).contains(&self.final_code) {
            self.request_with(
                "ACK",
                &format!("z9hG4bK-fz{}-ack", self.n),
                "1 ACK",
                Some(tag),
            )
        } else {
            self.request_with("ACK", &self.branch(), "1 ACK", Some(tag))
        }
    }

    /// An ACK for a 2xx reusing the INVITE's branch (RFC 2543 habit), so it meets the
    /// INVITE's cell in ACK matching.
    fn ack_same_branch(&self) -> String {
        let tag = self.final_tag.as_deref().unwrap_or("gw");
        self.request_with("ACK", &self.branch(), "1 ACK", Some(tag))
    }

    /// Every request of this call, for the mutator.
    fn templates(&self) -> Vec<String> {
        vec![
            self.request(),
            self.cancel(),
            self.ack(),
            self.ack_same_branch(),
        ]
    }
}

/// The lab, its workers, the virtual clock and what the valid traffic left around.
struct Run {
    lab: Lab,
    workers: Vec<Worker>,
    timer: Worker,
    rng: XorShift,
    now: u64,
    last_tick: u64,
    next_call: u32,
    calls: VecDeque<Call>,
    /// Requests tm sent downstream (recent ones), the gateways' side of the traffic.
    downstream: VecDeque<Out>,
    /// Replies sent upstream (recent ones).
    upstream: VecDeque<Out>,
    /// Our branches seen downstream (recent ones), for crossing md5 fields.
    branches: VecDeque<String>,
    /// Datagrams the proxy sent that do not parse (must stay 0: what tm relays or builds
    /// from damaged input is still a message).
    unparsable_sends: usize,
    used_before: u64,
    /// Datagrams delivered, and the most transactions seen alive (sampled).
    steps: u64,
    max_live: u64,
    /// Start lines of what the proxy sent, counted by destination (debug output).
    sent_lines: std::collections::BTreeMap<String, usize>,
}

const KEEP: usize = 96;

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == KEEP {
        q.pop_front();
    }
    q.push_back(item);
}

impl Run {
    /// A run over a shm region of `region` bytes.
    fn new(seed: u64, region: usize) -> Run {
        let lab = Lab::with_region(CFG, region);
        let workers = (0..3).map(|_| lab.worker()).collect();
        let timer = lab.worker();
        let used_before = lab.region.stats().used;
        Run {
            lab,
            workers,
            timer,
            rng: XorShift(seed),
            now: 0,
            last_tick: 0,
            next_call: 0,
            calls: VecDeque::new(),
            downstream: VecDeque::new(),
            upstream: VecDeque::new(),
            branches: VecDeque::new(),
            unparsable_sends: 0,
            used_before,
            steps: 0,
            max_live: 0,
            sent_lines: Default::default(),
        }
    }

    /// Moves the clock by `ms`, ticking the timer process every 62 ms on the way.
    fn advance(&mut self, ms: u64) {
        self.now += ms;
        while self.last_tick + 62 <= self.now {
            self.last_tick += 62;
            self.timer.tick(self.last_tick);
            let outs = self.timer.take();
            self.timer.host.inner.logs.clear();
            self.timer.host.inner.counted.clear();
            self.record(outs);
        }
    }

    /// Files what the proxy sent: requests downstream, replies upstream.
    fn record(&mut self, outs: Vec<Out>) {
        let gws = [addr(GW1), addr(GW2), addr(GW3)];
        for out in outs {
            let line = out
                .first_line()
                .split(" sip:")
                .next()
                .unwrap_or("")
                .to_string();
            *self
                .sent_lines
                .entry(format!("{} {line}", out.dst))
                .or_default() += 1;
            let Ok(msg) = Message::parse(out.text.as_bytes().to_vec()) else {
                self.unparsable_sends += 1;
                continue;
            };
            if msg.is_request() && gws.contains(&out.dst) {
                if let Some((s, e)) = branch_range(&out.text) {
                    push_bounded(&mut self.branches, out.text[s..e].to_string());
                }
                push_bounded(&mut self.downstream, out);
            } else if !msg.is_request() {
                let cid = msg.call_id().map(<[u8]>::to_vec).unwrap_or_default();
                let code = msg.status_code().unwrap_or(0);
                let is_invite = msg.cseq().is_ok_and(|c| c.method == b"INVITE");
                if code >= 200
                    && is_invite
                    && let Some(call) = self
                        .calls
                        .iter_mut()
                        .find(|c| c.call_id().as_bytes() == cid.as_slice())
                {
                    call.final_tag = msg
                        .to()
                        .ok()
                        .and_then(|t| t.tag().map(|t| String::from_utf8_lossy(t).into_owned()));
                    call.final_code = code;
                }
                push_bounded(&mut self.upstream, out);
            }
        }
    }

    /// One datagram on a random worker at the current time; records what it sent.
    fn deliver(&mut self, data: &[u8], src: SocketAddr) -> Fed {
        let i = self.rng.below(self.workers.len());
        // A worker may read the clock just before the timer process ticks and handle the
        // datagram after it: its "now" can lag the last tick a little.
        let now = if self.rng.pct(10) {
            self.now.saturating_sub(self.rng.below(150) as u64)
        } else {
            self.now
        };
        self.steps += 1;
        if self.steps % 64 == 0 {
            self.max_live = self.max_live.max(self.lab.current());
        }
        let w = &mut self.workers[i];
        w.at(now);
        let fed = feed(w, data, src);
        let outs = w.take();
        self.record(outs);
        fed
    }

    /// One step of valid traffic: a new call, a retransmission, a CANCEL, a gateway's
    /// reply, an ACK, or time passing.
    fn valid_step(&mut self) {
        match self.rng.below(100) {
            0..20 => {
                let n = self.next_call;
                self.next_call += 1;
                let kind = *self.rng.pick(&[
                    Kind::Invite,
                    Kind::Invite,
                    Kind::Invite,
                    Kind::Message,
                    Kind::Bye,
                ]);
                let user = self
                    .rng
                    .one_of(&["fo", "fo", "bob", "drop", "fork", "fork", "local"]);
                let call = Call {
                    n,
                    kind,
                    user,
                    final_tag: None,
                    final_code: 0,
                };
                let req = call.request();
                push_bounded(&mut self.calls, call);
                self.deliver(req.as_bytes(), addr(UAC));
            }
            20..32 => {
                if let Some(req) = self.some_call().map(Call::request) {
                    self.deliver(req.as_bytes(), addr(UAC));
                }
            }
            32..42 => {
                if let Some(req) = self.some_call().map(Call::cancel) {
                    self.deliver(req.as_bytes(), addr(UAC));
                }
            }
            42..50 => {
                let same_branch = self.rng.pct(20);
                let ack = self
                    .some_call()
                    .filter(|c| c.final_tag.is_some() || c.final_code >= 300)
                    .map(|c| {
                        if same_branch {
                            c.ack_same_branch()
                        } else {
                            c.ack()
                        }
                    });
                if let Some(ack) = ack {
                    self.deliver(ack.as_bytes(), addr(UAC));
                }
            }
            50..52 => self.serial_failures(),
            52..90 => {
                if let Some(reply) = self.gateway_reply() {
                    let src = self.rng.pick(&[GW1, GW2, GW3]).to_string();
                    self.deliver(reply.as_bytes(), addr(&src));
                }
            }
            _ => {
                let ms = self.rng.below(1_500) as u64;
                self.advance(ms);
            }
        }
    }

    fn some_call(&mut self) -> Option<&Call> {
        if self.calls.is_empty() {
            return None;
        }
        // Mostly the recent calls: they still have live transactions.
        let back = self.rng.below(self.calls.len().min(12));
        self.calls.get(self.calls.len() - 1 - back)
    }

    /// A new serially forked call whose every branch is answered 486 at once: failure_route
    /// opens branch after branch until the cell's branch slots run out.
    fn serial_failures(&mut self) {
        let call = Call {
            n: self.next_call,
            kind: Kind::Invite,
            user: "fo",
            final_tag: None,
            final_code: 0,
        };
        self.next_call += 1;
        let cid = call.call_id();
        let req = call.request();
        push_bounded(&mut self.calls, call);
        self.deliver(req.as_bytes(), addr(UAC));
        for _ in 0..14 {
            let Some(last) = self
                .downstream
                .iter()
                .rev()
                .find(|o| o.text.starts_with("INVITE ") && o.text.contains(&cid))
                .cloned()
            else {
                return;
            };
            let reply = reply_to(&last, 486, "Busy Here", "gw", &[]);
            self.deliver(reply.as_bytes(), last.dst);
        }
    }

    /// A valid gateway reply to a recent downstream request (not to an ACK).
    fn gateway_reply(&mut self) -> Option<String> {
        let candidates: Vec<&Out> = self
            .downstream
            .iter()
            .rev()
            .take(24)
            .filter(|o| !o.text.starts_with("ACK "))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let req = candidates[self.rng.below(candidates.len())].clone();
        let (code, reason) = *self.rng.pick(&[
            (100, "Trying"),
            (180, "Ringing"),
            (183, "Session Progress"),
            (200, "OK"),
            (401, "Unauthorized"),
            (407, "Proxy Authentication Required"),
            (486, "Busy Here"),
            (503, "Service Unavailable"),
            (487, "Request Terminated"),
            (603, "Decline"),
        ]);
        let extra: &[&str] = match code {
            401 => &["WWW-Authenticate: Digest realm=\"gw\", nonce=\"1\""],
            407 => &["Proxy-Authenticate: Digest realm=\"gw\", nonce=\"2\""],
            _ => &[],
        };
        Some(reply_to(&req, code, reason, "gw", extra))
    }

    /// Ends the run: every timer fires, then the table must be empty and every byte back.
    fn finish(mut self) -> Lab {
        assert_eq!(
            self.unparsable_sends, 0,
            "the proxy sent datagrams that do not parse"
        );
        assert!(
            self.max_live >= 20,
            "the fuzz input met few live transactions: at most {}",
            self.max_live
        );
        if std::env::var_os("SIPLAB_FUZZ_DEBUG").is_some() {
            let t = self.lab.table();
            eprintln!(
                "max_live {} created {} rpl_received {} unparsable_sends {} calls {} exhausted {}",
                self.max_live,
                t.stat(Stat::Created),
                t.stat(Stat::RplReceived),
                self.unparsable_sends,
                self.next_call,
                t.stat(Stat::ShmExhausted)
            );
            eprintln!("{:#?}", self.sent_lines);
        }
        // No more input: the longest chain (serial forking through every branch slot at
        // fr_inv_timer each, then wt_timer) ends well within 200 s.
        let from = self.now;
        self.timer.tick_until(from, from + 200_000);
        assert_eq!(self.lab.current(), 0, "transactions left in the table");
        assert_eq!(
            self.lab.region.stats().used,
            self.used_before,
            "shm bytes leaked"
        );
        self.lab
    }
}

/// Every request of the RFC 4475 corpus (the .dat files that are not replies).
fn corpus_requests() -> Vec<Vec<u8>> {
    let dir = crate::testutil::rfc4475_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    files.sort();
    let requests: Vec<Vec<u8>> = files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| !b.starts_with(b"SIP/"))
        .collect();
    assert!(
        requests.len() >= 30,
        "corpus at {} looks incomplete",
        dir.display()
    );
    requests
}

/// The run's seed and length: the test's own, unless a soak run asks for others
/// (`SIPLAB_FUZZ_SEED=n` mixes n into the seed, `SIPLAB_FUZZ_ROUNDS=n` sets the length).
fn soak(seed: u64, rounds: usize) -> (u64, usize) {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = seed
        ^ env("SIPLAB_FUZZ_SEED")
            .unwrap_or(0)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let rounds = env("SIPLAB_FUZZ_ROUNDS").map_or(rounds, |r| r as usize);
    (seed, rounds)
}

/// Counts of what the fuzz input became.
#[derive(Default, Debug)]
struct Tally {
    total: usize,
    routed: usize,
    consumed: usize,
    forwarded: usize,
    unparsed: usize,
    invalid: usize,
    other: usize,
}

impl Tally {
    fn add(&mut self, fed: Fed) {
        self.total += 1;
        match fed {
            Fed::Routed => self.routed += 1,
            Fed::Consumed => self.consumed += 1,
            Fed::Forwarded => self.forwarded += 1,
            Fed::Unparsed => self.unparsed += 1,
            Fed::Invalid => self.invalid += 1,
            Fed::Keepalive | Fed::SlAck => self.other += 1,
        }
    }
}

/// Runs `rounds` mutated requests (corpus requests when `corpus`, else the live calls'
/// INVITE/CANCEL/ACK/BYE/MESSAGE) with valid traffic in between.
fn fuzz_requests(seed: u64, rounds: usize, corpus: bool) -> (Tally, Lab) {
    fuzz_requests_in(seed, rounds, corpus, ROOMY)
}

/// Enough shm that nothing runs out.
const ROOMY: usize = 32 << 20;

/// So little shm that creating transactions and storing replies fail now and then.
const TIGHT: usize = 80 << 10;

fn fuzz_requests_in(seed: u64, rounds: usize, corpus: bool, region: usize) -> (Tally, Lab) {
    let (seed, rounds) = soak(seed, rounds);
    let corpus_msgs = if corpus {
        corpus_requests()
    } else {
        Vec::new()
    };
    let mut run = Run::new(seed, region);
    let mut tally = Tally::default();
    while tally.total < rounds {
        for _ in 0..1 + run.rng.below(2) {
            run.valid_step();
        }
        let pause = run.rng.below(25) as u64;
        run.advance(pause);
        let mut structured = false;
        let input: Vec<u8> = if corpus && run.rng.pct(75) {
            run.rng.pick(&corpus_msgs).clone()
        } else {
            let templates = match run.some_call() {
                Some(call) => call.templates(),
                None => continue,
            };
            let mut text = run.rng.pick(&templates).clone();
            // Structured damage keeps the request parsing but makes it say odd things; on
            // its own half of the time, else followed by byte damage.
            structured = true;
            match run.rng.below(6) {
                0 => text = mutate_cseq(&mut run.rng, &text),
                1 => text = mutate_fields(&mut run.rng, &text),
                2 => {
                    // A request carrying one of OUR branches (looks like our own loop).
                    let ours: Vec<String> = run.branches.iter().cloned().collect();
                    if !ours.is_empty() {
                        let base = ours[run.rng.below(ours.len())].clone();
                        let b = mutate_branch(&mut run.rng, &base, &ours);
                        text = with_branch(&text, &b);
                    }
                }
                _ => structured = false,
            }
            text.into_bytes()
        };
        let mutated = if structured && run.rng.pct(50) {
            input
        } else {
            mutate_bytes(&mut run.rng, &input)
        };
        let src = if run.rng.pct(85) { UAC } else { GW1 };
        let fed = run.deliver(&mutated, addr(src));
        tally.add(fed);
    }
    if std::env::var_os("SIPLAB_FUZZ_DEBUG").is_some() {
        eprintln!("{tally:?}");
    }
    let lab = run.finish();
    (tally, lab)
}

#[test]
fn mutated_corpus_requests_among_live_calls_never_panic_or_leak() {
    let (tally, lab) = fuzz_requests(0x5EED_7A11_0001, 12_000, true);
    assert!(
        tally.routed > tally.total / 5,
        "too few reached the script: {tally:?}"
    );
    assert!(lab.table().stat(Stat::Created) > 1_000, "{tally:?}");
}

#[test]
fn mutated_call_requests_among_live_calls_never_panic_or_leak() {
    let (tally, lab) = fuzz_requests(0x5EED_7A11_0002, 12_000, false);
    assert!(
        tally.routed > tally.total / 5,
        "too few reached the script: {tally:?}"
    );
    assert!(lab.table().stat(Stat::Created) > 1_000, "{tally:?}");
}

/// Runs `rounds` mutated replies to what tm sent (branch, CSeq, status, fields, bytes)
/// on random workers, with valid traffic and timer ticks in between.
fn fuzz_replies(seed: u64, rounds: usize) -> (Tally, Lab) {
    fuzz_replies_in(seed, rounds, ROOMY)
}

fn fuzz_replies_in(seed: u64, rounds: usize, region: usize) -> (Tally, Lab) {
    let (seed, rounds) = soak(seed, rounds);
    let mut run = Run::new(seed, region);
    let mut tally = Tally::default();
    while tally.total < rounds {
        for _ in 0..1 + run.rng.below(2) {
            run.valid_step();
        }
        let pause = run.rng.below(25) as u64;
        run.advance(pause);
        let text = if run.rng.pct(5) && !run.upstream.is_empty() {
            // A reply we sent upstream coming back (its top Via is not ours).
            let i = run.rng.below(run.upstream.len());
            run.upstream[i].text.clone()
        } else {
            match run.gateway_reply() {
                Some(t) => t,
                None => continue,
            }
        };
        let ours: Vec<String> = run.branches.iter().cloned().collect();
        let rng = &mut run.rng;
        let mut text = text;
        let mut changed = false;
        if rng.pct(50)
            && let Some((s, e)) = branch_range(&text)
        {
            let b = mutate_branch(rng, &text[s..e], &ours);
            text = format!("{}{b}{}", &text[..s], &text[e..]);
            changed = true;
        }
        if rng.pct(25) {
            text = mutate_cseq(rng, &text);
            changed = true;
        }
        if rng.pct(20) {
            text = mutate_status(rng, &text);
            changed = true;
        }
        if rng.pct(20) {
            text = mutate_fields(rng, &text);
            changed = true;
        }
        let bytes = if !changed || rng.pct(40) {
            mutate_bytes(rng, text.as_bytes())
        } else {
            text.into_bytes()
        };
        let src = *run.rng.pick(&[GW1, GW2, GW3]);
        let fed = run.deliver(&bytes, addr(src));
        tally.add(fed);
    }
    if std::env::var_os("SIPLAB_FUZZ_DEBUG").is_some() {
        eprintln!("{tally:?}");
    }
    let lab = run.finish();
    (tally, lab)
}

#[test]
fn mutated_replies_to_our_requests_never_panic_or_leak() {
    let (tally, lab) = fuzz_replies(0x5EED_7A11_0003, 12_000);
    assert!(
        tally.consumed > tally.total / 10,
        "too few reached tm: {tally:?}"
    );
    assert!(lab.table().stat(Stat::RplReceived) > 2_000, "{tally:?}");
}

#[test]
fn mutated_replies_with_other_seed_never_panic_or_leak() {
    let (tally, lab) = fuzz_replies(0x5EED_7A11_0004, 12_000);
    assert!(
        tally.consumed > tally.total / 10,
        "too few reached tm: {tally:?}"
    );
    assert!(lab.table().stat(Stat::RplReceived) > 2_000, "{tally:?}");
}

/// The same traffic with shm nearly full: transactions that cannot be created or grown
/// fail their calls, yet nothing panics and every byte comes back.
#[test]
fn mutated_traffic_with_shm_running_out_never_panics_or_leaks() {
    let (requests, lab) = fuzz_requests_in(0x5EED_7A11_0005, 5_000, false, TIGHT);
    assert!(
        lab.table().stat(Stat::ShmExhausted) > 100,
        "shm never ran out: {requests:?}"
    );
    let (replies, lab) = fuzz_replies_in(0x5EED_7A11_0006, 5_000, TIGHT);
    assert!(
        lab.table().stat(Stat::ShmExhausted) > 100,
        "shm never ran out: {replies:?}"
    );
}
