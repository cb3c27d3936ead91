//! Byte buffers in shared memory (message copies, strings), accessed with atomic loads
//! and stores so that a reader racing a writer in another process sees stale or mixed
//! bytes at worst, never undefined behaviour. Copies go a word at a time where aligned.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// A view of `len` bytes in a region. Obtained from [`crate::Region::bytes`].
///
/// Who may write is the caller's protocol: typically the allocating process fills the
/// block before publishing its offset (store with `Release`, load with `Acquire`), or a
/// [`crate::ShmMutex`] guards the structure that owns the buffer.
#[derive(Clone, Copy)]
pub struct ShmBytes<'a> {
    cells: &'a [AtomicU8],
}

impl<'a> ShmBytes<'a> {
    pub(crate) fn new(cells: &'a [AtomicU8]) -> Self {
        ShmBytes { cells }
    }

    /// Length of the view in bytes.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True for a zero-length view.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Copies `min(len, dst.len())` bytes into `dst`; returns how many.
    pub fn read_into(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.cells.len());
        let (dst, src) = (&mut dst[..n], &self.cells[..n]);
        let mut i = 0;
        while i < n {
            if let Some(word) = word_at(src, i) {
                dst[i..i + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
                i += 8;
            } else {
                dst[i] = src[i].load(Ordering::Relaxed);
                i += 1;
            }
        }
        n
    }

    /// Copies `min(len, src.len())` bytes from `src` into the view; returns how many.
    pub fn write_from(&self, src: &[u8]) -> usize {
        let n = src.len().min(self.cells.len());
        let dst = &self.cells[..n];
        let mut i = 0;
        while i < n {
            if let Some(word) = word_at(dst, i) {
                let mut chunk = [0u8; 8];
                chunk.copy_from_slice(&src[i..i + 8]);
                word.store(u64::from_ne_bytes(chunk), Ordering::Relaxed);
                i += 8;
            } else {
                dst[i].store(src[i], Ordering::Relaxed);
                i += 1;
            }
        }
        n
    }

    /// The bytes as an owned vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.cells.len()];
        self.read_into(&mut out);
        out
    }

    /// True when the view holds exactly `other` (same length, same bytes).
    pub fn eq_slice(&self, other: &[u8]) -> bool {
        other.len() == self.cells.len()
            && self
                .cells
                .iter()
                .zip(other)
                .all(|(a, b)| a.load(Ordering::Relaxed) == *b)
    }

    /// Sets every byte to `value`.
    pub fn fill(&self, value: u8) {
        for c in self.cells {
            c.store(value, Ordering::Relaxed);
        }
    }

    /// A sub-view `[start, start + len)`, or `None` if it does not fit.
    pub fn slice(&self, start: usize, len: usize) -> Option<ShmBytes<'a>> {
        let end = start.checked_add(len)?;
        self.cells.get(start..end).map(ShmBytes::new)
    }
}

/// The 8 cells at `i` as one `AtomicU64`, when they are 8-aligned and all inside `cells`.
fn word_at(cells: &[AtomicU8], i: usize) -> Option<&AtomicU64> {
    let ptr = cells[i..].as_ptr();
    if cells.len() - i < 8 || (ptr as usize) % 8 != 0 {
        return None;
    }
    // SAFETY: the 8 bytes at `ptr` are inside `cells` (checked), 8-aligned (checked), and
    // AtomicU64 has the size and bit validity of 8 AtomicU8s. Two views that start at
    // different offsets may touch the same byte once as u8 and once as u64; under the
    // usage protocol (one writer, publish before read) those never race, and if a buggy
    // caller does race them the hardware (x86-64, aarch64) gives torn bytes, not traps.
    Some(unsafe { &*ptr.cast::<AtomicU64>() })
}

impl std::fmt::Debug for ShmBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShmBytes({:?})", String::from_utf8_lossy(&self.to_vec()))
    }
}
