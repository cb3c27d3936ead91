//! Small helpers shared by the modules.

use std::net::{IpAddr, Ipv4Addr};

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

    /// The decimal text of `n`.
    pub(crate) fn number(n: u64) -> StackText {
        let mut t = StackText::new();
        t.push_u64(n);
        t
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
        for &b in bytes {
            self.push_byte(b);
        }
    }

    fn push_byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_u64(&mut self, n: u64) {
        decimal_digits(n, |b| self.push_byte(b));
    }

    fn push_ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => ipv4_digits(v4, |b| self.push_byte(b)),
            // Rare on this lab's UDP sockets: the standard formatter (RFC 5952 form).
            IpAddr::V6(v6) => self.push(v6.to_string().as_bytes()),
        }
    }
}

/// Hands the decimal digits of `n` to `put`, most significant first.
fn decimal_digits(n: u64, mut put: impl FnMut(u8)) {
    // u64::MAX has 20 digits; collected last digit first.
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut n = n;
    while let Some(slot) = digits.get_mut(len) {
        *slot = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(..len).unwrap_or_default().iter().rev() {
        put(d);
    }
}

/// Hands the dotted text of `ip` (as `Display` prints it) to `put`.
fn ipv4_digits(ip: Ipv4Addr, mut put: impl FnMut(u8)) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            put(b'.');
        }
        // At most three digits, no leading zeros.
        if octet >= 100 {
            put(b'0' + octet / 100);
        }
        if octet >= 10 {
            put(b'0' + octet / 10 % 10);
        }
        put(b'0' + octet % 10);
    }
}

/// Appends the socket's public `host:port` to `out`: what [`LocalSocket::public`] gives
/// (advertised address, else the socket's IP, IPv6 bracketed), without its `String`.
pub(crate) fn put_public_host_port(out: &mut Vec<u8>, local: &LocalSocket) {
    // "255.255.255.255:65535" is 21 bytes: one reserve, then byte pushes.
    out.reserve(24);
    let port = match &local.advertise {
        Some((host, port)) => {
            out.extend_from_slice(host.as_bytes());
            *port
        }
        None => {
            match local.addr.ip() {
                IpAddr::V4(v4) => ipv4_digits(v4, |b| out.push(b)),
                ip => {
                    out.push(b'[');
                    out.extend_from_slice(StackText::ip(ip).as_bytes());
                    out.push(b']');
                }
            }
            local.addr.port()
        }
    };
    out.push(b':');
    decimal_digits(u64::from(port), |b| out.push(b));
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
    use std::net::{IpAddr, SocketAddr};

    use sip_script::abi::{LocalSocket, Proto};

    use super::{StackText, put_public_host_port};

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
            assert_eq!(StackText::number(n).as_bytes(), n.to_string().as_bytes());
        }
    }

    #[test]
    fn public_host_port_matches_local_socket_public() {
        for local in [
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
        ] {
            let (host, port) = local.public();
            let mut out = b"x".to_vec();
            put_public_host_port(&mut out, &local);
            assert_eq!(String::from_utf8_lossy(&out), format!("x{host}:{port}"));
        }
    }
}
