//! cfg checks (issue 3 §6, DESIGN §6.8): shipped cfgs pass `siplab -c`, every broken cfg in
//! `tests/data/cfg/broken/` fails at its `# expect:` position, and a cfg error stops `siplab -f`
//! before it binds anything.

use super::harness::{ProxyCfg, TempDir, free_udp_port, repo_root, run_siplab};
use std::ffi::OsStr;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CHECK_LIMIT: Duration = Duration::from_secs(30);

fn check(cfg: &Path) -> (Option<i32>, String) {
    run_siplab(
        &[OsStr::new("-c"), OsStr::new("-f"), cfg.as_os_str()],
        CHECK_LIMIT,
    )
}

fn cfgs_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
        .collect();
    out.sort();
    out
}

#[test]
fn shipped_cfgs_pass_the_check() {
    let etc = repo_root().join("etc");
    let examples = cfgs_in(&etc.join("examples"));
    assert!(!examples.is_empty(), "etc/examples/ holds no .cfg");
    let mut all = vec![etc.join("siplab.cfg")];
    all.extend(examples);
    let mut failures = Vec::new();
    for cfg in &all {
        let (code, out) = check(cfg);
        if code != Some(0) || !out.contains("config file ok, exiting...") {
            failures.push(format!("{} -> exit {code:?}:\n{out}", cfg.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(line, col, message)` from a `# expect: L:C: message` line.
fn expectation(cfg: &Path) -> (u32, u32, String) {
    let text = std::fs::read_to_string(cfg).expect("read broken cfg");
    let spec = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", cfg.display()));
    let mut parts = spec.splitn(3, ':');
    let mut num = || -> u32 {
        parts
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("bad `# expect:` in {}: {spec}", cfg.display()))
    };
    let (line, col) = (num(), num());
    let msg = parts.next().unwrap_or_default().trim().to_string();
    (line, col, msg)
}

#[test]
fn every_broken_cfg_fails_the_check_at_its_expected_position() {
    let broken = cfgs_in(&repo_root().join("tests/data/cfg/broken"));
    assert!(!broken.is_empty(), "tests/data/cfg/broken/ holds no .cfg");
    let mut failures = Vec::new();
    for cfg in &broken {
        let (line, col, msg) = expectation(cfg);
        let (code, out) = check(cfg);
        let pos = format!(":{line}:{col}: ");
        // The diagnostic is `file:line:col: message` on one line.
        let found = out.lines().any(|l| l.contains(&pos) && l.contains(&msg));
        if code != Some(1) || !found {
            failures.push(format!(
                "{}: want exit 1 and `{pos}{msg}`, got exit {code:?}:\n{out}",
                cfg.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cfg_error_makes_siplab_exit_1_before_binding_anything() {
    let dir = TempDir::new("cfgerr");
    let port = free_udp_port();
    let mut text = ProxyCfg::stateless(2, 9).render(port);
    text.push_str("route[BROKEN] {\n    $var(x) := 1;\n}\n");
    let broken_line = text.lines().count() - 1;
    let cfg = dir.join("broken.cfg");
    std::fs::write(&cfg, &text).expect("write cfg");
    let run_dir = dir.join("run");
    let pidfile = dir.join("siplab.pid");
    // Holding the port tells the two orders apart: binding first would fail with a bind error
    // instead of the cfg diagnostic.
    let _held = UdpSocket::bind(("127.0.0.1", port)).expect("hold the SIP port");
    let (code, out) = run_siplab(
        &[
            OsStr::new("-f"),
            cfg.as_os_str(),
            OsStr::new("-DD"),
            OsStr::new("-E"),
            OsStr::new("--run-dir"),
            run_dir.as_os_str(),
            OsStr::new("-P"),
            pidfile.as_os_str(),
        ],
        CHECK_LIMIT,
    );
    assert_eq!(code, Some(1), "output:\n{out}");
    assert!(
        out.contains(&format!("broken.cfg:{broken_line}:")) && out.contains("syntax error"),
        "no diagnostic for line {broken_line}:\n{out}"
    );
    assert!(!out.contains("cannot bind"), "siplab tried to bind:\n{out}");
    assert!(!run_dir.join("siplab_ctl").exists(), "ctl socket created");
    assert!(!pidfile.exists(), "pidfile written");
}
