//! Tokens of the cfg language, one file (or one define value) at a time.
//!
//! Preprocessor directives come out as [`Tok::Directive`] tokens carrying the rest of their
//! line; the preprocessor acts on them. Inside inactive `#!ifdef` regions the preprocessor
//! calls [`Lexer::next_conditional`], which looks only for conditional directives, as
//! Kamailio's lexer does in its skip state.

use crate::diag::Diagnostic;
use crate::pv::{PvRef, parse_pv};
use crate::span::{FileId, Span};
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    /// `"..."`: escapes processed.
    Double,
    /// `'...'`: raw text.
    Single,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(i64),
    Str {
        value: String,
        quote: Quote,
    },
    Pv(PvRef),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// `#!name rest-of-line` (or `!!name`); `arg` has continuation lines joined with `\n`.
    Directive {
        name: String,
        arg: String,
    },
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Colon,
    Dot,
    Assign,
    PlusAssign,
    Eq,
    Ne,
    Match,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    BitOr,
    BitAnd,
    Caret,
    Tilde,
    Shl,
    Shr,
    Eof,
}

impl Tok {
    /// How the token reads in a message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Str { value, .. } => format!("string \"{value}\""),
            Tok::Pv(p) => format!("`{p}`"),
            Tok::Ipv4(a) => format!("`{a}`"),
            Tok::Ipv6(a) => format!("`{a}`"),
            Tok::Directive { name, .. } => format!("`#!{name}`"),
            Tok::Eof => "end of file".into(),
            other => format!("`{}`", other.punct()),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Semi => ";",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::Assign => "=",
            Tok::PlusAssign => "+=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Match => "=~",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Not => "!",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::BitOr => "|",
            Tok::BitAnd => "&",
            Tok::Caret => "^",
            Tok::Tilde => "~",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            _ => "?",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Directive names recognised after `#!` / `!!`.
pub const DIRECTIVES: &[&str] = &[
    "define",
    "def",
    "trydef",
    "redefine",
    "ifdef",
    "ifndef",
    "else",
    "endif",
    "subst",
    "substdef",
    "substdefs",
    "defenv",
    "defenvs",
    "trydefenv",
    "trydefenvs",
    "include_file",
    "import_file",
    "KAMAILIO",
    "OPENSER",
    "SER",
    "MAXCOMPAT",
    "ALL",
];

const CONDITIONALS: &[&str] = &["ifdef", "ifndef", "else", "endif"];

/// Directives whose value may continue on the next line after a trailing `\`.
const MULTILINE: &[&str] = &["define", "def", "trydef", "redefine"];

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    col: u32,
    file: FileId,
    /// Tokens of a define value all point at the use site.
    fixed_span: Option<Span>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, file: FileId) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            col: 1,
            file,
            fixed_span: None,
        }
    }

    /// A lexer whose tokens all carry `span` (used to re-lex define values).
    pub fn with_fixed_span(src: &'a str, span: Span) -> Self {
        Lexer {
            fixed_span: Some(span),
            ..Lexer::new(src, span.file)
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    fn here(&self) -> Span {
        self.fixed_span
            .unwrap_or(Span::new(self.file, self.line, self.col, 1))
    }

    /// Span from `start` to the current position (single line: length in chars).
    fn span_from(&self, start: Span) -> Span {
        if self.fixed_span.is_some() {
            return start;
        }
        let len = if self.line == start.line {
            self.col - start.col
        } else {
            1
        };
        Span { len, ..start }
    }

    fn err(&self, span: Span, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(span, msg)
    }

    /// Skips whitespace and comments. `#!`/`!!` directives are not comments.
    fn skip_trivia(&mut self) -> Result<(), Diagnostic> {
        loop {
            let Some(c) = self.peek() else { return Ok(()) };
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' && self.peek_at(1) != Some('!') {
                self.skip_line();
            } else if c == '#' && !self.peek_at(2).is_some_and(|c| c.is_ascii_alphabetic()) {
                // `#!` not followed by a name (e.g. `#!/bin/...`) is an ordinary comment.
                self.skip_line();
            } else if self.rest().starts_with("//") {
                self.skip_line();
            } else if self.rest().starts_with("/*") {
                self.skip_block_comment()?;
            } else {
                return Ok(());
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Block comments nest, as in Kamailio.
    fn skip_block_comment(&mut self) -> Result<(), Diagnostic> {
        let start = self.here();
        let mut depth = 0usize;
        loop {
            if self.rest().starts_with("/*") {
                depth += 1;
                self.bump_n(2);
            } else if self.rest().starts_with("*/") {
                depth -= 1;
                self.bump_n(2);
                if depth == 0 {
                    return Ok(());
                }
            } else if self.bump().is_none() {
                return Err(self.err(start, "unterminated comment `/*`"));
            }
        }
    }

    /// The directive name after `#!`/`!!` at the current position, if any.
    fn directive_name_here(&self) -> Option<&'a str> {
        let rest = self.rest();
        if !(rest.starts_with("#!") || rest.starts_with("!!")) {
            return None;
        }
        let body = &rest[2..];
        let len = body
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if len == 0 {
            return None;
        }
        Some(&body[..len])
    }

    pub fn next_token(&mut self) -> Result<Token, Diagnostic> {
        self.skip_trivia()?;
        let start = self.here();
        let Some(c) = self.peek() else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span { len: 0, ..start },
            });
        };
        if let Some(name) = self.directive_name_here() {
            if DIRECTIVES.contains(&name) {
                return Ok(self.lex_directive(name));
            }
            if c == '#' {
                return Err(self.err(start, format!("unknown preprocessor directive `#!{name}`")));
            }
            // `!!x` that is not a directive is two logical nots.
        }
        let tok = match c {
            '"' => self.lex_double_string()?,
            '\'' => self.lex_single_string()?,
            '$' => self.lex_pv()?,
            c if c.is_ascii_digit() => {
                if let Some(t) = self.try_ipv6() {
                    t
                } else {
                    self.lex_number()?
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                if let Some(t) = self.try_ipv6() {
                    t
                } else {
                    self.lex_ident()
                }
            }
            ':' => {
                if let Some(t) = self.try_ipv6() {
                    t
                } else {
                    self.bump();
                    Tok::Colon
                }
            }
            _ => self.lex_punct()?,
        };
        Ok(Token {
            tok,
            span: self.span_from(start),
        })
    }

    /// In an inactive conditional region: skips everything up to the next conditional
    /// directive (or end of input).
    pub fn next_conditional(&mut self) -> Token {
        loop {
            let start = self.here();
            if self.peek().is_none() {
                return Token {
                    tok: Tok::Eof,
                    span: Span { len: 0, ..start },
                };
            }
            if let Some(name) = self.directive_name_here()
                && CONDITIONALS.contains(&name)
            {
                return self.lex_directive(name);
            }
            self.bump();
        }
    }

    fn lex_directive(&mut self, name: &str) -> Token {
        let start = self.here();
        self.bump_n(2 + name.len());
        let name_span = self.span_from(start);
        let multiline = MULTILINE.contains(&name);
        let mut arg = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            if multiline && c == '\\' {
                let after = &self.rest()[1..];
                let trimmed = after.trim_start_matches([' ', '\t', '\r']);
                if trimmed.starts_with('\n') || trimmed.is_empty() {
                    // Continuation: drop the backslash and the line break.
                    let skip = after.len() - trimmed.len() + 1;
                    self.bump_n(skip);
                    if self.peek() == Some('\n') {
                        self.bump();
                    }
                    arg.push('\n');
                    continue;
                }
            }
            arg.push(c);
            self.bump();
        }
        Token {
            tok: Tok::Directive {
                name: name.to_string(),
                arg: arg.trim().to_string(),
            },
            span: name_span,
        }
    }

    fn lex_double_string(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.here();
        self.bump();
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err(start, "unterminated string"));
            };
            match c {
                '"' => break,
                '\\' => match self.peek() {
                    Some('n') => {
                        self.bump();
                        bytes.push(b'\n');
                    }
                    Some('r') => {
                        self.bump();
                        bytes.push(b'\r');
                    }
                    Some('t') => {
                        self.bump();
                        bytes.push(b'\t');
                    }
                    Some('a') => {
                        self.bump();
                        bytes.push(0x07);
                    }
                    Some('\\') => {
                        self.bump();
                        bytes.push(b'\\');
                    }
                    Some('"') => {
                        self.bump();
                        bytes.push(b'"');
                    }
                    Some('x') if self.peek_at(1).is_some_and(|c| c.is_ascii_hexdigit()) => {
                        self.bump();
                        let mut v = 0u32;
                        for _ in 0..2 {
                            match self.peek().and_then(|c| c.to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    self.bump();
                                }
                                None => break,
                            }
                        }
                        bytes.push(v as u8);
                    }
                    Some(d) if ('0'..='7').contains(&d) => {
                        let mut v = 0u32;
                        for _ in 0..3 {
                            match self.peek().and_then(|c| c.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    self.bump();
                                }
                                None => break,
                            }
                        }
                        bytes.push((v & 0xff) as u8);
                    }
                    Some('\n') | Some('\r') => {
                        // Backslash-newline: continuation, leading blanks of the next line eaten.
                        if self.peek() == Some('\r') {
                            self.bump();
                        }
                        if self.peek() == Some('\n') {
                            self.bump();
                        }
                        while matches!(self.peek(), Some(' ' | '\t')) {
                            self.bump();
                        }
                    }
                    // Unknown escapes keep the backslash (regexes such as `^(\+|00)`).
                    _ => bytes.push(b'\\'),
                },
                other => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        let value = String::from_utf8(bytes)
            .map_err(|_| self.err(start, "string escapes do not form valid UTF-8"))?;
        Ok(Tok::Str {
            value,
            quote: Quote::Double,
        })
    }

    fn lex_single_string(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.here();
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err(start, "unterminated string")),
                Some('\'') => break,
                Some(c) => value.push(c),
            }
        }
        Ok(Tok::Str {
            value,
            quote: Quote::Single,
        })
    }

    fn lex_pv(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.here();
        let (pv, used) = parse_pv(self.rest())
            .map_err(|e| self.err(start, format!("bad pseudo-variable: {}", e.message)))?;
        let chars = self.rest()[..used].chars().count();
        self.bump_n(chars);
        Ok(Tok::Pv(pv))
    }

    /// IPv6 literal (`::1`, `fe80::1`, `2001:db8::5`): taken only when the maximal run of hex
    /// digits, colons and dots parses as an address with at least two colons.
    fn try_ipv6(&mut self) -> Option<Tok> {
        let run: &str = {
            let r = self.rest();
            let n = r
                .bytes()
                .take_while(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.')
                .count();
            &r[..n]
        };
        if run.matches(':').count() < 2 {
            return None;
        }
        // Do not swallow an identifier that merely starts with hex letters.
        let next = self.rest()[run.len()..].chars().next();
        if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let addr: Ipv6Addr = run.parse().ok()?;
        self.bump_n(run.len());
        Some(Tok::Ipv6(addr))
    }

    fn lex_number(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.here();
        let r = self.rest();
        // IPv4 first: four dotted decimal groups.
        let ip_len = r
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let cand = &r[..ip_len];
        if cand.matches('.').count() == 3 && !cand.ends_with('.') {
            let text = cand.to_string();
            self.bump_n(ip_len);
            return text.parse::<Ipv4Addr>().map(Tok::Ipv4).map_err(|_| {
                self.err(self.span_from(start), format!("bad IPv4 address `{text}`"))
            });
        }
        let len = r
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let text = r[..len].to_string();
        self.bump_n(len);
        parse_int_literal(&text)
            .map(Tok::Int)
            .ok_or_else(|| self.err(self.span_from(start), format!("bad number `{text}`")))
    }

    fn lex_ident(&mut self) -> Tok {
        let r = self.rest();
        let len = r
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let text = r[..len].to_string();
        self.bump_n(len);
        Tok::Ident(text)
    }

    fn lex_punct(&mut self) -> Result<Tok, Diagnostic> {
        let start = self.here();
        let two = |a: char, b: char| self.peek() == Some(a) && self.peek_at(1) == Some(b);
        let (tok, n) = if two('=', '=') {
            (Tok::Eq, 2)
        } else if two('!', '=') {
            (Tok::Ne, 2)
        } else if two('=', '~') {
            (Tok::Match, 2)
        } else if two('<', '=') {
            (Tok::Le, 2)
        } else if two('>', '=') {
            (Tok::Ge, 2)
        } else if two('<', '<') {
            (Tok::Shl, 2)
        } else if two('>', '>') {
            (Tok::Shr, 2)
        } else if two('&', '&') {
            (Tok::AndAnd, 2)
        } else if two('|', '|') {
            (Tok::OrOr, 2)
        } else if two('+', '=') {
            (Tok::PlusAssign, 2)
        } else {
            let t = match self.peek() {
                Some('(') => Tok::LParen,
                Some(')') => Tok::RParen,
                Some('{') => Tok::LBrace,
                Some('}') => Tok::RBrace,
                Some('[') => Tok::LBracket,
                Some(']') => Tok::RBracket,
                Some(',') => Tok::Comma,
                Some(';') => Tok::Semi,
                Some('.') => Tok::Dot,
                Some('=') => Tok::Assign,
                Some('<') => Tok::Lt,
                Some('>') => Tok::Gt,
                Some('!') => Tok::Not,
                Some('+') => Tok::Plus,
                Some('-') => Tok::Minus,
                Some('*') => Tok::Star,
                Some('/') => Tok::Slash,
                Some('|') => Tok::BitOr,
                Some('&') => Tok::BitAnd,
                Some('^') => Tok::Caret,
                Some('~') => Tok::Tilde,
                Some(c) => return Err(self.err(start, format!("unexpected character `{c}`"))),
                None => Tok::Eof,
            };
            (t, 1)
        };
        self.bump_n(n);
        Ok(tok)
    }
}

/// Decimal, `0x` hex, `0` octal and `…b` binary, as Kamailio's lexer accepts them.
pub fn parse_int_literal(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16)
            .ok()
            .filter(|_| !hex.is_empty());
    }
    if let Some(bin) = text.strip_suffix('b')
        && !bin.is_empty()
        && bin.bytes().all(|b| b == b'0' || b == b'1')
    {
        return i64::from_str_radix(bin, 2).ok();
    }
    if text.len() > 1 && text.starts_with('0') {
        return i64::from_str_radix(&text[1..], 8).ok();
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(src: &str) -> Vec<Tok> {
        let mut l = Lexer::new(src, FileId(0));
        let mut out = Vec::new();
        loop {
            let t = l.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    fn lex_err(src: &str) -> Diagnostic {
        let mut l = Lexer::new(src, FileId(0));
        loop {
            match l.next_token() {
                Ok(t) if t.tok == Tok::Eof => panic!("no error in {src:?}"),
                Ok(_) => {}
                Err(d) => return d,
            }
        }
    }

    fn s(v: &str) -> Tok {
        Tok::Str {
            value: v.into(),
            quote: Quote::Double,
        }
    }

    #[test]
    fn double_quoted_escapes() {
        assert_eq!(lex(r#""a\nb\r\t\a\\\"""#), vec![s("a\nb\r\t\x07\\\"")]);
        assert_eq!(lex(r#""\x41\x4a\101\0""#), vec![s("AJA\0")]);
        assert_eq!(lex(r#""^(\+|00)""#), vec![s("^(\\+|00)")]);
        assert_eq!(lex("\"ab\\\n    cd\""), vec![s("abcd")]);
    }

    #[test]
    fn single_quoted_is_raw() {
        assert_eq!(
            lex(r"'Reason: x\r\n'"),
            vec![Tok::Str {
                value: r"Reason: x\r\n".into(),
                quote: Quote::Single
            }]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            lex("10 0x1F 017 101b 0"),
            vec![
                Tok::Int(10),
                Tok::Int(31),
                Tok::Int(15),
                Tok::Int(5),
                Tok::Int(0)
            ]
        );
        assert_eq!(lex_err("x = 12ab;").message, "bad number `12ab`");
        assert_eq!(lex_err("x = 09;").message, "bad number `09`");
        assert_eq!(lex_err("x = 0x;").message, "bad number `0x`");
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            lex("a # c\nb // c\n/* x /* nested */ y */ c"),
            vec![
                Tok::Ident("a".into()),
                Tok::Ident("b".into()),
                Tok::Ident("c".into())
            ]
        );
        assert_eq!(lex_err("/* open").message, "unterminated comment `/*`");
    }

    #[test]
    fn directives_with_both_prefixes() {
        assert_eq!(
            lex("#!define A 1\n!!ifdef A\n"),
            vec![
                Tok::Directive {
                    name: "define".into(),
                    arg: "A 1".into()
                },
                Tok::Directive {
                    name: "ifdef".into(),
                    arg: "A".into()
                }
            ]
        );
        assert_eq!(
            lex("#!define M a \\\n  b\nx"),
            vec![
                Tok::Directive {
                    name: "define".into(),
                    arg: "M a \n  b".into()
                },
                Tok::Ident("x".into())
            ]
        );
        // `!!` before a non-directive word is two nots.
        assert_eq!(lex("!!f"), vec![Tok::Not, Tok::Not, Tok::Ident("f".into())]);
        assert!(
            lex_err("#!frobnicate")
                .message
                .contains("unknown preprocessor directive")
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            lex("udp:127.0.0.1:5060"),
            vec![
                Tok::Ident("udp".into()),
                Tok::Colon,
                Tok::Ipv4("127.0.0.1".parse().unwrap()),
                Tok::Colon,
                Tok::Int(5060)
            ]
        );
        assert_eq!(
            lex("[::1]:5060 fe80::2"),
            vec![
                Tok::LBracket,
                Tok::Ipv6("::1".parse().unwrap()),
                Tok::RBracket,
                Tok::Colon,
                Tok::Int(5060),
                Tok::Ipv6("fe80::2".parse().unwrap())
            ]
        );
        assert_eq!(
            lex("case 1:"),
            vec![Tok::Ident("case".into()), Tok::Int(1), Tok::Colon]
        );
        assert!(lex_err("999.1.1.1").message.contains("bad IPv4"));
    }

    #[test]
    fn operators() {
        assert_eq!(
            lex("== != =~ <= >= << >> && || += = ! ~ ^"),
            vec![
                Tok::Eq,
                Tok::Ne,
                Tok::Match,
                Tok::Le,
                Tok::Ge,
                Tok::Shl,
                Tok::Shr,
                Tok::AndAnd,
                Tok::OrOr,
                Tok::PlusAssign,
                Tok::Assign,
                Tok::Not,
                Tok::Tilde,
                Tok::Caret
            ]
        );
    }

    #[test]
    fn positions_are_line_and_column() {
        let mut l = Lexer::new("a\n  \"unterminated", FileId(0));
        l.next_token().unwrap();
        let e = l.next_token().unwrap_err();
        assert_eq!((e.span.line, e.span.col), (2, 3));
        assert_eq!(e.message, "unterminated string");
    }

    #[test]
    fn pv_tokens() {
        assert_eq!(
            lex("$var(x) $(hdr(Via)[1])"),
            vec![
                Tok::Pv(parse_pv("$var(x)").unwrap().0),
                Tok::Pv(parse_pv("$(hdr(Via)[1])").unwrap().0)
            ]
        );
    }
}
