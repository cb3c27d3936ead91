//! Recursive-descent parser over the preprocessed token stream.
//!
//! Errors are collected one per statement (or top-level item): after an error the parser skips
//! to the end of that statement and goes on, so one typo gives one message.

use crate::ast::*;
use crate::core_params::{self, CoreParams, ValueKind};
use crate::diag::Diagnostic;
use crate::lexer::{Tok, Token};
use crate::span::Span;
use crate::typeck;
use std::net::IpAddr;

type PResult<T> = Result<T, Diagnostic>;

/// Stop collecting after this many errors; later ones are rarely useful.
const MAX_ERRORS: usize = 20;

/// Everything the parser extracts from the token stream.
#[derive(Debug, Default)]
pub struct Parsed {
    pub core: CoreParams,
    pub globals: Vec<GlobalParam>,
    pub cfg_vars: Vec<CfgVar>,
    pub modules: Vec<LoadModule>,
    pub modparams: Vec<ModParam>,
    pub routes: Vec<RouteBlock>,
    pub errors: Vec<Diagnostic>,
}

pub struct Parser {
    toks: Vec<Token>,
    pos: usize,
    out: Parsed,
    /// Nesting of `while` (for `break`).
    loops: usize,
    /// Nesting of `switch` (for `break` and `case`).
    switches: usize,
}

const ROUTE_KEYWORDS: &[&str] = &[
    "request_route",
    "route",
    "failure_route",
    "onreply_route",
    "branch_route",
    "reply_route",
    "onsend_route",
    "event_route",
];

impl Parser {
    /// `toks` must end with an `Eof` token (the preprocessor guarantees it).
    pub fn new(toks: Vec<Token>) -> Self {
        Parser {
            toks,
            pos: 0,
            out: Parsed::default(),
            loops: 0,
            switches: 0,
        }
    }

    pub fn parse(mut self) -> Parsed {
        while !self.at_eof() && self.out.errors.len() < MAX_ERRORS {
            if self.eat(&Tok::Semi) {
                continue;
            }
            if let Err(d) = self.top_item() {
                let line = d.span.line;
                self.out.errors.push(d);
                self.recover_top(line);
            }
        }
        self.out
    }

    // ---- token helpers ----

    fn peek(&self) -> &Token {
        // The stream ends with Eof and `bump` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_tok(&self) -> &Tok {
        &self.peek().tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].tok
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek_tok(), Tok::Eof)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn prev_span(&self) -> Span {
        if self.pos == 0 {
            self.peek().span
        } else {
            self.toks[self.pos - 1].span
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek_tok() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek_tok(), Tok::Ident(s) if s == w)
    }

    fn unexpected(&self, what: &str) -> Diagnostic {
        let t = self.peek();
        if t.tok == Tok::PlusAssign {
            return Diagnostic::error(
                t.span,
                "syntax error: `+=` is not supported (write `$x = $x + value`)",
            );
        }
        Diagnostic::error(
            t.span,
            format!("syntax error: expected {what}, found {}", t.tok.describe()),
        )
    }

    fn expect(&mut self, t: Tok, what: &str) -> PResult<Span> {
        if self.peek_tok() == &t {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(what))
        }
    }

    /// `;` ending a statement. A missing one is reported right after the previous token when
    /// the next token is on a later line (the usual forgotten `;`).
    fn expect_semi(&mut self) -> PResult<()> {
        if self.eat(&Tok::Semi) {
            return Ok(());
        }
        let prev = self.prev_span();
        let next = self.peek();
        let on_later_line = next.span.line > prev.line || next.span.file != prev.file;
        if next.tok == Tok::RBrace || (next.tok != Tok::PlusAssign && on_later_line) {
            return Err(Diagnostic::error(
                prev.end(),
                format!("syntax error: missing `;` before {}", next.tok.describe()),
            ));
        }
        Err(self.unexpected("`;`"))
    }

    fn string(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.peek_tok().clone() {
            Tok::Str { value, .. } => Ok((value, self.bump().span)),
            _ => Err(self.unexpected(what)),
        }
    }

    // ---- recovery ----

    /// Skips the rest of a broken top-level item: everything on the error line, and any
    /// brace-balanced block that starts there.
    fn recover_top(&mut self, line: u32) {
        let mut depth = 0usize;
        while !self.at_eof() {
            let t = self.peek();
            if depth == 0 && t.span.line > line && t.tok != Tok::LBrace {
                return;
            }
            match t.tok {
                Tok::LBrace => depth += 1,
                Tok::RBrace => {
                    if depth <= 1 {
                        self.bump();
                        if depth == 1 {
                            return;
                        }
                        continue;
                    }
                    depth -= 1;
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips to the end of a broken statement: past the next `;` at this nesting level, or up
    /// to (not past) the `}` that closes the enclosing block.
    fn recover_stmt(&mut self) {
        let mut depth = 0usize;
        while !self.at_eof() {
            match self.peek_tok() {
                Tok::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                Tok::LBrace => depth += 1,
                Tok::RBrace => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    // ---- top level ----

    fn top_item(&mut self) -> PResult<()> {
        let t = self.peek().clone();
        let Tok::Ident(word) = &t.tok else {
            if t.tok == Tok::RBrace {
                return Err(Diagnostic::error(
                    t.span,
                    "unbalanced braces: unexpected `}`",
                ));
            }
            return Err(
                self.unexpected("a global parameter, `loadmodule`, `modparam` or a route block")
            );
        };
        match word.as_str() {
            "loadmodule" => self.loadmodule(),
            "modparam" => self.modparam(),
            w if ROUTE_KEYWORDS.contains(&w) => self.route_block(),
            "mpath" | "loadpath" if matches!(self.peek_at(1), Tok::Str { .. }) => {
                self.bump();
                let (value, span) = self.string("a path")?;
                self.global_param(word.clone(), t.span, ParamValue::Str(value), span)
            }
            _ => match self.peek_at(1) {
                Tok::Assign => self.core_param(),
                Tok::Dot => self.cfg_var(),
                Tok::LBracket | Tok::LBrace => Err(Diagnostic::error(
                    t.span,
                    format!("unknown route block keyword `{word}`"),
                )),
                _ => Err(Diagnostic::error(
                    t.span,
                    format!("syntax error: unexpected `{word}` at top level"),
                )),
            },
        }
    }

    fn loadmodule(&mut self) -> PResult<()> {
        let kw = self.bump().span;
        let (path, path_span) = self.string("a module name in quotes")?;
        let base = path.rsplit('/').next().unwrap_or(&path);
        let name = base.strip_suffix(".so").unwrap_or(base).to_string();
        if name.is_empty() {
            return Err(Diagnostic::error(kw, format!("bad module name `{path}`")));
        }
        // Kamailio: "attempting to load the same module twice" then "failed to load module"
        // at the second name; `tm`, `tm.so` and `/path/to/tm.so` are one module here.
        if let Some(prev) = self.out.modules.iter().find(|m| m.name == name) {
            return Err(Diagnostic::error(
                path_span,
                format!(
                    "failed to load module `{name}`: already loaded (first loaded at line {} \
                     as \"{}\")",
                    prev.span.line, prev.path
                ),
            ));
        }
        self.out.modules.push(LoadModule {
            name,
            path,
            span: kw,
        });
        self.eat(&Tok::Semi);
        Ok(())
    }

    fn modparam(&mut self) -> PResult<()> {
        let kw = self.bump().span;
        self.expect(Tok::LParen, "`(`")?;
        let (module, module_span) = self.string("the module name in quotes")?;
        self.expect(Tok::Comma, "`,`")?;
        let (name, name_span) = self.string("the parameter name in quotes")?;
        self.expect(Tok::Comma, "`,`")?;
        let value_start = self.peek().span;
        let value = match self.peek_tok().clone() {
            Tok::Str { value, .. } => {
                self.bump();
                ModParamValue::Str(self.adjacent_strings(value))
            }
            Tok::Int(i) => {
                self.bump();
                ModParamValue::Int(i)
            }
            Tok::Minus if matches!(self.peek_at(1), Tok::Int(_)) => {
                self.bump();
                let Tok::Int(i) = self.bump().tok else {
                    unreachable!("checked by the guard")
                };
                ModParamValue::Int(-i)
            }
            Tok::Ident(w) if bool_word(&w).is_some() => {
                self.bump();
                ModParamValue::Int(bool_word(&w).unwrap_or_default() as i64)
            }
            _ => return Err(self.unexpected("a string or number")),
        };
        let value_span = value_start.to(self.prev_span());
        self.expect(Tok::RParen, "`)`")?;
        self.eat(&Tok::Semi);
        self.out.modparams.push(ModParam {
            module,
            name,
            value,
            span: kw,
            module_span,
            name_span,
            value_span,
        });
        Ok(())
    }

    fn core_param(&mut self) -> PResult<()> {
        let name_tok = self.bump();
        let Tok::Ident(name) = name_tok.tok else {
            unreachable!("caller checked for an identifier")
        };
        self.bump(); // `=`
        let Some(def) = core_params::lookup(&name) else {
            return Err(Diagnostic::error(
                name_tok.span,
                format!("unknown core parameter `{name}`"),
            ));
        };
        let start = self.peek().span;
        let value = self.param_value(&name, def.kind)?;
        let value_span = start.to(self.prev_span());
        self.eat(&Tok::Semi);
        if !def.used {
            tracing::debug!("core parameter `{name}` accepted and ignored by siplab");
        }
        self.global_param(name, name_tok.span, value, value_span)
    }

    fn global_param(
        &mut self,
        name: String,
        span: Span,
        value: ParamValue,
        value_span: Span,
    ) -> PResult<()> {
        self.out.core.apply(&name, &value, value_span)?;
        self.out.globals.push(GlobalParam {
            name,
            value,
            span,
            value_span,
        });
        Ok(())
    }

    fn param_value(&mut self, name: &str, kind: ValueKind) -> PResult<ParamValue> {
        let bad = |p: &Parser, want: &str| {
            Diagnostic::error(
                p.peek().span,
                format!(
                    "bad value for `{name}`: expected {want}, found {}",
                    p.peek_tok().describe()
                ),
            )
        };
        match kind {
            ValueKind::Int => self.int_value().ok_or_else(|| bad(self, "a number")),
            ValueKind::Bool => match self.peek_tok().clone() {
                Tok::Ident(w) if bool_word(&w).is_some() => {
                    self.bump();
                    Ok(ParamValue::Bool(bool_word(&w).unwrap_or_default()))
                }
                Tok::Int(i @ (0 | 1)) => {
                    self.bump();
                    Ok(ParamValue::Bool(i == 1))
                }
                _ => Err(bad(self, "yes or no")),
            },
            ValueKind::Str => match self.peek_tok().clone() {
                Tok::Str { value, .. } => {
                    self.bump();
                    Ok(ParamValue::Str(self.adjacent_strings(value)))
                }
                _ => Err(bad(self, "a string")),
            },
            ValueKind::Word => match self.peek_tok().clone() {
                Tok::Str { value, .. } => {
                    self.bump();
                    Ok(ParamValue::Str(value))
                }
                Tok::Ident(w) => {
                    self.bump();
                    Ok(ParamValue::Word(w))
                }
                _ => Err(bad(self, "a word or string")),
            },
            ValueKind::Addr => self.addr_spec(name).map(ParamValue::Addr),
            ValueKind::Any => {
                if let Some(v) = self.int_value() {
                    return Ok(v);
                }
                match self.peek_tok().clone() {
                    Tok::Str { value, .. } => {
                        self.bump();
                        Ok(ParamValue::Str(value))
                    }
                    Tok::Ident(w) if bool_word(&w).is_some() => {
                        self.bump();
                        Ok(ParamValue::Bool(bool_word(&w).unwrap_or_default()))
                    }
                    Tok::Ident(_) if matches!(self.peek_at(1), Tok::Colon) => {
                        self.addr_spec(name).map(ParamValue::Addr)
                    }
                    Tok::Ident(_) => Ok(ParamValue::Word(self.dotted_word())),
                    Tok::Ipv4(_) | Tok::Ipv6(_) | Tok::LBracket => {
                        self.addr_spec(name).map(ParamValue::Addr)
                    }
                    _ => Err(bad(self, "a value")),
                }
            }
        }
    }

    /// Kamailio's grammar joins adjacent string literals in parameter values (the stock
    /// cfg splits `acc` `log_extra` over two lines that way); expressions do not.
    fn adjacent_strings(&mut self, mut value: String) -> String {
        while let Tok::Str { value: more, .. } = self.peek_tok().clone() {
            self.bump();
            value.push_str(&more);
        }
        value
    }

    fn int_value(&mut self) -> Option<ParamValue> {
        match (self.peek_tok().clone(), self.peek_at(1).clone()) {
            (Tok::Int(i), _) => {
                self.bump();
                Some(ParamValue::Int(i))
            }
            (Tok::Minus, Tok::Int(i)) => {
                self.bump();
                self.bump();
                Some(ParamValue::Int(-i))
            }
            _ => None,
        }
    }

    /// `a.b.c` (host names, dotted words) from adjacent tokens.
    fn dotted_word(&mut self) -> String {
        let mut s = String::new();
        loop {
            match self.peek_tok().clone() {
                Tok::Ident(w) => s.push_str(&w),
                Tok::Int(i) => s.push_str(&i.to_string()),
                _ => break,
            }
            self.bump();
            if matches!(self.peek_tok(), Tok::Dot)
                && matches!(self.peek_at(1), Tok::Ident(_) | Tok::Int(_))
            {
                self.bump();
                s.push('.');
            } else if matches!(self.peek_tok(), Tok::Minus)
                && matches!(self.peek_at(1), Tok::Ident(_))
                && self.peek().span.line == self.prev_span().line
            {
                self.bump();
                s.push('-');
            } else {
                break;
            }
        }
        s
    }

    /// `[proto:]host[:port] [advertise host[:port]]`.
    fn addr_spec(&mut self, name: &str) -> PResult<AddrSpec> {
        let bad =
            |span: Span, msg: String| Diagnostic::error(span, format!("bad {name} value: {msg}"));
        let mut proto = None;
        if let Tok::Ident(w) = self.peek_tok().clone()
            && matches!(self.peek_at(1), Tok::Colon)
        {
            let span = self.peek().span;
            proto = Some(
                Proto::from_word(&w).ok_or_else(|| bad(span, format!("unknown protocol `{w}`")))?,
            );
            self.bump();
            self.bump();
        }
        let (host, port) = self.host_port(name)?;
        let mut advertise = None;
        if self.is_word("advertise") {
            self.bump();
            advertise = Some(self.host_port(name)?);
        }
        Ok(AddrSpec {
            proto,
            host,
            port,
            advertise,
        })
    }

    fn host_port(&mut self, name: &str) -> PResult<(Host, Option<u16>)> {
        let start = self.peek().span;
        let bad =
            |span: Span, msg: String| Diagnostic::error(span, format!("bad {name} value: {msg}"));
        let host = match self.peek_tok().clone() {
            Tok::Ipv4(a) => {
                self.bump();
                Host::Ip(IpAddr::V4(a))
            }
            Tok::Ipv6(a) => {
                self.bump();
                Host::Ip(IpAddr::V6(a))
            }
            Tok::LBracket => {
                self.bump();
                let Tok::Ipv6(a) = self.peek_tok().clone() else {
                    return Err(bad(
                        self.peek().span,
                        "expected an IPv6 address in `[...]`".into(),
                    ));
                };
                self.bump();
                self.expect(Tok::RBracket, "`]`")?;
                Host::Ip(IpAddr::V6(a))
            }
            Tok::Ident(_) => Host::Name(self.dotted_word()),
            Tok::Str { value, .. } => {
                self.bump();
                Host::Name(value)
            }
            Tok::Star => {
                self.bump();
                Host::Name("*".into())
            }
            other => {
                return Err(bad(
                    start,
                    format!("expected an address, found {}", other.describe()),
                ));
            }
        };
        let mut port = None;
        if self.eat(&Tok::Colon) {
            let span = self.peek().span;
            match self.peek_tok().clone() {
                Tok::Int(p) if (1..=65535).contains(&p) => {
                    self.bump();
                    port = Some(p as u16);
                }
                other => return Err(bad(span, format!("bad port {}", other.describe()))),
            }
        }
        Ok((host, port))
    }

    fn cfg_var(&mut self) -> PResult<()> {
        let group_tok = self.bump();
        let Tok::Ident(group) = group_tok.tok else {
            unreachable!("caller checked for an identifier")
        };
        self.bump(); // `.`
        let name = match self.bump().tok {
            Tok::Ident(n) => n,
            other => {
                return Err(Diagnostic::error(
                    self.prev_span(),
                    format!(
                        "syntax error: expected a name after `{group}.`, found {}",
                        other.describe()
                    ),
                ));
            }
        };
        self.expect(Tok::Assign, "`=`")?;
        let value = if let Some(v) = self.int_value() {
            v
        } else {
            let (s, _) = self.string("a number or string")?;
            ParamValue::Str(s)
        };
        let mut desc = None;
        if self.is_word("desc") || self.is_word("descr") {
            self.bump();
            desc = Some(self.string("a description in quotes")?.0);
        }
        self.eat(&Tok::Semi);
        self.out.cfg_vars.push(CfgVar {
            group,
            name,
            value,
            desc,
            span: group_tok.span,
        });
        Ok(())
    }

    fn route_block(&mut self) -> PResult<()> {
        let kw_tok = self.bump();
        let Tok::Ident(kw) = kw_tok.tok else {
            unreachable!("caller checked for an identifier")
        };
        let mut name = None;
        if self.eat(&Tok::LBracket) {
            name = Some(if kw == "event_route" {
                self.event_name()?
            } else {
                self.route_name()?
            });
            self.expect(Tok::RBracket, "`]`")?;
        }
        let kind = match (kw.as_str(), name.is_some()) {
            ("request_route", false) | ("route", false) => RouteKind::Request,
            ("route", true) => RouteKind::Route,
            ("failure_route", true) => RouteKind::Failure,
            ("onreply_route", true) => RouteKind::OnReply,
            ("onreply_route", false) | ("reply_route", false) => RouteKind::Reply,
            ("branch_route", true) => RouteKind::Branch,
            ("onsend_route", false) => RouteKind::OnSend,
            ("event_route", true) => RouteKind::Event,
            (_, true) => {
                return Err(Diagnostic::error(
                    kw_tok.span,
                    format!("`{kw}` does not take a name"),
                ));
            }
            (_, false) => {
                return Err(Diagnostic::error(
                    kw_tok.span,
                    format!("`{kw}` needs a name: `{kw}[NAME]`"),
                ));
            }
        };
        let prev = self
            .out
            .routes
            .iter()
            .position(|r| r.kind == kind && r.name == name);
        if let (Some(i), Some(n)) = (prev, &name) {
            return Err(Diagnostic::error(
                kw_tok.span,
                format!(
                    "duplicate route name `{n}` in `{kw}` (first defined at line {})",
                    self.out.routes[i].span.line
                ),
            ));
        }
        let open = self.expect(Tok::LBrace, "`{`")?;
        let body = self.block_body(open);
        if let Some(i) = prev {
            // Kamailio appends the actions of a repeated unnamed block (`request_route`,
            // `route`, `reply_route`/`onreply_route`, `onsend_route`) to the first one: both
            // run, in file order, as one route.
            self.out.routes[i].body.extend(body);
            return Ok(());
        }
        self.out.routes.push(RouteBlock {
            kind,
            name,
            body,
            span: kw_tok.span,
        });
        Ok(())
    }

    fn route_name(&mut self) -> PResult<String> {
        match self.peek_tok().clone() {
            Tok::Ident(n) => {
                self.bump();
                Ok(n)
            }
            Tok::Int(i) => {
                self.bump();
                Ok(i.to_string())
            }
            Tok::Str { value, .. } => {
                self.bump();
                Ok(value)
            }
            _ => Err(self.unexpected("a route name")),
        }
    }

    /// `module:event` names contain `:` and `-`, so they are rebuilt from adjacent tokens.
    fn event_name(&mut self) -> PResult<String> {
        if let Tok::Str { value, .. } = self.peek_tok().clone() {
            self.bump();
            return Ok(value);
        }
        let mut s = String::new();
        loop {
            match self.peek_tok().clone() {
                Tok::Ident(w) => s.push_str(&w),
                Tok::Int(i) => s.push_str(&i.to_string()),
                Tok::Colon => s.push(':'),
                Tok::Minus => s.push('-'),
                Tok::Dot => s.push('.'),
                Tok::Ipv6(a) => s.push_str(&a.to_string()),
                _ => break,
            }
            self.bump();
        }
        if s.is_empty() {
            return Err(self.unexpected("an event name"));
        }
        Ok(s)
    }

    // ---- statements ----

    /// Statements up to the `}` matching `open` (consumed). Errors are recorded per statement.
    fn block_body(&mut self, open: Span) -> Vec<Stmt> {
        let mut body = Vec::new();
        loop {
            match self.peek_tok() {
                Tok::RBrace => {
                    self.bump();
                    return body;
                }
                Tok::Eof => {
                    self.out.errors.push(Diagnostic::error(
                        open,
                        "unbalanced braces: this `{` is never closed",
                    ));
                    return body;
                }
                _ => {}
            }
            if self.out.errors.len() >= MAX_ERRORS {
                // Give up quietly; the caller stops too.
                while !self.at_eof() {
                    self.bump();
                }
                return body;
            }
            match self.statement() {
                Ok(Some(s)) => body.push(s),
                Ok(None) => {}
                Err(d) => {
                    self.out.errors.push(d);
                    self.recover_stmt();
                }
            }
        }
    }

    /// One statement; `None` for an empty `;`.
    fn statement(&mut self) -> PResult<Option<Stmt>> {
        let t = self.peek().clone();
        let start = t.span;
        let kind = match &t.tok {
            Tok::Semi => {
                self.bump();
                return Ok(None);
            }
            Tok::LBrace => {
                self.bump();
                StmtKind::Block(self.block_body(start))
            }
            Tok::Ident(w) => match w.as_str() {
                "if" => return self.if_stmt().map(Some),
                "while" => {
                    self.bump();
                    let cond = self.paren_cond()?;
                    self.loops += 1;
                    let body = self.body();
                    self.loops -= 1;
                    StmtKind::While { cond, body: body? }
                }
                "switch" => return self.switch_stmt().map(Some),
                "break" => {
                    self.bump();
                    if self.loops == 0 && self.switches == 0 {
                        return Err(Diagnostic::error(
                            start,
                            "`break` outside `while` or `switch`",
                        ));
                    }
                    self.expect_semi()?;
                    StmtKind::Break
                }
                "return" => {
                    self.bump();
                    let value = if self.peek_tok() == &Tok::Semi {
                        None
                    } else {
                        Some(self.expr()?)
                    };
                    self.expect_semi()?;
                    StmtKind::Return(value)
                }
                "exit" | "drop" => {
                    self.bump();
                    if self.eat(&Tok::LParen) {
                        self.expect(Tok::RParen, "`)`")?;
                    }
                    self.expect_semi()?;
                    if w == "exit" {
                        StmtKind::Exit
                    } else {
                        StmtKind::Drop
                    }
                }
                "else" => {
                    return Err(Diagnostic::error(
                        start,
                        "syntax error: `else` without `if`",
                    ));
                }
                "case" | "default" => {
                    return Err(Diagnostic::error(
                        start,
                        format!("syntax error: `{w}` outside `switch`"),
                    ));
                }
                _ => self.expr_stmt()?,
            },
            Tok::Pv(pv) if matches!(self.peek_at(1), Tok::Assign) => {
                let target = pv.clone();
                self.bump();
                self.bump();
                let value = self.expr()?;
                self.expect_semi()?;
                StmtKind::Assign {
                    target,
                    target_span: start,
                    value,
                }
            }
            Tok::Pv(_) if matches!(self.peek_at(1), Tok::PlusAssign) => {
                self.bump();
                return Err(self.unexpected("`=`"));
            }
            _ => self.expr_stmt()?,
        };
        Ok(Some(Stmt { kind, span: start }))
    }

    fn expr_stmt(&mut self) -> PResult<StmtKind> {
        let e = self.expr()?;
        self.expect_semi()?;
        Ok(StmtKind::Expr(e))
    }

    /// A braced block or a single statement (after `if`, `else`, `while`).
    fn body(&mut self) -> PResult<Vec<Stmt>> {
        if self.peek_tok() == &Tok::LBrace {
            let open = self.bump().span;
            return Ok(self.block_body(open));
        }
        Ok(self.statement()?.into_iter().collect())
    }

    fn paren_cond(&mut self) -> PResult<Expr> {
        self.expect(Tok::LParen, "`(`")?;
        let e = self.expr()?;
        self.expect(Tok::RParen, "`)`")?;
        Ok(e)
    }

    fn if_stmt(&mut self) -> PResult<Stmt> {
        let span = self.bump().span;
        let cond = self.paren_cond()?;
        let then_body = self.body()?;
        let else_body = if self.is_word("else") {
            self.bump();
            if self.is_word("if") {
                Some(vec![self.if_stmt()?])
            } else {
                Some(self.body()?)
            }
        } else {
            None
        };
        Ok(Stmt {
            kind: StmtKind::If {
                cond,
                then_body,
                else_body,
            },
            span,
        })
    }

    fn switch_stmt(&mut self) -> PResult<Stmt> {
        let span = self.bump().span;
        let subject = self.paren_cond()?;
        let open = self.expect(Tok::LBrace, "`{`")?;
        self.switches += 1;
        let cases = self.switch_cases(open);
        self.switches -= 1;
        Ok(Stmt {
            kind: StmtKind::Switch {
                subject,
                cases: cases?,
            },
            span,
        })
    }

    fn switch_cases(&mut self, open: Span) -> PResult<Vec<SwitchCase>> {
        let mut cases: Vec<SwitchCase> = Vec::new();
        loop {
            let t = self.peek().clone();
            let label = match &t.tok {
                Tok::RBrace => {
                    self.bump();
                    return Ok(cases);
                }
                Tok::Eof => {
                    return Err(Diagnostic::error(
                        open,
                        "unbalanced braces: this `{` is never closed",
                    ));
                }
                Tok::Ident(w) if w == "default" => {
                    self.bump();
                    CaseLabel::Default
                }
                Tok::Ident(w) if w == "case" => {
                    self.bump();
                    self.case_label()?
                }
                _ => return Err(self.unexpected("`case` or `default`")),
            };
            self.expect(Tok::Colon, "`:`")?;
            if cases.iter().any(|c| c.label == label) {
                return Err(Diagnostic::error(
                    t.span,
                    "duplicate case value in `switch`",
                ));
            }
            let mut body = Vec::new();
            while !(self.is_word("case")
                || self.is_word("default")
                || matches!(self.peek_tok(), Tok::RBrace | Tok::Eof))
            {
                match self.statement() {
                    Ok(Some(s)) => body.push(s),
                    Ok(None) => {}
                    Err(d) => {
                        self.out.errors.push(d);
                        self.recover_stmt();
                    }
                }
            }
            cases.push(SwitchCase {
                label,
                body,
                span: t.span,
            });
        }
    }

    fn case_label(&mut self) -> PResult<CaseLabel> {
        match (self.peek_tok().clone(), self.peek_at(1).clone()) {
            (Tok::Int(i), _) => {
                self.bump();
                Ok(CaseLabel::Int(i))
            }
            (Tok::Minus, Tok::Int(i)) => {
                self.bump();
                self.bump();
                Ok(CaseLabel::Int(-i))
            }
            (Tok::Str { value, .. }, _) => {
                self.bump();
                Ok(CaseLabel::Str(value))
            }
            _ => Err(self.unexpected("a number or string after `case`")),
        }
    }

    // ---- expressions (Kamailio cfg.y precedence, lowest first) ----

    pub fn expr(&mut self) -> PResult<Expr> {
        self.binary_level(0)
    }

    fn level_op(&self, level: usize) -> Option<BinOp> {
        let t = self.peek_tok();
        let word = |w: &str| matches!(t, Tok::Ident(s) if s == w);
        match level {
            0 if *t == Tok::OrOr || word("or") => Some(BinOp::Or),
            1 if *t == Tok::AndAnd || word("and") => Some(BinOp::And),
            2 if *t == Tok::BitOr => Some(BinOp::BitOr),
            3 if *t == Tok::BitAnd => Some(BinOp::BitAnd),
            4 if *t == Tok::Caret => Some(BinOp::BitXor),
            5 if *t == Tok::Shl => Some(BinOp::Shl),
            6 if *t == Tok::Shr => Some(BinOp::Shr),
            7 => match t {
                Tok::Eq => Some(BinOp::Eq),
                Tok::Ne => Some(BinOp::Ne),
                Tok::Match => Some(BinOp::Match),
                Tok::Ident(s) => match s.as_str() {
                    "eq" => Some(BinOp::StrEq),
                    "ne" => Some(BinOp::StrNe),
                    "ieq" => Some(BinOp::IntEq),
                    "ine" => Some(BinOp::IntNe),
                    _ => None,
                },
                _ => None,
            },
            8 => match t {
                Tok::Lt => Some(BinOp::Lt),
                Tok::Le => Some(BinOp::Le),
                Tok::Gt => Some(BinOp::Gt),
                Tok::Ge => Some(BinOp::Ge),
                _ => None,
            },
            9 => match t {
                Tok::Plus => Some(BinOp::Add),
                Tok::Minus => Some(BinOp::Sub),
                _ => None,
            },
            10 => match t {
                Tok::Star => Some(BinOp::Mul),
                Tok::Slash => Some(BinOp::Div),
                Tok::Ident(s) if s == "mod" => Some(BinOp::Mod),
                _ => None,
            },
            _ => None,
        }
    }

    const UNARY_LEVEL: usize = 11;
    const EQUALITY_LEVEL: usize = 7;

    fn binary_level(&mut self, level: usize) -> PResult<Expr> {
        if level >= Self::UNARY_LEVEL {
            return self.unary();
        }
        let mut lhs = self.binary_level(level + 1)?;
        while let Some(op) = self.level_op(level) {
            let op_span = self.bump().span;
            let rhs = self.binary_level(level + 1)?;
            lhs = typeck::binary(op, lhs, rhs, op_span)?;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        let op = match &t.tok {
            Tok::Not => Some(UnaryOp::Not),
            Tok::Ident(w) if w == "not" => Some(UnaryOp::Not),
            Tok::Minus => Some(UnaryOp::Neg),
            Tok::Tilde => Some(UnaryOp::BitNot),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            // `!uri == myself` means "not (uri == myself)" in Kamailio's grammar: a core
            // keyword only forms a condition together with its comparison.
            let operand = if op == UnaryOp::Not && self.at_core_keyword() {
                self.binary_level(Self::EQUALITY_LEVEL)?
            } else {
                self.unary()?
            };
            return typeck::unary(op, operand, t.span);
        }
        if let Tok::Ident(w) = &t.tok
            && w == "defined"
        {
            self.bump();
            let paren = self.eat(&Tok::LParen);
            let pv = match self.peek_tok().clone() {
                Tok::Pv(pv) => {
                    self.bump();
                    pv
                }
                _ => return Err(self.unexpected("a pseudo-variable after `defined`")),
            };
            if paren {
                self.expect(Tok::RParen, "`)`")?;
            }
            return Ok(Expr {
                kind: ExprKind::Defined(pv),
                span: t.span.to(self.prev_span()),
            });
        }
        if t.tok == Tok::LParen
            && matches!(self.peek_at(2), Tok::RParen)
            && let Tok::Ident(w) = self.peek_at(1)
            && (w == "int" || w == "str")
        {
            let to = if w == "int" {
                CastType::Int
            } else {
                CastType::Str
            };
            self.bump();
            self.bump();
            self.bump();
            let expr = self.unary()?;
            let span = t.span.to(expr.span);
            return Ok(Expr {
                kind: ExprKind::Cast {
                    to,
                    expr: Box::new(expr),
                },
                span,
            });
        }
        self.primary()
    }

    fn at_core_keyword(&self) -> bool {
        matches!(self.peek_tok(), Tok::Ident(w) if CoreKeyword::from_word(w).is_some_and(|k| k != CoreKeyword::Myself))
            && !matches!(self.peek_at(1), Tok::LParen)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        let kind = match t.tok {
            Tok::Int(i) => {
                self.bump();
                ExprKind::Int(i)
            }
            Tok::Str { value, quote } => {
                self.bump();
                ExprKind::Str(StrLit { value, quote })
            }
            Tok::Pv(pv) => {
                self.bump();
                if pv.is_null() {
                    ExprKind::Null
                } else {
                    ExprKind::Pv(pv)
                }
            }
            Tok::Ipv4(a) => {
                self.bump();
                self.maybe_net(IpAddr::V4(a), 32)?
            }
            Tok::Ipv6(a) => {
                self.bump();
                self.maybe_net(IpAddr::V6(a), 128)?
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                return Ok(e);
            }
            Tok::Ident(ref w) => return self.ident_expr(w.clone(), t.span),
            _ => return Err(self.unexpected("an expression")),
        };
        Ok(Expr {
            kind,
            span: t.span.to(self.prev_span()),
        })
    }

    fn maybe_net(&mut self, addr: IpAddr, max: i64) -> PResult<ExprKind> {
        if self.peek_tok() == &Tok::Slash
            && let Tok::Int(p) = *self.peek_at(1)
        {
            self.bump();
            let span = self.bump().span;
            if !(0..=max).contains(&p) {
                return Err(Diagnostic::error(
                    span,
                    format!("bad network prefix length `{p}`"),
                ));
            }
            return Ok(ExprKind::Net {
                addr,
                prefix: p as u8,
            });
        }
        Ok(ExprKind::Ip(addr))
    }

    fn ident_expr(&mut self, w: String, span: Span) -> PResult<Expr> {
        self.bump();
        let kind = match w.as_str() {
            "strlen" | "strempty" => {
                self.expect(Tok::LParen, "`(`")?;
                let e = Box::new(self.expr()?);
                self.expect(Tok::RParen, "`)`")?;
                if w == "strlen" {
                    ExprKind::Strlen(e)
                } else {
                    ExprKind::Strempty(e)
                }
            }
            "route" if self.peek_tok() == &Tok::LParen => {
                self.bump();
                let name = self.route_name()?;
                self.expect(Tok::RParen, "`)`")?;
                ExprKind::RouteCall(name)
            }
            "msg"
                if self.peek_tok() == &Tok::Colon
                    && matches!(self.peek_at(1), Tok::Ident(s) if s == "len") =>
            {
                self.bump();
                self.bump();
                ExprKind::Keyword(CoreKeyword::MsgLen)
            }
            _ if self.peek_tok() == &Tok::LParen => {
                self.bump();
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        self.expect(Tok::Comma, "`,` or `)`")?;
                    }
                }
                ExprKind::Call(Call {
                    name: w.clone(),
                    args,
                    span,
                })
            }
            _ => {
                if let Some(k) = CoreKeyword::from_word(&w) {
                    ExprKind::Keyword(k)
                } else if let Some(b) = bool_word(&w) {
                    ExprKind::Int(b as i64)
                } else {
                    return Err(Diagnostic::error(
                        span,
                        format!(
                            "unknown identifier `{w}` (not a define, keyword or function call)"
                        ),
                    ));
                }
            }
        };
        Ok(Expr {
            kind,
            span: span.to(self.prev_span()),
        })
    }
}

fn bool_word(w: &str) -> Option<bool> {
    match w.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "enable" => Some(true),
        "no" | "false" | "off" | "disable" => Some(false),
        _ => None,
    }
}
