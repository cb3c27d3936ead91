//! Start-up in Kamailio's order: load and check the cfg (every error before any fork), map
//! shared memory, bind every listen socket, then fork workers, the timer and the ctl process,
//! and leave the supervisor waiting for signals.

use crate::cli::{Cli, ForkMode};
use crate::ctl::{RpcError, RpcRegistry};
use crate::log::{self, Level};
use crate::net::{ListenSpec, bind_udp};
use crate::supervisor::{ChildSlot, Exit, Role, Supervisor, WorkerExit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::Pid;
use serde_json::{Value, json};
use sip_shm::os::{Forked, exit_now, fork};
use sip_shm::{CounterId, Counters, ProcRole, ProcessTable, Region};
use std::net::UdpSocket;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Shared state every process reaches: the region and the structures at its directory slots.
pub struct Shared {
    pub region: &'static Region,
    pub procs: ProcessTable<'static>,
    pub counters: Counters<'static>,
    pub stats: CoreStats,
}

/// Kamailio's core statistics names (`stats.get_statistics all` shows `core:NAME = N`).
#[derive(Debug, Clone, Copy)]
pub struct CoreStats {
    pub rcv_requests: CounterId,
    pub rcv_replies: CounterId,
    pub fwd_requests: CounterId,
    pub fwd_replies: CounterId,
    pub drop_requests: CounterId,
    pub drop_replies: CounterId,
    pub err_requests: CounterId,
    pub err_replies: CounterId,
    pub sent_replies: CounterId,
    pub sent_err_replies: CounterId,
    /// Datagrams whose handling panicked (a bug); the worker survived them.
    pub worker_panics: CounterId,
}

impl CoreStats {
    /// The counter of a statistic a module reports through `Host::count`.
    pub fn module_stat(&self, stat: sip_script::Stat) -> CounterId {
        match stat {
            sip_script::Stat::FwdRequests => self.fwd_requests,
            sip_script::Stat::SlSentReplies => self.sent_replies,
            sip_script::Stat::SlSentErrReplies => self.sent_err_replies,
        }
    }

    fn register(c: &Counters<'_>) -> Result<CoreStats, sip_shm::ShmError> {
        Ok(CoreStats {
            rcv_requests: c.register("core:rcv_requests")?,
            rcv_replies: c.register("core:rcv_replies")?,
            fwd_requests: c.register("core:fwd_requests")?,
            fwd_replies: c.register("core:fwd_replies")?,
            drop_requests: c.register("core:drop_requests")?,
            drop_replies: c.register("core:drop_replies")?,
            err_requests: c.register("core:err_requests")?,
            err_replies: c.register("core:err_replies")?,
            sent_replies: c.register("sl:sent_replies")?,
            sent_err_replies: c.register("sl:sent_err_replies")?,
            worker_panics: c.register("core:worker_panics")?,
        })
    }
}

/// Capacity of the process table: workers × sockets + timer + ctl + main, with room to spare.
const MAX_PROCS: usize = 256;

/// Everything a forked child needs to know about itself.
#[derive(Clone)]
pub struct ChildEnv {
    pub index: usize,
    pub rank: i32,
    pub role: Role,
    /// `core.psx`'s description, also the process title.
    pub description: String,
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn create_shared(shm_mb: u32) -> Result<Shared, String> {
    let size = (shm_mb as usize)
        .saturating_mul(1 << 20)
        .min(sip_shm::MAX_REGION_SIZE);
    let region = Region::shared(size)
        .map_err(|e| format!("cannot map {shm_mb} MiB of shared memory: {e}"))?;
    // The region lives as long as the process; children inherit the mapping.
    let region: &'static Region = Box::leak(Box::new(region));
    let procs =
        ProcessTable::create(region, MAX_PROCS).map_err(|e| format!("process table: {e}"))?;
    let counters = Counters::create(region, MAX_PROCS).map_err(|e| format!("counters: {e}"))?;
    let stats = CoreStats::register(&counters).map_err(|e| format!("counters: {e}"))?;
    Ok(Shared {
        region,
        procs,
        counters,
        stats,
    })
}

/// The run directory's ctl socket path.
pub fn ctl_socket_path(run_dir: Option<&Path>) -> PathBuf {
    let dir = run_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/tmp/siplab"));
    dir.join("siplab_ctl")
}

fn bind_ctl(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create run directory {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "ctl socket {} is in use: is another siplab running? (use --run-dir)",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path).map_err(|e| format!("cannot bind ctl socket {}: {e}", path.display()))
}

/// A worker's per-message handler; built once per process after fork.
pub trait MessageHandler {
    fn handle(&mut self, data: &[u8], src: std::net::SocketAddr);
}

/// What each kind of child runs, built in the child after fork (where module `child_init`
/// runs first, with the child's copy of the runtime initialised before fork).
pub trait ChildBodies {
    /// A worker's per-message handler for one listen socket.
    fn worker(
        &self,
        env: &ChildEnv,
        sock: &UdpSocket,
        spec: &ListenSpec,
        shared: &'static Shared,
    ) -> Box<dyn MessageHandler>;
    /// The timer process's work for one tick (`timer_hz` per second).
    fn timer(&self, env: &ChildEnv, sock: &UdpSocket, shared: &'static Shared) -> Box<dyn FnMut()>;
    /// Timer ticks per second: the cfg's `timer_hz` core parameter (siplab extension;
    /// Kamailio's fixed 16 by default).
    fn timer_hz(&self) -> u32 {
        sip_script::core_params::DEFAULT_TIMER_HZ
    }
    /// The ctl process's module `child_init`.
    fn ctl(&self, env: &ChildEnv);
}

/// Module init before fork, once shared memory exists (Kamailio's `mod_init` order).
pub type InitFn<'a> = dyn Fn(&'static Shared) -> Result<(), String> + 'a;

/// A ctl method added by the caller (module RPC exports).
pub type ExtraRpc<'a> = Box<dyn Fn(&Shared, &[Value]) -> Result<Value, RpcError> + 'a>;

/// What `run` needs beyond the CLI: the loaded cfg's core parameters and the per-message logic.
pub struct Startup<'a> {
    pub listen: Vec<ListenSpec>,
    pub children: u32,
    pub debug: i32,
    pub log_stderr: bool,
    pub log_facility: u8,
    pub worker_exit: WorkerExit,
    /// `cfg.get core NAME` answers from this object.
    pub core_params: Value,
    /// The ctl socket when the cfg names one and `--run-dir` does not override it.
    pub ctl_socket: Option<PathBuf>,
    pub bodies: &'a dyn ChildBodies,
    pub init: &'a InitFn<'a>,
    /// Extra ctl methods from modules.
    pub rpc: Vec<(String, ExtraRpc<'a>)>,
}

/// Runs the proxy until SIGTERM/SIGINT; returns the process exit code.
pub fn run(cli: &Cli, start: Startup<'_>) -> i32 {
    // 1. Shared memory and sockets, before any fork.
    let shared = match create_shared(cli.shm_mb) {
        Ok(s) => s,
        Err(e) => return fatal(&e),
    };
    let mut sockets = Vec::new();
    for spec in &start.listen {
        match bind_udp(spec) {
            Ok(s) => sockets.push(s),
            Err(e) => return fatal(&format!("cannot bind udp:{}: {e}", spec.addr)),
        }
    }
    let ctl_path = match (&cli.run_dir, &start.ctl_socket) {
        (None, Some(p)) => p.clone(),
        _ => ctl_socket_path(cli.run_dir.as_deref()),
    };
    let ctl_listener = match bind_ctl(&ctl_path) {
        Ok(l) => l,
        Err(e) => return fatal(&e),
    };
    // Children inherit the mapping; the supervisor keeps it until it exits.
    let shared: &'static Shared = Box::leak(Box::new(shared));
    // Module init (mod_init) sees shared memory; its errors still come before any fork.
    if let Err(e) = (start.init)(shared) {
        let _ = std::fs::remove_file(&ctl_path);
        return fatal(&e);
    }

    // 2. Detach like Kamailio unless -D/-DD; the pidfile gets the final supervisor pid.
    if cli.fork_mode() == ForkMode::Daemon {
        if let Err(e) = daemonize(start.log_stderr) {
            return fatal(&format!("cannot daemonize: {e}"));
        }
    }
    log::init(0, start.debug, start.log_stderr, start.log_facility);
    let pidfile = cli.pidfile.clone();
    if let Some(p) = &pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            return fatal(&format!("cannot write pidfile {}: {e}", p.display()));
        }
    }

    // 3. Signals are taken synchronously by the supervisor; block them before forking.
    let _ = sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&crate::supervisor::supervisor_sigset()),
        None,
    );
    let started = now_unix();
    let _ = shared.procs.set(
        0,
        0,
        std::process::id() as i32,
        ProcRole::Main,
        "main process - attendant",
        started,
    );

    let workers = if cli.fork_mode() == ForkMode::NoFork {
        1
    } else {
        start.children.max(1)
    };
    let mut slots = Vec::new();
    let mut rank = 0;
    for (si, spec) in start.listen.iter().enumerate() {
        for child in 1..=workers {
            rank += 1;
            slots.push(ChildSlot::new(
                rank,
                Role::Worker { socket: si, child },
                format!("udp receiver child={} sock={}", child - 1, spec.addr),
            ));
        }
    }
    slots.push(ChildSlot::new(-1, Role::Timer, "timer".into()));
    slots.push(ChildSlot::new(-2, Role::Ctl, "ctl handler".into()));

    let mut rpc = RpcRegistry::default();
    register_core_rpc(&mut rpc, shared, started, start.core_params);
    for (name, f) in start.rpc {
        rpc.register(&name, move |p| f(shared, p));
    }

    let bodies = start.bodies;
    let listen = start.listen.clone();
    let (debug, to_stderr, facility) = (start.debug, start.log_stderr, start.log_facility);
    let index_of = |slot: &ChildSlot, all: &[ChildSlot]| {
        all.iter()
            .position(|s| s.rank == slot.rank)
            .map(|i| i + 1)
            .unwrap_or(0)
    };
    let slot_list = slots.clone();
    let spawn = |slot: &ChildSlot| -> nix::Result<Pid> {
        match fork()? {
            Forked::Parent { child } => Ok(child),
            Forked::Child => {
                let env = ChildEnv {
                    index: index_of(slot, &slot_list),
                    rank: slot.rank,
                    role: slot.role.clone(),
                    description: slot.description.clone(),
                };
                child_main(
                    &env,
                    shared,
                    &sockets,
                    &listen,
                    &ctl_listener,
                    &rpc,
                    bodies,
                    (debug, to_stderr, facility),
                )
            }
        }
    };
    let procs = &shared.procs;
    let on_spawn_slots = slots.clone();
    let on_spawn = Box::new(move |slot: &ChildSlot| {
        let idx = index_of(slot, &on_spawn_slots);
        let pid = slot.pid.map(|p| p.as_raw()).unwrap_or(0);
        let role = match slot.role {
            Role::Worker { .. } => ProcRole::Worker,
            Role::Timer => ProcRole::Timer,
            Role::Ctl => ProcRole::Ctl,
        };
        let _ = procs.set(idx, slot.rank, pid, role, &slot.description, now_unix());
    });
    let mut sup = Supervisor {
        children: slots,
        worker_exit: start.worker_exit,
        spawn,
        on_spawn,
    };
    if let Err(e) = sup.start_all() {
        cleanup(pidfile.as_deref(), &ctl_path);
        return fatal(&format!("cannot fork: {e}"));
    }
    crate::log!(
        Level::Info,
        "core",
        "siplab started: {} worker(s) per socket on {}",
        workers,
        start
            .listen
            .iter()
            .map(|l| l.addr.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let exit = sup.run();
    cleanup(pidfile.as_deref(), &ctl_path);
    match exit {
        Exit::Requested => {
            crate::log!(Level::Notice, "core", "Thank you for flying siplab!!!");
            0
        }
        Exit::ChildDied => 1,
    }
}

fn cleanup(pidfile: Option<&Path>, ctl: &Path) {
    if let Some(p) = pidfile {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_file(ctl);
}

fn fatal(msg: &str) -> i32 {
    eprintln!("ERROR: {msg}");
    1
}

/// The body of every child; never returns.
#[allow(clippy::too_many_arguments)]
fn child_main(
    env: &ChildEnv,
    shared: &'static Shared,
    sockets: &[UdpSocket],
    listen: &[ListenSpec],
    ctl: &UnixListener,
    rpc: &RpcRegistry<'_>,
    bodies: &dyn ChildBodies,
    (debug, to_stderr, facility): (i32, bool, u8),
) -> ! {
    // Die with the supervisor, take default signal behaviour again.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    log::init(env.rank, debug, to_stderr, facility);
    sip_shm::os::set_process_title(&format!("siplab: {}", env.description));
    match env.role {
        Role::Worker { socket, .. } => {
            let (Some(sock), Some(spec)) = (sockets.get(socket), listen.get(socket)) else {
                exit_now(1)
            };
            let mut h = bodies.worker(env, sock, spec, shared);
            let mut buf = vec![0u8; 65535];
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, src)) => {
                        if let Some(data) = buf.get(..n) {
                            // A bug reached from one datagram must not cost this worker its
                            // other calls: the panic unwinds (shm guards unlock on drop, tm's
                            // state is copy-on-write), is counted, and the worker goes on.
                            let handled =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    h.handle(data, src)
                                }));
                            if handled.is_err() {
                                let _ = shared.counters.inc(env.index, shared.stats.worker_panics);
                                crate::log!(
                                    Level::Crit,
                                    "core",
                                    "a {n}-byte datagram from {src} hit a bug and was dropped"
                                );
                            }
                        }
                        let _ = shared.procs.add_messages(env.index, 1);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        crate::log!(Level::Err, "core", "recvfrom failed: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
            }
        }
        Role::Ctl => {
            bodies.ctl(env);
            rpc.serve(ctl)
        }
        Role::Timer => {
            let Some(sock) = sockets.first() else {
                exit_now(1)
            };
            let mut tick = bodies.timer(env, sock, shared);
            // `timer_hz` ticks/s (Kamailio's 16 by default). Deadlines advance by a fixed
            // step so a slow tick does not make the clock drift.
            let hz = bodies.timer_hz().clamp(4, 1000);
            let step = std::time::Duration::from_nanos(1_000_000_000 / u64::from(hz));
            let mut next = std::time::Instant::now() + step;
            loop {
                let now = std::time::Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                tick();
                next += step;
                if next + step * hz < std::time::Instant::now() {
                    // Far behind (stopped or overloaded): skip ticks rather than burst.
                    next = std::time::Instant::now() + step;
                }
            }
        }
    }
}

fn register_core_rpc(rpc: &mut RpcRegistry<'_>, shared: &Shared, started: u64, core_params: Value) {
    let region = shared.region;
    rpc.register("core.version", |_| {
        Ok(json!(format!("siplab {}", env!("CARGO_PKG_VERSION"))))
    });
    rpc.register("core.uptime", move |_| {
        let now = now_unix();
        Ok(json!({"now": now, "up_since": started, "uptime": now.saturating_sub(started)}))
    });
    rpc.register("core.psx", move |_| {
        let procs = ProcessTable::open(region).map_err(internal)?;
        let list: Vec<Value> = procs
            .entries()
            .map_err(internal)?
            .into_iter()
            .map(|e| {
                json!({"IDX": e.index, "RANK": e.rank, "PID": e.pid, "DSC": e.description,
                       "START": e.start_time, "MESSAGES": e.messages})
            })
            .collect();
        Ok(Value::Array(list))
    });
    rpc.register("core.shmmem", move |_| {
        let s = region.stats();
        Ok(
            json!({"total": s.total, "free": s.free, "used": s.used, "real_used": s.real_used,
                  "max_used": s.max_used, "fragments": s.fragments}),
        )
    });
    rpc.register("stats.get_statistics", move |params| {
        let counters = Counters::open(region).map_err(internal)?;
        let want: Vec<String> = params
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let all = want.is_empty() || want.iter().any(|w| w == "all");
        let lines: Vec<Value> = counters
            .snapshot()
            .map_err(internal)?
            .into_iter()
            .filter(|(name, _)| {
                all || want.iter().any(|w| {
                    name == w
                        || name
                            .split_once(':')
                            .is_some_and(|(g, n)| g == w.trim_end_matches(':') || n == w)
                })
            })
            .map(|(name, v)| json!(format!("{name} = {v}")))
            .collect();
        Ok(Value::Array(lines))
    });
    rpc.register("cfg.get", move |p| {
        let group = p.first().and_then(Value::as_str).unwrap_or("core");
        if group != "core" {
            return Err(RpcError {
                code: -32602,
                message: format!("unknown cfg group `{group}`"),
            });
        }
        match p.get(1).and_then(Value::as_str) {
            None => Ok(core_params.clone()),
            Some(name) => core_params.get(name).cloned().ok_or_else(|| RpcError {
                code: -32602,
                message: format!("unknown core parameter `{name}`"),
            }),
        }
    });
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError {
        code: -32000,
        message: e.to_string(),
    }
}

/// Classic double fork; stdio goes to /dev/null unless logging to stderr.
fn daemonize(keep_stderr: bool) -> nix::Result<()> {
    match fork()? {
        Forked::Parent { .. } => exit_now(0),
        Forked::Child => {}
    }
    nix::unistd::setsid()?;
    match fork()? {
        Forked::Parent { .. } => exit_now(0),
        Forked::Child => {}
    }
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        if !keep_stderr {
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }
    Ok(())
}
