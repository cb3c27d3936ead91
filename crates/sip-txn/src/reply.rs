//! Best-reply choice across branches (spec §5.3) and the phrases of locally built replies.

/// Kamailio's reply priority (`get_prio`): lower wins; equal values → lower branch index.
///
/// | class | value |
/// |---|---|
/// | 2xx | 0 + xx |
/// | 6xx | 1000 + xx |
/// | 3xx | 3000 + xx |
/// | 401 407 415 420 484 | 4000 + xx |
/// | other 4xx (incl. local 408, 487) | 4100 + xx |
/// | 5xx | 5000 + xx |
/// | ≥ 700 | 10000 + code |
/// | 1xx | 11000 + code, 0–99 | 32000 + code (only "nothing") |
#[must_use]
pub fn reply_priority(code: u16) -> u32 {
    let c = u32::from(code);
    let xx = c % 100;
    match code {
        0..=99 => 32_000 + c,
        100..=199 => 11_000 + c,
        200..=299 => xx,
        300..=399 => 3_000 + xx,
        401 | 407 | 415 | 420 | 484 => 4_000 + xx,
        400..=499 => 4_100 + xx,
        500..=599 => 5_000 + xx,
        600..=699 => 1_000 + xx,
        _ => 10_000 + c,
    }
}

/// What the winner selection needs to know about one branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchOutcome {
    /// Last code received or faked (0 = none yet).
    pub code: u16,
    /// The code was faked locally (FR timeout, `cancel_b_method=0`).
    pub faked: bool,
    /// Excluded from picking: its reply was discarded (`failure_reply_mode`, `t_drop_replies`)
    /// or the branch was killed without ever answering.
    pub ignored: bool,
}

/// Result of a winner search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Some considered branch has no final reply yet.
    Pending,
    /// Every considered branch is final; no branch is eligible (all ignored).
    Nothing,
    /// The best branch.
    Winner {
        /// Branch index.
        branch: u8,
        /// Its code.
        code: u16,
    },
}

/// Picks the winning branch (Kamailio `t_pick_branch`); `faked_reply_prio` penalises faked
/// replies (default 0).
#[must_use]
pub fn pick_winner(branches: &[BranchOutcome], faked_reply_prio: u32) -> Pick {
    let mut best: Option<(u32, u8, u16)> = None;
    for (i, b) in branches.iter().enumerate() {
        if b.ignored {
            continue;
        }
        if b.code < 200 {
            return Pick::Pending;
        }
        let prio = reply_priority(b.code) + if b.faked { faked_reply_prio } else { 0 };
        if best.is_none_or(|(p, _, _)| prio < p) {
            // At most 32 branches, so the index fits a u8.
            best = Some((prio, i as u8, b.code));
        }
    }
    best.map_or(Pick::Nothing, |(_, branch, code)| Pick::Winner {
        branch,
        code,
    })
}

/// Reason phrases of replies tm builds itself.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalReason {
    /// `408 Request Timeout` (branch FR expiry).
    RequestTimeout,
    /// `487 Request Terminated` (faked reply on a canceled transaction).
    RequestTerminated,
    /// `487 Request canceled` (CANCEL before any branch existed).
    RequestCanceled,
    /// `487 Transaction canceled` (`t_relay` on a canceled transaction).
    TransactionCanceled,
    /// `500 Service Unavailable` (`remap_503_500`).
    ServiceUnavailable,
    /// `500 Server Internal Error` (no reply left to relay after `failure_reply_mode` dropped them).
    InternalError,
    /// `200 canceling` (CANCEL accepted, branches being canceled).
    Canceling,
    /// `200 ok -- no more pending branches`.
    NoMorePendingBranches,
    /// `500 cancel error`.
    CancelError,
    /// Script-supplied phrase (`t_reply(code, reason)`): the host keeps the text.
    Script,
}

impl LocalReason {
    /// The phrase as Kamailio writes it (empty for `Script`).
    #[must_use]
    pub fn phrase(self) -> &'static str {
        match self {
            LocalReason::RequestTimeout => "Request Timeout",
            LocalReason::RequestTerminated => "Request Terminated",
            LocalReason::RequestCanceled => "Request canceled",
            LocalReason::TransactionCanceled => "Transaction canceled",
            LocalReason::ServiceUnavailable => "Service Unavailable",
            LocalReason::InternalError => "Server Internal Error",
            LocalReason::Canceling => "canceling",
            LocalReason::NoMorePendingBranches => "ok -- no more pending branches",
            LocalReason::CancelError => "cancel error",
            LocalReason::Script => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(code: u16) -> BranchOutcome {
        BranchOutcome {
            code,
            faked: false,
            ignored: false,
        }
    }

    fn winner(codes: &[u16]) -> Pick {
        let v: Vec<_> = codes.iter().map(|&c| got(c)).collect();
        pick_winner(&v, 0)
    }

    #[test]
    fn winner_404_beats_486() {
        assert_eq!(
            winner(&[486, 404]),
            Pick::Winner {
                branch: 1,
                code: 404
            }
        );
    }

    #[test]
    fn winner_408_beats_486() {
        assert_eq!(
            winner(&[486, 408]),
            Pick::Winner {
                branch: 1,
                code: 408
            }
        );
    }

    #[test]
    fn winner_6xx_beats_3xx_beats_auth_4xx_beats_other_4xx_beats_5xx() {
        assert_eq!(
            winner(&[302, 603, 401, 404, 500]),
            Pick::Winner {
                branch: 1,
                code: 603
            }
        );
        assert_eq!(
            winner(&[401, 404, 500, 302]),
            Pick::Winner {
                branch: 3,
                code: 302
            }
        );
        assert_eq!(
            winner(&[404, 500, 407]),
            Pick::Winner {
                branch: 2,
                code: 407
            }
        );
        assert_eq!(
            winner(&[500, 480]),
            Pick::Winner {
                branch: 1,
                code: 480
            }
        );
        assert_eq!(
            winner(&[503, 500]),
            Pick::Winner {
                branch: 1,
                code: 500
            }
        );
    }

    #[test]
    fn winner_ties_go_to_the_first_branch() {
        assert_eq!(
            winner(&[486, 486]),
            Pick::Winner {
                branch: 0,
                code: 486
            }
        );
        // 401 and 484 share priority 4000+xx: 401 (xx=1) wins.
        assert_eq!(
            winner(&[484, 401]),
            Pick::Winner {
                branch: 1,
                code: 401
            }
        );
    }

    #[test]
    fn winner_is_pending_while_any_branch_lacks_a_final() {
        assert_eq!(winner(&[486, 180]), Pick::Pending);
        assert_eq!(winner(&[0, 486]), Pick::Pending);
    }

    #[test]
    fn ignored_branches_are_not_picked_and_nothing_when_all_ignored() {
        let v = [
            BranchOutcome {
                code: 302,
                faked: false,
                ignored: true,
            },
            got(486),
        ];
        assert_eq!(
            pick_winner(&v, 0),
            Pick::Winner {
                branch: 1,
                code: 486
            }
        );
        let v = [BranchOutcome {
            code: 302,
            faked: false,
            ignored: true,
        }];
        assert_eq!(pick_winner(&v, 0), Pick::Nothing);
    }

    #[test]
    fn faked_reply_prio_penalises_local_timeouts() {
        let v = [
            BranchOutcome {
                code: 408,
                faked: true,
                ignored: false,
            },
            got(486),
        ];
        assert_eq!(
            pick_winner(&v, 0),
            Pick::Winner {
                branch: 0,
                code: 408
            }
        );
        assert_eq!(
            pick_winner(&v, 1000),
            Pick::Winner {
                branch: 1,
                code: 486
            }
        );
    }

    #[test]
    fn local_phrases_match_kamailio() {
        assert_eq!(
            LocalReason::NoMorePendingBranches.phrase(),
            "ok -- no more pending branches"
        );
        assert_eq!(
            LocalReason::ServiceUnavailable.phrase(),
            "Service Unavailable"
        );
        assert_eq!(LocalReason::RequestCanceled.phrase(), "Request canceled");
    }
}
