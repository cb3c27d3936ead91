//! Everything in siplab that touches shared memory, and the only crate with `unsafe`.
//!
//! # The model
//! The supervisor maps one region ([`Region::shared`], `MAP_SHARED | MAP_ANONYMOUS`, sized
//! from `-m`) **before** it forks, so every worker, the timer and the ctl process see the
//! same physical pages. Offset 0 holds a header: magic, size, a directory of well-known
//! structures ([`DirSlot`]: process table, counters, tm table, …) and the allocator
//! state. The rest is the arena handed out by the allocator.
//!
//! **Offsets, not pointers.** Shared structures link to each other with [`ShmOff<T>`]
//! (a `u32` byte offset), and every access goes through [`Region::get`] /
//! [`Region::bytes`], which check bounds and alignment. The mapping happens to sit at the
//! same address in all forked processes, but offsets keep working for the heap twin
//! ([`Region::heap`], used by unit tests to run two "workers" in one process), for a
//! future remap, and make a corrupted link an error instead of a wild pointer.
//!
//! **Shared mutable data is either atomic or behind a [`ShmMutex`].** Types that may live
//! in the region implement [`ShmSafe`] (declare them with [`shm_struct!`]): plain integers,
//! atomics, offsets, arrays of those and `ShmMutex<T>`. A `&T` from [`Region::get`] can
//! only change what is atomic; non-atomic fields are changed through a `ShmMutex` guard,
//! or set once in a fresh allocation by [`Region::alloc_with`] before the offset is
//! published.
//!
//! **Robust mutexes and repair.** A worker can die (SIGKILL, a bug) while holding a lock.
//! `ShmMutex` is a process-shared *robust* pthread mutex: the next locker gets the lock
//! with [`ShmGuard::previous_owner_died`] set, instead of deadlocking forever. *Repair*
//! means that locker restores the invariants of the data the dead process was changing
//! (relinks or drops a half-inserted entry, recounts) before releasing it; the guard has
//! already marked the mutex consistent. The allocator shows the pattern: its list
//! updates are ordered so a crash between steps only leaks a block, and its repair
//! recounts and truncates at the first invalid entry.
//!
//! **Exhaustion is a value.** [`Region::alloc`] returns [`ShmError::Exhausted`]; callers
//! answer 500/503 and count it.
//!
//! # Contract the type system cannot enforce
//! Do not use an offset after freeing it: another process may have reused the block.
//! (tm keeps cells alive with reference counts, as Kamailio does.) Bounds checks keep a
//! stale offset from reading outside the arena, and `free` rejects double frees it can
//! see, but a stale reader may see another allocation's bytes.

mod alloc;
mod bytes;
mod counters;
mod error;
mod mutex;
mod off;
pub mod os;
mod proctable;
mod region;

pub use alloc::{BLOCK_HEADER, MAX_ALIGN, MAX_SMALL_BLOCK, MIN_BLOCK, NUM_CLASSES, ShmStats};
pub use bytes::ShmBytes;
pub use counters::{COUNTER_NAME_LEN, CounterId, Counters, MAX_COUNTERS};
pub use error::{LockError, ShmError};
pub use mutex::{ShmGuard, ShmMutex};
pub use off::ShmOff;
pub use proctable::{DESCRIPTION_LEN, ProcEntry, ProcRole, ProcessTable};
pub use region::{DIR_SLOTS, DirSlot, MAX_REGION_SIZE, MIN_REGION_SIZE, REGION_MAGIC, Region};

use std::sync::atomic::{
    AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16, AtomicU32,
    AtomicU64, AtomicUsize,
};

/// Marker for types that may live in a shared region and be read through `&T`.
///
/// # Safety
/// Implementors must be: `#[repr(C)]` (or a primitive), valid for **every** bit pattern
/// (the region starts zeroed and a stale offset may point at anything), free of pointers
/// and references (another process's addresses mean nothing here), and only mutable
/// through `&self` via atomics or [`ShmMutex`]. Drop is never run for values in a region.
///
/// Outside this crate, implement it with [`shm_struct!`], which checks every field.
pub unsafe trait ShmSafe: Sync + Sized {}

macro_rules! impl_shm_safe {
    ($($t:ty),*) => {
        $(
            // SAFETY: integer or integer atomic: every bit pattern valid, no pointers, Sync.
            unsafe impl ShmSafe for $t {}
        )*
    };
}

impl_shm_safe!(
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    AtomicU8,
    AtomicU16,
    AtomicU32,
    AtomicU64,
    AtomicUsize,
    AtomicI8,
    AtomicI16,
    AtomicI32,
    AtomicI64,
    AtomicIsize,
    ()
);

// SAFETY: an array of ShmSafe elements is ShmSafe element-wise (no padding between
// elements of one type that could hold a pointer).
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}
// SAFETY: a u32 offset; every value is valid (access re-checks it).
unsafe impl<T> ShmSafe for ShmOff<T> {}

/// Declares a `#[repr(C)]` struct that may live in a region and implements [`ShmSafe`]
/// for it after checking, at compile time, that every field type is `ShmSafe`.
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// sip_shm::shm_struct! {
///     /// One tm hash bucket.
///     pub struct Bucket {
///         pub lock: sip_shm::ShmMutex<BucketList>,
///         pub entries: AtomicU32,
///     }
/// }
/// sip_shm::shm_struct! {
///     pub struct BucketList { pub first: u32, pub last: u32, pub next_label: u32 }
/// }
/// let region = sip_shm::Region::heap(1 << 20).unwrap();
/// let buckets = region.alloc_array::<Bucket>(16).unwrap();
/// let b = &region.get_slice(buckets, 16).unwrap()[3];
/// b.lock.lock().unwrap().next_label += 1;
/// assert_eq!(b.lock.lock().unwrap().next_label, 1);
/// ```
#[macro_export]
macro_rules! shm_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $fty, )*
        }

        // SAFETY: repr(C) struct whose every field is ShmSafe (asserted below), so it is
        // valid for every bit pattern (padding included), pointer-free and Sync.
        unsafe impl $crate::ShmSafe for $name {}

        const _: fn() = || {
            fn assert_shm_safe<T: $crate::ShmSafe>() {}
            $( assert_shm_safe::<$fty>(); )*
        };
    };
}
