//! Kamailio-shaped log lines: ` <rank>(<pid>) LEVEL: <module> text`.
//!
//! One logger per process, set up after fork so every line carries the writer's rank and pid.
//! Lines go to stderr (`-E` / `log_stderror=yes`) or to syslog through `/dev/log`; each line is
//! written with one `write` so lines from different workers do not interleave.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

/// Kamailio's levels, shared with the script runtime (`xlog`): one type on both sides.
pub use sip_script::abi::LogLevel as Level;

/// Syslog severity for the `<PRI>` field.
fn syslog_severity(level: Level) -> u8 {
    match level {
        Level::Alert => 1,
        Level::Bug | Level::Crit => 2,
        Level::Err => 3,
        Level::Warn => 4,
        Level::Notice => 5,
        Level::Info => 6,
        Level::Dbg => 7,
    }
}

enum Sink {
    Stderr,
    Syslog {
        sock: Option<UnixDatagram>,
        facility: u8,
    },
}

struct Logger {
    rank: i32,
    pid: u32,
    max: i32,
    sink: Sink,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Syslog facility number from Kamailio's `log_facility` names.
pub fn facility_number(name: &str) -> u8 {
    // The cfg check accepts only syslog(3) names; DAEMON for anything else (e.g. a default).
    sip_script::core_params::facility_code(name).unwrap_or(3)
}

/// (Re)initialise the process logger; called in the supervisor and again in each child.
pub fn init(rank: i32, max_level: i32, to_stderr: bool, facility: u8) {
    let sink = if to_stderr {
        Sink::Stderr
    } else {
        let sock = UnixDatagram::unbound()
            .ok()
            .filter(|s| s.connect("/dev/log").is_ok());
        Sink::Syslog { sock, facility }
    };
    let logger = Logger {
        rank,
        pid: std::process::id(),
        max: max_level,
        sink,
    };
    if let Ok(mut g) = LOGGER.lock() {
        *g = Some(logger);
    }
}

/// Is a line at `level` going to be written?
pub fn enabled(level: Level) -> bool {
    LOGGER
        .lock()
        .ok()
        .and_then(|g| g.as_ref().map(|l| (level as i32) <= l.max))
        .unwrap_or(level <= Level::Warn)
}

/// Write one line. `module` is Kamailio's `<core>`, `<tm>`, `<script>` tag.
pub fn write(level: Level, module: &str, text: &str) {
    write_prefixed(level, "", module, text);
}

/// [`write`] with the cfg's `log_prefix` text between the level and `<module>`, where
/// Kamailio prints it.
pub fn write_prefixed(level: Level, prefix: &str, module: &str, text: &str) {
    let Ok(mut guard) = LOGGER.lock() else { return };
    let Some(l) = guard.as_mut() else {
        eprintln!(
            " 0({}) {}: {prefix}<{}> {}",
            std::process::id(),
            level.label(),
            module,
            text.trim_end()
        );
        return;
    };
    if (level as i32) > l.max {
        return;
    }
    let line = format_line(l.rank, l.pid, level, prefix, module, text);
    match &l.sink {
        Sink::Stderr => {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Sink::Syslog { sock, facility } => {
            let pri = u32::from(*facility) * 8 + u32::from(syslog_severity(level));
            let msg = format!("<{pri}>siplab[{}]:{}", l.pid, line.trim_end());
            match sock {
                Some(s) => {
                    let _ = s.send(msg.as_bytes());
                }
                None => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
            }
        }
    }
}

/// One line as Kamailio prints it: ` 1(123) INFO: <script>: text` for the script's xlog,
/// ` 0(123) NOTICE: <core> text` for everything else.
fn format_line(
    rank: i32,
    pid: u32,
    level: Level,
    prefix: &str,
    module: &str,
    text: &str,
) -> String {
    let text = text.trim_end_matches('\n');
    let sep = if module == "script" { ":" } else { "" };
    format!(
        " {rank}({pid}) {}: {prefix}<{module}>{sep} {text}\n",
        level.label()
    )
}

/// `log!(Level::Info, "core", "listening on {}", addr)`
#[macro_export]
macro_rules! log {
    ($lvl:expr, $module:expr, $($arg:tt)+) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write($lvl, $module, &format!($($arg)+));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlog_lines_have_kamailios_shape() {
        assert_eq!(
            format_line(1, 42, Level::Info, "", "script", "REQ INVITE\n"),
            " 1(42) INFO: <script>: REQ INVITE\n"
        );
        assert_eq!(
            format_line(0, 7, Level::Notice, "", "core", "started"),
            " 0(7) NOTICE: <core> started\n"
        );
        // Kamailio: `log_prefix="{$mt $hdr(CSeq) $ci} "` → `INFO: {1 1 OPTIONS cid1} <script>: hello`.
        assert_eq!(
            format_line(
                2,
                9,
                Level::Info,
                "{1 1 OPTIONS cid1} ",
                "script",
                "hello\n"
            ),
            " 2(9) INFO: {1 1 OPTIONS cid1} <script>: hello\n"
        );
    }

    #[test]
    fn kamailio_levels_order_and_syslog_severity() {
        assert!(Level::Err < Level::Warn && Level::Info < Level::Dbg);
        assert_eq!(syslog_severity(Level::Err), 3);
        assert_eq!(facility_number("log_local0"), 16);
        assert_eq!(facility_number("LOG_AUTH"), 4);
        assert_eq!(facility_number("LOG_CRON"), 9);
    }
}
