//! `t_check_trans()` outcomes (spec §3.2) as a value tm maps to a script return code.

use crate::key::Match;

/// Where the script is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// `request_route` (and sub-routes called from it).
    Request,
    /// `failure_route`, `branch_route`, `branch_failure_route` or `onreply_route`.
    TransactionRoute,
}

/// The message `t_check_trans()` was called for, with the lookup result tm obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckedMessage {
    /// Required headers missing or unparseable.
    ParseError,
    /// A reply; `found` = it matched a cell (§2.7).
    Reply {
        /// Whether the reply matched a transaction.
        found: bool,
    },
    /// A CANCEL; `invite_found` = `t_lookupOriginalT` found the INVITE (§2.5).
    Cancel {
        /// Whether the INVITE being canceled exists.
        invite_found: bool,
    },
    /// Any other request (including ACK) with the best match over its bucket (§2.4).
    Request(Match),
}

/// What `t_check_trans()` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckTrans {
    /// Called in a transaction route: nothing to do (1).
    InTransactionRoute,
    /// Reply matched (1).
    ReplyFound,
    /// Reply did not match (-1).
    ReplyNotFound,
    /// The INVITE being canceled exists (1); nothing is created or replied.
    CancelTargetFound,
    /// No INVITE for this CANCEL (-1).
    CancelTargetNotFound,
    /// ACK to a negative (or locally replied) INVITE: call `Cell::ack_received`; script ends (0).
    AckAbsorbed,
    /// Possible end-to-end ACK (1).
    E2eAck,
    /// Retransmission: re-send the last reply (`Cell::request_retransmitted`); script ends (0).
    Retransmission,
    /// New request (-1).
    NewRequest,
    /// Parse error (-1).
    ParseError,
}

impl CheckTrans {
    /// Decides the outcome.
    #[must_use]
    pub fn decide(route: RouteKind, msg: CheckedMessage) -> CheckTrans {
        if route == RouteKind::TransactionRoute {
            return CheckTrans::InTransactionRoute;
        }
        match msg {
            CheckedMessage::ParseError => CheckTrans::ParseError,
            CheckedMessage::Reply { found: true } => CheckTrans::ReplyFound,
            CheckedMessage::Reply { found: false } => CheckTrans::ReplyNotFound,
            CheckedMessage::Cancel { invite_found: true } => CheckTrans::CancelTargetFound,
            CheckedMessage::Cancel {
                invite_found: false,
            } => CheckTrans::CancelTargetNotFound,
            CheckedMessage::Request(Match::AckToNegative | Match::AckToLocal2xx) => {
                CheckTrans::AckAbsorbed
            }
            CheckedMessage::Request(Match::E2eAck) => CheckTrans::E2eAck,
            CheckedMessage::Request(Match::Retransmission) => CheckTrans::Retransmission,
            // A CANCEL cell for this request is not its transaction.
            CheckedMessage::Request(Match::NoMatch | Match::CancelExists) => CheckTrans::NewRequest,
        }
    }

    /// The script return value (0 ends the script).
    #[must_use]
    pub fn return_code(self) -> i32 {
        match self {
            CheckTrans::InTransactionRoute
            | CheckTrans::ReplyFound
            | CheckTrans::CancelTargetFound
            | CheckTrans::E2eAck => 1,
            CheckTrans::AckAbsorbed | CheckTrans::Retransmission => 0,
            CheckTrans::ReplyNotFound
            | CheckTrans::CancelTargetNotFound
            | CheckTrans::NewRequest
            | CheckTrans::ParseError => -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(m: CheckedMessage) -> CheckTrans {
        CheckTrans::decide(RouteKind::Request, m)
    }

    #[test]
    fn check_trans_in_transaction_routes_returns_true_without_lookup() {
        let c = CheckTrans::decide(RouteKind::TransactionRoute, CheckedMessage::ParseError);
        assert_eq!(c, CheckTrans::InTransactionRoute);
        assert_eq!(c.return_code(), 1);
    }

    #[test]
    fn check_trans_reply_found_or_not() {
        assert_eq!(req(CheckedMessage::Reply { found: true }).return_code(), 1);
        assert_eq!(
            req(CheckedMessage::Reply { found: false }).return_code(),
            -1
        );
    }

    #[test]
    fn check_trans_cancel_reports_whether_invite_exists() {
        let c = req(CheckedMessage::Cancel { invite_found: true });
        assert_eq!((c, c.return_code()), (CheckTrans::CancelTargetFound, 1));
        let c = req(CheckedMessage::Cancel {
            invite_found: false,
        });
        assert_eq!((c, c.return_code()), (CheckTrans::CancelTargetNotFound, -1));
    }

    #[test]
    fn check_trans_ack_to_negative_is_absorbed_and_ends_script() {
        let c = req(CheckedMessage::Request(Match::AckToNegative));
        assert_eq!((c, c.return_code()), (CheckTrans::AckAbsorbed, 0));
    }

    #[test]
    fn check_trans_ack_to_local_2xx_is_absorbed_and_ends_script() {
        let c = req(CheckedMessage::Request(Match::AckToLocal2xx));
        assert_eq!((c, c.return_code()), (CheckTrans::AckAbsorbed, 0));
    }

    #[test]
    fn check_trans_retransmission_resends_and_ends_script() {
        let c = req(CheckedMessage::Request(Match::Retransmission));
        assert_eq!((c, c.return_code()), (CheckTrans::Retransmission, 0));
    }

    #[test]
    fn check_trans_e2e_ack_returns_true() {
        assert_eq!(req(CheckedMessage::Request(Match::E2eAck)).return_code(), 1);
    }

    #[test]
    fn check_trans_new_request_and_parse_error_return_false() {
        assert_eq!(
            req(CheckedMessage::Request(Match::NoMatch)).return_code(),
            -1
        );
        assert_eq!(
            req(CheckedMessage::Request(Match::CancelExists)),
            CheckTrans::NewRequest
        );
        assert_eq!(req(CheckedMessage::ParseError).return_code(), -1);
    }
}
