//! The checks of Kamailio's sanity module, as pure functions over a parsed request.
//! Each failing check names the reply Kamailio sends for it (or none, for the checks
//! Kamailio fails silently).

use sip_msg::{HeaderName, Message, NameAddr, Scheme, StartLine, Uri};

/// R-URI SIP version is 2.0.
pub const RURI_SIP_VERSION: u32 = 1;
/// R-URI scheme is sip, sips, tel or tels.
pub const RURI_SCHEME: u32 = 2;
/// To, From, CSeq, Call-ID and Via are present.
pub const REQUIRED_HEADERS: u32 = 4;
/// Kamailio: disabled (always passes).
pub const VIA_SIP_VERSION: u32 = 8;
/// Kamailio: disabled (always passes).
pub const VIA_PROTOCOL: u32 = 16;
/// CSeq method equals the request method.
pub const CSEQ_METHOD: u32 = 32;
/// CSeq number is a valid 32-bit unsigned integer.
pub const CSEQ_VALUE: u32 = 64;
/// Content-Length equals the body length.
pub const CONTENT_LENGTH: u32 = 128;
/// Expires is a valid 32-bit unsigned integer.
pub const EXPIRES_VALUE: u32 = 256;
/// Every Proxy-Require tag is in the `proxy_require` modparam list.
pub const PROXY_REQUIRE: u32 = 512;
/// The URIs selected by `uri_checks` parse.
pub const PARSE_URIS: u32 = 1024;
/// Every Authorization/Proxy-Authorization is complete Digest.
pub const DIGEST: u32 = 2048;
/// From/To carry at most one tag.
pub const DUPLICATE_TAGS: u32 = 4096;
/// Like [`DIGEST`] but other schemes pass.
pub const AUTHORIZATION: u32 = 8192;
/// The first Via parses and has a host.
pub const FIRST_VIA: u32 = 16384;

/// `default_checks` default: 1+2+4+32+64+128+256+512+2048.
pub const DEFAULT_CHECKS: u32 = 3047;

/// `uri_checks` bits.
pub const URI_RURI: u32 = 1;
pub const URI_FROM: u32 = 2;
pub const URI_TO: u32 = 4;
pub const URI_CONTACT: u32 = 8;
/// `uri_checks` default: R-URI, From, To.
pub const DEFAULT_URI_CHECKS: u32 = 7;

/// A failed check: the reply Kamailio sends for it (`None`: fails without replying) and
/// the extra header lines that go with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanityFailure {
    pub reply: Option<(u16, &'static str)>,
    /// `Unsupported: ...` for 420.
    pub extra_header: Option<String>,
}

impl SanityFailure {
    fn reply(code: u16, reason: &'static str) -> SanityFailure {
        SanityFailure {
            reply: Some((code, reason)),
            extra_header: None,
        }
    }

    fn silent() -> SanityFailure {
        SanityFailure {
            reply: None,
            extra_header: None,
        }
    }
}

/// Kamailio's `str2valid_uint`: 1..=10 digits within u32.
fn valid_u32(s: &[u8]) -> bool {
    if s.is_empty() || s.len() > 10 {
        return false;
    }
    // Ten digits fit in a u64, so the sum cannot overflow before the range check.
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return false;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    n <= u64::from(u32::MAX)
}

/// Schemes Kamailio's URI parser accepts.
fn parsable_scheme(uri: &Uri<'_>) -> bool {
    matches!(uri.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel)
        || uri.scheme_raw.eq_ignore_ascii_case(b"tels")
        || uri.scheme_raw.eq_ignore_ascii_case(b"urn")
}

/// What the checks need from the header list, gathered in one pass instead of one
/// search per check.
struct HeaderScan<'m> {
    /// Bit `1 << (name as u32)` for every header name present.
    present: u64,
    /// The first CSeq value.
    cseq: Option<&'m [u8]>,
    /// The first Expires value.
    expires: Option<&'m [u8]>,
}

// Every HeaderName has a bit in `HeaderScan::present`.
const _: () = assert!((HeaderName::Other as u32) < u64::BITS);

fn bit(name: HeaderName) -> u64 {
    1u64 << (name as u32)
}

impl<'m> HeaderScan<'m> {
    fn new(msg: &'m Message) -> HeaderScan<'m> {
        let mut scan = HeaderScan {
            present: 0,
            cseq: None,
            expires: None,
        };
        for h in msg.headers() {
            scan.present |= bit(h.name);
            match h.name {
                HeaderName::CSeq if scan.cseq.is_none() => scan.cseq = Some(msg.slice(h.value)),
                HeaderName::Expires if scan.expires.is_none() => {
                    scan.expires = Some(msg.slice(h.value));
                }
                _ => {}
            }
        }
        scan
    }

    fn has(&self, name: HeaderName) -> bool {
        self.present & bit(name) != 0
    }
}

/// The CSeq number and method (both trimmed, either may be empty).
fn cseq_parts(value: &[u8]) -> (&[u8], &[u8]) {
    let v = value.trim_ascii();
    let end = v
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(v.len());
    let (number, rest) = v.split_at(end);
    (number, rest.trim_ascii())
}

fn check_ruri_version(msg: &Message) -> Result<(), SanityFailure> {
    if let StartLine::Request { version, .. } = msg.start_line() {
        if msg.slice(*version) != b"SIP/2.0" {
            return Err(SanityFailure::reply(505, "Version Not Supported (R-URI)"));
        }
    }
    Ok(())
}

fn check_ruri_scheme(msg: &Message) -> Result<(), SanityFailure> {
    match msg.request_uri() {
        Err(_) => Err(SanityFailure::reply(400, "Bad Request URI")),
        Ok(uri) if !parsable_scheme(&uri) => Err(SanityFailure::reply(
            416,
            "Unsupported URI Scheme in Request URI",
        )),
        Ok(_) => Ok(()),
    }
}

fn check_required(scan: &HeaderScan<'_>) -> Result<(), SanityFailure> {
    let all = [
        HeaderName::To,
        HeaderName::From,
        HeaderName::CSeq,
        HeaderName::CallId,
        HeaderName::Via,
    ]
    .into_iter()
    .all(|h| scan.has(h));
    if all {
        Ok(())
    } else {
        Err(SanityFailure::reply(
            400,
            "Missing Required Header in Request",
        ))
    }
}

fn check_cseq_method(msg: &Message, cseq: Option<(&[u8], &[u8])>) -> Result<(), SanityFailure> {
    let (_, method) = cseq.ok_or_else(SanityFailure::silent)?;
    if method.is_empty() {
        return Err(SanityFailure::reply(400, "Missing method in CSeq header"));
    }
    if Some(method) != msg.method_bytes() {
        return Err(SanityFailure::reply(
            400,
            "CSeq method does not match request method",
        ));
    }
    Ok(())
}

fn check_cseq_value(cseq: Option<(&[u8], &[u8])>) -> Result<(), SanityFailure> {
    let (number, _) = cseq.ok_or_else(SanityFailure::silent)?;
    if number.is_empty() {
        return Err(SanityFailure::reply(400, "Missing number in CSeq header"));
    }
    if !valid_u32(number) {
        return Err(SanityFailure::reply(400, "CSeq number is illegal"));
    }
    Ok(())
}

/// siplab's framing already rejects a Content-Length beyond the datagram (400 at parse)
/// and discards bytes after the body (RFC 4475 dblreq), so what is left to check is that
/// the header and the body agree.
fn check_content_length(msg: &Message) -> Result<(), SanityFailure> {
    match msg.content_length() {
        Some(cl) if cl as usize != msg.body().len() => {
            Err(SanityFailure::reply(400, "Content-Length mis-match"))
        }
        _ => Ok(()),
    }
}

fn check_expires(expires: Option<&[u8]>) -> Result<(), SanityFailure> {
    let Some(v) = expires else {
        return Ok(());
    };
    let v = v.trim_ascii();
    if v.is_empty() {
        return Err(SanityFailure::reply(
            400,
            "Missing number in Expires header",
        ));
    }
    if !valid_u32(v) {
        return Err(SanityFailure::reply(400, "Expires value is illegal"));
    }
    Ok(())
}

fn check_proxy_require(msg: &Message, supported: &[String]) -> Result<(), SanityFailure> {
    let unknown: Vec<String> = msg
        .proxy_require()
        .filter(|tag| !supported.iter().any(|s| s.as_bytes() == *tag))
        .map(|tag| String::from_utf8_lossy(tag).into_owned())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    // Kamailio's reason phrase, not RFC 3261's "Bad Extension" (checked on 5.6.3).
    Err(SanityFailure {
        reply: Some((420, "Bad Proxy Require Extension")),
        extra_header: Some(format!("Unsupported: {}", unknown.join(", "))),
    })
}

fn check_name_addr(
    msg: &Message,
    name: HeaderName,
    missing: &'static str,
    bad: &'static str,
) -> Result<(), SanityFailure> {
    let value = msg
        .header_value(name)
        .ok_or(SanityFailure::reply(400, missing))?;
    match NameAddr::parse(value) {
        Ok(na) if parsable_scheme(&na.uri) => Ok(()),
        _ => Err(SanityFailure::reply(400, bad)),
    }
}

fn check_uris(msg: &Message, uri_checks: u32) -> Result<(), SanityFailure> {
    if uri_checks & URI_RURI != 0 && !msg.request_uri().is_ok_and(|u| parsable_scheme(&u)) {
        return Err(SanityFailure::reply(400, "Bad Request URI"));
    }
    if uri_checks & URI_FROM != 0 {
        check_name_addr(msg, HeaderName::From, "Missing From Header", "Bad From URI")?;
    }
    if uri_checks & URI_TO != 0 {
        check_name_addr(msg, HeaderName::To, "Missing To Header", "Bad To URI")?;
    }
    if uri_checks & URI_CONTACT != 0 {
        // Kamailio checks the first Contact only; a missing Contact passes.
        if let Some(first) = msg.contacts().next() {
            match first {
                Ok(sip_msg::Contact::Addr(na)) if !parsable_scheme(&na.uri) => {
                    return Err(SanityFailure::reply(400, "Bad Contact URI"));
                }
                Err(_) => return Err(SanityFailure::reply(400, "Bad Contact Header")),
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

/// Outcome of checking one credentials header.
enum Credentials {
    CompleteDigest,
    NotDigest,
    Broken,
}

fn digest_params(value: &[u8]) -> Credentials {
    let value = value.trim_ascii();
    let end = value
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(value.len());
    let (scheme, params) = value.split_at(end);
    if !scheme.eq_ignore_ascii_case(b"digest") {
        return Credentials::NotDigest;
    }
    let mut found = [false; 5];
    const REQUIRED: [&[u8]; 5] = [b"username", b"realm", b"nonce", b"uri", b"response"];
    for item in split_outside_quotes(params) {
        let Some(eq) = item.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, val) = item.split_at(eq);
        let val = val.get(1..).unwrap_or_default().trim_ascii();
        let val = val
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(val);
        if let Some(i) = REQUIRED
            .iter()
            .position(|r| name.trim_ascii().eq_ignore_ascii_case(r))
        {
            // The realm may be empty (RFC 2617 allows `realm=""`); the others may not.
            if let Some(slot) = found.get_mut(i) {
                *slot = i == 1 || !val.is_empty();
            }
        }
    }
    if found.iter().all(|f| *f) {
        Credentials::CompleteDigest
    } else {
        Credentials::Broken
    }
}

fn split_outside_quotes(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s.get(start..).unwrap_or_default());
    parts.into_iter()
}

fn check_credentials(msg: &Message, other_schemes_pass: bool) -> Result<(), SanityFailure> {
    // One pass over the headers: every failure is the same silent one, so order is moot.
    let values = msg
        .headers()
        .filter(|h| {
            matches!(
                h.name,
                HeaderName::Authorization | HeaderName::ProxyAuthorization
            )
        })
        .map(|h| msg.slice(h.value));
    for v in values {
        match digest_params(v) {
            Credentials::CompleteDigest => {}
            Credentials::NotDigest if other_schemes_pass => {}
            // Kamailio fails these checks without replying.
            Credentials::NotDigest | Credentials::Broken => return Err(SanityFailure::silent()),
        }
    }
    Ok(())
}

fn check_duplicate_tags(msg: &Message) -> Result<(), SanityFailure> {
    for name in [HeaderName::From, HeaderName::To] {
        let Some(v) = msg.header_value(name) else {
            continue;
        };
        let na = NameAddr::parse(v).map_err(|_| SanityFailure::silent())?;
        if na
            .params
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case(b"tag"))
            .count()
            > 1
        {
            return Err(SanityFailure::silent());
        }
    }
    Ok(())
}

fn check_first_via(msg: &Message) -> Result<(), SanityFailure> {
    match msg.top_via() {
        Ok(v) if !v.host_raw.is_empty() => Ok(()),
        _ => Err(SanityFailure::reply(400, "Bad Via Header")),
    }
}

/// Runs the checks selected by `checks` in Kamailio's order; the first failure wins.
/// Replies are not checked (Kamailio's checks are for requests).
pub fn sanity_check(
    msg: &Message,
    checks: u32,
    uri_checks: u32,
    proxy_require: &[String],
) -> Result<(), SanityFailure> {
    if !msg.is_request() {
        return Ok(());
    }
    let on = |bit: u32| checks & bit != 0;
    let scan = HeaderScan::new(msg);
    let cseq = scan.cseq.map(cseq_parts);
    if on(RURI_SIP_VERSION) {
        check_ruri_version(msg)?;
    }
    if on(RURI_SCHEME) {
        check_ruri_scheme(msg)?;
    }
    if on(REQUIRED_HEADERS) {
        check_required(&scan)?;
    }
    if on(CSEQ_METHOD) {
        check_cseq_method(msg, cseq)?;
    }
    if on(CSEQ_VALUE) {
        check_cseq_value(cseq)?;
    }
    if on(CONTENT_LENGTH) {
        check_content_length(msg)?;
    }
    if on(EXPIRES_VALUE) {
        check_expires(scan.expires)?;
    }
    // Without the header there is nothing to check (the common case).
    if on(PROXY_REQUIRE) && scan.has(HeaderName::ProxyRequire) {
        check_proxy_require(msg, proxy_require)?;
    }
    if on(PARSE_URIS) {
        check_uris(msg, uri_checks)?;
    }
    let credentials =
        scan.has(HeaderName::Authorization) || scan.has(HeaderName::ProxyAuthorization);
    if on(DIGEST) && credentials {
        check_credentials(msg, false)?;
    }
    if on(DUPLICATE_TAGS) {
        check_duplicate_tags(msg)?;
    }
    if on(AUTHORIZATION) && credentials {
        check_credentials(msg, true)?;
    }
    if on(FIRST_VIA) {
        check_first_via(msg)?;
    }
    Ok(())
}

/// Parses the `proxy_require` modparam: comma-separated, whitespace trimmed.
pub fn parse_proxy_require(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &str) -> Message {
        let text = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\n\
From: <sip:a@example.org>;tag=f1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\n\
{headers}Content-Length: 0\r\n\r\n"
        );
        Message::parse(text.into_bytes()).unwrap_or_else(|e| panic!("test message: {e}"))
    }

    fn run(headers: &str, supported: &[&str]) -> Result<(), SanityFailure> {
        let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        sanity_check(
            &request(headers),
            DEFAULT_CHECKS,
            DEFAULT_URI_CHECKS,
            &supported,
        )
    }

    fn replied(code: u16, reason: &'static str) -> Result<(), SanityFailure> {
        Err(SanityFailure::reply(code, reason))
    }

    #[test]
    fn valid_u32_is_kamailios_str2valid_uint() {
        for ok in ["0", "1", "0000000001", "4294967295"] {
            assert!(valid_u32(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "4294967296",
            "9999999999",
            "00000000001",
            "+1",
            "1 ",
            "1a",
            "-0",
        ] {
            assert!(!valid_u32(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn cseq_and_expires_use_the_first_header() {
        assert_eq!(run("CSeq: 1 INVITE\r\nCSeq: x BYE\r\n", &[]), Ok(()));
        assert_eq!(
            run("CSeq: 1 BYE\r\nCSeq: 1 INVITE\r\n", &[]),
            replied(400, "CSeq method does not match request method")
        );
        assert_eq!(
            run("CSeq: 1\r\n", &[]),
            replied(400, "Missing method in CSeq header")
        );
        assert_eq!(
            run("CSeq: 4294967296 INVITE\r\n", &[]),
            replied(400, "CSeq number is illegal")
        );
        assert_eq!(
            run("CSeq: 1 INVITE\r\nExpires: 60\r\nExpires: x\r\n", &[]),
            Ok(())
        );
        assert_eq!(
            run("CSeq: 1 INVITE\r\nExpires: x\r\nExpires: 60\r\n", &[]),
            replied(400, "Expires value is illegal")
        );
    }

    #[test]
    fn missing_required_header_is_found_by_the_scan() {
        assert_eq!(
            run("", &[]),
            replied(400, "Missing Required Header in Request")
        );
    }

    #[test]
    fn proxy_require_lists_every_unknown_tag() {
        assert_eq!(run("CSeq: 1 INVITE\r\n", &[]), Ok(()));
        let two = "CSeq: 1 INVITE\r\nProxy-Require: foo, bar\r\nProxy-Require: baz\r\n";
        assert_eq!(
            run(two, &["bar"]),
            Err(SanityFailure {
                reply: Some((420, "Bad Proxy Require Extension")),
                extra_header: Some("Unsupported: foo, baz".to_string()),
            })
        );
        assert_eq!(run(two, &["foo", "bar", "baz"]), Ok(()));
    }

    #[test]
    fn credentials_are_checked_only_when_present() {
        let digest = "Authorization: Digest username=\"a\", realm=\"r\", nonce=\"n\", \
uri=\"sip:b\", response=\"0123\"\r\n";
        assert_eq!(run(&format!("CSeq: 1 INVITE\r\n{digest}"), &[]), Ok(()));
        let basic = "CSeq: 1 INVITE\r\nProxy-Authorization: Basic YTpi\r\n";
        assert_eq!(run(basic, &[]), Err(SanityFailure::silent()));
        // The AUTHORIZATION check lets other schemes through.
        let msg = request(basic);
        assert_eq!(
            sanity_check(&msg, AUTHORIZATION, DEFAULT_URI_CHECKS, &[]),
            Ok(())
        );
        let broken = "CSeq: 1 INVITE\r\nAuthorization: Digest username=\"a\"\r\n";
        assert_eq!(run(broken, &[]), Err(SanityFailure::silent()));
    }
}
