//! The `siplab` executable: CLI, supervisor, workers, timer and ctl processes.
#![forbid(unsafe_code)]

mod app;
mod cli;
mod ctl;
mod host;
mod log;
mod net;
mod supervisor;
mod worker;

use clap::Parser;
use cli::{Cli, Command};
use net::ListenSpec;
use sip_script::abi::{LocalAddr, LocalSocket};
use sip_script::ast::{Host, Proto};
use sip_script::{Config, FsLoader, Runtime, Script};
use std::cell::RefCell;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("siplab {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Ctl {
        socket,
        method,
        params,
    }) = &cli.command
    {
        return ctl_client(&cli, socket.as_deref(), method, params);
    }
    let (cfg, script) = match load_cfg(&cli) {
        Ok(c) => c,
        Err(text) => {
            eprint!("{text}");
            return ExitCode::from(1);
        }
    };
    // The cfg's warnings and the compiler's (module fixups), rendered with file:line:col.
    if !script.warnings.is_empty() {
        eprint!("{}", cfg.render(&script.warnings));
    }
    let listen = match listen_specs(&cli, &cfg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.check {
        eprintln!("config file ok, exiting...");
        return ExitCode::SUCCESS;
    }
    let core = &cfg.core;
    let script: &'static Script = Box::leak(Box::new(script));
    let bodies = Bodies {
        script,
        rt: RefCell::new(None),
        epoch: Instant::now(),
        locals: local_addrs(&listen, &core.aliases),
    };
    // Module init runs once, before fork, with shared memory mapped; every child starts
    // from a copy of this runtime.
    let init = |shared: &'static app::Shared| -> Result<(), String> {
        let mut rt = script.new_runtime();
        rt.set_shm(shared.region);
        script
            .init_modules(&mut rt)
            .map_err(|e| format!("module {} init failed: {}", e.module, e.message))?;
        for w in rt.init_warnings() {
            eprintln!("WARNING: {w}");
        }
        *bodies.rt.borrow_mut() = Some(rt);
        Ok(())
    };
    let start = app::Startup {
        listen,
        children: cli.children.unwrap_or(core.children),
        debug: cli.debug.unwrap_or(core.debug.clamp(-5, 10) as i32),
        log_stderr: cli.log_stderr || core.log_stderror,
        log_facility: log::facility_number(&core.log_facility),
        worker_exit: match core.worker_exit {
            sip_script::core_params::WorkerExit::Respawn => supervisor::WorkerExit::Respawn,
            sip_script::core_params::WorkerExit::Shutdown => supervisor::WorkerExit::Shutdown,
        },
        core_params: core_params_json(&cfg, &cli),
        ctl_socket: ctl_socket_from_cfg(&cfg),
        bodies: &bodies,
        init: &init,
        rpc: module_rpc(script, &bodies.rt),
    };
    ExitCode::from(app::run(&cli, start).clamp(0, 255) as u8)
}

/// The per-role bodies of the children, sharing the compiled script and the runtime that
/// module init prepared before fork (each child works on its own copy of it).
struct Bodies {
    script: &'static Script,
    rt: RefCell<Option<Runtime>>,
    epoch: Instant,
    locals: Vec<LocalAddr>,
}

impl Bodies {
    /// This child's runtime after module `child_init(rank)`; a failure ends the child.
    fn child_runtime(&self, rank: i32) -> Runtime {
        let mut rt = self
            .rt
            .borrow_mut()
            .take()
            .unwrap_or_else(|| self.script.new_runtime());
        child_init_or_exit(self.script, &mut rt, rank);
        rt
    }

    fn host(
        &self,
        sock: &std::net::UdpSocket,
        env: &app::ChildEnv,
        shared: &'static app::Shared,
    ) -> host::WorkerHost {
        let socket = match sock.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log!(
                    log::Level::Crit,
                    "core",
                    "cannot clone the listen socket: {e}"
                );
                sip_shm::os::exit_now(1)
            }
        };
        host::WorkerHost::new(
            socket,
            self.locals.clone(),
            self.epoch,
            env.rank,
            shared,
            env.index,
        )
    }
}

impl app::ChildBodies for Bodies {
    fn worker(
        &self,
        env: &app::ChildEnv,
        sock: &std::net::UdpSocket,
        spec: &ListenSpec,
        shared: &'static app::Shared,
    ) -> Box<dyn app::MessageHandler> {
        let rt = self.child_runtime(env.rank);
        let host = self.host(sock, env, shared);
        let local = LocalSocket {
            addr: spec.addr,
            proto: Proto::Udp,
            advertise: spec.advertise.clone(),
        };
        Box::new(worker::Worker::new(
            self.script,
            rt,
            host,
            local,
            shared,
            env,
        ))
    }

    fn timer(
        &self,
        env: &app::ChildEnv,
        sock: &std::net::UdpSocket,
        shared: &'static app::Shared,
    ) -> Box<dyn FnMut()> {
        let mut rt = self.child_runtime(env.rank);
        let mut host = self.host(sock, env, shared);
        let script = self.script;
        Box::new(move || script.run_timers(&mut rt, &mut host))
    }

    fn timer_hz(&self) -> u32 {
        self.script.core().timer_hz
    }

    fn ctl(&self, env: &app::ChildEnv) {
        // The ctl process keeps its runtime in place: module RPC handlers borrow it.
        let mut guard = self.rt.borrow_mut();
        if let Some(rt) = guard.as_mut() {
            child_init_or_exit(self.script, rt, env.rank);
        }
    }
}

/// Module `child_init(rank)` in a freshly forked child; a child whose modules cannot start
/// leaves at once (the supervisor logs and respawns it, or shuts down).
fn child_init_or_exit(script: &Script, rt: &mut Runtime, rank: i32) {
    if let Err(e) = script.child_init(rt, rank) {
        log!(
            log::Level::Crit,
            "core",
            "module {} child_init failed: {}",
            e.module,
            e.message
        );
        sip_shm::os::exit_now(1);
    }
}

/// Loads, checks and compiles the cfg; every problem is rendered with file:line:col.
fn load_cfg(cli: &Cli) -> Result<(Config, Script), String> {
    let mut cfg =
        sip_script::load(&cli.cfg, &cli.define_pairs(), &FsLoader).map_err(|e| e.render())?;
    if let Some(d) = &cli.dialect {
        cfg.core.dialect = match d.as_str() {
            "kamailio" => sip_script::Dialect::Kamailio,
            "opensips" => sip_script::Dialect::Opensips,
            other => {
                return Err(format!(
                    "ERROR: --dialect {other}: expected kamailio or opensips\n"
                ));
            }
        };
    }
    let script =
        sip_script::compile(&cfg, sip_modules::all_modules()).map_err(|d| cfg.render(&d))?;
    Ok((cfg, script))
}

/// `cfg.get core NAME`: the core parameters in force (cfg values with the CLI's overrides).
fn core_params_json(cfg: &Config, cli: &Cli) -> serde_json::Value {
    let c = &cfg.core;
    serde_json::json!({
        "children": cli.children.unwrap_or(c.children),
        "debug": cli.debug.map_or(c.debug, i64::from),
        "log_stderror": i32::from(cli.log_stderr || c.log_stderror),
        "log_facility": c.log_facility,
        "log_prefix": c.log_prefix,
        "fork": i32::from(c.fork),
        "dialect": match c.dialect {
            sip_script::Dialect::Kamailio => "kamailio",
            sip_script::Dialect::Opensips => "opensips",
        },
        "max_branches": c.max_branches,
        "timer_hz": c.timer_hz,
        "worker_exit": match c.worker_exit {
            sip_script::core_params::WorkerExit::Respawn => "respawn",
            sip_script::core_params::WorkerExit::Shutdown => "shutdown",
        },
        "disable_tcp": i32::from(c.disable_tcp),
        "auto_aliases": i32::from(c.auto_aliases),
        "alias": c.aliases,
        "server_signature": i32::from(c.server_signature),
        "shm_mb": cli.shm_mb,
    })
}

/// `modparam("ctl", "binrpc", "unix:PATH")` (Kamailio's ctl socket) names siplab's ctl socket
/// too, unless `--run-dir` is given.
fn ctl_socket_from_cfg(cfg: &Config) -> Option<std::path::PathBuf> {
    cfg.modparams.iter().rev().find_map(|m| match &m.value {
        sip_script::ModParamValue::Str(v) if m.module == "ctl" && m.name == "binrpc" => {
            v.strip_prefix("unix:").map(std::path::PathBuf::from)
        }
        _ => None,
    })
}

/// Module RPC exports for the ctl process, run against that process's copy of the runtime.
fn module_rpc<'a>(
    script: &'static Script,
    rt: &'a RefCell<Option<Runtime>>,
) -> Vec<(String, app::ExtraRpc<'a>)> {
    let mut out: Vec<(String, app::ExtraRpc<'a>)> = Vec::new();
    for m in script.modules() {
        for export in m.exports.rpc {
            let handler = export.handler;
            let f = move |_: &app::Shared, params: &[serde_json::Value]| {
                let mut guard = rt.borrow_mut();
                let Some(rt) = guard.as_mut() else {
                    return Err(ctl::RpcError {
                        code: -32000,
                        message: "runtime not available".into(),
                    });
                };
                handler(rt, &serde_json::Value::Array(params.to_vec())).map_err(|e| ctl::RpcError {
                    code: i64::from(e.code),
                    message: e.message,
                })
            };
            out.push((export.name.to_string(), Box::new(f)));
        }
    }
    out
}

/// Every listen address (and alias) is `myself`.
fn local_addrs(listen: &[ListenSpec], aliases: &[String]) -> Vec<LocalAddr> {
    let mut out: Vec<LocalAddr> = listen
        .iter()
        .flat_map(|l| {
            let own = LocalAddr {
                host: l.addr.ip().to_string(),
                port: Some(l.addr.port()),
                proto: Proto::Udp,
            };
            let adv = l.advertise.as_ref().map(|(h, p)| LocalAddr {
                host: h.trim_start_matches('[').trim_end_matches(']').to_string(),
                port: Some(*p),
                proto: Proto::Udp,
            });
            std::iter::once(own).chain(adv)
        })
        .collect();
    for a in aliases {
        let (host, port) = match a.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && !h.ends_with(':') => {
                (h.to_string(), p.parse().ok())
            }
            _ => (a.clone(), None),
        };
        out.push(LocalAddr {
            host,
            port,
            proto: Proto::Udp,
        });
    }
    out
}

/// `-l` replaces the cfg's listen lines; non-UDP listeners are skipped with a warning.
fn listen_specs(cli: &Cli, cfg: &Config) -> Result<Vec<ListenSpec>, String> {
    if !cli.listen.is_empty() {
        return cli
            .listen
            .iter()
            .map(|l| ListenSpec::parse(l).map_err(|e| e.to_string()))
            .collect();
    }
    let mut out = Vec::new();
    for l in &cfg.core.listen {
        if l.proto != Proto::Udp {
            eprintln!(
                "WARNING: listen {:?} {} skipped: siplab serves UDP only",
                l.proto, l.host
            );
            continue;
        }
        let Host::Ip(ip) = &l.host else {
            return Err(format!(
                "listen `{}`: siplab needs an IP address, not a host name",
                l.host
            ));
        };
        let port = l.port.or(cfg.core.port).unwrap_or(5060);
        let advertise = l
            .advertise
            .as_ref()
            .map(|(h, p)| (h.to_string(), p.unwrap_or(port)));
        out.push(ListenSpec {
            addr: std::net::SocketAddr::new(*ip, port),
            advertise,
        });
    }
    if out.is_empty() {
        let port = cfg.core.port.unwrap_or(5060);
        out.push(ListenSpec {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            advertise: None,
        });
    }
    Ok(out)
}

fn ctl_client(
    cli: &Cli,
    socket: Option<&std::path::Path>,
    method: &str,
    params: &[String],
) -> ExitCode {
    let path = socket
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| app::ctl_socket_path(cli.run_dir.as_deref()));
    match ctl::call(&path, method, ctl::cli_params(params)) {
        Ok(resp) => {
            if let Some(err) = resp.get("error") {
                eprintln!(
                    "error: {}",
                    err.get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("unknown error")
                );
                return ExitCode::from(1);
            }
            let result = resp
                .get("result")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            println!(
                "{}",
                serde_json::to_string_pretty(&result).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot reach {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}
