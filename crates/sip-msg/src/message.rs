//! The owned message: start line and header index built once, typed views on demand.

use std::sync::OnceLock;

use crate::error::SipError;
use crate::header::{HeaderName, NameKey};
use crate::scan::{CommaSplit, all_token, any_lws, is_lws, is_token, parse_u32};
use crate::uri::{Uri, UriSpans, scheme_is_valid};
use crate::views::{CSeq, Contact, ContentType, NameAddr, Reason, Via, ViaSpans};

/// A byte range `[start, end)` into the message buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Request methods. Comparison is case-sensitive (RFC 3261): `invite` is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Register,
    Prack,
    Subscribe,
    Notify,
    Publish,
    Info,
    Refer,
    Message,
    Update,
    /// An extension method; the span holds its name.
    Other(Span),
}

const METHODS: &[(Method, &str)] = &[
    (Method::Invite, "INVITE"),
    (Method::Ack, "ACK"),
    (Method::Cancel, "CANCEL"),
    (Method::Bye, "BYE"),
    (Method::Options, "OPTIONS"),
    (Method::Register, "REGISTER"),
    (Method::Prack, "PRACK"),
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Notify, "NOTIFY"),
    (Method::Publish, "PUBLISH"),
    (Method::Info, "INFO"),
    (Method::Refer, "REFER"),
    (Method::Message, "MESSAGE"),
    (Method::Update, "UPDATE"),
];

impl Method {
    /// Maps a method token; unknown tokens become `Other(span)`.
    pub fn from_bytes(token: &[u8], span: Span) -> Method {
        METHODS
            .iter()
            .find(|(_, name)| name.as_bytes() == token)
            .map_or(Method::Other(span), |(m, _)| *m)
    }

    /// The name of a known method; `None` for `Other`.
    pub fn as_str(&self) -> Option<&'static str> {
        METHODS
            .iter()
            .find(|(m, _)| m == self)
            .map(|(_, name)| *name)
    }
}

/// The first line of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: Method,
        /// The method token.
        method_span: Span,
        /// The Request-URI text (checked for a valid scheme; decoded by [`Message::request_uri`]).
        uri: Span,
        /// The version text (`SIP/2.0`).
        version: Span,
    },
    Response {
        code: u16,
        /// Reason phrase, possibly empty.
        reason: Span,
    },
}

/// One header line of the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    /// The name as written.
    pub name_span: Span,
    /// The value, LWS-trimmed; folded lines keep their CR LF inside.
    pub value: Span,
    /// The whole header line including its line end.
    pub line: Span,
}

/// A parsed SIP message. Owns its datagram; every position is a [`Span`] into it.
#[derive(Clone, Debug)]
pub struct Message {
    buf: Vec<u8>,
    start: StartLine,
    /// The start line including its line end.
    start_line: Span,
    headers: Vec<Header>,
    /// Where the empty line that ends the headers begins.
    headers_end: u32,
    body: Span,
    content_length: Option<u32>,
    /// Views decoded on first use and kept: several modules ask for the same ones per
    /// request (record_route, the stateless branch, has_totag, tm's key, the printer).
    decoded: Decoded,
}

/// Positions, not views, so the message does not borrow itself. Empty until asked.
#[derive(Clone, Debug, Default)]
struct Decoded {
    /// The From / To tag (`None`: no tag or no usable header).
    from_tag: OnceLock<Option<Span>>,
    to_tag: OnceLock<Option<Span>>,
    top_via: OnceLock<Result<ViaSpans, SipError>>,
    request_uri: OnceLock<Result<UriSpans, SipError>>,
}

/// Why a datagram could not be parsed, with the partial message when the header index
/// could still be built (so the proxy can reply with [`ParseError::status`]).
#[derive(Clone, Debug)]
pub struct ParseError {
    pub error: SipError,
    partial: Option<Box<Message>>,
}

impl ParseError {
    pub fn status(&self) -> u16 {
        self.error.status
    }

    /// The message as far as it was indexed: all well-formed header lines are in the
    /// index and the start line is a best-effort reading (a broken request line gives
    /// its first token as the method; a broken status line gives code 0).
    pub fn partial(&self) -> Option<&Message> {
        self.partial.as_deref()
    }

    pub fn into_partial(self) -> Option<Message> {
        self.partial.map(|m| *m)
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ParseError {}

fn span(start: usize, end: usize) -> Span {
    // Callers only pass offsets into a buffer `Message::parse` checked to fit u32, so the
    // casts are exact (a checked conversion here costs a compare per offset per header).
    Span {
        start: start as u32,
        end: end as u32,
    }
}

/// Offset of the first `\n` at or after `from`.
fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', buf.get(from..)?).map(|p| p + from)
}

/// End of a line's content: strips the `\r` before the `\n` at `lf`.
fn content_end(buf: &[u8], line_start: usize, lf: usize) -> usize {
    if lf > line_start && buf.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    }
}

/// Where one header line lies, relative to its first byte.
struct LineScan {
    /// Length of the logical line including its final line end (folded lines included).
    next: usize,
    /// Name length and value range (LWS-trimmed) of a well-formed `name: value` line;
    /// `None` for a line without a token name followed by a colon.
    header: Option<(usize, usize, usize)>,
}

/// Scans the header line at the start of `rest`; `None` when it has no line end.
fn scan_line(rest: &[u8]) -> Option<LineScan> {
    // A name ends at the first non-token byte (CR and LF included, so it stays in the line).
    let name_len = rest
        .iter()
        .position(|&b| !is_token(b))
        .unwrap_or(rest.len());
    let mut colon = name_len;
    while matches!(rest.get(colon), Some(b' ' | b'\t')) {
        colon += 1;
    }
    let has_colon = name_len > 0 && rest.get(colon) == Some(&b':');
    // Name, SP/HT and the colon hold no LF: the line end is searched from after them.
    let from = if has_colon { colon + 1 } else { colon };
    let mut lf = find_lf(rest, from)?;
    // A line end followed by SP/HT continues the logical line.
    while matches!(rest.get(lf + 1), Some(b' ' | b'\t')) {
        lf = find_lf(rest, lf + 1)?;
    }
    let line_end = content_end(rest, 0, lf);
    let header = has_colon.then(|| {
        let mut start = colon + 1;
        while start < line_end && rest.get(start).is_some_and(|&b| is_lws(b)) {
            start += 1;
        }
        // Values rarely end in LWS: the backwards scan usually stops at once.
        let mut end = line_end;
        while end > start && rest.get(end - 1).is_some_and(|&b| is_lws(b)) {
            end -= 1;
        }
        (name_len, start, end)
    });
    Some(LineScan {
        next: lf + 1,
        header,
    })
}

/// Parses a request or status line. On error, also returns a best-effort start line.
fn parse_start_line(buf: &[u8], end: usize) -> Result<StartLine, (SipError, Option<StartLine>)> {
    let line = buf.get(..end).unwrap_or_default();
    if line.starts_with(b"SIP/") {
        return parse_status_line(line).map_err(|e| {
            (
                e,
                Some(StartLine::Response {
                    code: 0,
                    reason: Span::default(),
                }),
            )
        });
    }
    let first_sp = line.iter().position(|&b| b == b' ');
    let lenient = || {
        let m_end = first_sp.unwrap_or(line.len());
        let u_start = (m_end + 1).min(line.len());
        let u_end = line
            .get(u_start..)
            .and_then(|r| r.iter().position(|&b| b == b' '))
            .map_or(line.len(), |p| p + u_start);
        let method_span = span(0, m_end);
        StartLine::Request {
            method: Method::from_bytes(line.get(..m_end).unwrap_or_default(), method_span),
            method_span,
            uri: span(u_start, u_end),
            version: span(u_end.min(line.len()), line.len()),
        }
    };
    let fail = |what: &'static str, status: u16| {
        Err((SipError::with_status(what, status), Some(lenient())))
    };
    let Some(m_end) = first_sp else {
        return fail("bad request line", 400);
    };
    let method = line.get(..m_end).unwrap_or_default();
    if !all_token(method) {
        return fail("bad method", 400);
    }
    let Some(v_sp) = line.iter().rposition(|&b| b == b' ') else {
        return fail("bad request line", 400);
    };
    if v_sp <= m_end {
        return fail("request line without SIP version", 400);
    }
    let uri = line.get(m_end + 1..v_sp).unwrap_or_default();
    let version = line.get(v_sp + 1..).unwrap_or_default();
    if let Err(e) = check_version(version) {
        return fail(e.what, e.status);
    }
    if uri.is_empty() || uri.iter().any(|&b| is_lws(b)) {
        return fail("bad Request-URI (whitespace in request line)", 400);
    }
    let colon = uri.iter().position(|&b| b == b':').unwrap_or(0);
    if !scheme_is_valid(uri.get(..colon).unwrap_or_default()) {
        return fail("bad Request-URI scheme", 400);
    }
    let method_span = span(0, m_end);
    Ok(StartLine::Request {
        method: Method::from_bytes(method, method_span),
        method_span,
        uri: span(m_end + 1, v_sp),
        version: span(v_sp + 1, line.len()),
    })
}

/// `SIP/2.0` (case-insensitive) is accepted; another well-formed version is 505; junk is 400.
fn check_version(v: &[u8]) -> Result<(), SipError> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
        && v.get(4..).is_some_and(|n| {
            let mut parts = n.split(|&b| b == b'.');
            let major = parts.next().unwrap_or_default();
            let minor = parts.next().unwrap_or_default();
            parts.next().is_none()
                && !major.is_empty()
                && !minor.is_empty()
                && major.iter().chain(minor).all(u8::is_ascii_digit)
        });
    if well_formed {
        Err(SipError::with_status("unsupported SIP version", 505))
    } else {
        Err(SipError::bad_request("bad SIP version"))
    }
}

fn parse_status_line(line: &[u8]) -> Result<StartLine, SipError> {
    let sp = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(SipError::bad_request("bad status line"))?;
    check_version(line.get(..sp).unwrap_or_default())?;
    let rest = line.get(sp + 1..).unwrap_or_default();
    let code_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let code = rest.get(..code_len).unwrap_or_default();
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(SipError::bad_request("status code is not 3 digits"));
    }
    let code = parse_u32(code)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 100)
        .ok_or(SipError::bad_request("bad status code"))?;
    let reason_start = (sp + 1 + code_len + 1).min(line.len());
    if line
        .get(reason_start..)
        .is_some_and(|r| r.iter().any(|&b| b < b' ' && b != b'\t'))
    {
        return Err(SipError::bad_request("control character in reason phrase"));
    }
    Ok(StartLine::Response {
        code,
        reason: span(reason_start, line.len()),
    })
}

impl Message {
    /// Parses a datagram, taking ownership of the buffer (no copy).
    ///
    /// UDP framing: without Content-Length the body is the rest of the datagram; bytes after
    /// a Content-Length body are ignored.
    pub fn parse(buf: Vec<u8>) -> Result<Message, ParseError> {
        if u32::try_from(buf.len()).is_err() {
            return Err(ParseError {
                error: SipError::with_status("message too large", 513),
                partial: None,
            });
        }
        let mut first_err: Option<SipError> = None;
        let Some(lf) = find_lf(&buf, 0) else {
            return Err(ParseError {
                error: SipError::bad_request("no line end after start line"),
                partial: None,
            });
        };
        let line_end = content_end(&buf, 0, lf);
        let start = match parse_start_line(&buf, line_end) {
            Ok(sl) => sl,
            Err((e, lenient)) => {
                first_err = Some(e);
                match lenient {
                    Some(sl) => sl,
                    None => {
                        return Err(ParseError {
                            error: e,
                            partial: None,
                        });
                    }
                }
            }
        };
        let mut msg = Message {
            start,
            start_line: span(0, lf + 1),
            headers: Vec::with_capacity(24),
            headers_end: 0,
            body: Span::default(),
            content_length: None,
            decoded: Decoded::default(),
            buf,
        };
        if let Err(e) = msg.index_headers(lf + 1) {
            first_err.get_or_insert(e);
        }
        match first_err {
            None => Ok(msg),
            Some(error) => Err(ParseError {
                error,
                partial: Some(Box::new(msg)),
            }),
        }
    }

    /// Copies `bytes` and parses them.
    pub fn parse_slice(bytes: &[u8]) -> Result<Message, ParseError> {
        Message::parse(bytes.to_vec())
    }

    /// Builds the header index from `pos`; keeps indexing past a bad line and returns the
    /// first error found.
    fn index_headers(&mut self, mut pos: usize) -> Result<(), SipError> {
        let buf = &self.buf;
        let mut first_err: Option<SipError> = None;
        let mut content_length: Option<u32> = None;
        loop {
            let Some(&first) = buf.get(pos) else {
                self.headers_end = span(pos, pos).start;
                self.body = span(pos, pos);
                return Err(first_err.unwrap_or(SipError::bad_request(
                    "headers not terminated by an empty line",
                )));
            };
            // The empty line ends the headers.
            if first == b'\n' || (first == b'\r' && buf.get(pos + 1) == Some(&b'\n')) {
                self.headers_end = span(pos, pos).start;
                let body_start = if first == b'\n' { pos + 1 } else { pos + 2 };
                let body_end = match content_length {
                    Some(cl) => {
                        let end = body_start.saturating_add(cl as usize);
                        if end > buf.len() {
                            first_err.get_or_insert(SipError::bad_request(
                                "Content-Length larger than the datagram",
                            ));
                            buf.len()
                        } else {
                            end
                        }
                    }
                    None => buf.len(),
                };
                self.body = span(body_start, body_end);
                self.content_length = content_length;
                return first_err.map_or(Ok(()), Err);
            }
            let rest = buf.get(pos..).unwrap_or_default();
            let Some(scan) = scan_line(rest) else {
                self.headers_end = span(buf.len(), buf.len()).start;
                self.body = span(buf.len(), buf.len());
                return Err(first_err.unwrap_or(SipError::bad_request(
                    "headers not terminated by an empty line",
                )));
            };
            let lf = pos + scan.next - 1;
            match scan.header {
                Some((name_len, value_start, value_end)) => {
                    let name = HeaderName::from_bytes(rest.get(..name_len).unwrap_or_default());
                    let value = rest.get(value_start..value_end).unwrap_or_default();
                    let value_start = pos + value_start;
                    if name == HeaderName::ContentLength {
                        match parse_u32(value) {
                            None => {
                                first_err
                                    .get_or_insert(SipError::bad_request("bad Content-Length"));
                            }
                            Some(cl) => match content_length {
                                Some(prev) if prev != cl => {
                                    first_err.get_or_insert(SipError::bad_request(
                                        "conflicting Content-Length headers",
                                    ));
                                }
                                _ => content_length = Some(cl),
                            },
                        }
                    }
                    self.headers.push(Header {
                        name,
                        name_span: span(pos, pos + name_len),
                        value: span(value_start, value_start + value.len()),
                        line: span(pos, lf + 1),
                    });
                }
                _ => {
                    first_err.get_or_insert(SipError::bad_request("bad header line"));
                }
            }
            pos = lf + 1;
        }
    }

    /// The whole datagram as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Gives the buffer back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes of a span (empty when out of range).
    pub fn slice(&self, s: Span) -> &[u8] {
        self.buf.get(s.range()).unwrap_or_default()
    }

    /// The span of a sub-slice of this message's buffer (`None` if it points elsewhere).
    pub fn span_of(&self, sub: &[u8]) -> Option<Span> {
        let base = self.buf.as_ptr() as usize;
        let start = (sub.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(sub.len())?;
        (end <= self.buf.len()).then(|| span(start, end))
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// The start line including its line end.
    pub fn start_line_span(&self) -> Span {
        self.start_line
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, `None` for responses.
    pub fn method(&self) -> Option<Method> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The request method token as written, `None` for responses.
    pub fn method_bytes(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request { method_span, .. } => Some(self.slice(method_span)),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, `None` for requests.
    pub fn status_code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase, `None` for requests.
    pub fn reason_phrase(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Response { reason, .. } => Some(self.slice(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI text, `None` for responses.
    pub fn request_uri_bytes(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.slice(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The decoded Request-URI (any scheme; others are opaque), decoded once per message
    /// (sanity, `uri == myself` and forwarding all ask for it).
    pub fn request_uri(&self) -> Result<Uri<'_>, SipError> {
        if let Some(cached) = self.decoded.request_uri.get() {
            return cached.map(|spans| Uri::from_spans(self, &spans));
        }
        let uri = self
            .request_uri_bytes()
            .ok_or(SipError::bad_request("response has no Request-URI"))
            .and_then(Uri::parse);
        let spans = match &uri {
            Ok(u) => u.spans_in(self).map(Ok),
            Err(e) => Some(Err(*e)),
        };
        if let Some(spans) = spans {
            let _ = self.decoded.request_uri.set(spans);
        }
        uri
    }

    /// All header lines in order.
    pub fn headers(&self) -> std::slice::Iter<'_, Header> {
        self.headers.iter()
    }

    /// The first header with this name.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name == name)
    }

    /// Every header with this name, in order.
    pub fn headers_of(&self, name: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        self.headers.iter().filter(move |h| h.name == name)
    }

    /// Every header with this name as written (case-insensitive, compact forms mapped).
    pub fn headers_named(&self, name: &[u8]) -> impl Iterator<Item = &Header> + '_ {
        let key = NameKey::new(name);
        self.headers
            .iter()
            .filter(move |h| key.matches(h.name, self.slice(h.name_span)))
    }

    /// The value of the first header with this name.
    pub fn header_value(&self, name: HeaderName) -> Option<&[u8]> {
        self.header(name).map(|h| self.slice(h.value))
    }

    /// The values of every header with this name; list headers (Via, Route, Record-Route,
    /// Contact, Require, ...) are split at commas outside quotes and `<>`.
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = Span> + '_ {
        self.headers_of(name).flat_map(move |h| {
            let value = self.slice(h.value);
            let split = name.is_list().then(|| CommaSplit::new(value));
            let whole = (!name.is_list()).then_some(h.value);
            split
                .into_iter()
                .flatten()
                .filter_map(move |v| self.span_of(v))
                .chain(whole)
        })
    }

    fn values_bytes(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> + '_ {
        self.header_values(name).map(move |s| self.slice(s))
    }

    /// Offset of the empty line that ends the headers.
    pub fn headers_end(&self) -> u32 {
        self.headers_end
    }

    /// The body bytes (per Content-Length, or the rest of the datagram without one).
    pub fn body(&self) -> &[u8] {
        self.slice(self.body)
    }

    pub fn body_span(&self) -> Span {
        self.body
    }

    /// The Content-Length value, `None` when the header is absent.
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    /// The first Via value.
    pub fn top_via(&self) -> Result<Via<'_>, SipError> {
        if let Some(cached) = self.decoded.top_via.get() {
            return cached.map(|spans| Via::from_spans(self, &spans));
        }
        // The first element of `header_values(Via)`, without the span round trip.
        let via = self
            .headers_of(HeaderName::Via)
            .find_map(|h| CommaSplit::new(self.slice(h.value)).next())
            .ok_or(SipError::bad_request("missing Via"))
            .and_then(Via::parse);
        let spans = match &via {
            Ok(v) => v.spans_in(self).map(Ok),
            Err(e) => Some(Err(*e)),
        };
        if let Some(spans) = spans {
            let _ = self.decoded.top_via.set(spans);
        }
        via
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, SipError>> + '_ {
        self.values_bytes(HeaderName::Via).map(Via::parse)
    }

    fn single(&self, name: HeaderName, missing: &'static str) -> Result<&[u8], SipError> {
        self.header_value(name)
            .ok_or(SipError::bad_request(missing))
    }

    pub fn cseq(&self) -> Result<CSeq<'_>, SipError> {
        self.single(HeaderName::CSeq, "missing CSeq")
            .and_then(CSeq::parse)
    }

    pub fn call_id(&self) -> Result<&[u8], SipError> {
        let v = self.single(HeaderName::CallId, "missing Call-ID")?;
        if v.is_empty() || any_lws(v) {
            return Err(SipError::bad_request("bad Call-ID"));
        }
        Ok(v)
    }

    pub fn from(&self) -> Result<NameAddr<'_>, SipError> {
        self.single(HeaderName::From, "missing From")
            .and_then(NameAddr::parse)
    }

    pub fn to(&self) -> Result<NameAddr<'_>, SipError> {
        self.single(HeaderName::To, "missing To")
            .and_then(NameAddr::parse)
    }

    /// The From tag: `self.from().ok()?.tag()`, decoded once per message.
    pub fn from_tag(&self) -> Option<&[u8]> {
        let span = self.decoded.from_tag.get_or_init(|| {
            let tag = self
                .single(HeaderName::From, "missing From")
                .and_then(NameAddr::parse_tag);
            tag.ok().flatten().and_then(|t| self.span_of(t))
        });
        span.map(|s| self.slice(s))
    }

    /// The To tag: `self.to().ok()?.tag()`, decoded once per message.
    pub fn to_tag(&self) -> Option<&[u8]> {
        let span = self.decoded.to_tag.get_or_init(|| {
            let tag = self
                .single(HeaderName::To, "missing To")
                .and_then(NameAddr::parse_tag);
            tag.ok().flatten().and_then(|t| self.span_of(t))
        });
        span.map(|s| self.slice(s))
    }

    /// Max-Forwards, `None` when absent.
    pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
        self.header_value(HeaderName::MaxForwards)
            .map(|v| parse_u32(v).ok_or(SipError::bad_request("bad Max-Forwards")))
            .transpose()
    }

    /// Expires, `None` when absent; huge values saturate to u32::MAX.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.header_value(HeaderName::Expires)
            .map(|v| {
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                    Err(SipError::bad_request("bad Expires"))
                } else {
                    Ok(parse_u32(v).unwrap_or(u32::MAX))
                }
            })
            .transpose()
    }

    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'_>, SipError>> + '_ {
        self.values_bytes(HeaderName::Contact).map(Contact::parse)
    }

    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, SipError>> + '_ {
        self.values_bytes(HeaderName::Route).map(NameAddr::parse)
    }

    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, SipError>> + '_ {
        self.values_bytes(HeaderName::RecordRoute)
            .map(NameAddr::parse)
    }

    pub fn content_type(&self) -> Result<Option<ContentType<'_>>, SipError> {
        self.header_value(HeaderName::ContentType)
            .map(ContentType::parse)
            .transpose()
    }

    /// Option tags of every Require header.
    pub fn require(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.values_bytes(HeaderName::Require)
            .filter(|t| !t.is_empty())
    }

    /// Option tags of every Proxy-Require header (a proxy answers 420 for unknown ones).
    pub fn proxy_require(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.values_bytes(HeaderName::ProxyRequire)
            .filter(|t| !t.is_empty())
    }

    /// Option tags of every Supported header.
    pub fn supported(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.values_bytes(HeaderName::Supported)
            .filter(|t| !t.is_empty())
    }

    /// Every Reason value (Reason is a comma list in RFC 3326).
    pub fn reasons(&self) -> impl Iterator<Item = Result<Reason<'_>, SipError>> + '_ {
        self.headers_of(HeaderName::Reason)
            .flat_map(move |h| CommaSplit::new(self.slice(h.value)))
            .map(Reason::parse)
    }

    /// The checks a proxy makes before routing a request (or relaying a reply).
    pub fn validate(&self) -> Result<(), SipError> {
        for (name, missing) in [
            (HeaderName::Via, "missing Via"),
            (HeaderName::From, "missing From"),
            (HeaderName::To, "missing To"),
            (HeaderName::CallId, "missing Call-ID"),
            (HeaderName::CSeq, "missing CSeq"),
        ] {
            if self.header(name).is_none() {
                return Err(SipError::bad_request(missing));
            }
        }
        for (name, dup) in [
            (HeaderName::From, "more than one From"),
            (HeaderName::To, "more than one To"),
            (HeaderName::CallId, "more than one Call-ID"),
            (HeaderName::CSeq, "more than one CSeq"),
            (HeaderName::MaxForwards, "more than one Max-Forwards"),
        ] {
            if self.headers_of(name).nth(1).is_some() {
                return Err(SipError::bad_request(dup));
            }
        }
        let cseq = self.cseq()?;
        self.call_id()?;
        // The tags and the top Via decoded here are kept: the script asks for them again.
        let from = self.from()?;
        let _ = self
            .decoded
            .from_tag
            .set(from.tag().and_then(|t| self.span_of(t)));
        let to = self.to()?;
        let _ = self
            .decoded
            .to_tag
            .set(to.tag().and_then(|t| self.span_of(t)));
        self.top_via()?;
        for via in self.vias().skip(1) {
            via?;
        }
        self.max_forwards()?;
        if let StartLine::Request { method_span, .. } = self.start {
            // CANCEL and ACK carry their own method in CSeq too (RFC 3261 9.1, 17.1.1.3).
            if cseq.method != self.slice(method_span) {
                return Err(SipError::bad_request(
                    "CSeq method does not match request method",
                ));
            }
            self.request_uri()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP 10.0.0.2\r\n\
v: SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
i: call-1@example.com\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@10.0.0.1>, \"x,y\" <sip:z@h;a=1,2>\r\n\
l: 4\r\n\
\r\n\
bodyTRAILING";

    #[test]
    fn index_and_views() -> TestResult {
        let m = Message::parse_slice(INVITE)?;
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri_bytes(), Some(&b"sip:bob@example.com"[..]));
        assert_eq!(m.headers().count(), 9);
        assert_eq!(m.vias().count(), 3);
        assert_eq!(m.top_via()?.branch(), Some(&b"z9hG4bK1"[..]));
        assert_eq!(m.top_via()?.rport(), Some(None));
        assert_eq!(m.from()?.tag(), Some(&b"a1"[..]));
        assert_eq!(m.to()?.tag(), None);
        assert_eq!(m.call_id()?, b"call-1@example.com");
        assert_eq!(m.cseq()?.number, 1);
        assert_eq!(m.max_forwards()?, Some(70));
        assert_eq!(m.contacts().count(), 2);
        assert_eq!(m.body(), b"body");
        assert_eq!(m.headers_named(b"CALL-id").count(), 1);
        assert_eq!(m.headers_named(b"v").count(), 2);
        m.validate()?;
        Ok(())
    }

    #[test]
    fn kept_views_equal_fresh_decodes() -> TestResult {
        for raw in [
            INVITE,
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::1]:5070;ttl=3;maddr=x;received=1.2.3.4;rport=9\r\nFrom: a <sip:a@b>;tag=1;tag=2\r\nTo: <sip:c@d>;tag=t\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch\r\nFrom: <sip:a@b\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nFrom: sip:a@b;tag=x\r\nTo: \"open <sip:x>;tag=1\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nFrom: a\"b <sip:x>;tag=1\r\nTo: <sip:x@y>;tag=1;=bad\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nFrom: <bad uri>;tag=1\r\nTo: Bob <sip:b@h>;TAG=t2\r\n\r\n",
            // Passes `validate`, with both tags.
            b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:1;branch=z9hG4bKx, SIP/2.0/UDP g\r\nFrom: a <sip:a@b>;tag=f1\r\nTo: <sip:c@d>;x;tag=t1\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n",
        ] {
            let m = Message::parse_slice(raw)?;
            let fresh = m
                .header_values(HeaderName::Via)
                .next()
                .ok_or(SipError::bad_request("missing Via"))
                .and_then(|s| Via::parse(m.slice(s)));
            // The first call decodes and keeps, the second rebuilds from the kept positions.
            assert_eq!(m.top_via(), fresh);
            assert_eq!(m.top_via(), fresh);
            assert_eq!(m.clone().top_via(), fresh);
            let from_tag = m.from().ok().and_then(|f| f.tag());
            assert_eq!((m.from_tag(), m.from_tag()), (from_tag, from_tag));
            let to_tag = m.to().ok().and_then(|t| t.tag());
            assert_eq!((m.to_tag(), m.to_tag()), (to_tag, to_tag));
            // `validate` keeps what it decodes; the kept values are the same.
            let v = Message::parse_slice(raw)?;
            let _ = v.validate();
            assert_eq!(v.top_via(), fresh);
            assert_eq!((v.from_tag(), v.to_tag()), (from_tag, to_tag));
        }
        Ok(())
    }

    #[test]
    fn kept_request_uri_equals_fresh_decode() -> TestResult {
        for ruri in [
            &b"sip:a@b"[..],
            b"sips:alice:pw@[2001:db8::1]:5071;transport=tcp;lr?subject=x",
            b"sip:10.0.0.1",
            b"sip:h;maddr=1.2.3.4",
            b"tel:+123;phone-context=x",
            b"urn:service:sos",
            b"sip:bad host@",
            b"sip:a@b:99999",
        ] {
            let mut raw = b"OPTIONS ".to_vec();
            raw.extend_from_slice(ruri);
            raw.extend_from_slice(b" SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n");
            let Ok(m) = Message::parse_slice(&raw) else {
                continue;
            };
            let fresh = Uri::parse(ruri);
            // The first call decodes and keeps, the second rebuilds from the kept positions.
            assert_eq!(m.request_uri(), fresh);
            assert_eq!(m.request_uri(), fresh);
            assert_eq!(m.clone().request_uri(), fresh);
        }
        let reply = Message::parse_slice(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n")?;
        assert!(reply.request_uri().is_err());
        assert!(reply.request_uri().is_err());
        Ok(())
    }

    #[test]
    fn lf_only_and_folding() -> TestResult {
        let m = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h\n ;branch=x\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 2\n\tOPTIONS\n\n",
        )
        ?;
        assert_eq!(m.top_via()?.branch(), Some(&b"x"[..]));
        assert_eq!(m.cseq()?.method, b"OPTIONS");
        assert_eq!(m.body(), b"");
        m.validate()?;
        Ok(())
    }

    #[test]
    fn start_line_errors() -> TestResult {
        let e = Message::parse_slice(b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.status(), 505);
        let p = e.partial().ok_or("no partial message")?;
        assert!(p.top_via().is_ok());
        for bad in [
            &b"INVITE  sip:a@b  SIP/2.0\r\n\r\n"[..],
            b"INVITE <sip:a@b> SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b\r\n\r\n",
            b"SIP/2.0 4294967301 x\r\n\r\n",
            b"SIP/2.0 20 x\r\n\r\n",
        ] {
            assert_eq!(
                Message::parse_slice(bad).unwrap_err().status(),
                400,
                "{:?}",
                bad
            );
        }
        let r = Message::parse_slice(b"SIP/2.0 100 \r\n\r\n")?;
        assert_eq!(r.status_code(), Some(100));
        assert_eq!(r.reason_phrase(), Some(&b""[..]));
        Ok(())
    }

    #[test]
    fn content_length_errors() -> TestResult {
        for bad in [
            &b"OPTIONS sip:a@b SIP/2.0\r\nl: 10\r\n\r\nshort"[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
        ] {
            assert_eq!(Message::parse_slice(bad).unwrap_err().status(), 400);
        }
        let same = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\nl: 2\r\n\r\nabc",
        )?;
        assert_eq!(same.body(), b"ab");
        Ok(())
    }

    #[test]
    fn validate_mismatch_and_duplicates() -> TestResult {
        let m = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
        )
        ?;
        assert_eq!(
            m.validate().unwrap_err().what,
            "CSeq method does not match request method"
        );
        let m = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\nt: <sip:c@d>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        )
        ?;
        assert_eq!(m.validate().unwrap_err().what, "more than one To");
        Ok(())
    }
}
