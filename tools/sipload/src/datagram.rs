//! A datagram a peer received (or sent), with its arrival time and parsed message.

use sip_msg::{HeaderName, Message};
use std::net::SocketAddr;
use std::time::Instant;

/// One datagram as seen on a peer's socket: monotonic timestamp, the other end, the bytes,
/// and the parsed message (`None` when the bytes are not a SIP message we can index).
#[derive(Clone, Debug)]
pub struct Datagram {
    pub at: Instant,
    pub peer: SocketAddr,
    pub bytes: Vec<u8>,
    pub msg: Option<Message>,
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

impl Datagram {
    pub fn new(at: Instant, peer: SocketAddr, bytes: Vec<u8>) -> Datagram {
        // A parse error still carries the partial message when the header index was built.
        let msg = match Message::parse_slice(&bytes) {
            Ok(m) => Some(m),
            Err(e) => e.into_partial(),
        };
        Datagram {
            at,
            peer,
            bytes,
            msg,
        }
    }

    /// The request method token (`INVITE`, `ACK`, ...), `None` for replies.
    pub fn method(&self) -> Option<&str> {
        self.msg.as_ref()?.method_bytes().and_then(text)
    }

    /// True for a request with this method.
    pub fn is_request(&self, method: &str) -> bool {
        self.method() == Some(method)
    }

    /// The status code of a reply.
    pub fn status(&self) -> Option<u16> {
        self.msg.as_ref()?.status_code()
    }

    /// The reason phrase of a reply.
    pub fn reason(&self) -> Option<&str> {
        self.msg.as_ref()?.reason_phrase().and_then(text)
    }

    /// True for a reply with this code whose CSeq method is `method`.
    pub fn is_reply(&self, code: u16, method: &str) -> bool {
        self.status() == Some(code) && self.cseq_method() == Some(method)
    }

    /// The value of the first header named `name` (any case, compact forms mapped).
    pub fn header(&self, name: &str) -> Option<&str> {
        let msg = self.msg.as_ref()?;
        let h = msg.headers_named(name.as_bytes()).next()?;
        text(msg.slice(h.value))
    }

    /// The values of every header line named `name`, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let Some(msg) = self.msg.as_ref() else {
            return Vec::new();
        };
        msg.headers_named(name.as_bytes())
            .filter_map(|h| text(msg.slice(h.value)))
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn call_id(&self) -> Option<&str> {
        self.msg.as_ref()?.call_id().ok().and_then(text)
    }

    pub fn cseq_number(&self) -> Option<u32> {
        Some(self.msg.as_ref()?.cseq().ok()?.number)
    }

    pub fn cseq_method(&self) -> Option<&str> {
        text(self.msg.as_ref()?.cseq().ok()?.method)
    }

    /// The branch parameter of the top Via.
    pub fn top_branch(&self) -> Option<&str> {
        self.msg.as_ref()?.top_via().ok()?.branch().and_then(text)
    }

    /// How many Via values the message carries.
    pub fn via_count(&self) -> usize {
        self.msg
            .as_ref()
            .map_or(0, |m| m.header_values(HeaderName::Via).count())
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.msg.as_ref()?.to().ok()?.tag().and_then(text)
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.msg.as_ref()?.from().ok()?.tag().and_then(text)
    }

    /// The first line, lossily, for messages and logs.
    pub fn first_line(&self) -> String {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(self.bytes.len().min(120));
        String::from_utf8_lossy(self.bytes.get(..end).unwrap_or_default()).into_owned()
    }

    /// Seconds from `origin` to this datagram (negative when it came earlier).
    pub fn secs_since(&self, origin: Instant) -> f64 {
        if self.at >= origin {
            self.at.duration_since(origin).as_secs_f64()
        } else {
            -origin.duration_since(self.at).as_secs_f64()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_read_the_parsed_message() {
        let bytes =
            b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx.1\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKy\r\nFrom: <sip:a@h>;tag=f1\r\nTo: <sip:b@h>;tag=t9\r\n\
Call-ID: c1\r\nCSeq: 3 INVITE\r\nX-Reply: 1\r\nX-Reply: 2\r\nContent-Length: 0\r\n\r\n"
                .to_vec();
        let d = Datagram::new(Instant::now(), "127.0.0.1:1".parse().unwrap(), bytes);
        assert_eq!(d.status(), Some(486));
        assert_eq!(d.reason(), Some("Busy Here"));
        assert!(d.is_reply(486, "INVITE"));
        assert_eq!(d.method(), None);
        assert_eq!(d.top_branch(), Some("z9hG4bKx.1"));
        assert_eq!(d.via_count(), 2);
        assert_eq!((d.to_tag(), d.from_tag()), (Some("t9"), Some("f1")));
        assert_eq!(d.headers("x-reply"), vec!["1", "2"]);
        assert_eq!(d.cseq_number(), Some(3));
        assert_eq!(d.first_line(), "SIP/2.0 486 Busy Here");
    }

    #[test]
    fn garbage_is_kept_without_a_message() {
        let d = Datagram::new(
            Instant::now(),
            "127.0.0.1:1".parse().unwrap(),
            vec![0, 1, 2],
        );
        assert!(d.msg.is_none());
        assert_eq!(d.method(), None);
        assert!(d.headers("via").is_empty());
    }
}
