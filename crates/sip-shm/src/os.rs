//! Process primitives that need `unsafe` and therefore live here, the project's only
//! `unsafe` crate: `fork` for the supervisor and the fork-based tests.

use nix::unistd::{ForkResult, Pid};

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

/// Leaves the process at once without running destructors or atexit handlers
/// (a forked child must not flush the parent's buffered state twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and has no preconditions.
    unsafe { libc::_exit(code) }
}
