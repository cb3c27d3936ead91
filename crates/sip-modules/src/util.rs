//! Small helpers shared by the modules.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sip_msg::{Host, Uri};
use sip_script::abi::{Ctx, LocalSocket, Value};

/// Short text built on the stack: addresses and ports written into every forwarded request
/// or Record-Route, without a `String` and without the `fmt` machinery (both showed up as
/// a large share of a stateless forward's cost).
pub(crate) struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    pub(crate) fn new() -> StackText {
        StackText {
            buf: [0; 64],
            len: 0,
        }
    }

    /// An IP address as `Display` prints it (IPv6 without brackets).
    pub(crate) fn ip(ip: IpAddr) -> StackText {
        let mut t = StackText::new();
        t.push_ip(ip);
        t
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Appends `bytes`. Only bounded values are written here (an IPv6 address is at most
    /// 45 bytes, a u64 20), so the 64-byte buffer never overflows; if it did, the text
    /// would be cut rather than panic.
    fn push(&mut self, bytes: &[u8]) {
        let room = self.buf.len().saturating_sub(self.len);
        let bytes = bytes.get(..room).unwrap_or(bytes);
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn push_u64(&mut self, n: u64) {
        let digits = Decimal::new(n);
        self.push(digits.as_bytes());
    }

    fn push_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.push(Ipv4Text::new(v4).as_bytes()),
            // Rare on this lab's UDP sockets: the standard formatter (RFC 5952 form).
            IpAddr::V6(v6) => self.push(v6.to_string().as_bytes()),
        }
    }
}

/// The decimal digits of a number, written right-aligned into a fixed buffer (smaller
/// than a [`StackText`], for the ports and numbers of every forward).
pub(crate) struct Decimal {
    /// u64::MAX has 20 digits.
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn new(n: u64) -> Decimal {
        let mut d = Decimal {
            digits: [0; 20],
            start: 20,
        };
        let mut n = n;
        // Last digit first; `start` stays in bounds as 20 digits hold any u64.
        while let Some(slot) = d.start.checked_sub(1).and_then(|i| d.digits.get_mut(i)) {
            *slot = b'0' + (n % 10) as u8;
            d.start -= 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        d
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.digits.get(self.start..).unwrap_or_default()
    }
}

/// An IP address as `Display` prints it (IPv6 without brackets): IPv4 from the octet
/// table, IPv6 through [`StackText`].
pub(crate) enum IpText {
    V4(Ipv4Text),
    V6(StackText),
}

impl IpText {
    pub(crate) fn new(ip: IpAddr) -> IpText {
        match ip {
            IpAddr::V4(v4) => IpText::V4(Ipv4Text::new(v4)),
            ip => IpText::V6(StackText::ip(ip)),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            IpText::V4(t) => t.as_bytes(),
            IpText::V6(t) => t.as_bytes(),
        }
    }
}

/// Each octet's decimal text (up to three digits) and, in the last byte, its length.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let n = i as u8;
        table[i] = if n >= 100 {
            [b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10, 3]
        } else if n >= 10 {
            [b'0' + n / 10, b'0' + n % 10, 0, 2]
        } else {
            [b'0' + n, 0, 0, 1]
        };
        i += 1;
    }
    table
};

/// The dotted text of an IPv4 address as `Display` prints it, built from a table of the
/// 256 octet texts (a forward writes two or three addresses).
pub(crate) struct Ipv4Text {
    /// Four octets of at most three digits and three dots are 15 bytes; each octet is
    /// copied as four bytes, so the buffer has room past the last one.
    buf: [u8; 20],
    len: usize,
}

impl Ipv4Text {
    fn new(ip: Ipv4Addr) -> Ipv4Text {
        let mut t = Ipv4Text {
            buf: [0; 20],
            len: 0,
        };
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                if let Some(dot) = t.buf.get_mut(t.len) {
                    *dot = b'.';
                    t.len += 1;
                }
            }
            let text = OCTET_TEXT[usize::from(octet)];
            if let Some(dst) = t.buf.get_mut(t.len..t.len + 4) {
                dst.copy_from_slice(&text);
                t.len += usize::from(text[3]);
            }
        }
        t
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Appends the socket's public `host:port` to `out`: what [`LocalSocket::public`] gives
/// (advertised address, else the socket's IP, IPv6 bracketed), without its `String`.
pub(crate) fn put_public_host_port(out: &mut Vec<u8>, local: &LocalSocket) {
    match &local.advertise {
        Some((host, port)) => {
            out.extend_from_slice(host.as_bytes());
            out.push(b':');
            out.extend_from_slice(Decimal::new(u64::from(*port)).as_bytes());
        }
        // Every forward and Record-Route of a worker writes the address of the socket it
        // listens on: its text is made once and copied after that.
        None => SOCKET_TEXT.with_borrow_mut(|cached| {
            if cached.as_ref().is_none_or(|(addr, _)| *addr != local.addr) {
                *cached = Some((local.addr, socket_text(local.addr)));
            }
            if let Some((_, text)) = cached {
                out.extend_from_slice(text.as_bytes());
            }
        }),
    }
}

thread_local! {
    /// The `host:port` text of the last local socket [`put_public_host_port`] wrote (a
    /// worker process has one thread and, for UDP, one socket).
    static SOCKET_TEXT: RefCell<Option<(SocketAddr, StackText)>> = const { RefCell::new(None) };
}

/// `ip:port`, IPv6 bracketed (`[ip]:port`).
fn socket_text(addr: SocketAddr) -> StackText {
    let mut text = StackText::new();
    match addr.ip() {
        IpAddr::V4(v4) => text.push(Ipv4Text::new(v4).as_bytes()),
        ip => {
            text.push(b"[");
            text.push_ip(ip);
            text.push(b"]");
        }
    }
    text.push(b":");
    text.push_u64(u64::from(addr.port()));
    text
}

/// Whether `uri` points at this proxy (Kamailio's `myself`): its host is one of the listen
/// addresses or aliases and its port (default 5060) matches, or the entry has no port.
pub(crate) fn is_myself(ctx: &Ctx<'_>, uri: &Uri<'_>) -> bool {
    let Some(host) = uri.host else {
        return false;
    };
    let port = uri.port.unwrap_or(crate::core::forward::DEFAULT_PORT);
    ctx.host.local_addrs().iter().any(|la| {
        let host_matches = match host {
            Host::Ipv4(ip) => la.host.parse::<IpAddr>().ok() == Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => la.host.parse::<IpAddr>().ok() == Some(IpAddr::V6(ip)),
            Host::Name(name) => la.host.as_bytes().eq_ignore_ascii_case(name),
        };
        host_matches && la.port.is_none_or(|p| p == port)
    })
}

/// The AVP name of a module's per-message data, `"\u{1}module:key"`: a name a script cannot
/// write (the ABI has no per-message module slot; the AVP store is reset per message).
/// A macro so the name is a constant, not a `format!` per call.
macro_rules! private_name {
    ($module:literal, $key:literal) => {
        concat!("\u{1}", $module, ":", $key)
    };
}
pub(crate) use private_name;

/// The module data stored under `name` (a [`private_name!`]) for this message.
pub(crate) fn private_get<'c>(ctx: &'c Ctx<'_>, name: &str) -> Option<&'c Value> {
    ctx.avps.get(name, 0)
}

pub(crate) fn private_set(ctx: &mut Ctx<'_>, name: &str, v: Value) {
    ctx.avps.remove_all(name);
    ctx.avps.push(name, v);
}

/// Strips one trailing line end from header text given in the cfg (`"X-A: 1\r\n"`): the
/// edit list adds its own.
pub(crate) fn header_line(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use sip_script::abi::{LocalSocket, Proto};

    use super::{Decimal, StackText, put_public_host_port};

    fn socket(addr: SocketAddr, advertise: Option<(&str, u16)>) -> LocalSocket {
        LocalSocket {
            addr,
            proto: Proto::Udp,
            advertise: advertise.map(|(h, p)| (h.to_string(), p)),
        }
    }

    #[test]
    fn private_names_cannot_be_written_by_a_script() {
        assert_eq!(super::private_name!("rr", "done"), "\u{1}rr:done");
    }

    #[test]
    fn stack_text_prints_like_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "192.0.2.10",
            "255.255.255.255",
            "::1",
            "2001:db8::5",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(StackText::ip(ip).as_bytes(), ip.to_string().as_bytes());
        }
        for n in [0, 7, 10, 5060, 65535, u64::MAX] {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn every_octet_prints_like_display() {
        for n in 0..=255u8 {
            let ip = Ipv4Addr::new(n, 255 - n, n / 2, n.wrapping_mul(7));
            assert_eq!(
                super::Ipv4Text::new(ip).as_bytes(),
                ip.to_string().as_bytes()
            );
        }
        for n in [1, 9, 99, 100, 999, 1000, 65535, 1 << 32, u64::MAX / 3] {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn public_host_port_matches_local_socket_public() {
        let sockets = [
            socket(SocketAddr::from(([127, 0, 0, 1], 5060)), None),
            socket(
                "[2001:db8::1]:5070"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
                None,
            ),
            socket(
                SocketAddr::from(([10, 0, 0, 1], 5060)),
                Some(("proxy.example.com", 5080)),
            ),
            socket(SocketAddr::from(([127, 0, 0, 1], 5062)), None),
            socket(
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
                None,
            ),
        ];
        // Twice round, so each socket's text is written both freshly and from the cache
        // another socket's text replaced in between.
        for local in sockets
            .iter()
            .chain(sockets.iter())
            .chain(sockets.iter().rev())
        {
            let (host, port) = local.public();
            let mut out = b"x".to_vec();
            put_public_host_port(&mut out, local);
            assert_eq!(String::from_utf8_lossy(&out), format!("x{host}:{port}"));
            put_public_host_port(&mut out, local);
            assert_eq!(
                String::from_utf8_lossy(&out),
                format!("x{host}:{port}{host}:{port}")
            );
        }
    }
}
