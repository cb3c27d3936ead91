//! Real SIPp peers: the built-in `uas` scenario as the gateway and `uac` runs as the caller.
//! Every SIPp gets its own SIP, media and control ports so parallel tests never collide.

use super::harness::{ChildGuard, TempDir, free_udp_port, free_udp_port_range, udp_port_in_use};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// SIPp binds its media socket and neighbours (RTP echo on +2, video); keep a run of 4 free.
const MEDIA_SPAN: u16 = 4;

/// `tests/data/sipp/NAME.xml`: the built-in uac/uas, changed to route in-dialog requests by
/// the Record-Route set like real UAs (the built-ins send ACK/BYE to the proxy's own address
/// without Route, which a record-routing proxy answers with 404).
fn scenario_file(name: &str) -> PathBuf {
    super::harness::repo_root()
        .join("tests/data/sipp")
        .join(format!("{name}.xml"))
}

fn sipp_command(dir: &Path, scenario: &str, sip_port: u16) -> Command {
    let mut cmd = Command::new("sipp");
    cmd.arg("-sf")
        .arg(scenario_file(scenario))
        .args(["-i", "127.0.0.1", "-nostdin"])
        .args(["-p", &sip_port.to_string()])
        .args(["-mp", &free_udp_port_range(MEDIA_SPAN).to_string()])
        .args(["-cp", &free_udp_port().to_string()])
        .current_dir(dir);
    cmd
}

fn output_files(dir: &Path, name: &str) -> (File, File) {
    let out = File::create(dir.join(format!("{name}.out"))).expect("create sipp stdout file");
    let err = File::create(dir.join(format!("{name}.err"))).expect("create sipp stderr file");
    (out, err)
}

/// A running `sipp -sn uas` answering every call with 200 and the BYE with 200.
#[derive(Debug)]
pub struct Uas {
    guard: ChildGuard,
    pub port: u16,
    pub dir: TempDir,
}

impl Uas {
    pub fn start() -> Uas {
        for _ in 0..5 {
            let dir = TempDir::new("uas");
            let port = free_udp_port();
            let (out, err) = output_files(dir.path(), "uas");
            let mut cmd = sipp_command(dir.path(), "uas_rr", port);
            cmd.stdout(out).stderr(err);
            let mut guard = ChildGuard::spawn("sipp uas", &mut cmd)
                .expect("spawn sipp (is sip-tester installed?)");
            // Ready once SIPp holds its SIP port; a port lost to a race makes it exit instead.
            let ready = super::harness::wait_until(Duration::from_secs(10), || {
                udp_port_in_use(port) || guard.try_status().is_some()
            });
            if ready && guard.try_status().is_none() {
                return Uas { guard, port, dir };
            }
        }
        panic!("sipp uas did not start in 5 attempts");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Panics unless the UAS is still running (a crash would explain failed calls).
    pub fn assert_running(&mut self) {
        if let Some(st) = self.guard.try_status() {
            panic!(
                "sipp uas exited ({st}): {}",
                std::fs::read_to_string(self.dir.join("uas.err")).unwrap_or_default()
            );
        }
    }
}

/// What a finished `sipp -sn uac` run reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UacResult {
    /// SIPp's exit code: 0 all calls succeeded, 1 some failed, others are SIPp errors.
    pub exit_code: Option<i32>,
    pub successful: u64,
    pub failed: u64,
    /// The tail of SIPp's screen and error output, for failure messages.
    pub diagnostics: String,
}

/// A running `sipp -sn uac` placing a fixed number of calls.
#[derive(Debug)]
pub struct Uac {
    guard: ChildGuard,
    stat_file: PathBuf,
    pub dir: TempDir,
}

impl Uac {
    /// Starts `calls` calls at `rate` calls/s towards `target`.
    pub fn start(target: SocketAddr, calls: u32, rate: u32) -> Uac {
        let dir = TempDir::new("uac");
        let (out, err) = output_files(dir.path(), "uac");
        let stat_file = dir.join("stat.csv");
        let mut cmd = sipp_command(dir.path(), "uac_rr", free_udp_port());
        cmd.arg(target.to_string())
            .args(["-m", &calls.to_string(), "-r", &rate.to_string()])
            .args(["-trace_stat", "-fd", "1", "-trace_err"])
            .arg("-stf")
            .arg(&stat_file)
            // A hard stop for SIPp itself, so a silent proxy cannot hang the test.
            .args(["-timeout", "90s", "-timeout_error"])
            .stdout(out)
            .stderr(err);
        let guard =
            ChildGuard::spawn("sipp uac", &mut cmd).expect("spawn sipp (is sip-tester installed?)");
        Uac {
            guard,
            stat_file,
            dir,
        }
    }

    /// Waits (bounded) for the run to end and reads its final statistics.
    pub fn finish(mut self) -> UacResult {
        let status = self.guard.wait_timeout(Duration::from_secs(120));
        if status.is_none() {
            self.guard.stop();
        }
        let (successful, failed) = read_final_counts(&self.stat_file).unwrap_or((0, 0));
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(25)..].join("\n")
        };
        let errors: String = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let errors: String = errors.chars().take(4000).collect();
        UacResult {
            exit_code: status.and_then(|s| s.code()),
            successful,
            failed,
            diagnostics: format!(
                "--- uac stdout tail\n{}\n--- uac stderr\n{}\n--- uac errors\n{errors}",
                tail("uac.out"),
                tail("uac.err")
            ),
        }
    }
}

/// Runs a whole uac batch.
pub fn run_calls(target: SocketAddr, calls: u32, rate: u32) -> UacResult {
    Uac::start(target, calls, rate).finish()
}

/// `SuccessfulCall(C)` and `FailedCall(C)` from the last line of a `-trace_stat` CSV.
pub fn read_final_counts(stat_file: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(stat_file).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let col = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| *h == name)?;
        last.get(i)?.trim().parse().ok()
    };
    Some((col("SuccessfulCall(C)")?, col("FailedCall(C)")?))
}

#[test]
fn sipp_uac_to_uas_directly_completes_every_call() {
    // Checks the SIPp half of the harness without siplab in the path.
    let mut uas = Uas::start();
    let result = run_calls(uas.addr(), 20, 50);
    uas.assert_running();
    assert_eq!(
        (result.exit_code, result.successful, result.failed),
        (Some(0), 20, 0),
        "{}",
        result.diagnostics
    );
}

#[test]
fn uac_against_a_silent_port_reports_failed_calls() {
    // Nothing answers: every call must end as failed, so the harness can see failures.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = silent.local_addr().expect("addr");
    let dir = TempDir::new("uac-silent");
    let stat = dir.join("stat.csv");
    let mut cmd = sipp_command(dir.path(), "uac_rr", free_udp_port());
    let (out, err) = output_files(dir.path(), "uac");
    cmd.arg(target.to_string())
        .args(["-m", "2", "-r", "10", "-recv_timeout", "500ms"])
        .args(["-trace_stat", "-fd", "1"])
        .arg("-stf")
        .arg(&stat)
        .stdout(out)
        .stderr(err);
    let mut guard = ChildGuard::spawn("sipp uac", &mut cmd).expect("spawn sipp");
    let status = guard.wait_timeout(Duration::from_secs(60));
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    assert_eq!(read_final_counts(&stat), Some((0, 2)));
}
