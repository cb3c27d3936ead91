//! Size-class allocator over the region's arena.
//!
//! # Layout
//! Every block starts with a 16-byte header `{magic, size, next, tag}` followed by the
//! payload (16-byte aligned). Small blocks come in size classes (`tag` = class index):
//! every multiple of 16 B from 32 B to 4 KiB (fine classes: a SIP message or a
//! transaction's state wastes at most 15 B to rounding, where powers of two wasted up to
//! half), then powers of two up to 64 KiB; larger requests are "large" blocks (`tag` =
//! [`LARGE_TAG`], size rounded to 64 B). Fresh memory comes from one bump range
//! `[lo, hi)` packed in a single `AtomicU64`: small blocks are carved upward from `lo`,
//! large ones downward from `hi`, so the two kinds do not interleave. Freed blocks go on
//! a LIFO free list per class (and one first-fit list for large blocks), each behind its
//! own robust [`ShmMutex`].
//!
//! An allocation tries, in order: its class's free list; the bump range; splitting a
//! free block of the next non-empty larger class (the remainder goes onto the list of its
//! own size, or the large list); carving from a free large block. A freed block adjacent to the bump range is
//! returned to it. When all that fails, one coalescing pass merges address-adjacent free
//! blocks of every list into large free blocks and the allocation is retried once;
//! failing again is [`ShmError::Exhausted`].
//!
//! # Crash safety
//! Every list change is ordered so that a process killed between two steps leaves each
//! list well-formed and at worst *leaks* the block it was moving:
//! - push: write `block.next = head`, then `head = block` (one store publishes it);
//! - pop: read `head.next`, then `head = next` (one store unlinks it);
//! - large split: shrink the free block's `size` (one store), then write the tail's header;
//! - bump: one compare-and-swap.
//!
//! The per-list `count`/`bytes` figures are updated while the lock is held, so a death
//! there leaves the figures off; the next locker sees `EOWNERDEAD` and repairs: it walks
//! the list (bounded, validating each header), cuts it at the first invalid entry, and
//! recounts. A leaked block is counted as used. Free validates the header magic and
//! flips it `USED → FREE` with a compare-and-swap, so a double free (even a concurrent
//! one from two processes) or an offset that is not a block is an error value.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::ShmSafe;
use crate::error::ShmError;
use crate::mutex::{ShmGuard, ShmMutex};
use crate::off::ShmOff;
use crate::region::Region;

/// Block header size; payloads start this far after the header.
pub const BLOCK_HEADER: u32 = 16;
/// Smallest block (header included).
pub const MIN_BLOCK: u32 = 32;
/// Step between fine size classes (and the granularity of every block size).
pub const FINE_STEP: u32 = 16;
/// Largest fine class; above it classes are powers of two.
pub const MAX_FINE_BLOCK: u32 = 4096;
/// Number of fine classes (`MIN_BLOCK..=MAX_FINE_BLOCK` in `FINE_STEP`s).
const NUM_FINE: usize = ((MAX_FINE_BLOCK - MIN_BLOCK) / FINE_STEP) as usize + 1;
/// Number of small size classes: the fine ones, then 8, 16, 32 and 64 KiB.
pub const NUM_CLASSES: usize = NUM_FINE + 4;
/// Largest small block (header included); bigger requests are large blocks.
pub const MAX_SMALL_BLOCK: u32 = MAX_FINE_BLOCK << (NUM_CLASSES - NUM_FINE);
/// Largest alignment `alloc_value`/`alloc_array` support.
pub const MAX_ALIGN: usize = 4096;
/// `tag` of a large block.
const LARGE_TAG: u32 = 0xFFFF;
/// A large free block is only split when at least this much stays on the free list.
const MIN_LARGE_REMAINDER: u32 = 256;
/// Granularity of large blocks.
const LARGE_ROUND: u32 = 64;

const MAGIC_USED: u32 = u32::from_be_bytes(*b"SHMU");
const MAGIC_FREE: u32 = u32::from_be_bytes(*b"SHMF");
/// Marks a padding header in front of an over-aligned payload; `next` points at the
/// real block header.
const MAGIC_SHADOW: u32 = u32::from_be_bytes(*b"SHMS");

#[repr(C)]
struct BlockHeader {
    magic: AtomicU32,
    size: AtomicU32,
    next: AtomicU32,
    tag: AtomicU32,
}

// SAFETY: four atomics: any bit pattern valid, no pointers, no Drop, Sync.
unsafe impl ShmSafe for BlockHeader {}

crate::shm_struct! {
    /// Head of one free list (protected by the list's mutex).
    struct FreeHead {
        head: u32,
    }
}

#[repr(C)]
struct FreeList {
    lock: ShmMutex<FreeHead>,
    /// Blocks on the list; written under `lock`, read lock-free for stats.
    count: AtomicU32,
    /// Bytes on the list (headers included); same rules as `count`.
    bytes: AtomicU64,
}

/// Allocator state, embedded in the region header.
#[repr(C)]
pub(crate) struct AllocState {
    arena_start: AtomicU32,
    arena_end: AtomicU32,
    /// `lo | hi << 32`: the untouched range between small (upward) and large (downward).
    bump: AtomicU64,
    live_blocks: AtomicU64,
    max_real_used: AtomicU64,
    repairs: AtomicU64,
    /// Frees so far, and its value at the last coalescing pass: a pass is pointless
    /// (and is skipped) when nothing was freed since.
    frees: AtomicU64,
    coalesced_at_frees: AtomicU64,
    classes: [FreeList; NUM_CLASSES],
    large: FreeList,
}

impl AllocState {
    pub(crate) fn init(&self, arena_start: u32, arena_end: u32) {
        self.arena_start.store(arena_start, Ordering::Relaxed);
        self.arena_end.store(arena_end, Ordering::Relaxed);
        self.bump
            .store(pack(arena_start, arena_end), Ordering::Relaxed);
        self.max_real_used
            .store(u64::from(arena_start), Ordering::Relaxed);
    }
}

/// Memory figures for `core.shmmem`, with Kamailio's field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShmStats {
    /// Region size.
    pub total: u64,
    /// Bytes handed out to callers (block payloads, rounding included).
    pub used: u64,
    /// Bytes not available for allocation: `used` plus block headers, the region header
    /// and blocks leaked by crashed processes.
    pub real_used: u64,
    /// Highest `real_used` seen.
    pub max_used: u64,
    /// `total - real_used`: free lists plus the untouched bump range.
    pub free: u64,
    /// Number of free blocks on the free lists.
    pub fragments: u64,
}

fn pack(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

fn unpack(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

fn class_size(class: usize) -> u32 {
    if class < NUM_FINE {
        MIN_BLOCK + FINE_STEP * class as u32
    } else {
        MAX_FINE_BLOCK << (class - NUM_FINE + 1)
    }
}

/// Smallest class whose blocks hold `need` bytes (header included), if any.
fn class_for(need: u32) -> Option<usize> {
    if need > MAX_SMALL_BLOCK {
        return None;
    }
    let need = need.max(MIN_BLOCK);
    if need <= MAX_FINE_BLOCK {
        return Some((need - MIN_BLOCK).div_ceil(FINE_STEP) as usize);
    }
    let rounded = need.next_power_of_two();
    Some(NUM_FINE - 1 + (rounded.trailing_zeros() - MAX_FINE_BLOCK.trailing_zeros()) as usize)
}

/// The class whose blocks are exactly `size` bytes, if any.
fn exact_class(size: u32) -> Option<usize> {
    class_for(size).filter(|&c| class_size(c) == size)
}

impl Region {
    fn alloc_state(&self) -> &AllocState {
        &self.header().alloc
    }

    fn block(&self, hdr: u32) -> Result<&BlockHeader, ShmError> {
        self.get(ShmOff::<BlockHeader>::from_raw(hdr))
            .map_err(|_| ShmError::NotABlock { off: hdr })
    }

    /// Allocates a block with at least `len` payload bytes (16-byte aligned, contents
    /// unspecified). Exhaustion is an error value.
    pub fn alloc(&self, len: usize) -> Result<ShmOff<u8>, ShmError> {
        let exhausted = || ShmError::Exhausted {
            requested: len,
            free: self.stats().free,
        };
        let need = u32::try_from(len.max(1))
            .ok()
            .and_then(|l| l.checked_add(BLOCK_HEADER))
            .ok_or_else(exhausted)?;
        let hdr = match class_for(need) {
            Some(class) => self.alloc_small(class)?,
            None => {
                let need = need
                    .checked_next_multiple_of(LARGE_ROUND)
                    .ok_or_else(exhausted)?;
                self.alloc_large(need)?
            }
        };
        let hdr = match hdr {
            Some(hdr) => hdr,
            // Out of blocks of this size: merge neighbouring free blocks and retry once.
            None if self.coalesce()? => match class_for(need) {
                Some(class) => self.alloc_small(class)?,
                None => self.alloc_large(need.next_multiple_of(LARGE_ROUND))?,
            }
            .ok_or_else(exhausted)?,
            None => return Err(exhausted()),
        };
        let st = self.alloc_state();
        st.live_blocks.fetch_add(1, Ordering::Relaxed);
        st.max_real_used
            .fetch_max(self.stats().real_used, Ordering::Relaxed);
        Ok(ShmOff::from_raw(hdr + BLOCK_HEADER))
    }

    fn alloc_small(&self, class: usize) -> Result<Option<u32>, ShmError> {
        let size = class_size(class);
        if let Some(hdr) = self.pop(class)? {
            return Ok(Some(hdr));
        }
        if let Some(hdr) = self.bump_low(size) {
            self.write_header(hdr, MAGIC_USED, size, class as u32);
            return Ok(Some(hdr));
        }
        let classes = &self.alloc_state().classes;
        for (bigger, list) in classes.iter().enumerate().skip(class + 1) {
            // `count` is a lock-free hint: skip the lock of lists that look empty.
            if list.count.load(Ordering::Relaxed) == 0 {
                continue;
            }
            if let Some(hdr) = self.pop(bigger)? {
                return self.split(hdr, bigger, class).map(Some);
            }
        }
        self.take_large(size, class as u32, true)
    }

    /// Cuts the popped block `hdr` of class `from` down to class `to`: the low part is
    /// handed out, the remainder goes free onto the list of its size. A remainder too
    /// small to be a block stays with the handed-out block (which keeps class `from`).
    fn split(&self, hdr: u32, from: usize, to: usize) -> Result<u32, ShmError> {
        let (have, want) = (class_size(from), class_size(to));
        let rest = have - want;
        if rest < MIN_BLOCK {
            self.write_header(hdr, MAGIC_USED, have, from as u32);
            return Ok(hdr);
        }
        let st = self.alloc_state();
        let upper = hdr + want;
        let (list, tag) = match exact_class(rest) {
            Some(c) => (&st.classes[c], c as u32),
            None => (&st.large, LARGE_TAG),
        };
        self.write_header(upper, MAGIC_FREE, rest, tag);
        self.push(list, upper, rest)?;
        self.write_header(hdr, MAGIC_USED, want, to as u32);
        Ok(hdr)
    }

    fn alloc_large(&self, need: u32) -> Result<Option<u32>, ShmError> {
        if let Some(hdr) = self.take_large(need, LARGE_TAG, false)? {
            return Ok(Some(hdr));
        }
        Ok(self.bump_high(need).inspect(|&hdr| {
            self.write_header(hdr, MAGIC_USED, need, LARGE_TAG);
        }))
    }

    fn write_header(&self, hdr: u32, magic: u32, size: u32, tag: u32) {
        // Offsets come from the bump range or validated free blocks: always in the arena.
        if let Ok(b) = self.block(hdr) {
            b.size.store(size, Ordering::Relaxed);
            b.tag.store(tag, Ordering::Relaxed);
            b.next.store(0, Ordering::Relaxed);
            b.magic.store(magic, Ordering::Release);
        }
    }

    fn bump_low(&self, size: u32) -> Option<u32> {
        let bump = &self.alloc_state().bump;
        let mut cur = bump.load(Ordering::Acquire);
        loop {
            let (lo, hi) = unpack(cur);
            if hi - lo < size {
                return None;
            }
            match bump.compare_exchange_weak(
                cur,
                pack(lo + size, hi),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(lo),
                Err(now) => cur = now,
            }
        }
    }

    fn bump_high(&self, size: u32) -> Option<u32> {
        let bump = &self.alloc_state().bump;
        let mut cur = bump.load(Ordering::Acquire);
        loop {
            let (lo, hi) = unpack(cur);
            if hi - lo < size {
                return None;
            }
            match bump.compare_exchange_weak(
                cur,
                pack(lo, hi - size),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(hi - size),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives a freed block back to the bump range when it borders it.
    fn return_to_bump(&self, hdr: u32, size: u32) -> bool {
        let bump = &self.alloc_state().bump;
        let cur = bump.load(Ordering::Acquire);
        let (lo, hi) = unpack(cur);
        let new = if hdr + size == lo {
            pack(hdr, hi)
        } else if hdr == hi {
            pack(lo, hi + size)
        } else {
            return false;
        };
        bump.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Locks a free list, repairing it first if the previous holder died.
    fn lock_list<'a>(
        &'a self,
        list: &'a FreeList,
        tag: u32,
    ) -> Result<ShmGuard<'a, FreeHead>, ShmError> {
        let mut guard = list.lock.lock()?;
        if guard.previous_owner_died() {
            self.repair_list(list, &mut guard, tag);
        }
        Ok(guard)
    }

    /// Walks the list validating each block, cuts it at the first bad entry (leaking the
    /// rest rather than trusting it), and recounts `count`/`bytes`.
    fn repair_list(&self, list: &FreeList, guard: &mut ShmGuard<'_, FreeHead>, tag: u32) {
        let st = self.alloc_state();
        let arena = st.arena_end.load(Ordering::Relaxed) - st.arena_start.load(Ordering::Relaxed);
        let max_steps = arena / MIN_BLOCK;
        let (mut count, mut bytes, mut steps) = (0u32, 0u64, 0u32);
        let mut prev: Option<&BlockHeader> = None;
        let mut cur = guard.head;
        while cur != 0 {
            let valid = (steps < max_steps)
                .then(|| self.free_block(cur, tag))
                .flatten();
            let Some(b) = valid else {
                match prev {
                    Some(p) => p.next.store(0, Ordering::Relaxed),
                    None => guard.head = 0,
                }
                break;
            };
            steps += 1;
            count += 1;
            bytes += u64::from(b.size.load(Ordering::Relaxed));
            prev = Some(b);
            cur = b.next.load(Ordering::Relaxed);
        }
        list.count.store(count, Ordering::Relaxed);
        list.bytes.store(bytes, Ordering::Relaxed);
        st.repairs.fetch_add(1, Ordering::Relaxed);
    }

    /// The header at `hdr` if it is a well-formed free block with this tag.
    fn free_block(&self, hdr: u32, tag: u32) -> Option<&BlockHeader> {
        let b = self.block(hdr).ok()?;
        let size = b.size.load(Ordering::Relaxed);
        let ok = b.magic.load(Ordering::Acquire) == MAGIC_FREE
            && b.tag.load(Ordering::Relaxed) == tag
            && self.size_fits(hdr, size, tag);
        ok.then_some(b)
    }

    fn size_fits(&self, hdr: u32, size: u32, tag: u32) -> bool {
        let end_ok = u64::from(hdr) + u64::from(size) <= self.size() as u64;
        let size_ok = match tag {
            LARGE_TAG => size >= MIN_BLOCK && size % 16 == 0,
            t => (t as usize) < NUM_CLASSES && size == class_size(t as usize),
        };
        end_ok && size_ok
    }

    fn pop(&self, class: usize) -> Result<Option<u32>, ShmError> {
        let list = &self.alloc_state().classes[class];
        let mut g = self.lock_list(list, class as u32)?;
        let hdr = g.head;
        if hdr == 0 {
            return Ok(None);
        }
        let Some(b) = self.free_block(hdr, class as u32) else {
            // Corrupted head: drop the list (leak) rather than hand out a bad block.
            g.head = 0;
            list.count.store(0, Ordering::Relaxed);
            list.bytes.store(0, Ordering::Relaxed);
            return Ok(None);
        };
        g.head = b.next.load(Ordering::Relaxed);
        list.count.fetch_sub(1, Ordering::Relaxed);
        list.bytes
            .fetch_sub(u64::from(class_size(class)), Ordering::Relaxed);
        drop(g);
        b.next.store(0, Ordering::Relaxed);
        b.magic.store(MAGIC_USED, Ordering::Release);
        Ok(Some(hdr))
    }

    /// Pushes a block whose header already says FREE.
    fn push(&self, list: &FreeList, hdr: u32, size: u32) -> Result<(), ShmError> {
        let tag = self.block(hdr)?.tag.load(Ordering::Relaxed);
        let mut g = self.lock_list(list, tag)?;
        self.block(hdr)?.next.store(g.head, Ordering::Relaxed);
        g.head = hdr;
        list.count.fetch_add(1, Ordering::Relaxed);
        list.bytes.fetch_add(u64::from(size), Ordering::Relaxed);
        Ok(())
    }

    /// First fit on the large list. `exact`: the block must be exactly `need` bytes after
    /// any split (small classes need their exact size).
    fn take_large(&self, need: u32, tag: u32, exact: bool) -> Result<Option<u32>, ShmError> {
        let list = &self.alloc_state().large;
        let mut g = self.lock_list(list, LARGE_TAG)?;
        let mut prev: Option<&BlockHeader> = None;
        let mut cur = g.head;
        while cur != 0 {
            let Some(b) = self.free_block(cur, LARGE_TAG) else {
                match prev {
                    Some(p) => p.next.store(0, Ordering::Relaxed),
                    None => g.head = 0,
                }
                return Ok(None);
            };
            let size = b.size.load(Ordering::Relaxed);
            let next = b.next.load(Ordering::Relaxed);
            if size >= need.saturating_add(MIN_LARGE_REMAINDER) {
                // Shrink in place and hand out the tail: one store takes it off the list.
                b.size.store(size - need, Ordering::Relaxed);
                list.bytes.fetch_sub(u64::from(need), Ordering::Relaxed);
                drop(g);
                let tail = cur + size - need;
                self.write_header(tail, MAGIC_USED, need, tag);
                return Ok(Some(tail));
            }
            if size == need || (!exact && size >= need) {
                match prev {
                    Some(p) => p.next.store(next, Ordering::Relaxed),
                    None => g.head = next,
                }
                list.count.fetch_sub(1, Ordering::Relaxed);
                list.bytes.fetch_sub(u64::from(size), Ordering::Relaxed);
                drop(g);
                self.write_header(cur, MAGIC_USED, size, tag);
                return Ok(Some(cur));
            }
            prev = Some(b);
            cur = next;
        }
        Ok(None)
    }

    /// Merges address-adjacent free blocks of all lists into large free blocks (runs that
    /// border the bump range go back to it). Holds every list lock, taken in one fixed
    /// order (no other path holds two). Crash safety: all list heads are cleared before
    /// the merged blocks are pushed, so a death midway only leaks. Returns whether any
    /// block was merged or returned.
    fn coalesce(&self) -> Result<bool, ShmError> {
        let st = self.alloc_state();
        let frees = st.frees.load(Ordering::Acquire);
        if st.coalesced_at_frees.swap(frees, Ordering::AcqRel) == frees {
            return Ok(false);
        }
        let mut guards = Vec::with_capacity(NUM_CLASSES + 1);
        for (class, list) in st.classes.iter().enumerate() {
            guards.push((list, class as u32, self.lock_list(list, class as u32)?));
        }
        guards.push((&st.large, LARGE_TAG, self.lock_list(&st.large, LARGE_TAG)?));

        let mut blocks: Vec<(u32, u32)> = Vec::new();
        for (_, tag, guard) in &guards {
            let mut cur = guard.head;
            let mut steps = 0usize;
            while let Some(b) = (cur != 0 && steps < 1 << 26)
                .then(|| self.free_block(cur, *tag))
                .flatten()
            {
                blocks.push((cur, b.size.load(Ordering::Relaxed)));
                cur = b.next.load(Ordering::Relaxed);
                steps += 1;
            }
        }
        blocks.sort_unstable();
        let mut runs: Vec<(u32, u32, usize)> = Vec::new(); // (start, len, blocks merged)
        for (off, size) in blocks {
            match runs.last_mut() {
                Some((start, len, n)) if *start + *len == off => {
                    *len += size;
                    *n += 1;
                }
                _ => runs.push((off, size, 1)),
            }
        }
        let (lo, hi) = unpack(st.bump.load(Ordering::Acquire));
        let changed = runs
            .iter()
            .any(|&(start, len, n)| n > 1 || start + len == lo || start == hi);
        if !changed {
            return Ok(false);
        }

        for (list, _, guard) in guards.iter_mut() {
            guard.head = 0;
            list.count.store(0, Ordering::Relaxed);
            list.bytes.store(0, Ordering::Relaxed);
        }
        let (large, _, large_guard) = guards.last_mut().ok_or(ShmError::Missing {
            what: "large free list",
        })?;
        for (start, len, _) in runs.into_iter().rev() {
            if self.return_to_bump(start, len) {
                continue;
            }
            self.write_header(start, MAGIC_FREE, len, LARGE_TAG);
            self.block(start)?
                .next
                .store(large_guard.head, Ordering::Relaxed);
            large_guard.head = start;
            large.count.fetch_add(1, Ordering::Relaxed);
            large.bytes.fetch_add(u64::from(len), Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Finds the header of the allocated block whose payload is `off`.
    /// Returns `(header offset, shadow header offset if over-aligned)`.
    fn resolve(&self, off: u32) -> Result<(u32, Option<u32>), ShmError> {
        let not_block = ShmError::NotABlock { off };
        if off < self.arena_start() + BLOCK_HEADER || off % 16 != 0 {
            return Err(not_block);
        }
        let hdr = off - BLOCK_HEADER;
        let b = self.block(hdr)?;
        let (real, shadow) = match b.magic.load(Ordering::Acquire) {
            MAGIC_USED => (hdr, None),
            MAGIC_FREE => return Err(ShmError::DoubleFree { off }),
            MAGIC_SHADOW => {
                let real = b.next.load(Ordering::Relaxed);
                if real < self.arena_start() || real >= hdr {
                    return Err(not_block);
                }
                (real, Some(hdr))
            }
            _ => return Err(not_block),
        };
        let rb = self.block(real)?;
        match rb.magic.load(Ordering::Acquire) {
            MAGIC_USED => {}
            MAGIC_FREE => return Err(ShmError::DoubleFree { off }),
            _ => return Err(not_block),
        }
        let size = rb.size.load(Ordering::Relaxed);
        let tag = rb.tag.load(Ordering::Relaxed);
        if !self.size_fits(real, size, tag) || u64::from(off) >= u64::from(real) + u64::from(size) {
            return Err(not_block);
        }
        Ok((real, shadow))
    }

    /// Frees a block returned by any `alloc*` call. Double frees and offsets that are not
    /// blocks are reported, never acted on.
    pub fn free<T>(&self, off: ShmOff<T>) -> Result<(), ShmError> {
        let (hdr, shadow) = self.resolve(off.raw())?;
        let b = self.block(hdr)?;
        if b.magic
            .compare_exchange(MAGIC_USED, MAGIC_FREE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ShmError::DoubleFree { off: off.raw() });
        }
        if let Some(shadow) = shadow {
            self.block(shadow)?.magic.store(0, Ordering::Release);
        }
        let st = self.alloc_state();
        st.live_blocks.fetch_sub(1, Ordering::Relaxed);
        let size = b.size.load(Ordering::Relaxed);
        let pushed = if self.return_to_bump(hdr, size) {
            Ok(())
        } else {
            match b.tag.load(Ordering::Relaxed) {
                LARGE_TAG => self.push(&st.large, hdr, size),
                class => self.push(&st.classes[class as usize], hdr, size),
            }
        };
        // Counted after the block is on its list, so a coalescing pass that saw this
        // count also saw the block.
        st.frees.fetch_add(1, Ordering::Release);
        pushed
    }

    /// Usable payload bytes of the allocated block at `off`.
    pub fn block_capacity<T>(&self, off: ShmOff<T>) -> Result<usize, ShmError> {
        let (hdr, _) = self.resolve(off.raw())?;
        let size = self.block(hdr)?.size.load(Ordering::Relaxed);
        Ok((hdr + size - off.raw()) as usize)
    }

    /// Allocates a block and copies `data` into it. Returns the offset; the length is the
    /// caller's to keep (the block may be larger).
    pub fn alloc_bytes(&self, data: &[u8]) -> Result<ShmOff<u8>, ShmError> {
        let off = self.alloc(data.len())?;
        self.bytes(off, data.len())?.write_from(data);
        Ok(off)
    }

    /// Allocates `size` bytes aligned to `align` (a power of two ≤ [`MAX_ALIGN`]).
    fn alloc_aligned(&self, size: usize, align: usize) -> Result<u32, ShmError> {
        if align <= BLOCK_HEADER as usize {
            return Ok(self.alloc(size)?.raw());
        }
        if align > MAX_ALIGN {
            return Err(ShmError::Misaligned { off: 0, align });
        }
        let padded =
            size.checked_add(align - BLOCK_HEADER as usize)
                .ok_or(ShmError::Exhausted {
                    requested: size,
                    free: self.stats().free,
                })?;
        let raw = self.alloc(padded)?.raw();
        let aligned = raw.next_multiple_of(align as u32);
        if aligned != raw {
            // aligned - raw >= 16: room for the shadow header inside the payload.
            let real_hdr = raw - BLOCK_HEADER;
            let shadow = self.block(aligned - BLOCK_HEADER)?;
            shadow.next.store(real_hdr, Ordering::Relaxed);
            shadow.size.store(0, Ordering::Relaxed);
            shadow.tag.store(0, Ordering::Relaxed);
            shadow.magic.store(MAGIC_SHADOW, Ordering::Release);
        }
        Ok(aligned)
    }

    /// Allocates `n` zeroed `T`s (e.g. the tm bucket array at init). Free with [`Region::free`].
    pub fn alloc_array<T: ShmSafe>(&self, n: usize) -> Result<ShmOff<T>, ShmError> {
        let bytes = n
            .max(1)
            .checked_mul(size_of::<T>())
            .ok_or(ShmError::Exhausted {
                requested: usize::MAX,
                free: self.stats().free,
            })?;
        let off = self.alloc_aligned(bytes, align_of::<T>())?;
        self.check_range(off, bytes, align_of::<T>())?;
        // SAFETY: the block was just allocated, so no other process or thread knows its
        // offset: the write is exclusive; [off, off+bytes) is inside the arena (checked).
        unsafe { std::ptr::write_bytes(self.ptr_at(off), 0, bytes) };
        Ok(ShmOff::from_raw(off))
    }

    /// Allocates one zeroed `T`.
    pub fn alloc_value<T: ShmSafe>(&self) -> Result<ShmOff<T>, ShmError> {
        self.alloc_array::<T>(1)
    }

    /// Allocates one zeroed `T` and lets `init` fill it before anyone else can see it
    /// (the only way to set plain, non-atomic fields).
    pub fn alloc_with<T: ShmSafe>(&self, init: impl FnOnce(&mut T)) -> Result<ShmOff<T>, ShmError> {
        let mut init = Some(init);
        self.alloc_array_with(1, |_, t| {
            if let Some(f) = init.take() {
                f(t);
            }
        })
    }

    /// Allocates `n` zeroed `T`s and calls `init(index, &mut element)` on each.
    pub fn alloc_array_with<T: ShmSafe>(
        &self,
        n: usize,
        mut init: impl FnMut(usize, &mut T),
    ) -> Result<ShmOff<T>, ShmError> {
        let off = self.alloc_array::<T>(n)?;
        let base = self.ptr_at(off.raw()).cast::<T>();
        for i in 0..n {
            // SAFETY: exclusive fresh block (see alloc_array), element i is inside it,
            // aligned, and zeroed, which is a valid T (ShmSafe).
            init(i, unsafe { &mut *base.add(i) });
        }
        Ok(off)
    }

    /// Allocator figures (lock-free snapshot; exact when no allocation is in flight).
    pub fn stats(&self) -> ShmStats {
        let st = self.alloc_state();
        let (lo, hi) = unpack(st.bump.load(Ordering::Acquire));
        let lists = st.classes.iter().chain(std::iter::once(&st.large));
        let (mut free, mut fragments) = (u64::from(hi - lo), 0u64);
        for list in lists {
            free += list.bytes.load(Ordering::Relaxed);
            fragments += u64::from(list.count.load(Ordering::Relaxed));
        }
        let total = self.size() as u64;
        let free = free.min(total);
        let real_used = total - free;
        let overhead = u64::from(st.arena_start.load(Ordering::Relaxed))
            + st.live_blocks.load(Ordering::Relaxed) * u64::from(BLOCK_HEADER);
        ShmStats {
            total,
            used: real_used.saturating_sub(overhead),
            real_used,
            max_used: st.max_real_used.load(Ordering::Relaxed).max(real_used),
            free,
            fragments,
        }
    }

    /// How many times a free list was repaired after its lock holder died.
    pub fn alloc_repairs(&self) -> u64 {
        self.alloc_state().repairs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Forks a child that runs `body` while holding class 0's list lock, reports that it
    /// holds it, and waits to be SIGKILLed; the parent kills and reaps it (also on panic).
    fn die_holding_class0_lock(region: &Region, body: impl FnOnce(&mut FreeHead)) {
        // Sized out of class 0 so that allocating it leaves class 0's list alone.
        let flags = region.alloc_value::<[AtomicU64; 8]>().unwrap();
        let flag = &region.get(flags).unwrap()[0];
        // SAFETY: the child only locks, writes shared memory and sleeps, then is killed.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                if let Ok(mut g) = region.alloc_state().classes[0].lock.lock() {
                    body(&mut g);
                    flag.store(1, Ordering::Release);
                    std::mem::forget(g);
                }
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            nix::unistd::ForkResult::Parent { child } => child,
        };
        struct Reap(nix::unistd::Pid);
        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(self.0, None);
            }
        }
        let reap = Reap(pid);
        let deadline = Instant::now() + Duration::from_secs(20);
        while flag.load(Ordering::Acquire) == 0 {
            assert!(Instant::now() < deadline, "child never took the lock");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(reap);
    }

    /// Three 32-byte blocks on class 0's free list (a fourth keeps them off the bump range).
    fn three_free_small(region: &Region) -> Vec<ShmOff<u8>> {
        let offs: Vec<_> = (0..4).map(|_| region.alloc(16).unwrap()).collect();
        for off in &offs[..3] {
            region.free(*off).unwrap();
        }
        assert_eq!(
            region.alloc_state().classes[0]
                .count
                .load(Ordering::Relaxed),
            3
        );
        offs
    }

    #[test]
    fn holder_killed_mid_pop_is_repaired_by_next_allocation() {
        let region = Region::shared(1 << 20).unwrap();
        let offs = three_free_small(&region);
        // The child unlinks the head (a pop's one store) and dies before the count update.
        die_holding_class0_lock(&region, |g| {
            let next = region.block(g.head).unwrap().next.load(Ordering::Relaxed);
            g.head = next;
        });
        let got = region.alloc(16).unwrap();
        assert_eq!(region.alloc_repairs(), 1);
        assert!(offs[..3].contains(&got), "reused a listed block");
        // Recounted: 2 after the child's pop, 1 after ours. The popped block is leaked.
        assert_eq!(
            region.alloc_state().classes[0]
                .count
                .load(Ordering::Relaxed),
            1
        );
        assert_eq!(region.stats().fragments, 1);
        let again = region.alloc(16).unwrap();
        assert_ne!(again, got);
        assert_eq!(region.alloc_repairs(), 1, "repair happens once");
    }

    #[test]
    fn holder_killed_after_corrupting_the_list_leaks_instead_of_handing_out_garbage() {
        let region = Region::shared(1 << 20).unwrap();
        three_free_small(&region);
        die_holding_class0_lock(&region, |g| g.head = 12_345);
        let a = region.alloc(16).unwrap();
        let b = region.alloc(16).unwrap();
        assert_eq!(region.alloc_repairs(), 1);
        assert_ne!(a, b);
        assert_eq!(a.raw() % 16, 0);
        assert_eq!(
            region.alloc_state().classes[0]
                .count
                .load(Ordering::Relaxed),
            0
        );
        region.free(a).unwrap();
        region.free(b).unwrap();
    }

    #[test]
    fn class_for_rounds_up_to_16_bytes_then_to_powers_of_two() {
        assert_eq!(class_for(1), Some(0));
        assert_eq!(class_for(32), Some(0));
        assert_eq!(class_for(33), Some(1));
        assert_eq!(class_size(1), 48);
        assert_eq!(class_size(class_for(737).unwrap()), 752);
        assert_eq!(
            class_size(class_for(MAX_FINE_BLOCK).unwrap()),
            MAX_FINE_BLOCK
        );
        assert_eq!(class_size(class_for(MAX_FINE_BLOCK + 1).unwrap()), 8192);
        assert_eq!(class_for(MAX_SMALL_BLOCK), Some(NUM_CLASSES - 1));
        assert_eq!(class_for(MAX_SMALL_BLOCK + 1), None);
        for c in 0..NUM_CLASSES {
            assert_eq!(class_for(class_size(c)), Some(c), "class {c}");
            assert_eq!(exact_class(class_size(c)), Some(c));
        }
        assert_eq!(exact_class(MAX_FINE_BLOCK + 16), None);
    }

    #[test]
    fn a_split_remainder_goes_to_the_list_of_its_exact_size() {
        let region = Region::heap(1 << 16).unwrap();
        // 1024-byte blocks (1008-byte payloads), then 32-byte ones until the bump range is
        // gone; the big ones are freed onto their list (none borders the bump range).
        let mut big = Vec::new();
        while let Ok(off) = region.alloc(1008) {
            big.push(off);
        }
        while region.alloc(16).is_ok() {}
        for off in &big {
            region.free(*off).unwrap();
        }
        let before = region.stats();
        // 1024 = 736 handed out + 288 on the 288-byte list.
        let a = region.alloc(720).unwrap();
        assert_eq!(region.block_capacity(a).unwrap(), 720);
        let rest = exact_class(288).unwrap();
        assert_eq!(
            region.alloc_state().classes[rest]
                .count
                .load(Ordering::Relaxed),
            1
        );
        let b = region.alloc(272).unwrap();
        assert_eq!(
            b.raw(),
            a.raw() + 736,
            "the remainder served the next request"
        );
        assert_eq!(region.stats().real_used, before.real_used + 1024);
        // A remainder under one block stays with the handed-out block.
        let c = region.alloc(992).unwrap();
        assert_eq!(region.block_capacity(c).unwrap(), 1008);
    }
}
