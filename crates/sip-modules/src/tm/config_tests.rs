//! tm's configuration as `init` reads it: modparams (Kamailio and OpenSIPS names and units)
//! and the core parameters tm uses (`max_branches`), through the real compiler.

use std::sync::Arc;

use sip_txn::{CELL_BRANCHES, FailureReplyMode, TmConfig};

use super::engine::Tm;
use super::lab::{GW1, GW2, INVITE, Lab, UAC, reply_to, to};

/// The module state `init` built for a cfg whose head is `head`: global parameters, then
/// after a `#MP` marker the modparam lines (they must follow `loadmodule`).
fn tm_for(head: &str) -> (Lab, Arc<Tm>) {
    let (globals, modparams) = head.split_once("#MP").unwrap_or((head, ""));
    let cfg = format!(
        "{globals}\nloadmodule \"tm.so\"\n{modparams}\nrequest_route {{\n    t_relay();\n}}\n"
    );
    let lab = Lab::new(&cfg);
    let w = lab.worker();
    let tm =
        w.rt.state::<Arc<Tm>>()
            .cloned()
            .unwrap_or_else(|| panic!("tm state missing"));
    (lab, tm)
}

fn cfg_of(head: &str) -> TmConfig {
    tm_for(head).1.cfg
}

#[test]
fn defaults_are_kamailios() {
    let c = cfg_of("");
    assert_eq!(c, TmConfig::default());
    assert_eq!(
        (c.t1, c.t2, c.fr, c.fr_inv, c.wait),
        (500, 4_000, 30_000, 120_000, 5_000)
    );
    let (lab, tm) = tm_for("");
    assert!(tm.auto_inv_100);
    assert_eq!(tm.auto_inv_100_reason, super::DEFAULT_100_REASON);
    assert_eq!(lab.table().hash_size(), super::DEFAULT_HASH_SIZE);
}

#[test]
fn kamailio_timer_modparams_are_milliseconds() {
    let c = cfg_of(
        "#MP\nmodparam(\"tm\", \"fr_timer\", 2000)\nmodparam(\"tm\", \"fr_inv_timer\", 9000)\n\
         modparam(\"tm\", \"retr_timer1\", 250)\nmodparam(\"tm\", \"retr_timer2\", 2000)\n\
         modparam(\"tm\", \"wt_timer\", 50)\nmodparam(\"tm\", \"max_inv_lifetime\", 60000)\n\
         modparam(\"tm\", \"max_noninv_lifetime\", 8000)\n",
    );
    assert_eq!((c.fr, c.fr_inv, c.t1, c.t2), (2_000, 9_000, 250, 2_000));
    assert_eq!(
        c.wait, 50,
        "Kamailio's wt_timer is in ms, even a small value"
    );
    assert_eq!((c.max_inv_lifetime, c.max_noninv_lifetime), (60_000, 8_000));
}

#[test]
fn opensips_timer_modparams_are_seconds_and_t1_t2_aliases_work() {
    let c = cfg_of(
        "dialect=\"opensips\"\n#MP\nmodparam(\"tm\", \"fr_timeout\", 3)\n\
         modparam(\"tm\", \"fr_inv_timeout\", 40)\nmodparam(\"tm\", \"T1_timer\", 400)\n\
         modparam(\"tm\", \"T2_timer\", 3000)\nmodparam(\"tm\", \"wt_timer\", 7)\n",
    );
    assert_eq!((c.fr, c.fr_inv), (3_000, 40_000));
    assert_eq!((c.t1, c.t2), (400, 3_000));
    assert_eq!(c.wait, 7_000, "OpenSIPS's wt_timer is in seconds");
    // The millisecond names win over the second ones when both are set.
    let c =
        cfg_of("#MP\nmodparam(\"tm\", \"fr_timeout\", 3)\nmodparam(\"tm\", \"fr_timer\", 1500)\n");
    assert_eq!(c.fr, 1_500);
}

#[test]
fn reply_and_cancel_modparams() {
    let c = cfg_of(
        "#MP\nmodparam(\"tm\", \"failure_reply_mode\", 1)\nmodparam(\"tm\", \"noisy_ctimer\", 0)\n\
         modparam(\"tm\", \"restart_fr_on_each_reply\", 0)\nmodparam(\"tm\", \"remap_503_500\", 0)\n",
    );
    assert_eq!(c.failure_reply_mode, FailureReplyMode::DropAll);
    assert!(!c.noisy_ctimer && !c.restart_fr_on_each_reply && !c.remap_503_500);
    for (v, mode) in [
        (0, FailureReplyMode::KeepAll),
        (2, FailureReplyMode::DropPreviousLeg),
        (3, FailureReplyMode::DropAllIfNewLeg),
        (9, FailureReplyMode::DropAllIfNewLeg),
    ] {
        let c = cfg_of(&format!(
            "#MP\nmodparam(\"tm\", \"failure_reply_mode\", {v})\n"
        ));
        assert_eq!(c.failure_reply_mode, mode, "failure_reply_mode {v}");
    }
}

#[test]
fn auto_inv_100_and_its_reason() {
    let (_, tm) = tm_for("#MP\nmodparam(\"tm\", \"auto_inv_100\", 0)\n");
    assert!(!tm.auto_inv_100);
    let (_, tm) = tm_for("#MP\nmodparam(\"tm\", \"auto_inv_100_reason\", \"Trying\")\n");
    assert!(tm.auto_inv_100);
    assert_eq!(tm.auto_inv_100_reason, "Trying");
    let (_, tm) = tm_for("dialect=\"opensips\"\n");
    assert_eq!(tm.auto_inv_100_reason, super::OPENSIPS_100_REASON);
    assert!(tm.opensips_100);
}

#[test]
fn hash_size_is_rounded_up_to_a_power_of_two() {
    for (asked, got) in [(1000, 1024), (1024, 1024), (3, 4), (1, 1)] {
        let (lab, _) = tm_for(&format!("#MP\nmodparam(\"tm\", \"hash_size\", {asked})\n"));
        assert_eq!(lab.table().hash_size(), got, "hash_size {asked}");
    }
}

#[test]
fn max_branches_core_param_is_used_and_clamped_to_the_cell() {
    assert_eq!(cfg_of("max_branches=4\n").max_branches, 4);
    let (lab, tm) = tm_for("max_branches=20\n");
    assert_eq!(usize::from(tm.cfg.max_branches), CELL_BRANCHES);
    let w = lab.worker();
    assert!(
        w.rt.init_warnings()
            .iter()
            .any(|l| l.starts_with("tm: max_branches=20 ") && l.contains("uses 12")),
        "{:?}",
        w.rt.init_warnings()
    );
    let (lab, _) = tm_for("max_branches=12\n");
    assert!(lab.worker().rt.init_warnings().is_empty());
}

/// Serial forking: every negative final runs failure_route, which relays once more.
const SERIAL: &str = r#"
loadmodule "tm.so"
request_route {
    t_on_failure("NEXT");
    $du = "sip:10.0.0.20:5070";
    t_relay();
}
failure_route[NEXT] {
    t_on_failure("NEXT");
    $du = "sip:10.0.0.21:5070";
    t_relay();
}
"#;

/// Branches created for one INVITE whose every branch answers 486.
fn serial_branches(head: &str) -> usize {
    let lab = Lab::new(&format!("{head}\n{SERIAL}"));
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let mut out = w.take();
    let mut pending = to(&out, GW1).first().map(|o| ((*o).clone(), GW1));
    let mut n = 0;
    while let Some((req, gw)) = pending.take() {
        n += 1;
        if n > 40 {
            break;
        }
        w.reply(&reply_to(&req, 486, "Busy Here", &format!("t{n}"), &[]), gw);
        out = w.take();
        pending = to(&out, GW2)
            .into_iter()
            .find(|o| o.first_line().starts_with("INVITE"))
            .map(|o| (o.clone(), GW2));
    }
    n
}

#[test]
fn max_branches_limits_serial_forking_in_failure_route() {
    assert_eq!(serial_branches("max_branches=3"), 3);
    assert_eq!(serial_branches(""), CELL_BRANCHES);
    assert_eq!(serial_branches("max_branches=31"), CELL_BRANCHES);
}

/// A silent next hop for a MESSAGE with `fr_timer` 2005 ms; the time the 408 goes out when
/// the timer process ticks every `step` ms.
fn local_408_at(head: &str, step: u64) -> u64 {
    let lab = Lab::new(&format!(
        "{head}\nloadmodule \"tm.so\"\nmodparam(\"tm\", \"fr_timer\", 2005)\n\
         request_route {{\n    $du = \"sip:10.0.0.20:5070\";\n    t_relay();\n}}\n"
    ));
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let message = INVITE.replacen("INVITE sip:", "MESSAGE sip:", 1).replacen(
        "CSeq: 1 INVITE",
        "CSeq: 1 MESSAGE",
        1,
    );
    w.at(0).request(&message, UAC);
    w.take();
    let mut t = 0;
    while t < 3_000 {
        t += step;
        timer.tick(t);
        if to(&timer.take(), UAC)
            .iter()
            .any(|o| o.first_line() == "SIP/2.0 408 Request Timeout")
        {
            return t;
        }
    }
    panic!("no 408 within 3 s");
}

#[test]
fn timer_hz_sets_the_rounding_of_timer_values_and_the_wheel_resolution() {
    let (_, tm) = tm_for("timer_hz=100\n");
    assert_eq!(tm.cfg.timer_hz, 100);
    assert_eq!(tm.cfg.timer_values(false).fr, 30_000);
    assert_eq!(tm_for("timer_hz=100\n").0.table().timer_hz(), 100);
    // 2005 ms is 201 ticks of 10 ms at 100 Hz: 2010 ms; 33 ticks of 62.5 ms at 16 Hz.
    let at_100 = local_408_at("timer_hz=100", 10);
    assert!((2_010..2_020).contains(&at_100), "408 at {at_100} ms");
    let at_16 = local_408_at("", 10);
    assert!((2_063..2_073).contains(&at_16), "408 at {at_16} ms");
    assert_eq!(cfg_of("").timer_hz, 16);
}
