//! Typed offsets into a region. Shared structures store these, never pointers, so the
//! same bytes mean the same thing in every process and in the heap-backed twin.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// Byte offset of a `T` from the start of a [`crate::Region`]. Offset 0 is the region
/// header, which no allocation can return, so `0` doubles as "null" ([`ShmOff::NULL`]).
///
/// A `ShmOff` is only a number: reading through it goes via [`crate::Region::get`], which
/// checks bounds and alignment, so a stale or corrupted offset yields an error, never UB.
#[repr(transparent)]
pub struct ShmOff<T> {
    raw: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> ShmOff<T> {
    /// The null offset (points at the region header, never at an allocation).
    pub const NULL: ShmOff<T> = ShmOff::from_raw(0);

    /// Wraps a raw offset, e.g. one loaded from an `AtomicU32` link field.
    pub const fn from_raw(raw: u32) -> Self {
        ShmOff {
            raw,
            _type: PhantomData,
        }
    }

    /// The raw byte offset, e.g. to store in an `AtomicU32` link field.
    pub const fn raw(self) -> u32 {
        self.raw
    }

    /// True for [`ShmOff::NULL`].
    pub const fn is_null(self) -> bool {
        self.raw == 0
    }

    /// The same offset viewed as another type (bounds and alignment are checked on access).
    pub const fn cast<U>(self) -> ShmOff<U> {
        ShmOff::from_raw(self.raw)
    }

    /// Offset of element `index` of an array of `T` starting here; `None` on overflow.
    pub fn at(self, index: usize) -> Option<ShmOff<T>> {
        let delta = index.checked_mul(size_of::<T>())?;
        let raw = usize::try_from(self.raw).ok()?.checked_add(delta)?;
        Some(ShmOff::from_raw(u32::try_from(raw).ok()?))
    }
}

impl<T> Clone for ShmOff<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ShmOff<T> {}

impl<T> PartialEq for ShmOff<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> Eq for ShmOff<T> {}

impl<T> Hash for ShmOff<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T> fmt::Debug for ShmOff<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShmOff({:#x})", self.raw)
    }
}
