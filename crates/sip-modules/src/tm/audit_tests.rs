//! Spec rules an audit found untested or wrong (issue 5): timers set before the
//! transaction exists, the context of onreply/failure routes, `t_relay(host, port)` on ACK
//! and CANCEL, ACK to a local 2xx, `t_check_trans` on replies, `t_is_set`,
//! `t_check_status`/`$T_reply_code` in request route, `t_release`.

use super::lab::{GW1, INVITE, Lab, Out, UAC, Worker, reply_to, to};

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
