//! Server transaction = the upstream side of a cell (replies we send upstream).
//!
//! Kamailio's schedule (spec §6.3): a negative final to an INVITE (and a locally generated
//! 2xx) is retransmitted over UDP at T1, 2·T1, … capped at T2 until the ACK arrives or the
//! wait timer, started at the same moment, deletes the cell (so 3 retransmissions with
//! defaults). Relayed 2xx, non-INVITE finals and provisionals are only re-sent when the
//! request is retransmitted.

use crate::action::BufRef;
use crate::client::TxClock;
use crate::timer::{Deadline, Millis, TM_LIFETIME_LIMIT_MS, retransmission_interval};

/// State of the server side.
///
/// ```text
///            1xx sent              final sent                 ACK (negative INVITE final)
///  Trying ───────────▶ Proceeding ───────────▶ Completed ─────────────────────────▶ Confirmed
///    │                                  ▲          │                                   │
///    └──────────── final sent ──────────┘          └──── wait timer ──▶ Terminated ◀───┘
/// ```
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Nothing sent upstream yet.
    Trying,
    /// A provisional was sent.
    Proceeding,
    /// A final was sent; on the wait timer (reply retransmission may run).
    Completed,
    /// The ACK for the negative final arrived; reply retransmission stopped.
    Confirmed,
    /// Wait timer expired: the cell must be deleted.
    Terminated,
}

const LOCAL_REPLY: u8 = 1;
const RELIABLE: u8 = 2;

/// Result of asking to keep a cell longer because it is still referenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitExtension {
    /// Wait timer re-armed for another `wt_timer`.
    Rearmed,
    /// `TM_LIFETIME_LIMIT` (90 s on wait) reached: unlink anyway.
    ForceDelete,
}

/// The upstream side: compact, `Copy`, no pointers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTx {
    /// Last reply sent upstream (set by the host after sending it).
    pub reply: BufRef,
    retr_at: Deadline,
    wait_at: Deadline,
    wait_start: Deadline,
    status: u16,
    retr_count: u8,
    state: ServerState,
    flags: u8,
}

impl ServerTx {
    /// A fresh server side.
    #[must_use]
    pub fn new(reliable: bool) -> ServerTx {
        ServerTx {
            reply: BufRef::NONE,
            retr_at: Deadline::NONE,
            wait_at: Deadline::NONE,
            wait_start: Deadline::NONE,
            status: 0,
            retr_count: 0,
            state: ServerState::Trying,
            flags: if reliable { RELIABLE } else { 0 },
        }
    }

    /// Last status sent upstream (0 = none).
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Current state.
    #[must_use]
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Whether the final upstream was built locally.
    #[must_use]
    pub fn locally_replied(&self) -> bool {
        self.flags & LOCAL_REPLY != 0
    }

    /// Reply retransmission and wait deadlines.
    #[must_use]
    pub fn deadlines(&self, clock: &TxClock) -> [Option<Millis>; 2] {
        [self.retr_at.get(clock.born), self.wait_at.get(clock.born)]
    }

    pub(crate) fn provisional_sent(&mut self, code: u16) {
        if self.status < 200 {
            self.status = code;
            if self.state == ServerState::Trying {
                self.state = ServerState::Proceeding;
            }
        }
    }

    /// A final was sent: start the wait timer and, for INVITE negative or local 2xx finals
    /// over UDP, reply retransmission.
    pub(crate) fn final_sent(
        &mut self,
        code: u16,
        local: bool,
        invite: bool,
        now: Millis,
        clock: &TxClock,
    ) {
        self.status = code;
        self.state = ServerState::Completed;
        if local {
            self.flags |= LOCAL_REPLY;
        }
        let retransmit = invite && (code >= 300 || local) && self.flags & RELIABLE == 0;
        self.retr_count = 0;
        self.retr_at = if retransmit {
            Deadline::at(clock.born, now.plus(clock.timers.t1))
        } else {
            Deadline::NONE
        };
        self.put_on_wait(now, clock);
    }

    /// Starts the wait timer unless already running (Kamailio `put_on_wait`).
    pub(crate) fn put_on_wait(&mut self, now: Millis, clock: &TxClock) {
        if !self.wait_at.is_armed() {
            self.wait_at = Deadline::at(clock.born, now.plus(clock.timers.wait));
            self.wait_start = Deadline::at(clock.born, now);
        }
    }

    /// Stops reply retransmission (`t_release`).
    pub(crate) fn stop_retransmission(&mut self) {
        self.retr_at = Deadline::NONE;
    }

    /// The ACK for our final arrived: stop reply retransmission.
    pub(crate) fn ack_received(&mut self) {
        self.retr_at = Deadline::NONE;
        if self.state == ServerState::Completed {
            self.state = ServerState::Confirmed;
        }
    }

    /// Fires reply retransmission if due; returns whether to re-send.
    pub(crate) fn poll_retransmission(&mut self, now: Millis, clock: &TxClock) -> bool {
        let Some(due) = self.retr_at.get(clock.born).filter(|&d| d <= now) else {
            return false;
        };
        self.retr_count = self.retr_count.saturating_add(1);
        let interval = retransmission_interval(clock.timers.t1, clock.timers.t2, self.retr_count);
        self.retr_at = Deadline::at(clock.born, due.plus(interval));
        true
    }

    /// Fires the wait timer if due; returns whether the cell must be deleted.
    pub(crate) fn poll_wait(&mut self, now: Millis, clock: &TxClock) -> bool {
        if !self.wait_at.due(clock.born, now) {
            return false;
        }
        self.wait_at = Deadline::NONE;
        self.retr_at = Deadline::NONE;
        self.state = ServerState::Terminated;
        true
    }

    /// Keeps a still-referenced cell another wait period, up to `TM_LIFETIME_LIMIT`.
    pub(crate) fn extend_wait(&mut self, now: Millis, clock: &TxClock) -> WaitExtension {
        let started = self.wait_start.get(clock.born).unwrap_or(now);
        if now.0.saturating_sub(started.0) >= TM_LIFETIME_LIMIT_MS {
            return WaitExtension::ForceDelete;
        }
        self.wait_at = Deadline::at(clock.born, now.plus(clock.timers.wait));
        self.state = ServerState::Completed;
        WaitExtension::Rearmed
    }
}

impl ServerTx {
    /// Writes the server side for [`crate::wire`].
    pub(crate) fn encode(&self, w: &mut crate::wire::Writer<'_>) {
        w.u32(self.reply.0);
        w.u32(self.retr_at.raw());
        w.u32(self.wait_at.raw());
        w.u32(self.wait_start.raw());
        w.u16(self.status);
        w.u8(self.retr_count);
        w.u8(self.state as u8);
        w.u8(self.flags);
    }

    /// Reads what [`ServerTx::encode`] wrote, validating the state.
    pub(crate) fn decode(
        r: &mut crate::wire::Reader<'_>,
    ) -> Result<ServerTx, crate::wire::WireError> {
        let reply = BufRef(r.u32()?);
        let retr_at = Deadline::from_raw(r.u32()?);
        let wait_at = Deadline::from_raw(r.u32()?);
        let wait_start = Deadline::from_raw(r.u32()?);
        let status = r.u16()?;
        let retr_count = r.u8()?;
        let state = match r.u8()? {
            0 => ServerState::Trying,
            1 => ServerState::Proceeding,
            2 => ServerState::Completed,
            3 => ServerState::Confirmed,
            4 => ServerState::Terminated,
            _ => return Err(crate::wire::WireError("server state")),
        };
        if status > 699 {
            return Err(crate::wire::WireError("server status code"));
        }
        Ok(ServerTx {
            reply,
            retr_at,
            wait_at,
            wait_start,
            status,
            retr_count,
            state,
            flags: r.u8()?,
        })
    }
}
