//! tm module parameters that drive the core (Kamailio 5.6 defaults via `Default`).

use crate::branch::DEFAULT_MAX_BRANCHES;
use crate::cancel::CancelBMethod;
use crate::timer::{TICKS_PER_SECOND, TimerValues, round_to_ticks_at};

/// What happens to replies stored from earlier legs after a failure_route run
/// (`failure_reply_mode`, spec §5.4).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailureReplyMode {
    /// 0: keep every branch's reply.
    KeepAll = 0,
    /// 1: discard all stored replies after every failure_route run.
    DropAll = 1,
    /// 2: discard the replies of the previous leg after every run.
    DropPreviousLeg = 2,
    /// 3 (default): discard all earlier replies only if the run started a new leg.
    #[default]
    DropAllIfNewLeg = 3,
}

/// The tm parameters the transaction core reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TmConfig {
    /// `retr_timer1` (ms).
    pub t1: u32,
    /// `retr_timer2` (ms).
    pub t2: u32,
    /// `fr_timer` (ms).
    pub fr: u32,
    /// `fr_inv_timer` (ms).
    pub fr_inv: u32,
    /// `wt_timer` (ms).
    pub wait: u32,
    /// `max_inv_lifetime` (ms).
    pub max_inv_lifetime: u32,
    /// `max_noninv_lifetime` (ms).
    pub max_noninv_lifetime: u32,
    /// `restart_fr_on_each_reply`.
    pub restart_fr_on_each_reply: bool,
    /// `cancel_b_method`.
    pub cancel_b_method: CancelBMethod,
    /// `failure_reply_mode`.
    pub failure_reply_mode: FailureReplyMode,
    /// `relay_100` (core default 0: a downstream 100 is not relayed).
    pub relay_100: bool,
    /// `remap_503_500`.
    pub remap_503_500: bool,
    /// `aggregate_challenges`.
    pub aggregate_challenges: bool,
    /// `disable_6xx_block`.
    pub disable_6xx_block: bool,
    /// `noisy_ctimer`.
    pub noisy_ctimer: bool,
    /// `local_cancel_reason`: Reason header on CANCELs we trigger (2xx/6xx elsewhere).
    pub local_cancel_reason: bool,
    /// `e2e_cancel_reason`: copy the received CANCEL's Reason headers.
    pub e2e_cancel_reason: bool,
    /// `faked_reply_prio`: penalty added to faked replies when picking a winner.
    pub faked_reply_prio: u32,
    /// Core `max_branches` (1..=32).
    pub max_branches: u8,
    /// Timer resolution in ticks per second (siplab core parameter `timer_hz`, default
    /// Kamailio's 16): timer values are rounded up to whole ticks.
    pub timer_hz: u32,
}

impl Default for TmConfig {
    fn default() -> Self {
        TmConfig {
            t1: 500,
            t2: 4_000,
            fr: 30_000,
            fr_inv: 120_000,
            wait: 5_000,
            max_inv_lifetime: 180_000,
            max_noninv_lifetime: 32_000,
            restart_fr_on_each_reply: true,
            cancel_b_method: CancelBMethod::WaitForProvisional,
            failure_reply_mode: FailureReplyMode::DropAllIfNewLeg,
            relay_100: false,
            remap_503_500: true,
            aggregate_challenges: true,
            disable_6xx_block: false,
            noisy_ctimer: true,
            local_cancel_reason: true,
            e2e_cancel_reason: true,
            faked_reply_prio: 0,
            max_branches: DEFAULT_MAX_BRANCHES,
            timer_hz: TICKS_PER_SECOND,
        }
    }
}

impl TmConfig {
    /// Timer values a new transaction starts with, rounded up to whole ticks (62.5 ms at
    /// the default 16 ticks/s) as Kamailio arms them.
    #[must_use]
    pub fn timer_values(&self, invite: bool) -> TimerValues {
        TimerValues {
            t1: self.round(self.t1),
            t2: self.round(self.t2),
            fr: self.round(self.fr),
            fr_inv: self.round(self.fr_inv),
            wait: self.round(self.wait),
            max_lifetime: self.round(if invite {
                self.max_inv_lifetime
            } else {
                self.max_noninv_lifetime
            }),
        }
    }

    /// A millisecond value rounded up to this configuration's timer ticks.
    #[must_use]
    pub fn round(&self, ms: u32) -> u32 {
        round_to_ticks_at(ms, self.timer_hz)
    }
}
