//! Spec §6: retransmission schedules, FR switching, lifetimes, wait timer.

use super::support::*;
use crate::{Action, BufRef, CancelReason, LocalReason, Millis, TmConfig, WaitExtension};

fn is_req_retr(a: &Action) -> bool {
    matches!(a, Action::RetransmitRequest { branch: 0 })
}

#[test]
fn invite_retransmissions_cap_at_t2() {
    let cfg = TmConfig {
        fr: 20_000,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let fired = run_until(&mut c, at(20_000), &cfg);
    assert_eq!(
        times_of(&fired, is_req_retr),
        [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500]
    );
    // E9: 408 at +20 s.
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [20_000]
    );
}

#[test]
fn non_invite_retransmissions_cap_at_t2() {
    let cfg = TmConfig {
        fr: 20_000,
        ..TmConfig::default()
    };
    let mut c = with_branches(non_invite_cell(&cfg), 1, &cfg);
    let fired = run_until(&mut c, at(20_000), &cfg);
    assert_eq!(
        times_of(&fired, is_req_retr),
        [500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500]
    );
    assert!(all_actions(&fired).contains(&Action::LocalReply {
        code: 408,
        reason: LocalReason::RequestTimeout
    }));
}

#[test]
fn reliable_branch_is_not_retransmitted_but_times_out() {
    let cfg = TmConfig::default();
    let mut c = invite_cell(&cfg);
    c.add_branch(BufRef(2), true, T0, &cfg).unwrap();
    let fired = run_until(&mut c, at(30_000), &cfg);
    assert!(times_of(&fired, is_req_retr).is_empty());
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [30_000]
    );
}

#[test]
fn invite_provisional_stops_retransmission_and_switches_fr_to_fr_inv() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    run_until(&mut c, at(1_000), &cfg);
    let acts = reply(&mut c, 0, 180, at(1_000), &cfg);
    assert!(acts.contains(&Action::Relay {
        branch: 0,
        code: 180
    }));
    let fired = run_until(&mut c, at(200_000), &cfg);
    assert!(times_of(&fired, is_req_retr).is_empty());
    // fr_inv 120 s from the 180 at +1 s.
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [121_000]
    );
}

#[test]
fn restart_fr_on_each_reply_restarts_fr_inv_on_every_1xx() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 183, at(1_000), &cfg);
    reply(&mut c, 0, 183, at(50_000), &cfg);
    let fired = run_until(&mut c, at(300_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [170_000]
    );
}

#[test]
fn restart_fr_off_restarts_only_on_first_and_increasing_codes_from_180() {
    let cfg = TmConfig {
        restart_fr_on_each_reply: false,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(1_000), &cfg);
    reply(&mut c, 0, 180, at(50_000), &cfg); // same code: no restart
    let fired = run_until(&mut c, at(300_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [121_000]
    );
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(1_000), &cfg);
    reply(&mut c, 0, 183, at(50_000), &cfg); // increasing ≥180: restart
    let fired = run_until(&mut c, at(300_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [170_000]
    );
}

#[test]
fn non_invite_provisional_switches_retransmission_to_t2_and_keeps_fr() {
    let cfg = TmConfig::default();
    let mut c = with_branches(non_invite_cell(&cfg), 1, &cfg);
    run_until(&mut c, at(600), &cfg); // one retransmission at 500
    reply(&mut c, 0, 100, at(600), &cfg);
    let fired = run_until(&mut c, at(30_000), &cfg);
    assert_eq!(
        times_of(&fired, is_req_retr),
        [4_600, 8_600, 12_600, 16_600, 20_600, 24_600, 28_600]
    );
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [30_000]
    );
}

#[test]
fn fr_expiry_after_provisional_sends_cancel_without_reason_then_408() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(100), &cfg);
    let fired = run_until(&mut c, at(120_100), &cfg);
    let last = &fired.last().unwrap().actions;
    assert_eq!(
        last[..2],
        [
            Action::SendCancel {
                branch: 0,
                reason: CancelReason::None
            },
            Action::LocalReply {
                code: 408,
                reason: LocalReason::RequestTimeout
            },
        ]
    );
    assert!(c.any_timeout());
    assert!(!c.is_expired(at(120_100)));
}

#[test]
fn fr_expiry_without_provisional_sends_no_cancel() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let fired = run_until(&mut c, at(30_000), &cfg);
    assert!(
        !all_actions(&fired)
            .iter()
            .any(|a| matches!(a, Action::SendCancel { .. }))
    );
}

#[test]
fn fr_is_clamped_to_max_inv_lifetime() {
    let cfg = TmConfig {
        max_inv_lifetime: 60_000,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(1_000), &cfg);
    let fired = run_until(&mut c, at(200_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [60_000]
    );
    assert!(c.is_expired(at(60_001)));
}

#[test]
fn fr_is_clamped_to_max_noninv_lifetime() {
    let cfg = TmConfig {
        fr: 40_000,
        ..TmConfig::default()
    };
    let mut c = with_branches(non_invite_cell(&cfg), 1, &cfg);
    let fired = run_until(&mut c, at(50_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::LocalReply { code: 408, .. }
        )),
        [32_000]
    );
}

#[test]
fn negative_final_to_invite_is_retransmitted_until_wait_timer() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let acts = reply(&mut c, 0, 486, at(0), &cfg);
    assert!(acts.contains(&Action::Relay {
        branch: 0,
        code: 486
    }));
    let fired = run_until(&mut c, at(60_000), &cfg);
    // E10: +0.5, +1.5, +3.5 s, then deletion at +5 s.
    assert_eq!(
        times_of(&fired, |a| *a == Action::RetransmitReply),
        [500, 1_500, 3_500]
    );
    assert_eq!(times_of(&fired, |a| *a == Action::Delete), [5_000]);
}

#[test]
fn ack_to_486_stops_reply_retransmission() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 486, at(0), &cfg);
    run_until(&mut c, at(600), &cfg);
    assert!(c.ack_received(at(700)));
    let fired = run_until(&mut c, at(60_000), &cfg);
    assert!(times_of(&fired, |a| *a == Action::RetransmitReply).is_empty());
    // Still deleted by the wait timer started at the reply, not restarted by the ACK.
    assert_eq!(times_of(&fired, |a| *a == Action::Delete), [5_000]);
}

#[test]
fn relayed_2xx_is_not_retransmitted_and_goes_on_wait() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 200, at(0), &cfg);
    assert!(
        !c.ack_received(at(10)),
        "nothing waits for an ACK to a relayed 2xx"
    );
    let fired = run_until(&mut c, at(60_000), &cfg);
    assert!(times_of(&fired, |a| *a == Action::RetransmitReply).is_empty());
    assert_eq!(times_of(&fired, |a| *a == Action::Delete), [5_000]);
}

#[test]
fn local_2xx_to_invite_is_retransmitted_until_ack() {
    let cfg = TmConfig::default();
    let mut c = invite_cell(&cfg);
    c.local_reply(200, T0, &cfg).unwrap();
    run_until(&mut c, at(1_000), &cfg);
    assert!(c.ack_received(at(1_000)));
    let fired = run_until(&mut c, at(60_000), &cfg);
    assert!(times_of(&fired, |a| *a == Action::RetransmitReply).is_empty());
}

#[test]
fn non_invite_final_is_not_retransmitted_by_timer() {
    let cfg = TmConfig::default();
    let mut c = with_branches(non_invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 404, at(0), &cfg);
    let fired = run_until(&mut c, at(60_000), &cfg);
    assert!(times_of(&fired, |a| *a == Action::RetransmitReply).is_empty());
    assert_eq!(times_of(&fired, |a| *a == Action::Delete), [5_000]);
}

#[test]
fn wait_timer_extension_rearms_until_lifetime_limit() {
    let cfg = TmConfig::default();
    let mut c = with_branches(non_invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 200, at(0), &cfg);
    run_until(&mut c, at(5_000), &cfg);
    assert_eq!(c.extend_wait(at(5_000)), WaitExtension::Rearmed);
    assert_eq!(c.next_deadline(), Some(at(10_000)));
    assert_eq!(c.extend_wait(at(90_000)), WaitExtension::ForceDelete);
}

#[test]
fn timer_values_are_rounded_up_to_ticks() {
    let cfg = TmConfig {
        t1: 100,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    assert_eq!(c.timer_values().t1, 125);
    let fired = run_until(&mut c, at(130), &cfg);
    assert_eq!(times_of(&fired, is_req_retr), [125]);
}

#[test]
fn request_retransmission_resends_last_reply_only_if_one_was_sent() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    assert_eq!(c.request_retransmitted(), None);
    reply(&mut c, 0, 180, at(10), &cfg);
    assert_eq!(c.request_retransmitted(), Some(Action::RetransmitReply));
}

#[test]
fn next_deadline_is_none_after_delete() {
    let cfg = TmConfig::default();
    let mut c = with_branches(non_invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 200, at(0), &cfg);
    run_until(&mut c, at(5_000), &cfg);
    assert_eq!(c.next_deadline(), None::<Millis>);
}

#[test]
fn release_stops_every_timer_and_deletes_after_the_wait_period() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 2, &cfg);
    c.release(at(100));
    let fired = run_until(&mut c, at(200_000), &cfg);
    // No retransmission, no FR, no 408: only the wait timer, wt_timer after the release.
    assert_eq!(
        fired.len(),
        1,
        "{:?}",
        fired.iter().map(|f| f.at).collect::<Vec<_>>()
    );
    assert_eq!(fired[0].at, at(100 + u64::from(cfg.wait)));
    assert_eq!(fired[0].actions, [Action::Delete]);
}

#[test]
fn release_after_a_negative_final_stops_its_retransmission() {
    let cfg = TmConfig::default();
    let mut c = invite_cell(&cfg);
    c.local_reply(486, at(0), &cfg).unwrap();
    c.release(at(10));
    let fired = run_until(&mut c, at(10_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| *a == Action::RetransmitReply),
        Vec::<u64>::new()
    );
    assert_eq!(
        times_of(&fired, |a| *a == Action::Delete),
        [u64::from(cfg.wait)]
    );
}

#[test]
fn timer_values_are_rounded_to_the_configured_timer_hz() {
    let at_100 = TmConfig {
        t1: 505,
        fr: 2_001,
        timer_hz: 100,
        ..TmConfig::default()
    };
    let t = at_100.timer_values(false);
    assert_eq!((t.t1, t.fr), (510, 2_010));
    // The same values at Kamailio's 16 ticks/s round to 62.5 ms ticks.
    let at_16 = TmConfig {
        timer_hz: 16,
        ..at_100
    };
    let t = at_16.timer_values(false);
    assert_eq!((t.t1, t.fr), (563, 2_063));
    let mut c = with_branches(non_invite_cell(&at_100), 1, &at_100);
    let fired = run_until(&mut c, at(2_010), &at_100);
    assert_eq!(times_of(&fired, is_req_retr)[..2], [510, 1_530]);
}
