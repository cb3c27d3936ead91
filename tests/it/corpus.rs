//! Every RFC 4475 torture message (shared/corpus/rfc4475) sent to a running siplab gets the
//! outcome its MANIFEST.tsv line states, and a call still succeeds afterwards.
//!
//! The cfg sets `$du` to a gateway socket the test owns, so whatever the R-URI or Route says,
//! a forwarded request can only land there; `force_rport()` sends replies back to the sending
//! socket. The corpus responses' top Via is not siplab, so they must not be relayed anywhere.

use super::harness::{Proxy, ProxyCfg, shared_dir};
use super::process::tail;
use super::udp::{Peer, first_line, header, raw_call, status_code};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// sanity's checks without `digest` (2048): judging credentials is an authenticating
/// element's business (regaut01: "a proxy forwards it"), and Kamailio's digest check drops an
/// unknown scheme silently.
const CORPUS_ROUTE: &str = r#"modparam("sanity", "default_checks", 999)
request_route {
    force_rport();
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check()) { exit; }
    $du = "sip:127.0.0.1:GWPORT";
    if (!forward()) sl_reply_error();
}
"#;

/// What siplab must do with one corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The request reaches the gateway (once), no reply.
    Forward,
    /// This reply comes back, nothing reaches the gateway.
    Reply(u16),
    /// Tolerant: the reply, or a forward.
    ReplyOrForward(u16),
    /// The reply, or silence (discarding is allowed over UDP).
    ReplyOrDrop(u16),
    /// A response that is not relayed to anything.
    Drop,
}

use Outcome::*;

/// File → outcome, with the MANIFEST line's reasoning.
const TABLE: &[(&str, Outcome, &str)] = &[
    (
        "wsinv.dat",
        Forward,
        "valid tortuous INVITE: parse and forward, Max-Forwards 68->67",
    ),
    (
        "intmeth.dat",
        Forward,
        "valid unknown method: an ordinary non-INVITE, forward",
    ),
    ("esc01.dat", Forward, "legal %HH escapes: forward unchanged"),
    ("escnull.dat", Forward, "%00 escapes in REGISTER: forward"),
    (
        "esc02.dat",
        Forward,
        "RE%47IST%45R is an unknown method: forward",
    ),
    (
        "lwsdisp.dat",
        Forward,
        "display name against '<': accept and forward",
    ),
    (
        "longreq.dat",
        Forward,
        "very long values: forward without truncation",
    ),
    (
        "dblreq.dat",
        Forward,
        "REGISTER plus stray INVITE bytes: forward only the REGISTER",
    ),
    ("semiuri.dat", Forward, "';' inside the R-URI user: forward"),
    ("transports.dat", Forward, "unknown Via transports: forward"),
    (
        "mpart01.dat",
        Forward,
        "binary multipart body: forward byte-exact",
    ),
    (
        "unreason.dat",
        Drop,
        "200 with odd reason, no transaction: stray, drop",
    ),
    (
        "noreason.dat",
        Drop,
        "100 with empty reason, no transaction: stray, drop",
    ),
    (
        "badinv01.dat",
        Reply(400),
        "extraneous ';' ',' in Via/Contact: 400",
    ),
    (
        "clerr.dat",
        Reply(400),
        "Content-Length beyond the datagram over UDP: 400",
    ),
    (
        "ncl.dat",
        ReplyOrDrop(400),
        "negative Content-Length: 400 or discard over UDP",
    ),
    ("scalar02.dat", Reply(400), "CSeq > 2^32-1: 400"),
    (
        "scalarlg.dat",
        Drop,
        "503 with overlarge values: discard, never forward",
    ),
    (
        "quotbal.dat",
        Reply(400),
        "unterminated quoted display name: 400",
    ),
    ("ltgtruri.dat", Reply(400), "R-URI in <>: 400"),
    ("lwsruri.dat", Reply(400), "LWS inside the R-URI: 400"),
    (
        "lwsstart.dat",
        Reply(400),
        "several SP between request-line elements: 400",
    ),
    (
        "trws.dat",
        ReplyOrForward(400),
        "trailing SP after SIP/2.0: 400, a tolerant parser forwards",
    ),
    (
        "escruri.dat",
        ReplyOrForward(400),
        "escaped header in R-URI: 400 or forward (never act on it)",
    ),
    (
        "baddate.dat",
        Forward,
        "non-GMT Date: a proxy need not parse Date, forward",
    ),
    (
        "regbadct.dat",
        Forward,
        "ambiguous Contact with '?': proxy forwards unchanged",
    ),
    (
        "badaspec.dat",
        ReplyOrForward(400),
        "spaces inside <>: 400 reasonable, a liberal proxy forwards",
    ),
    (
        "baddn.dat",
        ReplyOrForward(400),
        "unquoted non-token display names: 400 or forward",
    ),
    (
        "badvers.dat",
        Reply(505),
        "SIP/7.0: 505 Version Not Supported",
    ),
    (
        "mismatch01.dat",
        Reply(400),
        "CSeq method differs from request method: 400",
    ),
    (
        "mismatch02.dat",
        Reply(400),
        "NEWMETHOD with CSeq INVITE: 400",
    ),
    (
        "bigcode.dat",
        Drop,
        "status code 4294967301: discard silently",
    ),
    (
        "badbranch.dat",
        Forward,
        "branch is only the magic cookie: forward",
    ),
    (
        "insuf.dat",
        Reply(400),
        "missing Call-ID, From, To, Max-Forwards: 400",
    ),
    (
        "unkscm.dat",
        Reply(416),
        "unknown R-URI scheme a proxy cannot route: 416",
    ),
    (
        "novelsc.dat",
        Reply(416),
        "non-SIP R-URI scheme a proxy cannot route: 416",
    ),
    (
        "unksm2.dat",
        Forward,
        "odd schemes only in To/From/Contact: route normally",
    ),
    (
        "bext01.dat",
        Reply(420),
        "unknown Proxy-Require tags: 420 (sanity: Bad Proxy Require Extension)",
    ),
    (
        "invut.dat",
        Forward,
        "unknown body type: a proxy forwards it",
    ),
    (
        "regaut01.dat",
        Forward,
        "unknown Authorization scheme: a proxy forwards it",
    ),
    (
        "multi01.dat",
        Reply(400),
        "two CSeq/Call-ID/To/From/Max-Forwards: 400",
    ),
    (
        "mcl01.dat",
        Reply(400),
        "two conflicting Content-Length: 400 over UDP",
    ),
    (
        "bcast.dat",
        Drop,
        "200 whose second Via is broadcast: never send there, drop",
    ),
    (
        "zeromf.dat",
        Reply(483),
        "Max-Forwards 0: 483 Too Many Hops",
    ),
    (
        "cparam01.dat",
        Forward,
        "Contact header param outside <>: forward unchanged",
    ),
    (
        "cparam02.dat",
        Forward,
        "Contact URI param inside <>: forward unchanged",
    ),
    (
        "regescrt.dat",
        Forward,
        "escaped Route in Contact URI: forward unchanged",
    ),
    (
        "sdp01.dat",
        Forward,
        "Accept lists only an unknown type: a proxy forwards",
    ),
    (
        "inv2543.dat",
        Forward,
        "RFC 2543 INVITE without branch/Max-Forwards/CL: forward",
    ),
    (
        "test.dat",
        ReplyOrDrop(400),
        "no SIP-Version, header without colon: 400 or drop",
    ),
];

/// What was seen after sending one file.
#[derive(Debug, Default)]
struct Seen {
    replies: Vec<Vec<u8>>,
    forwarded: Vec<Vec<u8>>,
}

impl Seen {
    fn describe(&self) -> String {
        let r: Vec<String> = self.replies.iter().map(|d| first_line(d)).collect();
        let f: Vec<String> = self.forwarded.iter().map(|d| first_line(d)).collect();
        format!("replies {r:?}, forwarded to gateway {f:?}")
    }
}

/// Waits until something arrives at either socket (or `limit`), then a little longer for more.
fn observe(client: &Peer, gateway: &Peer, limit: Duration) -> Seen {
    let mut seen = Seen::default();
    let deadline = Instant::now() + limit;
    let slice = Duration::from_millis(20);
    while Instant::now() < deadline && seen.replies.is_empty() && seen.forwarded.is_empty() {
        if let Some((d, _)) = client.recv_within(slice) {
            seen.replies.push(d);
        }
        if let Some((d, _)) = gateway.recv_within(slice) {
            seen.forwarded.push(d);
        }
    }
    // Anything that follows the first datagram (a duplicate, a reply *and* a forward).
    seen.replies
        .extend(client.drain(Duration::from_millis(200)));
    seen.forwarded
        .extend(gateway.drain(Duration::from_millis(50)));
    seen
}

fn method_of(datagram: &[u8]) -> &[u8] {
    datagram.split(|&b| b == b' ').next().unwrap_or(b"")
}

/// The checks a forwarded copy must pass: same method, siplab's Via on top.
fn check_forward(file: &str, sent: &[u8], fwd: &[u8], proxy: SocketAddr) -> Result<(), String> {
    if method_of(sent) != method_of(fwd) {
        return Err(format!("forwarded `{}`", first_line(fwd)));
    }
    let via = header(fwd, "Via").unwrap_or("");
    if !via.contains(&format!("127.0.0.1:{}", proxy.port())) {
        return Err(format!(
            "top Via of the forwarded copy is not siplab's: `{via}`"
        ));
    }
    match file {
        "dblreq.dat" if fwd.windows(7).any(|w| w == b"INVITE ") => {
            Err("the trailing INVITE bytes were forwarded".into())
        }
        "wsinv.dat" if header(fwd, "Max-Forwards") != Some("67") => Err(format!(
            "Max-Forwards should be 67, is {:?}",
            header(fwd, "Max-Forwards")
        )),
        "mpart01.dat" => {
            let body = |d: &[u8]| {
                d.windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|i| d[i + 4..].to_vec())
            };
            if body(sent) == body(fwd) {
                Ok(())
            } else {
                Err("the multipart body changed".into())
            }
        }
        _ => Ok(()),
    }
}

fn judge(
    file: &str,
    want: Outcome,
    sent: &[u8],
    seen: &Seen,
    proxy: SocketAddr,
) -> Result<(), String> {
    let codes: Vec<Option<u16>> = seen.replies.iter().map(|d| status_code(d)).collect();
    let forwarded_once = seen.replies.is_empty() && seen.forwarded.len() == 1;
    let replied = |code: u16| seen.forwarded.is_empty() && codes == [Some(code)];
    let silent = seen.replies.is_empty() && seen.forwarded.is_empty();
    let ok = match want {
        Forward => forwarded_once,
        Reply(code) => replied(code),
        ReplyOrForward(code) => replied(code) || forwarded_once,
        ReplyOrDrop(code) => replied(code) || silent,
        Drop => silent,
    };
    if !ok {
        return Err(format!("want {want:?}, saw {}", seen.describe()));
    }
    if forwarded_once {
        check_forward(file, sent, &seen.forwarded[0], proxy)?;
    }
    Ok(())
}

#[test]
fn every_rfc4475_message_gets_its_manifest_outcome_and_calls_still_work() {
    let dir = shared_dir().join("corpus").join("rfc4475");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("cannot read {}/MANIFEST.tsv: {e}", dir.display()));
    // The table covers the manifest exactly, so a new corpus file cannot go unchecked.
    let listed: Vec<&str> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    let mut in_table: Vec<&str> = TABLE.iter().map(|(f, _, _)| *f).collect();
    let mut in_manifest = listed.clone();
    in_table.sort_unstable();
    in_manifest.sort_unstable();
    assert_eq!(
        in_table, in_manifest,
        "test table and MANIFEST.tsv list different files"
    );

    let gateway = Peer::bind();
    let mut cfg = ProxyCfg::stateless(2, gateway.addr.port());
    cfg.route = CORPUS_ROUTE.to_string();
    let proxy = match Proxy::start("corpus", cfg) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let workers_before: BTreeMap<i64, i32> =
        proxy.workers().iter().map(|w| (w.rank, w.pid)).collect();
    let fwd_replies_before = proxy.stat("core:fwd_replies");

    let mut failures = Vec::new();
    for (file, want, why) in TABLE {
        let data = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
        let client = Peer::bind();
        gateway.drain(Duration::from_millis(1));
        client.send_to(&data, proxy.addr());
        // Silence is only judged after the full window; arrivals end the wait early.
        let seen = observe(&client, &gateway, Duration::from_millis(1500));
        if let Err(e) = judge(file, *want, &data, &seen, proxy.addr()) {
            failures.push(format!("{file} ({why}): {e}"));
        }
    }
    // The checks after the corpus run even when some files failed, so one report shows all.
    let fwd_replies_after = proxy.stat("core:fwd_replies");
    if fwd_replies_after != fwd_replies_before {
        failures.push(format!(
            "core:fwd_replies went {fwd_replies_before} -> {fwd_replies_after}: a corpus response was relayed"
        ));
    }
    let workers_after: BTreeMap<i64, i32> =
        proxy.workers().iter().map(|w| (w.rank, w.pid)).collect();
    if workers_before != workers_after {
        failures.push(format!(
            "a worker died on the corpus: rank->pid {workers_before:?} -> {workers_after:?}"
        ));
    }
    let client = Peer::bind();
    gateway.drain(Duration::from_millis(1));
    if let Err(e) = raw_call(&client, &gateway, proxy.addr(), "after-corpus-1") {
        failures.push(format!("call after the corpus failed: {e}"));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}\n--- siplab log tail\n{}",
        failures.len(),
        failures.join("\n"),
        tail(&proxy.log_text(), 40)
    );
}
