//! Process primitives that need `unsafe` or write raw process memory, and therefore live
//! here, the project's only such crate: `fork` for the supervisor and the fork-based tests,
//! and the process title.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;
pub use nix::unistd::Pid;
use std::io::{Seek, SeekFrom, Write};

/// Which side of a fork we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: Pid },
    Child,
}

/// `fork(2)`.
///
/// The caller must be single-threaded (siplab's supervisor never starts a thread), or, in
/// tests, the child must only use async-signal-safe operations and leave with `exit_now`.
pub fn fork() -> nix::Result<Forked> {
    // SAFETY: fork is unsafe because a multithreaded parent may leave locks held in the child.
    // siplab's supervisor is single-threaded; the documented contract above covers tests.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent { child }),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// SIGKILLs `child` and waits for it (a test's forked child, a supervisor's hard stop).
pub fn kill_and_reap(child: Pid) -> nix::Result<WaitStatus> {
    match kill(child, Signal::SIGKILL) {
        // Already gone (but maybe not reaped): reap it anyway.
        Ok(()) | Err(nix::errno::Errno::ESRCH) => waitpid(child, None),
        Err(e) => Err(e),
    }
}

/// A forked child that is SIGKILLed and reaped when dropped, so a failing test never
/// leaves a process behind.
#[derive(Debug)]
pub struct ChildGuard {
    pid: Pid,
    reaped: bool,
}

impl ChildGuard {
    pub fn new(pid: Pid) -> ChildGuard {
        ChildGuard { pid, reaped: false }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Kills and reaps the child now; its wait status.
    pub fn kill_and_reap(&mut self) -> nix::Result<WaitStatus> {
        let r = kill_and_reap(self.pid);
        self.reaped = true;
        r
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill_and_reap(self.pid);
        }
    }
}

/// Leaves the process at once without running destructors or atexit handlers
/// (a forked child must not flush the parent's buffered state twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// `arg_start` and `arg_end` (fields 48 and 49 of `/proc/self/stat`, see proc(5)).
fn argv_area() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after it start past the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is at index N - 3.
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    (end > start).then_some((start, end))
}

/// Sets the title `ps` shows (`siplab: udp receiver child=0 sock=...`, like Kamailio) and the
/// 15-byte kernel name `top` shows. The title is written over this process's own argv strings
/// through `/proc/self/mem`, cut to their original length and NUL-padded.
///
/// Why this is sound without `unsafe`: the argv area belongs to this process, nothing in Rust
/// holds a reference into it (std reads it only through raw pointers when `env::args` is
/// called, and then finds NUL-terminated strings), and the write never leaves the area that
/// `/proc/self/stat` reports. Call it after the command line was parsed.
pub fn set_process_title(title: &str) {
    if let Ok(name) = std::ffi::CString::new(
        title
            .trim_start_matches("siplab: ")
            .chars()
            .take(15)
            .collect::<String>(),
    ) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let Some((start, end)) = argv_area() else {
        return;
    };
    let cap = (end - start) as usize;
    let mut bytes = vec![0u8; cap];
    let n = title.len().min(cap.saturating_sub(1));
    if let (Some(dst), Some(src)) = (bytes.get_mut(..n), title.as_bytes().get(..n)) {
        dst.copy_from_slice(src);
    }
    let Ok(mut mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    else {
        return;
    };
    if mem.seek(SeekFrom::Start(start)).is_ok() {
        let _ = mem.write_all(&bytes);
    }
}

#[cfg(test)]
mod title_tests {
    #[test]
    fn argv_area_is_found_and_holds_our_command_line() {
        let (start, end) = super::argv_area().expect("/proc/self/stat has arg_start/arg_end");
        let cmdline = std::fs::read("/proc/self/cmdline").expect("cmdline");
        assert_eq!((end - start) as usize, cmdline.len());
    }
}
