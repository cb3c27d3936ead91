//! An explicit byte encoding of [`Cell`](crate::Cell) for storage in shared memory.
//!
//! tm keeps each transaction's state as bytes in the shm region and copies it in and out
//! under the cell's lock. Reinterpreting shared bytes as a Rust value with enums would be
//! undefined behaviour after a crashed writer or corruption; decoding instead **validates**
//! every discriminant and count and returns [`WireError`] for anything out of range.
//! Only the branches in use are written, so a one-branch INVITE cell takes ≈ 140 bytes.

use core::fmt;

/// Encoding format version (first byte).
pub const WIRE_VERSION: u8 = 1;

/// A stored cell that cannot be decoded (truncated, bad version or discriminant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored transaction state is corrupt: {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// Appends little-endian integers to a byte vector.
#[derive(Debug, Default)]
pub struct Writer<'a> {
    out: Option<&'a mut Vec<u8>>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out: Some(out) }
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(o) = self.out.as_mut() {
            o.extend_from_slice(bytes);
        }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    /// Two bytes.
    pub fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    /// Four bytes.
    pub fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    /// Eight bytes.
    pub fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    /// Raw bytes (no length).
    pub fn raw(&mut self, v: &[u8]) {
        self.put(v);
    }
    /// A `u32` length then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.put(v);
    }
}

/// Reads what [`Writer`] wrote; every read checks the remaining length.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    /// Two bytes.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// Four bytes.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// Eight bytes.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A `u32` length then that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::{BufRef, Cell, Md5Field, Method, Millis, TmConfig};

    fn invite_cell_with_branch() -> Cell {
        let cfg = TmConfig::default();
        let mut c = Cell::new_server(
            BufRef(64),
            Method::Invite,
            Md5Field([7; 16]),
            42,
            Millis(1_000),
            &cfg,
            false,
        );
        c.msg_flags = 5;
        let _ = c.add_branch(BufRef(128), false, Millis(1_000), &cfg);
        let _ = c.reply_received(0, 180, Millis(1_200), &cfg);
        c
    }

    #[test]
    fn cell_round_trips_through_its_byte_encoding() -> Result<(), super::WireError> {
        let c = invite_cell_with_branch();
        let mut buf = Vec::new();
        c.encode(&mut buf);
        buf.extend_from_slice(b"tail");
        let (d, rest) = Cell::decode(&buf)?;
        assert_eq!(rest, b"tail");
        assert_eq!(d.branches(), c.branches());
        assert_eq!(d.server(), c.server());
        assert_eq!(d.md5, c.md5);
        assert_eq!(d.msg_flags, 5);
        assert_eq!(d.next_deadline(), c.next_deadline());
        // One branch in use: far below the 12-slot in-memory size.
        assert!(buf.len() < 160, "{} bytes", buf.len());
        Ok(())
    }

    #[test]
    fn corrupt_discriminants_and_truncation_are_errors_not_ub() {
        let c = invite_cell_with_branch();
        let mut buf = Vec::new();
        c.encode(&mut buf);
        for cut in [0, 1, 10, buf.len() - 1] {
            assert!(Cell::decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        // The method byte sits right before flags, leg, failure_base, nr_branches and the branch.
        let method_at = buf.len() - super::super::client_wire_len() - 5;
        let mut bad = buf.clone();
        bad[method_at] = 9;
        assert!(Cell::decode(&bad).is_err());
        let mut bad = buf.clone();
        bad[method_at + 4] = 13; // nr_branches > 12
        assert!(Cell::decode(&bad).is_err());
        let mut bad = buf;
        let last = bad.len();
        bad[last - 4] = 4; // branch state out of range
        assert!(Cell::decode(&bad).is_err());
    }
}
