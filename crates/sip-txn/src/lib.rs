//! The sans-IO transaction core of siplab's tm module.
//!
//! `TxKey` (RFC 3261 branch / RFC 2543 tuple) and matching of requests, ACKs, CANCELs and
//! replies; client and server transaction state machines with Kamailio's timer schedule;
//! the proxy cell (one server side, up to 12 branches) and best-reply choice. Time is a
//! value passed in; timers are data. No sockets, clocks, threads or randomness.
#![forbid(unsafe_code)]

pub mod branch;
pub mod key;
pub mod timer;

pub use branch::{
    BranchParam, CharValueFields, DecodedBranch, Md5Field, bucket_of, char_value, decode_branch,
    encode_branch,
};
pub use key::{
    Candidate, Match, MatchConfig, Method, ReplyCandidate, ReplyMatch, RequestKey, TxKey,
    ViaFields, match_cancel_target, match_reply, match_request,
};
pub use timer::{Deadline, Millis, Ticks, TimerValues, round_to_ticks};
