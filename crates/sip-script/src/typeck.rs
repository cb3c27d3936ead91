//! Load-time typing and constant folding of expressions, following Kamailio's rvalue rules:
//! the left operand decides `==` and `+`, and a constant type conflict (`1 + "2"`,
//! `10 == "10"`, `"a" < 1`, `!"abc"`, `1 =~ "a"`, `5 ne 6`) is a load error.

use crate::ast::{BinOp, CastType, Expr, ExprKind, StrLit, UnaryOp};
use crate::diag::Diagnostic;
use crate::lexer::Quote;
use crate::span::Span;

/// The type of an expression as far as it is known before run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValType {
    Int,
    Str,
    /// Decided at run time (PVs, keywords, `$null`).
    Unknown,
}

pub fn static_type(e: &Expr) -> ValType {
    match &e.kind {
        ExprKind::Int(_) => ValType::Int,
        ExprKind::Str(_) => ValType::Str,
        ExprKind::Null
        | ExprKind::Pv(_)
        | ExprKind::Ip(_)
        | ExprKind::Net { .. }
        | ExprKind::Keyword(_) => ValType::Unknown,
        ExprKind::Call(_)
        | ExprKind::RouteCall(_)
        | ExprKind::Unary { .. }
        | ExprKind::Defined(_)
        | ExprKind::Strlen(_)
        | ExprKind::Strempty(_) => ValType::Int,
        ExprKind::Cast { to, .. } => match to {
            CastType::Int => ValType::Int,
            CastType::Str => ValType::Str,
        },
        ExprKind::Binary { op, lhs, .. } => match op {
            BinOp::Add => static_type(lhs),
            _ => ValType::Int,
        },
    }
}

fn mismatch(span: Span, op: BinOp, lt: ValType, rt: ValType) -> Diagnostic {
    let name = |t| match t {
        ValType::Int => "int",
        ValType::Str => "string",
        ValType::Unknown => "run-time value",
    };
    let sym = op.symbol();
    let why = match op {
        BinOp::Add | BinOp::Eq | BinOp::Ne => {
            format!("an int on the left makes `{sym}` an integer operation")
        }
        BinOp::Match | BinOp::StrEq | BinOp::StrNe => {
            format!("`{sym}` needs a string on the left")
        }
        _ => format!("`{sym}` takes integers"),
    };
    Diagnostic::error(
        span,
        format!(
            "bad expression: type mismatch ({} `{sym}` {}): {why}",
            name(lt),
            name(rt)
        ),
    )
}

/// Checks operand types and folds constants. `op_span` is where errors point.
pub fn binary(op: BinOp, lhs: Expr, rhs: Expr, op_span: Span) -> Result<Expr, Diagnostic> {
    let (lt, rt) = (static_type(&lhs), static_type(&rhs));
    use ValType::*;
    // Kamailio 5.6.3's rules (rvalue.c `rve_check_type`, each checked with `kamailio -c`):
    // int operators take no string; `+ == !=` follow their left operand, so only int-then-
    // string conflicts; `=~ eq ne` need a string (or run-time) left operand and take any right
    // one (`"a" =~ 1` loads, `1 =~ "a"` and `5 ne 6` do not).
    let conflict = match op {
        BinOp::Add | BinOp::Eq | BinOp::Ne => lt == Int && rt == Str,
        BinOp::Sub
        | BinOp::Mul
        | BinOp::Div
        | BinOp::Mod
        | BinOp::BitOr
        | BinOp::BitAnd
        | BinOp::BitXor
        | BinOp::Shl
        | BinOp::Shr
        | BinOp::Lt
        | BinOp::Le
        | BinOp::Gt
        | BinOp::Ge
        | BinOp::And
        | BinOp::Or
        | BinOp::IntEq
        | BinOp::IntNe => lt == Str || rt == Str,
        BinOp::Match | BinOp::StrEq | BinOp::StrNe => lt == Int,
    };
    if conflict {
        return Err(mismatch(op_span, op, lt, rt));
    }
    let span = lhs.span.to(rhs.span);
    let folded = fold_binary(op, &lhs.kind, &rhs.kind, op_span)?;
    Ok(Expr {
        kind: folded.unwrap_or(ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }),
        span,
    })
}

fn fold_binary(
    op: BinOp,
    l: &ExprKind,
    r: &ExprKind,
    op_span: Span,
) -> Result<Option<ExprKind>, Diagnostic> {
    let int = |v: i64| Some(ExprKind::Int(v));
    let b = |v: bool| Some(ExprKind::Int(v as i64));
    Ok(match (l, r) {
        (ExprKind::Int(a), ExprKind::Int(c)) => {
            let (a, c) = (*a, *c);
            match op {
                BinOp::Add => int(a.wrapping_add(c)),
                BinOp::Sub => int(a.wrapping_sub(c)),
                BinOp::Mul => int(a.wrapping_mul(c)),
                BinOp::Div | BinOp::Mod if c == 0 => {
                    return Err(Diagnostic::error(
                        op_span,
                        "bad expression: division by zero",
                    ));
                }
                BinOp::Div => int(a.wrapping_div(c)),
                BinOp::Mod => int(a.wrapping_rem(c)),
                BinOp::BitOr => int(a | c),
                BinOp::BitAnd => int(a & c),
                BinOp::BitXor => int(a ^ c),
                BinOp::Shl => int(a.wrapping_shl(c as u32)),
                BinOp::Shr => int(a.wrapping_shr(c as u32)),
                BinOp::Eq | BinOp::IntEq => b(a == c),
                BinOp::Ne | BinOp::IntNe => b(a != c),
                BinOp::Lt => b(a < c),
                BinOp::Le => b(a <= c),
                BinOp::Gt => b(a > c),
                BinOp::Ge => b(a >= c),
                BinOp::And => b(a > 0 && c > 0),
                BinOp::Or => b(a > 0 || c > 0),
                BinOp::StrEq | BinOp::StrNe | BinOp::Match => None,
            }
        }
        (ExprKind::Str(a), ExprKind::Str(c)) => match op {
            BinOp::Add => Some(ExprKind::Str(StrLit {
                value: format!("{}{}", a.value, c.value),
                quote: Quote::Double,
            })),
            BinOp::Eq | BinOp::StrEq => b(a.value == c.value),
            BinOp::Ne | BinOp::StrNe => b(a.value != c.value),
            _ => None,
        },
        (ExprKind::Str(a), ExprKind::Int(c)) => match op {
            BinOp::Add => Some(ExprKind::Str(StrLit {
                value: format!("{}{c}", a.value),
                quote: Quote::Double,
            })),
            BinOp::Eq => b(a.value == c.to_string()),
            BinOp::Ne => b(a.value != c.to_string()),
            _ => None,
        },
        _ => None,
    })
}

pub fn unary(op: UnaryOp, expr: Expr, op_span: Span) -> Result<Expr, Diagnostic> {
    let t = static_type(&expr);
    // `!`, `-` and `~` all take an int: Kamailio rejects `!"abc"` at load.
    if t == ValType::Str {
        let sym = match op {
            UnaryOp::Neg => "-",
            UnaryOp::BitNot => "~",
            UnaryOp::Not => "!",
        };
        return Err(Diagnostic::error(
            op_span,
            format!("bad expression: type mismatch (`{sym}` string): `{sym}` takes an integer"),
        ));
    }
    let span = op_span.to(expr.span);
    let kind = match (op, &expr.kind) {
        (UnaryOp::Neg, ExprKind::Int(v)) => ExprKind::Int(v.wrapping_neg()),
        (UnaryOp::BitNot, ExprKind::Int(v)) => ExprKind::Int(!v),
        (UnaryOp::Not, ExprKind::Int(v)) => ExprKind::Int((*v <= 0) as i64),
        _ => ExprKind::Unary {
            op,
            expr: Box::new(expr),
        },
    };
    Ok(Expr { kind, span })
}
