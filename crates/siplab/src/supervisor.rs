//! The supervisor (rank 0): forks the children, then only waits for signals and reaps.
//!
//! It never starts a thread (forking a threaded process can deadlock). Signals are blocked
//! before the first fork and taken synchronously with `sigwait`, so there are no handlers and
//! no async-signal-safety concerns. Children restore the default mask and dispositions.

use crate::log::Level;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// What a child process is, for `core.psx` and respawning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// `udp receiver child=N sock=ADDR`: `socket` indexes the listen sockets.
    Worker {
        socket: usize,
        child: u32,
    },
    Timer,
    Ctl,
}

/// One child slot: the rank is stable across respawns.
#[derive(Debug, Clone)]
pub struct ChildSlot {
    pub rank: i32,
    pub role: Role,
    pub description: String,
    pub pid: Option<Pid>,
    /// Recent respawn instants, to stop a crash loop instead of fork-bombing.
    respawns: Vec<Instant>,
}

impl ChildSlot {
    pub fn new(rank: i32, role: Role, description: String) -> ChildSlot {
        ChildSlot {
            rank,
            role,
            description,
            pid: None,
            respawns: Vec::new(),
        }
    }
}

/// `worker_exit` core parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// siplab default: a dead child is forked again with the same rank.
    Respawn,
    /// Kamailio's behaviour: any dead child shuts the whole server down.
    Shutdown,
}

/// Signals the supervisor takes with `sigwait`.
pub fn supervisor_sigset() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        set.add(s);
    }
    set
}

/// How the supervisor's loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM/SIGINT: clean shutdown, exit code 0.
    Requested,
    /// A child died and `worker_exit = shutdown` (or a crash loop): exit code 1.
    ChildDied,
}

/// More than this many respawns of one rank within `CRASH_WINDOW` is a crash loop.
const CRASH_LIMIT: usize = 10;
const CRASH_WINDOW: Duration = Duration::from_secs(10);
/// Grace period between SIGTERM and SIGKILL at shutdown.
const STOP_GRACE: Duration = Duration::from_secs(2);

pub struct Supervisor<F: FnMut(&ChildSlot) -> nix::Result<Pid>> {
    pub children: Vec<ChildSlot>,
    pub worker_exit: WorkerExit,
    /// Forks one child for a slot and returns its pid (the child never returns).
    pub spawn: F,
    /// Called with (rank, new pid) after every (re)spawn, to update the process table.
    pub on_spawn: Box<dyn FnMut(&ChildSlot)>,
}

impl<F: FnMut(&ChildSlot) -> nix::Result<Pid>> Supervisor<F> {
    /// Forks every child once. On failure the already started ones are stopped.
    pub fn start_all(&mut self) -> nix::Result<()> {
        for i in 0..self.children.len() {
            if let Err(e) = self.spawn_slot(i) {
                self.stop_all();
                return Err(e);
            }
        }
        Ok(())
    }

    fn spawn_slot(&mut self, i: usize) -> nix::Result<()> {
        let Some(slot) = self.children.get(i) else {
            return Ok(());
        };
        let pid = (self.spawn)(slot)?;
        if let Some(slot) = self.children.get_mut(i) {
            slot.pid = Some(pid);
            (self.on_spawn)(slot);
        }
        Ok(())
    }

    /// Waits for signals until shutdown; returns why it ended (children already stopped).
    pub fn run(&mut self) -> Exit {
        let set = supervisor_sigset();
        loop {
            let sig = match set.wait() {
                Ok(s) => s,
                Err(_) => continue,
            };
            match sig {
                Signal::SIGCHLD => {
                    if let Some(exit) = self.reap() {
                        self.stop_all();
                        return exit;
                    }
                }
                Signal::SIGTERM | Signal::SIGINT => {
                    crate::log!(
                        Level::Notice,
                        "core",
                        "signal {sig} received, stopping all children"
                    );
                    self.stop_all();
                    return Exit::Requested;
                }
                _ => {}
            }
        }
    }

    /// Reaps every exited child; respawns or asks for shutdown.
    fn reap(&mut self) -> Option<Exit> {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(s) => s,
            };
            let (pid, how) = match status {
                WaitStatus::Exited(pid, code) => (pid, format!("exited normally, status={code}")),
                WaitStatus::Signaled(pid, sig, _) => {
                    (pid, format!("exited by a signal {}", sig as i32))
                }
                _ => continue,
            };
            let Some(i) = self.children.iter().position(|c| c.pid == Some(pid)) else {
                continue;
            };
            crate::log!(Level::Alert, "core", "child process {pid} {how}");
            let now = Instant::now();
            let (rank, crash_loop) = match self.children.get_mut(i) {
                Some(slot) => {
                    slot.pid = None;
                    slot.respawns
                        .retain(|t| now.duration_since(*t) < CRASH_WINDOW);
                    slot.respawns.push(now);
                    (slot.rank, slot.respawns.len() > CRASH_LIMIT)
                }
                None => continue,
            };
            if self.worker_exit == WorkerExit::Shutdown {
                crate::log!(Level::Alert, "core", "terminating due to SIGCHLD");
                return Some(Exit::ChildDied);
            }
            if crash_loop {
                crate::log!(
                    Level::Alert,
                    "core",
                    "rank {rank} died {CRASH_LIMIT} times in {CRASH_WINDOW:?}; terminating"
                );
                return Some(Exit::ChildDied);
            }
            match self.spawn_slot(i) {
                Ok(()) => {
                    let new_pid = self
                        .children
                        .get(i)
                        .and_then(|c| c.pid)
                        .map(|p| p.as_raw())
                        .unwrap_or(0);
                    crate::log!(
                        Level::Notice,
                        "core",
                        "respawned rank {rank} as pid {new_pid}"
                    );
                }
                Err(e) => {
                    crate::log!(
                        Level::Alert,
                        "core",
                        "cannot respawn rank {rank}: {e}; terminating"
                    );
                    return Some(Exit::ChildDied);
                }
            }
        }
    }

    /// SIGTERM to every child, SIGKILL after the grace period, reap all.
    pub fn stop_all(&mut self) {
        let live: Vec<Pid> = self.children.iter().filter_map(|c| c.pid).collect();
        for pid in &live {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut remaining = live;
        while !remaining.is_empty() && Instant::now() < deadline {
            remaining.retain(|pid| {
                matches!(
                    waitpid(*pid, Some(WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive)
                )
            });
            if !remaining.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for pid in &remaining {
            let _ = kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        for c in &mut self.children {
            c.pid = None;
        }
    }
}
