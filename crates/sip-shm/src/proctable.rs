//! The process table behind `core.psx`: one entry per process (index = process number,
//! 0 = the supervisor), written by the supervisor before fork and/or by the process
//! itself, read by the ctl process.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ShmError;
use crate::mutex::ShmMutex;
use crate::off::ShmOff;
use crate::region::{DirSlot, Region};
use crate::shm_struct;

/// Bytes kept of a description (Kamailio's e.g. `"udp receiver child=1 sock=127.0.0.1:5060"`).
pub const DESCRIPTION_LEN: usize = 64;

/// What a process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ProcRole {
    /// The supervisor ("main process - attendant").
    Main = 1,
    /// A SIP worker ("udp receiver").
    Worker = 2,
    /// The fast timer ("timer").
    Timer = 3,
    /// "slow timer".
    SlowTimer = 4,
    /// "secondary timer".
    SecondaryTimer = 5,
    /// The control process ("ctl handler").
    Ctl = 6,
    /// Anything else a module starts.
    Other = 7,
}

impl ProcRole {
    fn from_raw(raw: u32) -> Option<ProcRole> {
        Some(match raw {
            1 => ProcRole::Main,
            2 => ProcRole::Worker,
            3 => ProcRole::Timer,
            4 => ProcRole::SlowTimer,
            5 => ProcRole::SecondaryTimer,
            6 => ProcRole::Ctl,
            7 => ProcRole::Other,
            _ => return None,
        })
    }
}

/// A copy of one entry, as read by [`ProcessTable::get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    /// Table index (process number).
    pub index: usize,
    /// Kamailio-style rank (0 = main, > 0 SIP workers, negative for special processes).
    pub rank: i32,
    pub pid: i32,
    pub role: ProcRole,
    pub description: String,
    /// Seconds since the epoch, as passed to [`ProcessTable::set`].
    pub start_time: u64,
    /// Messages handled so far.
    pub messages: u64,
}

shm_struct! {
    struct ProcInfo {
        /// Raw ProcRole; 0 = unused entry.
        role: u32,
        rank: i32,
        pid: i32,
        desc_len: u32,
        start_time: u64,
        desc: [u8; DESCRIPTION_LEN],
    }
}

shm_struct! {
    #[repr(align(64))]
    struct ProcSlot {
        info: ShmMutex<ProcInfo>,
        messages: AtomicU64,
    }
}

shm_struct! {
    struct ProcTableHeader {
        slots: ShmOff<ProcSlot>,
        capacity: u32,
    }
}

/// Handle to the process table in a region.
pub struct ProcessTable<'r> {
    slots: &'r [ProcSlot],
}

impl<'r> ProcessTable<'r> {
    /// Allocates a table of `capacity` entries and records it in
    /// [`DirSlot::PROCESS_TABLE`].
    pub fn create(region: &'r Region, capacity: usize) -> Result<ProcessTable<'r>, ShmError> {
        let cap = u32::try_from(capacity.max(1)).map_err(|_| ShmError::BadIndex {
            what: "process table capacity",
            index: capacity,
            capacity: u32::MAX as usize,
        })?;
        let slots = region.alloc_array::<ProcSlot>(cap as usize)?;
        let header = region.alloc_with::<ProcTableHeader>(|h| {
            h.slots = slots;
            h.capacity = cap;
        })?;
        region.set_dir(DirSlot::PROCESS_TABLE, header)?;
        ProcessTable::open(region)
    }

    /// Opens the table recorded in [`DirSlot::PROCESS_TABLE`].
    pub fn open(region: &'r Region) -> Result<ProcessTable<'r>, ShmError> {
        let off = region
            .dir::<ProcTableHeader>(DirSlot::PROCESS_TABLE)?
            .ok_or(ShmError::Missing {
                what: "process table",
            })?;
        let header = region.get(off)?;
        let slots = region.get_slice(header.slots, header.capacity as usize)?;
        Ok(ProcessTable { slots })
    }

    /// Number of entries.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, index: usize) -> Result<&'r ProcSlot, ShmError> {
        self.slots.get(index).ok_or(ShmError::BadIndex {
            what: "process table",
            index,
            capacity: self.slots.len(),
        })
    }

    /// Fills entry `index` and zeroes its message count. A description longer than
    /// [`DESCRIPTION_LEN`] bytes is cut at a character boundary.
    pub fn set(
        &self,
        index: usize,
        rank: i32,
        pid: i32,
        role: ProcRole,
        description: &str,
        start_time: u64,
    ) -> Result<(), ShmError> {
        let slot = self.slot(index)?;
        let mut info = slot.info.lock()?;
        let desc = truncate(description);
        info.role = role as u32;
        info.rank = rank;
        info.pid = pid;
        info.start_time = start_time;
        info.desc[..desc.len()].copy_from_slice(desc.as_bytes());
        info.desc_len = desc.len() as u32;
        slot.messages.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Updates only the pid (a child filling in its own after fork).
    pub fn set_pid(&self, index: usize, pid: i32) -> Result<(), ShmError> {
        let slot = self.slot(index)?;
        slot.info.lock()?.pid = pid;
        Ok(())
    }

    /// Marks entry `index` unused (the process exited).
    pub fn clear(&self, index: usize) -> Result<(), ShmError> {
        let slot = self.slot(index)?;
        slot.info.lock()?.role = 0;
        Ok(())
    }

    /// Adds to the entry's handled-message count (lock-free; the owner calls this per
    /// message).
    pub fn add_messages(&self, index: usize, n: u64) -> Result<(), ShmError> {
        self.slot(index)?.messages.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// A copy of entry `index`, or `None` if it is unused.
    pub fn get(&self, index: usize) -> Result<Option<ProcEntry>, ShmError> {
        let slot = self.slot(index)?;
        let mut info = slot.info.lock()?;
        if info.previous_owner_died() && !valid(&info) {
            // The writer died mid-`set`: the entry cannot be trusted, drop it.
            info.role = 0;
        }
        let Some(role) = ProcRole::from_raw(info.role) else {
            return Ok(None);
        };
        let len = (info.desc_len as usize).min(DESCRIPTION_LEN);
        Ok(Some(ProcEntry {
            index,
            rank: info.rank,
            pid: info.pid,
            role,
            description: String::from_utf8_lossy(&info.desc[..len]).into_owned(),
            start_time: info.start_time,
            messages: slot.messages.load(Ordering::Relaxed),
        }))
    }

    /// Every used entry in index order (for `core.psx`).
    pub fn entries(&self) -> Result<Vec<ProcEntry>, ShmError> {
        let mut out = Vec::new();
        for index in 0..self.slots.len() {
            if let Some(e) = self.get(index)? {
                out.push(e);
            }
        }
        Ok(out)
    }
}

fn valid(info: &ProcInfo) -> bool {
    ProcRole::from_raw(info.role).is_some()
        && (info.desc_len as usize) <= DESCRIPTION_LEN
        && std::str::from_utf8(&info.desc[..info.desc_len as usize]).is_ok()
}

fn truncate(s: &str) -> &str {
    if s.len() <= DESCRIPTION_LEN {
        return s;
    }
    let mut end = DESCRIPTION_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl std::fmt::Debug for ProcessTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTable")
            .field("capacity", &self.slots.len())
            .finish()
    }
}
