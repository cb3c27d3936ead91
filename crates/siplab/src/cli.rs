//! Kamailio-compatible command line: a cfg started as `kamailio -f k.cfg -DD -E -n 4` starts
//! siplab with the same flags. Flags siplab has no use for (`-M`, pkg memory) are accepted.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "siplab",
    version,
    about = "A Kamailio-style multi-process SIP proxy for the lab",
    disable_version_flag = true
)]
pub struct Cli {
    /// Configuration file (Kamailio syntax).
    #[arg(short = 'f', value_name = "FILE", default_value = "etc/siplab.cfg")]
    pub cfg: PathBuf,

    /// Check the configuration file and exit.
    #[arg(short = 'c')]
    pub check: bool,

    /// `-D`: do not fork (one worker, foreground); `-DD`: foreground with all workers.
    #[arg(short = 'D', action = clap::ArgAction::Count)]
    pub dont_daemonize: u8,

    /// Log to stderr instead of syslog.
    #[arg(short = 'E')]
    pub log_stderr: bool,

    /// Number of worker processes per listen socket (overrides `children`).
    #[arg(short = 'n', value_name = "N")]
    pub children: Option<u32>,

    /// Listen address (`[udp:]IP[:PORT]`), repeatable; replaces the cfg's `listen` lines.
    #[arg(short = 'l', value_name = "ADDR")]
    pub listen: Vec<String>,

    /// Shared memory size in MiB.
    #[arg(short = 'm', value_name = "MB", default_value_t = 64)]
    pub shm_mb: u32,

    /// Private memory size in MiB (accepted for Kamailio compatibility; unused).
    #[arg(short = 'M', value_name = "MB")]
    pub pkg_mb: Option<u32>,

    /// Define a preprocessor name, `NAME` or `NAME=VALUE`, repeatable.
    #[arg(short = 'A', value_name = "NAME[=VALUE]")]
    pub defines: Vec<String>,

    /// Write the supervisor's pid to this file.
    #[arg(short = 'P', value_name = "PIDFILE")]
    pub pidfile: Option<PathBuf>,

    /// Print the version and exit.
    #[arg(short = 'V')]
    pub version: bool,

    /// Override the cfg's `debug` level.
    #[arg(long = "debug", value_name = "LEVEL", allow_negative_numbers = true)]
    pub debug: Option<i32>,

    /// `kamailio` (default) or `opensips`: which server's behaviour to follow where they differ.
    #[arg(long = "dialect", value_name = "NAME")]
    pub dialect: Option<String>,

    /// Write one JSON line per transaction event to FILE (race timelines).
    #[arg(long = "trace", value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Run directory for the ctl socket `siplab_ctl` (default: /tmp/siplab); also read by `ctl`.
    #[arg(long = "run-dir", value_name = "DIR", global = true)]
    pub run_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Call a JSON-RPC method on a running siplab, e.g. `siplab ctl core.psx`.
    Ctl {
        /// The ctl socket (default: the run directory's `siplab_ctl`).
        #[arg(short = 's', value_name = "SOCKET")]
        socket: Option<PathBuf>,
        /// Method name, e.g. `core.psx`, `stats.get_statistics`.
        method: String,
        /// Positional parameters (numbers are sent as numbers).
        params: Vec<String>,
    },
}

/// How the process tree runs, from `-D` / `-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkMode {
    /// Default: detach from the terminal like Kamailio.
    Daemon,
    /// `-D`: foreground, a single worker handles SIP (Kamailio's `fork=no`).
    NoFork,
    /// `-DD`: foreground, all workers.
    Foreground,
}

impl Cli {
    pub fn fork_mode(&self) -> ForkMode {
        match self.dont_daemonize {
            0 => ForkMode::Daemon,
            1 => ForkMode::NoFork,
            _ => ForkMode::Foreground,
        }
    }

    /// `-A NAME[=VALUE]` split into pairs for the preprocessor.
    pub fn define_pairs(&self) -> Vec<(String, Option<String>)> {
        self.defines
            .iter()
            .map(|d| match d.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (d.clone(), None),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailio_lab_flags_parse() {
        let cli = Cli::try_parse_from([
            "siplab",
            "-f",
            "k.cfg",
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-A",
            "FRT=5000",
            "-A",
            "PROBEMODE",
            "--debug=3",
            "-n",
            "4",
        ])
        .expect("flags Kamailio accepts must parse");
        assert_eq!(cli.fork_mode(), ForkMode::Foreground);
        assert!(cli.log_stderr);
        assert_eq!(cli.children, Some(4));
        assert_eq!(cli.debug, Some(3));
        assert_eq!(
            cli.define_pairs(),
            vec![
                ("FRT".into(), Some("5000".into())),
                ("PROBEMODE".into(), None)
            ]
        );
    }

    #[test]
    fn single_d_means_no_fork() {
        let cli = Cli::try_parse_from(["siplab", "-D", "-c"]).expect("parses");
        assert_eq!(cli.fork_mode(), ForkMode::NoFork);
        assert!(cli.check);
    }

    #[test]
    fn ctl_subcommand_accepts_the_run_dir() {
        let cli = Cli::try_parse_from(["siplab", "--run-dir", "/tmp/x", "ctl", "core.psx"])
            .expect("parses");
        assert_eq!(cli.run_dir.as_deref(), Some(std::path::Path::new("/tmp/x")));
        assert!(matches!(cli.command, Some(Command::Ctl { .. })));
        // Also after the subcommand, where a user who just started `-f X --run-dir D` types it.
        let cli = Cli::try_parse_from(["siplab", "ctl", "--run-dir", "/tmp/y", "core.psx"])
            .expect("parses");
        assert_eq!(cli.run_dir.as_deref(), Some(std::path::Path::new("/tmp/y")));
    }

    #[test]
    fn ctl_subcommand_takes_method_and_params() {
        let cli =
            Cli::try_parse_from(["siplab", "ctl", "stats.get_statistics", "all"]).expect("parses");
        match cli.command {
            Some(Command::Ctl { method, params, .. }) => {
                assert_eq!(method, "stats.get_statistics");
                assert_eq!(params, vec!["all".to_string()]);
            }
            other => panic!("expected ctl, got {other:?}"),
        }
    }
}
