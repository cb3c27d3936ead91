//! Byte-level helpers shared by the parsers: character classes, LWS trimming,
//! comma splitting that respects quotes and `<>`, and lazy parameter lists.

use crate::error::SipError;

const TOKEN_BIT: u8 = 1;
const URI_BIT: u8 = 2;
const HOST_BIT: u8 = 4;
const DIGIT_DOT_BIT: u8 = 8;
const LWS_BIT: u8 = 16;
/// Ends a Via sent-by host: `:`, `;` or LWS.
pub(crate) const VIA_HOST_END: u8 = 32;
/// Ends a sip-URI host: `:`, `;` or `?`.
pub(crate) const URI_HOST_END: u8 = 64;
/// Ends an unquoted parameter value: `;` or LWS.
const PARAM_VALUE_END: u8 = 128;

/// Byte classes as one table: these tests run for every byte of names, URIs and hosts.
/// `URI_BIT`: printable ASCII but `<`, `>` and `"`; `HOST_BIT`: alphanumerics, `-`, `.`, `_`.
#[allow(clippy::indexing_slicing)] // const evaluation; `b < 256` by the loop condition
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        // RFC 3261 `token`.
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            class |= TOKEN_BIT;
        }
        // Printable ASCII except the delimiters that end a URI in a header.
        if c > b' ' && c < 0x7f && !matches!(c, b'<' | b'>' | b'"') {
            class |= URI_BIT;
        }
        // Host names: alphanumerics, `-`, `.`, `_`.
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_') {
            class |= HOST_BIT;
        }
        if c.is_ascii_digit() || c == b'.' {
            class |= DIGIT_DOT_BIT;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            class |= LWS_BIT;
        }
        if matches!(c, b':' | b';' | b' ' | b'\t' | b'\r' | b'\n') {
            class |= VIA_HOST_END;
        }
        if matches!(c, b':' | b';' | b'?') {
            class |= URI_HOST_END;
        }
        if matches!(c, b';' | b' ' | b'\t' | b'\r' | b'\n') {
            class |= PARAM_VALUE_END;
        }
        table[b] = class;
        b += 1;
    }
    table
};

fn class(b: u8) -> u8 {
    // A u8 is always in range; the optimiser removes the bounds check.
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

/// RFC 3261 `token` characters.
pub(crate) fn is_token(b: u8) -> bool {
    class(b) & TOKEN_BIT != 0
}

/// What a host text can be, from one pass over its bytes.
pub(crate) struct HostChars {
    /// Every byte is a host-name byte.
    pub(crate) name: bool,
    /// Every byte is a digit or a dot (a candidate IPv4 address).
    pub(crate) digits_and_dots: bool,
}

pub(crate) fn host_chars(s: &[u8]) -> HostChars {
    let all = s.iter().fold(u8::MAX, |acc, &b| acc & class(b));
    HostChars {
        name: all & HOST_BIT != 0,
        digits_and_dots: all & DIGIT_DOT_BIT != 0,
    }
}

/// The host at the start of `s`, ending before the first byte in class `end` (or at the
/// end of `s`), and what its bytes can be: the search and the check in one pass.
pub(crate) fn host_prefix(s: &[u8], end: u8) -> (usize, HostChars) {
    let mut all = u8::MAX;
    let mut len = s.len();
    for (i, &b) in s.iter().enumerate() {
        let c = class(b);
        if c & end != 0 {
            len = i;
            break;
        }
        all &= c;
    }
    let chars = HostChars {
        name: all & HOST_BIT != 0,
        digits_and_dots: all & DIGIT_DOT_BIT != 0,
    };
    (len, chars)
}

/// True when every byte may appear in a URI.
pub(crate) fn all_uri_chars(s: &[u8]) -> bool {
    s.iter().fold(u8::MAX, |acc, &b| acc & class(b)) & URI_BIT != 0
}

/// True when any byte is LWS (one branch-free pass).
pub(crate) fn any_lws(s: &[u8]) -> bool {
    s.iter().fold(0, |acc, &b| acc | class(b)) & LWS_BIT != 0
}

/// Whitespace inside a header value: folded lines keep their CR LF, so those count too.
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_lws(s: &[u8]) -> &[u8] {
    // Most values are already trimmed.
    if s.first().is_some_and(|&b| !is_lws(b)) && s.last().is_some_and(|&b| !is_lws(b)) {
        return s;
    }
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |p| p + 1);
    s.get(start..end).unwrap_or_default()
}

pub(crate) fn skip_lws(s: &[u8]) -> &[u8] {
    // Usually there is nothing to skip.
    if s.first().is_some_and(|&b| !is_lws(b)) {
        return s;
    }
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    s.get(start..).unwrap_or_default()
}

pub(crate) fn all_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// Parses a decimal u32 (leading zeros allowed). `None` when empty, non-digit or overflowing.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(n)
}

/// Length of a quoted string starting at `s[0] == '"'`, including both quotes.
/// `None` when the closing quote is missing.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Iterator over the comma-separated elements of a header value. Commas inside
/// quoted strings and `<...>` do not split. Elements are LWS-trimmed; empty ones are yielded
/// as empty slices so that callers can reject them.
#[derive(Clone, Debug)]
pub(crate) struct CommaSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaSplit<'a> {
    pub(crate) fn new(value: &'a [u8]) -> CommaSplit<'a> {
        let value = trim_lws(value);
        CommaSplit {
            rest: if value.is_empty() { None } else { Some(value) },
        }
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        let mut i = 0;
        // Jump between the only bytes that matter: ',' splits, '"' and '<' open spans
        // in which a ',' does not split.
        while let Some(p) = s
            .get(i..)
            .and_then(|t| memchr::memchr3(b',', b'"', b'<', t))
        {
            let at = i + p;
            let rest = s.get(at..).unwrap_or_default();
            match rest.first() {
                Some(b',') => {
                    self.rest = s.get(at + 1..);
                    return Some(trim_lws(s.get(..at).unwrap_or_default()));
                }
                Some(b'"') => match quoted_len(rest) {
                    Some(n) => i = at + n,
                    // Unbalanced quote: the rest is one element; its parser reports the error.
                    None => break,
                },
                _ => match memchr::memchr(b'>', rest) {
                    Some(n) => i = at + n + 1,
                    None => break,
                },
            }
        }
        self.rest = None;
        Some(trim_lws(s))
    }
}

/// A `;name[=value]` parameter list, kept as raw bytes and scanned on demand.
/// The raw text starts at the first `;` (or is empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a [u8],
}

/// One parameter: name and optional value (quotes kept), both LWS-trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a [u8],
    /// Value after `=`, if any (a quoted value keeps its quotes).
    pub value: Option<&'a [u8]>,
}

impl<'a> Params<'a> {
    /// Checks the syntax of a parameter list (`raw` starts with `;` or is empty, after LWS).
    pub(crate) fn parse(raw: &'a [u8]) -> Result<Params<'a>, SipError> {
        Params::parse_each(raw, |_| Ok(()))
    }

    /// Like [`Params::parse`], handing each parameter to `visit` during the same pass
    /// (views pick out `branch`, `tag`, ... without scanning again).
    pub(crate) fn parse_each(
        raw: &'a [u8],
        mut visit: impl FnMut(Param<'a>) -> Result<(), SipError>,
    ) -> Result<Params<'a>, SipError> {
        let mut rest = skip_lws(raw);
        while !rest.is_empty() {
            let (param, tail) = split_param(rest)?;
            if param.name.is_empty() {
                return Err(SipError::bad_request("empty parameter"));
            }
            visit(param)?;
            rest = tail;
        }
        Ok(Params { raw })
    }

    /// A list [`Params::parse`] already accepted (kept as positions and rebuilt).
    pub(crate) fn from_checked(raw: &'a [u8]) -> Params<'a> {
        Params { raw }
    }

    /// The raw text of the list, starting at the first `;`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates over the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            rest: skip_lws(self.raw),
        }
    }

    /// Looks a parameter up by name (case-insensitive). `Some(None)` means present without value.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// True when the parameter is present (with or without value).
    pub fn has(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }
}

/// Iterator over a [`Params`] list.
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        match split_param(self.rest) {
            Ok((param, tail)) => {
                self.rest = tail;
                Some(param)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Splits `;name[=value]` off the front of `s` (which starts with `;`).
fn split_param(s: &[u8]) -> Result<(Param<'_>, &[u8]), SipError> {
    let body = match s.split_first() {
        Some((b';', body)) => skip_lws(body),
        _ => return Err(SipError::bad_request("parameter does not start with ';'")),
    };
    let name_len = body
        .iter()
        .position(|&b| !is_token(b))
        .unwrap_or(body.len());
    let (name, after) = body.split_at(name_len);
    let after = skip_lws(after);
    let (value, tail) = match after.split_first() {
        Some((b'=', v)) => {
            let v = skip_lws(v);
            let len = match v.first() {
                Some(b'"') => quoted_len(v)
                    .ok_or(SipError::bad_request("unterminated quoted parameter value"))?,
                Some(b'[') => v
                    .iter()
                    .position(|&b| b == b']')
                    .map(|p| p + 1)
                    .ok_or(SipError::bad_request("unterminated IPv6 parameter value"))?,
                _ => v
                    .iter()
                    .position(|&b| class(b) & PARAM_VALUE_END != 0)
                    .unwrap_or(v.len()),
            };
            let (value, tail) = v.split_at(len);
            if value.is_empty() {
                return Err(SipError::bad_request("empty parameter value"));
            }
            (Some(value), skip_lws(tail))
        }
        _ => (None, after),
    };
    match tail.first() {
        None | Some(b';') => Ok((Param { name, value }, tail)),
        Some(_) => Err(SipError::bad_request("junk after parameter")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn comma_split_respects_quotes_and_angles() -> TestResult {
        let v: Vec<&[u8]> = CommaSplit::new(b" \"a,b\" <sip:x;a=1,2>;q=1 , <sip:y> ,").collect();
        assert_eq!(
            v,
            vec![&b"\"a,b\" <sip:x;a=1,2>;q=1"[..], &b"<sip:y>"[..], &b""[..]]
        );
        Ok(())
    }

    #[test]
    fn params_with_lws_and_flags() -> TestResult {
        let p = Params::parse(b" ;   tag    = 1918181833n ; lr;x=\"a;b\"")?;
        assert_eq!(p.get(b"TAG"), Some(Some(&b"1918181833n"[..])));
        assert_eq!(p.get(b"lr"), Some(None));
        assert_eq!(p.get(b"x"), Some(Some(&b"\"a;b\""[..])));
        assert_eq!(p.get(b"none"), None);
        assert!(Params::parse(b";;").is_err());
        assert!(Params::parse(b";a=").is_err());
        Ok(())
    }

    #[test]
    fn byte_classes_match_their_definitions() {
        for b in 0..=255u8 {
            let token = b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
            assert_eq!(is_token(b), token, "{b}");
            let uri = b > b' ' && b < 0x7f && !b"<>\"".contains(&b);
            let host = b.is_ascii_alphanumeric() || b"-._".contains(&b);
            let one = [b];
            assert_eq!(host_chars(&one).name, host, "{b}");
            assert_eq!(
                host_chars(&one).digits_and_dots,
                b.is_ascii_digit() || b == b'.'
            );
            assert_eq!(all_uri_chars(&one), uri, "{b}");
            assert_eq!(any_lws(&one), is_lws(b), "{b}");
            assert_eq!(class(b) & PARAM_VALUE_END != 0, b == b';' || is_lws(b));
        }
    }

    #[test]
    fn whole_text_classes() {
        assert!(host_chars(b"10.0.0.1").digits_and_dots);
        assert!(host_chars(b"10.0.0.1").name);
        assert!(!host_chars(b"10.0.0.a").digits_and_dots);
        assert!(host_chars(b"10.0.0.a").name);
        assert!(!host_chars(b"a b").name);
        assert!(all_uri_chars(b"sip:a@b;lr"));
        assert!(!all_uri_chars(b"sip:a@b c"));
        assert!(all_uri_chars(b""));
        assert!(any_lws(b"abc@d\te"));
        assert!(!any_lws(b"abc@de"));
        assert_eq!(trim_lws(b" a \r\n"), b"a");
        assert_eq!(trim_lws(b"a"), b"a");
        assert_eq!(trim_lws(b" \t"), b"");
        assert_eq!(trim_lws(b""), b"");
    }

    #[test]
    fn host_prefix_stops_at_its_end_class() {
        let (len, chars) = host_prefix(b"h.example.com:5060;x", VIA_HOST_END);
        assert_eq!(len, 13);
        assert!(chars.name && !chars.digits_and_dots);
        let (len, chars) = host_prefix(b"10.0.0.1 ;x", VIA_HOST_END);
        assert_eq!(len, 8);
        assert!(chars.name && chars.digits_and_dots);
        assert_eq!(host_prefix(b"a?b:c", URI_HOST_END).0, 1);
        assert_eq!(host_prefix(b"a b?c", URI_HOST_END).0, 3);
        assert!(!host_prefix(b"a b?c", URI_HOST_END).1.name);
        assert_eq!(host_prefix(b"abc", URI_HOST_END).0, 3);
        for b in 0..=255u8 {
            let via_end = b":; \t\r\n".contains(&b);
            assert_eq!(host_prefix(&[b], VIA_HOST_END).0 == 0, via_end, "{b}");
            let uri_end = b":;?".contains(&b);
            assert_eq!(host_prefix(&[b], URI_HOST_END).0 == 0, uri_end, "{b}");
        }
    }

    #[test]
    fn u32_overflow_is_none() -> TestResult {
        assert_eq!(parse_u32(b"0009"), Some(9));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"-1"), None);
        Ok(())
    }
}
