//! The region: one block of memory (a `MAP_SHARED` mapping or, for tests, the heap) that
//! starts with a header (magic, size, directory of well-known structures, allocator state)
//! followed by the arena the allocator hands out.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::ShmSafe;
use crate::alloc::AllocState;
use crate::bytes::ShmBytes;
use crate::error::ShmError;
use crate::off::ShmOff;

/// "SIPLABSH" — first eight bytes of every region.
pub const REGION_MAGIC: u64 = u64::from_be_bytes(*b"SIPLABSH");
/// Layout version of the header; bump when `RegionHeader` changes.
pub const REGION_VERSION: u32 = 1;
/// Number of directory slots in the header.
pub const DIR_SLOTS: usize = 32;
/// Smallest region accepted (header plus a little arena).
pub const MIN_REGION_SIZE: usize = 16 * 1024;
/// Largest region accepted: offsets are `u32` and block arithmetic must not overflow.
pub const MAX_REGION_SIZE: usize = 0xFFFF_0000;
/// Alignment of the region base (a page, so the heap twin lays out like a mapping).
const BASE_ALIGN: usize = 4096;

/// Index of a well-known structure in the region directory (offset 0 holds the header,
/// whose directory maps slots to offsets). The constants are the structures siplab
/// places; slots from [`DirSlot::FIRST_UNASSIGNED`] on are free for later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirSlot(pub u8);

impl DirSlot {
    pub const PROCESS_TABLE: DirSlot = DirSlot(0);
    pub const COUNTERS: DirSlot = DirSlot(1);
    pub const TM_TABLE: DirSlot = DirSlot(2);
    pub const TIMER_WHEEL: DirSlot = DirSlot(3);
    pub const TMX_SLOTS: DirSlot = DirSlot(4);
    pub const DISPATCHER: DirSlot = DirSlot(5);
    pub const FIRST_UNASSIGNED: DirSlot = DirSlot(8);
}

/// What sits at offset 0. Every field is atomic because every process reads it.
#[repr(C, align(64))]
pub(crate) struct RegionHeader {
    magic: AtomicU64,
    size: AtomicU32,
    version: AtomicU32,
    arena_start: AtomicU32,
    arena_end: AtomicU32,
    dir: [AtomicU32; DIR_SLOTS],
    pub(crate) alloc: AllocState,
}

enum Backing {
    /// `mmap(MAP_SHARED | MAP_ANONYMOUS)`: survives fork as the same physical pages.
    Shared,
    /// `alloc_zeroed` with this layout: the single-process twin.
    Heap(Layout),
}

/// A shared-memory region and the handle to everything in it.
///
/// Create it in the supervisor **before** forking ([`Region::shared`]); every child then
/// has the same mapping at the same address. All methods take `&self`: the structures
/// inside synchronise themselves (atomics, [`crate::ShmMutex`]). [`Region::heap`] gives the
/// same API on ordinary memory so one process can play several workers in tests.
///
/// Dropping the handle unmaps this process's view only; other processes keep theirs.
pub struct Region {
    base: NonNull<u8>,
    size: usize,
    arena_start: u32,
    arena_end: u32,
    backing: Backing,
}

// SAFETY: the region is raw memory whose contents are only reached through atomics,
// ShmMutex guards, or exclusive fresh allocations; the handle itself is an address and
// a size, valid from any thread.
unsafe impl Send for Region {}
// SAFETY: as above: every `&self` method synchronises through the structures it touches.
unsafe impl Sync for Region {}

impl Region {
    /// Maps a `MAP_SHARED | MAP_ANONYMOUS` region of `size` bytes (rounded down to 64)
    /// and initialises the header and allocator. Call before fork.
    pub fn shared(size: usize) -> Result<Region, ShmError> {
        let size = check_size(size)?;
        // SAFETY: anonymous mapping request with no address hint; the result is checked
        // against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(ShmError::Os {
                op: "mmap",
                errno: last_errno(),
            });
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(ShmError::Os {
            op: "mmap",
            errno: libc::ENOMEM,
        })?;
        Ok(Region::init(base, size, Backing::Shared))
    }

    /// The heap-backed twin: same layout and API on a zeroed, page-aligned allocation.
    /// Not shared across fork (a child gets a private copy); share it between threads.
    pub fn heap(size: usize) -> Result<Region, ShmError> {
        let size = check_size(size)?;
        let layout = Layout::from_size_align(size, BASE_ALIGN)
            .map_err(|_| ShmError::BadRegionSize { requested: size })?;
        // SAFETY: layout has non-zero size (check_size guarantees >= MIN_REGION_SIZE).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let base = NonNull::new(ptr).ok_or(ShmError::Os {
            op: "alloc_zeroed",
            errno: libc::ENOMEM,
        })?;
        Ok(Region::init(base, size, Backing::Heap(layout)))
    }

    fn init(base: NonNull<u8>, size: usize, backing: Backing) -> Region {
        let arena_start = size_of::<RegionHeader>().next_multiple_of(64);
        // check_size bounds both values below u32::MAX.
        let arena_start = arena_start as u32;
        let arena_end = size as u32;
        let region = Region {
            base,
            size,
            arena_start,
            arena_end,
            backing,
        };
        let header = region.header();
        header.size.store(arena_end, Ordering::Relaxed);
        header.version.store(REGION_VERSION, Ordering::Relaxed);
        header.arena_start.store(arena_start, Ordering::Relaxed);
        header.arena_end.store(arena_end, Ordering::Relaxed);
        header.alloc.init(arena_start, arena_end);
        header.magic.store(REGION_MAGIC, Ordering::Release);
        region
    }

    /// Total size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// True for a `MAP_SHARED` region, false for the heap twin.
    pub fn is_shared(&self) -> bool {
        matches!(self.backing, Backing::Shared)
    }

    /// First offset the allocator can hand out (everything below is the header).
    pub fn arena_start(&self) -> u32 {
        self.arena_start
    }

    /// True when the header still carries the magic and version this build writes.
    pub fn header_valid(&self) -> bool {
        let h = self.header();
        h.magic.load(Ordering::Acquire) == REGION_MAGIC
            && h.version.load(Ordering::Relaxed) == REGION_VERSION
            && h.size.load(Ordering::Relaxed) == self.arena_end
    }

    pub(crate) fn header(&self) -> &RegionHeader {
        // SAFETY: the base is 4096-aligned, the region is at least MIN_REGION_SIZE which
        // exceeds size_of::<RegionHeader>(), memory is zero-initialised and every field is
        // an atomic (zero-valid) or AllocState of atomics/ShmMutexes.
        unsafe { &*self.base.as_ptr().cast::<RegionHeader>() }
    }

    /// Records where a well-known structure lives. Usually done once before fork.
    pub fn set_dir<T>(&self, slot: DirSlot, off: ShmOff<T>) -> Result<(), ShmError> {
        self.dir_cell(slot)?.store(off.raw(), Ordering::Release);
        Ok(())
    }

    /// Where a well-known structure lives, or `None` if the slot was never set.
    pub fn dir<T>(&self, slot: DirSlot) -> Result<Option<ShmOff<T>>, ShmError> {
        let raw = self.dir_cell(slot)?.load(Ordering::Acquire);
        Ok((raw != 0).then(|| ShmOff::from_raw(raw)))
    }

    fn dir_cell(&self, slot: DirSlot) -> Result<&AtomicU32, ShmError> {
        self.header()
            .dir
            .get(usize::from(slot.0))
            .ok_or(ShmError::BadIndex {
                what: "directory slot",
                index: usize::from(slot.0),
                capacity: DIR_SLOTS,
            })
    }

    /// Checks that `[off, off + len)` is inside the arena and `off` is `align`-aligned.
    pub(crate) fn check_range(&self, off: u32, len: usize, align: usize) -> Result<(), ShmError> {
        let end = (off as usize).checked_add(len);
        if off < self.arena_start || end.is_none_or(|e| e > self.arena_end as usize) {
            return Err(ShmError::OutOfBounds { off, len });
        }
        if (off as usize) % align != 0 {
            return Err(ShmError::Misaligned { off, align });
        }
        Ok(())
    }

    /// Shared reference to the `T` at `off` (bounds and alignment checked).
    pub fn get<T: ShmSafe>(&self, off: ShmOff<T>) -> Result<&T, ShmError> {
        self.check_range(off.raw(), size_of::<T>(), align_of::<T>())?;
        // SAFETY: in bounds and aligned (checked), the memory is initialised (zeroed at
        // creation or written since), T is valid for any bytes a ShmSafe type can hold
        // (zero-valid plain data, atomics, ShmMutex), and T: Sync so sharing is fine.
        Ok(unsafe { &*self.base.as_ptr().add(off.raw() as usize).cast::<T>() })
    }

    /// Shared reference to `n` consecutive `T`s starting at `off`.
    pub fn get_slice<T: ShmSafe>(&self, off: ShmOff<T>, n: usize) -> Result<&[T], ShmError> {
        let len = n.checked_mul(size_of::<T>()).ok_or(ShmError::OutOfBounds {
            off: off.raw(),
            len: usize::MAX,
        })?;
        self.check_range(off.raw(), len, align_of::<T>())?;
        // SAFETY: as in `get`, for `n` elements that all lie inside the arena.
        Ok(unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(off.raw() as usize).cast::<T>(), n)
        })
    }

    /// A view of `len` bytes at `off` (bounds checked). See [`ShmBytes`] for access rules.
    pub fn bytes(&self, off: ShmOff<u8>, len: usize) -> Result<ShmBytes<'_>, ShmError> {
        Ok(ShmBytes::new(self.get_slice(off.cast::<AtomicU8>(), len)?))
    }

    /// Raw pointer to `off`, for the allocator's exclusive writes into fresh blocks.
    pub(crate) fn ptr_at(&self, off: u32) -> *mut u8 {
        debug_assert!((off as usize) < self.size);
        // SAFETY: callers pass offsets already checked to lie inside the region.
        unsafe { self.base.as_ptr().add(off as usize) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match self.backing {
            Backing::Shared => {
                // SAFETY: base/size are exactly what mmap returned; no reference into the
                // region can outlive `self` (all borrow it). Failure cannot be handled here.
                unsafe {
                    libc::munmap(self.base.as_ptr().cast(), self.size);
                }
            }
            Backing::Heap(layout) => {
                // SAFETY: allocated in `heap` with this exact layout.
                unsafe { std::alloc::dealloc(self.base.as_ptr(), layout) }
            }
        }
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("size", &self.size)
            .field("shared", &self.is_shared())
            .field("arena_start", &self.arena_start)
            .finish_non_exhaustive()
    }
}

fn check_size(size: usize) -> Result<usize, ShmError> {
    let rounded = size & !63;
    if !(MIN_REGION_SIZE..=MAX_REGION_SIZE).contains(&rounded) {
        return Err(ShmError::BadRegionSize { requested: size });
    }
    Ok(rounded)
}

pub(crate) fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
