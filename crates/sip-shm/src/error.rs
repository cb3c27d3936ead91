//! Typed errors. Nothing in this crate panics on a bad offset or a full region: callers
//! get one of these and decide (tm answers 500/503 and counts it).

use std::fmt;

/// Failure of a region, allocator or table operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShmError {
    /// No block large enough is free. `free` is what the allocator had in total (possibly
    /// fragmented), so the message tells "full" from "fragmented".
    Exhausted { requested: usize, free: u64 },
    /// The requested region size is outside what offsets can address (u32) or too small to
    /// hold the region header.
    BadRegionSize { requested: usize },
    /// The operating system refused the mapping (`errno`).
    Os { op: &'static str, errno: i32 },
    /// An offset/length pair does not lie inside the allocatable part of the region.
    OutOfBounds { off: u32, len: usize },
    /// An offset is not aligned for the type it is read as.
    Misaligned { off: u32, align: usize },
    /// `free` of a block that is already free.
    DoubleFree { off: u32 },
    /// `free`/`block_capacity` of an offset that is not the start of an allocated block.
    NotABlock { off: u32 },
    /// A fixed-capacity table (process table, counter names) has no room left.
    TableFull { what: &'static str, capacity: usize },
    /// An index (rank, counter id, directory slot) is beyond the table's capacity.
    BadIndex {
        what: &'static str,
        index: usize,
        capacity: usize,
    },
    /// A directory slot that a structure was expected in is empty or holds the wrong kind.
    Missing { what: &'static str },
    /// Taking a lock that guards the structure failed.
    Lock(LockError),
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Exhausted { requested, free } => write!(
                f,
                "shared memory exhausted: {requested} bytes requested, {free} bytes free in total"
            ),
            ShmError::BadRegionSize { requested } => {
                write!(
                    f,
                    "bad shared memory size {requested} (must be 16 KiB ..= 4 GiB - 64 KiB)"
                )
            }
            ShmError::Os { op, errno } => write!(
                f,
                "{op} failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            ShmError::OutOfBounds { off, len } => {
                write!(f, "offset {off} length {len} is outside the shared arena")
            }
            ShmError::Misaligned { off, align } => {
                write!(f, "offset {off} is not aligned to {align}")
            }
            ShmError::DoubleFree { off } => write!(f, "double free of shared block at {off}"),
            ShmError::NotABlock { off } => {
                write!(
                    f,
                    "offset {off} is not the start of an allocated shared block"
                )
            }
            ShmError::TableFull { what, capacity } => {
                write!(f, "{what} is full ({capacity} entries)")
            }
            ShmError::BadIndex {
                what,
                index,
                capacity,
            } => {
                write!(f, "{what} index {index} out of range (capacity {capacity})")
            }
            ShmError::Missing { what } => write!(f, "{what} is not set up in this region"),
            ShmError::Lock(e) => write!(f, "lock failed: {e}"),
        }
    }
}

impl std::error::Error for ShmError {}

impl From<LockError> for ShmError {
    fn from(e: LockError) -> Self {
        ShmError::Lock(e)
    }
}

/// Failure to take a [`crate::ShmMutex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockError {
    /// A previous owner died and the state was never marked consistent (cannot happen
    /// through this crate's guards, which always mark it; kept for foreign lockers).
    NotRecoverable,
    /// This thread already holds the mutex (error-checking mutex): taking it again would
    /// deadlock.
    WouldDeadlock,
    /// Any other `pthread_mutex_*` error code.
    Os(i32),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::NotRecoverable => write!(f, "mutex is not recoverable"),
            LockError::WouldDeadlock => write!(f, "mutex already held by this thread"),
            LockError::Os(e) => write!(f, "{}", std::io::Error::from_raw_os_error(*e)),
        }
    }
}

impl std::error::Error for LockError {}
