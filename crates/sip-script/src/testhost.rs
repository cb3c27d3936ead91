//! A [`Host`] that records every effect, for tests of the interpreter and of modules.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::abi::{Host, LocalAddr, LocalSocket, LogLevel, Millis, SendError, Source, Stat};
use crate::ast::Proto;

/// One recorded send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub proto: Proto,
    pub dst: SocketAddr,
    pub bytes: Vec<u8>,
}

/// One recorded log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub level: LogLevel,
    pub module: String,
    pub text: String,
}

/// Records sends, logs and sleeps; the clock, random numbers and DNS answer from fields the
/// test sets.
#[derive(Clone, Debug)]
pub struct TestHost {
    pub sent: Vec<Sent>,
    pub logs: Vec<Logged>,
    pub sleeps: Vec<u64>,
    pub now: Millis,
    /// Returned by `random_u32` in turn (then repeated from the start); `[4]` when empty.
    pub randoms: Vec<u32>,
    random_pos: usize,
    pub local: Vec<LocalAddr>,
    /// Name → addresses for `resolve`.
    pub dns: Vec<(String, Vec<IpAddr>)>,
    pub pid: u32,
    pub rank: i32,
    /// Make every `send` fail with this text.
    pub fail_sends: Option<String>,
    /// Statistics counted through `Host::count`, in order.
    pub counted: Vec<Stat>,
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost::new()
    }
}

impl TestHost {
    /// Listening on udp 127.0.0.1:5060, pid 4242, rank 1.
    pub fn new() -> TestHost {
        TestHost {
            sent: Vec::new(),
            logs: Vec::new(),
            sleeps: Vec::new(),
            now: Millis(0),
            randoms: Vec::new(),
            random_pos: 0,
            local: vec![LocalAddr {
                host: "127.0.0.1".into(),
                port: Some(5060),
                proto: Proto::Udp,
            }],
            dns: Vec::new(),
            pid: 4242,
            rank: 1,
            fail_sends: None,
            counted: Vec::new(),
        }
    }

    /// The log texts, in order.
    pub fn log_texts(&self) -> Vec<&str> {
        self.logs.iter().map(|l| l.text.as_str()).collect()
    }

    /// A [`Source`] for a message from `src` received on the default local socket.
    pub fn source(src: SocketAddr) -> Source {
        Source {
            addr: src,
            proto: Proto::Udp,
            local: LocalSocket {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
                proto: Proto::Udp,
                advertise: None,
            },
        }
    }
}

impl Host for TestHost {
    fn send(&mut self, proto: Proto, dst: SocketAddr, bytes: &[u8]) -> Result<(), SendError> {
        if let Some(e) = &self.fail_sends {
            return Err(SendError(e.clone()));
        }
        self.sent.push(Sent {
            proto,
            dst,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn log(&mut self, level: LogLevel, module: &str, text: &str) {
        self.logs.push(Logged {
            level,
            module: module.to_string(),
            text: text.to_string(),
        });
    }

    fn now(&self) -> Millis {
        self.now
    }

    fn random_u32(&mut self) -> u32 {
        if self.randoms.is_empty() {
            return 4; // chosen by fair dice roll; deterministic on purpose
        }
        let v = self.randoms[self.random_pos % self.randoms.len()];
        self.random_pos += 1;
        v
    }

    fn sleep_ms(&mut self, ms: u64) {
        self.sleeps.push(ms);
        self.now = Millis(self.now.0 + ms);
    }

    fn local_addrs(&self) -> &[LocalAddr] {
        &self.local
    }

    fn resolve(&mut self, name: &str) -> Vec<IpAddr> {
        self.dns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn rank(&self) -> i32 {
        self.rank
    }

    fn count(&mut self, stat: Stat) {
        self.counted.push(stat);
    }
}
