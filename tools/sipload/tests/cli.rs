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

/// Starts `sipload uas` on a free port and waits until it answers; a port another process
/// took between picking and binding makes the uas exit, and a new port is tried.
fn start_uas(mode: &str) -> (Uas, u16) {
    for _ in 0..5 {
        let port = free_port();
        if let Some(uas) = try_start_uas(port, mode) {
            return (uas, port);
        }
    }
    panic!("sipload uas could not start on any of 5 ports");
}

fn try_start_uas(port: u16, mode: &str) -> Option<Uas> {
    let child = sipload()
        .args(["uas", "-l", &format!("127.0.0.1:{port}"), "--mode", mode])
        .args(["--duration", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipload uas");
    // Ready once it answers an OPTIONS on its port. (Probing by binding the port would race
    // with the uas's own bind, and a port merely being taken says nothing about who holds it.)
    let mut uas = Uas(child);
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind probe");
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("probe timeout");
    let me = probe.local_addr().expect("probe addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 2048];
    for i in 0.. {
        assert!(
            Instant::now() < deadline,
            "sipload uas on {port} never answered OPTIONS"
        );
        if uas.0.try_wait().ok().flatten().is_some() {
            return None; // it could not bind: the port was taken
        }
        let options = format!(
            "OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready{i}\r\n\
             From: <sip:probe@{me}>;tag=p{i}\r\nTo: <sip:ping@127.0.0.1:{port}>\r\n\
             Call-ID: ready-{i}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = probe.send_to(options.as_bytes(), ("127.0.0.1", port));
        if let Ok((n, _)) = probe.recv_from(&mut buf)
            && buf.get(..n).is_some_and(|b| b.starts_with(b"SIP/2.0 200"))
        {
            break;
        }
    }
    Some(uas)
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
    let (_uas, port) = start_uas("answer");
    let out = run_uac(port, 10, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("calls ok 10 failed 0"), "{text}");
    assert!(text.contains("setup latency ms: min "), "{text}");
}

#[test]
fn uac_against_a_rejecting_uas_exits_1() {
    let (_uas, port) = start_uas("reject:486");
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
