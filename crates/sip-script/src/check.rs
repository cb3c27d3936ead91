//! Checks that need the whole parsed config: `route(NAME)` targets exist, and (given the list
//! of built-in modules) every `loadmodule` names one siplab has.

use crate::Config;
use crate::ast::{Expr, ExprKind, ModParam, ModParamValue, RouteBlock, RouteKind, Stmt, StmtKind};
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

/// Dispatcher functions that only work with failover storage (`flags` bit 2).
const FAILOVER_FUNCTIONS: [&str; 3] = ["ds_next_dst", "ds_next_domain", "ds_mark_dst"];

/// siplab lint beyond Kamailio (spec §11.6): without `modparam("dispatcher", "flags", 2)`
/// Kamailio stores no failover list, so these calls always return false at run time. One
/// warning per call site, so the user sees every place that silently never fails over.
pub fn lint_dispatcher_failover(routes: &[RouteBlock], modparams: &[ModParam]) -> Vec<Diagnostic> {
    let failover_on = modparams.iter().any(|m| {
        m.module == "dispatcher"
            && m.name == "flags"
            && match &m.value {
                ModParamValue::Int(v) => v & 2 != 0,
                ModParamValue::Str(v) => v.trim().parse::<i64>().is_ok_and(|v| v & 2 != 0),
            }
    });
    let mut warnings = Vec::new();
    if failover_on {
        return warnings;
    }
    let mut visit = |e: &Expr| {
        if let ExprKind::Call(call) = &e.kind
            && FAILOVER_FUNCTIONS.contains(&call.name.as_str())
        {
            warnings.push(Diagnostic::warning(
                e.span,
                format!(
                    "`{}()` needs modparam(\"dispatcher\", \"flags\", 2): without it no failover \
                     list is stored and the call always returns false (as in Kamailio)",
                    call.name
                ),
            ));
        }
    };
    for r in routes {
        walk_stmts(&r.body, &mut visit);
    }
    warnings
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

#[cfg(test)]
mod lint_tests {
    use crate::load_str;

    const CFG: &str = "loadmodule \"dispatcher.so\"\nFLAGS\nfailure_route[F] {\n    if (!ds_next_dst()) exit;\n    ds_mark_dst();\n}\nrequest_route {\n    t_on_failure(\"F\");\n}\n";

    fn warnings(flags_line: &str) -> Vec<String> {
        let text = CFG.replace("FLAGS", flags_line);
        let cfg = load_str("ds.cfg", &text, &[]).expect("loads");
        cfg.warnings.iter().map(|d| d.message.clone()).collect()
    }

    #[test]
    fn failover_calls_without_flags_2_warn_once_per_call_site() {
        let w = warnings("");
        assert_eq!(
            w.iter()
                .filter(|m| m.contains("needs modparam(\"dispatcher\", \"flags\", 2)"))
                .count(),
            2
        );
        assert!(w.iter().any(|m| m.starts_with("`ds_next_dst()`")));
        assert!(w.iter().any(|m| m.starts_with("`ds_mark_dst()`")));
    }

    #[test]
    fn flags_with_bit_2_silences_the_lint() {
        assert!(
            warnings("modparam(\"dispatcher\", \"flags\", 2)")
                .iter()
                .all(|m| !m.contains("dispatcher"))
        );
        assert!(
            warnings("modparam(\"dispatcher\", \"flags\", 3)")
                .iter()
                .all(|m| !m.contains("dispatcher"))
        );
        assert_eq!(warnings("modparam(\"dispatcher\", \"flags\", 1)").len(), 2);
    }
}
