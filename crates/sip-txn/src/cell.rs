//! The proxy cell: one server side, up to [`CELL_BRANCHES`] client branches, flags and armed
//! routes. Plain `Copy` data with no pointers so tm can keep it in shared memory and step it
//! from any process under the bucket lock.
//!
//! Reply processing is split where Kamailio runs the per-branch `onreply_route`:
//! [`Cell::reply_received`] does spec §5.1 steps 3–4 (hop-by-hop ACK, timers, deferred
//! CANCEL), the host runs the route, then [`Cell::reply_routed`] decides (§5.2–§5.4).

use crate::action::{Action, ActionList, BufRef, RouteId, TxError};
use crate::branch::{DEFAULT_MAX_BRANCHES, Md5Field};
use crate::cancel::{CancelBMethod, CancelReason};
use crate::client::{ClientState, ClientTx, TxClock};
use crate::config::{FailureReplyMode, TmConfig};
use crate::key::{Method, ReplyCandidate};
use crate::reply::{BranchOutcome, LocalReason, Pick, pick_winner};
use crate::server::{ServerTx, WaitExtension};
use crate::timer::{Millis, TimerValues};

/// Branch slots stored in a cell; `max_branches` above this is clamped to it.
pub const CELL_BRANCHES: usize = DEFAULT_MAX_BRANCHES as usize;

const CANCELED: u8 = 1;
const SIXXX: u8 = 2;
const LOCAL: u8 = 4;
const DROP_REPLIES: u8 = 8;
const IN_FAILURE: u8 = 16;

/// What to do after [`Cell::reply_received`].
#[derive(Clone, Copy, Debug)]
pub struct ReplyStep {
    /// Send these first (hop-by-hop ACK, deferred CANCEL).
    pub actions: ActionList,
    /// `Some(route)`: run this onreply_route, then call [`Cell::reply_routed`];
    /// `None` with `proceed`: call `reply_routed` directly.
    pub on_reply: Option<RouteId>,
    /// False when the reply is fully handled (provisional on a canceled branch: not relayed).
    pub proceed: bool,
}

/// Result of an end-to-end CANCEL on this INVITE cell.
#[derive(Clone, Copy, Debug)]
pub struct CancelOutcome {
    /// Code for the reply to the received CANCEL (sent first, spec §11 decision 8).
    pub cancel_reply_code: u16,
    /// Its phrase.
    pub cancel_reply_reason: LocalReason,
    /// What to do on the INVITE cell (CANCELs downstream, 487 upstream...).
    pub actions: ActionList,
}

/// A transaction cell.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Cell {
    born: Millis,
    timers: TimerValues,
    /// The received request (`NONE` for local transactions).
    pub request: BufRef,
    /// Reason headers of the received CANCEL, copied into the CANCELs we generate.
    pub e2e_reason: BufRef,
    /// The 32-char field of our branches.
    pub md5: Md5Field,
    /// Bucket index.
    pub bucket: u32,
    /// Script message flags saved with the transaction.
    pub msg_flags: u32,
    server: ServerTx,
    branches: [ClientTx; CELL_BRANCHES],
    on_failure: RouteId,
    on_reply: RouteId,
    on_branch: RouteId,
    method: Method,
    flags: u8,
    nr_branches: u8,
    leg: u8,
    failure_base: u8,
}

impl Cell {
    /// A cell for a received request (`t_newtran`).
    #[must_use]
    pub fn new_server(
        request: BufRef,
        method: Method,
        md5: Md5Field,
        bucket: u32,
        now: Millis,
        cfg: &TmConfig,
        reliable_upstream: bool,
    ) -> Cell {
        Cell {
            born: now,
            timers: cfg.timer_values(method == Method::Invite),
            request,
            e2e_reason: BufRef::NONE,
            md5,
            bucket,
            msg_flags: 0,
            server: ServerTx::new(reliable_upstream),
            branches: [ClientTx::UNUSED; CELL_BRANCHES],
            on_failure: RouteId::NONE,
            on_reply: RouteId::NONE,
            on_branch: RouteId::NONE,
            method,
            flags: 0,
            nr_branches: 0,
            leg: 0,
            failure_base: 0,
        }
    }

    /// A local (UAC) transaction, e.g. a dispatcher OPTIONS probe: no received request;
    /// "relay" actions mean "deliver to the local callback".
    #[must_use]
    pub fn new_local(
        method: Method,
        md5: Md5Field,
        bucket: u32,
        now: Millis,
        cfg: &TmConfig,
    ) -> Cell {
        let mut c = Cell::new_server(BufRef::NONE, method, md5, bucket, now, cfg, true);
        c.flags |= LOCAL;
        c
    }

    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    fn is_invite(&self) -> bool {
        self.method == Method::Invite
    }

    /// The time frame of this cell.
    #[must_use]
    pub fn clock(&self) -> TxClock {
        TxClock {
            born: self.born,
            timers: self.timers,
        }
    }

    /// Request method class.
    #[must_use]
    pub fn method(&self) -> Method {
        self.method
    }

    /// Overrides the timer values (`t_set_fr`, `t_set_retr`, `t_set_max_lifetime`); applies to
    /// timers armed from now on.
    pub fn set_timer_values(&mut self, timers: TimerValues) {
        self.timers = timers;
    }

    /// Current timer values.
    #[must_use]
    pub fn timer_values(&self) -> TimerValues {
        self.timers
    }

    /// Marks the transaction canceled (received CANCEL, or born after its CANCEL: §2.5).
    pub fn mark_canceled(&mut self) {
        self.flags |= CANCELED;
    }

    /// `t_is_canceled()`.
    #[must_use]
    pub fn is_canceled(&self) -> bool {
        self.has(CANCELED)
    }

    /// A 6xx blocked new branches.
    #[must_use]
    pub fn is_6xx_blocked(&self) -> bool {
        self.has(SIXXX)
    }

    /// `t_is_expired()`: the maximum lifetime has passed.
    #[must_use]
    pub fn is_expired(&self, now: Millis) -> bool {
        now > self.clock().end_of_life()
    }

    /// The upstream side.
    #[must_use]
    pub fn server(&self) -> &ServerTx {
        &self.server
    }

    /// Records the buffer holding the reply just sent upstream (for retransmissions).
    pub fn set_uas_reply(&mut self, reply: BufRef) {
        self.server.reply = reply;
    }

    /// Last status sent upstream.
    #[must_use]
    pub fn uas_status(&self) -> u16 {
        self.server.status()
    }

    /// Branches created so far.
    #[must_use]
    pub fn branches(&self) -> &[ClientTx] {
        &self.branches[..usize::from(self.nr_branches)]
    }

    /// Branch `i` if it exists.
    #[must_use]
    pub fn branch(&self, i: u8) -> Option<&ClientTx> {
        self.branches().get(usize::from(i))
    }

    /// Mutable branch `i` (e.g. to set `bflags`).
    pub fn branch_mut(&mut self, i: u8) -> Option<&mut ClientTx> {
        self.branches[..usize::from(self.nr_branches)].get_mut(usize::from(i))
    }

    /// `t_any_timeout()`: some branch's FR fired.
    #[must_use]
    pub fn any_timeout(&self) -> bool {
        self.branches().iter().any(ClientTx::timed_out)
    }

    /// `t_on_failure`: armed for branches created afterwards.
    pub fn arm_failure_route(&mut self, route: RouteId) {
        self.on_failure = route;
    }

    /// `t_on_reply`: armed for branches created afterwards.
    pub fn arm_reply_route(&mut self, route: RouteId) {
        self.on_reply = route;
    }

    /// `t_on_branch`: the host runs it before building each new branch.
    pub fn arm_branch_route(&mut self, route: RouteId) {
        self.on_branch = route;
    }

    /// Transaction-level failure route (cleared before a failure_route runs).
    #[must_use]
    pub fn failure_route(&self) -> RouteId {
        self.on_failure
    }

    /// Transaction-level branch route.
    #[must_use]
    pub fn branch_route(&self) -> RouteId {
        self.on_branch
    }

    /// Transaction-level onreply route (copied into each branch when it is created).
    #[must_use]
    pub fn reply_route(&self) -> RouteId {
        self.on_reply
    }

    /// `t_drop_replies()`: discard stored replies after the running failure_route.
    pub fn drop_replies(&mut self) {
        self.flags |= DROP_REPLIES;
    }

    /// What reply matching needs to know about this cell.
    #[must_use]
    pub fn reply_candidate(&self) -> ReplyCandidate {
        let cancel_sent = self
            .branches()
            .iter()
            .enumerate()
            .filter(|(_, b)| b.cancel_sent())
            .fold(0u32, |m, (i, _)| m | (1 << i));
        ReplyCandidate {
            md5: self.md5,
            method: self.method,
            nr_branches: self.nr_branches,
            cancel_sent,
        }
    }

    fn max_branches(cfg: &TmConfig) -> u8 {
        cfg.max_branches.min(CELL_BRANCHES as u8)
    }

    /// A new branch whose request the host sends at `now`. Arms the transaction's current
    /// failure/reply routes into the branch (spec §5.4).
    pub fn add_branch(
        &mut self,
        request: BufRef,
        reliable: bool,
        now: Millis,
        cfg: &TmConfig,
    ) -> Result<u8, TxError> {
        if self.has(CANCELED) {
            return Err(TxError::Canceled);
        }
        if self.has(SIXXX) {
            return Err(TxError::SixxBlocked);
        }
        if self.nr_branches >= Self::max_branches(cfg) {
            return Err(TxError::TooManyBranches);
        }
        let i = self.nr_branches;
        let clock = self.clock();
        let mut b = ClientTx::start(request, now, &clock, self.is_invite(), reliable);
        b.arm_routes(self.on_failure, self.on_reply, self.leg);
        self.branches[usize::from(i)] = b;
        self.nr_branches += 1;
        Ok(i)
    }

    fn check_branch(&self, i: u8) -> Result<usize, TxError> {
        let idx = usize::from(i);
        if idx < usize::from(self.nr_branches) {
            Ok(idx)
        } else {
            Err(TxError::NoSuchBranch)
        }
    }

    fn deferred_cancel_reason(&self, cfg: &TmConfig) -> CancelReason {
        if cfg.e2e_cancel_reason && self.e2e_reason.is_some() {
            CancelReason::CopyReceived
        } else if cfg.local_cancel_reason && self.server.status() >= 200 {
            CancelReason::Cause(self.server.status())
        } else {
            CancelReason::None
        }
    }

    /// Phase 1 of a reply on branch `i` (spec §5.1 steps 3–4).
    pub fn reply_received(
        &mut self,
        i: u8,
        code: u16,
        now: Millis,
        cfg: &TmConfig,
    ) -> Result<ReplyStep, TxError> {
        let idx = self.check_branch(i)?;
        if !(100..=699).contains(&code) {
            return Err(TxError::BadStatus);
        }
        let clock = self.clock();
        let invite = self.is_invite();
        let mut actions = ActionList::default();
        let reason = self.deferred_cancel_reason(cfg);
        let b = &mut self.branches[idx];
        if code >= 200 {
            if !b.is_final() {
                b.final_received();
            }
            if invite && code >= 300 {
                actions.push(Action::SendAck { branch: i });
            }
        } else if b.is_final() {
            // A late provisional changes nothing; the relay decision discards it.
        } else if invite && b.cancel_pending() {
            b.provisional(code, now, &clock, cfg.restart_fr_on_each_reply);
            b.send_cancel(now, &clock, reason);
            actions.push(Action::SendCancel { branch: i, reason });
            return Ok(ReplyStep {
                actions,
                on_reply: None,
                proceed: false,
            });
        } else {
            b.provisional(code, now, &clock, cfg.restart_fr_on_each_reply);
        }
        let route = b.on_reply();
        Ok(ReplyStep {
            actions,
            on_reply: route.is_some().then_some(route),
            proceed: true,
        })
    }

    /// A reply to the CANCEL we sent on branch `i`: stops its retransmission (absorbed).
    pub fn cancel_reply_received(&mut self, i: u8) -> Result<(), TxError> {
        let idx = self.check_branch(i)?;
        self.branches[idx].cancel_replied();
        Ok(())
    }

    /// Phase 2: what to relay (Kamailio `t_should_relay_response`, spec §5.2). `reply` is the
    /// host's buffer of this reply; `dropped` is true when onreply_route executed `drop`
    /// (ignored for finals).
    pub fn reply_routed(
        &mut self,
        i: u8,
        code: u16,
        reply: BufRef,
        dropped: bool,
        now: Millis,
        cfg: &TmConfig,
    ) -> Result<ActionList, TxError> {
        let idx = self.check_branch(i)?;
        if !(100..=699).contains(&code) {
            return Err(TxError::BadStatus);
        }
        let mut out = ActionList::default();
        let invite = self.is_invite();
        let inv_2xx = invite && (200..300).contains(&code);
        let b = &mut self.branches[idx];
        // Branch already final: only a 2xx after a 2xx on an INVITE passes.
        if b.is_final() && !(inv_2xx && b.code() < 300) {
            out.push(Action::Discard);
            return Ok(out);
        }
        if self.server.status() >= 200 {
            if code >= 200 {
                b.set_code(code);
                b.reply = reply;
            }
            // After a final went upstream only INVITE 2xx still pass.
            out.push(if inv_2xx {
                Action::Relay { branch: i, code }
            } else {
                Action::Discard
            });
            return Ok(out);
        }
        if code < 200 {
            b.set_code(code);
            if (code == 100 && !cfg.relay_100) || dropped {
                out.push(Action::Discard);
            } else {
                out.push(Action::Relay { branch: i, code });
                self.server.provisional_sent(code);
            }
            return Ok(out);
        }
        b.set_code(code);
        b.reply = reply;
        if code < 300 {
            out.push(Action::Relay { branch: i, code });
            self.final_sent(code, false, now, cfg, &mut out);
            return Ok(out);
        }
        out.push(Action::Store { branch: i });
        self.negative_stored(idx, code, now, cfg, &mut out);
        Ok(out)
    }

    /// A ≥300 final (received or faked) was recorded on branch `idx`.
    fn negative_stored(
        &mut self,
        idx: usize,
        code: u16,
        now: Millis,
        cfg: &TmConfig,
        out: &mut ActionList,
    ) {
        if self.server.status() >= 200 {
            return;
        }
        if self.is_invite() && code >= 600 && !cfg.disable_6xx_block && !self.has(SIXXX) {
            self.flags |= SIXXX;
            let reason = if cfg.local_cancel_reason {
                CancelReason::Cause(code)
            } else {
                CancelReason::None
            };
            for j in 0..usize::from(self.nr_branches) {
                if j != idx {
                    self.cancel_branch(j, reason, now, cfg, out);
                }
            }
        }
        self.complete(now, cfg, out);
    }

    /// Cancels one pending INVITE branch per `cancel_b_method` (spec §4.2).
    fn cancel_branch(
        &mut self,
        j: usize,
        reason: CancelReason,
        now: Millis,
        cfg: &TmConfig,
        out: &mut ActionList,
    ) {
        let clock = self.clock();
        let b = &mut self.branches[j];
        if b.is_final() || b.cancel_sent() || b.cancel_pending() || b.state() == ClientState::Unused
        {
            return;
        }
        // The index is < CELL_BRANCHES, so it fits a u8.
        let branch = j as u8;
        if b.had_provisional() || cfg.cancel_b_method == CancelBMethod::Always {
            b.send_cancel(now, &clock, reason);
            out.push(Action::SendCancel { branch, reason });
        } else if cfg.cancel_b_method == CancelBMethod::WaitForProvisional {
            b.mark_cancel_pending();
        } else {
            b.fake_final(487, false);
        }
    }

    /// A final went upstream: wait timer / reply retransmission, then stop or cancel the
    /// branches still pending (Kamailio `cleanup_uac_timers` + `cancel_uacs`).
    fn final_sent(
        &mut self,
        code: u16,
        local: bool,
        now: Millis,
        cfg: &TmConfig,
        out: &mut ActionList,
    ) {
        let clock = self.clock();
        self.server
            .final_sent(code, local, self.is_invite(), now, &clock);
        let reason = if cfg.local_cancel_reason && code < 700 {
            CancelReason::Cause(code)
        } else {
            CancelReason::None
        };
        for j in 0..usize::from(self.nr_branches) {
            if self.branches[j].is_final() {
                continue;
            }
            if self.is_invite() {
                self.cancel_branch(j, reason, now, cfg, out);
            }
            self.branches[j].stop_request_timers();
        }
    }

    fn outcomes(&self) -> ([BranchOutcome; CELL_BRANCHES], usize) {
        let mut v = [BranchOutcome {
            code: 0,
            faked: false,
            ignored: true,
        }; CELL_BRANCHES];
        for (slot, b) in v.iter_mut().zip(self.branches()) {
            *slot = BranchOutcome {
                code: b.code(),
                faked: b.is_faked(),
                ignored: b.is_ignored(),
            };
        }
        (v, usize::from(self.nr_branches))
    }

    /// When every branch is final: winner → failure_route or relay (spec §5.2 last bullet).
    fn complete(&mut self, now: Millis, cfg: &TmConfig, out: &mut ActionList) {
        if self.server.status() >= 200 || self.has(IN_FAILURE) {
            return;
        }
        let (outcomes, n) = self.outcomes();
        match pick_winner(&outcomes[..n], cfg.faked_reply_prio) {
            Pick::Pending => {}
            Pick::Nothing => {
                out.push(Action::LocalReply {
                    code: 500,
                    reason: LocalReason::InternalError,
                });
                self.final_sent(500, true, now, cfg, out);
            }
            Pick::Winner { branch, code } => {
                let b = &mut self.branches[usize::from(branch)];
                let route = b.on_failure();
                if route.is_some() {
                    // Cleared before running so the route does not re-enter itself.
                    b.clear_failure_route();
                    self.on_failure = RouteId::NONE;
                    self.failure_base = self.nr_branches;
                    self.leg = self.leg.saturating_add(1);
                    self.flags |= IN_FAILURE;
                    out.push(Action::RunFailureRoute {
                        route,
                        branch,
                        code,
                    });
                } else {
                    self.relay_winner(branch, code, now, cfg, out);
                }
            }
        }
    }

    /// Relays the winner with Kamailio's post-processing (spec §5.3).
    fn relay_winner(
        &mut self,
        branch: u8,
        code: u16,
        now: Millis,
        cfg: &TmConfig,
        out: &mut ActionList,
    ) {
        let b = self.branches[usize::from(branch)];
        let (sent, local) = if b.is_faked() {
            let (code, reason) = if self.has(CANCELED) || code == 487 {
                (487, LocalReason::RequestTerminated)
            } else {
                (code, LocalReason::RequestTimeout)
            };
            out.push(Action::LocalReply { code, reason });
            (code, true)
        } else if code == 503 && cfg.remap_503_500 {
            out.push(Action::LocalReply {
                code: 500,
                reason: LocalReason::ServiceUnavailable,
            });
            (500, true)
        } else if (code == 401 || code == 407) && cfg.aggregate_challenges {
            let challenges = self
                .branches()
                .iter()
                .enumerate()
                .filter(|(_, x)| !x.is_ignored() && !x.is_faked() && matches!(x.code(), 401 | 407))
                .fold(0u32, |m, (i, _)| m | (1 << i));
            if challenges.count_ones() > 1 {
                out.push(Action::RelayAggregated {
                    branch,
                    code,
                    challenges,
                });
                (code, true)
            } else {
                out.push(Action::Relay { branch, code });
                (code, false)
            }
        } else {
            out.push(Action::Relay { branch, code });
            (code, false)
        };
        self.final_sent(sent, local, now, cfg, out);
    }

    /// The failure_route started by `RunFailureRoute` finished; branches it added with
    /// [`Cell::add_branch`] and replies it sent with [`Cell::local_reply`] are already in the
    /// cell. Applies `failure_reply_mode`, then waits for the new leg or relays the winner.
    pub fn failure_route_finished(&mut self, now: Millis, cfg: &TmConfig) -> ActionList {
        let mut out = ActionList::default();
        if !self.has(IN_FAILURE) {
            return out;
        }
        self.flags &= !IN_FAILURE;
        let base = usize::from(self.failure_base);
        let new_leg = self.nr_branches > self.failure_base;
        let failed_leg = self.leg.saturating_sub(1);
        let drop_all = self.has(DROP_REPLIES)
            || match cfg.failure_reply_mode {
                FailureReplyMode::KeepAll | FailureReplyMode::DropPreviousLeg => false,
                FailureReplyMode::DropAll => true,
                FailureReplyMode::DropAllIfNewLeg => new_leg,
            };
        self.flags &= !DROP_REPLIES;
        for b in &mut self.branches[..base] {
            let previous = cfg.failure_reply_mode == FailureReplyMode::DropPreviousLeg
                && b.leg() == failed_leg;
            if drop_all || previous {
                b.ignore();
            }
        }
        self.complete(now, cfg, &mut out);
        out
    }

    /// `t_reply(code, …)`: a locally generated reply upstream.
    pub fn local_reply(
        &mut self,
        code: u16,
        now: Millis,
        cfg: &TmConfig,
    ) -> Result<ActionList, TxError> {
        if self.has(LOCAL) {
            return Err(TxError::NoServerSide);
        }
        if !(100..=699).contains(&code) {
            return Err(TxError::BadStatus);
        }
        if self.server.status() >= 200 {
            return Err(TxError::FinalAlreadySent);
        }
        let mut out = ActionList::default();
        out.push(Action::LocalReply {
            code,
            reason: LocalReason::Script,
        });
        if code < 200 {
            self.server.provisional_sent(code);
        } else {
            self.final_sent(code, true, now, cfg, &mut out);
        }
        Ok(out)
    }

    /// An end-to-end CANCEL for this INVITE (spec §4.1): `reason` holds the received CANCEL's
    /// Reason headers (`NONE` if it had none).
    pub fn handle_cancel(&mut self, reason: BufRef, now: Millis, cfg: &TmConfig) -> CancelOutcome {
        self.flags |= CANCELED;
        if reason.is_some() {
            self.e2e_reason = reason;
        }
        let mut actions = ActionList::default();
        if self.nr_branches == 0 {
            if self.server.status() < 200 && !self.has(LOCAL) {
                actions.push(Action::LocalReply {
                    code: 487,
                    reason: LocalReason::RequestCanceled,
                });
                self.final_sent(487, true, now, cfg, &mut actions);
            }
            return CancelOutcome {
                cancel_reply_code: 200,
                cancel_reply_reason: LocalReason::NoMorePendingBranches,
                actions,
            };
        }
        let cancel_reason = if cfg.e2e_cancel_reason && self.e2e_reason.is_some() {
            CancelReason::CopyReceived
        } else {
            CancelReason::None
        };
        let mut pending = false;
        for j in 0..usize::from(self.nr_branches) {
            if !self.branches[j].is_final() {
                pending = true;
                self.cancel_branch(j, cancel_reason, now, cfg, &mut actions);
            }
        }
        // cancel_b_method=0 may have finished the last pending branches.
        self.complete(now, cfg, &mut actions);
        CancelOutcome {
            cancel_reply_code: 200,
            cancel_reply_reason: if pending {
                LocalReason::Canceling
            } else {
                LocalReason::NoMorePendingBranches
            },
            actions,
        }
    }

    /// A retransmission of the request (`t_check_trans`/`t_relay`): re-send the last reply
    /// sent upstream, if any.
    #[must_use]
    pub fn request_retransmitted(&self) -> Option<Action> {
        (self.server.status() > 0).then_some(Action::RetransmitReply)
    }

    /// The ACK for our negative final (or local 2xx) arrived: stop reply retransmission.
    /// Returns false when nothing was waiting for an ACK.
    pub fn ack_received(&mut self, now: Millis) -> bool {
        let negative = self.server.status() >= 300;
        let local_2xx = self.server.status() >= 200 && self.server.locally_replied();
        if !(negative || local_2xx) {
            return false;
        }
        self.server.ack_received();
        let clock = self.clock();
        self.server.put_on_wait(now, &clock);
        true
    }

    /// Fires every due timer once (spec §6): retransmissions, FR expiry (CANCEL if the branch
    /// had a provisional, faked 408 — 487 when canceled — then winner selection), CANCEL FR,
    /// reply retransmission and the wait timer.
    pub fn handle_timer(&mut self, now: Millis, cfg: &TmConfig) -> ActionList {
        let mut out = ActionList::default();
        let clock = self.clock();
        let mut timed_out = [false; CELL_BRANCHES];
        for (j, b) in self.branches[..usize::from(self.nr_branches)]
            .iter_mut()
            .enumerate()
        {
            let branch = j as u8;
            match b.poll_retransmission(now, &clock) {
                Some(true) => out.push(Action::RetransmitCancel { branch }),
                Some(false) => out.push(Action::RetransmitRequest { branch }),
                None => {}
            }
            b.poll_cancel_fr(now, &clock);
            timed_out[j] = b.fr_due(now, &clock);
        }
        for (j, _) in timed_out.iter().enumerate().filter(|(_, t)| **t) {
            self.branch_timeout(j, now, cfg, &mut out);
        }
        if self.server.poll_retransmission(now, &clock) {
            out.push(Action::RetransmitReply);
        }
        if self.server.poll_wait(now, &clock) {
            for b in &mut self.branches[..usize::from(self.nr_branches)] {
                b.stop_request_timers();
                b.cancel_replied();
            }
            out.push(Action::Delete);
        }
        out
    }

    /// FR expiry on branch `j` (spec §5.7).
    fn branch_timeout(&mut self, j: usize, now: Millis, cfg: &TmConfig, out: &mut ActionList) {
        let clock = self.clock();
        let invite = self.is_invite();
        let canceled = self.has(CANCELED);
        let single = self.nr_branches == 1;
        let b = &mut self.branches[j];
        if b.is_final() {
            b.stop_request_timers();
            return;
        }
        if invite && b.had_provisional() && !b.cancel_sent() {
            // Kamailio sends this CANCEL without any Reason (spec §4.3 a).
            b.send_cancel(now, &clock, CancelReason::None);
            out.push(Action::SendCancel {
                branch: j as u8,
                reason: CancelReason::None,
            });
        }
        let code = if canceled { 487 } else { 408 };
        let silent =
            !cfg.noisy_ctimer && invite && single && !b.on_failure().is_some() && b.code() == 0;
        b.fake_final(code, true);
        if silent {
            // noisy_ctimer=0: a lone INVITE branch that never answered ends without a reply.
            self.server.put_on_wait(now, &clock);
            return;
        }
        self.negative_stored(j, code, now, cfg, out);
    }

    /// The earliest armed deadline, for the host's timer wheel.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Millis> {
        let clock = self.clock();
        self.branches()
            .iter()
            .flat_map(|b| b.deadlines(&clock))
            .chain(self.server.deadlines(&clock))
            .flatten()
            .min()
    }

    /// `t_release()` (Kamailio `t_release_transaction`): stops every request, CANCEL and
    /// reply retransmission and every FR timer, and puts the cell on the wait timer — it
    /// still absorbs retransmissions and matches replies until then, but acts on no timer.
    pub fn release(&mut self, now: Millis) {
        let clock = self.clock();
        for b in &mut self.branches[..usize::from(self.nr_branches)] {
            b.cancel_replied();
            b.stop_request_timers();
        }
        self.server.stop_retransmission();
        self.server.put_on_wait(now, &clock);
    }

    /// The wait timer fired but the cell is still referenced: keep it another wait period,
    /// up to 90 s (`TM_LIFETIME_LIMIT`).
    pub fn extend_wait(&mut self, now: Millis) -> WaitExtension {
        let clock = self.clock();
        self.server.extend_wait(now, &clock)
    }
}

impl Cell {
    /// Appends the cell's byte encoding (only the branches in use) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = crate::wire::Writer::new(out);
        w.u8(crate::wire::WIRE_VERSION);
        w.u64(self.born.0);
        let t = self.timers;
        for v in [t.t1, t.t2, t.fr, t.fr_inv, t.wait, t.max_lifetime] {
            w.u32(v);
        }
        w.u32(self.request.0);
        w.u32(self.e2e_reason.0);
        w.raw(&self.md5.0);
        w.u32(self.bucket);
        w.u32(self.msg_flags);
        self.server.encode(&mut w);
        w.u16(self.on_failure.0);
        w.u16(self.on_reply.0);
        w.u16(self.on_branch.0);
        w.u8(match self.method {
            Method::Invite => 0,
            Method::Ack => 1,
            Method::Cancel => 2,
            Method::Other => 3,
        });
        w.u8(self.flags);
        w.u8(self.leg);
        w.u8(self.failure_base);
        w.u8(self.nr_branches);
        for b in self.branches() {
            b.encode(&mut w);
        }
    }

    /// Decodes what [`Cell::encode`] wrote. Every enum discriminant and the branch count are
    /// validated; returns the cell and the bytes after it.
    pub fn decode(buf: &[u8]) -> Result<(Cell, &[u8]), crate::wire::WireError> {
        use crate::wire::{Reader, WIRE_VERSION, WireError};
        let mut r = Reader::new(buf);
        if r.u8()? != WIRE_VERSION {
            return Err(WireError("version"));
        }
        let born = Millis(r.u64()?);
        let timers = TimerValues {
            t1: r.u32()?,
            t2: r.u32()?,
            fr: r.u32()?,
            fr_inv: r.u32()?,
            wait: r.u32()?,
            max_lifetime: r.u32()?,
        };
        let request = BufRef(r.u32()?);
        let e2e_reason = BufRef(r.u32()?);
        let mut md5 = [0u8; 16];
        md5.copy_from_slice(r.take(16)?);
        let bucket = r.u32()?;
        let msg_flags = r.u32()?;
        let server = ServerTx::decode(&mut r)?;
        let on_failure = RouteId(r.u16()?);
        let on_reply = RouteId(r.u16()?);
        let on_branch = RouteId(r.u16()?);
        let method = match r.u8()? {
            0 => Method::Invite,
            1 => Method::Ack,
            2 => Method::Cancel,
            3 => Method::Other,
            _ => return Err(WireError("method")),
        };
        let flags = r.u8()?;
        let leg = r.u8()?;
        let failure_base = r.u8()?;
        let nr_branches = r.u8()?;
        if usize::from(nr_branches) > CELL_BRANCHES || failure_base > nr_branches {
            return Err(WireError("branch count"));
        }
        let mut branches = [ClientTx::UNUSED; CELL_BRANCHES];
        for b in branches.iter_mut().take(usize::from(nr_branches)) {
            *b = ClientTx::decode(&mut r)?;
        }
        let cell = Cell {
            born,
            timers,
            request,
            e2e_reason,
            md5: Md5Field(md5),
            bucket,
            msg_flags,
            server,
            branches,
            on_failure,
            on_reply,
            on_branch,
            method,
            flags,
            nr_branches,
            leg,
            failure_base,
        };
        Ok((cell, r.remaining()))
    }
}
