//! The process model (issue 4 §7): SIPp calls spread over the workers, a SIGKILLed worker is
//! respawned, SIGTERM stops everything and cleans up, `worker_exit = "shutdown"`.

use super::harness::{Proxy, ProxyCfg, pid_alive, udp_port_in_use, wait_until};
use super::sipp::{Uac, Uas, run_calls};
use super::udp::{Peer, options_request};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::time::Duration;

fn start(tag: &str, cfg: ProxyCfg) -> Proxy {
    match Proxy::start(tag, cfg) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn rank_to_pid(proxy: &Proxy) -> BTreeMap<i64, i32> {
    proxy.workers().iter().map(|w| (w.rank, w.pid)).collect()
}

#[test]
fn sipp_200_calls_through_four_workers_all_succeed_and_every_worker_works() {
    let mut uas = Uas::start();
    let proxy = start("calls", ProxyCfg::stateless(4, uas.port));
    let result = run_calls(proxy.addr(), 200, 50);
    uas.assert_running();
    assert_eq!(
        (result.exit_code, result.successful, result.failed),
        (Some(0), 200, 0),
        "200 calls through siplab must all succeed\n{}\n--- siplab log tail\n{}",
        result.diagnostics,
        tail(&proxy.log_text(), 30)
    );
    let workers = proxy.workers();
    assert_eq!(workers.len(), 4, "core.psx workers: {workers:?}");
    assert!(
        workers.iter().all(|w| w.messages > 0),
        "every worker must have handled traffic: {workers:?}"
    );
    // 200 calls are at least INVITE, 200, ACK, BYE, 200 through the proxy.
    let total: u64 = workers.iter().map(|w| w.messages).sum();
    assert!(
        total >= 1000,
        "workers handled {total} messages: {workers:?}"
    );
}

#[test]
fn sigkilled_worker_is_respawned_with_same_rank_and_calls_recover() {
    let mut uas = Uas::start();
    let proxy = start("sigkill", ProxyCfg::stateless(4, uas.port));
    let before = proxy.workers();
    let uac = Uac::start(proxy.addr(), 300, 50);
    // Kill while calls are flowing: wait until the workers have handled real traffic.
    let flowing = wait_until(Duration::from_secs(20), || {
        proxy.workers().iter().map(|w| w.messages).sum::<u64>() >= 100
    });
    assert!(flowing, "no traffic reached siplab: {:?}", proxy.workers());
    let victim = before[0].clone();
    kill(Pid::from_raw(victim.pid), Signal::SIGKILL).expect("SIGKILL the worker");

    let mut respawned = None;
    let seen = wait_until(Duration::from_secs(15), || {
        respawned = proxy
            .workers()
            .into_iter()
            .find(|w| w.rank == victim.rank && w.pid != victim.pid && w.pid > 0);
        respawned.as_ref().is_some_and(|w| pid_alive(w.pid))
    });
    assert!(
        seen,
        "rank {} was not respawned; core.psx: {:?}\nlog:\n{}",
        victim.rank,
        proxy.workers(),
        tail(&proxy.log_text(), 30)
    );
    let new = respawned.expect("checked above");
    assert!(
        !pid_alive(victim.pid),
        "killed pid {} still alive",
        victim.pid
    );
    let line = format!("respawned rank {} as pid {}", victim.rank, new.pid);
    assert!(
        wait_until(Duration::from_secs(5), || proxy.log_text().contains(&line)),
        "log lacks `{line}`:\n{}",
        tail(&proxy.log_text(), 30)
    );
    // The other workers were not touched.
    let after = rank_to_pid(&proxy);
    for w in before.iter().filter(|w| w.rank != victim.rank) {
        assert_eq!(
            after.get(&w.rank),
            Some(&w.pid),
            "rank {} changed pid",
            w.rank
        );
    }

    let result = uac.finish();
    uas.assert_running();
    // A worker holds one datagram at a time: at most the one call it was handling can fail.
    assert_eq!(
        result.successful + result.failed,
        300,
        "run did not finish\n{}",
        result.diagnostics
    );
    assert!(
        result.failed <= 1,
        "{} calls failed after killing one worker\n{}",
        result.failed,
        result.diagnostics
    );

    // No lock stayed held by the dead worker: a later run is clean and ctl still answers.
    let later = run_calls(proxy.addr(), 40, 40);
    assert_eq!(
        (later.exit_code, later.successful, later.failed),
        (Some(0), 40, 0),
        "calls after the respawn\n{}",
        later.diagnostics
    );
    assert!(proxy.stat("core:rcv_requests") > 0);
    assert_eq!(proxy.workers().len(), 4);
}

/// The stateful twin of the SIGKILL test: workers die while they work on transactions in
/// shared memory (bucket and cell locks, the timer wheel, the allocator), so a lock the dead
/// worker held must be repaired by the next locker, or later calls would hang.
const STATEFUL_ROUTE: &str = r#"loadmodule "tm.so"
modparam("tm", "wt_timer", 2000)
request_route {
    if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
    if (!is_method("ACK")) t_check_trans();
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("INVITE")) record_route();
    $du = "sip:127.0.0.1:GWPORT";
    if (!t_relay()) sl_reply_error();
}
"#;

#[test]
fn sigkilled_workers_during_stateful_calls_leave_no_lock_held() {
    let mut uas = Uas::start();
    let cfg = ProxyCfg {
        route: STATEFUL_ROUTE.to_string(),
        ..ProxyCfg::stateless(4, uas.port)
    };
    let proxy = start("sigkill-tm", cfg);
    let before = proxy.workers();
    let uac = Uac::start(proxy.addr(), 400, 50);
    // Two workers die, one after the other, while transactions are being created and matched.
    for (i, victim) in before.iter().take(2).enumerate() {
        let flowing = wait_until(Duration::from_secs(20), || {
            proxy.workers().iter().map(|w| w.messages).sum::<u64>() >= 150 * (i as u64 + 1)
        });
        assert!(flowing, "no traffic reached siplab: {:?}", proxy.workers());
        kill(Pid::from_raw(victim.pid), Signal::SIGKILL).expect("SIGKILL the worker");
        let back = wait_until(Duration::from_secs(15), || {
            proxy
                .workers()
                .iter()
                .any(|w| w.rank == victim.rank && w.pid != victim.pid && pid_alive(w.pid))
        });
        assert!(
            back,
            "rank {} was not respawned
{}",
            victim.rank,
            tail(&proxy.log_text(), 30)
        );
    }
    let result = uac.finish();
    uas.assert_running();
    assert_eq!(
        result.successful + result.failed,
        400,
        "run did not finish
{}",
        result.diagnostics
    );
    // Only the calls the dead workers held can fail (one each; tm's timer retransmits the
    // rest); a little room for SIPp's own timeouts on a loaded 2-core machine.
    assert!(
        result.failed <= 6,
        "{} calls failed after killing two workers
{}
--- siplab log tail
{}",
        result.failed,
        result.diagnostics,
        tail(&proxy.log_text(), 30)
    );
    // Every shared lock still works: a later run is clean, ctl answers, and the transaction
    // table drains (a cell the dead worker referenced may wait up to tm's 90 s limit).
    let later = run_calls(proxy.addr(), 60, 60);
    assert_eq!(
        (later.exit_code, later.successful, later.failed),
        (Some(0), 60, 0),
        "calls after the respawns
{}
--- siplab log tail
{}",
        later.diagnostics,
        tail(&proxy.log_text(), 30)
    );
    let current = |p: &Proxy| {
        p.rpc("tm.stats", serde_json::json!([]))
            .ok()
            .and_then(|v| v.get("current").and_then(serde_json::Value::as_i64))
            .unwrap_or(i64::MAX)
    };
    // A dead worker may still reference the cell it was working on (and a CANCEL's INVITE):
    // at most two per killed worker wait for tm's 90 s limit; a leak would leave hundreds.
    let drained = wait_until(Duration::from_secs(15), || current(&proxy) <= 4);
    assert!(
        drained,
        "tm.stats current stayed at {} after the calls ended",
        current(&proxy)
    );
    assert_eq!(proxy.workers().len(), 4);
}

#[test]
fn a_datagram_that_hits_a_bug_is_dropped_and_the_worker_lives_on() {
    // Debug builds panic on a datagram carrying SIPLAB_PANIC_ON's text: a stand-in for a bug.
    let mut uas = Uas::start();
    let mut cfg = ProxyCfg::stateless(2, uas.port);
    cfg.env
        .push(("SIPLAB_PANIC_ON".into(), "X-Siplab-Test-Panic".into()));
    let proxy = start("panic", cfg);
    let before = rank_to_pid(&proxy);
    let peer = Peer::bind();
    let mut options = options_request(peer.addr, proxy.addr(), "panic-1");
    let at = options.len() - 2;
    options.splice(at..at, b"X-Siplab-Test-Panic: 1\r\n".iter().copied());
    for _ in 0..3 {
        peer.send_to(&options, proxy.addr());
    }
    assert!(
        wait_until(Duration::from_secs(10), || proxy.stat("core:worker_panics")
            == 3),
        "core:worker_panics = {}\n{}",
        proxy.stat("core:worker_panics"),
        tail(&proxy.log_text(), 20)
    );
    assert_eq!(
        rank_to_pid(&proxy),
        before,
        "a worker died or was respawned"
    );
    assert!(proxy.log_text().contains("hit a bug and was dropped"));
    let later = run_calls(proxy.addr(), 20, 20);
    assert_eq!(
        (later.exit_code, later.successful, later.failed),
        (Some(0), 20, 0),
        "calls after the panics\n{}",
        later.diagnostics
    );
    uas.assert_running();
}

#[test]
fn sigterm_exits_0_and_leaves_no_child_pidfile_or_socket() {
    let mut proxy = start("sigterm", ProxyCfg::stateless(4, 9));
    let rows = proxy.psx().expect("core.psx");
    let pids: Vec<i32> = rows.iter().map(|r| r.pid).filter(|&p| p > 0).collect();
    // supervisor + 4 workers + timer + ctl
    assert!(pids.len() >= 7, "core.psx: {rows:?}");
    assert!(
        pids.contains(&proxy.pid()),
        "supervisor not in core.psx: {rows:?}"
    );
    let pidfile = std::fs::read_to_string(&proxy.pidfile).expect("pidfile written");
    assert_eq!(pidfile.trim(), proxy.pid().to_string());
    assert!(proxy.ctl.exists());

    proxy.guard().signal(Signal::SIGTERM).expect("SIGTERM");
    let status = proxy.guard().wait_timeout(Duration::from_secs(3));
    let status = status.unwrap_or_else(|| {
        panic!(
            "siplab did not exit within 3 s of SIGTERM:\n{}",
            tail(&proxy.log_text(), 30)
        )
    });
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let left: Vec<i32> = pids.iter().copied().filter(|&p| pid_alive(p)).collect();
    assert!(left.is_empty(), "processes left after SIGTERM: {left:?}");
    assert!(!proxy.pidfile.exists(), "pidfile not removed");
    assert!(!proxy.ctl.exists(), "ctl socket not removed");
    assert!(!udp_port_in_use(proxy.port), "SIP port still bound");
}

#[test]
fn worker_exit_shutdown_makes_the_server_exit_1_when_a_worker_dies() {
    let mut cfg = ProxyCfg::stateless(2, 9);
    cfg.globals.push("worker_exit=\"shutdown\"".into());
    let mut proxy = start("shutdown", cfg);
    let pids: Vec<i32> = proxy
        .psx()
        .expect("core.psx")
        .iter()
        .map(|r| r.pid)
        .filter(|&p| p > 0)
        .collect();
    let victim = proxy.workers()[0].pid;
    kill(Pid::from_raw(victim), Signal::SIGKILL).expect("SIGKILL the worker");
    let status = proxy.guard().wait_timeout(Duration::from_secs(10));
    let status = status.unwrap_or_else(|| {
        panic!(
            "siplab kept running after a worker died:\n{}",
            tail(&proxy.log_text(), 30)
        )
    });
    assert_eq!(status.code(), Some(1), "exit status {status}");
    let left: Vec<i32> = pids.iter().copied().filter(|&p| pid_alive(p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
