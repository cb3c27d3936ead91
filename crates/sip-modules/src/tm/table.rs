//! The transaction table in shared memory: buckets with robust locks, reference-counted
//! cell records, per-cell state blobs and buffers, a timer wheel and the tm counters.
//!
//! # Layout (all offsets into the region, all access through `sip_shm`'s checked API)
//! * [`TableHead`] at directory slot `TM_TABLE`: hash size, bucket array, wheel, counters.
//! * [`Bucket`]: a robust [`ShmMutex`] over the head of a singly linked list of cells.
//! * A cell is **one block**: a [`CellRec`] followed by its immutable key blob (the fields
//!   request matching compares). The fields matching reads without the cell lock
//!   (`uas_status`, `nr_branches`, `cancel_sent`, md5, method) are atomics mirrored by the
//!   cell-lock holder after every step.
//! * `CellRec::state` is the per-cell reply lock (Kamailio's `LOCK_REPLIES`) over the offset
//!   of the **state blob**: `[n bufs][buf offsets][engine bytes]`. The buffer list says
//!   which buffers the cell owns, so the last unref frees everything without knowing the
//!   engine's format. Buffers (the blob too) are blocks `[u32 len][bytes]`.
//!
//! # Locking and references
//! Lock order: cell state lock → bucket lock, cell state lock → wheel lock. The bucket lock
//! is held only for list and refcount work; a fresh cell is locked while still unpublished.
//! The bucket list owns one reference, the wheel one while linked, each lookup one
//! ([`CellRef`] drops it). The last reference frees the state, its buffers and the record.
//!
//! # Repair (a worker died holding a lock)
//! * Bucket: the list is walked; an entry that is not a cell of this bucket ends it (its
//!   `next` cannot be trusted); a cell whose linked flag is already cleared was being
//!   unlinked (`unlink` clears the flag, then splices): it is spliced out and the list's
//!   reference dropped, and the walk goes on to the cells after it. The count is rebuilt.
//!   A half-inserted cell is never linked (linking is the last, single store): it leaks.
//! * Wheel: every reachable entry is kept and flagged as in the wheel — an entry whose
//!   flag is cleared was being taken by a scan that died, so the wheel takes its
//!   reference back and the cell fires at the next scan.
//! * Cell state: the state blob is swapped as one offset after the new one is written and
//!   old buffers are freed only after that swap, so the next holder finds a consistent
//!   state; the engine re-publishes its mirror and re-schedules it. A state that does not
//!   decode marks the cell dead (unlinked; its memory leaks rather than risking a double
//!   free).

#[cfg(test)]
mod repair_tests;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use sip_shm::{DirSlot, Region, ShmError, ShmGuard, ShmMutex, ShmOff, shm_struct};
use sip_txn::{
    Candidate, DecodedBranch, Match, MatchConfig, Md5Field, Method, ReplyCandidate, ReplyMatch,
    RequestKey, match_cancel_target, match_reply, match_request,
};

/// Timer wheel slots (16 s at 16 ticks/s, 0.256 s at 1000); later deadlines wait in their
/// slot and are checked once per revolution.
pub const WHEEL_SLOTS: usize = 256;
/// Upper bound on a bucket walk (a corrupted, cyclic list must not hang a worker).
const MAX_BUCKET_WALK: u32 = 100_000;

/// tm counters (`tm.stats`), indices into [`TableHead::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Stat {
    Created,
    Freed,
    TotalLocal,
    RplReceived,
    RplGenerated,
    RplSent,
    C2xx,
    C3xx,
    C4xx,
    C5xx,
    C6xx,
    ShmExhausted,
}
const N_STATS: usize = 12;

shm_struct! {
    /// Head of one bucket's list.
    pub struct BucketList {
        pub first: u32,
        pub count: u32,
        pub next_label: u32,
    }
}

shm_struct! {
    /// One hash bucket.
    pub struct Bucket {
        pub lock: ShmMutex<BucketList>,
    }
}

shm_struct! {
    /// The wheel's slot heads.
    pub struct WheelState {
        pub slots: [u32; WHEEL_SLOTS],
        /// Time (ms) the timer last scanned up to: a due time before it goes into the next
        /// slot to scan, not behind the scan position.
        pub scanned: u64,
    }
}

shm_struct! {
    /// The shm timer wheel.
    pub struct Wheel {
        pub lock: ShmMutex<WheelState>,
    }
}

shm_struct! {
    /// Where a cell's state blob lives: a buffer `[u32 len][bytes]` that is never written
    /// in place. An update writes a new buffer and then swaps this one offset, so a holder
    /// that dies mid-update leaves the old state or the new one, never a mix.
    pub struct StateRef {
        pub off: u32,
    }
}

shm_struct! {
    /// A transaction cell record (followed in its block by the key blob).
    pub struct CellRec {
        pub refs: AtomicU32,
        pub next: AtomicU32,
        pub bucket: AtomicU32,
        pub flags: AtomicU32,
        pub method: AtomicU32,
        pub uas_status: AtomicU32,
        pub nr_branches: AtomicU32,
        pub cancel_sent: AtomicU32,
        pub md5: [AtomicU32; 4],
        pub key_len: AtomicU32,
        pub wheel_next: AtomicU32,
        pub wheel_slot: AtomicU32,
        pub wheel_due: AtomicU64,
        pub state: ShmMutex<StateRef>,
    }
}

shm_struct! {
    /// The table header at directory slot `TM_TABLE`.
    pub struct TableHead {
        pub hash_size: AtomicU32,
        /// Timer wheel ticks per second (core `timer_hz`).
        pub timer_hz: AtomicU32,
        pub buckets: AtomicU32,
        pub wheel: AtomicU32,
        pub stats: [AtomicU64; N_STATS],
    }
}

/// `CellRec::flags` bits.
pub const F_LINKED: u32 = 1;
pub const F_IN_WHEEL: u32 = 2;
pub const F_LOCAL_REPLIED: u32 = 4;
/// The cell was found corrupt or abandoned; lookups skip it.
pub const F_DEAD: u32 = 8;

const REC_SIZE: usize = size_of::<CellRec>().next_multiple_of(16);

/// Errors of table operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// Shared memory (exhausted, bad offset, lock failure).
    Shm(ShmError),
    /// No table in the region (tm not initialised).
    Missing,
}

impl From<ShmError> for TableError {
    fn from(e: ShmError) -> Self {
        TableError::Shm(e)
    }
}

impl From<sip_shm::LockError> for TableError {
    fn from(e: sip_shm::LockError) -> Self {
        TableError::Shm(ShmError::Lock(e))
    }
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Shm(e) => write!(f, "{e}"),
            TableError::Missing => f.write_str("tm table not initialised"),
        }
    }
}

impl std::error::Error for TableError {}

impl TableError {
    /// Whether the error is shared-memory exhaustion (answered 500 and counted).
    pub fn is_exhausted(&self) -> bool {
        matches!(self, TableError::Shm(ShmError::Exhausted { .. }))
    }
}

/// Handle to the table (copyable references into the region).
#[derive(Clone, Copy)]
pub struct Table {
    region: &'static Region,
    head: &'static TableHead,
    buckets: &'static [Bucket],
    wheel: &'static Wheel,
    /// `TableHead::timer_hz`, read once.
    hz: u64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("hash_size", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

fn method_code(m: Method) -> u32 {
    match m {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Cancel => 2,
        Method::Other => 3,
    }
}

fn method_of_code(c: u32) -> Method {
    match c {
        0 => Method::Invite,
        1 => Method::Ack,
        2 => Method::Cancel,
        _ => Method::Other,
    }
}

/// Outcome of [`Table::lookup_or_insert`].
pub enum Lookup {
    /// A matching cell exists (retransmission, ACK to its negative final, e2e ACK).
    Found(CellRef, Match),
    /// A new cell was created and linked; its state lock is held by the guard (store the
    /// initial state before dropping it). `born_canceled`: a CANCEL for it already exists.
    Created {
        cell: CellRef,
        guard: ShmGuard<'static, StateRef>,
        born_canceled: bool,
    },
}

/// What a new cell needs.
pub struct NewCell<'k> {
    pub key_blob: &'k [u8],
    pub md5: Md5Field,
    pub method: Method,
}

impl Table {
    /// Creates the table in `region` (before fork) and records it in the directory; its
    /// wheel ticks 16 times a second.
    pub fn create(region: &'static Region, hash_size: u32) -> Result<Table, TableError> {
        Table::create_with(region, hash_size, sip_txn::TICKS_PER_SECOND)
    }

    /// [`Table::create`] with a wheel of `timer_hz` ticks per second (clamped to
    /// [`sip_txn::TIMER_HZ_RANGE`]).
    pub fn create_with(
        region: &'static Region,
        hash_size: u32,
        timer_hz: u32,
    ) -> Result<Table, TableError> {
        let timer_hz = timer_hz.clamp(
            *sip_txn::TIMER_HZ_RANGE.start(),
            *sip_txn::TIMER_HZ_RANGE.end(),
        );
        let hash_size = hash_size.clamp(1, 1 << 20).next_power_of_two();
        let buckets = region.alloc_array::<Bucket>(hash_size as usize)?;
        let wheel = region.alloc_value::<Wheel>()?;
        let head = region.alloc_with::<TableHead>(|h| {
            h.hash_size.store(hash_size, Ordering::Relaxed);
            h.timer_hz.store(timer_hz, Ordering::Relaxed);
            h.buckets.store(buckets.raw(), Ordering::Relaxed);
            h.wheel.store(wheel.raw(), Ordering::Relaxed);
        })?;
        region.set_dir(DirSlot::TM_TABLE, head)?;
        Table::open(region)
    }

    /// Opens the table another process created.
    pub fn open(region: &'static Region) -> Result<Table, TableError> {
        let head_off: ShmOff<TableHead> =
            region.dir(DirSlot::TM_TABLE)?.ok_or(TableError::Missing)?;
        let head = region.get(head_off)?;
        let n = head.hash_size.load(Ordering::Relaxed) as usize;
        let buckets = region.get_slice(
            ShmOff::<Bucket>::from_raw(head.buckets.load(Ordering::Relaxed)),
            n,
        )?;
        let wheel = region.get(ShmOff::<Wheel>::from_raw(
            head.wheel.load(Ordering::Relaxed),
        ))?;
        let hz = head.timer_hz.load(Ordering::Relaxed).clamp(
            *sip_txn::TIMER_HZ_RANGE.start(),
            *sip_txn::TIMER_HZ_RANGE.end(),
        );
        Ok(Table {
            region,
            head,
            buckets,
            wheel,
            hz: u64::from(hz),
        })
    }

    /// Timer wheel ticks per second.
    pub fn timer_hz(&self) -> u32 {
        self.hz as u32
    }

    /// The region the table lives in.
    pub fn region(&self) -> &'static Region {
        self.region
    }

    /// Number of buckets.
    pub fn hash_size(&self) -> u32 {
        self.buckets.len() as u32
    }

    /// Adds to a counter.
    pub fn count(&self, s: Stat, n: u64) {
        self.head.stats[s as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn stat(&self, s: Stat) -> u64 {
        self.head.stats[s as usize].load(Ordering::Relaxed)
    }

    fn rec(&self, off: u32) -> Result<&'static CellRec, ShmError> {
        self.region.get(ShmOff::<CellRec>::from_raw(off))
    }

    fn bucket(&self, idx: u32) -> Result<&'static Bucket, TableError> {
        self.buckets
            .get(idx as usize)
            .ok_or(TableError::Shm(ShmError::BadIndex {
                what: "tm bucket",
                index: idx as usize,
                capacity: self.buckets.len(),
            }))
    }

    /// Locks a bucket, repairing its list if the previous holder died.
    fn lock_bucket(&self, idx: u32) -> Result<ShmGuard<'static, BucketList>, TableError> {
        let mut g = self.bucket(idx)?.lock.lock()?;
        if g.previous_owner_died() {
            self.repair_bucket(idx, &mut g);
        }
        Ok(g)
    }

    /// Rebuilds a bucket list after its lock holder died (see the module doc).
    fn repair_bucket(&self, idx: u32, list: &mut BucketList) {
        let mut prev: Option<&CellRec> = None;
        let mut cur = list.first;
        let mut kept = 0;
        let mut walked = 0;
        let mut half_unlinked = Vec::new();
        while cur != 0 && walked < MAX_BUCKET_WALK {
            walked += 1;
            let Some(rec) = self
                .rec(cur)
                .ok()
                .filter(|r| r.bucket.load(Ordering::Relaxed) == idx)
            else {
                break;
            };
            let next = rec.next.load(Ordering::Acquire);
            if rec.flags.load(Ordering::Acquire) & F_LINKED == 0 {
                // Finish the dead holder's unlink: splice it out, drop the list's reference.
                match prev {
                    Some(p) => p.next.store(next, Ordering::Release),
                    None => list.first = next,
                }
                half_unlinked.push(cur);
            } else {
                kept += 1;
                prev = Some(rec);
            }
            cur = next;
        }
        if cur != 0 {
            // An entry that is not a cell of this bucket (or a cycle): cut the list there.
            match prev {
                Some(p) => p.next.store(0, Ordering::Release),
                None => list.first = 0,
            }
        }
        list.count = kept;
        for off in half_unlinked {
            self.unref(off);
        }
    }

    /// The key blob of a cell (immutable after creation).
    fn key_blob(&self, off: u32, rec: &CellRec, out: &mut Vec<u8>) -> Result<(), ShmError> {
        let len = rec.key_len.load(Ordering::Acquire) as usize;
        out.clear();
        out.resize(len, 0);
        self.region
            .bytes(ShmOff::from_raw(off + REC_SIZE as u32), len)?
            .read_into(out);
        Ok(())
    }

    fn candidate_walk(
        &self,
        list: &BucketList,
        mut f: impl FnMut(u32, &'static CellRec, &[u8]) -> bool,
    ) -> Result<(), TableError> {
        let mut cur = list.first;
        let mut blob = Vec::new();
        let mut n = 0;
        while cur != 0 && n < MAX_BUCKET_WALK {
            let rec = self.rec(cur)?;
            if rec.flags.load(Ordering::Acquire) & F_DEAD == 0 {
                self.key_blob(cur, rec, &mut blob)?;
                if f(cur, rec, &blob) {
                    return Ok(());
                }
            }
            cur = rec.next.load(Ordering::Acquire);
            n += 1;
        }
        Ok(())
    }

    fn take_ref(&self, off: u32, rec: &CellRec) -> CellRef {
        rec.refs.fetch_add(1, Ordering::AcqRel);
        CellRef { table: *self, off }
    }

    /// The cell's 32-char branch field, from the record's atomics.
    fn md5_of(rec: &CellRec) -> Md5Field {
        let mut md5 = [0u8; 16];
        for (chunk, a) in md5.chunks_exact_mut(4).zip(&rec.md5) {
            chunk.copy_from_slice(&a.load(Ordering::Relaxed).to_le_bytes());
        }
        Md5Field(md5)
    }

    /// Matches `req` against one cell. The To-tag of the cell's local replies is derived
    /// from its branch field rather than stored, and only an ACK needs it.
    fn match_one(
        req: &RequestKey<'_>,
        rec: &CellRec,
        key: &crate::tm::key::StoredKey<'_>,
        mcfg: &MatchConfig,
    ) -> Match {
        let tag;
        let mut cand = Self::candidate(rec, key);
        if cand.local_to_tag.is_empty() && Method::classify(req.method) == Method::Ack {
            tag = crate::tm::engine::local_to_tag(Self::md5_of(rec));
            cand.local_to_tag = tag.as_bytes();
        }
        match_request(req, &cand, mcfg)
    }

    fn candidate<'k>(rec: &CellRec, key: &crate::tm::key::StoredKey<'k>) -> Candidate<'k> {
        Candidate {
            key: key.key,
            has_uas_request: true,
            uas_status: rec.uas_status.load(Ordering::Acquire) as u16,
            locally_replied: rec.flags.load(Ordering::Acquire) & F_LOCAL_REPLIED != 0,
            local_to_tag: key.local_to_tag,
        }
    }

    /// Request lookup (`t_lookup_request`) without creating anything.
    pub fn lookup_request(
        &self,
        bucket: u32,
        req: &RequestKey<'_>,
        mcfg: &MatchConfig,
    ) -> Result<Option<(CellRef, Match)>, TableError> {
        let list = self.lock_bucket(bucket)?;
        let mut found = None;
        self.candidate_walk(&list, |off, rec, blob| {
            let Some(stored) = crate::tm::key::StoredKey::parse(blob) else {
                return false;
            };
            match Self::match_one(req, rec, &stored, mcfg) {
                Match::NoMatch | Match::CancelExists => false,
                m => {
                    found = Some((self.take_ref(off, rec), m));
                    true
                }
            }
        })?;
        Ok(found)
    }

    /// Lookup-then-insert, atomic under the bucket lock (`t_newtran`): two workers can never
    /// create two transactions for one request.
    pub fn lookup_or_insert(
        &self,
        bucket: u32,
        req: &RequestKey<'_>,
        mcfg: &MatchConfig,
        new: &NewCell<'_>,
    ) -> Result<Lookup, TableError> {
        let mut list = self.lock_bucket(bucket)?;
        let mut found = None;
        let mut cancel_exists = false;
        self.candidate_walk(&list, |off, rec, blob| {
            let Some(stored) = crate::tm::key::StoredKey::parse(blob) else {
                return false;
            };
            match Self::match_one(req, rec, &stored, mcfg) {
                Match::NoMatch => false,
                Match::CancelExists => {
                    cancel_exists = true;
                    false
                }
                m => {
                    found = Some((self.take_ref(off, rec), m));
                    true
                }
            }
        })?;
        if let Some((cell, m)) = found {
            return Ok(Lookup::Found(cell, m));
        }
        let size = REC_SIZE + new.key_blob.len();
        let block = self.region.alloc(size)?;
        self.region.bytes(block, REC_SIZE)?.fill(0);
        self.region
            .bytes(
                ShmOff::from_raw(block.raw() + REC_SIZE as u32),
                new.key_blob.len(),
            )?
            .write_from(new.key_blob);
        let off = block.raw();
        let rec = self.rec(off)?;
        // Two references: the bucket list's and the caller's.
        rec.refs.store(2, Ordering::Relaxed);
        rec.bucket.store(bucket, Ordering::Relaxed);
        rec.method.store(method_code(new.method), Ordering::Relaxed);
        for (a, chunk) in rec.md5.iter().zip(new.md5.0.chunks_exact(4)) {
            let mut w = [0u8; 4];
            w.copy_from_slice(chunk);
            a.store(u32::from_le_bytes(w), Ordering::Relaxed);
        }
        rec.key_len
            .store(new.key_blob.len() as u32, Ordering::Relaxed);
        rec.flags.store(F_LINKED, Ordering::Relaxed);
        // Unpublished, so nobody else can hold it; locked before linking so no other
        // process sees the cell without its initial state.
        let guard = rec.state.try_lock()?.ok_or(TableError::Shm(ShmError::Lock(
            sip_shm::LockError::WouldDeadlock,
        )))?;
        rec.next.store(list.first, Ordering::Release);
        // Linking is this one store: a crash before it only leaks the block.
        list.first = off;
        list.count += 1;
        list.next_label = list.next_label.wrapping_add(1);
        self.count(Stat::Created, 1);
        Ok(Lookup::Created {
            cell: CellRef { table: *self, off },
            guard,
            born_canceled: cancel_exists,
        })
    }

    /// The INVITE a CANCEL refers to (`t_lookupOriginalT`).
    pub fn lookup_cancel_target(
        &self,
        bucket: u32,
        cancel: &RequestKey<'_>,
        mcfg: &MatchConfig,
    ) -> Result<Option<CellRef>, TableError> {
        let list = self.lock_bucket(bucket)?;
        let mut found = None;
        self.candidate_walk(&list, |off, rec, blob| {
            let Some(stored) = crate::tm::key::StoredKey::parse(blob) else {
                return false;
            };
            if match_cancel_target(cancel, &Self::candidate(rec, &stored), mcfg) {
                found = Some(self.take_ref(off, rec));
                true
            } else {
                false
            }
        })?;
        Ok(found)
    }

    /// Reply lookup by our own branch (`t_reply_matching`). `method` is the CSeq method
    /// token (compared by name for methods other than INVITE/ACK/CANCEL).
    pub fn lookup_reply(
        &self,
        branch: &DecodedBranch,
        method: &[u8],
    ) -> Result<Option<(CellRef, ReplyMatch)>, TableError> {
        let list = self.lock_bucket(branch.bucket)?;
        let class = Method::classify(method);
        let mut found = None;
        self.candidate_walk(&list, |off, rec, blob| {
            let cand = ReplyCandidate {
                md5: Self::md5_of(rec),
                method: method_of_code(rec.method.load(Ordering::Relaxed)),
                nr_branches: rec.nr_branches.load(Ordering::Acquire) as u8,
                cancel_sent: rec.cancel_sent.load(Ordering::Acquire),
            };
            let m = match_reply(branch, class, &cand);
            let name_ok = class != Method::Other
                || crate::tm::key::StoredKey::parse(blob).is_some_and(|k| k.key.method == method);
            if m != ReplyMatch::NoMatch && name_ok {
                found = Some((self.take_ref(off, rec), m));
                true
            } else {
                false
            }
        })?;
        Ok(found)
    }

    /// Unlinks a cell from its bucket (wait timer expiry, abandoned cell); drops the list's
    /// reference. Idempotent.
    pub fn unlink(&self, cell: &CellRef) -> Result<(), TableError> {
        let rec = cell.rec()?;
        let idx = rec.bucket.load(Ordering::Relaxed);
        let mut list = self.lock_bucket(idx)?;
        if rec.flags.fetch_and(!F_LINKED, Ordering::AcqRel) & F_LINKED == 0 {
            return Ok(());
        }
        let next = rec.next.load(Ordering::Acquire);
        if list.first == cell.off {
            list.first = next;
        } else {
            let mut cur = list.first;
            let mut n = 0;
            while cur != 0 && n < MAX_BUCKET_WALK {
                let r = self.rec(cur)?;
                let nx = r.next.load(Ordering::Acquire);
                if nx == cell.off {
                    r.next.store(next, Ordering::Release);
                    break;
                }
                cur = nx;
                n += 1;
            }
        }
        list.count = list.count.saturating_sub(1);
        drop(list);
        self.unref(cell.off);
        Ok(())
    }

    /// Number of cells linked in the table (walks every bucket; for tests and RPC).
    pub fn linked_cells(&self) -> u64 {
        (0..self.hash_size())
            .filter_map(|i| self.lock_bucket(i).ok().map(|g| u64::from(g.count)))
            .sum()
    }

    fn unref(&self, off: u32) {
        let Ok(rec) = self.rec(off) else { return };
        if rec.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.free_cell(off, rec);
        }
    }

    /// Frees the state blob, every buffer it lists, and the record block.
    fn free_cell(&self, off: u32, rec: &CellRec) {
        if let Ok(g) = rec.state.lock() {
            if g.off != 0 {
                if let Ok(blob) = self.read_buf(g.off) {
                    for b in owned_buffers(&blob) {
                        let _ = self.region.free(ShmOff::<u8>::from_raw(b));
                    }
                }
                let _ = self.region.free(ShmOff::<u8>::from_raw(g.off));
            }
        }
        let _ = self.region.free(ShmOff::<u8>::from_raw(off));
        self.count(Stat::Freed, 1);
    }

    fn read_raw(&self, off: u32, len: usize) -> Result<Vec<u8>, ShmError> {
        Ok(self.region.bytes(ShmOff::from_raw(off), len)?.to_vec())
    }

    /// Stores a buffer `[u32 len][bytes]`; its offset is the `BufRef`.
    pub fn alloc_buf(&self, data: &[u8]) -> Result<u32, TableError> {
        let off = self.region.alloc(data.len() + 4)?;
        let b = self.region.bytes(off, data.len() + 4)?;
        b.write_from(&(data.len() as u32).to_le_bytes());
        if let Some(rest) = b.slice(4, data.len()) {
            rest.write_from(data);
        }
        Ok(off.raw())
    }

    /// Reads a buffer stored by [`Table::alloc_buf`].
    pub fn read_buf(&self, off: u32) -> Result<Vec<u8>, TableError> {
        let mut len = [0u8; 4];
        self.region
            .bytes(ShmOff::from_raw(off), 4)?
            .read_into(&mut len);
        let len = u32::from_le_bytes(len) as usize;
        let cap = self.region.block_capacity(ShmOff::<u8>::from_raw(off))?;
        if len + 4 > cap {
            return Err(TableError::Shm(ShmError::OutOfBounds { off, len }));
        }
        Ok(self.read_raw(off + 4, len)?)
    }

    /// Frees a buffer the cell no longer lists.
    pub fn free_buf(&self, off: u32) {
        let _ = self.region.free(ShmOff::<u8>::from_raw(off));
    }

    /// Links a cell into the wheel for `due` (ms); keeps an earlier entry as it is (the
    /// timer re-schedules after stepping the cell).
    pub fn schedule(&self, cell: &CellRef, due: u64) -> Result<(), TableError> {
        let rec = cell.rec()?;
        let mut w = self.wheel.lock.lock()?;
        if w.previous_owner_died() {
            self.repair_wheel(&mut w);
        }
        let flags = rec.flags.load(Ordering::Acquire);
        if flags & F_IN_WHEEL != 0 {
            if rec.wheel_due.load(Ordering::Relaxed) <= due {
                return Ok(());
            }
            self.wheel_remove(&mut w, cell.off, rec);
        } else {
            rec.refs.fetch_add(1, Ordering::AcqRel);
        }
        // A deadline already behind the scan goes into the slot the next scan starts with.
        let slot = slot_of(due.max(w.scanned), self.hz);
        rec.wheel_due.store(due, Ordering::Relaxed);
        rec.wheel_slot.store(slot as u32, Ordering::Relaxed);
        rec.wheel_next.store(w.slots[slot], Ordering::Relaxed);
        w.slots[slot] = cell.off;
        rec.flags.fetch_or(F_IN_WHEEL, Ordering::AcqRel);
        Ok(())
    }

    fn wheel_remove(&self, w: &mut WheelState, off: u32, rec: &CellRec) {
        let slot = rec.wheel_slot.load(Ordering::Relaxed) as usize % WHEEL_SLOTS;
        let next = rec.wheel_next.load(Ordering::Relaxed);
        if w.slots[slot] == off {
            w.slots[slot] = next;
            return;
        }
        let mut cur = w.slots[slot];
        let mut n = 0;
        while cur != 0 && n < MAX_BUCKET_WALK {
            let Ok(r) = self.rec(cur) else { return };
            let nx = r.wheel_next.load(Ordering::Relaxed);
            if nx == off {
                r.wheel_next.store(next, Ordering::Relaxed);
                return;
            }
            cur = nx;
            n += 1;
        }
    }

    /// Rebuilds the wheel after its lock holder died (see the module doc).
    fn repair_wheel(&self, w: &mut WheelState) {
        for slot in 0..WHEEL_SLOTS {
            let mut prev: Option<&CellRec> = None;
            let mut cur = w.slots[slot];
            let mut n = 0;
            while cur != 0 && n < MAX_BUCKET_WALK {
                let Ok(r) = self.rec(cur) else { break };
                // Cleared by a scan that died before handing the cell on: the wheel owns
                // its reference again (a `schedule` that died after linking had already
                // taken one).
                r.flags.fetch_or(F_IN_WHEEL, Ordering::AcqRel);
                r.wheel_slot.store(slot as u32, Ordering::Relaxed);
                prev = Some(r);
                cur = r.wheel_next.load(Ordering::Relaxed);
                n += 1;
            }
            if cur != 0 {
                match prev {
                    Some(p) => p.wheel_next.store(0, Ordering::Relaxed),
                    None => w.slots[slot] = 0,
                }
            }
        }
    }

    /// Takes every cell due at `now` (ms) off the wheel; the returned refs are the wheel's.
    /// Scans the slots from the tick of the previous scan (inclusive: a deadline later in
    /// that tick was not due then) up to the tick of `now`, at most one revolution.
    pub fn take_due(&self, now: u64) -> Result<Vec<CellRef>, TableError> {
        let mut w = self.wheel.lock.lock()?;
        if w.previous_owner_died() {
            self.repair_wheel(&mut w);
        }
        let mut out = Vec::new();
        let (first, last) = (tick_of(w.scanned.min(now), self.hz), tick_of(now, self.hz));
        let ticks = last.saturating_sub(first).min(WHEEL_SLOTS as u64 - 1);
        for t in last - ticks..=last {
            let slot = (t % WHEEL_SLOTS as u64) as usize;
            let mut cur = w.slots[slot];
            let mut keep: Vec<u32> = Vec::new();
            let mut n = 0;
            while cur != 0 && n < MAX_BUCKET_WALK {
                let rec = self.rec(cur)?;
                let next = rec.wheel_next.load(Ordering::Relaxed);
                if rec.wheel_due.load(Ordering::Relaxed) <= now {
                    rec.flags.fetch_and(!F_IN_WHEEL, Ordering::AcqRel);
                    out.push(CellRef {
                        table: *self,
                        off: cur,
                    });
                } else {
                    keep.push(cur);
                }
                cur = next;
                n += 1;
            }
            let mut head = 0;
            for off in keep.into_iter().rev() {
                self.rec(off)?.wheel_next.store(head, Ordering::Relaxed);
                head = off;
            }
            w.slots[slot] = head;
        }
        w.scanned = w.scanned.max(now);
        Ok(out)
    }
}

/// Tick number of a time in ms at `hz` ticks per second (no overflow for any `ms`).
pub fn tick_of(ms: u64, hz: u64) -> u64 {
    ms / 1000 * hz + ms % 1000 * hz / 1000
}

fn slot_of(due: u64, hz: u64) -> usize {
    (tick_of(due, hz) % WHEEL_SLOTS as u64) as usize
}

/// The buffer offsets a state blob lists (`[n][off × n]` prefix).
pub fn owned_buffers(blob: &[u8]) -> Vec<u32> {
    let mut r = sip_txn::wire::Reader::new(blob);
    let n = r.u32().unwrap_or(0).min(1024);
    (0..n).map_while(|_| r.u32().ok()).collect()
}

/// A counted reference to a cell; dropping it releases the reference (the last one frees
/// the cell).
#[derive(Debug)]
pub struct CellRef {
    table: Table,
    off: u32,
}

impl PartialEq for CellRef {
    fn eq(&self, other: &Self) -> bool {
        self.off == other.off
    }
}

impl CellRef {
    /// The record's offset (identity of the cell).
    pub fn offset(&self) -> u32 {
        self.off
    }

    fn rec(&self) -> Result<&'static CellRec, ShmError> {
        self.table.rec(self.off)
    }

    /// Another reference to the same cell.
    pub fn clone_ref(&self) -> Result<CellRef, TableError> {
        let rec = self.rec()?;
        Ok(self.table.take_ref(self.off, rec))
    }

    /// Takes the cell's reply lock. `Ok((guard, died))`: `died` when the previous holder
    /// died (the engine then validates the blob).
    pub fn lock(&self) -> Result<(ShmGuard<'static, StateRef>, bool), TableError> {
        let g = self.rec()?.state.lock()?;
        let died = g.previous_owner_died();
        Ok((g, died))
    }

    /// Reads the state blob (empty when none was stored).
    pub fn load(&self, g: &StateRef) -> Result<Vec<u8>, TableError> {
        if g.off == 0 {
            return Ok(Vec::new());
        }
        self.table.read_buf(g.off)
    }

    /// Replaces the state blob and mirrors what matching reads. Crash-safe: the new blob is
    /// written to a fresh block and published by one offset store; the old block is freed
    /// after it (a holder dying in between leaks it, never leaves a torn state).
    pub fn store(&self, g: &mut StateRef, blob: &[u8], m: &Mirror) -> Result<(), TableError> {
        let new = self.table.alloc_buf(blob)?;
        std::sync::atomic::fence(Ordering::Release);
        let old = std::mem::replace(&mut g.off, new);
        if old != 0 {
            self.table.free_buf(old);
        }
        self.publish(m)
    }

    /// Unpublishes the state (the cell then owns nothing) and returns the old blob's offset
    /// for the caller to free.
    pub fn clear_state(&self, g: &mut StateRef) -> u32 {
        std::mem::replace(&mut g.off, 0)
    }

    /// Mirrors what matching reads without the cell lock. The lock holder calls it before
    /// anything leaves (a reply upstream, a request downstream) so the answer to it — an
    /// ACK, a reply, a CANCEL's 200 — finds the cell and waits for the lock instead of
    /// taking a stateless path.
    pub fn publish(&self, m: &Mirror) -> Result<(), TableError> {
        let rec = self.rec()?;
        rec.uas_status
            .store(u32::from(m.uas_status), Ordering::Release);
        rec.nr_branches
            .store(u32::from(m.nr_branches), Ordering::Release);
        rec.cancel_sent.store(m.cancel_sent, Ordering::Release);
        if m.locally_replied {
            rec.flags.fetch_or(F_LOCAL_REPLIED, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Makes `n` branches visible to reply matching now, before the cell lock is released:
    /// the holder calls it before a branch's request leaves, so a reply that beats the
    /// state write finds the cell and waits for the lock instead of going on statelessly.
    pub fn publish_branches(&self, n: u8) -> Result<(), TableError> {
        self.rec()?
            .nr_branches
            .fetch_max(u32::from(n), Ordering::AcqRel);
        Ok(())
    }

    /// Makes our CANCEL on `branch` visible to reply matching before it is sent (the
    /// downstream 200 for it must be absorbed, not forwarded).
    pub fn publish_cancel(&self, branch: u8) -> Result<(), TableError> {
        if let Some(bit) = 1u32.checked_shl(u32::from(branch)) {
            self.rec()?.cancel_sent.fetch_or(bit, Ordering::AcqRel);
        }
        Ok(())
    }

    /// References currently held (the bucket list's, the wheel's or the timer's, and one
    /// per process working on the cell).
    pub fn ref_count(&self) -> u32 {
        self.rec().map_or(0, |r| r.refs.load(Ordering::Acquire))
    }

    /// The last status sent upstream, as mirrored for matching (readable without the lock).
    pub fn uas_status(&self) -> u16 {
        self.rec()
            .map_or(0, |r| r.uas_status.load(Ordering::Acquire) as u16)
    }

    /// Whether the cell is still in its bucket list.
    pub fn is_linked(&self) -> bool {
        self.rec()
            .is_ok_and(|r| r.flags.load(Ordering::Acquire) & F_LINKED != 0)
    }

    /// Marks the cell dead (corrupt state): lookups skip it from now on.
    pub fn mark_dead(&self) {
        if let Ok(rec) = self.rec() {
            rec.flags.fetch_or(F_DEAD, Ordering::AcqRel);
        }
    }

    /// The table this cell belongs to.
    pub fn table(&self) -> Table {
        self.table
    }
}

impl Drop for CellRef {
    fn drop(&mut self) {
        self.table.unref(self.off);
    }
}

/// What matching reads without the cell lock, mirrored after each step.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mirror {
    pub uas_status: u16,
    pub nr_branches: u8,
    pub cancel_sent: u32,
    pub locally_replied: bool,
}
