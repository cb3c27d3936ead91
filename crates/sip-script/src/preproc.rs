//! The `#!` preprocessor, run on the token stream as Kamailio does in its lexer: directives
//! act as they are met, bare identifiers equal to a define are replaced by the define's value
//! (re-lexed, tokens pointing at the use site), `#!subst`/`#!substdef` rewrite string literals,
//! and `include_file`/`import_file` splice other files in.

use crate::diag::Diagnostic;
use crate::lexer::{Lexer, Quote, Tok, Token};
use crate::loader::SourceLoader;
use crate::span::{SourceMap, Span};
use regex::Regex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Maximum nesting of included files (Kamailio's limit).
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// Guards against `#!define A B` / `#!define B A` loops.
const MAX_EXPANSION_DEPTH: usize = 16;

/// The first-line compatibility marker (`#!KAMAILIO`, `#!OPENSER`, `#!SER`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompatMode {
    Kamailio,
    Openser,
    Ser,
    MaxCompat,
    All,
}

struct Cond {
    span: Span,
    /// Was the enclosing region active?
    parent_active: bool,
    /// The `#!ifdef`/`#!ifndef` test result.
    result: bool,
    in_else: bool,
}

struct SubstRule {
    re: Regex,
    replacement: String,
    global: bool,
}

pub struct Preprocessor<'l> {
    loader: &'l dyn SourceLoader,
    pub sources: SourceMap,
    defines: HashMap<String, String>,
    substs: Vec<SubstRule>,
    conds: Vec<Cond>,
    pub warnings: Vec<Diagnostic>,
    pub compat: Option<CompatMode>,
    out: Vec<Token>,
}

/// What the preprocessor hands to the parser.
pub struct Preprocessed {
    pub tokens: Vec<Token>,
    pub sources: SourceMap,
    pub warnings: Vec<Diagnostic>,
    pub compat: Option<CompatMode>,
}

impl<'l> Preprocessor<'l> {
    pub fn new(loader: &'l dyn SourceLoader, defines: &[(String, Option<String>)]) -> Self {
        Preprocessor {
            loader,
            sources: SourceMap::new(),
            defines: defines
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
                .collect(),
            substs: Vec::new(),
            conds: Vec::new(),
            warnings: Vec::new(),
            compat: None,
            out: Vec::new(),
        }
    }

    /// Preprocesses the main file. On error, the sources read so far are returned too so the
    /// diagnostic can be rendered.
    pub fn run(mut self, path: &Path) -> Result<Preprocessed, (Diagnostic, SourceMap)> {
        let Some(text) = self.loader.read(path) else {
            let file = self.sources.add(path.display().to_string(), String::new());
            let d = Diagnostic::error(
                Span::new(file, 1, 1, 0),
                format!("cannot read config file `{}`", path.display()),
            );
            return Err((d, self.sources));
        };
        self.run_text(path, text)
    }

    /// Preprocesses `text` as if read from `path`.
    pub fn run_text(
        mut self,
        path: &Path,
        text: String,
    ) -> Result<Preprocessed, (Diagnostic, SourceMap)> {
        match self.process(path, text, 0) {
            Ok(end) => {
                if let Some(open) = self.conds.last() {
                    let d = Diagnostic::error(open.span, "missing `#!endif` for this conditional");
                    return Err((d, self.sources));
                }
                self.out.push(Token {
                    tok: Tok::Eof,
                    span: end,
                });
                Ok(Preprocessed {
                    tokens: self.out,
                    sources: self.sources,
                    warnings: self.warnings,
                    compat: self.compat,
                })
            }
            Err(d) => Err((d, self.sources)),
        }
    }

    fn active(&self) -> bool {
        self.conds
            .last()
            .is_none_or(|c| c.parent_active && (c.result != c.in_else))
    }

    /// Processes one file; returns the span of its end.
    fn process(&mut self, path: &Path, text: String, depth: usize) -> Result<Span, Diagnostic> {
        let file = self.sources.add(path.display().to_string(), text.clone());
        let mut lexer = Lexer::new(&text, file);
        loop {
            let tok = if self.active() {
                lexer.next_token()?
            } else {
                lexer.next_conditional()
            };
            match tok.tok {
                Tok::Eof => return Ok(tok.span),
                Tok::Directive { name, arg } => {
                    self.directive(&name, &arg, tok.span, path, depth)?;
                }
                Tok::Ident(ref word) if word == "include_file" || word == "import_file" => {
                    let next = lexer.next_token()?;
                    let Tok::Str { value, .. } = next.tok else {
                        return Err(Diagnostic::error(
                            next.span,
                            format!("`{word}` needs a quoted file name"),
                        ));
                    };
                    let optional = word == "import_file";
                    self.include(&value, optional, tok.span, path, depth)?;
                }
                _ => self.emit(tok, 0)?,
            }
        }
    }

    fn include(
        &mut self,
        target: &str,
        optional: bool,
        span: Span,
        from: &Path,
        depth: usize,
    ) -> Result<(), Diagnostic> {
        if depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(Diagnostic::error(
                span,
                format!("include depth exceeds {MAX_INCLUDE_DEPTH} (including `{target}`)"),
            ));
        }
        let target_path = Path::new(target);
        let resolved: PathBuf = if target_path.is_absolute() {
            target_path.to_path_buf()
        } else {
            from.parent()
                .map(|dir| dir.join(target_path))
                .unwrap_or_else(|| target_path.to_path_buf())
        };
        match self.loader.read(&resolved) {
            Some(text) => {
                self.process(&resolved, text, depth + 1)?;
                Ok(())
            }
            None if optional => {
                tracing::debug!("import_file: `{}` not found, ignored", resolved.display());
                Ok(())
            }
            None => Err(Diagnostic::error(
                span,
                format!("cannot open included file `{}`", resolved.display()),
            )),
        }
    }

    fn emit(&mut self, tok: Token, depth: usize) -> Result<(), Diagnostic> {
        match tok.tok {
            Tok::Ident(ref name) if self.defines.contains_key(name) => {
                if depth >= MAX_EXPANSION_DEPTH {
                    return Err(Diagnostic::error(
                        tok.span,
                        format!("define `{name}` expands recursively"),
                    ));
                }
                let value = self.defines[name].clone();
                let mut lexer = Lexer::with_fixed_span(&value, tok.span);
                loop {
                    let t = lexer.next_token().map_err(|d| {
                        Diagnostic::error(
                            tok.span,
                            format!("in expansion of `{name}`: {}", d.message),
                        )
                    })?;
                    match t.tok {
                        Tok::Eof => return Ok(()),
                        Tok::Directive { .. } => {
                            return Err(Diagnostic::error(
                                tok.span,
                                format!("in expansion of `{name}`: directive in define value"),
                            ));
                        }
                        _ => self.emit(t, depth + 1)?,
                    }
                }
            }
            Tok::Str { value, quote } => {
                let value = self.apply_substs(value);
                if quote == Quote::Single && value.ends_with(r"\r\n") {
                    self.warnings.push(Diagnostic::warning(
                        tok.span,
                        "single-quoted string ends in a literal `\\r\\n`: '...' strings have no \
                         escapes, so these are four characters, not a line end (Kamailio sends \
                         them as written; use double quotes for a CRLF)",
                    ));
                }
                self.out.push(Token {
                    tok: Tok::Str { value, quote },
                    span: tok.span,
                });
                Ok(())
            }
            _ => {
                self.out.push(tok);
                Ok(())
            }
        }
    }

    fn apply_substs(&self, mut value: String) -> String {
        for rule in &self.substs {
            value = if rule.global {
                rule.re
                    .replace_all(&value, rule.replacement.as_str())
                    .into_owned()
            } else {
                rule.re
                    .replace(&value, rule.replacement.as_str())
                    .into_owned()
            };
        }
        value
    }

    fn directive(
        &mut self,
        name: &str,
        arg: &str,
        span: Span,
        path: &Path,
        depth: usize,
    ) -> Result<(), Diagnostic> {
        let err = |msg: String| Diagnostic::error(span, msg);
        match name {
            "ifdef" | "ifndef" => {
                let id = single_name(arg).ok_or_else(|| err(format!("`#!{name}` needs a name")))?;
                let defined = self.defines.contains_key(id);
                let parent_active = self.active();
                self.conds.push(Cond {
                    span,
                    parent_active,
                    result: defined == (name == "ifdef"),
                    in_else: false,
                });
            }
            "else" => match self.conds.last_mut() {
                None => return Err(err("`#!else` without `#!ifdef`".into())),
                Some(c) if c.in_else => return Err(err("duplicate `#!else`".into())),
                Some(c) => c.in_else = true,
            },
            "endif" => {
                if self.conds.pop().is_none() {
                    return Err(err("`#!endif` without `#!ifdef`".into()));
                }
            }
            "define" | "def" | "trydef" | "redefine" => {
                let (id, value) =
                    split_define(arg).ok_or_else(|| err(format!("`#!{name}` needs a name")))?;
                let exists = self.defines.contains_key(id);
                match name {
                    "trydef" if exists => {}
                    "define" | "def" if exists => {
                        return Err(err(format!("`{id}` is already defined")));
                    }
                    _ => {
                        self.defines.insert(id.to_string(), value.to_string());
                    }
                }
            }
            "subst" | "substdef" | "substdefs" => {
                let (re, repl, flags) = parse_subst(arg).ok_or_else(|| {
                    err(format!(
                        "bad `#!{name}` expression (want \"/re/repl/flags\")"
                    ))
                })?;
                let case_insensitive = flags.contains('i');
                if let Some(bad) = flags.chars().find(|c| !matches!(c, 'g' | 'i')) {
                    return Err(err(format!("bad `#!{name}` flag `{bad}`")));
                }
                let pattern = if case_insensitive {
                    format!("(?i){re}")
                } else {
                    re.clone()
                };
                let compiled =
                    Regex::new(&pattern).map_err(|e| err(format!("bad `#!{name}` regex: {e}")))?;
                if name != "subst" {
                    if single_name(&re).is_none() {
                        return Err(err(format!("`#!{name}` pattern must be a plain name")));
                    }
                    let value = if name == "substdefs" {
                        format!("\"{repl}\"")
                    } else {
                        repl.clone()
                    };
                    self.defines.insert(re.clone(), value);
                }
                self.substs.push(SubstRule {
                    re: compiled,
                    replacement: convert_replacement(&repl),
                    global: flags.contains('g'),
                });
            }
            "defenv" | "defenvs" | "trydefenv" | "trydefenvs" => {
                let (id, var) = match arg.split_once('=') {
                    Some((id, var)) => (id.trim(), var.trim()),
                    None => (arg.trim(), arg.trim()),
                };
                if single_name(id).is_none() || var.is_empty() {
                    return Err(err(format!("`#!{name}` needs a name")));
                }
                match self.loader.env_var(var) {
                    Some(v) => {
                        let v = if name.ends_with('s') {
                            format!("\"{v}\"")
                        } else {
                            v
                        };
                        self.defines.insert(id.to_string(), v);
                    }
                    None if name.starts_with("try") => {}
                    None => {
                        return Err(err(format!("environment variable `{var}` is not set")));
                    }
                }
            }
            "include_file" | "import_file" => {
                let target = unquote(arg)
                    .ok_or_else(|| err(format!("`#!{name}` needs a quoted file name")))?;
                self.include(target, name == "import_file", span, path, depth)?;
            }
            "KAMAILIO" | "OPENSER" | "SER" | "MAXCOMPAT" | "ALL" if self.bang_bang_at(span) => {
                // Kamailio's lexer knows the compat markers only as `#!NAME`; with `!!` they
                // are a syntax error, unlike the other directives.
                return Err(err(format!(
                    "syntax error: the compatibility marker is written `#!{name}`, not `!!{name}`"
                )));
            }
            "KAMAILIO" => self.compat = Some(CompatMode::Kamailio),
            "OPENSER" => self.compat = Some(CompatMode::Openser),
            "SER" => self.compat = Some(CompatMode::Ser),
            "MAXCOMPAT" => self.compat = Some(CompatMode::MaxCompat),
            "ALL" => self.compat = Some(CompatMode::All),
            other => return Err(err(format!("unknown preprocessor directive `#!{other}`"))),
        }
        Ok(())
    }
}

impl Preprocessor<'_> {
    /// Does the directive at `span` start with `!!` rather than `#!`?
    fn bang_bang_at(&self, span: Span) -> bool {
        self.sources
            .line_text(span.file, span.line)
            .and_then(|line| line.chars().nth(span.col.saturating_sub(1) as usize))
            == Some('!')
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn single_name(arg: &str) -> Option<&str> {
    let t = arg.trim();
    is_name(t).then_some(t)
}

/// `NAME value…` → (NAME, value).
fn split_define(arg: &str) -> Option<(&str, &str)> {
    let arg = arg.trim();
    let end = arg
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(arg.len());
    let id = &arg[..end];
    if id.is_empty() {
        return None;
    }
    let rest = &arg[end..];
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some((id, rest.trim()))
}

fn unquote(arg: &str) -> Option<&str> {
    let t = arg.trim();
    t.strip_prefix('"')?.strip_suffix('"')
}

/// `"/re/repl/flags"` with any separator character; a backslash escapes the separator.
fn parse_subst(arg: &str) -> Option<(String, String, String)> {
    let body = unquote(arg)?;
    let mut chars = body.chars();
    let sep = chars.next()?;
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in chars {
        if escaped {
            if c != sep {
                parts.last_mut()?.push('\\');
            }
            parts.last_mut()?.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut()?.push(c);
        }
    }
    if parts.len() != 3 || parts[0].is_empty() {
        return None;
    }
    let flags = parts.pop()?;
    let repl = parts.pop()?;
    let re = parts.pop()?;
    Some((re, repl, flags))
}

/// POSIX `\1` back-references → regex crate `${1}`; a literal `$` must be doubled.
fn convert_replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let d = chars.next().unwrap_or('0');
                out.push_str(&format!("${{{d}}}"));
            }
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::MemLoader;

    fn toks(loader: &MemLoader, defines: &[(String, Option<String>)]) -> Result<Vec<Tok>, String> {
        Preprocessor::new(loader, defines)
            .run(Path::new("/etc/k/main.cfg"))
            .map(|p| {
                p.tokens
                    .into_iter()
                    .map(|t| t.tok)
                    .filter(|t| *t != Tok::Eof)
                    .collect()
            })
            .map_err(|(d, _)| format!("{}:{}: {}", d.span.line, d.span.col, d.message))
    }

    fn main_only(text: &str) -> Result<Vec<Tok>, String> {
        toks(&MemLoader::new().with_file("/etc/k/main.cfg", text), &[])
    }

    fn id(s: &str) -> Tok {
        Tok::Ident(s.into())
    }

    fn dq(s: &str) -> Tok {
        Tok::Str {
            value: s.into(),
            quote: Quote::Double,
        }
    }

    #[test]
    fn define_replaces_identifiers_not_strings() {
        assert_eq!(
            main_only("#!define CODE 404\nCODE \"CODE\"").unwrap(),
            vec![Tok::Int(404), dq("CODE")]
        );
    }

    #[test]
    fn define_value_may_span_lines_and_nest() {
        assert_eq!(
            main_only("#!define A 1 + \\\n 2\n#!define B A * 3\nB").unwrap(),
            vec![Tok::Int(1), Tok::Plus, Tok::Int(2), Tok::Star, Tok::Int(3)]
        );
    }

    #[test]
    fn define_expansion_points_at_use_site() {
        let l = MemLoader::new().with_file("/m.cfg", "#!define V 1\n\n   V");
        let p = Preprocessor::new(&l, &[])
            .run(Path::new("/m.cfg"))
            .ok()
            .unwrap();
        assert_eq!((p.tokens[0].span.line, p.tokens[0].span.col), (3, 4));
    }

    #[test]
    fn trydef_redefine_and_duplicate_define() {
        assert_eq!(
            main_only("#!define A 1\n#!trydef A 2\nA\n#!redefine A 3\nA").unwrap(),
            vec![Tok::Int(1), Tok::Int(3)]
        );
        assert_eq!(
            main_only("#!define A 1\n#!define A 2").unwrap_err(),
            "2:1: `A` is already defined"
        );
        assert_eq!(
            main_only("#!def X\n#!ifdef X\nx\n#!endif").unwrap(),
            vec![id("x")]
        );
    }

    #[test]
    fn recursive_define_is_an_error() {
        let e = main_only("#!define A B\n#!define B A\nA").unwrap_err();
        assert!(e.contains("expands recursively"), "{e}");
    }

    #[test]
    fn nested_ifdef_else() {
        let src = "#!define A\n\
                   #!ifdef A\n a1\n #!ifdef B\n b1\n #!else\n b2\n #!endif\n\
                   #!else\n a2\n #!ifndef B\n nb\n #!endif\n#!endif\n\
                   #!ifndef A\n na\n#!else\n ya\n#!endif\n";
        assert_eq!(main_only(src).unwrap(), vec![id("a1"), id("b2"), id("ya")]);
    }

    #[test]
    fn inactive_region_is_not_lexed() {
        assert_eq!(
            main_only("#!ifdef NOPE\n \"unterminated ' 09 ALTER TABLE\n#!endif\nok").unwrap(),
            vec![id("ok")]
        );
    }

    #[test]
    fn conditional_errors() {
        assert_eq!(
            main_only("x\n  #!else").unwrap_err(),
            "2:3: `#!else` without `#!ifdef`"
        );
        assert_eq!(
            main_only("#!endif").unwrap_err(),
            "1:1: `#!endif` without `#!ifdef`"
        );
        assert_eq!(
            main_only("x\n#!ifdef A\ny\n").unwrap_err(),
            "2:1: missing `#!endif` for this conditional"
        );
        assert_eq!(
            main_only("#!ifdef A\n#!else\n#!else\n#!endif").unwrap_err(),
            "3:1: duplicate `#!else`"
        );
    }

    #[test]
    fn cli_defines() {
        let l = MemLoader::new().with_file("/etc/k/main.cfg", "#!ifdef WITH_X\nx\n#!endif\nFRT");
        let defs = vec![
            ("WITH_X".to_string(), None),
            ("FRT".to_string(), Some("5000".to_string())),
        ];
        assert_eq!(toks(&l, &defs).unwrap(), vec![id("x"), Tok::Int(5000)]);
    }

    #[test]
    fn substdef_applies_in_strings_first_or_all() {
        assert_eq!(
            main_only("#!substdef \"!HOST!example.com!\"\n\"HOST HOST\" HOST").unwrap(),
            vec![dq("example.com HOST"), id("example")]
                .into_iter()
                .chain([Tok::Dot, id("com")])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            main_only("#!substdef \"/P/5/g\"\n\"P P\"").unwrap(),
            vec![dq("5 5")]
        );
        assert_eq!(
            main_only("#!substdefs \"/S/v/\"\nS").unwrap(),
            vec![dq("v")]
        );
        assert_eq!(
            main_only("#!subst \"/a(b)/x\\1/g\"\n\"abab\"").unwrap(),
            vec![dq("xbxb")]
        );
        assert!(
            main_only("#!subst \"/a/b/q\"")
                .unwrap_err()
                .contains("flag")
        );
    }

    #[test]
    fn defenv() {
        let l = MemLoader::new()
            .with_file("/etc/k/main.cfg", "#!defenv HOME\n#!defenvs P=PORT\nHOME P")
            .with_env("HOME", "7")
            .with_env("PORT", "5060");
        assert_eq!(toks(&l, &[]).unwrap(), vec![Tok::Int(7), dq("5060")]);
        assert!(
            main_only("#!defenv NOPE_VAR")
                .unwrap_err()
                .contains("not set")
        );
        assert_eq!(
            main_only("#!trydefenv NOPE_VAR\nNOPE_VAR").unwrap(),
            vec![id("NOPE_VAR")]
        );
    }

    #[test]
    fn include_relative_to_including_file() {
        let l = MemLoader::new()
            .with_file(
                "/etc/k/main.cfg",
                "a\ninclude_file \"sub/b.cfg\"\n#!include_file \"c.cfg\"\nd",
            )
            .with_file("/etc/k/sub/b.cfg", "b\ninclude_file \"inner.cfg\"")
            .with_file("/etc/k/sub/inner.cfg", "inner")
            .with_file("/etc/k/c.cfg", "c");
        assert_eq!(
            toks(&l, &[]).unwrap(),
            vec![id("a"), id("b"), id("inner"), id("c"), id("d")]
        );
    }

    #[test]
    fn include_missing_is_error_import_missing_is_ok() {
        assert_eq!(
            main_only("x\n include_file \"nope.cfg\"").unwrap_err(),
            "2:2: cannot open included file `/etc/k/nope.cfg`"
        );
        assert_eq!(
            main_only("import_file \"nope.cfg\"\nx").unwrap(),
            vec![id("x")]
        );
        assert_eq!(
            main_only("!!import_file \"nope.cfg\"\nx").unwrap(),
            vec![id("x")]
        );
    }

    #[test]
    fn include_depth_limit() {
        let mut l = MemLoader::new().with_file("/etc/k/main.cfg", "include_file \"f1.cfg\"");
        for i in 1..=11 {
            l = l.with_file(
                format!("/etc/k/f{i}.cfg"),
                format!("include_file \"f{}.cfg\"", i + 1),
            );
        }
        l = l.with_file("/etc/k/f12.cfg", "x");
        let e = toks(&l, &[]).unwrap_err();
        assert!(e.contains("include depth exceeds 10"), "{e}");
        // Exactly 10 levels is fine.
        let mut ok = MemLoader::new().with_file("/etc/k/main.cfg", "include_file \"f1.cfg\"");
        for i in 1..10 {
            ok = ok.with_file(
                format!("/etc/k/f{i}.cfg"),
                format!("include_file \"f{}.cfg\"", i + 1),
            );
        }
        ok = ok.with_file("/etc/k/f10.cfg", "x");
        assert_eq!(toks(&ok, &[]).unwrap(), vec![id("x")]);
    }

    #[test]
    fn errors_in_included_file_point_into_it() {
        let l = MemLoader::new()
            .with_file("/etc/k/main.cfg", "a\ninclude_file \"b.cfg\"")
            .with_file("/etc/k/b.cfg", "\n\n  \"open");
        let (d, map) = Preprocessor::new(&l, &[])
            .run(Path::new("/etc/k/main.cfg"))
            .err()
            .unwrap();
        assert_eq!(map.name(d.span.file), "/etc/k/b.cfg");
        assert_eq!((d.span.line, d.span.col), (3, 3));
    }

    #[test]
    fn compat_first_line() {
        let l = MemLoader::new().with_file("/etc/k/main.cfg", "#!KAMAILIO\nx");
        let p = Preprocessor::new(&l, &[])
            .run(Path::new("/etc/k/main.cfg"))
            .ok()
            .unwrap();
        assert_eq!(p.compat, Some(CompatMode::Kamailio));
        let l = MemLoader::new().with_file("/etc/k/main.cfg", "#!OPENSER\nx");
        let p = Preprocessor::new(&l, &[])
            .run(Path::new("/etc/k/main.cfg"))
            .ok()
            .unwrap();
        assert_eq!(p.compat, Some(CompatMode::Openser));
    }

    #[test]
    fn compat_marker_with_bang_bang_is_a_syntax_error() {
        // kamailio -c 5.6.3: `!!KAMAILIO` (first line or later) is "syntax error" at 1:1,
        // while `!!define` and the other directives work with either prefix.
        for text in ["!!KAMAILIO\nx", "x\n  !!SER\n"] {
            let l = MemLoader::new().with_file("/etc/k/main.cfg", text);
            let Err((d, _)) = Preprocessor::new(&l, &[]).run(Path::new("/etc/k/main.cfg")) else {
                panic!("`{text}` must fail");
            };
            assert!(d.message.contains("`#!"), "{}", d.message);
            let expect = if text.starts_with('x') {
                (2, 3)
            } else {
                (1, 1)
            };
            assert_eq!((d.span.line, d.span.col), expect);
        }
        let l = MemLoader::new().with_file("/etc/k/main.cfg", "!!define A 1\n#!KAMAILIO\nx");
        let p = Preprocessor::new(&l, &[])
            .run(Path::new("/etc/k/main.cfg"))
            .ok()
            .unwrap();
        assert_eq!(p.compat, Some(CompatMode::Kamailio));
    }

    #[test]
    fn single_quoted_crlf_lint() {
        let l = MemLoader::new().with_file("/etc/k/main.cfg", r"f('Reason: x\r\n')");
        let p = Preprocessor::new(&l, &[])
            .run(Path::new("/etc/k/main.cfg"))
            .ok()
            .unwrap();
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].span.col, 3);
    }
}
