//! The real [`Host`]: every effect the pure script runtime and modules may have, done with
//! the worker's inherited UDP socket, the process logger, the monotonic clock and a sleep.

use crate::app::Shared;
use crate::log;
use sip_script::abi::{Host, LocalAddr, LogLevel, Millis, Proto, SendError, Stat};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Instant;

pub struct WorkerHost {
    socket: UdpSocket,
    locals: Vec<LocalAddr>,
    /// The supervisor's start: `Millis` are counted from it in every process.
    epoch: Instant,
    rng: u64,
    pid: u32,
    rank: i32,
    shared: &'static Shared,
    /// This process's counter row.
    index: usize,
}

impl WorkerHost {
    pub fn new(
        socket: UdpSocket,
        locals: Vec<LocalAddr>,
        epoch: Instant,
        rank: i32,
        shared: &'static Shared,
        index: usize,
    ) -> WorkerHost {
        let pid = std::process::id();
        // Seed differs per process and per start; quality needs are tags and branch randomness.
        let seed = u64::from(pid) << 32 ^ epoch.elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15;
        WorkerHost {
            socket,
            locals,
            epoch,
            rng: seed | 1,
            pid,
            rank,
            shared,
            index,
        }
    }

    /// Sends without touching the script counters (the core relaying a reply).
    pub fn send_raw(&self, dst: SocketAddr, bytes: &[u8]) -> Result<(), SendError> {
        if dst.ip().is_unspecified()
            || dst.ip() == IpAddr::from([255, 255, 255, 255])
            || dst.port() == 0
        {
            return Err(SendError(format!("refusing to send to {dst}")));
        }
        self.socket
            .send_to(bytes, dst)
            .map(|_| ())
            .map_err(|e| SendError(format!("{dst}: {e}")))
    }
}

impl Host for WorkerHost {
    fn send(&mut self, proto: Proto, dst: SocketAddr, bytes: &[u8]) -> Result<(), SendError> {
        if proto != Proto::Udp {
            return Err(SendError(format!(
                "{proto:?} is not supported, siplab is UDP only"
            )));
        }
        self.send_raw(dst, bytes)
    }

    fn log(&mut self, level: LogLevel, module: &str, text: &str) {
        log::write(level, module, text);
    }

    fn log_prefixed(&mut self, level: LogLevel, prefix: &str, module: &str, text: &str) {
        log::write_prefixed(level, prefix, module, text);
    }

    fn now(&self) -> Millis {
        Millis(self.epoch.elapsed().as_millis() as u64)
    }

    fn random_u32(&mut self) -> u32 {
        // xorshift64*: cheap, never zero-locked because the seed is odd.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    fn local_addrs(&self) -> &[LocalAddr] {
        &self.locals
    }

    fn resolve(&mut self, name: &str) -> Vec<IpAddr> {
        (name, 0u16)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn rank(&self) -> i32 {
        self.rank
    }

    fn count(&mut self, stat: Stat) {
        let id = self.shared.stats.module_stat(stat);
        let _ = self.shared.counters.inc(self.index, id);
    }
}
