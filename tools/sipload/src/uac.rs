//! The client peer: sends INVITEs (and other requests) to a proxy, retransmission copies at
//! chosen times, CANCEL with Reason headers, the ACK for a non-2xx (same branch) and for a
//! 2xx (new branch, routed by Record-Route), BYE; waits for replies and records them all.

use crate::datagram::Datagram;
use crate::dialog::{NewRequest, in_dialog, with_branch};
use crate::error::SiploadError;
use sip_msg::Message;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A request this UAC sent (an INVITE or any other method) and what identifies it.
#[derive(Clone, Debug)]
pub struct Call {
    pub call_id: String,
    pub branch: String,
    pub from_tag: String,
    /// The request as sent (parsed); CANCEL and non-2xx ACK are built from it.
    pub request: Message,
    /// When it was first sent.
    pub sent_at: Instant,
}

impl Call {
    pub fn bytes(&self) -> &[u8] {
        self.request.as_bytes()
    }

    /// True when `d` is a reply to this call's request method (CSeq method) and Call-ID.
    pub fn is_reply_to(&self, d: &Datagram, method: &str) -> bool {
        d.status().is_some()
            && d.call_id() == Some(self.call_id.as_str())
            && d.cseq_method() == Some(method)
    }
}

/// A UDP client bound to 127.0.0.1 that sends everything to one target (the proxy).
#[derive(Debug)]
pub struct Uac {
    sock: UdpSocket,
    local: SocketAddr,
    target: SocketAddr,
    /// Received and not yet handed out by a `wait_*`.
    inbox: VecDeque<Datagram>,
    /// Everything received, in order.
    log: Vec<Datagram>,
    /// Datagrams to send at a later time (retransmission copies).
    scheduled: Vec<(Instant, Vec<u8>)>,
    next: u64,
    tag: String,
    logging: bool,
}

/// Distinguishes Call-IDs of UACs in one process.
static UAC_SEQ: AtomicU64 = AtomicU64::new(0);

fn timeout_kind(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

impl Uac {
    /// A UAC on an ephemeral port of 127.0.0.1 sending to `target`.
    pub fn bind(target: SocketAddr) -> Result<Uac, SiploadError> {
        let sock = UdpSocket::bind(("127.0.0.1", 0))?;
        let local = sock.local_addr()?;
        let tag = format!(
            "u{}-{}",
            std::process::id(),
            UAC_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Uac {
            sock,
            local,
            target,
            inbox: VecDeque::new(),
            log: Vec::new(),
            scheduled: Vec::new(),
            next: 0,
            tag,
            logging: true,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}-{}-{}", self.tag, self.next)
    }

    fn branch(&mut self) -> String {
        self.fresh("z9hG4bK")
    }

    /// Sends raw bytes to the target.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), SiploadError> {
        self.sock.send_to(bytes, self.target)?;
        Ok(())
    }

    /// Builds a new out-of-dialog request without sending it.
    pub fn new_request(
        &mut self,
        method: &str,
        ruri: &str,
        extra_headers: &[&str],
    ) -> Result<Call, SiploadError> {
        let call_id = self.fresh("sipload");
        let branch = self.branch();
        let from_tag = self.fresh("f");
        let bytes = NewRequest {
            method,
            ruri,
            local: self.local,
            call_id: &call_id,
            branch: &branch,
            from_tag: &from_tag,
            cseq: 1,
            extra_headers,
            sdp: method == "INVITE",
        }
        .build();
        let request = Message::parse(bytes)
            .map_err(|e| SiploadError::BadMessage(format!("own {method}: {}", e.error)))?;
        Ok(Call {
            call_id,
            branch,
            from_tag,
            request,
            sent_at: Instant::now(),
        })
    }

    /// Sends a new out-of-dialog request (OPTIONS, MESSAGE, ...).
    pub fn request(
        &mut self,
        method: &str,
        ruri: &str,
        extra_headers: &[&str],
    ) -> Result<Call, SiploadError> {
        let mut call = self.new_request(method, ruri, extra_headers)?;
        call.sent_at = Instant::now();
        self.send_raw(call.bytes())?;
        Ok(call)
    }

    /// Sends a new INVITE (with SDP) for `ruri`.
    pub fn invite(&mut self, ruri: &str, extra_headers: &[&str]) -> Result<Call, SiploadError> {
        self.request("INVITE", ruri, extra_headers)
    }

    /// Sends the call's request again (a retransmission: same bytes, same branch).
    pub fn retransmit(&self, call: &Call) -> Result<(), SiploadError> {
        self.send_raw(call.bytes())
    }

    /// Arranges copies of the call's request at `offsets` after its first sending; they go
    /// out while this UAC waits for replies.
    pub fn schedule_copies(&mut self, call: &Call, offsets: &[Duration]) {
        for off in offsets {
            self.scheduled
                .push((call.sent_at + *off, call.bytes().to_vec()));
        }
    }

    /// Sends `bytes` at `at` (or at once if it has passed) while this UAC waits for replies:
    /// the building block of race scenarios (a CANCEL 300 ms after the INVITE, a copy that
    /// lands while another worker still runs the script).
    pub fn schedule(&mut self, at: Instant, bytes: Vec<u8>) {
        self.scheduled.push((at, bytes));
    }

    /// The same request as a new transaction of the same call (new branch), sent now.
    pub fn new_branch(&mut self, call: &Call) -> Result<Call, SiploadError> {
        let branch = self.branch();
        let bytes = with_branch(call.bytes(), &call.branch, &branch);
        let request = Message::parse(bytes)
            .map_err(|e| SiploadError::BadMessage(format!("own request: {}", e.error)))?;
        let copy = Call {
            branch,
            request,
            sent_at: Instant::now(),
            ..call.clone()
        };
        self.send_raw(copy.bytes())?;
        Ok(copy)
    }

    /// The CANCEL for the call's INVITE, with `reasons` as full `Reason: ...` lines.
    pub fn build_cancel(&self, call: &Call, reasons: &[&str]) -> Result<Vec<u8>, SiploadError> {
        let reasons: Vec<&[u8]> = reasons.iter().map(|r| r.as_bytes()).collect();
        Ok(sip_msg::build::build_cancel(&call.request, &reasons)?)
    }

    /// Sends the CANCEL for the call's INVITE, with `reasons` as full `Reason: ...` lines.
    pub fn cancel(&self, call: &Call, reasons: &[&str]) -> Result<(), SiploadError> {
        let bytes = self.build_cancel(call, reasons)?;
        self.send_raw(&bytes)
    }

    /// Sends the ACK for a non-2xx final reply: same branch, the reply's To (with its tag).
    pub fn ack_non2xx(&self, call: &Call, reply: &Datagram) -> Result<(), SiploadError> {
        let msg = reply
            .msg
            .as_ref()
            .ok_or_else(|| SiploadError::BadMessage("reply does not parse".into()))?;
        let bytes = sip_msg::build::build_ack(&call.request, msg)?;
        self.send_raw(&bytes)
    }

    /// Sends the ACK for a 2xx: a new transaction inside the dialog the 2xx created.
    pub fn ack_2xx(&mut self, call: &Call, ok: &Datagram) -> Result<(), SiploadError> {
        let cseq = call.request.cseq()?.number;
        self.dialog_request(ok, "ACK", cseq)
    }

    /// Sends a BYE inside the dialog `ok` created (CSeq one above the INVITE's).
    pub fn bye(&mut self, call: &Call, ok: &Datagram) -> Result<(), SiploadError> {
        let cseq = call.request.cseq()?.number + 1;
        self.dialog_request(ok, "BYE", cseq)
    }

    fn dialog_request(
        &mut self,
        ok: &Datagram,
        method: &str,
        cseq: u32,
    ) -> Result<(), SiploadError> {
        let bytes = self.build_in_dialog(ok, method, cseq)?;
        self.send_raw(&bytes)
    }

    /// Builds (without sending) a request inside the dialog `ok` created, on a new branch.
    pub fn build_in_dialog(
        &mut self,
        ok: &Datagram,
        method: &str,
        cseq: u32,
    ) -> Result<Vec<u8>, SiploadError> {
        let msg = ok
            .msg
            .as_ref()
            .ok_or_else(|| SiploadError::BadMessage("2xx does not parse".into()))?;
        let branch = self.branch();
        in_dialog(msg, method, cseq, self.local, &branch)
    }

    /// Keep (default) or stop keeping every received datagram in [`Uac::received`]; a long
    /// load run turns it off.
    pub fn set_logging(&mut self, on: bool) {
        self.logging = on;
        if !on {
            self.log = Vec::new();
        }
    }

    fn send_due(&mut self) -> Result<Option<Instant>, SiploadError> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.scheduled = later;
        for (_, bytes) in due {
            self.send_raw(&bytes)?;
        }
        Ok(self.scheduled.iter().map(|(at, _)| *at).min())
    }

    /// Receives one datagram from the socket within `limit`, sending scheduled copies on
    /// the way; it is logged and queued in the inbox.
    fn pump(&mut self, limit: Duration) -> Result<bool, SiploadError> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 65535];
        loop {
            let next_copy = self.send_due()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let until = next_copy.map_or(deadline, |c| c.min(deadline));
            let wait = until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait))?;
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let d = Datagram::new(
                        Instant::now(),
                        from,
                        buf.get(..n).unwrap_or_default().to_vec(),
                    );
                    if self.logging {
                        self.log.push(d.clone());
                    }
                    self.inbox.push_back(d);
                    return Ok(true);
                }
                Err(e) if timeout_kind(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next datagram (oldest unread first) within `limit`.
    pub fn recv(&mut self, limit: Duration) -> Result<Option<Datagram>, SiploadError> {
        if self.inbox.is_empty() {
            self.pump(limit)?;
        }
        Ok(self.inbox.pop_front())
    }

    /// The first unread datagram `pred` accepts, within `limit`; others stay unread.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Datagram) -> bool,
    ) -> Result<Option<Datagram>, SiploadError> {
        let deadline = Instant::now() + limit;
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.inbox.iter().skip(scanned).position(&pred) {
                return Ok(self.inbox.remove(scanned + pos));
            }
            scanned = self.inbox.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.pump(left)? {
                return Ok(None);
            }
        }
    }

    /// The next reply to the call's `method` with this code.
    pub fn wait_status(
        &mut self,
        call: &Call,
        method: &str,
        code: u16,
        limit: Duration,
    ) -> Result<Option<Datagram>, SiploadError> {
        self.wait_for(limit, |d| {
            call.is_reply_to(d, method) && d.status() == Some(code)
        })
    }

    /// The next final (≥ 200) reply to the call's `method`.
    pub fn wait_final(
        &mut self,
        call: &Call,
        method: &str,
        limit: Duration,
    ) -> Result<Option<Datagram>, SiploadError> {
        self.wait_for(limit, |d| {
            call.is_reply_to(d, method) && d.status().is_some_and(|c| c >= 200)
        })
    }

    /// Receives until the socket has been quiet for `quiet` (sending scheduled copies);
    /// returns what arrived meanwhile (it is also logged, and marked read).
    pub fn drain(&mut self, quiet: Duration) -> Result<Vec<Datagram>, SiploadError> {
        let mut out: Vec<Datagram> = self.inbox.drain(..).collect();
        while self.pump(quiet)? {
            out.extend(self.inbox.drain(..));
        }
        Ok(out)
    }

    /// Receives for exactly `span` (sending scheduled copies); returns what arrived.
    pub fn listen_for(&mut self, span: Duration) -> Result<Vec<Datagram>, SiploadError> {
        let deadline = Instant::now() + span;
        let mut out: Vec<Datagram> = self.inbox.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            if self.pump(left)? {
                out.extend(self.inbox.drain(..));
            }
        }
    }

    /// Everything this UAC received, read or not, in arrival order.
    pub fn received(&self) -> &[Datagram] {
        &self.log
    }
}
