//! Pseudo-variable references (`$ru`, `$var(x)`, `$(hdr(Via)[1]{s.len})`) and format strings.
//!
//! Only the shape is parsed here; whether a name exists is decided by the PV table that comes
//! with the interpreter.

use std::fmt;

/// A parsed pseudo-variable reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvRef {
    /// `rm`, `var`, `avp`, `hdr`, `T_reply_code`, `?`, `null`, …
    pub name: String,
    /// Raw text between the parentheses: `x` in `$var(x)`, `ipban=>$si` in `$sht(ipban=>$si)`.
    pub inner: Option<String>,
    /// `[n]`, `[-1]`, `[*]` or `[$var(i)]` (long form only).
    pub index: Option<PvIndex>,
    /// `{s.len}`, `{s.substr,1,2}` (long form only), in application order.
    pub transforms: Vec<Transform>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvIndex {
    Int(i64),
    /// `[*]`: all values.
    All,
    Pv(Box<PvRef>),
}

/// One transformation: `name` is the dotted class and operation (`s.substr`), `args` the raw
/// comma-separated arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    pub name: String,
    pub args: Vec<String>,
}

/// Error from parsing a PV or a format string; `offset` is the byte offset in the parsed text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for PvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl std::error::Error for PvError {}

impl PvRef {
    pub fn simple(name: &str) -> Self {
        PvRef {
            name: name.into(),
            inner: None,
            index: None,
            transforms: Vec::new(),
        }
    }

    pub fn is_null(&self) -> bool {
        self.name == "null" && self.inner.is_none() && self.index.is_none()
    }
}

impl fmt::Display for PvRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let long = self.index.is_some() || !self.transforms.is_empty();
        f.write_str(if long { "$(" } else { "$" })?;
        f.write_str(&self.name)?;
        if let Some(inner) = &self.inner {
            write!(f, "({inner})")?;
        }
        match &self.index {
            Some(PvIndex::Int(i)) => write!(f, "[{i}]")?,
            Some(PvIndex::All) => f.write_str("[*]")?,
            Some(PvIndex::Pv(p)) => write!(f, "[{p}]")?,
            None => {}
        }
        for t in &self.transforms {
            write!(f, "{{{}", t.name)?;
            for a in &t.args {
                write!(f, ",{a}")?;
            }
            f.write_str("}")?;
        }
        if long {
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn err(offset: usize, message: impl Into<String>) -> PvError {
    PvError {
        offset,
        message: message.into(),
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte index just past the `close` that balances the `open` at `start`.
fn balanced(s: &[u8], start: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < s.len() {
        if s[i] == open {
            depth += 1;
        } else if s[i] == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

/// Parses the PV at the start of `s` (which must begin with `$`). Returns the reference and the
/// number of bytes it spans.
pub fn parse_pv(s: &str) -> Result<(PvRef, usize), PvError> {
    let b = s.as_bytes();
    if b.first() != Some(&b'$') {
        return Err(err(0, "pseudo-variable must start with `$`"));
    }
    if b.get(1) == Some(&b'(') {
        return parse_long(s);
    }
    let (name, mut i) = parse_name(b, 1)?;
    let mut inner = None;
    if b.get(i) == Some(&b'(') {
        let end = balanced(b, i, b'(', b')')
            .ok_or_else(|| err(i, "unterminated `(` in pseudo-variable"))?;
        inner = Some(s[i + 1..end - 1].to_string());
        i = end;
    }
    Ok((
        PvRef {
            name,
            inner,
            index: None,
            transforms: Vec::new(),
        },
        i,
    ))
}

fn parse_name(b: &[u8], start: usize) -> Result<(String, usize), PvError> {
    match b.get(start) {
        Some(b'?') => Ok(("?".into(), start + 1)),
        Some(&c) if is_name_start(c) => {
            let mut i = start + 1;
            while i < b.len() && is_name_char(b[i]) {
                i += 1;
            }
            // Names are ASCII by construction, so this slice is valid UTF-8.
            Ok((String::from_utf8_lossy(&b[start..i]).into_owned(), i))
        }
        Some(&c) => Err(err(
            start,
            format!("bad pseudo-variable name starting with `{}`", c as char),
        )),
        None => Err(err(start, "pseudo-variable name missing after `$`")),
    }
}

fn parse_long(s: &str) -> Result<(PvRef, usize), PvError> {
    let b = s.as_bytes();
    let (name, mut i) = parse_name(b, 2)?;
    let mut pv = PvRef::simple(&name);
    if b.get(i) == Some(&b'(') {
        let end = balanced(b, i, b'(', b')')
            .ok_or_else(|| err(i, "unterminated `(` in pseudo-variable"))?;
        pv.inner = Some(s[i + 1..end - 1].to_string());
        i = end;
    }
    if b.get(i) == Some(&b'[') {
        let end = balanced(b, i, b'[', b']')
            .ok_or_else(|| err(i, "unterminated `[` in pseudo-variable index"))?;
        let text = s[i + 1..end - 1].trim();
        pv.index = Some(if text == "*" {
            PvIndex::All
        } else if text.starts_with('$') {
            let (inner_pv, used) = parse_pv(text).map_err(|e| err(i + 1 + e.offset, e.message))?;
            if used != text.len() {
                return Err(err(i + 1, format!("bad pseudo-variable index `{text}`")));
            }
            PvIndex::Pv(Box::new(inner_pv))
        } else {
            PvIndex::Int(
                text.parse::<i64>()
                    .map_err(|_| err(i + 1, format!("bad pseudo-variable index `{text}`")))?,
            )
        });
        i = end;
    }
    while b.get(i) == Some(&b'{') {
        let end = balanced(b, i, b'{', b'}')
            .ok_or_else(|| err(i, "unterminated `{` in transformation"))?;
        pv.transforms
            .push(parse_transform(&s[i + 1..end - 1], i + 1)?);
        i = end;
    }
    if b.get(i) != Some(&b')') {
        return Err(err(i, "expected `)` to close `$(`"));
    }
    Ok((pv, i + 1))
}

/// Splits `s.substr,1,$var(x)` at commas that are not nested in (), {} or [].
fn parse_transform(body: &str, offset: usize) -> Result<Transform, PvError> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut last = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[last..]);
    let name = parts[0].trim();
    let valid = name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-');
    if !valid {
        return Err(err(offset, format!("bad transformation name `{name}`")));
    }
    Ok(Transform {
        name: name.to_string(),
        args: parts[1..].iter().map(|a| a.to_string()).collect(),
    })
}

/// A piece of a format string (xlog and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatPart {
    Literal(String),
    Pv(PvRef),
}

/// Splits a format string into literal text and PVs, as Kamailio's `pv_parse_format` does: a
/// `$` that does not start a valid pseudo-variable is an error.
pub fn parse_format(s: &str) -> Result<Vec<FormatPart>, PvError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('$') {
            let (pv, used) = parse_pv(rest).map_err(|e| err(i + e.offset, e.message))?;
            if !lit.is_empty() {
                parts.push(FormatPart::Literal(std::mem::take(&mut lit)));
            }
            parts.push(FormatPart::Pv(pv));
            i += used;
        } else {
            let next = rest.find('$').unwrap_or(rest.len());
            lit.push_str(&rest[..next]);
            i += next;
        }
    }
    if !lit.is_empty() {
        parts.push(FormatPart::Literal(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(s: &str) -> PvRef {
        let (p, used) = parse_pv(s).unwrap();
        assert_eq!(used, s.len(), "whole `{s}` consumed");
        p
    }

    #[test]
    fn short_names() {
        assert_eq!(pv("$rm"), PvRef::simple("rm"));
        assert_eq!(pv("$T_reply_code"), PvRef::simple("T_reply_code"));
        assert_eq!(pv("$?"), PvRef::simple("?"));
        assert!(pv("$null").is_null());
    }

    #[test]
    fn inner_is_raw_text() {
        let p = pv("$sht(ipban=>$si)");
        assert_eq!(p.name, "sht");
        assert_eq!(p.inner.as_deref(), Some("ipban=>$si"));
        let p = pv("$hdr(User-Agent)");
        assert_eq!(p.inner.as_deref(), Some("User-Agent"));
    }

    #[test]
    fn long_form_index_and_transforms() {
        let p = pv("$(hdr(Via)[-1]{s.substr,1,$var(n)}{s.len})");
        assert_eq!(p.name, "hdr");
        assert_eq!(p.inner.as_deref(), Some("Via"));
        assert_eq!(p.index, Some(PvIndex::Int(-1)));
        assert_eq!(p.transforms.len(), 2);
        assert_eq!(p.transforms[0].name, "s.substr");
        assert_eq!(p.transforms[0].args, vec!["1", "$var(n)"]);
        assert_eq!(p.transforms[1].name, "s.len");
        assert!(p.transforms[1].args.is_empty());
        assert_eq!(pv("$(avp(a)[*])").index, Some(PvIndex::All));
        assert_eq!(
            pv("$(avp(a)[$var(i)])").index,
            Some(PvIndex::Pv(Box::new(PvRef {
                name: "var".into(),
                inner: Some("i".into()),
                index: None,
                transforms: vec![]
            })))
        );
        assert_eq!(pv("$(ci{s.len})").transforms[0].name, "s.len");
    }

    #[test]
    fn display_round_trips() {
        for s in ["$rm", "$var(x)", "$(hdr(Via)[1]{s.len})", "$(avp(a)[*])"] {
            assert_eq!(pv(s).to_string(), s);
        }
    }

    #[test]
    fn stops_at_non_name_char() {
        let (p, used) = parse_pv("$rd:$rp").unwrap();
        assert_eq!((p.name.as_str(), used), ("rd", 3));
    }

    #[test]
    fn errors() {
        assert!(parse_pv("$").is_err());
        assert!(parse_pv("$ x").is_err());
        assert!(parse_pv("$var(x").is_err());
        assert!(parse_pv("$(var(x)[a])").is_err());
        assert!(parse_pv("$(var(x){nodot})").is_err());
        assert!(parse_pv("$(var(x)").is_err());
    }

    #[test]
    fn format_splits_literals_and_pvs() {
        let parts = parse_format("REQ $rm $ru src=$si:$sp v=$var(x)\n").unwrap();
        assert_eq!(
            parts,
            vec![
                FormatPart::Literal("REQ ".into()),
                FormatPart::Pv(PvRef::simple("rm")),
                FormatPart::Literal(" ".into()),
                FormatPart::Pv(PvRef::simple("ru")),
                FormatPart::Literal(" src=".into()),
                FormatPart::Pv(PvRef::simple("si")),
                FormatPart::Literal(":".into()),
                FormatPart::Pv(PvRef::simple("sp")),
                FormatPart::Literal(" v=".into()),
                FormatPart::Pv(PvRef {
                    name: "var".into(),
                    inner: Some("x".into()),
                    index: None,
                    transforms: vec![]
                }),
                FormatPart::Literal("\n".into()),
            ]
        );
        assert_eq!(parse_format("").unwrap(), vec![]);
        assert_eq!(
            parse_format("no pvs").unwrap(),
            vec![FormatPart::Literal("no pvs".into())]
        );
    }

    #[test]
    fn format_rejects_stray_dollar() {
        let e = parse_format("cost 5$").unwrap_err();
        assert_eq!(e.offset, 7);
        let e = parse_format("a $ b").unwrap_err();
        assert_eq!(e.offset, 3);
    }
}
