//! Spec §4.1–§4.3 and §4.5: CANCEL bookkeeping on the INVITE cell.

use super::support::*;
use crate::{Action, BufRef, CancelBMethod, CancelReason, LocalReason, TmConfig, TxError};

#[test]
fn invite_with_no_branches_is_answered_487_request_canceled() {
    let cfg = TmConfig::default();
    let mut c = invite_cell(&cfg);
    let o = c.handle_cancel(BufRef::NONE, at(0), &cfg);
    assert_eq!(
        (o.cancel_reply_code, o.cancel_reply_reason),
        (200, LocalReason::NoMorePendingBranches)
    );
    assert_eq!(
        o.actions.as_slice(),
        [Action::LocalReply {
            code: 487,
            reason: LocalReason::RequestCanceled
        }]
    );
    assert!(c.is_canceled());
    assert_eq!(
        c.add_branch(BufRef(2), false, at(1), &cfg),
        Err(TxError::Canceled)
    );
    assert_eq!(
        TxError::Canceled.sip_reply(),
        Some((487, "Transaction canceled"))
    );
}

#[test]
fn cancel_with_pending_branch_with_provisional_sends_cancel_and_replies_200_canceling() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(0), &cfg);
    let o = c.handle_cancel(BufRef::NONE, at(10), &cfg);
    assert_eq!(o.cancel_reply_reason, LocalReason::Canceling);
    assert_eq!(o.cancel_reply_reason.phrase(), "canceling");
    assert_eq!(
        o.actions.as_slice(),
        [Action::SendCancel {
            branch: 0,
            reason: CancelReason::None
        }]
    );
    // The downstream 487 is relayed normally.
    let acts = reply(&mut c, 0, 487, at(20), &cfg);
    assert!(acts.contains(&Action::Relay {
        branch: 0,
        code: 487
    }));
}

#[test]
fn received_cancel_reasons_are_copied_into_generated_cancels() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(0), &cfg);
    let o = c.handle_cancel(BufRef(77), at(10), &cfg);
    assert_eq!(
        o.actions.as_slice(),
        [Action::SendCancel {
            branch: 0,
            reason: CancelReason::CopyReceived
        }]
    );
    assert_eq!(c.e2e_reason, BufRef(77));
    let cfg = TmConfig {
        e2e_cancel_reason: false,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(0), &cfg);
    let o = c.handle_cancel(BufRef(77), at(10), &cfg);
    assert_eq!(
        o.actions.as_slice(),
        [Action::SendCancel {
            branch: 0,
            reason: CancelReason::None
        }]
    );
}

#[test]
fn cancel_after_final_replies_200_no_more_pending_branches() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 486, at(0), &cfg);
    let o = c.handle_cancel(BufRef::NONE, at(10), &cfg);
    assert_eq!(o.cancel_reply_reason, LocalReason::NoMorePendingBranches);
    assert!(o.actions.is_empty());
    assert!(c.is_canceled());
}

#[test]
fn no_cancel_to_a_branch_without_provisional_until_one_arrives() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let o = c.handle_cancel(BufRef::NONE, at(10), &cfg);
    assert_eq!(o.cancel_reply_reason, LocalReason::Canceling);
    assert!(
        o.actions.is_empty(),
        "cancel_b_method=1 sends no CANCEL yet"
    );
    // The INVITE keeps being retransmitted (E3).
    let fired = run_until(&mut c, at(4_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(a, Action::RetransmitRequest { .. })),
        [500, 1_500, 3_500]
    );
    // The provisional triggers the CANCEL and is neither relayed nor routed.
    let step = c.reply_received(0, 180, at(4_000), &cfg).unwrap();
    assert!(!step.proceed);
    assert_eq!(
        step.actions.as_slice(),
        [Action::SendCancel {
            branch: 0,
            reason: CancelReason::None
        }]
    );
    assert_eq!(c.uas_status(), 0);
}

#[test]
fn deferred_cancel_carries_saved_e2e_reason() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    c.handle_cancel(BufRef(5), at(10), &cfg);
    let step = c.reply_received(0, 183, at(20), &cfg).unwrap();
    assert_eq!(
        step.actions.as_slice(),
        [Action::SendCancel {
            branch: 0,
            reason: CancelReason::CopyReceived
        }]
    );
}

#[test]
fn timeout_of_canceled_transaction_is_answered_487_not_408() {
    let cfg = TmConfig {
        fr: 5_000,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    c.handle_cancel(BufRef::NONE, at(100), &cfg);
    let fired = run_until(&mut c, at(10_000), &cfg);
    let all = all_actions(&fired);
    assert!(all.contains(&Action::LocalReply {
        code: 487,
        reason: LocalReason::RequestTerminated
    }));
    assert!(
        !all.iter().any(|a| matches!(a, Action::SendCancel { .. })),
        "E3: no CANCEL ever sent"
    );
    assert_eq!(
        times_of(&fired, |a| matches!(a, Action::LocalReply { .. })),
        [5_000]
    );
}

#[test]
fn cancel_b_method_0_fakes_487_at_once() {
    let cfg = TmConfig {
        cancel_b_method: CancelBMethod::FakeReply,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let o = c.handle_cancel(BufRef::NONE, at(10), &cfg);
    assert_eq!(
        o.actions.as_slice(),
        [Action::LocalReply {
            code: 487,
            reason: LocalReason::RequestTerminated
        }]
    );
    assert!(run_until(&mut c, at(4_000), &cfg).iter().all(|f| {
        !f.actions
            .iter()
            .any(|a| matches!(a, Action::RetransmitRequest { .. }))
    }));
}

#[test]
fn cancel_b_method_2_sends_cancel_without_provisional() {
    let cfg = TmConfig {
        cancel_b_method: CancelBMethod::Always,
        ..TmConfig::default()
    };
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    let o = c.handle_cancel(BufRef::NONE, at(10), &cfg);
    assert_eq!(
        o.actions.as_slice(),
        [Action::SendCancel {
            branch: 0,
            reason: CancelReason::None
        }]
    );
}

#[test]
fn our_cancel_is_retransmitted_like_non_invite_until_its_reply() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(0), &cfg);
    c.handle_cancel(BufRef::NONE, at(0), &cfg);
    let fired = run_until(&mut c, at(2_000), &cfg);
    assert_eq!(
        times_of(&fired, |a| matches!(
            a,
            Action::RetransmitCancel { branch: 0 }
        )),
        [500, 1_500]
    );
    c.cancel_reply_received(0).unwrap();
    let fired = run_until(&mut c, at(10_000), &cfg);
    assert!(times_of(&fired, |a| matches!(a, Action::RetransmitCancel { .. })).is_empty());
}

#[test]
fn unanswered_cancel_stops_silently_at_its_fr() {
    let cfg = TmConfig::default();
    let mut c = with_branches(invite_cell(&cfg), 1, &cfg);
    reply(&mut c, 0, 180, at(0), &cfg);
    c.handle_cancel(BufRef::NONE, at(0), &cfg);
    let fired = run_until(&mut c, at(60_000), &cfg);
    let cancels = times_of(&fired, |a| matches!(a, Action::RetransmitCancel { .. }));
    assert_eq!(cancels.last(), Some(&27_500));
    assert!(cancels.iter().all(|&t| t < 30_000));
}

#[test]
fn born_canceled_invite_refuses_to_fork() {
    let cfg = TmConfig::default();
    let mut c = invite_cell(&cfg);
    c.mark_canceled();
    assert!(c.is_canceled());
    assert_eq!(
        c.add_branch(BufRef(2), false, at(0), &cfg),
        Err(TxError::Canceled)
    );
}
