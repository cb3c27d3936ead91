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

#[test]
fn concurrent_alloc_and_free_from_four_processes_keep_blocks_private() {
    const PROCS: u64 = 4;
    let region = Region::shared(2 << 20).unwrap();
    let mut children: Vec<Child> = (0..PROCS)
        .map(|id| {
            let region = &region;
            Child::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (id + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut live: Vec<(sip_shm::ShmOff<u8>, usize, u8)> = Vec::new();
                for step in 0..20_000u32 {
                    let r = next();
                    if live.len() < 64 && r % 3 != 0 {
                        let len = [24usize, 100, 700, 3000, 20_000, 90_000][(r >> 8) as usize % 6];
                        match region.alloc(len) {
                            Ok(off) => {
                                let tag = (id as u8) << 6 | (step % 64) as u8;
                                region.bytes(off, len).map(|b| b.fill(tag)).ok();
                                live.push((off, len, tag));
                            }
                            Err(sip_shm::ShmError::Exhausted { .. }) => {}
                            Err(_) => return 2,
                        }
                    } else if !live.is_empty() {
                        let (off, len, tag) = live.swap_remove((r >> 16) as usize % live.len());
                        let intact = region
                            .bytes(off, len)
                            .map(|b| b.to_vec().iter().all(|&x| x == tag))
                            .unwrap_or(false);
                        if !intact {
                            return 3; // another process wrote into our block
                        }
                        if region.free(off).is_err() {
                            return 4;
                        }
                    }
                }
                for (off, _, _) in live {
                    if region.free(off).is_err() {
                        return 4;
                    }
                }
                0
            })
        })
        .collect();
    for child in &mut children {
        child.wait_ok();
    }
    let stats = region.stats();
    assert_eq!(stats.used, 0, "{stats:?}");
    assert_eq!(stats.free + stats.real_used, stats.total);
    // Everything merges back: one large allocation of most of the arena fits again.
    let big = region
        .alloc(stats.free as usize * 9 / 10)
        .expect("memory came back");
    region.free(big).unwrap();
}
