//! Client transaction = one branch of a proxy cell (request sent downstream).
//!
//! Kamailio's schedule (spec §6.2): the request is retransmitted over UDP at T1, 2·T1, 4·T1, …
//! capped at T2 for INVITE **and** non-INVITE; FR = `fr_timer` from the send; an INVITE
//! provisional stops retransmission and switches FR to `fr_inv_timer`; a non-INVITE
//! provisional switches the retransmission interval to T2. Once we sent a CANCEL on the
//! branch, the retransmission slot serves the CANCEL (the INVITE's retransmissions have
//! stopped by then), with its own silent FR.

use crate::action::{BufRef, RouteId};
use crate::cancel::CancelReason;
use crate::timer::{Deadline, Millis, TimerValues, retransmission_interval};

/// The time frame of one transaction: birth and its (possibly overridden) timer values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxClock {
    /// When the cell was created.
    pub born: Millis,
    /// Its timer values.
    pub timers: TimerValues,
}

impl TxClock {
    /// Creation time + max lifetime: every FR deadline is clamped to it.
    #[must_use]
    pub fn end_of_life(&self) -> Millis {
        self.born.plus(self.timers.max_lifetime)
    }

    fn at(&self, at: Millis) -> Deadline {
        Deadline::at(self.born, at)
    }

    fn fr_at(&self, now: Millis, ms: u32) -> Deadline {
        self.at(now.plus(ms).min(self.end_of_life()))
    }
}

/// State of a branch.
///
/// ```text
///            start               1xx                 final reply / FR expiry (faked 408|487)
///  Unused ─────────▶ Calling ─────────▶ Proceeding ──────────────────────────▶ Completed
///                       │                                                        ▲
///                       └──── final reply / FR expiry / killed (no reply) ───────┘
/// ```
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Slot not used.
    Unused,
    /// Request sent, nothing received.
    Calling,
    /// A provisional was received.
    Proceeding,
    /// A final reply was received or faked, or the branch was stopped.
    Completed,
}

const RELIABLE: u8 = 1;
const FAKED: u8 = 2;
const IGNORED: u8 = 4;
const CANCEL_PENDING: u8 = 8;
const CANCEL_SENT: u8 = 16;
const TIMED_OUT: u8 = 32;
const RETR_T2: u8 = 64;
const INVITE: u8 = 128;

/// One branch: compact, `Copy`, no pointers (lives in shared memory).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTx {
    /// The request as sent on this branch.
    pub request: BufRef,
    /// The stored final reply (`NONE` when none or faked).
    pub reply: BufRef,
    retr_at: Deadline,
    fr_at: Deadline,
    cancel_fr_at: Deadline,
    /// Script branch flags.
    pub bflags: u32,
    code: u16,
    on_failure: RouteId,
    on_reply: RouteId,
    cancel_reason: CancelReason,
    state: ClientState,
    retr_count: u8,
    flags: u8,
    leg: u8,
}

impl ClientTx {
    /// An unused slot.
    pub const UNUSED: ClientTx = ClientTx {
        request: BufRef::NONE,
        reply: BufRef::NONE,
        retr_at: Deadline::NONE,
        fr_at: Deadline::NONE,
        cancel_fr_at: Deadline::NONE,
        bflags: 0,
        code: 0,
        on_failure: RouteId::NONE,
        on_reply: RouteId::NONE,
        cancel_reason: CancelReason::None,
        state: ClientState::Unused,
        retr_count: 0,
        flags: 0,
        leg: 0,
    };

    /// A branch whose request was just sent at `now`.
    #[must_use]
    pub fn start(
        request: BufRef,
        now: Millis,
        clock: &TxClock,
        invite: bool,
        reliable: bool,
    ) -> ClientTx {
        let mut flags = 0;
        if reliable {
            flags |= RELIABLE;
        }
        if invite {
            flags |= INVITE;
        }
        ClientTx {
            request,
            retr_at: if reliable {
                Deadline::NONE
            } else {
                clock.at(now.plus(clock.timers.t1))
            },
            fr_at: clock.fr_at(now, clock.timers.fr),
            state: ClientState::Calling,
            flags,
            ..ClientTx::UNUSED
        }
    }

    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Last code received or faked (0 = none).
    #[must_use]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// Whether a final reply was received or faked.
    #[must_use]
    pub fn is_final(&self) -> bool {
        self.code >= 200
    }

    /// Whether the code was faked locally.
    #[must_use]
    pub fn is_faked(&self) -> bool {
        self.has(FAKED)
    }

    /// Whether the branch's FR timer fired (`t_branch_timeout`).
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.has(TIMED_OUT)
    }

    /// Whether a provisional was received.
    #[must_use]
    pub fn had_provisional(&self) -> bool {
        self.state == ClientState::Proceeding || (self.code >= 100)
    }

    /// Whether we sent a CANCEL on this branch.
    #[must_use]
    pub fn cancel_sent(&self) -> bool {
        self.has(CANCEL_SENT)
    }

    /// Whether a CANCEL is owed as soon as a provisional arrives (`cancel_b_method=1`).
    #[must_use]
    pub fn cancel_pending(&self) -> bool {
        self.has(CANCEL_PENDING)
    }

    /// The Reason of the CANCEL sent on this branch.
    #[must_use]
    pub fn cancel_reason(&self) -> CancelReason {
        self.cancel_reason
    }

    /// Excluded from winner picking.
    #[must_use]
    pub fn is_ignored(&self) -> bool {
        self.has(IGNORED)
    }

    /// failure_route armed for this branch.
    #[must_use]
    pub fn on_failure(&self) -> RouteId {
        self.on_failure
    }

    /// onreply_route armed for this branch.
    #[must_use]
    pub fn on_reply(&self) -> RouteId {
        self.on_reply
    }

    /// Failure-route leg the branch was created in (0 = first).
    #[must_use]
    pub fn leg(&self) -> u8 {
        self.leg
    }

    /// Request retransmission / FR / CANCEL-FR deadlines.
    #[must_use]
    pub fn deadlines(&self, clock: &TxClock) -> [Option<Millis>; 3] {
        [
            self.retr_at.get(clock.born),
            self.fr_at.get(clock.born),
            self.cancel_fr_at.get(clock.born),
        ]
    }

    pub(crate) fn arm_routes(&mut self, on_failure: RouteId, on_reply: RouteId, leg: u8) {
        self.on_failure = on_failure;
        self.on_reply = on_reply;
        self.leg = leg;
    }

    pub(crate) fn clear_failure_route(&mut self) {
        self.on_failure = RouteId::NONE;
    }

    pub(crate) fn ignore(&mut self) {
        self.flags |= IGNORED;
    }

    /// A provisional arrived (spec §5.1 step 4 and §6.2 FR rules).
    pub(crate) fn provisional(
        &mut self,
        code: u16,
        now: Millis,
        clock: &TxClock,
        restart_each: bool,
    ) {
        let first = !self.had_provisional();
        if self.state == ClientState::Calling {
            self.state = ClientState::Proceeding;
        }
        if self.has(INVITE) {
            if !self.has(CANCEL_SENT) {
                self.retr_at = Deadline::NONE;
            }
            let restart = first || restart_each || (code >= 180 && code > self.code);
            if restart && self.state == ClientState::Proceeding {
                self.fr_at = clock.fr_at(now, clock.timers.fr_inv);
            }
        } else if self.retr_at.is_armed() && !self.has(RETR_T2) {
            self.flags |= RETR_T2;
            self.retr_at = clock.at(now.plus(clock.timers.t2));
        }
    }

    /// Records the code that the relay decision accepted.
    pub(crate) fn set_code(&mut self, code: u16) {
        self.code = code;
    }

    /// A final reply arrived: stop the request's timers (a CANCEL keeps its own).
    pub(crate) fn final_received(&mut self) {
        self.state = ClientState::Completed;
        self.stop_request_timers();
    }

    /// Stops request retransmission and FR (Kamailio `cleanup_uac_timers`).
    pub(crate) fn stop_request_timers(&mut self) {
        if !self.has(CANCEL_SENT) {
            self.retr_at = Deadline::NONE;
        }
        self.fr_at = Deadline::NONE;
    }

    /// Finishes the branch with a locally faked final code.
    pub(crate) fn fake_final(&mut self, code: u16, timed_out: bool) {
        self.code = code;
        self.reply = BufRef::NONE;
        self.flags |= FAKED;
        if timed_out {
            self.flags |= TIMED_OUT;
        }
        self.final_received();
    }

    pub(crate) fn mark_cancel_pending(&mut self) {
        self.flags |= CANCEL_PENDING;
    }

    /// We send a CANCEL now: its retransmissions take the retransmission slot.
    pub(crate) fn send_cancel(&mut self, now: Millis, clock: &TxClock, reason: CancelReason) {
        self.flags = (self.flags | CANCEL_SENT) & !(CANCEL_PENDING | RETR_T2);
        self.cancel_reason = reason;
        self.retr_count = 0;
        self.retr_at = if self.has(RELIABLE) {
            Deadline::NONE
        } else {
            clock.at(now.plus(clock.timers.t1))
        };
        self.cancel_fr_at = clock.at(now.plus(clock.timers.fr));
    }

    /// A reply to our CANCEL arrived: stop its retransmission.
    pub(crate) fn cancel_replied(&mut self) {
        if self.has(CANCEL_SENT) {
            self.retr_at = Deadline::NONE;
            self.cancel_fr_at = Deadline::NONE;
        }
    }

    /// Fires the retransmission timer if due: `Some(true)` for the CANCEL, `Some(false)` for
    /// the request. The next deadline follows the schedule from the due time, not from `now`.
    pub(crate) fn poll_retransmission(&mut self, now: Millis, clock: &TxClock) -> Option<bool> {
        let due = self.retr_at.get(clock.born).filter(|&d| d <= now)?;
        self.retr_count = self.retr_count.saturating_add(1);
        let interval = if self.has(RETR_T2) {
            clock.timers.t2
        } else {
            retransmission_interval(clock.timers.t1, clock.timers.t2, self.retr_count)
        };
        self.retr_at = clock.at(due.plus(interval));
        Some(self.has(CANCEL_SENT))
    }

    /// Whether the FR timer is due.
    pub(crate) fn fr_due(&self, now: Millis, clock: &TxClock) -> bool {
        self.fr_at.due(clock.born, now)
    }

    /// Stops the CANCEL's retransmissions silently when its own FR is due.
    pub(crate) fn poll_cancel_fr(&mut self, now: Millis, clock: &TxClock) {
        if self.cancel_fr_at.due(clock.born, now) {
            self.cancel_replied();
        }
    }

    /// Whether the request is retransmitted (i.e. the transport is unreliable).
    #[must_use]
    pub fn reliable(&self) -> bool {
        self.has(RELIABLE)
    }
}

impl ClientTx {
    /// Writes this branch for [`crate::wire`].
    pub(crate) fn encode(&self, w: &mut crate::wire::Writer<'_>) {
        w.u32(self.request.0);
        w.u32(self.reply.0);
        w.u32(self.retr_at.raw());
        w.u32(self.fr_at.raw());
        w.u32(self.cancel_fr_at.raw());
        w.u32(self.bflags);
        w.u16(self.code);
        w.u16(self.on_failure.0);
        w.u16(self.on_reply.0);
        match self.cancel_reason {
            CancelReason::None => {
                w.u8(0);
                w.u16(0);
            }
            CancelReason::Cause(c) => {
                w.u8(1);
                w.u16(c);
            }
            CancelReason::CopyReceived => {
                w.u8(2);
                w.u16(0);
            }
        }
        w.u8(self.state as u8);
        w.u8(self.retr_count);
        w.u8(self.flags);
        w.u8(self.leg);
    }

    /// Reads a branch written by [`ClientTx::encode`], validating every discriminant.
    pub(crate) fn decode(
        r: &mut crate::wire::Reader<'_>,
    ) -> Result<ClientTx, crate::wire::WireError> {
        use crate::wire::WireError;
        let request = BufRef(r.u32()?);
        let reply = BufRef(r.u32()?);
        let retr_at = Deadline::from_raw(r.u32()?);
        let fr_at = Deadline::from_raw(r.u32()?);
        let cancel_fr_at = Deadline::from_raw(r.u32()?);
        let bflags = r.u32()?;
        let code = r.u16()?;
        let on_failure = RouteId(r.u16()?);
        let on_reply = RouteId(r.u16()?);
        let (tag, cause) = (r.u8()?, r.u16()?);
        let cancel_reason = match tag {
            0 => CancelReason::None,
            1 => CancelReason::Cause(cause),
            2 => CancelReason::CopyReceived,
            _ => return Err(WireError("cancel reason")),
        };
        let state = match r.u8()? {
            0 => ClientState::Unused,
            1 => ClientState::Calling,
            2 => ClientState::Proceeding,
            3 => ClientState::Completed,
            _ => return Err(WireError("branch state")),
        };
        if code > 699 {
            return Err(WireError("branch status code"));
        }
        Ok(ClientTx {
            request,
            reply,
            retr_at,
            fr_at,
            cancel_fr_at,
            bflags,
            code,
            on_failure,
            on_reply,
            cancel_reason,
            state,
            retr_count: r.u8()?,
            flags: r.u8()?,
            leg: r.u8()?,
        })
    }
}
