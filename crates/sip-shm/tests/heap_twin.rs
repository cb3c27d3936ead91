//! The heap-backed twin: the same locks and tables shared by threads in one process,
//! the way pure crates' unit tests play several workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use sip_shm::{Counters, LockError, ProcRole, ProcessTable, Region, ShmMutex, shm_struct};

shm_struct! {
    struct Pair {
        a: u64,
        b: u64,
    }
}

#[test]
fn mutex_serialises_threads() {
    let region = Region::heap(1 << 20).unwrap();
    let m = region
        .get(region.alloc_value::<ShmMutex<u64>>().unwrap())
        .unwrap();
    let plain = region
        .get(region.alloc_value::<AtomicU64>().unwrap())
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50_000 {
                    let mut g = m.lock().unwrap();
                    // A non-atomic read-modify-write spread over two steps: only mutual
                    // exclusion keeps these equal.
                    let seen = *g;
                    plain.store(seen + 1, Ordering::Relaxed);
                    *g = seen + 1;
                }
            });
        }
    });
    assert_eq!(*m.lock().unwrap(), 200_000);
    assert_eq!(plain.load(Ordering::Relaxed), 200_000);
}

#[test]
fn try_lock_reports_busy_and_relock_is_an_error() {
    let region = Region::heap(1 << 20).unwrap();
    let m = region
        .get(region.alloc_value::<ShmMutex>().unwrap())
        .unwrap();
    let g = m.lock().unwrap();
    assert!(matches!(m.lock(), Err(LockError::WouldDeadlock)));
    std::thread::scope(|s| {
        let busy = s
            .spawn(|| m.try_lock().map(|g| g.is_none()))
            .join()
            .unwrap();
        assert_eq!(busy, Ok(true));
    });
    drop(g);
    std::thread::scope(|s| {
        let free = s
            .spawn(|| m.try_lock().map(|g| g.is_some()))
            .join()
            .unwrap();
        assert_eq!(free, Ok(true));
    });
}

#[test]
fn thread_exiting_while_holding_hands_over_with_owner_died() {
    let region = Region::heap(1 << 20).unwrap();
    let m = region
        .get(region.alloc_value::<ShmMutex<Pair>>().unwrap())
        .unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut g = m.lock().unwrap();
            g.a = 5;
            // The thread ends without unlocking, like a worker killed mid-update.
            std::mem::forget(g);
        })
        .join()
        .unwrap();
    });
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = m.lock().map(|mut g| {
                let died = g.previous_owner_died();
                let seen = (g.a, g.b);
                g.b = g.a; // repair
                (died, seen)
            });
            let _ = tx.send(r);
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(20)),
            Ok(Ok((true, (5, 0))))
        );
    });
    let g = m.lock().unwrap();
    assert!(!g.previous_owner_died());
    assert_eq!((g.a, g.b), (5, 5));
}

#[test]
fn fresh_mutexes_initialise_once_under_contention() {
    let region = Region::heap(1 << 20).unwrap();
    let ms = region.alloc_array::<ShmMutex<u64>>(64).unwrap();
    let ms = region.get_slice(ms, 64).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for m in ms {
                    *m.lock().unwrap() += 1;
                }
            });
        }
    });
    assert!(ms.iter().all(|m| *m.lock().unwrap() == 4));
}

#[test]
fn two_workers_share_counters_and_process_table() {
    let region = Region::heap(1 << 20).unwrap();
    let table = ProcessTable::create(&region, 4).unwrap();
    let counters = Counters::create(&region, 4).unwrap();
    let rcv = counters.register("core:rcv_requests").unwrap();
    let cur = counters.register("tm:current").unwrap();
    assert_eq!(counters.register("core:rcv_requests").unwrap(), rcv);
    std::thread::scope(|s| {
        for worker in 1..=2usize {
            let (table, counters) = (&table, &counters);
            s.spawn(move || {
                let desc = format!("udp receiver child={} sock=127.0.0.1:5060", worker - 1);
                table
                    .set(
                        worker,
                        worker as i32,
                        100 + worker as i32,
                        ProcRole::Worker,
                        &desc,
                        7,
                    )
                    .unwrap();
                for _ in 0..1000 {
                    counters.inc(worker, rcv).unwrap();
                    table.add_messages(worker, 1).unwrap();
                }
                counters.sub(worker, cur, 3).unwrap();
            });
        }
    });
    assert_eq!(counters.get(rcv), 2000);
    assert_eq!(counters.get_signed(cur), -6);
    let opened = Counters::open(&region).unwrap();
    assert_eq!(opened.id("tm:current").unwrap(), Some(cur));
    assert_eq!(opened.id("nope").unwrap(), None);
    opened.reset(rcv);
    assert_eq!(counters.get(rcv), 0);
    let entries = ProcessTable::open(&region).unwrap().entries().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[1].description,
        "udp receiver child=1 sock=127.0.0.1:5060"
    );
    assert_eq!(entries[1].messages, 1000);
    table.clear(1).unwrap();
    assert_eq!(table.get(1).unwrap(), None);
    assert!(table.get(4).is_err());
    assert!(counters.inc(4, rcv).is_err());
}

#[test]
fn long_descriptions_are_cut_at_a_char_boundary_and_names_are_bounded() {
    let region = Region::heap(1 << 20).unwrap();
    let table = ProcessTable::create(&region, 2).unwrap();
    let long = "é".repeat(40); // 80 bytes
    table.set(0, 0, 1, ProcRole::Main, &long, 0).unwrap();
    let d = table.get(0).unwrap().unwrap().description;
    assert_eq!(d, "é".repeat(32));
    let counters = Counters::create(&region, 2).unwrap();
    assert!(counters.register("").is_err());
    assert!(
        counters
            .register(&"x".repeat(sip_shm::COUNTER_NAME_LEN + 1))
            .is_err()
    );
    for i in 0..sip_shm::MAX_COUNTERS {
        counters.register(&format!("c{i}")).unwrap();
    }
    assert!(matches!(
        counters.register("one:more"),
        Err(sip_shm::ShmError::TableFull { .. })
    ));
}
