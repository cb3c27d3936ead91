//! What a worker does with one datagram, as Kamailio's `receive_msg`: parse; a broken
//! request gets the status its error carries (statelessly) or is dropped and counted; a
//! request runs `request_route` and then the modules' end-of-script hooks (tm's delayed error
//! reply); a reply runs the core `reply_route` (if any), then the modules' reply hooks (tm
//! takes the replies of its transactions), and what nobody takes is forwarded statelessly
//! along its second Via.

use crate::app::{ChildEnv, MessageHandler, Shared};
use crate::host::WorkerHost;
use crate::log::Level;
use sip_msg::{Message, Method};
use sip_script::abi::{Ctx, Host, LocalSocket, Proto, ReplyDisposition, Source};
use sip_script::{Outcome, RouteKind, Runtime, Script};
use std::net::SocketAddr;

pub struct Worker {
    script: &'static Script,
    rt: Runtime,
    host: WorkerHost,
    local: LocalSocket,
    shared: &'static Shared,
    /// This process's row in the counters and process table.
    index: usize,
    has_reply_route: bool,
    /// The receiving socket's address as sl seeds its To-tags with (formatted once).
    tag_seed: String,
    /// Debug builds only: a datagram containing this text panics (`SIPLAB_PANIC_ON`), so the
    /// integration tests can show that a bug in one message does not take the worker down.
    #[cfg(debug_assertions)]
    panic_on: Option<Vec<u8>>,
}

impl Worker {
    pub fn new(
        script: &'static Script,
        rt: Runtime,
        host: WorkerHost,
        local: LocalSocket,
        shared: &'static Shared,
        env: &ChildEnv,
    ) -> Worker {
        let has_reply_route = script.route_id(RouteKind::Reply, None).is_some();
        let tag_seed = local.addr.to_string();
        Worker {
            script,
            rt,
            host,
            local,
            shared,
            index: env.index,
            has_reply_route,
            tag_seed,
            #[cfg(debug_assertions)]
            panic_on: std::env::var_os("SIPLAB_PANIC_ON")
                .map(|v| v.into_encoded_bytes())
                .filter(|v| !v.is_empty()),
        }
    }

    fn count(&self, id: sip_shm::CounterId) {
        let _ = self.shared.counters.inc(self.index, id);
    }

    fn source(&self, src: SocketAddr) -> Source {
        Source {
            addr: src,
            proto: Proto::Udp,
            local: self.local.clone(),
        }
    }

    /// A request that cannot be routed: answer with its error's status when the headers a
    /// reply needs are usable, else drop. Both are counted as `err_requests`.
    fn reject(&mut self, msg: &Message, status: u16, why: &str, src: SocketAddr) {
        self.count(self.shared.stats.err_requests);
        match sip_modules::core::error_reply(msg, status, &self.tag_seed) {
            Some(bytes) => {
                crate::log!(
                    Level::Info,
                    "core",
                    "bad request from {src}: {why}; replying {status}"
                );
                let _ = self.host.send(Proto::Udp, src, &bytes);
            }
            None => crate::log!(
                Level::Info,
                "core",
                "bad request from {src}: {why}; dropped"
            ),
        }
    }

    fn handle_request(&mut self, msg: &Message, src: SocketAddr) {
        self.count(self.shared.stats.rcv_requests);
        if let Err(e) = msg.validate() {
            self.reject(msg, e.status(), &e.to_string(), src);
            return;
        }
        // Kamailio's sl_filter_ACK: the ACK to a reply we generated statelessly ends here.
        if msg.method() == Some(Method::Ack)
            && sip_modules::sl::is_ack_to_local_reply(msg, &self.tag_seed)
        {
            return;
        }
        let source = self.source(src);
        let mut ctx = Ctx::new(
            &mut self.rt,
            &mut self.host,
            msg,
            source,
            RouteKind::Request,
        );
        ctx.set_script(self.script);
        let dropped = match self.script.run_request(&mut ctx) {
            Outcome::Exit { drop, .. } => drop,
            Outcome::Error(e) => {
                crate::log!(Level::Err, "core", "request_route failed: {e}");
                true
            }
        };
        // Kamailio's POST_SCRIPT callbacks (tm's delayed error reply and release).
        self.script.run_post_script(&mut ctx);
        if dropped {
            self.count(self.shared.stats.drop_requests);
        }
    }

    fn handle_reply(&mut self, msg: &Message, src: SocketAddr) {
        self.count(self.shared.stats.rcv_replies);
        // Kamailio drops a reply whose top Via is not ours ("host in first via != me").
        if !self.top_via_is_ours(msg) {
            self.count(self.shared.stats.drop_replies);
            crate::log!(
                Level::Dbg,
                "core",
                "reply from {src} dropped: first Via is not ours"
            );
            return;
        }
        let source = self.source(src);
        let mut ctx = Ctx::new(&mut self.rt, &mut self.host, msg, source, RouteKind::Reply);
        ctx.set_script(self.script);
        if self.has_reply_route {
            match self.script.run_named(RouteKind::Reply, None, &mut ctx) {
                Some(Outcome::Exit { drop: true, .. }) | Some(Outcome::Exit { ret: 0, .. }) => {
                    self.count(self.shared.stats.drop_replies);
                    return;
                }
                Some(Outcome::Error(e)) => {
                    crate::log!(Level::Err, "core", "reply_route failed: {e}")
                }
                _ => {}
            }
        }
        // tm takes the replies of its transactions; the rest go on statelessly.
        if self.script.run_reply_hooks(&mut ctx) == ReplyDisposition::Consumed {
            return;
        }
        drop(ctx);
        match sip_modules::core::forward_reply(msg) {
            Ok((host, port, bytes)) => {
                let Some(dst) = self.resolve(&host, port) else {
                    self.count(self.shared.stats.drop_replies);
                    crate::log!(
                        Level::Info,
                        "core",
                        "reply for {host}:{port} dropped: cannot resolve"
                    );
                    return;
                };
                match self.host.send_raw(dst, &bytes) {
                    Ok(()) => self.count(self.shared.stats.fwd_replies),
                    Err(e) => {
                        self.count(self.shared.stats.drop_replies);
                        crate::log!(Level::Info, "core", "reply not forwarded: {e}");
                    }
                }
            }
            Err(e) => {
                self.count(self.shared.stats.drop_replies);
                crate::log!(Level::Dbg, "core", "reply from {src} dropped: {e}");
            }
        }
    }

    fn top_via_is_ours(&self, msg: &Message) -> bool {
        let Some(Ok(via)) = msg.vias().next() else {
            return false;
        };
        let host = String::from_utf8_lossy(via.host_raw);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = via.port.unwrap_or(5060);
        self.host
            .local_addrs()
            .iter()
            .any(|l| l.host.eq_ignore_ascii_case(host) && l.port.is_none_or(|p| p == port))
    }

    fn resolve(&mut self, host: &str, port: u16) -> Option<SocketAddr> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse() {
            return Some(SocketAddr::new(ip, port));
        }
        self.host
            .resolve(bare)
            .into_iter()
            .next()
            .map(|ip| SocketAddr::new(ip, port))
    }
}

impl MessageHandler for Worker {
    fn handle(&mut self, data: &[u8], src: SocketAddr) {
        #[cfg(debug_assertions)]
        if let Some(magic) = &self.panic_on
            && data.windows(magic.len()).any(|w| w == magic.as_slice())
        {
            panic!("SIPLAB_PANIC_ON test hook");
        }
        // A datagram of only CRLFs is a keepalive (RFC 5626); nothing to answer.
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            return;
        }
        match Message::parse(data.to_vec()) {
            Ok(msg) if msg.is_request() => self.handle_request(&msg, src),
            Ok(msg) => self.handle_reply(&msg, src),
            Err(e) => match e.partial() {
                Some(partial) if partial.is_request() => {
                    self.count(self.shared.stats.rcv_requests);
                    self.reject(partial, e.status(), &e.error.to_string(), src);
                }
                Some(_) => {
                    self.count(self.shared.stats.err_replies);
                    self.count(self.shared.stats.drop_replies);
                }
                None => {
                    self.count(self.shared.stats.err_requests);
                    crate::log!(
                        Level::Dbg,
                        "core",
                        "unparsable datagram from {src} dropped: {}",
                        e.error
                    );
                }
            },
        }
    }
}
