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

/// Regression (issue 5 leak): a gateway answering before the relaying worker stored the
/// new branch found no transaction — the reply went on statelessly and the cell waited
/// for fr_timer. The branch must be visible to reply matching before its request leaves.
#[test]
fn reply_racing_the_relaying_worker_finds_the_branch() {
    use super::lab::{GW1, INVITE, Lab, STATEFUL, addr};
    use std::cell::RefCell;
    use std::rc::Rc;

    let lab = Lab::new(STATEFUL);
    let table = lab.table();
    let found: Rc<RefCell<Vec<bool>>> = Rc::default();
    let mut w1 = lab.worker();
    let seen = Rc::clone(&found);
    w1.host.on_send = Some(Box::new(move |dst, bytes| {
        if dst != addr(GW1) || !bytes.starts_with(b"INVITE ") {
            return;
        }
        // The moment the INVITE leaves: another worker matches the gateway's reply.
        let msg = Message::parse(bytes.to_vec()).unwrap_or_else(|e| panic!("{e}"));
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(<[u8]>::to_vec));
        let decoded = branch
            .and_then(|b| sip_txn::decode_branch(&b, table.hash_size(), 12))
            .unwrap_or_else(|| panic!("our branch must decode"));
        let hit = matches!(table.lookup_reply(&decoded, b"INVITE"), Ok(Some(_)));
        seen.borrow_mut().push(hit);
    }));
    w1.request(INVITE, super::lab::UAC);
    assert_eq!(*found.borrow(), vec![true]);
}

/// Regression (issue 5 slow freeing): calls completed while the timer keeps ticking must
/// all be freed one `wt_timer` after their final reply, not a wheel revolution later.
#[test]
fn completed_transactions_are_freed_one_wait_period_after_their_final() {
    use super::lab::{GW1, INVITE, Lab, STATEFUL, UAC, reply_to, to};

    let lab = Lab::new(STATEFUL);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let mut now = 0;
    let mut last_final = 0;
    for call in 0..300u64 {
        let invite = INVITE.replace("call-1@", &format!("call-{call}@"));
        w.at(now).request(&invite, UAC);
        let out = w.take();
        let fwd = to(&out, GW1)[0].clone();
        w.at(now + 5)
            .reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
        w.at(now + 10)
            .reply(&reply_to(&fwd, 200, "OK", "gw", &[]), GW1);
        last_final = now + 10;
        // Calls arrive every 37 ms while the timer ticks at its own pace.
        let next = now + 37;
        timer.tick_until(now, next);
        now = next;
    }
    assert_eq!(lab.table().stat(Stat::Created), 300);
    timer.tick_until(now, last_final + 5_000 + 130);
    assert_eq!(lab.current(), 0, "every cell freed by wt_timer + 2 ticks");
}

fn created(l: Lookup) -> super::table::CellRef {
    match l {
        Lookup::Created { cell, guard, .. } => {
            drop(guard);
            cell
        }
        Lookup::Found(..) => panic!("expected a new cell"),
    }
}

/// The wheel: a deadline later in the tick just scanned, one already behind the scan, and
/// one more than a revolution (16 s) ahead all fire on time, each exactly once.
#[test]
fn wheel_fires_deadlines_in_the_scanned_tick_in_the_past_and_beyond_a_revolution() {
    let t = table();
    let a = created(insert(&t, &key(crate::testutil::INVITE)));
    let b = created(insert(
        &t,
        &key(&crate::testutil::invite_with("call-1@", "call-2@")),
    ));
    let c = created(insert(
        &t,
        &key(&crate::testutil::invite_with("call-1@", "call-3@")),
    ));
    assert!(t.take_due(5_000).unwrap_or_default().is_empty());
    // Tick 80 covers 5000..5062 ms: `a` is due later in the tick the timer just scanned.
    t.schedule(&a, 5_040).unwrap_or_else(|e| panic!("{e}"));
    // `b` is already overdue; `c` is 20 s (more than one revolution) ahead.
    t.schedule(&b, 1_000).unwrap_or_else(|e| panic!("{e}"));
    t.schedule(&c, 25_000).unwrap_or_else(|e| panic!("{e}"));
    let offs = |v: Vec<super::table::CellRef>| v.iter().map(|c| c.offset()).collect::<Vec<_>>();
    assert_eq!(
        offs(t.take_due(5_020).unwrap_or_default()),
        vec![b.offset()]
    );
    assert_eq!(
        offs(t.take_due(5_045).unwrap_or_default()),
        vec![a.offset()]
    );
    let mut now = 5_045;
    let mut fired = Vec::new();
    while now < 25_100 {
        now += 62;
        fired.extend(
            offs(t.take_due(now).unwrap_or_default())
                .into_iter()
                .map(|o| (o, now)),
        );
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].0, c.offset());
    assert!((25_000..25_063).contains(&fired[0].1), "{fired:?}");
}

/// A cell rescheduled earlier while linked moves; rescheduled later keeps the earlier
/// entry (the timer re-schedules after stepping it). Either way one wheel reference.
#[test]
fn rescheduling_a_linked_cell_keeps_one_entry_and_one_reference() {
    let t = table();
    let a = created(insert(&t, &key(crate::testutil::INVITE)));
    t.schedule(&a, 3_000).unwrap_or_else(|e| panic!("{e}"));
    t.schedule(&a, 1_000).unwrap_or_else(|e| panic!("{e}"));
    t.schedule(&a, 9_000).unwrap_or_else(|e| panic!("{e}"));
    let due = t.take_due(1_000).unwrap_or_default();
    assert_eq!(due.len(), 1);
    assert!(t.take_due(4_000).unwrap_or_default().is_empty());
    drop(due);
    t.unlink(&a).unwrap_or_else(|e| panic!("{e}"));
    drop(a);
    assert_eq!(t.stat(Stat::Freed), 1, "no reference left behind");
}

/// Regression (black-box `tm_ack_for_a_486…`): the UAC's ACK, handled by another worker
/// the moment the 486 leaves, must match the INVITE as "ACK to a negative final" — the
/// status is visible before the reply is sent, not only after the state is written.
#[test]
fn ack_racing_the_relayed_negative_final_matches_its_invite() {
    use super::lab::{GW1, INVITE, Lab, STATEFUL, UAC, ack_for, addr, reply_to, to};
    use std::cell::RefCell;
    use std::rc::Rc;

    let lab = Lab::new(STATEFUL);
    let table = lab.table();
    let mut w1 = lab.worker();
    w1.request(INVITE, UAC);
    let fwd = to(&w1.take(), GW1)[0].clone();
    let matched: Rc<RefCell<Vec<Match>>> = Rc::default();
    let seen = Rc::clone(&matched);
    w1.host.on_send = Some(Box::new(move |dst, bytes| {
        if dst != addr(UAC) || !bytes.starts_with(b"SIP/2.0 486") {
            return;
        }
        let ack = key(&ack_for("gw"));
        let rk = ack.key();
        let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, table.hash_size());
        let m = match table.lookup_request(bucket, &rk, &MatchConfig::default()) {
            Ok(Some((_, m))) => m,
            _ => Match::NoMatch,
        };
        seen.borrow_mut().push(m);
    }));
    w1.reply(&reply_to(&fwd, 486, "Busy Here", "gw", &[]), GW1);
    assert_eq!(*matched.borrow(), vec![Match::AckToNegative]);
}

/// `wt_timer` expiry while another process still holds the cell re-arms the wait; after
/// `TM_LIFETIME_LIMIT` (90 s) the cell is unlinked anyway and freed by the last unref.
#[test]
fn wait_timer_extends_while_referenced_and_unlinks_after_90_s() {
    use super::lab::{GW1, INVITE, Lab, STATEFUL, UAC, reply_to, to};

    let lab = Lab::new(STATEFUL);
    let t = lab.table();
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let held = |k: &OwnedKey| {
        let rk = k.key();
        let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, t.hash_size());
        match t.lookup_request(bucket, &rk, &MatchConfig::default()) {
            Ok(Some((cell, _))) => cell,
            _ => panic!("transaction not found"),
        }
    };
    // Call 1: referenced across one wait period, then released.
    w.at(0).request(INVITE, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    w.reply(&reply_to(&fwd, 200, "OK", "gw", &[]), GW1);
    let busy = held(&key(INVITE));
    timer.tick_until(0, 5_200);
    assert!(busy.is_linked(), "still referenced: kept");
    drop(busy);
    timer.tick_until(5_200, 10_300);
    assert_eq!(lab.current(), 0, "freed one period after the release");

    // Call 2: referenced forever (a worker died holding it).
    let invite2 = crate::testutil::invite_with("call-1@", "call-2@");
    w.at(20_000).request(&invite2, UAC);
    let fwd = to(&w.take(), GW1)[0].clone();
    w.reply(&reply_to(&fwd, 200, "OK", "gw", &[]), GW1);
    let stuck = held(&key(&invite2));
    timer.tick_until(20_000, 20_000 + 90_000);
    assert!(stuck.is_linked(), "kept until TM_LIFETIME_LIMIT");
    timer.tick_until(110_000, 20_000 + 5_000 + 90_000 + 5_200);
    assert!(!stuck.is_linked(), "unlinked after 90 s on wait");
    assert_eq!(
        lab.current(),
        1,
        "memory stays until the last reference goes"
    );
    drop(stuck);
    assert_eq!(lab.current(), 0);
}

/// A ~700-byte INVITE (SIPp-like headers and SDP) for the shm-per-transaction figure.
pub fn invite_700(call: u32) -> String {
    let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 192.0.2.10\r\ns=-\r\n\
c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";
    format!(
        "INVITE sip:service@10.0.0.20:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bK-{call}-1-0;rport\r\n\
From: sipp <sip:sipp@192.0.2.10:5091>;tag={call}SIPpTag001\r\n\
To: service <sip:service@10.0.0.20:5070>\r\n\
Call-ID: {call}-4711@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@192.0.2.10:5091\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
User-Agent: siplab-lab\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Shared memory per open INVITE transaction (benches/runs/2026-11-21/tm-shm.md): the
/// product bar of 2 KiB for a ~700-byte INVITE relayed to one ringing gateway (last reply
/// sent upstream = the 180), and every byte back once the calls end.
#[test]
fn shm_per_open_invite_transaction() {
    use super::lab::{GW1, Lab, STATEFUL, UAC, reply_to, to};
    let lab = Lab::with_region(STATEFUL, 32 << 20);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let n = 200u32;
    let before = lab.region.stats().real_used;
    let mut fwds = Vec::new();
    assert!((690..=710).contains(&invite_700(0).len()));
    for call in 0..n {
        w.request(&invite_700(call), UAC);
        let fwd = to(&w.take(), GW1)[0].clone();
        w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
        w.take();
        fwds.push(fwd);
    }
    let per_tx = (lab.region.stats().real_used - before) / u64::from(n);
    eprintln!("shm per open INVITE transaction: {per_tx} bytes");
    assert!(per_tx <= 2_048, "{per_tx} bytes per transaction");
    for fwd in &fwds {
        w.reply(&reply_to(fwd, 486, "Busy Here", "gw", &[]), GW1);
    }
    timer.tick_until(0, 5_200);
    assert_eq!(lab.current(), 0);
    assert_eq!(lab.region.stats().real_used, before, "all shm returned");
}

/// Branch requests are stored as deltas against the stored request; every shape of
/// difference must round-trip, and a delta that does not fit its base is refused.
#[test]
fn branch_delta_round_trips_any_difference() {
    use super::engine::{apply_branch_delta, branch_delta};
    let base = invite_700(1).into_bytes();
    let mut via = b"INVITE sip:service@10.0.0.20:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx.0\r\n".to_vec();
    via.extend_from_slice(&base[base.iter().position(|b| *b == b'\n').unwrap() + 1..]);
    let cases: Vec<Vec<u8>> = vec![
        base.clone(),
        via.clone(),
        b"completely different".to_vec(),
        Vec::new(),
        base[..100].to_vec(),
        [&base[..], b"tail"].concat(),
        [b"head".as_slice(), &base[..]].concat(),
        // Repeated bytes where prefix and suffix could overlap.
        b"aaaa".to_vec(),
    ];
    for full in &cases {
        let d = branch_delta(&base, full);
        assert_eq!(apply_branch_delta(&base, &d).as_deref(), Some(&full[..]));
    }
    let d = branch_delta(&base, &via);
    assert!(d.len() < 120, "our Via costs {} bytes, not a copy", d.len());
    // The usual branch: our Via inserted, the received Via's rport filled in. Only the
    // new bytes are stored, not the received Via between the two changes.
    let ours =
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK0ae.981c5c51d458c1012cb2b6252cd0c470.0\r\n";
    let text = String::from_utf8(base.clone()).unwrap();
    let relayed = text.replacen("Via: ", &format!("{ours}Via: "), 1).replacen(
        ";rport",
        ";rport=5091;received=192.0.2.10",
        1,
    );
    let d = branch_delta(&base, relayed.as_bytes());
    assert_eq!(
        apply_branch_delta(&base, &d).as_deref(),
        Some(relayed.as_bytes())
    );
    assert!(d.len() <= 4 + 24 + ours.len() + 25, "{} bytes", d.len());
    let aaaa = branch_delta(b"aa", b"aaaa");
    assert_eq!(
        apply_branch_delta(b"aa", &aaaa).as_deref(),
        Some(&b"aaaa"[..])
    );
    assert_eq!(apply_branch_delta(b"short", &d), None);
    assert_eq!(apply_branch_delta(&base, b"\x01"), None);
}

/// The To-tag of tm's local replies is not stored with the key: an ACK to a local 2xx
/// still matches its INVITE by dialog (Call-ID, CSeq, From-tag, tm's To-tag derived from
/// the cell's branch field), and an ACK with another To-tag does not.
#[test]
fn ack_to_a_local_2xx_matches_by_the_derived_local_to_tag() {
    let t = table();
    let inv = key(crate::testutil::INVITE);
    let cell = match insert(&t, &inv) {
        Lookup::Created { cell, guard, .. } => {
            drop(guard);
            cell
        }
        Lookup::Found(..) => panic!("first copy must create"),
    };
    let mirror = super::table::Mirror {
        uas_status: 200,
        nr_branches: 0,
        cancel_sent: 0,
        locally_replied: true,
    };
    cell.publish(&mirror).unwrap_or_else(|e| panic!("{e}"));
    let tag = super::engine::local_to_tag(Md5Field([1; 16]));
    let ack_with = |to_tag: &str| {
        let text = format!(
            "ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKack2;rport\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>;tag={to_tag}\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 ACK\r\n\
Content-Length: 0\r\n\r\n"
        );
        let k = key(&text);
        let rk = k.key();
        let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, t.hash_size());
        t.lookup_request(bucket, &rk, &MatchConfig::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|(_, m)| m)
    };
    assert_eq!(ack_with(&tag), Some(Match::AckToLocal2xx));
    assert_eq!(ack_with("someone-else"), None);
    drop(cell);
}
