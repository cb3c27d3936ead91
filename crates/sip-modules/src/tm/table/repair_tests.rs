//! A lock holder that dies mid-change (issue 5 §2 "robust bucket locks"): in the heap twin
//! a thread takes the lock, changes half of what it meant to and ends without unlocking
//! (robust mutexes hand the lock over with owner-died across threads too); one test kills
//! a forked child holding a bucket lock of a `Region::shared` table.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sip_msg::Message;
use sip_shm::Region;
use sip_txn::{Match, MatchConfig, Md5Field, Method};

use super::{CellRef, F_IN_WHEEL, F_LINKED, Lookup, NewCell, Stat, Table};
use crate::tm::key::OwnedKey;
use crate::tm::tests::invite_700;

/// A table with one bucket, so every call shares its list.
fn one_bucket_table(region: &'static Region) -> Table {
    Table::create(region, 1).unwrap_or_else(|e| panic!("table: {e}"))
}

fn heap() -> &'static Region {
    Box::leak(Box::new(
        Region::heap(1 << 20).unwrap_or_else(|e| panic!("heap region: {e}")),
    ))
}

fn key(n: u32) -> OwnedKey {
    let msg = Message::parse(invite_700(n).into_bytes()).unwrap_or_else(|e| panic!("{e}"));
    OwnedKey::of(&msg).unwrap_or_else(|e| panic!("{e}"))
}

/// Inserts call `n`; returns the caller's reference.
fn insert(t: &Table, n: u32) -> CellRef {
    let k = key(n);
    let rk = k.key();
    let blob = k.blob(b"");
    let new = NewCell {
        key_blob: &blob,
        md5: Md5Field([n as u8; 16]),
        method: Method::Invite,
    };
    match t.lookup_or_insert(0, &rk, &MatchConfig::default(), &new) {
        Ok(Lookup::Created { cell, guard, .. }) => {
            drop(guard);
            cell
        }
        Ok(Lookup::Found(..)) => panic!("call {n} already there"),
        Err(e) => panic!("insert: {e}"),
    }
}

/// Whether call `n` is found in the table.
fn found(t: &Table, n: u32) -> bool {
    let k = key(n);
    matches!(
        t.lookup_request(0, &k.key(), &MatchConfig::default()),
        Ok(Some((_, Match::Retransmission)))
    )
}

/// Three calls in one bucket: the list is 3 → 2 → 1.
fn three_calls(t: &Table) -> [CellRef; 3] {
    [insert(t, 1), insert(t, 2), insert(t, 3)]
}

/// What a worker dying inside `unlink` of `victim` leaves: the linked flag cleared, the
/// list not yet spliced, the bucket lock never released.
fn die_inside_unlink(t: &Table, victim: &CellRef) {
    let list = t.lock_bucket(0).unwrap_or_else(|e| panic!("{e}"));
    victim
        .rec()
        .unwrap_or_else(|e| panic!("{e}"))
        .flags
        .fetch_and(!F_LINKED, Ordering::AcqRel);
    std::mem::forget(list);
}

#[test]
fn bucket_holder_dying_inside_unlink_keeps_later_cells_and_finishes_the_unlink() {
    let t = one_bucket_table(heap());
    let [c1, c2, c3] = three_calls(&t);
    std::thread::scope(|s| {
        s.spawn(|| die_inside_unlink(&t, &c2))
            .join()
            .unwrap_or_else(|_| panic!("holder thread panicked"));
    });
    // The next locker repairs: call 1 (after the half-unlinked call 2) is still found.
    assert!(
        found(&t, 1),
        "a valid cell after the half-unlinked one was cut off"
    );
    assert!(found(&t, 3));
    assert!(!found(&t, 2), "the half-unlinked cell is unlinked");
    assert_eq!(t.linked_cells(), 2);
    assert!(!c2.is_linked());
    assert_eq!(c2.ref_count(), 1, "the list's reference was dropped");
    drop(c2);
    assert_eq!(t.stat(Stat::Freed), 1, "freed with its last reference");
    // The lock is consistent again and the table works as before.
    t.unlink(&c1).unwrap_or_else(|e| panic!("{e}"));
    t.unlink(&c3).unwrap_or_else(|e| panic!("{e}"));
    drop((c1, c3));
    assert_eq!(t.linked_cells(), 0);
    assert_eq!(t.stat(Stat::Freed), 3);
}

#[test]
fn bucket_repair_cuts_the_list_at_an_entry_that_is_not_a_cell_of_the_bucket() {
    let t = one_bucket_table(heap());
    let [c1, c2, c3] = three_calls(&t);
    std::thread::scope(|s| {
        s.spawn(|| {
            let list = t.lock_bucket(0).unwrap_or_else(|e| panic!("{e}"));
            // A torn `next` store: call 2 now points at garbage (another bucket's index).
            let rec = c2.rec().unwrap_or_else(|e| panic!("{e}"));
            rec.bucket.store(7, Ordering::Relaxed);
            std::mem::forget(list);
        })
        .join()
        .unwrap_or_else(|_| panic!("holder thread panicked"));
    });
    assert!(found(&t, 3), "cells before the bad entry stay");
    assert!(!found(&t, 2) && !found(&t, 1));
    assert_eq!(t.linked_cells(), 1);
    drop((c1, c2, c3));
}

#[test]
fn wheel_holder_dying_mid_scan_loses_no_cell() {
    let t = one_bucket_table(heap());
    let cells = three_calls(&t);
    for c in &cells {
        t.schedule(c, 1_000).unwrap_or_else(|e| panic!("{e}"));
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let w = t.wheel.lock.lock().unwrap_or_else(|e| panic!("{e}"));
            // `take_due` had taken the first entry (flag cleared) and died.
            let first = w.slots[super::slot_of(1_000, t.hz)];
            let rec = t.rec(first).unwrap_or_else(|e| panic!("{e}"));
            rec.flags.fetch_and(!F_IN_WHEEL, Ordering::AcqRel);
            std::mem::forget(w);
        })
        .join()
        .unwrap_or_else(|_| panic!("holder thread panicked"));
    });
    let due = t.take_due(1_000).unwrap_or_else(|e| panic!("{e}"));
    let mut offs: Vec<u32> = due.iter().map(CellRef::offset).collect();
    offs.sort_unstable();
    let mut want: Vec<u32> = cells.iter().map(CellRef::offset).collect();
    want.sort_unstable();
    assert_eq!(offs, want, "every scheduled cell fires after the repair");
    for c in &cells {
        assert_eq!(
            c.ref_count(),
            3,
            "list + ours + the due list's (wheel's) reference"
        );
    }
    drop(due);
    for c in &cells {
        t.unlink(c).unwrap_or_else(|e| panic!("{e}"));
    }
    drop(cells);
    assert_eq!(
        t.stat(Stat::Freed),
        3,
        "no reference leaked or dropped twice"
    );
}

#[test]
fn cell_state_of_a_holder_that_died_before_publishing_is_the_old_one() {
    let t = one_bucket_table(heap());
    let cell = insert(&t, 1);
    {
        let (mut g, _) = cell.lock().unwrap_or_else(|e| panic!("{e}"));
        let m = super::Mirror::default();
        cell.store(&mut g, b"old state", &m)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            let (g, _) = cell.lock().unwrap_or_else(|e| panic!("{e}"));
            // The new state was written to a fresh block but never published.
            t.alloc_buf(b"new state, never published")
                .unwrap_or_else(|e| panic!("{e}"));
            std::mem::forget(g);
        })
        .join()
        .unwrap_or_else(|_| panic!("holder thread panicked"));
    });
    let (g, died) = cell.lock().unwrap_or_else(|e| panic!("{e}"));
    assert!(died, "the next locker learns that the holder died");
    assert_eq!(
        cell.load(&g).unwrap_or_else(|e| panic!("{e}")),
        b"old state"
    );
}

#[test]
fn store_never_writes_into_the_published_blob() {
    let t = one_bucket_table(heap());
    let cell = insert(&t, 1);
    let (mut g, _) = cell.lock().unwrap_or_else(|e| panic!("{e}"));
    let m = super::Mirror::default();
    cell.store(&mut g, b"first state blob", &m)
        .unwrap_or_else(|e| panic!("{e}"));
    let first = g.off;
    // Same size: the old code overwrote it in place.
    cell.store(&mut g, b"other state blob", &m)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        g.off, first,
        "a new block is published, not the old one rewritten"
    );
    assert_eq!(
        cell.load(&g).unwrap_or_else(|e| panic!("{e}")),
        b"other state blob"
    );
}

/// Waits (bounded) until `f` holds.
fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn sigkilled_child_holding_a_bucket_lock_is_repaired_by_the_next_locker() {
    use sip_shm::os::{ChildGuard, Forked, exit_now, fork};
    let region: &'static Region = Box::leak(Box::new(
        Region::shared(1 << 20).unwrap_or_else(|e| panic!("shared region: {e}")),
    ));
    let t = one_bucket_table(region);
    let [c1, c2, c3] = three_calls(&t);
    let holding = region
        .get(
            region
                .alloc_value::<AtomicU32>()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = match fork().unwrap_or_else(|e| panic!("fork: {e}")) {
        Forked::Child => {
            // Only shm locks and atomics here, then wait to be killed.
            let Ok(list) = t.lock_bucket(0) else {
                exit_now(2)
            };
            if let Ok(rec) = c2.rec() {
                rec.flags.fetch_and(!F_LINKED, Ordering::AcqRel);
            }
            holding.store(1, Ordering::Release);
            std::mem::forget(list);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Forked::Parent { child } => ChildGuard::new(child),
    };
    assert!(
        wait_until(|| holding.load(Ordering::Acquire) == 1),
        "child never took the lock"
    );
    assert!(
        t.buckets[0]
            .lock
            .try_lock()
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none(),
        "the child holds the bucket lock"
    );
    child
        .kill_and_reap()
        .unwrap_or_else(|e| panic!("reap: {e}"));
    assert!(
        found(&t, 1) && found(&t, 3),
        "cells around the dead unlink stay"
    );
    assert!(!found(&t, 2));
    assert_eq!(t.linked_cells(), 2);
    assert_eq!(c2.ref_count(), 1);
    drop((c1, c2, c3));
}

#[test]
fn engine_repairs_the_mirror_and_the_wheel_entry_of_a_dead_cell_lock_holder() {
    use crate::tm::lab::{GW1, INVITE, Lab, STATEFUL, UAC, reply_to, to};
    let lab = Lab::new(STATEFUL);
    let t = lab.table();
    let mut w = lab.worker();
    w.request(INVITE, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    let msg = Message::parse(INVITE.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
    let k = OwnedKey::of(&msg).unwrap_or_else(|e| panic!("{e}"));
    let rk = k.key();
    let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, t.hash_size());
    let lookup = || {
        t.lookup_request(bucket, &rk, &MatchConfig::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|(c, _)| c)
            .unwrap_or_else(|| panic!("INVITE transaction not found"))
    };
    let cell = lookup();
    std::thread::scope(|s| {
        s.spawn(|| {
            let (g, _) = cell.lock().unwrap_or_else(|e| panic!("{e}"));
            // Mid-step: two more branches announced to matching, the cell taken off the
            // wheel by this (timer) process, then death before anything was stored.
            cell.publish_branches(3).unwrap_or_else(|e| panic!("{e}"));
            std::mem::forget(t.take_due(u64::MAX).unwrap_or_else(|e| panic!("{e}")));
            std::mem::forget(g);
        })
        .join()
        .unwrap_or_else(|_| panic!("holder thread panicked"));
    });
    let rec = cell.rec().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rec.flags.load(Ordering::Acquire) & F_IN_WHEEL, 0);
    let (_, st) = crate::tm::engine::lock_state(&cell).unwrap_or_else(|| panic!("dead cell"));
    assert_eq!(st.cell.branches().len(), 1, "the stored state is whole");
    assert_eq!(rec.nr_branches.load(Ordering::Acquire), 1, "mirror redone");
    assert_ne!(
        rec.flags.load(Ordering::Acquire) & F_IN_WHEEL,
        0,
        "back on the wheel"
    );
    // And the transaction goes on: the 180 is relayed.
    w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
    assert_eq!(to(&w.take(), UAC).len(), 1);
}
