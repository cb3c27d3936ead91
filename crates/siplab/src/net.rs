//! Listen sockets: parsed from `listen=` / `-l`, bound with socket2 before fork so every
//! worker inherits the same fd (the kernel hands each datagram to one idle worker).

use socket2::{Domain, Protocol, Socket, Type};
use std::fmt;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Receive buffer we ask for; the kernel clamps it to `net.core.rmem_max`.
const RCVBUF_BYTES: usize = 4 << 20;

/// One `listen` entry: `[udp:]ADDR[:PORT] [advertise HOST[:PORT]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    pub addr: SocketAddr,
    pub advertise: Option<(String, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenError(pub String);

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ListenSpec {
    /// Parses Kamailio's listen syntax; only UDP is served, other protocols are an error.
    pub fn parse(text: &str) -> Result<ListenSpec, ListenError> {
        let text = text.trim();
        let (main, advertise) = match text.split_once(" advertise ") {
            Some((m, a)) => (m.trim(), Some(a.trim())),
            None => (text, None),
        };
        let rest = match main.split_once(':') {
            Some((proto, rest)) if proto.eq_ignore_ascii_case("udp") => rest,
            Some((proto, _))
                if ["tcp", "tls", "sctp", "ws", "wss"]
                    .contains(&proto.to_ascii_lowercase().as_str()) =>
            {
                return Err(ListenError(format!(
                    "listen `{text}`: siplab serves UDP only, not {proto}"
                )));
            }
            _ => main,
        };
        let (host, port) = split_host_port(rest)
            .ok_or_else(|| ListenError(format!("listen `{text}`: expected IP[:PORT]")))?;
        let ip: IpAddr = host
            .parse()
            .map_err(|_| ListenError(format!("listen `{text}`: `{host}` is not an IP address")))?;
        let addr = SocketAddr::new(ip, port.unwrap_or(5060));
        let advertise = match advertise {
            None => None,
            Some(a) => {
                let (h, p) = split_host_port(a)
                    .ok_or_else(|| ListenError(format!("listen `{text}`: bad advertise `{a}`")))?;
                Some((h.to_string(), p.unwrap_or(addr.port())))
            }
        };
        Ok(ListenSpec { addr, advertise })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; a bare IPv6 without brackets has no port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.matches(':').count() {
        0 => Some((s, None)),
        1 => {
            let (h, p) = s.split_once(':')?;
            Some((h, Some(p.parse().ok()?)))
        }
        _ => Some((s, None)),
    }
}

/// Binds one UDP socket with a large receive buffer; blocking, inherited across fork.
pub fn bind_udp(spec: &ListenSpec) -> std::io::Result<UdpSocket> {
    let domain = if spec.addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer only means earlier drops under load.
    let _ = sock.set_recv_buffer_size(RCVBUF_BYTES);
    sock.bind(&spec.addr.into())?;
    Ok(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailio_listen_forms() {
        let l = ListenSpec::parse("udp:127.0.0.1:5090").expect("valid");
        assert_eq!(l.addr, "127.0.0.1:5090".parse().expect("addr"));
        assert_eq!(
            ListenSpec::parse("127.0.0.1").expect("valid").addr.port(),
            5060
        );
        let v6 = ListenSpec::parse("udp:[::1]:5070").expect("valid");
        assert_eq!(v6.addr, "[::1]:5070".parse().expect("addr"));
        let adv = ListenSpec::parse("udp:127.0.0.1:5060 advertise 192.0.2.1:5080").expect("valid");
        assert_eq!(adv.advertise, Some(("192.0.2.1".to_string(), 5080)));
    }

    #[test]
    fn non_udp_and_garbage_are_errors() {
        assert!(ListenSpec::parse("tcp:127.0.0.1:5060").is_err());
        assert!(ListenSpec::parse("udp:localhost:5060").is_err());
        assert!(ListenSpec::parse("udp:127.0.0.1:99999").is_err());
    }

    #[test]
    fn bind_ephemeral_port() {
        let spec = ListenSpec::parse("udp:127.0.0.1:0").expect("valid");
        let s = bind_udp(&spec).expect("bind");
        assert_ne!(s.local_addr().expect("addr").port(), 0);
    }
}
