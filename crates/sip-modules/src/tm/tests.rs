//! Heap-backed table tests: two "workers" interleaving on one table in one process.

use sip_msg::Message;
use sip_shm::Region;
use sip_txn::{Match, MatchConfig, Md5Field, Method};

use super::key::OwnedKey;
use super::table::{Lookup, NewCell, Stat, Table};

fn table() -> Table {
    let region: &'static Region = Box::leak(Box::new(
        Region::heap(4 << 20).unwrap_or_else(|e| panic!("heap region: {e}")),
    ));
    Table::create(region, 1024).unwrap_or_else(|e| panic!("table: {e}"))
}

fn key(text: &str) -> OwnedKey {
    let msg = Message::parse(text.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{e}"));
    OwnedKey::of(&msg).unwrap_or_else(|e| panic!("{e}"))
}

fn insert(t: &Table, k: &OwnedKey) -> Lookup {
    let rk = k.key();
    let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, t.hash_size());
    let blob = k.blob(b"");
    let new = NewCell {
        key_blob: &blob,
        md5: Md5Field([1; 16]),
        method: Method::classify(rk.method),
    };
    t.lookup_or_insert(bucket, &rk, &MatchConfig::default(), &new)
        .unwrap_or_else(|e| panic!("lookup_or_insert: {e}"))
}

#[test]
fn same_request_twice_gives_one_cell_and_unlink_frees_it() {
    let t = table();
    let inv = key(crate::testutil::INVITE);
    let first = match insert(&t, &inv) {
        Lookup::Created { cell, guard, .. } => {
            drop(guard);
            cell
        }
        Lookup::Found(..) => panic!("first copy must create"),
    };
    // Worker 2 sees the same request: a retransmission of worker 1's cell, nothing created.
    match insert(&t, &inv) {
        Lookup::Found(cell, m) => {
            assert_eq!(m, Match::Retransmission);
            assert_eq!(cell, first);
        }
        Lookup::Created { .. } => panic!("second copy created a second transaction"),
    }
    assert_eq!(t.linked_cells(), 1);
    assert_eq!(t.stat(Stat::Created), 1);
    t.unlink(&first).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.linked_cells(), 0);
    assert_eq!(t.stat(Stat::Freed), 0, "still referenced by `first`");
    drop(first);
    assert_eq!(t.stat(Stat::Freed), 1);
}

#[test]
fn cancel_before_invite_makes_the_invite_born_canceled() {
    let t = table();
    let cancel_text = crate::testutil::INVITE
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replacen("CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1);
    let cancel = key(&cancel_text);
    let _c = match insert(&t, &cancel) {
        Lookup::Created { cell, .. } => cell,
        Lookup::Found(..) => panic!("CANCEL must create its own transaction"),
    };
    match insert(&t, &key(crate::testutil::INVITE)) {
        Lookup::Created { born_canceled, .. } => assert!(born_canceled),
        Lookup::Found(..) => panic!("INVITE must not match the CANCEL cell"),
    }
}

#[test]
fn exhaustion_is_an_error_value() {
    let region: &'static Region = Box::leak(Box::new(
        Region::heap(64 << 10).unwrap_or_else(|e| panic!("{e}")),
    ));
    let t = Table::create(region, 16).unwrap_or_else(|e| panic!("{e}"));
    let big = vec![b'x'; 1 << 20];
    let err = t.alloc_buf(&big).err().map(|e| e.is_exhausted());
    assert_eq!(err, Some(true));
}
