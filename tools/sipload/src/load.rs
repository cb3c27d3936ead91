//! The call generator behind `sipload uac`: basic calls (INVITE → 200 → ACK → BYE → 200)
//! started at a fixed rate from one socket, with RFC 3261 request retransmission, a per-call
//! timeout and a histogram of call-setup latency (INVITE sent → 200 received).

use crate::datagram::Datagram;
use crate::error::SiploadError;
use crate::uac::{Call, Uac};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Longest single wait for a datagram, so starts and timers stay on schedule.
const TICK: Duration = Duration::from_millis(20);
/// How many failure descriptions a report keeps.
const FAILURES_KEPT: usize = 20;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Where every request goes (the proxy).
    pub target: SocketAddr,
    pub ruri: String,
    pub calls: u32,
    /// Calls started per second.
    pub rate: f64,
    /// A call not finished this long after its INVITE fails.
    pub call_timeout: Duration,
    /// Time between the ACK and the BYE.
    pub hold: Duration,
}

impl LoadConfig {
    pub fn new(target: SocketAddr, ruri: &str, calls: u32, rate: f64) -> LoadConfig {
        LoadConfig {
            target,
            ruri: ruri.to_string(),
            calls,
            rate,
            call_timeout: Duration::from_secs(32),
            hold: Duration::ZERO,
        }
    }
}

/// Latency samples with a fixed-bucket histogram view and exact percentiles.
#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram {
    samples: Vec<Duration>,
    sorted: bool,
}

/// Upper bounds of the printed buckets; the last bucket is open.
pub const BUCKET_BOUNDS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d);
        self.sorted = false;
    }

    pub fn count(&self) -> usize {
        self.samples.len()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`-th percentile (0–100, nearest rank), `None` without samples.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        self.sort();
        let n = self.samples.len();
        if n == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
        self.samples.get(rank.clamp(1, n) - 1).copied()
    }

    pub fn min(&mut self) -> Option<Duration> {
        self.percentile(0.0)
    }

    pub fn max(&mut self) -> Option<Duration> {
        self.percentile(100.0)
    }

    pub fn mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.samples.len()).ok().filter(|&n| n > 0)?;
        Some(self.samples.iter().sum::<Duration>() / n)
    }

    /// Counts per bucket of [`BUCKET_BOUNDS_MS`] (`< bound`), plus one for the rest.
    pub fn buckets(&self) -> Vec<u64> {
        let mut out = vec![0u64; BUCKET_BOUNDS_MS.len() + 1];
        for s in &self.samples {
            let i = BUCKET_BOUNDS_MS
                .iter()
                .position(|&b| *s < Duration::from_millis(b))
                .unwrap_or(BUCKET_BOUNDS_MS.len());
            if let Some(c) = out.get_mut(i) {
                *c += 1;
            }
        }
        out
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub ok: u32,
    pub failed: u32,
    /// The first few failures (`call-id: why`).
    pub failures: Vec<String>,
    /// INVITE sent → 200 received, per successful setup.
    pub setup: LatencyHistogram,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn all_ok(&self) -> bool {
        self.failed == 0
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut h = self.setup.clone();
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| {
                format!("{:.2}", d.as_secs_f64() * 1000.0)
            })
        };
        writeln!(
            f,
            "calls ok {} failed {} in {:.2} s ({:.1} calls/s)",
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64(),
            f64::from(self.ok + self.failed) / self.elapsed.as_secs_f64().max(1e-9)
        )?;
        writeln!(
            f,
            "setup latency ms: min {} p50 {} p90 {} p99 {} max {} mean {}",
            ms(h.min()),
            ms(h.percentile(50.0)),
            ms(h.percentile(90.0)),
            ms(h.percentile(99.0)),
            ms(h.max()),
            ms(h.mean())
        )?;
        let buckets = h.buckets();
        for (i, count) in buckets.iter().enumerate().filter(|(_, c)| **c > 0) {
            match BUCKET_BOUNDS_MS.get(i) {
                Some(b) => writeln!(f, "  < {b:>5} ms: {count}")?,
                None => writeln!(
                    f,
                    "  >= {} ms: {count}",
                    BUCKET_BOUNDS_MS[BUCKET_BOUNDS_MS.len() - 1]
                )?,
            }
        }
        for fail in &self.failures {
            writeln!(f, "failed: {fail}")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Phase {
    /// INVITE sent; retransmitted until a provisional or final arrives.
    Inviting { ringing: bool },
    /// ACK sent; BYE due at the instant.
    Holding { bye_at: Instant },
    /// BYE sent.
    Ending,
}

impl Phase {
    fn waiting_for(&self) -> &'static str {
        match self {
            Phase::Inviting { ringing: false } => "any reply to the INVITE",
            Phase::Inviting { ringing: true } => "a final reply after a provisional",
            Phase::Holding { .. } => "the hold time to end",
            Phase::Ending => "the reply to the BYE",
        }
    }
}

#[derive(Debug)]
struct Active {
    call: Call,
    phase: Phase,
    deadline: Instant,
    /// The datagram retransmitted on the timer (INVITE, then BYE), when one is.
    retransmit: Option<(Instant, Duration, Vec<u8>)>,
    /// The ACK for the 2xx, re-sent when the 2xx is retransmitted.
    ack: Option<Vec<u8>>,
    ok: Option<Datagram>,
}

/// Runs `cfg.calls` basic calls and reports how they went.
pub fn run_load(cfg: &LoadConfig) -> Result<LoadReport, SiploadError> {
    if !(cfg.rate.is_finite() && cfg.rate > 0.0) {
        return Err(SiploadError::Config(format!(
            "rate {} is not > 0",
            cfg.rate
        )));
    }
    let mut uac = Uac::bind(cfg.target)?;
    uac.set_logging(false);
    let spacing = Duration::from_secs_f64(1.0 / cfg.rate);
    let begin = Instant::now();
    let mut report = LoadReport::default();
    let mut active: HashMap<String, Active> = HashMap::new();
    let mut started = 0u32;
    let fail = |report: &mut LoadReport, id: &str, why: String| {
        report.failed += 1;
        if report.failures.len() < FAILURES_KEPT {
            report.failures.push(format!("{id}: {why}"));
        }
    };
    while report.ok + report.failed < cfg.calls {
        let now = Instant::now();
        while started < cfg.calls && begin + spacing * started <= now {
            let call = uac.invite(&cfg.ruri, &[])?;
            let bytes = call.bytes().to_vec();
            active.insert(
                call.call_id.clone(),
                Active {
                    deadline: call.sent_at + cfg.call_timeout,
                    retransmit: Some((call.sent_at + T1, T1, bytes)),
                    call,
                    phase: Phase::Inviting { ringing: false },
                    ack: None,
                    ok: None,
                },
            );
            started += 1;
        }
        let mut ended = Vec::new();
        for (id, a) in active.iter_mut() {
            if now >= a.deadline {
                ended.push((
                    id.clone(),
                    Err(format!("timed out waiting for {}", a.phase.waiting_for())),
                ));
                continue;
            }
            if let Some((at, interval, bytes)) = a.retransmit.as_mut() {
                if *at <= now {
                    uac.send_raw(bytes)?;
                    // INVITE doubles without cap (timer A); BYE is capped at T2 (timer E).
                    let next = if matches!(a.phase, Phase::Inviting { .. }) {
                        *interval * 2
                    } else {
                        (*interval * 2).min(T2)
                    };
                    *interval = next;
                    *at = now + next;
                }
            }
            if let Phase::Holding { bye_at } = a.phase {
                if bye_at <= now {
                    let ok = a.ok.as_ref().ok_or_else(|| {
                        SiploadError::BadMessage("holding call without its 2xx".into())
                    })?;
                    let cseq = a.call.request.cseq()?.number + 1;
                    let bye = uac.build_in_dialog(ok, "BYE", cseq)?;
                    uac.send_raw(&bye)?;
                    a.retransmit = Some((now + T1, T1, bye));
                    a.phase = Phase::Ending;
                }
            }
        }
        for (id, outcome) in ended {
            active.remove(&id);
            match outcome {
                Ok(()) => report.ok += 1,
                Err(why) => fail(&mut report, &id, why),
            }
        }
        let next_start = (started < cfg.calls).then(|| begin + spacing * started);
        let wait = next_start
            .map_or(TICK, |s| s.saturating_duration_since(Instant::now()))
            .clamp(Duration::from_millis(1), TICK);
        let Some(d) = uac.recv(wait)? else { continue };
        let Some(id) = d.call_id().map(str::to_string) else {
            continue;
        };
        let Some(a) = active.get_mut(&id) else {
            continue;
        };
        match on_reply(&mut uac, a, &d, cfg.hold)? {
            Step::Continue => {}
            Step::Answered(latency) => report.setup.record(latency),
            Step::Done(outcome) => {
                active.remove(&id);
                match outcome {
                    Ok(()) => report.ok += 1,
                    Err(why) => fail(&mut report, &id, why),
                }
            }
        }
    }
    report.elapsed = begin.elapsed();
    Ok(report)
}

enum Step {
    Continue,
    /// The INVITE got its 2xx this long after it was first sent.
    Answered(Duration),
    Done(Result<(), String>),
}

fn on_reply(
    uac: &mut Uac,
    a: &mut Active,
    d: &Datagram,
    hold: Duration,
) -> Result<Step, SiploadError> {
    let Some(code) = d.status() else {
        return Ok(Step::Continue);
    };
    match (d.cseq_method(), &a.phase) {
        (Some("INVITE"), Phase::Inviting { .. }) if code < 200 => {
            a.retransmit = None;
            a.phase = Phase::Inviting { ringing: true };
            Ok(Step::Continue)
        }
        (Some("INVITE"), Phase::Inviting { .. }) if code < 300 => {
            a.retransmit = None;
            let cseq = a.call.request.cseq()?.number;
            let ack = uac.build_in_dialog(d, "ACK", cseq)?;
            uac.send_raw(&ack)?;
            a.ack = Some(ack);
            a.ok = Some(d.clone());
            a.phase = Phase::Holding {
                bye_at: Instant::now() + hold,
            };
            Ok(Step::Answered(d.at.duration_since(a.call.sent_at)))
        }
        (Some("INVITE"), Phase::Inviting { .. }) => {
            uac.ack_non2xx(&a.call, d)?;
            Ok(Step::Done(Err(format!(
                "INVITE answered {}",
                d.first_line()
            ))))
        }
        (Some("INVITE"), _) if (200..300).contains(&code) => {
            // The 2xx was retransmitted: our ACK was lost.
            if let Some(ack) = &a.ack {
                uac.send_raw(ack)?;
            }
            Ok(Step::Continue)
        }
        (Some("BYE"), Phase::Ending) if code >= 200 => Ok(Step::Done(if code < 300 {
            Ok(())
        } else {
            Err(format!("BYE answered {}", d.first_line()))
        })),
        _ => Ok(Step::Continue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank_and_buckets_count_every_sample() {
        let mut h = LatencyHistogram::default();
        for ms in [5u64, 1, 3, 2, 4, 100, 7000] {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 7);
        assert_eq!(h.min(), Some(Duration::from_millis(1)));
        assert_eq!(h.percentile(50.0), Some(Duration::from_millis(4)));
        assert_eq!(h.max(), Some(Duration::from_millis(7000)));
        let b = h.buckets();
        assert_eq!(b.iter().sum::<u64>(), 7);
        assert_eq!(b[BUCKET_BOUNDS_MS.len()], 1, "7 s lands in the open bucket");
        assert_eq!(LatencyHistogram::default().percentile(50.0), None);
    }

    #[test]
    fn a_zero_rate_is_refused() {
        let cfg = LoadConfig::new("127.0.0.1:9".parse().unwrap(), "sip:x@127.0.0.1", 1, 0.0);
        assert!(matches!(run_load(&cfg), Err(SiploadError::Config(_))));
    }
}
