//! Real multi-process tests: children are forked, share the `MAP_SHARED` region, and are
//! always reaped (see `common::Child`).

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::{BOUND, Child, wait_until};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use sip_shm::{Counters, ProcRole, ProcessTable, Region, ShmMutex, shm_struct};

shm_struct! {
    /// Invariant: `a == b`. A holder updates `a`, then `b`.
    struct Pair {
        a: u64,
        b: u64,
    }
}

shm_struct! {
    struct Shared {
        lock: ShmMutex<Pair>,
        holding: AtomicU32,
        atomic_total: AtomicU64,
        guarded_total: ShmMutex<u64>,
    }
}

/// Child takes the lock, breaks the invariant halfway, says so, and waits to be killed.
fn spawn_holder(shared: &Shared) -> Child {
    Child::spawn(|| {
        let Ok(mut g) = shared.lock.lock() else {
            return 2;
        };
        g.a += 1;
        shared.holding.store(1, Ordering::Release);
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

#[test]
fn sigkilled_holder_does_not_deadlock_and_next_locker_repairs() {
    let region = Region::shared(1 << 20).unwrap();
    let shared = region.get(region.alloc_value::<Shared>().unwrap()).unwrap();
    let mut child = spawn_holder(shared);
    assert!(
        wait_until(|| shared.holding.load(Ordering::Acquire) == 1),
        "child never locked"
    );
    assert!(
        shared.lock.try_lock().unwrap().is_none(),
        "lock should be held by the child"
    );

    let status = child.kill_and_reap();
    assert_eq!(
        status,
        WaitStatus::Signaled(child.pid(), Signal::SIGKILL, false)
    );

    let mut guard = None;
    assert!(
        wait_until(|| {
            guard = shared.lock.try_lock().unwrap();
            guard.is_some()
        }),
        "lock of a dead holder never became available"
    );
    let mut g = guard.unwrap();
    assert!(g.previous_owner_died());
    assert_eq!(
        (g.a, g.b),
        (1, 0),
        "the dead holder's half update is visible"
    );
    g.b = g.a; // repair
    drop(g);

    let g = shared.lock.lock().unwrap();
    assert!(!g.previous_owner_died());
    assert_eq!((g.a, g.b), (1, 1));
    drop(g);
    let g = shared.lock.try_lock().unwrap().expect("free again");
    assert!(!g.previous_owner_died());
}

#[test]
fn blocked_waiter_is_woken_when_the_holder_dies() {
    let region = Region::shared(1 << 20).unwrap();
    let shared = region.get(region.alloc_value::<Shared>().unwrap()).unwrap();
    let mut child = spawn_holder(shared);
    assert!(wait_until(|| shared.holding.load(Ordering::Acquire) == 1));

    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Blocks in pthread_mutex_lock until the kernel hands the lock over.
            let result = shared
                .lock
                .lock()
                .map(|g| (g.previous_owner_died(), g.a, g.b));
            let _ = tx.send(result);
        });
        std::thread::sleep(Duration::from_millis(50));
        child.kill_and_reap();
        let got = rx.recv_timeout(BOUND);
        assert_eq!(
            got,
            Ok(Ok((true, 1, 0))),
            "waiter was not handed the dead holder's lock"
        );
    });
}

#[test]
fn four_processes_add_up_exactly() {
    const PROCS: usize = 4;
    const N: u64 = 100_000;
    let region = Region::shared(4 << 20).unwrap();
    let counters = Counters::create(&region, 8).unwrap();
    let hits = counters.register("test:hits").unwrap();
    let shared = region.get(region.alloc_value::<Shared>().unwrap()).unwrap();

    let mut children: Vec<Child> = (0..PROCS)
        .map(|rank| {
            let counters = &counters;
            Child::spawn(move || {
                for _ in 0..N {
                    if counters.inc(rank + 1, hits).is_err() {
                        return 3;
                    }
                    shared.atomic_total.fetch_add(1, Ordering::Relaxed);
                    match shared.guarded_total.lock() {
                        Ok(mut g) => *g += 1,
                        Err(_) => return 4,
                    }
                }
                0
            })
        })
        .collect();
    for child in &mut children {
        child.wait_ok();
    }
    assert_eq!(counters.get(hits), PROCS as u64 * N);
    for rank in 1..=PROCS {
        assert_eq!(counters.get_row(rank, hits).unwrap(), N, "row {rank}");
    }
    assert_eq!(counters.get_row(0, hits).unwrap(), 0);
    assert_eq!(
        shared.atomic_total.load(Ordering::Relaxed),
        PROCS as u64 * N
    );
    assert_eq!(*shared.guarded_total.lock().unwrap(), PROCS as u64 * N);
    assert_eq!(
        counters.snapshot().unwrap(),
        vec![("test:hits".to_string(), PROCS as u64 * N)]
    );
}

#[test]
fn process_table_entry_written_by_child_is_read_by_parent() {
    let region = Region::shared(1 << 20).unwrap();
    let table = ProcessTable::create(&region, 16).unwrap();
    table
        .set(
            0,
            0,
            std::process::id() as i32,
            ProcRole::Main,
            "main process - attendant",
            1_700_000_000,
        )
        .unwrap();
    let mut child = Child::spawn(|| {
        let table = match ProcessTable::open(&region) {
            Ok(t) => t,
            Err(_) => return 2,
        };
        let pid = std::process::id() as i32;
        let ok = table
            .set(
                1,
                1,
                pid,
                ProcRole::Worker,
                "udp receiver child=0 sock=127.0.0.1:5060",
                1_700_000_001,
            )
            .and_then(|()| table.add_messages(1, 7));
        if ok.is_ok() { 0 } else { 3 }
    });
    child.wait_ok();
    let e = table.get(1).unwrap().expect("child's entry");
    assert_eq!(e.pid, child.pid().as_raw());
    assert_eq!(e.rank, 1);
    assert_eq!(e.role, ProcRole::Worker);
    assert_eq!(e.description, "udp receiver child=0 sock=127.0.0.1:5060");
    assert_eq!(e.start_time, 1_700_000_001);
    assert_eq!(e.messages, 7);
    let all = table.entries().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].role, ProcRole::Main);
}

#[test]
fn block_allocated_by_child_is_read_and_freed_by_parent() {
    let region = Region::shared(1 << 20).unwrap();
    let published = region
        .get(region.alloc_value::<AtomicU32>().unwrap())
        .unwrap();
    let msg = b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n";
    let mut child = Child::spawn(|| match region.alloc_bytes(msg) {
        Ok(off) => {
            published.store(off.raw(), Ordering::Release);
            0
        }
        Err(_) => 2,
    });
    child.wait_ok();
    let off = sip_shm::ShmOff::<u8>::from_raw(published.load(Ordering::Acquire));
    assert!(region.bytes(off, msg.len()).unwrap().eq_slice(msg));
    let used = region.stats().used;
    assert!(used >= msg.len() as u64);
    region.free(off).unwrap();
    assert!(region.stats().used < used);
    assert!(region.free(off).is_err());
}
