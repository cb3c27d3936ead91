//! Time as a value, Kamailio's tick rounding, and compact deadlines.
//!
//! The core never reads a clock: every `handle_*` call takes `now: Millis`, a monotonic
//! millisecond count from a tick the supervisor starts. Deadlines are stored relative to
//! the cell's birth in a `u32` so a branch's timers stay a few bytes each (a cell lives at
//! most `max_*_lifetime` + a few wait periods, far below the 49 days a `u32` covers).

/// Monotonic milliseconds (host-supplied, same origin in every process).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating.
    #[must_use]
    pub fn plus(self, ms: u32) -> Millis {
        Millis(self.0.saturating_add(u64::from(ms)))
    }
}

/// Kamailio's timer resolution: 16 ticks per second (62.5 ms), the default of siplab's
/// `timer_hz` core parameter.
pub const TICKS_PER_SECOND: u32 = 16;

/// The `timer_hz` values accepted (a tick every 250 ms down to every 1 ms).
pub const TIMER_HZ_RANGE: std::ops::RangeInclusive<u32> = 4..=1000;

/// A duration in timer ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticks(pub u32);

impl Ticks {
    /// Kamailio's `MS_TO_TICKS` followed by tm's "0 becomes 1 tick": rounds **up**, at
    /// Kamailio's 16 ticks/s.
    #[must_use]
    pub fn from_ms_round_up(ms: u32) -> Ticks {
        Ticks::from_ms_round_up_at(ms, TICKS_PER_SECOND)
    }

    /// [`Ticks::from_ms_round_up`] at `hz` ticks per second.
    #[must_use]
    pub fn from_ms_round_up_at(ms: u32, hz: u32) -> Ticks {
        let ticks = (u64::from(ms) * u64::from(hz.max(1))).div_ceil(1000);
        Ticks(u32::try_from(ticks).unwrap_or(u32::MAX).max(1))
    }

    /// The tick count as milliseconds at 16 ticks/s, rounded up to whole milliseconds.
    #[must_use]
    pub fn as_ms(self) -> u32 {
        self.as_ms_at(TICKS_PER_SECOND)
    }

    /// The tick count as milliseconds at `hz` ticks per second, rounded up.
    #[must_use]
    pub fn as_ms_at(self, hz: u32) -> u32 {
        let ms = (u64::from(self.0) * 1000).div_ceil(u64::from(hz.max(1)));
        u32::try_from(ms).unwrap_or(u32::MAX)
    }
}

/// Rounds a configured millisecond value the way Kamailio does when it arms a timer
/// (16 ticks/s).
#[must_use]
pub fn round_to_ticks(ms: u32) -> u32 {
    round_to_ticks_at(ms, TICKS_PER_SECOND)
}

/// [`round_to_ticks`] at `hz` ticks per second (`timer_hz`).
#[must_use]
pub fn round_to_ticks_at(ms: u32, hz: u32) -> u32 {
    Ticks::from_ms_round_up_at(ms, hz).as_ms_at(hz)
}

/// A deadline relative to a cell's birth, in ms; `u32::MAX` means "not armed".
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(u32);

impl Deadline {
    /// The unarmed deadline.
    pub const NONE: Deadline = Deadline(u32::MAX);

    /// The stored value (for [`crate::wire`]).
    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    /// A deadline from its stored value (every `u32` is valid).
    pub(crate) fn from_raw(v: u32) -> Deadline {
        Deadline(v)
    }

    /// A deadline at absolute time `at` for a cell born at `born` (saturates just below NONE).
    #[must_use]
    pub fn at(born: Millis, at: Millis) -> Deadline {
        let rel = at.0.saturating_sub(born.0).min(u64::from(u32::MAX - 1));
        // The `min` above keeps the value below u32::MAX, so the conversion cannot fail.
        Deadline(u32::try_from(rel).unwrap_or(u32::MAX - 1))
    }

    /// Absolute time of the deadline, `None` when unarmed.
    #[must_use]
    pub fn get(self, born: Millis) -> Option<Millis> {
        (self.0 != u32::MAX).then(|| born.plus(self.0))
    }

    /// Whether the deadline is armed.
    #[must_use]
    pub fn is_armed(self) -> bool {
        self.0 != u32::MAX
    }

    /// Whether the deadline is armed and has passed at `now`.
    #[must_use]
    pub fn due(self, born: Millis, now: Millis) -> bool {
        self.get(born).is_some_and(|d| d <= now)
    }
}

/// Per-transaction timer values in ms (Kamailio `t_set_fr`/`t_set_retr` override them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerValues {
    /// First retransmission interval (`retr_timer1`).
    pub t1: u32,
    /// Retransmission interval cap (`retr_timer2`).
    pub t2: u32,
    /// Final-response timeout before a provisional (`fr_timer`).
    pub fr: u32,
    /// INVITE final-response timeout after a provisional (`fr_inv_timer`).
    pub fr_inv: u32,
    /// Time a completed transaction stays in the table (`wt_timer`).
    pub wait: u32,
    /// Maximum lifetime of this transaction (`max_inv_lifetime` or `max_noninv_lifetime`).
    pub max_lifetime: u32,
}

/// Kamailio's `TM_LIFETIME_LIMIT`: a cell still referenced after this long is unlinked anyway.
pub const TM_LIFETIME_LIMIT_MS: u64 = 90_000;

/// Index of the retransmission interval: T1, 2·T1, 4·T1, … capped at T2.
#[must_use]
pub fn retransmission_interval(t1: u32, t2: u32, sent_count: u8) -> u32 {
    let shift = u32::from(sent_count.min(31));
    t1.checked_shl(shift)
        .filter(|v| v >> shift == t1)
        .unwrap_or(u32::MAX)
        .min(t2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up_to_62_5_ms() {
        assert_eq!(Ticks::from_ms_round_up(500), Ticks(8));
        assert_eq!(Ticks::from_ms_round_up(501), Ticks(9));
        assert_eq!(Ticks::from_ms_round_up(62), Ticks(1));
        assert_eq!(round_to_ticks(100), 125);
        assert_eq!(round_to_ticks(4000), 4000);
    }

    #[test]
    fn rounding_follows_the_configured_timer_hz() {
        // 100 ticks/s: 10 ms ticks.
        assert_eq!(round_to_ticks_at(101, 100), 110);
        assert_eq!(round_to_ticks_at(500, 100), 500);
        assert_eq!(round_to_ticks_at(0, 100), 10);
        // 4 ticks/s: 250 ms ticks.
        assert_eq!(round_to_ticks_at(501, 4), 750);
        assert_eq!(Ticks::from_ms_round_up_at(1_000, 1_000), Ticks(1_000));
        assert_eq!(
            round_to_ticks_at(100, TICKS_PER_SECOND),
            round_to_ticks(100)
        );
    }

    #[test]
    fn zero_ms_becomes_one_tick() {
        assert_eq!(Ticks::from_ms_round_up(0), Ticks(1));
        assert_eq!(round_to_ticks(0), 63);
    }

    #[test]
    fn retransmission_intervals_double_and_cap_at_t2() {
        let seq: Vec<u32> = (0..7)
            .map(|n| retransmission_interval(500, 4000, n))
            .collect();
        assert_eq!(seq, [500, 1000, 2000, 4000, 4000, 4000, 4000]);
        assert_eq!(retransmission_interval(500, 4000, 200), 4000);
    }

    #[test]
    fn deadline_round_trips_and_unarmed_is_none() {
        let born = Millis(1_000);
        let d = Deadline::at(born, Millis(1_500));
        assert_eq!(d.get(born), Some(Millis(1_500)));
        assert!(d.due(born, Millis(1_500)));
        assert!(!d.due(born, Millis(1_499)));
        assert_eq!(Deadline::NONE.get(born), None);
        assert!(!Deadline::NONE.due(born, Millis(u64::MAX)));
    }
}
