//! The interpreter (spec §8.5, §8.6; K: src/core/action.c, src/core/rvalue.c).
//!
//! Return codes: a function's positive result is true, negative false, and **0 stops the
//! script**; `route(X)` gives X's `return` value, and `return 0` inside X also stops the whole
//! script [E20]. `$rc`/`$?` hold the last function or route result. `drop` stops the script
//! and sets the drop flag. As in Kamailio 5.6, a `while` whose body ran
//! [`Runtime::while_limit`] (`max_while_loops`) times logs "runaway while" at ERROR and ends,
//! and a `route()` that would nest deeper than [`Runtime::route_depth_limit`] (256 levels)
//! logs an error and gives -1 without running: in both cases the script goes on, and the
//! stack cannot overflow.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use sip_msg::Uri;

use crate::abi::{Ctx, LogLevel, ModChildInit, ModInit, RouteId};
use crate::ast::{BinOp, CaseLabel, CastType, CoreKeyword, RouteKind, UnaryOp};
use crate::compile::{CExpr, CStmt, MyselfOf, Script, kind_slot};
use crate::runtime::Runtime;
use crate::span::Span;
use crate::value::Value;

/// A run-time error: where and why. The script stops; the binary logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunError {
    pub span: Span,
    pub message: String,
    /// `file:line:col: message` rendered against the script's sources.
    pub location: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)
    }
}

impl std::error::Error for RunError {}

/// How a script run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The script ended (end of block, `exit`, `return`, a function returning 0, or `drop`
    /// when `drop` is true). `ret` is the block's return value (1 unless `return N`).
    Exit {
        drop: bool,
        ret: i32,
    },
    Error(RunError),
}

impl Outcome {
    pub fn is_drop(&self) -> bool {
        matches!(self, Outcome::Exit { drop: true, .. })
    }
}

/// A module init failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitError {
    pub module: &'static str,
    pub message: String,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "module `{}` failed to initialise: {}",
            self.module, self.message
        )
    }
}

impl std::error::Error for InitError {}

enum Flow {
    Next,
    Break,
    Return(i32),
}

/// Why a run stops early. The error is boxed so `Res<Flow>` and `Res<bool>` fit in two
/// registers: every statement and condition returns one.
enum Stop {
    Exit,
    Error(Box<(Span, String)>),
}

type Res<T> = Result<T, Stop>;

#[cold]
fn error<T>(span: Span, message: impl Into<String>) -> Res<T> {
    Err(Stop::Error(Box::new((span, message.into()))))
}

impl Script {
    /// A fresh per-process runtime for this script (`$var` store, module states).
    pub fn new_runtime(&self) -> Runtime {
        Runtime::new(&self.core)
    }

    /// Runs every loaded module's `init` in load order (before fork).
    pub fn init_modules(&self, rt: &mut Runtime) -> Result<(), InitError> {
        for m in &self.modules {
            if let Some(init) = m.exports.init {
                let mut mi = ModInit {
                    module: m.exports,
                    params: &m.params,
                    core: &self.core,
                    rt,
                };
                init(&mut mi).map_err(|message| InitError {
                    module: m.exports.name,
                    message,
                })?;
            }
        }
        Ok(())
    }

    /// Runs every loaded module's `child_init(rank)` (after fork, in each process).
    pub fn child_init(&self, rt: &mut Runtime, rank: i32) -> Result<(), InitError> {
        for m in &self.modules {
            if let Some(ci) = m.exports.child_init {
                let mut c = ModChildInit {
                    module: m.exports,
                    rt,
                };
                ci(&mut c, rank).map_err(|message| InitError {
                    module: m.exports.name,
                    message,
                })?;
            }
        }
        Ok(())
    }

    /// Hands a reply to every module reply hook in load order (after the core
    /// `reply_route`); the first that consumes it wins.
    pub fn run_reply_hooks(&self, ctx: &mut Ctx<'_>) -> crate::abi::ReplyDisposition {
        for m in &self.modules {
            if let Some(hook) = m.exports.reply_hook {
                if hook(ctx) == crate::abi::ReplyDisposition::Consumed {
                    return crate::abi::ReplyDisposition::Consumed;
                }
            }
        }
        crate::abi::ReplyDisposition::Forward
    }

    /// Runs every module's end-of-request hook (after `request_route`, however it ended).
    pub fn run_post_script(&self, ctx: &mut Ctx<'_>) {
        for hook in &self.post_script_hooks {
            hook(ctx);
        }
    }

    /// Whether any loaded module has a timer hook.
    pub fn has_timers(&self) -> bool {
        self.modules.iter().any(|m| m.exports.timer.is_some())
    }

    /// One timer tick: every module's timer hook (called by the timer process).
    pub fn run_timers(&self, rt: &mut Runtime, host: &mut dyn crate::abi::Host) {
        for m in &self.modules {
            if let Some(hook) = m.exports.timer {
                hook(self, rt, host);
            }
        }
    }

    /// Runs `request_route` (a config without one does nothing: exit).
    pub fn run_request(&self, ctx: &mut Ctx<'_>) -> Outcome {
        ctx.route_kind = RouteKind::Request;
        match self.route_id(RouteKind::Request, None) {
            Some(id) => self.run_route(id, ctx),
            None => Outcome::Exit {
                drop: false,
                ret: 1,
            },
        }
    }

    /// Runs a top-level block (`failure_route[X]` for tm, `reply_route`, ...). `ctx.route_kind`
    /// becomes the block's kind unless it is a `route[X]`.
    pub fn run_route(&self, id: RouteId, ctx: &mut Ctx<'_>) -> Outcome {
        if id.kind != RouteKind::Route {
            ctx.route_kind = id.kind;
        }
        let Some(route) = self.routes[kind_slot(id.kind)].get(id.index as usize) else {
            return Outcome::Error(RunError {
                span: Span::default(),
                message: format!("no {} with id {}", id.kind.keyword(), id.index),
                location: format!("no {} with id {}", id.kind.keyword(), id.index),
            });
        };
        let res = self.exec_block(&route.body, ctx, 0);
        match res {
            Ok(Flow::Return(v)) => Outcome::Exit {
                drop: ctx.drop,
                ret: v,
            },
            Ok(Flow::Next | Flow::Break) => Outcome::Exit {
                drop: ctx.drop,
                ret: 1,
            },
            Err(Stop::Exit) => Outcome::Exit {
                drop: ctx.drop,
                ret: 0,
            },
            Err(Stop::Error(e)) => {
                let (span, message) = *e;
                Outcome::Error(RunError {
                    location: format!("{}: {message}", self.location(span)),
                    span,
                    message,
                })
            }
        }
    }

    /// `file:line:col` of a script position, for run-time logs.
    fn location(&self, span: Span) -> String {
        format!(
            "{}:{}:{}",
            self.sources.name(span.file),
            span.line,
            span.col
        )
    }

    /// Runs a top-level block by kind and name.
    pub fn run_named(
        &self,
        kind: RouteKind,
        name: Option<&str>,
        ctx: &mut Ctx<'_>,
    ) -> Option<Outcome> {
        self.route_id(kind, name).map(|id| self.run_route(id, ctx))
    }

    fn exec_block(&self, body: &[CStmt], ctx: &mut Ctx<'_>, depth: u32) -> Res<Flow> {
        for s in body {
            match self.exec(s, ctx, depth)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn exec(&self, s: &CStmt, ctx: &mut Ctx<'_>, depth: u32) -> Res<Flow> {
        match s {
            CStmt::If {
                cond,
                then_body,
                else_body,
            } => {
                let body = if self.eval_cond(cond, ctx, depth)? {
                    then_body
                } else {
                    else_body
                };
                // Most `if`s have no `else`, and most checks pass: no call for an empty block.
                if body.is_empty() {
                    Ok(Flow::Next)
                } else {
                    self.exec_block(body, ctx, depth)
                }
            }
            CStmt::While { cond, body, span } => {
                let limit = ctx.rt.while_limit;
                let mut n = 0u32;
                while self.eval_cond(cond, ctx, depth)? {
                    // Kamailio checks after a true condition, before the body: the body runs
                    // `limit` times, then the loop ends and the script continues.
                    if limit > 0 && n >= limit {
                        let text = format!(
                            "{}: runaway while: more than {limit} loops (max_while_loops)",
                            self.location(*span)
                        );
                        ctx.log(LogLevel::Err, "core", &text);
                        break;
                    }
                    n += 1;
                    match self.exec_block(body, ctx, depth)? {
                        Flow::Next => {}
                        Flow::Break => break,
                        ret @ Flow::Return(_) => return Ok(ret),
                    }
                }
                Ok(Flow::Next)
            }
            CStmt::Switch { subject, cases } => {
                let v = self.eval(subject, ctx, depth)?;
                let start = cases
                    .iter()
                    .position(|(label, _)| case_matches(label, &v))
                    .or_else(|| cases.iter().position(|(l, _)| *l == CaseLabel::Default));
                if let Some(start) = start {
                    for (_, body) in &cases[start..] {
                        match self.exec_block(body, ctx, depth)? {
                            Flow::Next => {}
                            Flow::Break => break,
                            ret @ Flow::Return(_) => return Ok(ret),
                        }
                    }
                }
                Ok(Flow::Next)
            }
            CStmt::Break => Ok(Flow::Break),
            CStmt::Return(v) => {
                let v = match v {
                    Some(e) => self.eval(e, ctx, depth)?.to_int() as i32,
                    None => 1,
                };
                Ok(Flow::Return(v))
            }
            CStmt::Exit => Err(Stop::Exit),
            CStmt::Drop => {
                ctx.drop = true;
                Err(Stop::Exit)
            }
            CStmt::Assign {
                target,
                value,
                span,
            } => {
                let v = self.eval(value, ctx, depth)?;
                match ctx.pv_set(target, v) {
                    Ok(()) => Ok(Flow::Next),
                    Err(e) => error(*span, e),
                }
            }
            CStmt::Expr(e) => {
                // A call's or route's value is not needed: no Value is built.
                match e {
                    CExpr::Call { f, args, .. } => {
                        Self::call(f, args, ctx)?;
                    }
                    CExpr::RouteCall { index, span } => {
                        self.route_call(*index, *span, ctx, depth)?;
                    }
                    other => {
                        self.eval(other, ctx, depth)?;
                    }
                }
                Ok(Flow::Next)
            }
            CStmt::Block(b) => self.exec_block(b, ctx, depth),
        }
    }

    /// A function call: its return code, also kept as `$rc`; 0 stops the script.
    fn call(
        f: &crate::abi::FunctionExport,
        args: &[crate::abi::Arg],
        ctx: &mut Ctx<'_>,
    ) -> Res<i32> {
        let rc = (f.handler)(ctx, args);
        ctx.rc = rc;
        if rc == 0 {
            return Err(Stop::Exit);
        }
        Ok(rc)
    }

    /// `route(X)`: X's return value (1 without `return`), also kept as `$rc`; `return 0`
    /// stops the whole script [E20].
    fn route_call(&self, index: u32, span: Span, ctx: &mut Ctx<'_>, depth: u32) -> Res<i32> {
        // `depth` 0 is the top-level block, Kamailio's recursion level 1.
        let route = &self.routes[kind_slot(RouteKind::Route)][index as usize];
        if depth + 1 >= ctx.rt.route_depth_limit {
            let text = format!(
                "{}: route `{}` not run: too many recursive routing table lookups (more than \
                 {} levels)",
                self.location(span),
                route.name.as_deref().unwrap_or("?"),
                ctx.rt.route_depth_limit
            );
            ctx.log(LogLevel::Err, "core", &text);
            ctx.rc = -1;
            return Ok(-1);
        }
        let rc = match self.exec_block(&route.body, ctx, depth + 1)? {
            Flow::Return(0) => {
                ctx.rc = 0;
                return Err(Stop::Exit);
            }
            Flow::Return(v) => v,
            Flow::Next | Flow::Break => 1,
        };
        ctx.rc = rc;
        Ok(rc)
    }

    /// `x == myself` (or `!=` when `negate`).
    fn myself(
        &self,
        lhs: &CExpr,
        of: MyselfOf,
        negate: bool,
        ctx: &mut Ctx<'_>,
        depth: u32,
    ) -> Res<bool> {
        let mine = if let CExpr::Keyword(CoreKeyword::Uri) = lhs {
            // `uri == myself`: the R-URI read in place, not copied into a Value.
            ctx.msg.is_request() && ruri_is_myself(ctx)
        } else {
            let v = self.eval(lhs, ctx, depth)?;
            !v.is_null() && is_myself(ctx, &v.to_str(), of)
        };
        Ok(mine != negate)
    }

    /// Whether `e` is true (`eval(e)?.is_true()`), without building a `Value` for the usual
    /// conditions: calls, `route()`, `!`, `&&`, `||` and `myself`.
    fn eval_cond(&self, e: &CExpr, ctx: &mut Ctx<'_>, depth: u32) -> Res<bool> {
        match e {
            CExpr::Call { f, args, .. } => Ok(Self::call(f, args, ctx)? > 0),
            CExpr::RouteCall { index, span } => Ok(self.route_call(*index, *span, ctx, depth)? > 0),
            CExpr::Unary {
                op: UnaryOp::Not,
                expr,
            } => Ok(!self.eval_cond(expr, ctx, depth)?),
            CExpr::Binary {
                op: BinOp::And,
                lhs,
                rhs,
                ..
            } => Ok(self.eval_cond(lhs, ctx, depth)? && self.eval_cond(rhs, ctx, depth)?),
            CExpr::Binary {
                op: BinOp::Or,
                lhs,
                rhs,
                ..
            } => Ok(self.eval_cond(lhs, ctx, depth)? || self.eval_cond(rhs, ctx, depth)?),
            CExpr::Myself { lhs, of, negate } => self.myself(lhs, *of, *negate, ctx, depth),
            other => Ok(self.eval(other, ctx, depth)?.is_true()),
        }
    }

    /// Like `eval`, but constants are borrowed (comparisons with literals do not copy them).
    fn eval_ref<'e>(&self, e: &'e CExpr, ctx: &mut Ctx<'_>, depth: u32) -> Res<Cow<'e, Value>> {
        match e {
            CExpr::Const(v) => Ok(Cow::Borrowed(v)),
            other => self.eval(other, ctx, depth).map(Cow::Owned),
        }
    }

    fn eval(&self, e: &CExpr, ctx: &mut Ctx<'_>, depth: u32) -> Res<Value> {
        Ok(match e {
            CExpr::Const(v) => v.clone(),
            CExpr::Pv(p) => ctx.pv_get(p),
            CExpr::Keyword(k) => keyword_value(*k, ctx),
            CExpr::Call { f, args, .. } => Value::Int(i64::from(Self::call(f, args, ctx)?)),
            CExpr::RouteCall { index, span } => {
                Value::Int(i64::from(self.route_call(*index, *span, ctx, depth)?))
            }
            // The boolean forms have one implementation, in `eval_cond`.
            CExpr::Unary { op, expr } => Value::Int(match op {
                UnaryOp::Not => i64::from(!self.eval_cond(expr, ctx, depth)?),
                UnaryOp::Neg => self.eval(expr, ctx, depth)?.to_int().wrapping_neg(),
                UnaryOp::BitNot => !self.eval(expr, ctx, depth)?.to_int(),
            }),
            CExpr::Binary {
                op: BinOp::And | BinOp::Or,
                ..
            }
            | CExpr::Myself { .. } => Value::Int(i64::from(self.eval_cond(e, ctx, depth)?)),
            CExpr::Binary { op, lhs, rhs, span } => {
                let l = self.eval_ref(lhs, ctx, depth)?;
                let r = self.eval_ref(rhs, ctx, depth)?;
                if *op == BinOp::Match {
                    if l.is_null() {
                        return Ok(Value::Int(0));
                    }
                    let re = match ctx.rt.dynamic_regex(&r.to_str()) {
                        Ok(re) => re,
                        Err(err) => {
                            return error(
                                *span,
                                format!(
                                    "bad regular expression: {}",
                                    crate::compile::regex_error_text(&err)
                                ),
                            );
                        }
                    };
                    return Ok(Value::Int(i64::from(re.is_match(&l.to_str()))));
                }
                binary(*op, &l, &r, *span)?
            }
            CExpr::Match { lhs, re } => {
                let l = self.eval(lhs, ctx, depth)?;
                Value::Int(i64::from(!l.is_null() && re.is_match(&l.to_str())))
            }
            CExpr::MethodEq { rhs, negate } => {
                let m = keyword_value(CoreKeyword::Method, ctx);
                let r = self.eval(rhs, ctx, depth)?;
                let eq = !m.is_null() && m.to_str().eq_ignore_ascii_case(&r.to_str());
                Value::Int(i64::from(eq != *negate))
            }
            CExpr::InNet {
                lhs,
                addr,
                prefix,
                negate,
            } => {
                let v = self.eval(lhs, ctx, depth)?;
                let inside = parse_ip(&v.to_str()).is_some_and(|ip| in_net(ip, *addr, *prefix));
                Value::Int(i64::from(inside != *negate))
            }
            CExpr::Cast { to, expr } => {
                let v = self.eval(expr, ctx, depth)?;
                match to {
                    CastType::Int => Value::Int(v.to_int()),
                    CastType::Str => Value::Str(v.to_str().into_owned()),
                }
            }
            CExpr::Defined(p) => Value::Int(i64::from(!ctx.pv_get(p).is_null())),
            CExpr::Strlen(x) => {
                let v = self.eval(x, ctx, depth)?;
                Value::Int(v.to_str().len() as i64)
            }
            CExpr::Strempty(x) => {
                let v = self.eval(x, ctx, depth)?;
                Value::Int(i64::from(v.to_str().is_empty()))
            }
        })
    }
}

fn case_matches(label: &CaseLabel, v: &Value) -> bool {
    match label {
        CaseLabel::Int(i) => match v {
            Value::Int(n) => n == i,
            // Kamailio converts the string as everywhere else: whole-string decimal or
            // 0x hex, anything else is 0 (`" 12"` matches `case 0`, not `case 12`).
            Value::Str(_) => v.to_int() == *i,
            Value::Null => false,
        },
        CaseLabel::Str(s) => !v.is_null() && v.to_str() == s.as_str(),
        CaseLabel::Default => false,
    }
}

/// `==`: the left operand's type decides (K: rvalue.c `RVE_EQ_OP`); a null left takes the
/// right side's type; an int never equals null.
fn equal(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Null, Value::Null) => true,
        (Value::Null, Value::Int(b)) => *b == 0,
        (Value::Null, Value::Str(s)) => s.is_empty(),
        (Value::Int(_), Value::Null) | (Value::Str(_), Value::Null) => false,
        (Value::Int(a), r) => *a == r.to_int(),
        (Value::Str(a), r) => a.as_str() == r.to_str(),
    }
}

fn binary(op: BinOp, l: &Value, r: &Value, span: Span) -> Res<Value> {
    let b = |x: bool| Ok(Value::Int(i64::from(x)));
    let (a, c) = (l.to_int(), r.to_int());
    match op {
        BinOp::Eq => b(equal(l, r)),
        BinOp::Ne => b(!equal(l, r)),
        BinOp::StrEq => b(l.to_str() == r.to_str()),
        BinOp::StrNe => b(l.to_str() != r.to_str()),
        BinOp::IntEq => b(a == c),
        BinOp::IntNe => b(a != c),
        BinOp::Lt => b(a < c),
        BinOp::Le => b(a <= c),
        BinOp::Gt => b(a > c),
        BinOp::Ge => b(a >= c),
        BinOp::Add => Ok(match (l, r) {
            (Value::Str(s), r) => {
                let mut out = s.clone();
                out.push_str(&r.to_str());
                Value::Str(out)
            }
            (Value::Null, Value::Str(s)) => Value::Str(s.clone()),
            _ => Value::Int(a.wrapping_add(c)),
        }),
        BinOp::Sub => Ok(Value::Int(a.wrapping_sub(c))),
        BinOp::Mul => Ok(Value::Int(a.wrapping_mul(c))),
        BinOp::Div | BinOp::Mod if c == 0 => error(span, "division by zero"),
        BinOp::Div => Ok(Value::Int(a.wrapping_div(c))),
        BinOp::Mod => Ok(Value::Int(a.wrapping_rem(c))),
        BinOp::BitOr => Ok(Value::Int(a | c)),
        BinOp::BitAnd => Ok(Value::Int(a & c)),
        BinOp::BitXor => Ok(Value::Int(a ^ c)),
        BinOp::Shl => Ok(Value::Int(a.wrapping_shl(c as u32))),
        BinOp::Shr => Ok(Value::Int(a.wrapping_shr(c as u32))),
        // Evaluated by the caller (short-circuit, regex cache).
        BinOp::And | BinOp::Or | BinOp::Match => b(false),
    }
}

fn keyword_value(k: CoreKeyword, ctx: &mut Ctx<'_>) -> Value {
    let msg = ctx.msg;
    match k {
        CoreKeyword::Method => {
            if msg.is_request() {
                Value::opt_bytes(msg.method_bytes())
            } else {
                msg.cseq()
                    .map_or(Value::Null, |c| Value::from_bytes(c.method))
            }
        }
        CoreKeyword::Uri => {
            if msg.is_request() {
                Value::Str(ctx.ruri().into_owned())
            } else {
                Value::Null
            }
        }
        CoreKeyword::FromUri => msg
            .from()
            .map_or(Value::Null, |n| Value::from_bytes(n.uri.raw)),
        CoreKeyword::ToUri => msg
            .to()
            .map_or(Value::Null, |n| Value::from_bytes(n.uri.raw)),
        CoreKeyword::SrcIp => Value::Str(ctx.src.addr.ip().to_string()),
        CoreKeyword::SrcPort => Value::Int(i64::from(ctx.src.addr.port())),
        CoreKeyword::DstIp => Value::Str(ctx.src.local.addr.ip().to_string()),
        CoreKeyword::DstPort => Value::Int(i64::from(ctx.src.local.addr.port())),
        CoreKeyword::Proto => Value::str(crate::pvar::proto_name(ctx.src.proto)),
        CoreKeyword::Af => Value::Int(if ctx.src.addr.is_ipv4() { 4 } else { 6 }),
        CoreKeyword::Status => msg
            .status_code()
            .map_or(Value::Null, |c| Value::Str(c.to_string())),
        CoreKeyword::MsgLen => Value::Int(msg.as_bytes().len() as i64),
        CoreKeyword::RetCode => Value::Int(i64::from(ctx.rc)),
        // Rejected by the compiler outside comparisons.
        CoreKeyword::Myself => Value::Null,
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let t = s.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    t.parse().ok()
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The listen addresses and aliases with their IPs parsed, cached in the runtime so
/// `myself` does not parse every address text per request. Rebuilt when the host's list
/// differs from the one it was built from (tests run one runtime with several hosts).
pub(crate) struct LocalAddrCache {
    addrs: Vec<crate::abi::LocalAddr>,
    /// `addrs[i].host` as an IP; `None` for an alias name.
    ips: Vec<Option<IpAddr>>,
}

/// Runs `f` over the host's local addresses with their parsed IPs.
fn with_locals<R>(ctx: &mut Ctx<'_>, f: impl FnOnce(&LocalAddrCache) -> R) -> R {
    let locals = ctx.host.local_addrs();
    let cache = match &mut ctx.rt.local_addrs {
        Some(cache) if cache.addrs.as_slice() == locals => cache,
        slot => slot.insert(LocalAddrCache {
            addrs: locals.to_vec(),
            ips: locals.iter().map(|l| parse_ip(&l.host)).collect(),
        }),
    };
    f(cache)
}

/// Whether `host` (its IP when it is one, else its text) and `port` name a local address:
/// IPs compare as addresses, names case-insensitively; an alias without port matches any.
fn local_matches(cache: &LocalAddrCache, host_ip: Option<IpAddr>, host: &[u8], port: u16) -> bool {
    cache.addrs.iter().zip(&cache.ips).any(|(l, ip)| {
        let host_eq = match (ip, host_ip) {
            (Some(a), Some(b)) => *a == b,
            _ => l.host.as_bytes().eq_ignore_ascii_case(host),
        };
        host_eq && l.port.is_none_or(|p| p == port)
    })
}

/// The IP of a parsed URI host.
fn uri_host_ip(u: &Uri<'_>) -> Option<IpAddr> {
    match u.host {
        Some(sip_msg::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(sip_msg::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        _ => None,
    }
}

/// `uri == myself` for a request: the current R-URI (rewritten or received) checked
/// without copying it.
fn ruri_is_myself(ctx: &mut Ctx<'_>) -> bool {
    let msg = ctx.msg;
    if let Some(u) = ctx.new_ruri.as_ref().or(ctx.orig_ruri.as_ref()) {
        // Rewritten URIs are rare; copied so the cache lookup can borrow `ctx`.
        let rewritten = u.clone();
        return is_myself(ctx, &rewritten, MyselfOf::Uri);
    }
    // The message keeps its decoded R-URI: sanity_check and forwarding ask for it too.
    match msg.request_uri() {
        Ok(u) if !u.host_raw.is_empty() => {
            let port = uri_port(&u);
            let ip = uri_host_ip(&u);
            with_locals(ctx, |c| local_matches(c, ip, u.host_raw, port))
        }
        _ => match std::str::from_utf8(msg.request_uri_bytes().unwrap_or_default()) {
            Ok(t) => is_myself(ctx, t, MyselfOf::Uri),
            Err(_) => false,
        },
    }
}

/// The URI's port; 5061 for sips, 5060 otherwise when absent.
fn uri_port(u: &Uri<'_>) -> u16 {
    u.port.unwrap_or(if u.scheme == sip_msg::Scheme::Sips {
        5061
    } else {
        5060
    })
}

/// Kamailio's `check_self`: the host (and port, 5060 when absent; any port for an alias
/// without one) is one of ours.
fn is_myself(ctx: &mut Ctx<'_>, text: &str, of: MyselfOf) -> bool {
    match of {
        MyselfOf::Ip => match parse_ip(text) {
            Some(ip) => with_locals(ctx, |c| c.ips.contains(&Some(ip))),
            None => false,
        },
        MyselfOf::Uri => {
            let text = text.trim();
            match Uri::parse(text.as_bytes()) {
                Ok(u) if !u.host_raw.is_empty() => {
                    let port = uri_port(&u);
                    let ip = uri_host_ip(&u);
                    with_locals(ctx, |c| local_matches(c, ip, u.host_raw, port))
                }
                // A bare host (`$rd == myself`).
                _ => {
                    let ip = parse_ip(text);
                    with_locals(ctx, |c| local_matches(c, ip, text.as_bytes(), 5060))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_follows_the_left_operand() {
        assert!(equal(&Value::str("10"), &Value::Int(10)));
        assert!(equal(&Value::Int(10), &Value::str("10")));
        assert!(!equal(&Value::Int(0), &Value::Null));
        assert!(equal(&Value::Null, &Value::Null));
        assert!(!equal(&Value::Null, &Value::str("x")));
    }

    /// Runs `if (uri == myself) drop;` over a request to `ruri` with these local addresses
    /// (one runtime for all calls, so the address cache must follow the host's list).
    fn ruri_mine(
        rt: &mut Runtime,
        script: &Script,
        locals: &[(&str, Option<u16>)],
        ruri: &str,
    ) -> bool {
        let mut host = crate::testhost::TestHost::new();
        host.local = locals
            .iter()
            .map(|(h, p)| crate::abi::LocalAddr {
                host: (*h).to_string(),
                port: *p,
                proto: crate::ast::Proto::Udp,
            })
            .collect();
        let text = format!(
            "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let msg = sip_msg::Message::parse(text.into_bytes()).expect("test request parses");
        let src = crate::testhost::TestHost::source("192.0.2.1:5060".parse().expect("addr"));
        let mut ctx = Ctx::new(rt, &mut host, &msg, src, RouteKind::Request);
        match script.run_request(&mut ctx) {
            Outcome::Exit { drop, .. } => drop,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn received_ruri_is_myself_by_ip_alias_and_port() {
        let cfg = crate::load_str("t.cfg", "request_route { if (uri == myself) drop; }", &[])
            .expect("loads");
        let script = crate::compile::compile(&cfg, &[]).expect("compiles");
        let mut rt = script.new_runtime();
        let lab = [
            ("127.0.0.1", Some(5060)),
            ("Proxy.Example.org", None),
            ("::1", Some(5062)),
        ];
        assert!(ruri_mine(&mut rt, &script, &lab, "sip:bob@127.0.0.1:5060"));
        assert!(
            ruri_mine(&mut rt, &script, &lab, "sip:bob@127.0.0.1"),
            "no port is 5060"
        );
        assert!(!ruri_mine(&mut rt, &script, &lab, "sip:bob@127.0.0.1:5080"));
        assert!(
            !ruri_mine(&mut rt, &script, &lab, "sips:bob@127.0.0.1"),
            "sips is 5061"
        );
        assert!(
            ruri_mine(&mut rt, &script, &lab, "sip:bob@proxy.example.ORG:7000"),
            "alias, any port"
        );
        assert!(
            ruri_mine(&mut rt, &script, &lab, "sip:bob@[0:0::1]:5062"),
            "IPv6 by value"
        );
        assert!(!ruri_mine(&mut rt, &script, &lab, "sip:bob@[::1]"));
        assert!(!ruri_mine(&mut rt, &script, &lab, "sip:bob@192.0.2.9"));
        // Same runtime, another host's addresses: the cached list is not reused.
        let other = [("192.0.2.9", Some(5060))];
        assert!(ruri_mine(&mut rt, &script, &other, "sip:bob@192.0.2.9"));
        assert!(!ruri_mine(&mut rt, &script, &other, "sip:bob@127.0.0.1"));
    }

    /// Post-script hooks run once each, in load order; modules without one are skipped.
    #[test]
    fn post_script_hooks_run_in_load_order() {
        use crate::abi::{LogLevel, ModuleExports};
        fn hook_a(ctx: &mut Ctx<'_>) {
            ctx.host.log(LogLevel::Err, "a", "a");
        }
        fn hook_b(ctx: &mut Ctx<'_>) {
            ctx.host.log(LogLevel::Err, "b", "b");
        }
        static A: ModuleExports = ModuleExports {
            name: "a",
            post_script: Some(hook_a),
            ..ModuleExports::EMPTY
        };
        static NONE: ModuleExports = ModuleExports {
            name: "none",
            ..ModuleExports::EMPTY
        };
        static B: ModuleExports = ModuleExports {
            name: "b",
            post_script: Some(hook_b),
            ..ModuleExports::EMPTY
        };
        let text = "loadmodule \"b.so\"\nloadmodule \"none.so\"\nloadmodule \"a.so\"\n\
                    request_route { exit; }";
        let cfg = crate::load_str("t.cfg", text, &[]).expect("loads");
        let script = crate::compile::compile(&cfg, &[&A, &NONE, &B]).expect("compiles");
        let mut rt = script.new_runtime();
        let mut host = crate::testhost::TestHost::new();
        let msg = sip_msg::Message::parse(
            b"OPTIONS sip:x@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
              From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
              Content-Length: 0\r\n\r\n"
                .to_vec(),
        )
        .expect("test request parses");
        let src = crate::testhost::TestHost::source("192.0.2.1:5060".parse().expect("addr"));
        let mut ctx = Ctx::new(&mut rt, &mut host, &msg, src, RouteKind::Request);
        script.run_request(&mut ctx);
        script.run_post_script(&mut ctx);
        assert_eq!(host.log_texts(), ["b", "a"]);
    }

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_net(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_net(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_net(ip("1.2.3.4"), ip("1.2.3.4"), 32));
        assert!(in_net(ip("::1"), ip("::1"), 128));
        assert!(!in_net(ip("::1"), ip("1.2.3.4"), 0));
    }
}
