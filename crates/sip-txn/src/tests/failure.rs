//! Spec §5.4: failure_route bookkeeping and failure_reply_mode.

use super::support::*;
use crate::{Action, BufRef, Cell, FailureReplyMode, LocalReason, RouteId, TmConfig};

fn armed(cfg: &TmConfig, n: u8) -> Cell {
    let mut c = invite_cell(cfg);
    c.arm_failure_route(FAILURE);
    with_branches(c, n, cfg)
}

#[test]
fn failure_route_is_armed_per_branch_at_creation() {
    let cfg = TmConfig::default();
    let mut c = invite_cell(&cfg);
    c.add_branch(BufRef(2), false, T0, &cfg).unwrap();
    c.arm_failure_route(FAILURE);
    c.add_branch(BufRef(3), false, T0, &cfg).unwrap();
    assert_eq!(c.branch(0).unwrap().on_failure(), RouteId::NONE);
    assert_eq!(c.branch(1).unwrap().on_failure(), FAILURE);
    // The route of the winning branch decides: branch 0 (404) wins and has none.
    reply(&mut c, 1, 486, at(0), &cfg);
    let acts = reply(&mut c, 0, 404, at(1), &cfg);
    assert!(acts.contains(&Action::Relay {
        branch: 0,
        code: 404
    }));
}

#[test]
fn failure_route_runs_when_all_branches_fail_and_is_cleared_before_running() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 2);
    reply(&mut c, 0, 486, at(0), &cfg);
    let acts = reply(&mut c, 1, 404, at(1), &cfg);
    assert_eq!(
        acts.last(),
        Some(&Action::RunFailureRoute {
            route: FAILURE,
            branch: 1,
            code: 404
        })
    );
    assert_eq!(c.failure_route(), RouteId::NONE);
    assert_eq!(c.uas_status(), 0);
    // The route does nothing: the winner is relayed.
    let out = c.failure_route_finished(at(2), &cfg);
    assert_eq!(
        out.as_slice(),
        [Action::Relay {
            branch: 1,
            code: 404
        }]
    );
}

#[test]
fn failure_route_runs_on_local_timeout_with_408() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 1);
    let fired = run_until(&mut c, at(30_000), &cfg);
    assert!(all_actions(&fired).contains(&Action::RunFailureRoute {
        route: FAILURE,
        branch: 0,
        code: 408
    }));
    assert!(c.any_timeout());
    let out = c.failure_route_finished(at(30_001), &cfg);
    assert_eq!(
        out.as_slice(),
        [Action::LocalReply {
            code: 408,
            reason: LocalReason::RequestTimeout
        }]
    );
}

#[test]
fn failure_route_reply_ends_the_transaction() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 500, at(0), &cfg);
    let out = c.local_reply(480, at(1), &cfg).unwrap();
    assert!(out.contains(&Action::LocalReply {
        code: 480,
        reason: LocalReason::Script
    }));
    assert!(c.failure_route_finished(at(1), &cfg).is_empty());
    assert_eq!(c.uas_status(), 480);
}

#[test]
fn serial_fork_mode_3_next_winner_comes_from_last_leg_only() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 302, at(0), &cfg);
    // failure_route: new leg without re-arming.
    assert_eq!(c.add_branch(BufRef(9), false, at(1), &cfg), Ok(1));
    assert!(
        c.failure_route_finished(at(1), &cfg).is_empty(),
        "waits for the new leg"
    );
    let acts = reply(&mut c, 1, 486, at(2), &cfg);
    // 302 would beat 486, but mode 3 discarded the first leg; no failure route re-armed.
    assert!(acts.contains(&Action::Relay {
        branch: 1,
        code: 486
    }));
}

#[test]
fn serial_fork_mode_0_keeps_older_legs() {
    let cfg = TmConfig {
        failure_reply_mode: FailureReplyMode::KeepAll,
        ..TmConfig::default()
    };
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 302, at(0), &cfg);
    c.add_branch(BufRef(9), false, at(1), &cfg).unwrap();
    c.failure_route_finished(at(1), &cfg);
    let acts = reply(&mut c, 1, 486, at(2), &cfg);
    assert!(acts.contains(&Action::Relay {
        branch: 0,
        code: 302
    }));
}

#[test]
fn rearming_in_failure_route_runs_it_again_for_the_next_leg() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 503, at(0), &cfg);
    c.arm_failure_route(RouteId(4));
    c.add_branch(BufRef(9), false, at(1), &cfg).unwrap();
    c.failure_route_finished(at(1), &cfg);
    let acts = reply(&mut c, 1, 503, at(2), &cfg);
    assert_eq!(
        acts.last(),
        Some(&Action::RunFailureRoute {
            route: RouteId(4),
            branch: 1,
            code: 503
        })
    );
    let out = c.failure_route_finished(at(3), &cfg);
    assert_eq!(
        out.as_slice(),
        [Action::LocalReply {
            code: 500,
            reason: LocalReason::ServiceUnavailable
        }]
    );
}

#[test]
fn mode_1_discards_replies_even_without_new_leg_and_answers_internal_error() {
    let cfg = TmConfig {
        failure_reply_mode: FailureReplyMode::DropAll,
        ..TmConfig::default()
    };
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 486, at(0), &cfg);
    let out = c.failure_route_finished(at(1), &cfg);
    assert_eq!(
        out.as_slice(),
        [Action::LocalReply {
            code: 500,
            reason: LocalReason::InternalError
        }]
    );
}

#[test]
fn t_drop_replies_overrides_mode_for_this_run() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 486, at(0), &cfg);
    c.drop_replies();
    let out = c.failure_route_finished(at(1), &cfg);
    assert!(out.contains(&Action::LocalReply {
        code: 500,
        reason: LocalReason::InternalError
    }));
}

#[test]
fn mode_2_discards_only_the_previous_leg() {
    let cfg = TmConfig {
        failure_reply_mode: FailureReplyMode::DropPreviousLeg,
        ..TmConfig::default()
    };
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 302, at(0), &cfg); // leg 0
    c.arm_failure_route(FAILURE);
    c.add_branch(BufRef(9), false, at(1), &cfg).unwrap(); // leg 1
    c.failure_route_finished(at(1), &cfg); // drops leg 0
    let acts = reply(&mut c, 1, 486, at(2), &cfg);
    assert_eq!(
        acts.last(),
        Some(&Action::RunFailureRoute {
            route: FAILURE,
            branch: 1,
            code: 486
        })
    );
    c.add_branch(BufRef(10), false, at(3), &cfg).unwrap(); // leg 2
    c.failure_route_finished(at(3), &cfg); // drops leg 1 only; leg 0 already dropped
    let acts = reply(&mut c, 2, 404, at(4), &cfg);
    assert!(acts.contains(&Action::Relay {
        branch: 2,
        code: 404
    }));
}

#[test]
fn canceled_transaction_refuses_new_leg_in_failure_route() {
    let cfg = TmConfig::default();
    let mut c = armed(&cfg, 1);
    reply(&mut c, 0, 180, at(0), &cfg);
    c.handle_cancel(BufRef::NONE, at(1), &cfg);
    let acts = reply(&mut c, 0, 487, at(2), &cfg);
    assert!(matches!(
        acts.last(),
        Some(Action::RunFailureRoute { code: 487, .. })
    ));
    assert!(c.is_canceled());
    assert!(c.add_branch(BufRef(9), false, at(3), &cfg).is_err());
    let out = c.failure_route_finished(at(3), &cfg);
    assert_eq!(
        out.as_slice(),
        [Action::Relay {
            branch: 0,
            code: 487
        }]
    );
}

#[test]
fn noisy_ctimer_off_drops_lone_silent_invite_branch_without_reply() {
    let cfg = TmConfig {
        noisy_ctimer: false,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let fired = run_until(&mut c, at(40_000), &cfg);
    let all = all_actions(&fired);
    assert!(!all.iter().any(|a| matches!(a, Action::LocalReply { .. })));
    assert!(all.contains(&Action::Delete));
}
