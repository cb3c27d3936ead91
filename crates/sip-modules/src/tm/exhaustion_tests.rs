//! Shared-memory exhaustion end to end on the heap lab (issue 5 §2): "the request gets a
//! 500 reply and a counter grows; nothing crashes or leaks".

use sip_script::abi::ReplyDisposition;
use sip_shm::{Region, ShmOff};

use super::lab::{GW1, Lab, STATEFUL, UAC, Worker, reply_to, to};
use super::table::Stat;
use super::tests::invite_700;

/// The stock-like cfg over a small table (the region is tiny).
fn cfg() -> String {
    STATEFUL.replacen(
        "#!ifdef FRT",
        "modparam(\"tm\", \"hash_size\", 16)\n#!ifdef FRT",
        1,
    )
}

/// Takes memory until at most `left` bytes stay free; returns the blocks taken.
fn squeeze(region: &Region, left: u64) -> Vec<ShmOff<u8>> {
    let mut taken = Vec::new();
    loop {
        let free = region.stats().free;
        let Some(take) = free.checked_sub(left).filter(|t| *t >= 32) else {
            break;
        };
        let len = if take > 70_000 {
            (take - 8_192) / 64 * 64 - 16
        } else if take > 4_096 {
            4_080
        } else {
            take - 16
        };
        match region.alloc(len as usize) {
            Ok(off) => taken.push(off),
            Err(_) => break,
        }
    }
    taken
}

/// One call: INVITE, then (if relayed) 180 and 486. Returns the first line of every reply
/// the UAC got — a reply tm leaves to the core (its cell was abandoned) counts as the
/// core's stateless forward, as in the binary.
fn call(w: &mut Worker, n: u32) -> Vec<String> {
    let inv = invite_700(n);
    w.request(&inv, UAC);
    let out = w.take();
    let mut up: Vec<String> = to(&out, UAC)
        .iter()
        .map(|o| o.first_line().to_string())
        .collect();
    if let Some(fwd) = to(&out, GW1).first().map(|o| (*o).clone()) {
        for (code, reason) in [(180, "Ringing"), (486, "Busy Here")] {
            let reply = reply_to(&fwd, code, reason, "gw", &[]);
            let stateless = w.reply(&reply, GW1) == ReplyDisposition::Forward;
            let out = w.take();
            up.extend(to(&out, UAC).iter().map(|o| o.first_line().to_string()));
            if stateless {
                up.push(format!("SIP/2.0 {code} {reason}"));
            }
        }
    }
    up
}

#[test]
fn open_transactions_fill_shm_then_the_next_invite_gets_500_and_everything_comes_back() {
    let lab = Lab::with_region(&cfg(), 256 << 10);
    let mut w = lab.worker();
    let mut timer = lab.worker();
    let before = lab.region.stats().real_used;
    let mut open = Vec::new();
    let mut refused = None;
    for n in 0..1_000u32 {
        w.request(&invite_700(n), UAC);
        let out = w.take();
        match to(&out, GW1).first() {
            Some(fwd) => {
                let fwd = (*fwd).clone();
                w.reply(&reply_to(&fwd, 180, "Ringing", "gw", &[]), GW1);
                w.take();
                open.push(fwd);
            }
            None => {
                refused = Some(out);
                break;
            }
        }
    }
    let refused = refused.expect("shm never ran out");
    assert!(open.len() > 10, "only {} calls fit", open.len());
    let up = to(&refused, UAC);
    assert!(
        up.iter()
            .any(|o| o.first_line().starts_with("SIP/2.0 500 ")),
        "{refused:?}"
    );
    assert!(lab.table().stat(Stat::ShmExhausted) >= 1);
    for fwd in &open {
        w.reply(&reply_to(fwd, 486, "Busy Here", "gw", &[]), GW1);
    }
    timer.tick_until(0, 6_000);
    assert_eq!(lab.current(), 0);
    assert_eq!(lab.region.stats().real_used, before, "every byte came back");
    // And the proxy works again.
    w.at(7_000);
    let again = call(&mut w, 99_999);
    assert!(
        again.contains(&"SIP/2.0 486 Busy Here".to_string()),
        "{again:?}"
    );
}

/// Every point at which an allocation can fail during a call (creating the cell, storing
/// the request, the branch, the 100, the state, the 180, the 486): the UAC always gets a
/// final reply, and once the call is over every byte is back.
#[test]
fn exhaustion_at_any_step_of_a_call_answers_and_leaks_nothing() {
    let mut outcomes = std::collections::BTreeSet::new();
    for left in (0..4_000u64).step_by(16) {
        let lab = Lab::with_region(&cfg(), 256 << 10);
        let mut w = lab.worker();
        let mut timer = lab.worker();
        let before = lab.region.stats().real_used;
        let filler = squeeze(lab.region, left);
        let up = call(&mut w, 1);
        let last = up.last().cloned().unwrap_or_default();
        assert!(
            last.starts_with("SIP/2.0 500 ") || last == "SIP/2.0 486 Busy Here",
            "{left} B free: {up:?}"
        );
        outcomes.insert(last);
        timer.tick_until(0, 6_000);
        for off in filler {
            lab.region.free(off).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(lab.current(), 0, "{left} B free: transaction left over");
        assert_eq!(
            lab.region.stats().real_used,
            before,
            "{left} B free: memory leaked"
        );
    }
    assert!(outcomes.len() >= 2, "both outcomes seen: {outcomes:?}");
}
