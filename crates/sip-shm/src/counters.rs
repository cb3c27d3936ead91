//! Statistics counters: a fixed set of named slots × one row per process.
//!
//! Each process adds only to its own row (indexed by its process-table index), and each
//! row is its own 64-byte-aligned block, so workers never write the same cache line.
//! Readers (the ctl process for `stats.get_statistics`) sum the column. Names are
//! registered at init, before fork, so every process agrees on the ids.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ShmError;
use crate::mutex::ShmMutex;
use crate::off::ShmOff;
use crate::region::{DirSlot, Region};
use crate::shm_struct;

/// Number of counter slots in a table.
pub const MAX_COUNTERS: usize = 64;
/// Longest counter name in bytes (e.g. `"tm:rpl_received"`); longer names are rejected.
pub const COUNTER_NAME_LEN: usize = 48;

/// Index of a registered counter. Only [`Counters::register`] and [`Counters::id`] make
/// one, so it is always in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterId(u16);

impl CounterId {
    /// The slot index.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

shm_struct! {
    struct CounterNames {
        count: u32,
        lens: [u8; MAX_COUNTERS],
        names: [[u8; COUNTER_NAME_LEN]; MAX_COUNTERS],
    }
}

shm_struct! {
    #[repr(align(64))]
    struct CounterRow {
        values: [AtomicU64; MAX_COUNTERS],
    }
}

shm_struct! {
    struct CounterTable {
        names: ShmMutex<CounterNames>,
        rows: ShmOff<CounterRow>,
        max_procs: u32,
    }
}

/// Handle to the counter table in a region.
pub struct Counters<'r> {
    table: &'r CounterTable,
    rows: &'r [CounterRow],
}

impl<'r> Counters<'r> {
    /// Allocates a table with one row per process (`max_procs`, normally the process
    /// table capacity) and records it in [`DirSlot::COUNTERS`].
    pub fn create(region: &'r Region, max_procs: usize) -> Result<Counters<'r>, ShmError> {
        let max_procs_u32 = u32::try_from(max_procs).map_err(|_| ShmError::BadIndex {
            what: "counter rows",
            index: max_procs,
            capacity: u32::MAX as usize,
        })?;
        let rows = region.alloc_array::<CounterRow>(max_procs.max(1))?;
        let table = region.alloc_with::<CounterTable>(|t| {
            t.rows = rows;
            t.max_procs = max_procs_u32.max(1);
        })?;
        region.set_dir(DirSlot::COUNTERS, table)?;
        Counters::open(region)
    }

    /// Opens the table recorded in [`DirSlot::COUNTERS`].
    pub fn open(region: &'r Region) -> Result<Counters<'r>, ShmError> {
        let off = region
            .dir::<CounterTable>(DirSlot::COUNTERS)?
            .ok_or(ShmError::Missing {
                what: "counter table",
            })?;
        let table = region.get(off)?;
        let rows = region.get_slice(table.rows, table.max_procs as usize)?;
        Ok(Counters { table, rows })
    }

    /// Number of process rows.
    pub fn max_procs(&self) -> usize {
        self.rows.len()
    }

    /// Registers `name` (or returns its id if already registered). Do this before fork so
    /// every process holds the same ids.
    pub fn register(&self, name: &str) -> Result<CounterId, ShmError> {
        if name.is_empty() || name.len() > COUNTER_NAME_LEN {
            return Err(ShmError::BadIndex {
                what: "counter name length",
                index: name.len(),
                capacity: COUNTER_NAME_LEN,
            });
        }
        let mut names = self.table.names.lock()?;
        repair_names(&mut names);
        if let Some(id) = find(&names, name) {
            return Ok(id);
        }
        let slot = names.count as usize;
        if slot >= MAX_COUNTERS {
            return Err(ShmError::TableFull {
                what: "counter table",
                capacity: MAX_COUNTERS,
            });
        }
        names.names[slot][..name.len()].copy_from_slice(name.as_bytes());
        names.lens[slot] = name.len() as u8;
        // Publishing the count last: a crash before it leaves the slot unused.
        names.count += 1;
        Ok(CounterId(slot as u16))
    }

    /// The id of a registered name.
    pub fn id(&self, name: &str) -> Result<Option<CounterId>, ShmError> {
        let mut names = self.table.names.lock()?;
        repair_names(&mut names);
        Ok(find(&names, name))
    }

    /// Every registered counter with its summed value, in registration order.
    pub fn snapshot(&self) -> Result<Vec<(String, u64)>, ShmError> {
        let mut names = self.table.names.lock()?;
        repair_names(&mut names);
        let list: Vec<(CounterId, String)> = (0..names.count as usize)
            .map(|i| (CounterId(i as u16), name_at(&names, i)))
            .collect();
        drop(names);
        Ok(list.into_iter().map(|(id, n)| (n, self.get(id))).collect())
    }

    fn cell(&self, rank: usize, id: CounterId) -> Result<&AtomicU64, ShmError> {
        let row = self.rows.get(rank).ok_or(ShmError::BadIndex {
            what: "counter row",
            index: rank,
            capacity: self.rows.len(),
        })?;
        // CounterId is always < MAX_COUNTERS (only made by register/id).
        row.values.get(id.index()).ok_or(ShmError::BadIndex {
            what: "counter id",
            index: id.index(),
            capacity: MAX_COUNTERS,
        })
    }

    /// Adds `delta` to this process's (`rank`'s) row.
    pub fn add(&self, rank: usize, id: CounterId, delta: u64) -> Result<(), ShmError> {
        self.cell(rank, id)?.fetch_add(delta, Ordering::Relaxed);
        Ok(())
    }

    /// Adds one to this process's row.
    pub fn inc(&self, rank: usize, id: CounterId) -> Result<(), ShmError> {
        self.add(rank, id, 1)
    }

    /// Subtracts `delta` (wrapping) for gauges such as "current transactions"; read them
    /// with [`Counters::get_signed`].
    pub fn sub(&self, rank: usize, id: CounterId, delta: u64) -> Result<(), ShmError> {
        self.cell(rank, id)?.fetch_sub(delta, Ordering::Relaxed);
        Ok(())
    }

    /// One process's contribution.
    pub fn get_row(&self, rank: usize, id: CounterId) -> Result<u64, ShmError> {
        Ok(self.cell(rank, id)?.load(Ordering::Relaxed))
    }

    /// Sum over all rows.
    pub fn get(&self, id: CounterId) -> u64 {
        self.rows
            .iter()
            .filter_map(|r| r.values.get(id.index()))
            .fold(0u64, |acc, v| acc.wrapping_add(v.load(Ordering::Relaxed)))
    }

    /// Sum over all rows, as a signed gauge.
    pub fn get_signed(&self, id: CounterId) -> i64 {
        self.get(id) as i64
    }

    /// Zeroes a counter in every row (`stats.reset_statistics`). Increments racing the
    /// reset may survive it.
    pub fn reset(&self, id: CounterId) {
        for row in self.rows {
            if let Some(v) = row.values.get(id.index()) {
                v.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// A registrant died mid-write: anything past `count` is ignored anyway; make sure the
/// lengths of counted slots are sane.
fn repair_names(names: &mut CounterNames) {
    names.count = names.count.min(MAX_COUNTERS as u32);
    for len in names.lens.iter_mut() {
        *len = (*len).min(COUNTER_NAME_LEN as u8);
    }
}

fn name_at(names: &CounterNames, i: usize) -> String {
    let len = usize::from(names.lens[i]).min(COUNTER_NAME_LEN);
    String::from_utf8_lossy(&names.names[i][..len]).into_owned()
}

fn find(names: &CounterNames, name: &str) -> Option<CounterId> {
    (0..names.count as usize)
        .find(|&i| {
            let len = usize::from(names.lens[i]).min(COUNTER_NAME_LEN);
            &names.names[i][..len] == name.as_bytes()
        })
        .map(|i| CounterId(i as u16))
}

impl std::fmt::Debug for Counters<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("max_procs", &self.rows.len())
            .finish_non_exhaustive()
    }
}
