//! The compiler: binds a loaded [`Config`] to module exports and prepares everything the
//! interpreter needs, before fork.
//!
//! * every `loadmodule` names a module in the table handed in; `core` is always loaded;
//! * every `modparam` names a loaded module (or a `a|b` regex over loaded names), a parameter
//!   it exports (or an alias) and a value of the right type [E22];
//! * every call binds by name and arity to an export of a loaded module
//!   (`unknown function NAME/ARITY` [E21]) that may run in every route kind the call can be
//!   reached from (`route[X]` blocks inherit the kinds of their callers);
//! * arguments are prepared per [`ArgKind`] and the export's fixup runs;
//! * PV names, transformations and assignment targets are resolved (`unknown pseudo-variable`,
//!   read-only targets), constant `=~` patterns compiled.
//!
//! Errors carry spans and print as `file:line:col`, the source line and a caret.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::Config;
use crate::abi::{
    Arg, ArgKind, FixupCtx, FunctionExport, ModuleExports, ParamKind, ParamSetting, RouteId,
    RouteKinds,
};
use crate::ast::{
    BinOp, CaseLabel, CastType, CoreKeyword, Expr, ExprKind, ModParamValue, RouteKind, Stmt,
    StmtKind, UnaryOp,
};
use crate::check::walk_stmts;
use crate::core_params::CoreParams;
use crate::diag::Diagnostic;
use crate::pv::{parse_format, parse_pv};
use crate::pvar::{Format, PvEnv, PvSpec};
use crate::span::{SourceMap, Span};
use crate::value::Value;

/// Compiles a `=~` pattern (constant or dynamic) or a `Regex` argument, case-insensitively.
///
/// Kamailio 5.6.3 compiles all of these with `REG_EXTENDED|REG_ICASE` (rvalue.c for `=~`,
/// `fix_param` for `FPARAM_REGEX`): `$rm =~ "^opt"` is true for OPTIONS and `search()` ignores
/// case — checked against the running server. Spec §8.6 said `=~` was case-sensitive; the
/// server wins. siplab uses the `regex` crate. For match/no-match (all the script asks) it
/// agrees with POSIX on the ERE subset configs use: alternation, groups, bracket expressions
/// incl. `[[:digit:]]`, anchors, repetition. Differences: no backreferences in either; `\d`,
/// `\w`, `(?i)` and other Perl syntax is accepted here but not by POSIX; a `\` inside
/// brackets is an escape here but a literal in POSIX; patterns are Unicode-aware here.
pub fn build_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
}

/// A one-line reason for a regex error (the crate's message spans several lines with its own
/// caret; the diagnostic already points at the pattern).
pub(crate) fn regex_error_text(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().next().unwrap_or_default().to_string(),
            str::to_string,
        )
}

/// The module every config has without `loadmodule`.
pub const CORE_MODULE: &str = "core";

/// Route block kinds in table order; [`RouteId::index`] counts within one kind.
pub(crate) const KINDS: [RouteKind; 8] = [
    RouteKind::Request,
    RouteKind::Route,
    RouteKind::Failure,
    RouteKind::OnReply,
    RouteKind::Branch,
    RouteKind::Reply,
    RouteKind::OnSend,
    RouteKind::Event,
];

pub(crate) fn kind_slot(kind: RouteKind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Compiled program

#[derive(Debug)]
pub(crate) struct CRoute {
    pub name: Option<String>,
    pub body: Vec<CStmt>,
}

#[derive(Debug)]
pub(crate) enum CStmt {
    If {
        cond: CExpr,
        then_body: Vec<CStmt>,
        else_body: Vec<CStmt>,
    },
    While {
        cond: CExpr,
        body: Vec<CStmt>,
        span: Span,
    },
    Switch {
        subject: CExpr,
        /// Labels in source order; bodies fall through to the next until `break`.
        cases: Vec<(CaseLabel, Vec<CStmt>)>,
    },
    Break,
    Return(Option<CExpr>),
    Exit,
    Drop,
    Assign {
        target: PvSpec,
        value: CExpr,
        span: Span,
    },
    Expr(CExpr),
    Block(Vec<CStmt>),
}

/// How `myself` interprets the other side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MyselfOf {
    /// A URI: host and port (no port = 5060) must be a listen address or alias.
    Uri,
    /// An IP address: any listen address.
    Ip,
}

#[derive(Debug)]
pub(crate) enum CExpr {
    Const(Value),
    Pv(PvSpec),
    Keyword(CoreKeyword),
    Call {
        f: &'static FunctionExport,
        args: Box<[Arg]>,
    },
    RouteCall {
        index: u32,
        span: Span,
    },
    Unary {
        op: UnaryOp,
        expr: Box<CExpr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<CExpr>,
        rhs: Box<CExpr>,
        span: Span,
    },
    /// `=~` with a constant pattern.
    Match {
        lhs: Box<CExpr>,
        re: regex::Regex,
    },
    /// `method == "x"`: case-insensitive, as Kamailio compares methods.
    MethodEq {
        rhs: Box<CExpr>,
        negate: bool,
    },
    Myself {
        lhs: Box<CExpr>,
        of: MyselfOf,
        negate: bool,
    },
    /// `src_ip == 10.0.0.0/8` (prefix 32/128 for a plain address).
    InNet {
        lhs: Box<CExpr>,
        addr: IpAddr,
        prefix: u8,
        negate: bool,
    },
    Cast {
        to: CastType,
        expr: Box<CExpr>,
    },
    Defined(PvSpec),
    Strlen(Box<CExpr>),
    Strempty(Box<CExpr>),
}

/// A module with its checked params.
#[derive(Debug)]
pub struct LoadedModule {
    pub exports: &'static ModuleExports,
    pub params: Vec<ParamSetting>,
}

/// A compiled config, ready to run in every process.
#[derive(Debug)]
pub struct Script {
    pub(crate) routes: [Vec<CRoute>; 8],
    pub(crate) modules: Vec<LoadedModule>,
    /// The modules' end-of-request hooks in load order (run for every request).
    pub(crate) post_script_hooks: Vec<crate::abi::PostScriptFn>,
    /// `log_prefix`: expanded once per message and put before `<module>` in its log lines.
    pub(crate) log_prefix: Option<Format>,
    pub(crate) vars: Vec<String>,
    pub(crate) core: CoreParams,
    pub(crate) sources: SourceMap,
    /// Lints from loading and compiling (`siplab -c` prints them).
    pub warnings: Vec<Diagnostic>,
}

impl Script {
    /// The id of the block of that kind and name (`None` for unnamed blocks).
    pub fn route_id(&self, kind: RouteKind, name: Option<&str>) -> Option<RouteId> {
        self.routes[kind_slot(kind)]
            .iter()
            .position(|r| r.name.as_deref() == name)
            .map(|i| RouteId {
                kind,
                index: i as u32,
            })
    }

    /// The name of a route block (for logs).
    pub fn route_name(&self, id: RouteId) -> Option<&str> {
        self.routes[kind_slot(id.kind)]
            .get(id.index as usize)
            .and_then(|r| r.name.as_deref())
    }

    /// Loaded modules in `loadmodule` order (`core` first).
    pub fn modules(&self) -> &[LoadedModule] {
        &self.modules
    }

    pub fn is_loaded(&self, module: &str) -> bool {
        self.modules.iter().any(|m| m.exports.name == module)
    }

    pub fn core(&self) -> &CoreParams {
        &self.core
    }

    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// Names of `$var` variables (slot order).
    pub fn var_names(&self) -> &[String] {
        &self.vars
    }
}

// ---------------------------------------------------------------------------------------------
// Compiler

struct Compiler<'c> {
    cfg: &'c Config,
    /// (name, arity) → export, over the loaded modules.
    functions: HashMap<(&'static str, usize), &'static FunctionExport>,
    /// Function name → module names that export it, over all available modules (hints).
    available: &'c [&'static ModuleExports],
    loaded: Vec<&'static ModuleExports>,
    env: PvEnv,
    names: [Vec<Option<String>>; 8],
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// Compiles a loaded config against the available modules (`sip_modules::all_modules()` in
/// the binary, a test table in tests). Returns every error found, in source order.
pub fn compile(
    cfg: &Config,
    modules: &[&'static ModuleExports],
) -> Result<Script, Vec<Diagnostic>> {
    let mut c = Compiler {
        cfg,
        functions: HashMap::new(),
        available: modules,
        loaded: Vec::new(),
        env: PvEnv::default(),
        names: Default::default(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    c.load_modules();
    let params = c.check_modparams();
    for r in &cfg.routes {
        c.names[kind_slot(r.kind)].push(r.name.clone());
    }
    let reach = c.route_reach();
    let mut routes: [Vec<CRoute>; 8] = Default::default();
    for r in &cfg.routes {
        let kinds = match r.kind {
            RouteKind::Route => {
                let i = c.route_index(RouteKind::Route, r.name.as_deref());
                let k = i.map_or(RouteKinds::NONE, |i| reach[i as usize]);
                // An unreached route[X] is checked against nothing (Kamailio does not either).
                if k.is_empty() { RouteKinds::ANY } else { k }
            }
            kind => RouteKinds::of(kind),
        };
        let body = c.stmts(&r.body, kinds);
        routes[kind_slot(r.kind)].push(CRoute {
            name: r.name.clone(),
            body,
        });
    }
    let log_prefix = c.log_prefix();
    if !c.errors.is_empty() {
        c.errors
            .sort_by_key(|d| (d.span.file.0, d.span.line, d.span.col));
        return Err(c.errors);
    }
    let mut warnings = cfg.warnings.clone();
    warnings.extend(c.warnings);
    let loaded = c.loaded;
    Ok(Script {
        routes,
        modules: loaded
            .iter()
            .map(|m| LoadedModule {
                exports: m,
                params: params
                    .iter()
                    .filter(|(name, _)| *name == m.name)
                    .map(|(_, p)| p.clone())
                    .collect(),
            })
            .collect(),
        post_script_hooks: loaded.iter().filter_map(|m| m.post_script).collect(),
        log_prefix,
        vars: c.env.vars,
        core: cfg.core.clone(),
        sources: cfg.sources.clone(),
        warnings,
    })
}

fn arg_desc(i: usize, f: &str) -> String {
    format!("argument {} of `{f}`", i + 1)
}

impl Compiler<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(Diagnostic::error(span, msg));
    }

    fn load_modules(&mut self) {
        if let Some(core) = self.available.iter().find(|m| m.name == CORE_MODULE) {
            self.loaded.push(core);
        }
        for lm in &self.cfg.modules {
            match self.available.iter().find(|m| m.name == lm.name) {
                Some(m) => {
                    if !self.loaded.iter().any(|l| l.name == m.name) {
                        self.loaded.push(m);
                    }
                }
                None => self.err(
                    lm.span,
                    format!(
                        "module `{}` is not available in siplab (loadmodule \"{}\")",
                        lm.name, lm.path
                    ),
                ),
            }
        }
        for m in &self.loaded {
            for f in m.functions {
                // The first module loaded wins, as in Kamailio's lookup order.
                self.functions.entry((f.name, f.args.len())).or_insert(f);
            }
            self.env.module_pvs.extend(m.pvs.iter());
        }
    }

    /// Checks every modparam; returns (module name, setting) pairs.
    fn check_modparams(&mut self) -> Vec<(&'static str, ParamSetting)> {
        let mut out = Vec::new();
        for mp in &self.cfg.modparams {
            let targets: Vec<&'static ModuleExports> =
                match self.loaded.iter().find(|m| m.name == mp.module) {
                    Some(m) => vec![*m],
                    None => match regex::Regex::new(&format!("^(?:{})$", mp.module)) {
                        Ok(re) => self
                            .loaded
                            .iter()
                            .filter(|m| re.is_match(m.name))
                            .copied()
                            .collect(),
                        Err(_) => Vec::new(),
                    },
                };
            if targets.is_empty() {
                self.err(
                    mp.module_span,
                    format!("modparam: no loaded module matches `{}`", mp.module),
                );
                continue;
            }
            for m in targets {
                let Some(p) = m.param(&mp.name) else {
                    self.err(
                        mp.name_span,
                        format!("parameter `{}` not found in module `{}`", mp.name, m.name),
                    );
                    continue;
                };
                let ok = matches!(
                    (p.kind, &mp.value),
                    (ParamKind::Int, ModParamValue::Int(_))
                        | (ParamKind::Str, ModParamValue::Str(_))
                );
                if !ok {
                    let want = match p.kind {
                        ParamKind::Int => "an integer",
                        ParamKind::Str => "a string",
                    };
                    self.err(
                        mp.value_span,
                        format!(
                            "parameter `{}` of module `{}` must be {want}",
                            mp.name, m.name
                        ),
                    );
                    continue;
                }
                out.push((
                    m.name,
                    ParamSetting {
                        name: p.name,
                        value: mp.value.clone(),
                    },
                ));
            }
        }
        out
    }

    fn route_index(&self, kind: RouteKind, name: Option<&str>) -> Option<u32> {
        self.names[kind_slot(kind)]
            .iter()
            .position(|n| n.as_deref() == name)
            .map(|i| i as u32)
    }

    /// For each `route[X]` (by index), the kinds of the top-level blocks that reach it.
    fn route_reach(&self) -> Vec<RouteKinds> {
        let n = self.names[kind_slot(RouteKind::Route)].len();
        let mut calls: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut reach = vec![RouteKinds::NONE; n];
        let mut roots: Vec<(RouteKinds, Vec<u32>)> = Vec::new();
        for r in &self.cfg.routes {
            let mut called = Vec::new();
            walk_stmts(&r.body, &mut |e: &Expr| {
                if let ExprKind::RouteCall(name) = &e.kind
                    && let Some(i) = self.route_index(RouteKind::Route, Some(name))
                {
                    called.push(i);
                }
            });
            if r.kind == RouteKind::Route {
                if let Some(i) = self.route_index(RouteKind::Route, r.name.as_deref()) {
                    calls[i as usize] = called;
                }
            } else {
                roots.push((RouteKinds::of(r.kind), called));
            }
        }
        for (kind, called) in roots {
            let mut stack = called;
            while let Some(i) = stack.pop() {
                let slot = &mut reach[i as usize];
                if !slot.contains(kind) {
                    *slot = slot.union(kind);
                    stack.extend(calls[i as usize].iter().copied());
                }
            }
        }
        reach
    }

    fn stmts(&mut self, body: &[Stmt], kinds: RouteKinds) -> Vec<CStmt> {
        body.iter().filter_map(|s| self.stmt(s, kinds)).collect()
    }

    fn stmt(&mut self, s: &Stmt, kinds: RouteKinds) -> Option<CStmt> {
        Some(match &s.kind {
            StmtKind::If {
                cond,
                then_body,
                else_body,
            } => CStmt::If {
                cond: self.expr(cond, kinds)?,
                then_body: self.stmts(then_body, kinds),
                else_body: else_body
                    .as_ref()
                    .map(|b| self.stmts(b, kinds))
                    .unwrap_or_default(),
            },
            StmtKind::While { cond, body } => CStmt::While {
                cond: self.expr(cond, kinds)?,
                body: self.stmts(body, kinds),
                span: s.span,
            },
            StmtKind::Switch { subject, cases } => CStmt::Switch {
                subject: self.expr(subject, kinds)?,
                cases: cases
                    .iter()
                    .map(|c| (c.label.clone(), self.stmts(&c.body, kinds)))
                    .collect(),
            },
            StmtKind::Break => CStmt::Break,
            StmtKind::Return(v) => CStmt::Return(match v {
                Some(e) => Some(self.expr(e, kinds)?),
                None => None,
            }),
            StmtKind::Exit => CStmt::Exit,
            StmtKind::Drop => CStmt::Drop,
            StmtKind::Assign {
                target,
                target_span,
                value,
            } => {
                let value = self.expr(value, kinds);
                let target = match self.env.compile(target) {
                    Ok(t) => t,
                    Err(e) => {
                        self.err(*target_span, e);
                        return None;
                    }
                };
                if !target.is_writable() {
                    self.err(
                        *target_span,
                        format!(
                            "cannot assign to read-only pseudo-variable `{}`",
                            target.text
                        ),
                    );
                    return None;
                }
                CStmt::Assign {
                    target,
                    value: value?,
                    span: *target_span,
                }
            }
            StmtKind::Expr(e) => CStmt::Expr(self.expr(e, kinds)?),
            StmtKind::Block(b) => CStmt::Block(self.stmts(b, kinds)),
        })
    }

    fn pv(&mut self, r: &crate::pv::PvRef, span: Span) -> Option<PvSpec> {
        match self.env.compile(r) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(span, e);
                None
            }
        }
    }

    fn expr(&mut self, e: &Expr, kinds: RouteKinds) -> Option<CExpr> {
        Some(match &e.kind {
            ExprKind::Int(i) => CExpr::Const(Value::Int(*i)),
            ExprKind::Str(s) => CExpr::Const(Value::Str(s.value.clone())),
            ExprKind::Null => CExpr::Const(Value::Null),
            ExprKind::Pv(p) => CExpr::Pv(self.pv(p, e.span)?),
            ExprKind::Ip(a) => CExpr::Const(Value::Str(a.to_string())),
            ExprKind::Net { .. } => {
                self.err(e.span, "a network can only be compared with `==` or `!=`");
                return None;
            }
            ExprKind::Keyword(CoreKeyword::Myself) => {
                self.err(
                    e.span,
                    "`myself` can only be compared with `==` or `!=` to uri, from_uri, to_uri, src_ip, dst_ip or a pseudo-variable",
                );
                return None;
            }
            ExprKind::Keyword(k) => CExpr::Keyword(*k),
            ExprKind::Call(call) => return self.call(call, kinds),
            ExprKind::RouteCall(name) => match self.route_index(RouteKind::Route, Some(name)) {
                Some(index) => CExpr::RouteCall {
                    index,
                    span: e.span,
                },
                None => {
                    self.err(
                        e.span,
                        format!("route `{name}` is not defined (no `route[{name}]` block)"),
                    );
                    return None;
                }
            },
            ExprKind::Unary { op, expr } => CExpr::Unary {
                op: *op,
                expr: Box::new(self.expr(expr, kinds)?),
            },
            ExprKind::Binary { op, lhs, rhs } => return self.binary(*op, lhs, rhs, e.span, kinds),
            ExprKind::Cast { to, expr } => CExpr::Cast {
                to: *to,
                expr: Box::new(self.expr(expr, kinds)?),
            },
            ExprKind::Defined(p) => CExpr::Defined(self.pv(p, e.span)?),
            ExprKind::Strlen(x) => CExpr::Strlen(Box::new(self.expr(x, kinds)?)),
            ExprKind::Strempty(x) => CExpr::Strempty(Box::new(self.expr(x, kinds)?)),
        })
    }

    fn binary(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
        kinds: RouteKinds,
    ) -> Option<CExpr> {
        let eq_ne = matches!(op, BinOp::Eq | BinOp::Ne);
        let negate = op == BinOp::Ne;
        // `X == myself`
        if matches!(rhs.kind, ExprKind::Keyword(CoreKeyword::Myself)) {
            if !eq_ne {
                self.err(span, "`myself` can only be compared with `==` or `!=`");
                return None;
            }
            let of = match lhs.kind {
                ExprKind::Keyword(CoreKeyword::SrcIp | CoreKeyword::DstIp) => MyselfOf::Ip,
                _ => MyselfOf::Uri,
            };
            let lhs = self.expr(lhs, kinds)?;
            return Some(CExpr::Myself {
                lhs: Box::new(lhs),
                of,
                negate,
            });
        }
        // `src_ip == 10.0.0.0/8`, `src_ip == 1.2.3.4`
        if let ExprKind::Net { addr, prefix } = rhs.kind {
            if !eq_ne {
                self.err(span, "a network can only be compared with `==` or `!=`");
                return None;
            }
            let lhs = self.expr(lhs, kinds)?;
            return Some(CExpr::InNet {
                lhs: Box::new(lhs),
                addr,
                prefix,
                negate,
            });
        }
        if let ExprKind::Ip(addr) = rhs.kind
            && eq_ne
        {
            let lhs = self.expr(lhs, kinds)?;
            return Some(CExpr::InNet {
                lhs: Box::new(lhs),
                addr,
                prefix: if addr.is_ipv4() { 32 } else { 128 },
                negate,
            });
        }
        if eq_ne && matches!(lhs.kind, ExprKind::Keyword(CoreKeyword::Method)) {
            let rhs = self.expr(rhs, kinds)?;
            return Some(CExpr::MethodEq {
                rhs: Box::new(rhs),
                negate,
            });
        }
        if op == BinOp::Match
            && let ExprKind::Str(s) = &rhs.kind
        {
            let lhs = self.expr(lhs, kinds)?;
            return match build_regex(&s.value) {
                Ok(re) => Some(CExpr::Match {
                    lhs: Box::new(lhs),
                    re,
                }),
                Err(e) => {
                    self.err(
                        rhs.span,
                        format!("bad regular expression: {}", regex_error_text(&e)),
                    );
                    None
                }
            };
        }
        let l = self.expr(lhs, kinds);
        let r = self.expr(rhs, kinds);
        Some(CExpr::Binary {
            op,
            lhs: Box::new(l?),
            rhs: Box::new(r?),
            span,
        })
    }

    fn call(&mut self, call: &crate::ast::Call, kinds: RouteKinds) -> Option<CExpr> {
        let arity = call.args.len();
        let Some(f) = self.functions.get(&(call.name.as_str(), arity)).copied() else {
            let msg = self.unknown_function_message(&call.name, arity);
            self.err(call.span, msg);
            return None;
        };
        if !f.routes.contains(kinds) {
            let bad = RouteKinds(kinds.0 & !f.routes.0);
            self.err(
                call.span,
                format!(
                    "function `{}` is not allowed in {} (allowed: {})",
                    f.name,
                    bad.names().join(", "),
                    f.routes.names().join(", ")
                ),
            );
            return None;
        }
        let mut args = Vec::with_capacity(arity);
        let mut ok = true;
        for (i, (a, kind)) in call.args.iter().zip(f.args).enumerate() {
            match self.prepare_arg(f.name, i, a, *kind) {
                Ok(arg) => args.push(arg),
                Err(msg) => {
                    self.err(a.span, msg);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if let Some(fixup) = f.fixup {
            let mut fctx = FixupCtx {
                core: &self.cfg.core,
                route_kinds: kinds,
                warnings: Vec::new(),
            };
            let res = fixup(&mut fctx, &mut args);
            for w in fctx.warnings {
                self.warnings.push(Diagnostic::warning(call.span, w));
            }
            if let Err(e) = res {
                let span = e
                    .arg
                    .and_then(|i| call.args.get(i))
                    .map_or(call.span, |a| a.span);
                let what = e
                    .arg
                    .map_or(format!("`{}`", f.name), |i| arg_desc(i, f.name));
                self.err(span, format!("bad {what}: {}", e.message));
                return None;
            }
        }
        Some(CExpr::Call {
            f,
            args: args.into_boxed_slice(),
        })
    }

    fn unknown_function_message(&self, name: &str, arity: usize) -> String {
        let mut msg = format!("unknown function {name}/{arity}");
        let loaded_arities: Vec<usize> = self
            .functions
            .keys()
            .filter(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .collect();
        if !loaded_arities.is_empty() {
            let mut a = loaded_arities;
            a.sort_unstable();
            let list: Vec<String> = a.iter().map(|n| n.to_string()).collect();
            msg.push_str(&format!(
                " (`{name}` takes {} argument(s))",
                list.join(" or ")
            ));
        } else if let Some(m) = self
            .available
            .iter()
            .find(|m| m.functions.iter().any(|f| f.name == name))
        {
            msg.push_str(&format!(
                " (module `{}` provides it: loadmodule \"{}.so\")",
                m.name, m.name
            ));
        }
        msg
    }

    fn prepare_arg(
        &mut self,
        fname: &str,
        i: usize,
        a: &Expr,
        kind: ArgKind,
    ) -> Result<Arg, String> {
        let desc = || arg_desc(i, fname);
        match kind {
            ArgKind::Int => match &a.kind {
                ExprKind::Int(n) => Ok(Arg::Int(*n)),
                ExprKind::Str(s) => {
                    if let Ok(n) = s.value.trim().parse::<i64>() {
                        Ok(Arg::Int(n))
                    } else if let Some(n) = parse_int_radix(s.value.trim()) {
                        Ok(Arg::Int(n))
                    } else if s.value.contains('$') {
                        Ok(Arg::DynInt(self.format(&s.value)?))
                    } else {
                        Err(format!("{}: `{}` is not a number", desc(), s.value))
                    }
                }
                ExprKind::Pv(p) => Ok(Arg::DynInt(Format::of_pv(self.env.compile(p)?))),
                _ => Err(format!(
                    "{}: expected a number or a pseudo-variable",
                    desc()
                )),
            },
            ArgKind::Str => match &a.kind {
                ExprKind::Str(s) => Ok(Arg::Str(s.value.clone())),
                ExprKind::Int(n) => Ok(Arg::Str(n.to_string())),
                _ => Err(format!("{}: expected a constant string", desc())),
            },
            ArgKind::Format => match &a.kind {
                ExprKind::Str(s) => Ok(Arg::Format(self.format(&s.value)?)),
                ExprKind::Int(n) => Ok(Arg::Format(Format::literal(n.to_string()))),
                ExprKind::Pv(p) => Ok(Arg::Format(Format::of_pv(self.env.compile(p)?))),
                ExprKind::Null => Ok(Arg::Format(Format::of_pv(
                    self.env.compile(&crate::pv::PvRef::simple("null"))?,
                ))),
                _ => Err(format!(
                    "{}: expected a string or a pseudo-variable",
                    desc()
                )),
            },
            ArgKind::Regex => match &a.kind {
                ExprKind::Str(s) => build_regex(&s.value).map(Arg::Regex).map_err(|e| {
                    format!(
                        "{}: bad regular expression: {}",
                        desc(),
                        regex_error_text(&e)
                    )
                }),
                _ => Err(format!(
                    "{}: expected a constant regular expression",
                    desc()
                )),
            },
            ArgKind::Pv | ArgKind::PvWritable => {
                let pv = match &a.kind {
                    ExprKind::Pv(p) => self.env.compile(p)?,
                    ExprKind::Str(s) => {
                        let text = s.value.trim();
                        let (r, used) =
                            parse_pv(text).map_err(|e| format!("{}: {}", desc(), e.message))?;
                        if used != text.len() {
                            return Err(format!("{}: `{text}` is not one pseudo-variable", desc()));
                        }
                        self.env.compile(&r)?
                    }
                    _ => return Err(format!("{}: expected a pseudo-variable", desc())),
                };
                if kind == ArgKind::PvWritable && !pv.is_writable() {
                    return Err(format!(
                        "{}: pseudo-variable `{}` is read-only",
                        desc(),
                        pv.text
                    ));
                }
                Ok(Arg::Pv(pv))
            }
            ArgKind::Route(rk) => {
                let name = match &a.kind {
                    ExprKind::Str(s) => s.value.clone(),
                    ExprKind::Int(n) => n.to_string(),
                    _ => return Err(format!("{}: expected a route name", desc())),
                };
                match self.route_index(rk, Some(&name)) {
                    Some(index) => Ok(Arg::Route(RouteId { kind: rk, index })),
                    None => Err(format!(
                        "{}: {} `{name}` is not defined (no `{}[{name}]` block)",
                        desc(),
                        rk.keyword(),
                        rk.keyword()
                    )),
                }
            }
        }
    }

    /// The `log_prefix` core parameter compiled as a format (the last one written wins, as
    /// with every core parameter); a bad pseudo-variable in it is a load error there.
    fn log_prefix(&mut self) -> Option<Format> {
        let text = self.cfg.core.log_prefix.clone()?;
        let span = self
            .cfg
            .globals
            .iter()
            .rev()
            .find(|g| g.name == "log_prefix")
            .map(|g| g.value_span);
        match self.format(&text) {
            Ok(f) => (!text.is_empty()).then_some(f),
            Err(e) => {
                if let Some(span) = span {
                    self.err(span, format!("log_prefix: {e}"));
                }
                None
            }
        }
    }

    fn format(&mut self, text: &str) -> Result<Format, String> {
        let parts = parse_format(text).map_err(|e| format!("bad format string: {e}"))?;
        self.env.compile_format(&parts)
    }
}

/// `0x1F`, `0o17`/`017`, `101b` as the lexer reads numbers.
fn parse_int_radix(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(b) = s.strip_suffix('b') {
        return i64::from_str_radix(b, 2).ok();
    }
    None
}
