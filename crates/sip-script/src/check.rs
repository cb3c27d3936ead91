//! Checks that need the whole parsed config: `route(NAME)` targets exist, and (given the list
//! of built-in modules) every `loadmodule` names one siplab has.

use crate::Config;
use crate::ast::{Expr, ExprKind, RouteBlock, RouteKind, Stmt, StmtKind};
use crate::diag::Diagnostic;

/// One error per `loadmodule` whose module is not in `known`.
pub fn check_modules(cfg: &Config, known: &[&str]) -> Vec<Diagnostic> {
    cfg.modules
        .iter()
        .filter(|m| !known.contains(&m.name.as_str()))
        .map(|m| {
            Diagnostic::error(
                m.span,
                format!(
                    "module `{}` is not available in siplab (loadmodule \"{}\")",
                    m.name, m.path
                ),
            )
        })
        .collect()
}

/// One error per `route(NAME)` call whose `route[NAME]` block does not exist.
pub fn check_route_calls(routes: &[RouteBlock]) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let defined = |name: &str| {
        routes
            .iter()
            .any(|r| r.kind == RouteKind::Route && r.name.as_deref() == Some(name))
    };
    let mut visit = |e: &Expr| {
        if let ExprKind::RouteCall(name) = &e.kind
            && !defined(name)
        {
            errors.push(Diagnostic::error(
                e.span,
                format!("route `{name}` is not defined (no `route[{name}]` block)"),
            ));
        }
    };
    for r in routes {
        walk_stmts(&r.body, &mut visit);
    }
    errors
}

/// Calls `f` on every expression in `stmts`, outer before inner.
pub fn walk_stmts(stmts: &[Stmt], f: &mut dyn FnMut(&Expr)) {
    for s in stmts {
        match &s.kind {
            StmtKind::If {
                cond,
                then_body,
                else_body,
            } => {
                walk_expr(cond, f);
                walk_stmts(then_body, f);
                if let Some(e) = else_body {
                    walk_stmts(e, f);
                }
            }
            StmtKind::While { cond, body } => {
                walk_expr(cond, f);
                walk_stmts(body, f);
            }
            StmtKind::Switch { subject, cases } => {
                walk_expr(subject, f);
                for c in cases {
                    walk_stmts(&c.body, f);
                }
            }
            StmtKind::Return(Some(e)) | StmtKind::Expr(e) => walk_expr(e, f),
            StmtKind::Assign { value, .. } => walk_expr(value, f),
            StmtKind::Block(b) => walk_stmts(b, f),
            StmtKind::Return(None) | StmtKind::Break | StmtKind::Exit | StmtKind::Drop => {}
        }
    }
}

pub fn walk_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Call(c) => c.args.iter().for_each(|a| walk_expr(a, f)),
        ExprKind::Unary { expr, .. }
        | ExprKind::Cast { expr, .. }
        | ExprKind::Strlen(expr)
        | ExprKind::Strempty(expr) => walk_expr(expr, f),
        ExprKind::Binary { lhs, rhs, .. } => {
            walk_expr(lhs, f);
            walk_expr(rhs, f);
        }
        _ => {}
    }
}
