//! Typed header views, decoded on demand from a header value. They borrow from the
//! message buffer and never allocate.

use crate::error::SipError;
use crate::header::eq_ignore_case_lower;
use crate::message::{Message, Span};
use crate::scan::{
    Params, VIA_HOST_END, all_token, host_prefix, is_lws, is_token, parse_u32, quoted_len,
    skip_lws, trim_lws,
};
use crate::uri::{Host, Uri, parse_port};

/// One Via value: `SIP/2.0/UDP host:port;params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// The whole value (one comma element), trimmed.
    pub raw: &'a [u8],
    /// Protocol name, normally `SIP`.
    pub protocol: &'a [u8],
    /// Protocol version, normally `2.0`.
    pub version: &'a [u8],
    /// Transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, or anything else).
    pub transport: &'a [u8],
    pub host: Host<'a>,
    /// The sent-by host as written.
    pub host_raw: &'a [u8],
    pub port: Option<u16>,
    pub params: Params<'a>,
    branch: Option<&'a [u8]>,
    rport: Option<Option<u16>>,
    received: Option<&'a [u8]>,
    maddr: Option<&'a [u8]>,
    ttl: Option<u8>,
}

impl<'a> Via<'a> {
    /// Parses one Via value (LWS allowed around `/`, `:`, `;` and `=`).
    pub fn parse(raw: &'a [u8]) -> Result<Via<'a>, SipError> {
        let raw = trim_lws(raw);
        let (protocol, version, transport, rest) = match raw.strip_prefix(b"SIP/2.0/") {
            // The usual spelling: the general path below gives the same parts.
            Some(tail) => {
                let (transport, rest) = take_token(skip_lws(tail));
                let protocol = raw.get(..3).unwrap_or_default();
                let version = raw.get(4..7).unwrap_or_default();
                (protocol, version, transport, rest)
            }
            None => {
                let (protocol, rest) = take_token(raw);
                let rest = expect_byte(rest, b'/', "bad Via sent-protocol")?;
                let (version, rest) = take_token(skip_lws(rest));
                let rest = expect_byte(rest, b'/', "bad Via sent-protocol")?;
                let (transport, rest) = take_token(skip_lws(rest));
                (protocol, version, transport, rest)
            }
        };
        if protocol.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(SipError::bad_request("bad Via sent-protocol"));
        }
        let rest = skip_lws(rest);
        let (host_raw, host, rest) = if rest.first() == Some(&b'[') {
            let host_len = rest
                .iter()
                .position(|&b| b == b']')
                .map(|p| p + 1)
                .ok_or(SipError::bad_request("bad Via sent-by"))?;
            let (host_raw, rest) = rest.split_at(host_len);
            (host_raw, Host::parse(host_raw)?, rest)
        } else {
            // The host ends at ':', ';' or LWS; its bytes are classified on the way.
            let (host_len, chars) = host_prefix(rest, VIA_HOST_END);
            let (host_raw, rest) = rest.split_at(host_len);
            (host_raw, Host::parse_classified(host_raw, chars)?, rest)
        };
        let rest = skip_lws(rest);
        let (port, rest) = match rest.split_first() {
            Some((b':', tail)) => {
                let tail = skip_lws(tail);
                let len = tail
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(tail.len());
                let (port, tail) = tail.split_at(len);
                (Some(parse_port(port)?), tail)
            }
            _ => (None, rest),
        };
        let (mut branch, mut rport, mut received, mut maddr, mut ttl) =
            (None, None, None, None, None);
        // One pass over the parameters: syntax, and the values the proxy reads.
        let params = Params::parse_each(rest, |p| {
            let bad = || SipError::bad_request("bad Via branch, rport or ttl");
            // A repeated parameter keeps its first value, as with `Params::get`.
            if eq_ignore_case_lower(p.name, b"branch") {
                let value = p.value.ok_or_else(bad)?;
                branch = branch.or(Some(value));
            } else if eq_ignore_case_lower(p.name, b"rport") {
                let value = p.value.map(parse_port).transpose().map_err(|_| bad())?;
                rport = rport.or(Some(value));
            } else if eq_ignore_case_lower(p.name, b"received") {
                received = received.or(p.value);
            } else if eq_ignore_case_lower(p.name, b"maddr") {
                maddr = maddr.or(p.value);
            } else if eq_ignore_case_lower(p.name, b"ttl") {
                let value = p
                    .value
                    .and_then(parse_u32)
                    .and_then(|t| u8::try_from(t).ok());
                ttl = ttl.or(Some(value.ok_or_else(bad)?));
            }
            Ok(())
        })?;
        Ok(Via {
            raw,
            protocol,
            version,
            transport,
            host,
            host_raw,
            port,
            params,
            branch,
            rport,
            received,
            maddr,
            ttl,
        })
    }

    /// The `branch` parameter value.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.branch
    }

    /// `None`: no rport; `Some(None)`: `rport` without value; `Some(Some(p))`: `rport=p`.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.rport
    }

    /// The `received` parameter value.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.received
    }

    /// The `maddr` parameter value.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.maddr
    }

    /// The `ttl` parameter value.
    pub fn ttl(&self) -> Option<u8> {
        self.ttl
    }

    /// This view as positions in `msg` (which it must have been parsed from); `None` if a
    /// part does not lie in the message buffer.
    pub(crate) fn spans_in(&self, msg: &Message) -> Option<ViaSpans> {
        let span = |s: &[u8]| msg.span_of(s);
        let opt_span = |s: Option<&[u8]>| match s {
            Some(s) => span(s).map(Some),
            None => Some(None),
        };
        Some(ViaSpans {
            raw: span(self.raw)?,
            protocol: span(self.protocol)?,
            version: span(self.version)?,
            transport: span(self.transport)?,
            host: match self.host {
                Host::Name(n) => HostSpan::Name(span(n)?),
                Host::Ipv4(ip) => HostSpan::Ipv4(ip),
                Host::Ipv6(ip) => HostSpan::Ipv6(ip),
            },
            host_raw: span(self.host_raw)?,
            port: self.port,
            params: span(self.params.raw())?,
            branch: opt_span(self.branch)?,
            rport: self.rport,
            received: opt_span(self.received)?,
            maddr: opt_span(self.maddr)?,
            ttl: self.ttl,
        })
    }

    /// The view [`Via::spans_in`] recorded.
    pub(crate) fn from_spans(msg: &'a Message, s: &ViaSpans) -> Via<'a> {
        Via {
            raw: msg.slice(s.raw),
            protocol: msg.slice(s.protocol),
            version: msg.slice(s.version),
            transport: msg.slice(s.transport),
            host: match s.host {
                HostSpan::Name(n) => Host::Name(msg.slice(n)),
                HostSpan::Ipv4(ip) => Host::Ipv4(ip),
                HostSpan::Ipv6(ip) => Host::Ipv6(ip),
            },
            host_raw: msg.slice(s.host_raw),
            port: s.port,
            params: Params::from_checked(msg.slice(s.params)),
            branch: s.branch.map(|b| msg.slice(b)),
            rport: s.rport,
            received: s.received.map(|b| msg.slice(b)),
            maddr: s.maddr.map(|b| msg.slice(b)),
            ttl: s.ttl,
        }
    }
}

/// A decoded [`Via`] as positions in its message, so [`Message`] can keep its top Via.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViaSpans {
    raw: Span,
    protocol: Span,
    version: Span,
    transport: Span,
    host: HostSpan,
    host_raw: Span,
    port: Option<u16>,
    params: Span,
    branch: Option<Span>,
    rport: Option<Option<u16>>,
    received: Option<Span>,
    maddr: Option<Span>,
    ttl: Option<u8>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum HostSpan {
    Name(Span),
    Ipv4(std::net::Ipv4Addr),
    Ipv6(std::net::Ipv6Addr),
}

fn take_token(s: &[u8]) -> (&[u8], &[u8]) {
    let len = s.iter().position(|&b| !is_token(b)).unwrap_or(s.len());
    s.split_at(len)
}

fn expect_byte<'a>(s: &'a [u8], byte: u8, what: &'static str) -> Result<&'a [u8], SipError> {
    match skip_lws(s).split_first() {
        Some((b, tail)) if *b == byte => Ok(tail),
        _ => Err(SipError::bad_request(what)),
    }
}

/// CSeq: sequence number (checked to fit u32) and method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub number: u32,
    pub method: &'a [u8],
}

impl<'a> CSeq<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<CSeq<'a>, SipError> {
        let raw = trim_lws(raw);
        let len = raw.iter().position(|&b| is_lws(b)).unwrap_or(raw.len());
        let (number, method) = raw.split_at(len);
        let number = parse_u32(number).ok_or(SipError::bad_request("bad CSeq number"))?;
        let method = skip_lws(method);
        if !all_token(method) {
            return Err(SipError::bad_request("bad CSeq method"));
        }
        Ok(CSeq { number, method })
    }
}

/// A name-addr or addr-spec (From, To, Contact, Route, Record-Route values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The whole value, trimmed.
    pub raw: &'a [u8],
    /// Display name as written (quotes and escapes kept), if any.
    pub display_raw: Option<&'a [u8]>,
    pub uri: Uri<'a>,
    /// True when the URI was written inside `<>`.
    pub angle: bool,
    /// Header parameters after the address (`;tag=...`, `;expires=...`).
    pub params: Params<'a>,
    tag: Option<&'a [u8]>,
}

/// A name-addr value cut into its parts, checked up to the URI (see [`NameAddr::parse`]).
struct NameAddrParts<'a> {
    raw: &'a [u8],
    display_raw: Option<&'a [u8]>,
    /// The URI text (inside `<>` when `angle`).
    uri: &'a [u8],
    angle: bool,
    /// The header parameters after the address.
    params: &'a [u8],
}

impl<'a> NameAddrParts<'a> {
    fn split(raw: &'a [u8]) -> Result<NameAddrParts<'a>, SipError> {
        let raw = trim_lws(raw);
        if raw.is_empty() {
            return Err(SipError::bad_request("empty address"));
        }
        let (display_raw, in_angle) = if raw.first() == Some(&b'"') {
            let qlen =
                quoted_len(raw).ok_or(SipError::bad_request("unterminated quoted display name"))?;
            let (display, rest) = raw.split_at(qlen);
            let rest = skip_lws(rest);
            if rest.first() != Some(&b'<') {
                return Err(SipError::bad_request("display name not followed by <URI>"));
            }
            (Some(display), Some(rest))
        } else if let Some(lt) = raw.iter().position(|&b| b == b'<') {
            let display = trim_lws(raw.get(..lt).unwrap_or_default());
            if display.iter().any(|&b| b == b'"' || b == b'>') {
                return Err(SipError::bad_request("bad display name"));
            }
            let display = if display.is_empty() {
                None
            } else {
                Some(display)
            };
            (display, raw.get(lt..))
        } else {
            (None, None)
        };
        match in_angle {
            Some(from_lt) => {
                let inner = from_lt.get(1..).unwrap_or_default();
                let gt = memchr::memchr(b'>', inner)
                    .ok_or(SipError::bad_request("missing '>' in address"))?;
                Ok(NameAddrParts {
                    raw,
                    display_raw,
                    // Spaces just inside <> are tolerated (RFC 4475 badaspec: a liberal proxy).
                    uri: trim_lws(inner.get(..gt).unwrap_or_default()),
                    angle: true,
                    params: inner.get(gt + 1..).unwrap_or_default(),
                })
            }
            None => {
                // addr-spec form: a ';' ends the URI and starts header parameters.
                let end = raw
                    .iter()
                    .position(|&b| b == b';' || is_lws(b))
                    .unwrap_or(raw.len());
                let (uri, params) = raw.split_at(end);
                Ok(NameAddrParts {
                    raw,
                    display_raw: None,
                    uri,
                    angle: false,
                    params,
                })
            }
        }
    }
}

impl<'a> NameAddr<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<NameAddr<'a>, SipError> {
        let parts = NameAddrParts::split(raw)?;
        let uri = Uri::parse(parts.uri)?;
        let mut tag = None;
        let params = parse_header_params(parts.params, &mut tag)?;
        Ok(NameAddr {
            raw: parts.raw,
            display_raw: parts.display_raw,
            uri,
            angle: parts.angle,
            params,
            tag,
        })
    }

    /// `NameAddr::parse(raw)?.tag()` with the same checks, without building the view
    /// (the From/To tags are asked for on every request).
    pub(crate) fn parse_tag(raw: &'a [u8]) -> Result<Option<&'a [u8]>, SipError> {
        let parts = NameAddrParts::split(raw)?;
        Uri::parse(parts.uri)?;
        let mut tag = None;
        parse_header_params(parts.params, &mut tag)?;
        Ok(tag)
    }

    /// The display name without surrounding quotes (escapes kept raw).
    pub fn display(&self) -> Option<&'a [u8]> {
        self.display_raw.map(|d| {
            d.strip_prefix(b"\"")
                .and_then(|d| d.strip_suffix(b"\""))
                .unwrap_or(d)
        })
    }

    /// The `tag` parameter value.
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag
    }

    /// A header parameter (`Some(None)` when present without value).
    pub fn param(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.params.get(name)
    }
}

/// Header parameters of a name-addr, noting the tag on the way.
fn parse_header_params<'a>(
    raw: &'a [u8],
    tag: &mut Option<&'a [u8]>,
) -> Result<Params<'a>, SipError> {
    Params::parse_each(skip_lws(raw), |p| {
        // The first tag counts, as with `Params::get`.
        if tag.is_none() && eq_ignore_case_lower(p.name, b"tag") {
            *tag = p.value;
        }
        Ok(())
    })
}

/// One Contact value.
#[allow(clippy::large_enum_variant)] // a short-lived view on the stack; boxing would allocate
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removing all bindings).
    Star,
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Contact<'a>, SipError> {
        if trim_lws(raw) == b"*" {
            Ok(Contact::Star)
        } else {
            NameAddr::parse(raw).map(Contact::Addr)
        }
    }
}

/// Content-Type: `type/subtype;params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentType<'a> {
    pub media_type: &'a [u8],
    pub subtype: &'a [u8],
    pub params: Params<'a>,
}

impl<'a> ContentType<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<ContentType<'a>, SipError> {
        let (media_type, rest) = take_token(trim_lws(raw));
        let rest = expect_byte(rest, b'/', "bad Content-Type")?;
        let (subtype, rest) = take_token(skip_lws(rest));
        if media_type.is_empty() || subtype.is_empty() {
            return Err(SipError::bad_request("bad Content-Type"));
        }
        let params = Params::parse(skip_lws(rest))?;
        Ok(ContentType {
            media_type,
            subtype,
            params,
        })
    }
}

/// Reason (RFC 3326): `SIP;cause=200;text="..."`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason<'a> {
    pub protocol: &'a [u8],
    pub params: Params<'a>,
}

impl<'a> Reason<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Reason<'a>, SipError> {
        let (protocol, rest) = take_token(trim_lws(raw));
        if protocol.is_empty() {
            return Err(SipError::bad_request("bad Reason protocol"));
        }
        let params = Params::parse(skip_lws(rest))?;
        Ok(Reason { protocol, params })
    }

    /// The `cause` parameter as a number.
    pub fn cause(&self) -> Option<u16> {
        self.params
            .get(b"cause")
            .flatten()
            .and_then(parse_u32)
            .and_then(|c| u16::try_from(c).ok())
    }

    /// The `text` parameter without its quotes.
    pub fn text(&self) -> Option<&'a [u8]> {
        self.params.get(b"text").flatten().map(|t| {
            t.strip_prefix(b"\"")
                .and_then(|t| t.strip_suffix(b"\""))
                .unwrap_or(t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn via_with_folding_and_lws() -> TestResult {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw")?;
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host, Host::Ipv4("192.0.2.2".parse()?));
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        let v =
            Via::parse(b"SIP/2.0/UDP h.example.com : 5062;rport;received=1.2.3.4;ttl=3;maddr=m")?;
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some(&b"1.2.3.4"[..]));
        assert_eq!(v.ttl(), Some(3));
        assert_eq!(v.maddr(), Some(&b"m"[..]));
        let v = Via::parse(b"SIP/2.0/ TCP h")?;
        assert_eq!(
            (v.protocol, v.version, v.transport),
            (&b"SIP"[..], &b"2.0"[..], &b"TCP"[..])
        );
        let v = Via::parse(b"SIP/2.0/TCP [2001:db8::9]:5070;rport=5071")?;
        assert_eq!(v.rport(), Some(Some(5071)));
        assert!(Via::parse(b"SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse(b"SIP/2.0/UDP h;rport=x").is_err());
        assert!(Via::parse(b"SIP/2.0 h").is_err());
        Ok(())
    }

    #[test]
    fn cseq_overflow_and_leading_zeros() -> TestResult {
        let c = CSeq::parse(b"0009\r\n  INVITE")?;
        assert_eq!((c.number, c.method), (9, &b"INVITE"[..]));
        assert_eq!(
            CSeq::parse(b"36893488147419103232 REGISTER")
                .unwrap_err()
                .status,
            400
        );
        assert!(CSeq::parse(b"1").is_err());
        Ok(())
    }

    #[test]
    fn name_addr_forms() -> TestResult {
        let a = NameAddr::parse(
            b"\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )?;
        assert_eq!(a.display(), Some(&b"J Rosenberg \\\\\\\""[..]));
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
        let a = NameAddr::parse(b"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")?;
        assert_eq!(a.uri.raw, b"sip:vivekg@chair-dnrc.example.com");
        assert_eq!(a.tag(), Some(&b"1918181833n"[..]));
        let a = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323")?;
        assert_eq!(a.display(), Some(&b"caller"[..]));
        assert!(NameAddr::parse(b"\"Mr. J. User <sip:j.user@example.com>").is_err());
        let a = NameAddr::parse(b"\"Watson, Thomas\" < sip:t.watson@example.org >")?;
        assert_eq!(a.uri.raw, b"sip:t.watson@example.org");
        Ok(())
    }

    #[test]
    fn contact_star_content_type_reason() -> TestResult {
        assert_eq!(Contact::parse(b" * ")?, Contact::Star);
        let ct = ContentType::parse(b"multipart/mixed;boundary=7a9cbec02ceef655")?;
        assert_eq!(
            (ct.media_type, ct.subtype),
            (&b"multipart"[..], &b"mixed"[..])
        );
        let r = Reason::parse(b"SIP;cause=200;text=\"Call completed elsewhere\"")?;
        assert_eq!(r.cause(), Some(200));
        assert_eq!(r.text(), Some(&b"Call completed elsewhere"[..]));
        Ok(())
    }
}
