//! The `sipload` binary: `uas` serving `uac` runs, exit codes and the printed summary.

use std::net::UdpSocket;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sipload() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipload"))
}

/// A started `sipload uas`, killed and reaped on drop (also when the test panics).
struct Uas(Child);

impl Drop for Uas {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

fn start_uas(port: u16, mode: &str) -> Uas {
    let child = sipload()
        .args(["uas", "-l", &format!("127.0.0.1:{port}"), "--mode", mode])
        .args(["--duration", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipload uas");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ready once it holds the port.
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "sipload uas did not bind {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Uas(child)
}

fn run_uac(port: u16, calls: u32, extra: &[&str]) -> Output {
    sipload()
        .args(["uac", "--proxy", &format!("127.0.0.1:{port}")])
        .args(["--ruri", &format!("sip:one@127.0.0.1:{port}")])
        .args(["--calls", &calls.to_string(), "--rate", "100"])
        .args(extra)
        .output()
        .expect("run sipload uac")
}

#[test]
fn uac_against_an_answering_uas_exits_0_and_prints_the_summary() {
    let port = free_port();
    let _uas = start_uas(port, "answer");
    let out = run_uac(port, 10, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("calls ok 10 failed 0"), "{text}");
    assert!(text.contains("setup latency ms: min "), "{text}");
}

#[test]
fn uac_against_a_rejecting_uas_exits_1() {
    let port = free_port();
    let _uas = start_uas(port, "reject:486");
    let out = run_uac(port, 2, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("calls ok 0 failed 2"), "{text}");
    assert!(text.contains("486 Busy Here"), "{text}");
}

#[test]
fn a_bad_mode_is_a_usage_error() {
    let out = sipload()
        .args(["uas", "--mode", "loud", "--duration", "1"])
        .output()
        .expect("run sipload uas");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown gateway mode"));
}
