//! The sans-IO transaction core of siplab's tm module.
//!
//! * [`key`]: `TxKey` (RFC 3261 branch / RFC 2543 tuple) and matching of requests, ACKs,
//!   CANCELs and replies against candidate cells the caller takes from a bucket.
//! * [`branch`]: bucket hash and the Via branch that encodes bucket + branch number.
//! * [`client`] / [`server`]: per-branch and upstream state machines with Kamailio's timers.
//! * [`cell`]: the proxy cell (one server side, up to 12 branches), relay decisions, CANCEL
//!   bookkeeping and failure_route bookkeeping; [`reply`]: best-reply choice.
//! * [`check`]: `t_check_trans()` outcomes.
//!
//! Time is a value passed in ([`Millis`]); timers are data (deadlines in the cell, earliest via
//! [`Cell::next_deadline`]); outputs are [`Action`] values. No sockets, clocks, threads or
//! randomness; every state type is `Copy` with no pointers so it can live in shared memory.
//!
//! Memory: a `Cell` is 584 B in process memory (all 12 branch slots embedded), but what tm
//! keeps in shared memory is its [`wire`] encoding, which holds only the branches in use:
//! 97 B without a branch, +37 B per branch (134 B for a one-branch INVITE that relayed a
//! 180). A whole open INVITE transaction for a ~700 B INVITE takes 1.7–2.0 KiB of shm —
//! measured, with the per-block breakdown, in `benches/runs/2026-11-21/tm-shm.md`; the test
//! `cell_and_branch_sizes_fit_the_shared_memory_budget` guards the cell's share.
//! Variable-size data is referenced through [`BufRef`] handles the host resolves; routes
//! are [`RouteId`]s.
#![forbid(unsafe_code)]

pub mod action;
pub mod branch;
pub mod cancel;
pub mod cell;
pub mod check;
pub mod client;
pub mod config;
pub mod key;
pub mod reply;
pub mod server;
pub mod timer;
pub mod wire;

#[cfg(test)]
mod tests;

/// Bytes one encoded branch takes (tests of the wire format).
#[cfg(test)]
pub(crate) fn client_wire_len() -> usize {
    let mut v = Vec::new();
    ClientTx::UNUSED.encode(&mut wire::Writer::new(&mut v));
    v.len()
}

pub use action::{Action, ActionList, BufRef, RouteId, TxError};
pub use branch::{
    BranchParam, CharValueFields, DecodedBranch, MAGIC_COOKIE, Md5Field, bucket_of, char_value,
    decode_branch, encode_branch,
};
pub use cancel::{CancelBMethod, CancelReason};
pub use cell::{CELL_BRANCHES, CancelOutcome, Cell, ReplyStep};
pub use check::{CheckTrans, CheckedMessage, RouteKind};
pub use client::{ClientState, ClientTx, TxClock};
pub use config::{FailureReplyMode, TmConfig};
pub use key::{
    Candidate, Match, MatchConfig, Method, ReplyCandidate, ReplyMatch, RequestKey, TxKey,
    ViaFields, match_cancel_target, match_reply, match_request,
};
pub use reply::{BranchOutcome, LocalReason, Pick, pick_winner, reply_priority};
pub use server::{ServerState, ServerTx, WaitExtension};
pub use timer::{
    Deadline, Millis, TICKS_PER_SECOND, TIMER_HZ_RANGE, Ticks, TimerValues, round_to_ticks,
    round_to_ticks_at,
};
pub use wire::WireError;
