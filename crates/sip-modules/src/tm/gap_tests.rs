//! branch_route, 401/407 aggregation and `unmatched_cancel` through the real compiler and
//! interpreter on the heap lab (spec §4.1, §5.3, §5.5).

use super::lab::{GW1, GW2, INVITE, Lab, Out, UAC, cancel, reply_to, to};

/// A third next hop (branch_route sends a branch there by `$du`).
const GW3: &str = "10.0.0.22:5070";

const CFG: &str = r#"
debug=3
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "corex.so"
loadmodule "pv.so"
loadmodule "xlog.so"
#!ifdef UMC
modparam("tm", "unmatched_cancel", UMC)
#!endif
request_route {
    if (is_method("CANCEL")) {
        $du = "sip:10.0.0.20:5070";
        t_relay();
        exit;
    }
    if ($rU == "fork" || $rU == "dropone" || $rU == "auth") {
        append_branch("sip:$rU@10.0.0.21:5070");
    }
    if ($rU != "auth" && $rU != "plain") {
        t_on_branch("BR");
    }
    if ($rU == "serial") {
        t_on_failure("NEXT");
    }
    if ($rU == "keep" || $rU == "rewrite") {
        t_on_failure("SHOWRU");
    }
    if ($rU == "rewrite") {
        $ru = "sip:new@example.net";
    }
    $du = "sip:10.0.0.20:5070";
    if (!t_relay()) {
        xlog("L_INFO", "t_relay failed\n");
    }
    exit;
}

branch_route[BR] {
    xlog("L_INFO", "branch $T_branch_idx ru=$ru du=$du\n");
    if ($rU == "dropall") {
        drop;
    }
    if ($rU == "dropone" && $rd == "example.com") {
        drop;
    }
    if ($T_branch_idx == 1) {
        append_hf("X-Branch: one\r\n");
        $du = "sip:10.0.0.22:5070";
    }
}

failure_route[SHOWRU] {
    xlog("L_INFO", "failure ru=$ru\n");
}

failure_route[NEXT] {
    t_on_branch("BR");
    $du = "sip:10.0.0.21:5070";
    t_relay();
}
"#;

fn user_invite(user: &str) -> String {
    INVITE.replacen("sip:bob@", &format!("sip:{user}@"), 1)
}

fn lines(outs: &[&Out]) -> Vec<String> {
    outs.iter().map(|o| o.first_line().to_string()).collect()
}

fn branch_of(o: &Out) -> String {
    let via = o
        .text
        .lines()
        .find_map(|l| l.strip_prefix("Via: "))
        .unwrap_or_default();
    via.rsplit('.').next().unwrap_or_default().to_string()
}

#[test]
fn branch_route_header_and_du_apply_to_their_branch_only() {
    let lab = Lab::new(CFG);
    let mut w = lab.worker();
    w.request(&user_invite("fork"), UAC);
    let out = w.take();
    let b0 = to(&out, GW1);
    let b1 = to(&out, GW3);
    assert_eq!(
        lines(&b0),
        ["INVITE sip:fork@example.com SIP/2.0"],
        "{out:?}"
    );
    assert_eq!(lines(&b1), ["INVITE sip:fork@10.0.0.21:5070 SIP/2.0"]);
    assert!(
        to(&out, GW2).is_empty(),
        "$du set in branch_route routes branch 1"
    );
    assert!(!b0[0].text.contains("X-Branch"));
    assert!(b1[0].has_header("X-Branch: one"), "{}", b1[0].text);
    assert_eq!(
        (branch_of(b0[0]), branch_of(b1[0])),
        ("0".into(), "1".into())
    );
    let logs = w.logs();
    assert!(logs.contains(&"branch 0 ru=sip:fork@example.com du=sip:10.0.0.20:5070\n"));
    assert!(
        logs.contains(&"branch 1 ru=sip:fork@10.0.0.21:5070 du=<null>\n"),
        "{logs:?}"
    );
    // Replies upstream never carry the branch's header; the 180 of branch 1 is relayed.
    let b1 = b1[0].clone();
    w.reply(&reply_to(&b1, 180, "Ringing", "gw3", &[]), GW3);
    let up = w.take();
    let up = to(&up, UAC);
    assert_eq!(lines(&up), ["SIP/2.0 180 Ringing"]);
    assert!(!up[0].text.contains("X-Branch"));
}

#[test]
fn drop_in_branch_route_cancels_that_branch_only() {
    let lab = Lab::new(CFG);
    let mut w = lab.worker();
    w.request(&user_invite("dropone"), UAC);
    let out = w.take();
    assert!(
        to(&out, GW1).is_empty(),
        "branch to example.com dropped: {out:?}"
    );
    let sent = to(&out, GW2);
    assert_eq!(lines(&sent), ["INVITE sip:dropone@10.0.0.21:5070 SIP/2.0"]);
    // The surviving branch is branch 0: the dropped one took no index.
    assert_eq!(branch_of(sent[0]), "0");
    assert!(!sent[0].text.contains("X-Branch"));
    assert_eq!(
        lines(&to(&out, UAC)),
        ["SIP/2.0 100 trying -- your call is important to us"]
    );
}

#[test]
fn drop_of_every_branch_fails_t_relay_and_sends_the_delayed_error_reply() {
    let lab = Lab::new(CFG);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    w.request(&user_invite("dropall"), UAC);
    let out = w.take();
    assert!(
        to(&out, GW1).is_empty() && to(&out, GW2).is_empty(),
        "{out:?}"
    );
    assert!(w.logs().contains(&"t_relay failed\n"));
    let up = to(&out, UAC);
    assert_eq!(up.len(), 2, "{out:?}");
    assert_eq!(
        up[0].first_line(),
        "SIP/2.0 100 trying -- your call is important to us"
    );
    assert!(
        up[1].first_line().starts_with("SIP/2.0 500 "),
        "{}",
        up[1].text
    );
    timer.tick_until(0, 6_000);
    assert_eq!(lab.current(), 0);
}

#[test]
fn branch_route_runs_for_a_branch_created_in_failure_route() {
    let lab = Lab::new(CFG);
    let mut w = lab.worker();
    w.request(&user_invite("serial"), UAC);
    let out = w.take();
    let first = to(&out, GW1)[0].clone();
    w.reply(&reply_to(&first, 486, "Busy Here", "gw1", &[]), GW1);
    let out = w.take();
    // Branch 1, created in failure_route: branch_route adds its header and moves it to GW3.
    let second = to(&out, GW3);
    assert_eq!(
        lines(&second),
        ["INVITE sip:serial@example.com SIP/2.0"],
        "{out:?}"
    );
    assert!(second[0].has_header("X-Branch: one"));
    assert_eq!(branch_of(second[0]), "1");
    assert!(
        w.logs()
            .contains(&"branch 1 ru=sip:serial@example.com du=sip:10.0.0.21:5070\n")
    );
}

#[test]
fn two_challenges_are_aggregated_into_one_local_401() {
    let lab = Lab::new(CFG);
    let mut w = lab.worker();
    w.request(&user_invite("auth"), UAC);
    let out = w.take();
    let (b0, b1) = (to(&out, GW1)[0].clone(), to(&out, GW2)[0].clone());
    w.reply(
        &reply_to(
            &b0,
            401,
            "Unauthorized",
            "gw1",
            &["WWW-Authenticate: Digest realm=\"gw1\", nonce=\"n1\""],
        ),
        GW1,
    );
    assert!(to(&w.take(), UAC).is_empty(), "waits for the other branch");
    w.reply(
        &reply_to(
            &b1,
            407,
            "Proxy Authentication Required",
            "gw2",
            &["Proxy-Authenticate: Digest realm=\"gw2\", nonce=\"n2\""],
        ),
        GW2,
    );
    let out = w.take();
    let up = to(&out, UAC);
    assert_eq!(lines(&up), ["SIP/2.0 401 Unauthorized"], "{out:?}");
    let r = &up[0];
    assert!(
        r.has_header("WWW-Authenticate: Digest realm=\"gw1\", nonce=\"n1\""),
        "{}",
        r.text
    );
    assert!(r.has_header("Proxy-Authenticate: Digest realm=\"gw2\", nonce=\"n2\""));
    let tag = super::lab::to_tag(&r.text);
    assert!(
        tag != "gw1" && tag != "gw2" && tag.len() == 32 + 1 + 8,
        "local To-tag: {tag}"
    );
    // Both gateways got their hop-by-hop ACK.
    assert_eq!(
        lines(&to(&out, GW2)),
        ["ACK sip:auth@10.0.0.21:5070 SIP/2.0"]
    );
}

#[test]
fn a_single_challenge_is_relayed_as_received() {
    let lab = Lab::new(CFG);
    let mut w = lab.worker();
    w.request(&user_invite("plain"), UAC);
    let out = w.take();
    let b0 = to(&out, GW1)[0].clone();
    w.reply(
        &reply_to(
            &b0,
            407,
            "Proxy Auth Please",
            "gw1",
            &["Proxy-Authenticate: Digest realm=\"gw1\""],
        ),
        GW1,
    );
    let up = w.take();
    let up = to(&up, UAC);
    assert_eq!(lines(&up), ["SIP/2.0 407 Proxy Auth Please"]);
    assert_eq!(super::lab::to_tag(&up[0].text), "gw1");
}

fn unmatched_cancel(mode: &str) -> Vec<Out> {
    let lab = Lab::new(&format!("#!define UMC {mode}\n{CFG}"));
    let mut w = lab.worker();
    w.request(&cancel(""), UAC);
    let out = w.take();
    let created = lab.table().stat(super::table::Stat::Created);
    assert_eq!(
        created,
        u64::from(mode == "0"),
        "a CANCEL transaction only when stateful"
    );
    out
}

#[test]
fn unmatched_cancel_0_relays_it_statefully() {
    let out = unmatched_cancel("0");
    let fwd = to(&out, GW1);
    assert_eq!(lines(&fwd), ["CANCEL sip:bob@example.com SIP/2.0"]);
    assert_eq!(branch_of(fwd[0]), "0", "tm branch: {}", fwd[0].text);
}

#[test]
fn unmatched_cancel_1_forwards_it_statelessly() {
    let out = unmatched_cancel("1");
    let fwd = to(&out, GW1);
    assert_eq!(
        lines(&fwd),
        ["CANCEL sip:bob@example.com SIP/2.0"],
        "{out:?}"
    );
    assert!(to(&out, UAC).is_empty());
}

#[test]
fn unmatched_cancel_2_drops_it_silently() {
    let out = unmatched_cancel("2");
    assert!(out.is_empty(), "{out:?}");
}

/// failure_route shows `$ru` as first relayed: the rewritten one, or (kept without a
/// copy in the state) the request's own.
#[test]
fn failure_route_ru_is_the_relayed_one_whether_rewritten_or_not() {
    for (user, want) in [
        ("keep", "failure ru=sip:keep@example.com\n"),
        ("rewrite", "failure ru=sip:new@example.net\n"),
    ] {
        let lab = Lab::new(CFG);
        let mut w = lab.worker();
        w.request(&user_invite(user), UAC);
        let out = w.take();
        let fwd = to(&out, GW1)[0].clone();
        w.reply(&reply_to(&fwd, 404, "Not Found", "gw1", &[]), GW1);
        assert!(w.logs().contains(&want), "{user}: {:?}", w.logs());
    }
}
