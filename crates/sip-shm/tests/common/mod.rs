//! Test helpers: forked children that are always reaped, and bounded waits.

#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// Generous bound for anything that should take milliseconds: a regression fails the
/// test instead of hanging it.
pub const BOUND: Duration = Duration::from_secs(20);

/// A forked child. Dropping it SIGKILLs and reaps it unless it was already reaped, so
/// a failing assertion in the parent never leaves a process behind.
pub struct Child {
    pid: Pid,
    reaped: bool,
}

impl Child {
    /// Forks; the child runs `body` and `_exit`s with its return value (101 on panic).
    pub fn spawn(body: impl FnOnce() -> i32) -> Child {
        // SAFETY: the child only runs `body` (atomics, shm locks, small allocations,
        // which glibc makes fork-safe) and leaves with `_exit`, never returning into the
        // test harness or running its atexit handlers.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
                // SAFETY: terminating the forked child without unwinding or atexit.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => Child {
                pid: child,
                reaped: false,
            },
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits (bounded by [`BOUND`]) for the child to exit and returns its status.
    pub fn wait(&mut self) -> WaitStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
                WaitStatus::StillAlive => {
                    assert!(
                        Instant::now() < deadline,
                        "child {} did not exit in time",
                        self.pid
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                status => {
                    self.reaped = true;
                    return status;
                }
            }
        }
    }

    /// Waits and asserts a clean `exit(0)`.
    pub fn wait_ok(&mut self) {
        let status = self.wait();
        assert_eq!(status, WaitStatus::Exited(self.pid, 0), "child failed");
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill_and_reap(&mut self) -> WaitStatus {
        let _ = kill(self.pid, Signal::SIGKILL);
        self.wait()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Polls `cond` until it holds or [`BOUND`] passes; returns whether it held.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}
