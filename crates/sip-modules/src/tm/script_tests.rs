//! tm through the real compiler and interpreter: cfg text in, datagrams out, with a virtual
//! clock and a heap-backed table shared by several workers and the timer process (spec
//! §2–§6; issue 5 §5 "What must show it", as unit tests).

use sip_script::abi::ReplyDisposition;

use super::lab::{
    GW1, GW2, INVITE, Lab, Out, STATEFUL, UAC, Worker, ack_for, cancel, reply_to, to, to_tag,
};

fn with_defines(defines: &str) -> String {
    format!("{defines}\n{STATEFUL}")
}

/// Sends INVITE (with R-URI user `user`) through `w`; returns (upstream sends, the INVITE
/// as forwarded to GW1).
fn invite(w: &mut Worker, user: &str) -> (Vec<Out>, Out) {
    let text = INVITE.replacen("sip:bob@", &format!("sip:{user}@"), 1);
    w.request(&text, UAC);
    let out = w.take();
    let fwd = to(&out, GW1)
        .first()
        .map(|o| (*o).clone())
        .unwrap_or_else(|| panic!("INVITE not forwarded: {out:?}"));
    (to(&out, UAC).into_iter().cloned().collect(), fwd)
}

fn first_lines(outs: &[&Out]) -> Vec<String> {
    outs.iter().map(|o| o.first_line().to_string()).collect()
}

fn header<'o>(o: &'o Out, name: &str) -> Option<&'o str> {
    o.text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

#[test]
fn t_relay_on_invite_sends_100_and_a_branch_that_encodes_bucket_and_number() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let (up, fwd) = invite(&mut w, "bob");
    assert_eq!(
        first_lines(&up.iter().collect::<Vec<_>>()),
        ["SIP/2.0 100 trying -- your call is important to us"]
    );
    assert!(to_tag(&up[0].text).is_empty(), "100 has no To-tag");
    assert!(header(&up[0], "Server").is_some());
    let via = header(&fwd, "Via").unwrap_or_default();
    let branch = via.split("branch=").nth(1).unwrap_or_default();
    let parts: Vec<&str> = branch
        .strip_prefix("z9hG4bK")
        .unwrap_or_else(|| panic!("no cookie: {via}"))
        .split('.')
        .collect();
    assert_eq!(parts.len(), 3, "{branch}");
    assert!(parts[0].bytes().all(|b| b.is_ascii_hexdigit()) && !parts[0].is_empty());
    assert_eq!(parts[1].len(), 32);
    assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(parts[2], "0");
    assert!(via.starts_with("SIP/2.0/UDP 127.0.0.1:5060;"), "{via}");
    // The received Via is kept under ours, with received/rport filled in.
    let vias: Vec<&str> = fwd.text.lines().filter(|l| l.starts_with("Via:")).collect();
    assert_eq!(vias.len(), 2);
    assert!(vias[1].contains("192.0.2.10:5091") && vias[1].contains("rport=5091"));
}

#[test]
fn retransmission_is_absorbed_and_the_last_reply_re_sent() {
    let lab = Lab::new(STATEFUL);
    let mut w1 = lab.worker();
    let mut w2 = lab.worker();
    let (_, fwd) = invite(&mut w1, "bob");
    w1.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    let relayed = w1.take();
    assert_eq!(first_lines(&to(&relayed, UAC)), ["SIP/2.0 180 Ringing"]);
    // The copy reaches another worker: the 180 again, nothing downstream.
    w2.request(INVITE, UAC);
    let out = w2.take();
    assert!(to(&out, GW1).is_empty(), "{out:?}");
    assert_eq!(first_lines(&to(&out, UAC)), ["SIP/2.0 180 Ringing"]);
    assert_eq!(to(&out, UAC)[0].text, to(&relayed, UAC)[0].text);
}

#[test]
fn relayed_reply_loses_our_via_and_carries_the_onreply_route_header() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let (_, fwd) = invite(&mut w, "bob");
    w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    let out = w.take();
    let up = to(&out, UAC);
    assert_eq!(up.len(), 1);
    let vias: Vec<&str> = up[0]
        .text
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .collect();
    assert_eq!(vias.len(), 1, "{}", up[0].text);
    // The UAC asked for rport: received=<its IP> too (Kamailio's build_req_buf_from_sip_req).
    assert!(vias[0].starts_with(
        "Via: SIP/2.0/UDP 192.0.2.10:5091;received=192.0.2.10;branch=z9hG4bKuac1;rport=5091"
    ));
    assert!(up[0].has_header("X-Onreply: 180"), "{}", up[0].text);
    assert!(w.logs().contains(&"onreply 180 180\n"), "{:?}", w.logs());
}

#[test]
fn negative_final_is_acked_hop_by_hop_relayed_and_its_ack_absorbed() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0);
    let (_, fwd) = invite(&mut w, "bob");
    w.at(100)
        .reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    let out = w.take();
    let down = to(&out, GW1);
    assert_eq!(first_lines(&down), ["ACK sip:bob@example.com SIP/2.0"]);
    assert_eq!(to_tag(&down[0].text), "gw");
    assert_eq!(
        header(down[0], "Via"),
        header(&fwd, "Via"),
        "ACK reuses the branch"
    );
    let up = to(&out, UAC);
    assert_eq!(first_lines(&up), ["SIP/2.0 486 Busy Here"]);
    // Not ACKed yet: retransmitted at T1.
    timer.tick_until(0, 650);
    assert_eq!(
        first_lines(&to(&timer.take(), UAC)),
        ["SIP/2.0 486 Busy Here"]
    );
    // The UAC's ACK ends in the proxy (not forwarded); retransmissions stop.
    w.at(700).request(&ack_for("gw"), UAC);
    assert!(w.take().is_empty(), "ACK to a negative final is absorbed");
    timer.tick_until(650, 4_900);
    assert!(
        timer.take().is_empty(),
        "no 486 retransmission after the ACK"
    );
    timer.tick_until(4_900, 5_300);
    assert_eq!(lab.current(), 0, "deleted after wt_timer");
}

#[test]
fn unacked_negative_final_is_retransmitted_only_during_wt_timer() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let (_, fwd) = invite(&mut w, "bob");
    w.reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    w.take();
    let mut at = Vec::new();
    let mut t = 0;
    while t < 8_000 {
        t += 62;
        timer.tick(t);
        at.extend(timer.take().iter().map(|_| t));
    }
    // +0.5, +1.5, +3.5 s (one tick of resolution), then the wait timer deletes the cell.
    assert_eq!(at.len(), 3, "{at:?}");
    for (got, want) in at.iter().zip([500, 1_500, 3_500]) {
        assert!((want..want + 63).contains(got), "{at:?}");
    }
    assert_eq!(lab.current(), 0);
}

#[test]
fn failure_route_relays_to_a_second_gateway_with_its_header_in_the_new_branch_only() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let (_, fwd) = invite(&mut w, "fo");
    assert!(!fwd.text.contains("X-Failover"));
    w.reply(&reply_to(&fwd, 486, "Busy Here", "gw1", &[]), GW1);
    let out = w.take();
    let second = to(&out, GW2);
    assert_eq!(second.len(), 1, "{out:?}");
    assert!(second[0].has_header("X-Failover: 1"), "{}", second[0].text);
    assert!(header(second[0], "Via").is_some_and(|v| v.ends_with(".1")));
    // The hop-by-hop ACK of the first leg never carries it.
    let acks = to(&out, GW1);
    assert_eq!(first_lines(&acks), ["ACK sip:fo@example.com SIP/2.0"]);
    assert!(!acks[0].text.contains("X-Failover"));
    assert!(to(&out, UAC).is_empty(), "the 486 is not relayed");
    assert!(
        w.logs()
            .contains(&"failure 486 Busy Here ru=sip:fo@example.com\n"),
        "{:?}",
        w.logs()
    );
    let second = second[0].clone();
    w.reply(&reply_to(&second, 180, "Ringing", "gw2", &[]), GW2);
    w.reply(&reply_to(&second, 200, "OK", "gw2", &[]), GW2);
    let out = w.take();
    let up = to(&out, UAC);
    assert_eq!(first_lines(&up), ["SIP/2.0 180 Ringing", "SIP/2.0 200 OK"]);
    assert!(up.iter().all(|o| !o.text.contains("X-Failover")));
}

#[test]
fn gateway_503_becomes_500_service_unavailable_with_a_local_to_tag() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let (_, fwd) = invite(&mut w, "bob");
    w.reply(&reply_to(&fwd, 503, "Service Unavailable", "gw", &[]), GW1);
    let out = w.take();
    let up = to(&out, UAC);
    assert_eq!(first_lines(&up), ["SIP/2.0 500 Service Unavailable"]);
    let tag = to_tag(&up[0].text);
    assert_ne!(tag, "gw");
    assert_eq!(tag.len(), 32 + 1 + 8, "{tag}");
}

#[test]
fn silent_next_hop_gets_retransmissions_capped_at_t2_then_408() {
    let lab = Lab::new(&with_defines("#!define FRT 20000"));
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0);
    invite(&mut w, "bob");
    let mut sent = Vec::new();
    let mut replies = Vec::new();
    let mut t = 0;
    while t < 21_000 {
        t += 62;
        timer.tick(t);
        for o in timer.take() {
            if o.dst == super::lab::addr(GW1) {
                assert!(o.first_line().starts_with("INVITE "));
                sent.push(t);
            } else {
                replies.push((t, o));
            }
        }
    }
    let want = [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500];
    assert_eq!(sent.len(), want.len(), "{sent:?}");
    for (got, want) in sent.iter().zip(want) {
        assert!((want..want + 63).contains(got), "{sent:?}");
    }
    // The local 408, then (not ACKed) its first retransmission T1 later.
    assert_eq!(replies.len(), 2);
    let (at, r) = &replies[0];
    assert!((20_000..20_063).contains(at), "408 at {at}");
    assert_eq!(r.first_line(), "SIP/2.0 408 Request Timeout");
    assert_eq!(to_tag(&r.text).len(), 41, "local to-tag");
    assert_eq!(replies[1].1.text, r.text);
    assert!((at + 500..at + 563).contains(&replies[1].0));
}

#[test]
fn ring_no_answer_sends_cancel_without_reason_and_408_after_fr_inv_timer() {
    let lab = Lab::new(&with_defines("#!define FRINV 3000"));
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0);
    let (_, fwd) = invite(&mut w, "bob");
    w.at(200)
        .reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w.take();
    timer.tick_until(0, 3_150);
    let out = timer.take();
    assert!(out.is_empty(), "nothing before fr_inv_timer: {out:?}");
    timer.tick_until(3_150, 3_300);
    let out = timer.take();
    let down = to(&out, GW1);
    assert_eq!(first_lines(&down), ["CANCEL sip:bob@example.com SIP/2.0"]);
    assert!(!down[0].text.contains("Reason:"), "{}", down[0].text);
    assert_eq!(header(down[0], "Via"), header(&fwd, "Via"));
    let up = to(&out, UAC);
    assert_eq!(first_lines(&up), ["SIP/2.0 408 Request Timeout"]);
    // The gateway's 200 for the CANCEL is absorbed; its late 487 is not relayed.
    let cancel = down[0].clone();
    assert_eq!(
        w.at(3_400)
            .reply(&reply_to(&cancel, 200, "OK", "gw", &[]), GW1),
        ReplyDisposition::Consumed
    );
    w.at(3_410)
        .reply(&reply_to(&fwd, 487, "Request Terminated", "gw", &[]), GW1);
    let out = w.take();
    assert!(to(&out, UAC).is_empty(), "{out:?}");
    assert_eq!(
        first_lines(&to(&out, GW1)),
        ["ACK sip:bob@example.com SIP/2.0"]
    );
}

#[test]
fn cancel_with_reason_answers_200_canceling_first_and_copies_the_reason_downstream() {
    let lab = Lab::new(STATEFUL);
    let mut w1 = lab.worker();
    let mut w2 = lab.worker();
    let (_, fwd) = invite(&mut w1, "bob");
    w1.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w1.take();
    let reason = "Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n";
    w2.request(&cancel(reason), UAC);
    let out = w2.take();
    assert_eq!(first_lines(&to(&out, UAC)), ["SIP/2.0 200 canceling"]);
    let down = to(&out, GW1);
    assert_eq!(first_lines(&down), ["CANCEL sip:bob@example.com SIP/2.0"]);
    assert!(
        down[0].has_header("Reason: Q.850;cause=16;text=\"Normal call clearing\""),
        "{}",
        down[0].text
    );
    assert_eq!(header(down[0], "CSeq"), Some("1 CANCEL"));
    // The downstream 487 is relayed to the UAC.
    w1.reply(&reply_to(&fwd, 487, "Request Terminated", "gw", &[]), GW1);
    let out = w1.take();
    assert_eq!(
        first_lines(&to(&out, UAC)),
        ["SIP/2.0 487 Request Terminated"]
    );
}

#[test]
fn cancel_without_reason_sends_none() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let (_, fwd) = invite(&mut w, "bob");
    w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w.take();
    w.request(&cancel(""), UAC);
    let out = w.take();
    let down = to(&out, GW1);
    assert_eq!(down.len(), 1);
    assert!(!down[0].text.contains("Reason"));
}

#[test]
fn two_workers_same_invite_make_one_transaction() {
    let lab = Lab::new(STATEFUL);
    let mut w1 = lab.worker();
    let mut w2 = lab.worker();
    w1.request(INVITE, UAC);
    w2.request(INVITE, UAC);
    let (o1, o2) = (w1.take(), w2.take());
    assert_eq!(to(&o1, GW1).len() + to(&o2, GW1).len(), 1);
    assert_eq!(lab.table().stat(super::table::Stat::Created), 1);
    // The copy re-sends the 100 the first worker sent.
    assert_eq!(
        first_lines(&to(&o2, UAC)),
        ["SIP/2.0 100 trying -- your call is important to us"]
    );
}

/// A cfg that relays a CANCEL with plain `t_relay()` (Kamailio E15b's `slowc`).
const RELAY_ANY_CANCEL: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
request_route {
    $du = "sip:10.0.0.20:5070";
    t_relay();
    exit;
}
"#;

#[test]
fn cancel_before_the_invite_transaction_makes_the_invite_born_canceled() {
    let lab = Lab::new(RELAY_ANY_CANCEL);
    let mut w1 = lab.worker();
    let mut w2 = lab.worker();
    // The CANCEL wins the race: no INVITE yet, so it is relayed statefully.
    w2.request(&cancel(""), UAC);
    let out = w2.take();
    assert_eq!(
        first_lines(&to(&out, GW1)),
        ["CANCEL sip:bob@example.com SIP/2.0"]
    );
    w1.request(INVITE, UAC);
    let out = w1.take();
    assert!(to(&out, GW1).is_empty(), "a canceled INVITE is not relayed");
    assert_eq!(
        first_lines(&to(&out, UAC)),
        ["SIP/2.0 487 Transaction canceled (487/TM)"]
    );
}

#[test]
fn tm_stats_count_what_happened() {
    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0);
    let (_, fwd) = invite(&mut w, "bob");
    w.at(10)
        .reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w.at(20).reply(&reply_to(&fwd, 200, "OK", "gw", &[]), GW1);
    let stats = super::rpc_stats(&mut w.rt, &serde_json::Value::Null)
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(stats["current"], 1);
    assert_eq!(stats["created"], 1);
    assert_eq!(stats["rpl_received"], 2);
    assert_eq!(stats["rpl_generated"], 1, "the 100");
    assert_eq!(stats["rpl_sent"], 3, "100, 180, 200");
    assert_eq!(stats["2xx"], 1);
    timer.tick_until(0, 5_100);
    let stats = super::rpc_stats(&mut timer.rt, &serde_json::Value::Null)
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(stats["current"], 0);
    assert_eq!(stats["freed"], 1);
}

#[test]
fn timer_process_branch_uses_the_advertised_via_sent_by() {
    let lab = Lab::new(&with_defines("#!define FRT 2000"));
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let text = INVITE.replacen("sip:bob@", "sip:fo@", 1);
    w.at(0)
        .request_on(&text, UAC, Some(("proxy.example.net", 5080)));
    let fwd = to(&w.take(), GW1)[0].clone();
    assert!(
        header(&fwd, "Via").is_some_and(|v| v.starts_with("SIP/2.0/UDP proxy.example.net:5080;"))
    );
    // fr_timer fires in the timer process; its failure_route relays to GW2.
    timer.tick_until(0, 2_100);
    let out = timer.take();
    let second = to(&out, GW2);
    assert_eq!(second.len(), 1, "{out:?}");
    let via = header(second[0], "Via").unwrap_or_default();
    assert!(
        via.starts_with("SIP/2.0/UDP proxy.example.net:5080;"),
        "{via}"
    );
}

#[test]
fn opensips_dialect_answers_100_giving_it_a_try_when_the_transaction_is_created() {
    let cfg = r#"
dialect=opensips
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
request_route {
    t_newtran();
    $du = "sip:10.0.0.20:5070";
    t_relay();
    exit;
}
"#;
    let lab = Lab::new(cfg);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let out = w.take();
    assert_eq!(
        first_lines(&to(&out, UAC)),
        ["SIP/2.0 100 Giving it a try"],
        "one 100, at t_newtran"
    );
    assert_eq!(to(&out, GW1).len(), 1);
}

#[test]
fn kamailio_t_newtran_alone_sends_no_100() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
request_route {
    t_newtran();
    t_reply("404", "Not Here");
    exit;
}
"#;
    let lab = Lab::new(cfg);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let out = w.take();
    assert_eq!(first_lines(&to(&out, UAC)), ["SIP/2.0 404 Not Here"]);
}
