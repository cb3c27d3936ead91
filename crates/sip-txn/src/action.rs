//! Handles, outputs and errors of the state machines.

use crate::cancel::CancelReason;
use crate::reply::LocalReason;

/// Opaque handle to a variable-size buffer (received request, outgoing request, stored reply)
/// that the host keeps, e.g. an offset into shared memory.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufRef(pub u32);

impl BufRef {
    /// No buffer.
    pub const NONE: BufRef = BufRef(u32::MAX);

    /// Whether this refers to a buffer.
    #[must_use]
    pub fn is_some(self) -> bool {
        self != BufRef::NONE
    }
}

/// A route block by small integer id (the script compiler numbers them); 0 = none.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RouteId(pub u16);

impl RouteId {
    /// No route armed.
    pub const NONE: RouteId = RouteId(0);

    /// Whether a route is armed.
    #[must_use]
    pub fn is_some(self) -> bool {
        self.0 != 0
    }
}

/// One thing the host must do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the hop-by-hop ACK for a ≥300 reply on this INVITE branch.
    SendAck {
        /// Branch index.
        branch: u8,
    },
    /// Build and send a CANCEL from this branch's request (spec §4.4).
    SendCancel {
        /// Branch index.
        branch: u8,
        /// Reason header to put in it.
        reason: CancelReason,
    },
    /// Re-send this branch's request unchanged.
    RetransmitRequest {
        /// Branch index.
        branch: u8,
    },
    /// Re-send the CANCEL sent on this branch unchanged.
    RetransmitCancel {
        /// Branch index.
        branch: u8,
    },
    /// Re-send the last reply sent upstream (`ServerTx::reply`).
    RetransmitReply,
    /// Relay this branch's current reply upstream.
    Relay {
        /// Branch index.
        branch: u8,
        /// Its code.
        code: u16,
    },
    /// Relay the winner with the WWW-/Proxy-Authenticate headers of every branch in
    /// `challenges` (401/407 aggregation).
    RelayAggregated {
        /// Winning branch.
        branch: u8,
        /// Its code (401 or 407).
        code: u16,
        /// Bit `n` set for each branch whose challenge must be included.
        challenges: u32,
    },
    /// Build a reply locally and send it upstream.
    LocalReply {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: LocalReason,
    },
    /// Keep this branch's reply (the host must not free its buffer): it may win later.
    Store {
        /// Branch index.
        branch: u8,
    },
    /// Drop the reply just received (not relayed).
    Discard,
    /// Run this failure_route with the winning branch's reply, then call
    /// `Cell::failure_route_finished`.
    RunFailureRoute {
        /// Route to run.
        route: RouteId,
        /// Winning branch.
        branch: u8,
        /// Winning code (`$T_reply_code`).
        code: u16,
    },
    /// The wait timer expired: unlink the cell and free it (or `Cell::extend_wait` while
    /// still referenced).
    Delete,
}

/// Maximum actions one call can produce (≤ 3 per branch + a few for the server side).
pub const MAX_ACTIONS: usize = 3 * crate::branch::MAX_BRANCHES_LIMIT as usize + 8;

/// A fixed-capacity list of actions (no heap).
#[derive(Clone, Copy, Debug)]
pub struct ActionList {
    items: [Action; MAX_ACTIONS],
    len: usize,
}

impl Default for ActionList {
    fn default() -> Self {
        ActionList {
            items: [Action::Discard; MAX_ACTIONS],
            len: 0,
        }
    }
}

impl ActionList {
    /// Appends an action. The capacity bound above holds for every call of the core; if it
    /// were ever exceeded, the action is dropped rather than panicking on wire input.
    pub fn push(&mut self, a: Action) {
        debug_assert!(self.len < MAX_ACTIONS, "action list overflow");
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = a;
            self.len += 1;
        }
    }

    /// The actions in order.
    #[must_use]
    pub fn as_slice(&self) -> &[Action] {
        &self.items[..self.len]
    }

    /// Whether `a` is among the actions.
    #[must_use]
    pub fn contains(&self, a: &Action) -> bool {
        self.as_slice().contains(a)
    }

    /// Number of actions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no actions.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterates the actions.
    pub fn iter(&self) -> core::slice::Iter<'_, Action> {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a ActionList {
    type Item = &'a Action;
    type IntoIter = core::slice::Iter<'a, Action>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Errors of the transaction core; each knows the SIP answer tm gives when `t_relay` fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// The transaction is canceled: no new branch (`487 Transaction canceled`).
    Canceled,
    /// A 6xx blocked new branches.
    SixxBlocked,
    /// `max_branches` reached.
    TooManyBranches,
    /// A final reply was already sent upstream.
    FinalAlreadySent,
    /// Branch index out of range.
    NoSuchBranch,
    /// Status code outside 100..=699.
    BadStatus,
    /// The cell is a local (UAC) transaction with no upstream side.
    NoServerSide,
}

impl TxError {
    /// The reply tm sends upstream when `t_relay` fails with this error, if any.
    #[must_use]
    pub fn sip_reply(self) -> Option<(u16, &'static str)> {
        match self {
            TxError::Canceled => Some((487, "Transaction canceled")),
            TxError::SixxBlocked | TxError::TooManyBranches => Some((500, "Server Internal Error")),
            TxError::FinalAlreadySent
            | TxError::NoSuchBranch
            | TxError::BadStatus
            | TxError::NoServerSide => None,
        }
    }
}

impl core::fmt::Display for TxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TxError::Canceled => "transaction canceled",
            TxError::SixxBlocked => "new branches blocked by a 6xx reply",
            TxError::TooManyBranches => "max_branches reached",
            TxError::FinalAlreadySent => "a final reply was already sent",
            TxError::NoSuchBranch => "no such branch",
            TxError::BadStatus => "status code out of range",
            TxError::NoServerSide => "local transaction has no server side",
        })
    }
}

impl std::error::Error for TxError {}
