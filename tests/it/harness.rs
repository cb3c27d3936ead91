//! Process guards, temp dirs, port picking, generated cfgs, and the running `siplab` under test.
//!
//! Every process a test starts sits in a [`ChildGuard`], whose `Drop` stops it (SIGTERM, up to
//! 3 s, then SIGKILL) and reaps it, also when the test panics.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a started siplab may take until `core.psx` lists all its workers.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Grace period a guard gives a process after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// How many times a start is retried when a picked port was taken meanwhile.
const START_ATTEMPTS: usize = 5;

/// The `siplab` executable cargo built for this test binary.
pub fn siplab_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_siplab"))
}

/// The repository root (the root package's manifest dir).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared dir (`../shared` beside the checkout), or `$SIPLAB_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("SIPLAB_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("..").join("shared"),
    }
}

/// A fresh directory under the system temp dir, removed on drop (kept when the test panics, so
/// the cfg and logs can be read).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "siplab-it-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        if let Err(e) = std::fs::create_dir_all(&path) {
            panic!("cannot create temp dir {}: {e}", path.display());
        }
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: kept {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A started process that is always stopped and reaped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command) -> std::io::Result<ChildGuard> {
        let child = cmd.stdin(Stdio::null()).spawn()?;
        Ok(ChildGuard {
            name: name.to_string(),
            child,
        })
    }

    pub fn pid(&self) -> i32 {
        // Linux pids fit in i32; std hands them out as u32.
        self.child.id() as i32
    }

    /// The exit status if the process has ended (it is reaped then).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `sig` unless the process was already reaped (its pid may be reused then).
    pub fn signal(&mut self, sig: Signal) -> nix::Result<()> {
        if self.try_status().is_some() {
            return Err(nix::errno::Errno::ESRCH);
        }
        kill(Pid::from_raw(self.pid()), sig)
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_status() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL; returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(st) = self.try_status() {
            return Some(st);
        }
        let _ = self.signal(Signal::SIGTERM);
        if let Some(st) = self.wait_timeout(STOP_GRACE) {
            return Some(st);
        }
        eprintln!("{} ignored SIGTERM for {STOP_GRACE:?}: SIGKILL", self.name);
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    sock.local_addr().expect("local addr").port()
}

/// A port `p` such that `p..p+span` were all free a moment ago (SIPp's media ports).
pub fn free_udp_port_range(span: u16) -> u16 {
    for _ in 0..100 {
        let base = free_udp_port();
        if base.checked_add(span).is_none() {
            continue;
        }
        let held: Vec<_> = (1..span)
            .map_while(|i| UdpSocket::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(span - 1) {
            return base;
        }
    }
    panic!("no run of {span} free UDP ports on 127.0.0.1");
}

/// True while something holds the UDP port on 127.0.0.1.
pub fn udp_port_in_use(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// True while a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the `(comm)` field, which may itself hold spaces or ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The request route of the lab's stateless proxy, forwarding everything new to the gateway.
/// `GWPORT` is replaced by the gateway port.
pub const STATELESS_ROUTE: &str = r#"request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check()) { exit; }
    if (has_totag()) {
        if (loose_route()) { if (!forward()) sl_reply_error(); exit; }
        if (is_method("ACK")) { forward(); exit; }
        sl_send_reply("404", "Not here"); exit;
    }
    if (is_method("INVITE")) record_route();
    $du = "sip:127.0.0.1:GWPORT";
    if (!forward()) sl_reply_error();
}
"#;

/// What a generated test cfg holds.
#[derive(Debug, Clone)]
pub struct ProxyCfg {
    pub children: u32,
    pub gateway_port: u16,
    /// Extra global lines (core parameters), e.g. `worker_exit="shutdown"`.
    pub globals: Vec<String>,
    /// The routing blocks; `GWPORT` is replaced by `gateway_port`.
    pub route: String,
    /// Environment variables for the siplab process (debug-build test hooks).
    pub env: Vec<(String, String)>,
}

impl ProxyCfg {
    pub fn stateless(children: u32, gateway_port: u16) -> ProxyCfg {
        ProxyCfg {
            children,
            gateway_port,
            globals: Vec::new(),
            route: STATELESS_ROUTE.to_string(),
            env: Vec::new(),
        }
    }

    /// The cfg text for a proxy listening on `port`.
    pub fn render(&self, port: u16) -> String {
        let mut cfg = format!(
            "#!KAMAILIO\ndebug=2\nlog_stderror=yes\nchildren={}\nlisten=udp:127.0.0.1:{port}\n",
            self.children
        );
        for g in &self.globals {
            cfg.push_str(g);
            cfg.push('\n');
        }
        for m in [
            "sl", "pv", "xlog", "maxfwd", "textops", "siputils", "rr", "sanity",
        ] {
            cfg.push_str(&format!("loadmodule \"{m}.so\"\n"));
        }
        cfg.push_str(&self.route.replace("GWPORT", &self.gateway_port.to_string()));
        cfg
    }
}

/// Why a proxy did not come up.
#[derive(Debug)]
pub enum StartError {
    /// The process ended before it was ready.
    Exited {
        status: ExitStatus,
        log: String,
    },
    /// Still running but `core.psx` never listed all workers.
    NotReady {
        last: String,
        log: String,
    },
    Spawn(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Exited { status, log } => {
                write!(f, "siplab exited before ready ({status}); log:\n{log}")
            }
            StartError::NotReady { last, log } => write!(
                f,
                "siplab not ready within {READY_TIMEOUT:?} (last core.psx: {last}); log:\n{log}"
            ),
            StartError::Spawn(e) => write!(f, "cannot spawn siplab: {e}"),
        }
    }
}

/// A JSON-RPC call that did not give a result.
#[derive(Debug)]
pub enum RpcFailure {
    Io(std::io::Error),
    BadReply(String),
    Error(Value),
}

impl fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcFailure::Io(e) => write!(f, "ctl socket: {e}"),
            RpcFailure::BadReply(s) => write!(f, "ctl reply is not JSON-RPC: {s}"),
            RpcFailure::Error(v) => write!(f, "ctl error: {v}"),
        }
    }
}

/// One JSON-RPC 2.0 call on the ctl unix socket (one line out, one line back).
pub fn rpc(socket: &Path, method: &str, params: Value) -> Result<Value, RpcFailure> {
    let stream = UnixStream::connect(socket).map_err(RpcFailure::Io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(RpcFailure::Io)?;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    (&stream)
        .write_all(format!("{req}\n").as_bytes())
        .map_err(RpcFailure::Io)?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(RpcFailure::Io)?;
    let reply: Value =
        serde_json::from_str(&line).map_err(|_| RpcFailure::BadReply(line.clone()))?;
    if let Some(err) = reply.get("error") {
        return Err(RpcFailure::Error(err.clone()));
    }
    reply
        .get("result")
        .cloned()
        .ok_or(RpcFailure::BadReply(line))
}

/// One row of `core.psx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRow {
    pub idx: i64,
    pub rank: i64,
    pub pid: i32,
    pub dsc: String,
    pub messages: u64,
}

impl ProcRow {
    pub fn is_worker(&self) -> bool {
        self.dsc.starts_with("udp receiver")
    }
}

fn parse_psx(v: &Value) -> Result<Vec<ProcRow>, String> {
    let rows = v
        .as_array()
        .ok_or_else(|| format!("core.psx: not an array: {v}"))?;
    rows.iter()
        .map(|r| {
            let int = |k: &str| {
                r.get(k)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| format!("core.psx row without integer {k}: {r}"))
            };
            Ok(ProcRow {
                idx: int("IDX")?,
                rank: int("RANK")?,
                pid: i32::try_from(int("PID")?).map_err(|_| format!("bad PID in {r}"))?,
                dsc: r
                    .get("DSC")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("core.psx row without DSC: {r}"))?
                    .to_string(),
                messages: u64::try_from(int("MESSAGES")?)
                    .map_err(|_| format!("bad MESSAGES in {r}"))?,
            })
        })
        .collect()
}

/// A running `siplab -DD -E` with its own run dir, cfg, pidfile and log files.
#[derive(Debug)]
pub struct Proxy {
    // Declared first so it is stopped before the dir holding its files goes away.
    child: ChildGuard,
    pub port: u16,
    pub cfg: ProxyCfg,
    pub ctl: PathBuf,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    // Held for its Drop: the cfg, logs and run dir go away with the proxy.
    _dir: TempDir,
}

impl Proxy {
    /// Starts siplab on a fresh port and waits until `core.psx` lists all its workers.
    pub fn start(tag: &str, cfg: ProxyCfg) -> Result<Proxy, StartError> {
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            match Proxy::start_once(tag, &cfg) {
                Ok(p) => return Ok(p),
                // The picked port was taken between picking and binding: pick again.
                Err(StartError::Exited { status, log })
                    if log.contains("cannot bind") || log.contains("in use") =>
                {
                    last_err = Some(StartError::Exited { status, log });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(StartError::NotReady {
            last: String::new(),
            log: String::new(),
        }))
    }

    fn start_once(tag: &str, cfg: &ProxyCfg) -> Result<Proxy, StartError> {
        let dir = TempDir::new(tag);
        let port = free_udp_port();
        let cfg_path = dir.join("siplab.cfg");
        std::fs::write(&cfg_path, cfg.render(port)).map_err(StartError::Spawn)?;
        let run_dir = dir.join("run");
        let pidfile = dir.join("siplab.pid");
        let log = dir.join("siplab.log");
        let err = File::create(&log).map_err(StartError::Spawn)?;
        let out = File::create(dir.join("siplab.out")).map_err(StartError::Spawn)?;
        let mut cmd = Command::new(siplab_bin());
        cmd.arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-m", "32"])
            .arg("-P")
            .arg(&pidfile)
            .arg("--run-dir")
            .arg(&run_dir)
            .stdout(out)
            .stderr(err);
        cmd.envs(cfg.env.iter().map(|(k, v)| (k, v)));
        let child =
            ChildGuard::spawn(&format!("siplab[{tag}]"), &mut cmd).map_err(StartError::Spawn)?;
        let mut proxy = Proxy {
            child,
            port,
            cfg: cfg.clone(),
            ctl: run_dir.join("siplab_ctl"),
            pidfile,
            log,
            _dir: dir,
        };
        proxy.wait_ready()?;
        Ok(proxy)
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last;
        loop {
            if let Some(status) = self.child.try_status() {
                return Err(StartError::Exited {
                    status,
                    log: self.log_text(),
                });
            }
            match self.psx() {
                Ok(rows) => {
                    let workers: Vec<_> = rows.iter().filter(|r| r.is_worker()).collect();
                    if workers.len() == self.cfg.children as usize
                        && workers.iter().all(|w| w.pid > 0 && pid_alive(w.pid))
                    {
                        return Ok(());
                    }
                    last = format!("{rows:?}");
                }
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(StartError::NotReady {
                    last,
                    log: self.log_text(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    pub fn guard(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, RpcFailure> {
        rpc(&self.ctl, method, params)
    }

    pub fn psx(&self) -> Result<Vec<ProcRow>, String> {
        let v = self.rpc("core.psx", json!([])).map_err(|e| e.to_string())?;
        parse_psx(&v)
    }

    /// The worker rows of `core.psx`; panics with the log when ctl does not answer.
    pub fn workers(&self) -> Vec<ProcRow> {
        match self.psx() {
            Ok(rows) => rows.into_iter().filter(ProcRow::is_worker).collect(),
            Err(e) => panic!("core.psx failed: {e}; log:\n{}", self.log_text()),
        }
    }

    /// `stats.get_statistics all` as name → value.
    pub fn stats(&self) -> BTreeMap<String, i64> {
        let v = match self.rpc("stats.get_statistics", json!(["all"])) {
            Ok(v) => v,
            Err(e) => panic!(
                "stats.get_statistics failed: {e}; log:\n{}",
                self.log_text()
            ),
        };
        let mut out = BTreeMap::new();
        for line in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
            if let Some((name, n)) = line.split_once(" = ") {
                if let Ok(n) = n.trim().parse() {
                    out.insert(name.trim().to_string(), n);
                }
            }
        }
        out
    }

    pub fn stat(&self, name: &str) -> i64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    /// Everything siplab wrote to stderr so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

/// Runs `siplab` with `args` to completion (bounded), returning exit code and stdout+stderr.
pub fn run_siplab(args: &[&std::ffi::OsStr], limit: Duration) -> (Option<i32>, String) {
    let dir = TempDir::new("run");
    let out_path = dir.join("out");
    let out = File::create(&out_path).expect("create output file");
    let err = out.try_clone().expect("clone output file");
    let mut cmd = Command::new(siplab_bin());
    cmd.args(args).stdout(out).stderr(err);
    let mut guard = ChildGuard::spawn("siplab", &mut cmd).expect("spawn siplab");
    let status = guard.wait_timeout(limit);
    if status.is_none() {
        guard.stop();
    }
    let text = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned();
    (status.and_then(|s| s.code()), text)
}

#[cfg(test)]
mod checks {
    use super::*;

    fn stubborn_sleeper() -> ChildGuard {
        // Ignores SIGTERM, so only the guard's SIGKILL fallback can end it.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; exec sleep 60"]);
        ChildGuard::spawn("sleeper", &mut cmd).expect("spawn sh")
    }

    #[test]
    fn guard_drop_kills_and_reaps_a_process_that_ignores_sigterm() {
        let guard = stubborn_sleeper();
        let pid = guard.pid();
        assert!(wait_until(Duration::from_secs(5), || pid_alive(pid)));
        drop(guard);
        assert!(!pid_alive(pid), "pid {pid} survived the guard");
    }

    #[test]
    fn guard_reaps_its_process_when_the_test_panics() {
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = std::thread::spawn(move || {
            let mut cmd = Command::new("sleep");
            cmd.arg("60");
            let guard = ChildGuard::spawn("sleep", &mut cmd).expect("spawn sleep");
            tx.send(guard.pid()).expect("send pid");
            panic!("test body fails while the child runs");
        })
        .join();
        assert!(outcome.is_err());
        let pid = rx.recv().expect("pid");
        assert!(!pid_alive(pid), "pid {pid} outlived the panicking test");
    }

    #[test]
    fn guard_reports_the_exit_code_of_a_finished_process() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let mut guard = ChildGuard::spawn("sh", &mut cmd).expect("spawn sh");
        let status = guard.wait_timeout(Duration::from_secs(10)).expect("exits");
        assert_eq!(status.code(), Some(3));
        // Signalling a reaped child must not reach whatever reuses its pid.
        assert_eq!(guard.signal(Signal::SIGTERM), Err(nix::errno::Errno::ESRCH));
    }

    #[test]
    fn picked_ports_are_bindable_and_a_held_port_reads_as_in_use() {
        let base = free_udp_port_range(4);
        let held: Vec<UdpSocket> = (0..4)
            .map(|i| UdpSocket::bind(("127.0.0.1", base + i)).expect("range is free"))
            .collect();
        assert!((0..4).all(|i| udp_port_in_use(base + i)));
        drop(held);
        assert!(!udp_port_in_use(base));
    }

    #[test]
    fn rendered_cfg_listens_on_the_port_and_forwards_to_the_gateway() {
        let mut cfg = ProxyCfg::stateless(3, 5999);
        cfg.globals.push("worker_exit=\"shutdown\"".into());
        let text = cfg.render(5070);
        assert!(text.contains("listen=udp:127.0.0.1:5070\n"));
        assert!(text.contains("children=3\n"));
        assert!(text.contains("worker_exit=\"shutdown\"\n"));
        assert!(text.contains("$du = \"sip:127.0.0.1:5999\";"));
        assert!(!text.contains("GWPORT"));
    }

    #[test]
    fn psx_rows_parse_and_workers_are_told_apart() {
        let v = json!([
            {"IDX": 0, "RANK": 0, "PID": 10, "DSC": "main process - attendant", "START": 1, "MESSAGES": 0},
            {"IDX": 1, "RANK": 1, "PID": 11, "DSC": "udp receiver child=0 sock=127.0.0.1:5060", "START": 1, "MESSAGES": 7},
            {"IDX": 2, "RANK": -1, "PID": 12, "DSC": "timer", "START": 1, "MESSAGES": 0}
        ]);
        let rows = parse_psx(&v).expect("parses");
        let workers: Vec<_> = rows.iter().filter(|r| r.is_worker()).collect();
        assert_eq!(workers.len(), 1);
        assert_eq!(
            (workers[0].rank, workers[0].pid, workers[0].messages),
            (1, 11, 7)
        );
        assert!(parse_psx(&json!([{"IDX": 0}])).is_err());
    }
}
