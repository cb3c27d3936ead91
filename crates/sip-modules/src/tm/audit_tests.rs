//! Spec rules an audit found untested or wrong (issue 5): timers set before the
//! transaction exists, the context of onreply/failure routes, `t_relay(host, port)` on ACK
//! and CANCEL, ACK to a local 2xx, `t_check_trans` on replies, `t_is_set`,
//! `t_check_status`/`$T_reply_code` in request route, `t_release`.

use super::lab::{GW1, GW2, INVITE, Lab, Out, UAC, Worker, ack_for, reply_to, to};

fn first_lines(outs: &[&Out]) -> Vec<String> {
    outs.iter().map(|o| o.first_line().to_string()).collect()
}

/// [`INVITE`] turned into a MESSAGE for `user`.
fn message(user: &str) -> String {
    INVITE
        .replacen("INVITE sip:bob@", &format!("MESSAGE sip:{user}@"), 1)
        .replacen("CSeq: 1 INVITE", "CSeq: 1 MESSAGE", 1)
}

/// Ticks `timer` from `from` to `to` (62 ms steps); returns (time, datagram) of every send.
fn run_timer(timer: &mut Worker, from: u64, to: u64) -> Vec<(u64, Out)> {
    let mut sent = Vec::new();
    let mut t = from;
    while t < to {
        t = (t + 62).min(to);
        timer.tick(t);
        sent.extend(timer.take().into_iter().map(|o| (t, o)));
    }
    sent
}

const TIMERS: &str = r#"
loadmodule "tm.so"
request_route {
    if ($rU == "short") {
        t_set_fr(0, 2000);
    }
    if ($rU == "retr") {
        t_set_retr(1000, 1000);
    }
    if ($rU == "reset") {
        t_set_fr(0, 2000);
        t_reset_fr();
    }
    if ($rU == "inv") {
        t_set_fr(3000);
    }
    $du = "sip:10.0.0.20:5070";
    t_relay();
}
"#;

#[test]
fn t_set_fr_before_t_relay_applies_to_the_new_transaction() {
    let lab = Lab::new(TIMERS);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0).request(&message("short"), UAC);
    w.take();
    let sent = run_timer(&mut timer, 0, 2_600);
    let up: Vec<_> = sent
        .iter()
        .filter(|(_, o)| o.dst == super::lab::addr(UAC))
        .collect();
    assert_eq!(up.len(), 1, "{sent:?}");
    let (at, r) = up[0];
    assert_eq!(r.first_line(), "SIP/2.0 408 Request Timeout");
    assert!((2_000..2_063).contains(at), "408 at {at}");
}

#[test]
fn t_reset_fr_before_t_relay_drops_the_earlier_t_set_fr() {
    let lab = Lab::new(TIMERS);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0).request(&message("reset"), UAC);
    w.take();
    let sent = run_timer(&mut timer, 0, 5_000);
    assert!(
        sent.iter().all(|(_, o)| o.dst != super::lab::addr(UAC)),
        "fr_timer back to 30 s: {sent:?}"
    );
}

#[test]
fn t_set_retr_before_t_relay_sets_the_retransmission_intervals() {
    let lab = Lab::new(TIMERS);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0).request(&message("retr"), UAC);
    w.take();
    let at: Vec<u64> = run_timer(&mut timer, 0, 3_200)
        .into_iter()
        .filter(|(_, o)| o.dst == super::lab::addr(GW1))
        .map(|(t, _)| t)
        .collect();
    // T1 = T2 = 1 s: every second instead of 0.5, 1.5, 3.5 s.
    assert_eq!(at.len(), 3, "{at:?}");
    for (got, want) in at.iter().zip([1_000, 2_000, 3_000]) {
        assert!((want..want + 63).contains(got), "{at:?}");
    }
}

#[test]
fn t_set_fr_inv_before_t_relay_applies_after_the_provisional() {
    let lab = Lab::new(TIMERS);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let text = INVITE.replacen("sip:bob@", "sip:inv@", 1);
    w.at(0).request(&text, UAC);
    let out = w.take();
    let fwd = to(&out, GW1)[0].clone();
    w.at(100)
        .reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w.take();
    let sent = run_timer(&mut timer, 0, 3_400);
    let up: Vec<_> = sent
        .iter()
        .filter(|(_, o)| o.dst == super::lab::addr(UAC))
        .collect();
    assert_eq!(up.len(), 1, "{sent:?}");
    assert_eq!(up[0].1.first_line(), "SIP/2.0 408 Request Timeout");
    assert!((3_100..3_163).contains(&up[0].0), "408 at {}", up[0].0);
}

/// `t_relay(host, port)` for every method; the 2xx ACK goes to a different host so the
/// test sees which form routed it.
const HOST_PORT: &str = r#"
loadmodule "tm.so"
loadmodule "textops.so"
request_route {
    if (is_method("ACK")) {
        t_relay("10.0.0.21", 5070);
        exit;
    }
    t_relay("10.0.0.20", 5070);
}
"#;

/// The UAC's ACK for a 2xx with to-tag `tag` (a new branch, sent to the Contact).
fn ack_2xx(tag: &str) -> String {
    format!(
        "ACK sip:bob@10.0.0.20:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1ack2xx;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>;tag={tag}\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 ACK\r\n\
Content-Length: 0\r\n\
\r\n"
    )
}

#[test]
fn t_relay_host_port_absorbs_the_ack_to_a_negative_final() {
    let lab = Lab::new(HOST_PORT);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let out = w.take();
    let fwd = to(&out, GW1)[0].clone();
    w.reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    assert_eq!(first_lines(&to(&w.take(), UAC)), ["SIP/2.0 486 Busy Here"]);
    w.request(&ack_for("gw"), UAC);
    let out = w.take();
    assert!(out.is_empty(), "non-2xx ACK absorbed: {out:?}");
    assert_eq!(lab.current(), 1, "no transaction created for the ACK");
}

#[test]
fn t_relay_host_port_forwards_a_2xx_ack_statelessly_to_host_port() {
    let lab = Lab::new(HOST_PORT);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let out = w.take();
    let fwd = to(&out, GW1)[0].clone();
    w.reply(&reply_to(&fwd, 200, "OK", "gw", &[]), GW1);
    assert_eq!(first_lines(&to(&w.take(), UAC)), ["SIP/2.0 200 OK"]);
    let before = lab.table().stat(super::table::Stat::Created);
    w.request(&ack_2xx("gw"), UAC);
    let out = w.take();
    let down = to(&out, GW2);
    assert_eq!(
        first_lines(&down),
        ["ACK sip:bob@10.0.0.20:5070 SIP/2.0"],
        "{out:?}"
    );
    assert!(to(&out, UAC).is_empty(), "the 200 is not re-sent: {out:?}");
    assert_eq!(lab.table().stat(super::table::Stat::Created), before);
}

#[test]
fn t_relay_host_port_on_a_cancel_cancels_the_invite_branches() {
    let lab = Lab::new(HOST_PORT);
    let mut w1 = lab.worker();
    let mut w2 = lab.worker();
    w1.request(INVITE, UAC);
    let fwd = to(&w1.take(), GW1)[0].clone();
    w1.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w1.take();
    w2.request(&super::lab::cancel(""), UAC);
    let out = w2.take();
    assert_eq!(first_lines(&to(&out, UAC)), ["SIP/2.0 200 canceling"]);
    let down = to(&out, GW1);
    assert_eq!(first_lines(&down), ["CANCEL sip:bob@example.com SIP/2.0"]);
    let via = |o: &Out| {
        o.text
            .lines()
            .find(|l| l.starts_with("Via:"))
            .map(str::to_string)
    };
    assert_eq!(
        via(down[0]),
        via(&fwd),
        "the CANCEL reuses the INVITE's branch"
    );
}

/// Flags and AVPs across request_route, onreply_route and failure_route.
const CONTEXT: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "pv.so"
loadmodule "xlog.so"
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 2000)
request_route {
    setflag(3);
    $avp(who) = "req";
    setbflag(2);
    t_on_reply("R");
    t_on_failure("F");
    $du = "sip:10.0.0.20:5070";
    t_relay();
}
onreply_route[R] {
    xlog("L_INFO", "reply $rs avp=$avp(who)\n");
    if (isflagset(3)) {
        xlog("L_INFO", "reply $rs flag3\n");
    }
    if (isbflagset(2)) {
        xlog("L_INFO", "reply $rs bflag2\n");
    }
    $avp(seen) = $rs;
    setflag(4);
}
failure_route[F] {
    xlog("L_INFO", "failure $T_reply_code avp=$avp(who) seen=$avp(seen)\n");
    if (isflagset(3)) {
        xlog("L_INFO", "failure flag3\n");
    }
    if (isflagset(4)) {
        xlog("L_INFO", "failure flag4\n");
    }
    if (isflagset(6)) {
        xlog("L_INFO", "failure again leg=$avp(leg)\n");
        exit;
    }
    setflag(6);
    $avp(leg) = 2;
    t_on_failure("F");
    $du = "sip:10.0.0.21:5070";
    t_relay();
}
"#;

#[test]
fn onreply_route_runs_with_the_transaction_avps_and_flags_and_saves_its_changes() {
    let lab = Lab::new(CONTEXT);
    let mut w1 = lab.worker();
    let mut w2 = lab.worker();
    w1.request(INVITE, UAC);
    let fwd = to(&w1.take(), GW1)[0].clone();
    // Another worker gets the replies: everything comes from the transaction.
    w2.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    let logs = w2.logs();
    for l in [
        "reply 180 avp=req\n",
        "reply 180 flag3\n",
        "reply 180 bflag2\n",
    ] {
        assert!(logs.contains(&l), "{l:?} not in {logs:?}");
    }
    w2.reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    let logs = w2.logs();
    assert!(
        logs.contains(&"failure 486 avp=req seen=486\n"),
        "AVP set in onreply_route reaches failure_route: {logs:?}"
    );
    assert!(
        logs.contains(&"failure flag3\n") && logs.contains(&"failure flag4\n"),
        "{logs:?}"
    );
}

#[test]
fn failure_route_in_a_worker_sees_request_flags_and_saves_its_own() {
    let lab = Lab::new(CONTEXT);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    w.reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    let out = w.take();
    let second = to(&out, GW2)[0].clone();
    assert!(w.logs().contains(&"failure flag3\n"), "{:?}", w.logs());
    let mut w2 = lab.worker();
    w2.reply(&reply_to(&second, 486, "Busy Here", "gw2", &[]), GW2);
    let logs = w2.logs();
    assert!(
        logs.contains(&"failure again leg=2\n"),
        "flag 6 and $avp(leg) set in the first failure_route are kept: {logs:?}"
    );
}

#[test]
fn failure_route_in_the_timer_process_sees_request_flags_and_avps() {
    let lab = Lab::new(CONTEXT);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0).request(INVITE, UAC);
    w.take();
    run_timer(&mut timer, 0, 2_100);
    let logs = timer.logs();
    assert!(
        logs.contains(&"failure 408 avp=req seen=<null>\n"),
        "{logs:?}"
    );
    assert!(logs.contains(&"failure flag3\n"), "{logs:?}");
    assert!(!logs.contains(&"failure flag4\n"), "{logs:?}");
    // Its flag and AVP are saved: the next leg's timeout runs failure_route again with them.
    run_timer(&mut timer, 2_100, 4_300);
    assert!(
        timer.logs().contains(&"failure again leg=2\n"),
        "{:?}",
        timer.logs()
    );
}

/// INVITEs answered locally with `t_reply(200)`; the ACK goes through `t_check_trans` (user
/// `check`) or straight to `t_relay` (any other user).
const LOCAL_2XX: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "textops.so"
loadmodule "pv.so"
loadmodule "xlog.so"
request_route {
    if (is_method("ACK")) {
        if ($fU == "check") {
            if (t_check_trans()) {
                xlog("L_INFO", "ACK continues\n");
            }
            exit;
        }
        t_relay("10.0.0.20", 5070);
        exit;
    }
    t_newtran();
    t_reply(200, "OK");
}
"#;

/// Runs the local-2xx call for a From user; returns (200s retransmitted before the ACK,
/// what the ACK caused, 200s retransmitted after it).
fn local_2xx_call(from_user: &str) -> (usize, Vec<Out>, usize, Vec<String>) {
    let lab = Lab::new(LOCAL_2XX);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let invite = INVITE.replacen("sip:alice@", &format!("sip:{from_user}@"), 1);
    w.at(0).request(&invite, UAC);
    let out = w.take();
    let ok = to(&out, UAC)
        .into_iter()
        .find(|o| o.first_line() == "SIP/2.0 200 OK")
        .unwrap_or_else(|| panic!("no local 200: {out:?}"))
        .clone();
    let before = run_timer(&mut timer, 0, 700).len();
    let ack = ack_2xx(&super::lab::to_tag(&ok.text)).replacen(
        "sip:alice@",
        &format!("sip:{from_user}@"),
        1,
    );
    w.at(700).request(&ack, UAC);
    let caused = w.take();
    let after = run_timer(&mut timer, 700, 4_000).len();
    (
        before,
        caused,
        after,
        w.logs().iter().map(|l| l.to_string()).collect(),
    )
}

#[test]
fn ack_to_a_local_2xx_ends_the_script_in_t_check_trans_and_stops_the_retransmission() {
    let (before, caused, after, logs) = local_2xx_call("check");
    assert_eq!(before, 1, "the local 200 is retransmitted until ACK");
    assert!(caused.is_empty(), "{caused:?}");
    assert!(
        !logs.iter().any(|l| l == "ACK continues\n"),
        "t_check_trans returned 0: {logs:?}"
    );
    assert_eq!(after, 0, "no 200 retransmission after the ACK");
}

#[test]
fn ack_to_a_local_2xx_is_absorbed_by_t_relay() {
    let (before, caused, after, _) = local_2xx_call("alice");
    assert_eq!(before, 1);
    assert!(
        caused.is_empty(),
        "not forwarded, 200 not re-sent: {caused:?}"
    );
    assert_eq!(after, 0);
}

/// `t_check_trans` on replies: in the core reply_route and in onreply_route.
const CHECK_REPLY: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "xlog.so"
reply_route {
    if (t_check_trans()) {
        xlog("L_INFO", "core $rs found\n");
    } else {
        xlog("L_INFO", "core $rs unknown\n");
    }
}
request_route {
    t_on_reply("R");
    $du = "sip:10.0.0.20:5070";
    t_relay();
}
onreply_route[R] {
    if (t_check_trans()) {
        xlog("L_INFO", "onreply $rs found\n");
    }
}
"#;

#[test]
fn t_check_trans_on_a_reply_looks_up_its_transaction_in_reply_route_and_onreply_route() {
    let lab = Lab::new(CHECK_REPLY);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    let logs = w.logs();
    assert!(logs.contains(&"core 180 found\n"), "{logs:?}");
    assert!(logs.contains(&"onreply 180 found\n"), "{logs:?}");
    // A reply whose branch is not ours (another call): no transaction.
    let stray = reply_to(&fwd, 200, "OK", "gw", &[])
        .replacen("Call-ID: call-1@", "Call-ID: other@", 1)
        .replacen(".0\r\n", ".7\r\n", 1);
    assert_eq!(
        w.reply(&stray, GW1),
        sip_script::abi::ReplyDisposition::Forward
    );
    assert!(w.logs().contains(&"core 200 unknown\n"), "{:?}", w.logs());
}

/// The stock ACK idiom; a log line shows whether the script went on after t_check_trans.
const ACK_IDIOM: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "textops.so"
loadmodule "pv.so"
loadmodule "xlog.so"
request_route {
    if (is_method("ACK")) {
        if (t_check_trans()) {
            xlog("L_INFO", "ACK went on\n");
            t_relay();
        }
        exit;
    }
    $du = "sip:10.0.0.20:5070";
    t_relay();
}
"#;

/// A 486 call whose ACK goes through [`ACK_IDIOM`]; returns the logs and what the ACK
/// caused, and the 486 retransmissions after it.
fn ack_idiom(dialect: &str) -> (Vec<String>, Vec<Out>, usize) {
    let lab = Lab::new(&format!("{dialect}\n{ACK_IDIOM}"));
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.at(0).request(INVITE, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    w.at(10)
        .reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    w.take();
    w.at(100).request(&ack_for("gw"), UAC);
    let caused = w.take();
    let later = run_timer(&mut timer, 0, 4_000).len();
    let logs = w.logs().iter().map(|l| l.to_string()).collect();
    (logs, caused, later)
}

#[test]
fn t_check_trans_on_a_hop_by_hop_ack_exits_under_kamailio_and_goes_on_under_opensips() {
    let (logs, caused, later) = ack_idiom("");
    assert!(!logs.iter().any(|l| l == "ACK went on\n"), "{logs:?}");
    assert!(caused.is_empty() && later == 0, "{caused:?} {later}");
    let (logs, caused, later) = ack_idiom("dialect=\"opensips\"");
    assert!(logs.iter().any(|l| l == "ACK went on\n"), "{logs:?}");
    assert!(caused.is_empty(), "t_relay absorbs it too: {caused:?}");
    assert_eq!(later, 0, "the 486 retransmission stopped");
}

/// `t_is_set` before and after the transaction exists, `$T_reply_code`/`t_check_status`
/// in request_route and branch_route.
const IS_SET: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "pv.so"
loadmodule "xlog.so"
request_route {
    xlog("L_INFO", "code none $T_reply_code\n");
    if (t_check_status("0")) {
        xlog("L_INFO", "status 0 without a transaction\n");
    }
    t_on_failure("F");
    t_newtran();
    t_on_reply("R");
    t_on_branch("B");
    if (t_is_set("onreply_route")) {
        xlog("L_INFO", "set onreply\n");
    }
    if (t_is_set("failure_route")) {
        xlog("L_INFO", "set failure\n");
    }
    if (t_is_set("branch_route")) {
        xlog("L_INFO", "set branch\n");
    }
    t_reply(183, "Session Progress");
    xlog("L_INFO", "code after $T_reply_code\n");
    if (t_check_status("183")) {
        xlog("L_INFO", "request status 183\n");
    }
    $du = "sip:10.0.0.20:5070";
    t_relay();
}
branch_route[B] {
    xlog("L_INFO", "branch code $T_reply_code\n");
    if (t_check_status("18[0-9]")) {
        xlog("L_INFO", "branch status 18x\n");
    }
}
onreply_route[R] {
    xlog("L_INFO", "onreply code $T_reply_code\n");
}
failure_route[F] {
    xlog("L_INFO", "failure code $T_reply_code\n");
}
"#;

#[test]
fn t_is_set_reads_the_transaction_and_request_routes_see_the_code_sent_upstream() {
    let lab = Lab::new(IS_SET);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let out = w.take();
    let logs = w.logs();
    for l in [
        "code none 0\n",
        "status 0 without a transaction\n",
        "set onreply\n",
        "set failure\n",
        "set branch\n",
        "code after 183\n",
        "request status 183\n",
        "branch code 183\n",
        "branch status 18x\n",
    ] {
        assert!(logs.contains(&l), "{l:?} not in {logs:?}");
    }
    let fwd = to(&out, GW1)[0].clone();
    let mut w2 = lab.worker();
    w2.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    w2.reply(&reply_to(&fwd, 404, "Not Found", "gw", &[]), GW1);
    let logs = w2.logs();
    for l in [
        "onreply code 180\n",
        "onreply code 404\n",
        "failure code 404\n",
    ] {
        assert!(logs.contains(&l), "{l:?} not in {logs:?}");
    }
}

/// `t_release()` after a local reply (user `busy`) or after relaying (anyone else).
const RELEASE: &str = r#"
loadmodule "tm.so"
loadmodule "pv.so"
request_route {
    if ($rU == "busy") {
        t_newtran();
        t_reply(486, "Busy Here");
        t_release();
        exit;
    }
    $du = "sip:10.0.0.20:5070";
    t_relay();
    t_release();
}
"#;

#[test]
fn t_release_keeps_absorbing_retransmissions_until_the_wait_timer() {
    let lab = Lab::new(RELEASE);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let invite = INVITE.replacen("sip:bob@", "sip:busy@", 1);
    w.at(0).request(&invite, UAC);
    assert_eq!(first_lines(&to(&w.take(), UAC)), ["SIP/2.0 486 Busy Here"]);
    assert_eq!(lab.current(), 1, "still in the table");
    // No reply retransmission on the wait timer, but a retransmitted INVITE is absorbed
    // (the 486 re-sent) instead of making a second transaction.
    assert!(run_timer(&mut timer, 0, 1_000).is_empty());
    w.at(1_000).request(&invite, UAC);
    assert_eq!(first_lines(&to(&w.take(), UAC)), ["SIP/2.0 486 Busy Here"]);
    assert_eq!(lab.table().stat(super::table::Stat::Created), 1);
    run_timer(&mut timer, 1_000, 5_100);
    assert_eq!(lab.current(), 0, "deleted after wt_timer");
}

#[test]
fn t_release_after_t_relay_still_matches_replies() {
    let lab = Lab::new(RELEASE);
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    assert_eq!(
        w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1),
        sip_script::abi::ReplyDisposition::Consumed,
        "the reply still finds its transaction"
    );
    assert_eq!(first_lines(&to(&w.take(), UAC)), ["SIP/2.0 180 Ringing"]);
}
