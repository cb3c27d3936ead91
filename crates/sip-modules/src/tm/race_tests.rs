//! Real concurrency on the heap lab: worker THREADS (each its own runtime over one heap
//! region) start every round together at a barrier, so lookup-then-insert and the
//! INVITE/CANCEL race run truly interleaved, not one after the other (issue 5 §2).

use std::sync::Barrier;

use super::lab::{GW1, Lab, Out, UAC, to};
use super::table::Stat;
use super::tests::invite_700;

const CFG: &str = r#"
loadmodule "tm.so"
request_route {
    $du = "sip:10.0.0.20:5070";
    t_relay();
    exit;
}
"#;

/// Runs `rounds` rounds on `threads` workers; in round `r` thread `i` handles
/// `message(r, i)`. Returns every round's datagrams per thread.
fn race(
    lab: &Lab,
    threads: usize,
    rounds: u32,
    message: impl Fn(u32, usize) -> String + Sync,
) -> Vec<Vec<Vec<Out>>> {
    let start = Barrier::new(threads);
    let message = &message;
    let per_thread: Vec<Vec<Vec<Out>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let start = &start;
                s.spawn(move || {
                    let mut w = lab.worker();
                    let mut outs = Vec::new();
                    for r in 0..rounds {
                        let text = message(r, i);
                        start.wait();
                        w.at(u64::from(r));
                        w.request(&text, UAC);
                        outs.push(w.take());
                    }
                    outs
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("worker thread panicked"))
            })
            .collect()
    });
    (0..rounds as usize)
        .map(|r| per_thread.iter().map(|t| t[r].clone()).collect())
        .collect()
}

#[test]
fn concurrent_copies_of_one_request_make_exactly_one_transaction() {
    let lab = Lab::new(CFG);
    let (threads, rounds) = (4, 150);
    let by_round = race(&lab, threads, rounds, |r, _| invite_700(r));
    for (r, outs) in by_round.iter().enumerate() {
        let forwarded: usize = outs.iter().map(|o| to(o, GW1).len()).sum();
        assert_eq!(
            forwarded, 1,
            "round {r}: the INVITE went downstream {forwarded} times"
        );
    }
    assert_eq!(
        lab.table().stat(Stat::Created),
        u64::from(rounds),
        "one cell per request"
    );
    assert_eq!(lab.table().linked_cells(), u64::from(rounds));
}

/// The CANCEL for [`invite_700`]`(n)`.
fn cancel_700(n: u32) -> String {
    let inv = invite_700(n);
    let head = inv.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines: Vec<String> = Vec::new();
    for l in head.lines() {
        if let Some(rest) = l.strip_prefix("INVITE ") {
            lines.push(format!("CANCEL {rest}"));
        } else if l.starts_with("CSeq:") {
            lines.push(l.replace("INVITE", "CANCEL"));
        } else if l.starts_with("Content-") || l.starts_with("Contact:") {
            continue;
        } else {
            lines.push(l.to_string());
        }
    }
    format!("{}\r\nContent-Length: 0\r\n\r\n", lines.join("\r\n"))
}

#[test]
fn invite_and_its_cancel_in_parallel_are_either_matched_or_born_canceled_never_neither() {
    let lab = Lab::new(CFG);
    let rounds = 300;
    let by_round = race(&lab, 2, rounds, |r, i| {
        if i == 0 { invite_700(r) } else { cancel_700(r) }
    });
    let (mut matched, mut born_canceled) = (0, 0);
    for (r, outs) in by_round.iter().enumerate() {
        let (inv, can) = (&outs[0], &outs[1]);
        let invite_sent = to(inv, GW1)
            .iter()
            .any(|o| o.first_line().starts_with("INVITE "));
        // The proxy answers a CANCEL itself only when it found the INVITE (`200 canceling`,
        // or `200 ok -- no more pending branches` before any branch existed).
        let cancel_found_invite = to(can, UAC)
            .iter()
            .any(|o| o.first_line().starts_with("SIP/2.0 200 "));
        let invite_born_canceled = to(inv, UAC)
            .iter()
            .any(|o| o.first_line().starts_with("SIP/2.0 487 "));
        if cancel_found_invite {
            matched += 1;
        } else {
            assert!(
                !invite_sent && invite_born_canceled,
                "round {r}: the CANCEL missed the INVITE and the INVITE was not born canceled: \
                 {inv:?} {can:?}"
            );
            born_canceled += 1;
        }
    }
    assert_eq!(matched + born_canceled, rounds);
    assert_eq!(
        lab.table().stat(Stat::Created),
        2 * u64::from(rounds),
        "one transaction for each INVITE and each CANCEL"
    );
}
