//! URIs: sip/sips decoded into parts, tel into number + params, any other scheme kept opaque
//! (the proxy decides 416 later). Escapes (`%HH`) are kept raw everywhere.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::SipError;
use crate::message::{Message, Span};
use crate::scan::{
    HostChars, Params, URI_HOST_END, all_uri_chars, host_chars, host_prefix, parse_u32,
};
use crate::views::HostSpan;

/// The URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other syntactically valid scheme; the URI body is kept opaque.
    Other,
}

/// The host part of a sip/sips URI (or a Via sent-by).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name, as written.
    Name(&'a [u8]),
    Ipv4(Ipv4Addr),
    /// An IPv6 reference; the address is parsed from between the brackets.
    Ipv6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses a host: `[IPv6]`, dotted IPv4, or a host name (alphanumerics, `-`, `.`, `_`).
    pub fn parse(s: &'a [u8]) -> Result<Host<'a>, SipError> {
        if let Some(inner) = s.strip_prefix(b"[") {
            let inner = inner
                .strip_suffix(b"]")
                .ok_or(SipError::bad_request("unterminated IPv6 reference"))?;
            return std::str::from_utf8(inner)
                .ok()
                .and_then(|t| t.parse::<Ipv6Addr>().ok())
                .map(Host::Ipv6)
                .ok_or(SipError::bad_request("bad IPv6 address"));
        }
        Host::parse_classified(s, host_chars(s))
    }

    /// [`Host::parse`] when the caller already classified the bytes of a non-IPv6 host.
    pub(crate) fn parse_classified(s: &'a [u8], chars: HostChars) -> Result<Host<'a>, SipError> {
        if s.first() == Some(&b'[') {
            return Host::parse(s);
        }
        if s.is_empty() {
            return Err(SipError::bad_request("empty host"));
        }
        if !chars.name {
            return Err(SipError::bad_request("bad host name"));
        }
        match chars.digits_and_dots.then(|| parse_ipv4(s)).flatten() {
            Some(ip) => Ok(Host::Ipv4(ip)),
            // Digits and dots that are not an address (`1.2.3`, `01.2.3.4`) are a name.
            None => Ok(Host::Name(s)),
        }
    }
}

/// Dotted-quad IPv4 with the rules of `Ipv4Addr::from_str` (four 1–3 digit parts, each
/// ≤ 255, no leading zeros), without going through `str`: each part is matched as a whole
/// (every URI and Via with an IP host comes through here, several times per request).
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let digit = |d: u8| u16::from(d - b'0');
    let mut octets = [0u8; 4];
    let mut rest = s;
    for (i, octet) in octets.iter_mut().enumerate() {
        // The longest part first; only a lone `0` may start with 0.
        let (value, len) = match rest {
            [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
                (digit(*a) * 100 + digit(*b) * 10 + digit(*c), 3)
            }
            [a @ b'1'..=b'9', b @ b'0'..=b'9', ..] => (digit(*a) * 10 + digit(*b), 2),
            [a @ b'0'..=b'9', ..] => (digit(*a), 1),
            _ => return None,
        };
        *octet = u8::try_from(value).ok()?;
        rest = rest.get(len..)?;
        if i < 3 {
            rest = rest.strip_prefix(b".")?;
        }
    }
    rest.is_empty().then(|| Ipv4Addr::from(octets))
}

/// A parsed URI. Borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI text.
    pub raw: &'a [u8],
    pub scheme: Scheme,
    /// The scheme as written (without the `:`).
    pub scheme_raw: &'a [u8],
    /// sip/sips: user part with escapes kept raw (may contain `;`, as in RFC 4475 semiuri).
    /// tel: the subscriber number.
    pub user: Option<&'a [u8]>,
    /// sip/sips: the password after `user:`.
    pub password: Option<&'a [u8]>,
    /// sip/sips: the host; `None` for tel and other schemes.
    pub host: Option<Host<'a>>,
    /// The host as written (brackets kept for IPv6); empty when there is no host.
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    /// sip/sips/tel parameters (`;lr;transport=udp`).
    pub params: Params<'a>,
    /// sip/sips headers after `?`, raw.
    pub headers: Option<&'a [u8]>,
    /// Other schemes: everything after the first `:`.
    pub opaque: &'a [u8],
}

/// A decoded [`Uri`] as positions in its message, so [`Message`] can keep its Request-URI.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UriSpans {
    raw: Span,
    scheme: Scheme,
    scheme_raw: Span,
    user: Option<Span>,
    password: Option<Span>,
    host: Option<HostSpan>,
    host_raw: Span,
    port: Option<u16>,
    params: Span,
    headers: Option<Span>,
    opaque: Span,
}

impl<'a> Uri<'a> {
    /// This view as positions in `msg` (which it must have been parsed from); `None` if a
    /// non-empty part does not lie in the message buffer.
    pub(crate) fn spans_in(&self, msg: &Message) -> Option<UriSpans> {
        // Empty parts may be `&[]` from elsewhere; any empty span reads back as empty.
        let span = |s: &[u8]| {
            if s.is_empty() {
                Some(Span { start: 0, end: 0 })
            } else {
                msg.span_of(s)
            }
        };
        let opt_span = |s: Option<&[u8]>| match s {
            Some(s) => span(s).map(Some),
            None => Some(None),
        };
        Some(UriSpans {
            raw: span(self.raw)?,
            scheme: self.scheme,
            scheme_raw: span(self.scheme_raw)?,
            user: opt_span(self.user)?,
            password: opt_span(self.password)?,
            host: match self.host {
                Some(Host::Name(n)) => Some(HostSpan::Name(span(n)?)),
                Some(Host::Ipv4(ip)) => Some(HostSpan::Ipv4(ip)),
                Some(Host::Ipv6(ip)) => Some(HostSpan::Ipv6(ip)),
                None => None,
            },
            host_raw: span(self.host_raw)?,
            port: self.port,
            params: span(self.params.raw())?,
            headers: opt_span(self.headers)?,
            opaque: span(self.opaque)?,
        })
    }

    /// The view [`Uri::spans_in`] recorded.
    pub(crate) fn from_spans(msg: &'a Message, s: &UriSpans) -> Uri<'a> {
        Uri {
            raw: msg.slice(s.raw),
            scheme: s.scheme,
            scheme_raw: msg.slice(s.scheme_raw),
            user: s.user.map(|u| msg.slice(u)),
            password: s.password.map(|p| msg.slice(p)),
            host: s.host.map(|h| match h {
                HostSpan::Name(n) => Host::Name(msg.slice(n)),
                HostSpan::Ipv4(ip) => Host::Ipv4(ip),
                HostSpan::Ipv6(ip) => Host::Ipv6(ip),
            }),
            host_raw: msg.slice(s.host_raw),
            port: s.port,
            params: Params::from_checked(msg.slice(s.params)),
            headers: s.headers.map(|h| msg.slice(h)),
            opaque: msg.slice(s.opaque),
        }
    }
}

impl<'a> Uri<'a> {
    /// Parses a URI from any byte slice (no surrounding whitespace or `<>` allowed).
    pub fn parse(s: &'a [u8]) -> Result<Uri<'a>, SipError> {
        // `sip:` as written is by far the most common: the general path gives the same.
        let (scheme_raw, rest, scheme) = match (s.get(..3), s.get(3..)) {
            (Some(b"sip"), Some([b':', rest @ ..])) => {
                (s.get(..3).unwrap_or_default(), rest, Scheme::Sip)
            }
            _ => {
                let colon = s
                    .iter()
                    .position(|&b| b == b':')
                    .ok_or(SipError::bad_request("URI without scheme"))?;
                let (scheme_raw, rest) = s.split_at(colon);
                let rest = rest.get(1..).unwrap_or_default();
                if !scheme_is_valid(scheme_raw) {
                    return Err(SipError::bad_request("bad URI scheme"));
                }
                let scheme = if scheme_raw.eq_ignore_ascii_case(b"sip") {
                    Scheme::Sip
                } else if scheme_raw.eq_ignore_ascii_case(b"sips") {
                    Scheme::Sips
                } else if scheme_raw.eq_ignore_ascii_case(b"tel") {
                    Scheme::Tel
                } else {
                    Scheme::Other
                };
                (scheme_raw, rest, scheme)
            }
        };
        if !all_uri_chars(s) {
            return Err(SipError::bad_request("bad character in URI"));
        }
        let mut uri = Uri {
            raw: s,
            scheme,
            scheme_raw,
            user: None,
            password: None,
            host: None,
            host_raw: &[],
            port: None,
            params: Params::default(),
            headers: None,
            opaque: rest,
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(rest)?,
            Scheme::Tel => {
                let semi = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
                let (number, params) = rest.split_at(semi);
                if number.is_empty() {
                    return Err(SipError::bad_request("empty tel number"));
                }
                uri.user = Some(number);
                uri.params = Params::parse(params)?;
            }
            Scheme::Other => {
                if rest.is_empty() {
                    return Err(SipError::bad_request("empty URI"));
                }
            }
        }
        Ok(uri)
    }

    fn parse_sip(&mut self, rest: &'a [u8]) -> Result<(), SipError> {
        // '@' is only legal unescaped in the userinfo, so the first one ends it.
        let hostport_etc = match rest.iter().position(|&b| b == b'@') {
            Some(at) => {
                let (userinfo, tail) = rest.split_at(at);
                let (user, password) = match userinfo.iter().position(|&b| b == b':') {
                    Some(c) => (
                        userinfo.get(..c).unwrap_or_default(),
                        Some(userinfo.get(c + 1..).unwrap_or_default()),
                    ),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(SipError::bad_request("empty user in URI"));
                }
                self.user = Some(user);
                self.password = password;
                tail.get(1..).unwrap_or_default()
            }
            None => rest,
        };
        if hostport_etc.first() == Some(&b'[') {
            return self.parse_ipv6_hostport(hostport_etc);
        }
        // The host ends at the first ':', ';' or '?'; '?' starts the headers.
        let (host_len, chars) = host_prefix(hostport_etc, URI_HOST_END);
        let (host, after_host) = hostport_etc.split_at(host_len);
        let (after_host, headers) = match after_host.iter().position(|&b| b == b'?') {
            Some(q) => (
                after_host.get(..q).unwrap_or_default(),
                Some(after_host.get(q + 1..).unwrap_or_default()),
            ),
            None => (after_host, None),
        };
        self.headers = headers;
        self.host = Some(Host::parse_classified(host, chars)?);
        self.host_raw = host;
        self.parse_port_params(after_host)
    }

    /// The `[IPv6]` hostport form, rare enough to take the plain path.
    fn parse_ipv6_hostport(&mut self, hostport_etc: &'a [u8]) -> Result<(), SipError> {
        let (before_headers, headers) = match hostport_etc.iter().position(|&b| b == b'?') {
            Some(q) => (
                hostport_etc.get(..q).unwrap_or_default(),
                Some(hostport_etc.get(q + 1..).unwrap_or_default()),
            ),
            None => (hostport_etc, None),
        };
        self.headers = headers;
        let hostport_len = before_headers
            .iter()
            .position(|&b| b == b']')
            .map(|p| p + 1)
            .ok_or(SipError::bad_request("unterminated IPv6 reference"))?;
        let (host, after_host) = before_headers.split_at(hostport_len);
        self.host = Some(Host::parse(host)?);
        self.host_raw = host;
        self.parse_port_params(after_host)
    }

    /// `[:port][;params]` after the host.
    fn parse_port_params(&mut self, after_host: &'a [u8]) -> Result<(), SipError> {
        let params = match after_host.split_first() {
            Some((b':', port_etc)) => {
                let end = port_etc
                    .iter()
                    .position(|&b| b == b';')
                    .unwrap_or(port_etc.len());
                let (port, params) = port_etc.split_at(end);
                self.port = Some(parse_port(port)?);
                params
            }
            _ => after_host,
        };
        self.params = Params::parse(params)?;
        Ok(())
    }

    /// A parameter of a sip/sips/tel URI (`Some(None)` when present without value).
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params.get(name)
    }

    /// True for sip: and sips: URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }
}

/// Parses a port number 0..=65535.
pub(crate) fn parse_port(s: &[u8]) -> Result<u16, SipError> {
    parse_u32(s)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(SipError::bad_request("bad port"))
}

/// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
pub(crate) fn scheme_is_valid(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, tail)) => {
            first.is_ascii_alphabetic()
                && tail
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn sip_uri_parts() -> TestResult {
        let u = Uri::parse(b"sip:alice:pw@[2001:db8::1]:5070;lr;transport=udp?Subject=x")?;
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.password, Some(&b"pw"[..]));
        assert_eq!(u.host, Some(Host::Ipv6("2001:db8::1".parse()?)));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param(b"lr"), Some(None));
        assert_eq!(u.param(b"transport"), Some(Some(&b"udp"[..])));
        assert_eq!(u.headers, Some(&b"Subject=x"[..]));
        Ok(())
    }

    #[test]
    fn user_with_semicolon_and_escapes() -> TestResult {
        let u = Uri::parse(b"sip:user;par=u%40example.net@example.com")?;
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host, Some(Host::Name(b"example.com")));
        assert!(u.params.raw().is_empty());
        Ok(())
    }

    #[test]
    fn ipv4_tel_and_opaque() -> TestResult {
        let u = Uri::parse(b"sips:192.0.2.1:5061")?;
        assert_eq!(u.host, Some(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1))));
        assert_eq!(u.port, Some(5061));
        let t = Uri::parse(b"tel:+1-201-555-0123;phone-context=x")?;
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user, Some(&b"+1-201-555-0123"[..]));
        let o = Uri::parse(b"soap.beep://192.0.2.103:3002")?;
        assert_eq!(o.scheme, Scheme::Other);
        assert_eq!(o.opaque, b"//192.0.2.103:3002");
        Ok(())
    }

    #[test]
    fn ipv4_matches_std_parser() {
        // Every string up to 8 bytes over digits and dots, plus longer edge cases.
        let alphabet = b"0125.9";
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = cases.clone();
        for _ in 0..8 {
            frontier = frontier
                .iter()
                .flat_map(|p| {
                    alphabet.iter().map(move |&c| {
                        let mut n = p.clone();
                        n.push(c);
                        n
                    })
                })
                .collect();
            cases.extend(frontier.iter().cloned());
        }
        for long in [
            &b"255.255.255.255"[..],
            b"256.1.1.1",
            b"1.1.1.256",
            b"192.168.100.200",
            b"1234.1.1.1",
            b"01.2.3.4",
            b"1.2.3.4.5",
            b"1.2.3.",
            b"10.0.0.15",
            b"000.0.0.0",
        ] {
            cases.push(long.to_vec());
        }
        for case in &cases {
            let std = std::str::from_utf8(case)
                .ok()
                .and_then(|t| t.parse::<Ipv4Addr>().ok());
            assert_eq!(parse_ipv4(case), std, "{:?}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn host_kinds() -> TestResult {
        assert_eq!(
            Host::parse(b"10.0.0.15")?,
            Host::Ipv4(Ipv4Addr::new(10, 0, 0, 15))
        );
        assert_eq!(Host::parse(b"01.2.3.4")?, Host::Name(b"01.2.3.4"));
        assert_eq!(Host::parse(b"1.2.3")?, Host::Name(b"1.2.3"));
        assert_eq!(Host::parse(b"a-b_c.example")?, Host::Name(b"a-b_c.example"));
        assert!(Host::parse(b"a b").is_err());
        assert!(Host::parse(b"1.2.3.4!").is_err());
        assert!(Host::parse(b"").is_err());
        Ok(())
    }

    #[test]
    fn bad_uris_are_400() -> TestResult {
        for bad in [
            &b"<sip:a@b>"[..],
            b"sip:a@b c",
            b"sip:",
            b"sip:a@b:99999",
            b"nocolon",
            b"sip:@h",
        ] {
            assert_eq!(Uri::parse(bad).unwrap_err().status, 400, "{:?}", bad);
        }
        Ok(())
    }
}
