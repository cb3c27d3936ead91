//! Everything in siplab that touches shared memory, and the only crate with `unsafe`.
//!
//! Will hold: one `MAP_SHARED` region made before fork and addressed by offsets, a
//! size-class allocator whose exhaustion is an error value, process-shared robust
//! mutexes, per-worker counters, the process table, and a heap-backed twin of the same
//! API so unit tests can interleave two "workers" in one process.
