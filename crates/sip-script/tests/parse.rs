//! Parser, expression and diagnostics tests through the public `load_str` entry point.

use sip_script::*;

fn load(src: &str) -> Config {
    match load_str("t.cfg", src, &[]) {
        Ok(c) => c,
        Err(e) => panic!("load failed:\n{}", e.render()),
    }
}

/// `line:col: message` of the first error.
fn first_err(src: &str) -> String {
    let e = load_str("t.cfg", src, &[]).expect_err("config should not load");
    let d = e.first().expect("an error");
    format!("{}:{}: {}", d.span.line, d.span.col, d.message)
}

fn all_errs(src: &str) -> Vec<String> {
    let e = load_str("t.cfg", src, &[]).expect_err("config should not load");
    e.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{}: {}", d.span.line, d.span.col, d.message))
        .collect()
}

fn body(src: &str) -> Vec<Stmt> {
    let cfg = load(&format!("request_route {{\n{src}\n}}\n"));
    cfg.request_route().expect("request_route").body.clone()
}

/// The expression of `if (<e>) exit;`.
fn cond(e: &str) -> Expr {
    match &body(&format!("if ({e}) exit;"))[0].kind {
        StmtKind::If { cond, .. } => cond.clone(),
        other => panic!("not an if: {other:?}"),
    }
}

/// Compact rendering of an expression tree for precedence tests.
fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Str(s) => format!("{:?}", s.value),
        ExprKind::Null => "null".into(),
        ExprKind::Pv(p) => p.to_string(),
        ExprKind::Ip(a) => a.to_string(),
        ExprKind::Net { addr, prefix } => format!("{addr}/{prefix}"),
        ExprKind::Keyword(k) => format!("{k:?}"),
        ExprKind::Call(c) => format!(
            "{}({})",
            c.name,
            c.args.iter().map(sexpr).collect::<Vec<_>>().join(",")
        ),
        ExprKind::RouteCall(n) => format!("route({n})"),
        ExprKind::Unary { op, expr } => format!("({op:?} {})", sexpr(expr)),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", sexpr(lhs), op.symbol(), sexpr(rhs))
        }
        ExprKind::Cast { to, expr } => format!("({to:?}){}", sexpr(expr)),
        ExprKind::Defined(p) => format!("defined {p}"),
        ExprKind::Strlen(e) => format!("strlen({})", sexpr(e)),
        ExprKind::Strempty(e) => format!("strempty({})", sexpr(e)),
    }
}

// ---------------------------------------------------------------- global section

#[test]
fn core_params_are_typed() {
    let cfg = load(
        "#!KAMAILIO\n\
         debug=3\nlog_stderror=yes\nlog_facility=LOG_LOCAL0\nlog_prefix=\"{$mt $hdr(CSeq)} \"\n\
         fork=yes\nchildren=4\ndisable_tcp=yes\nauto_aliases=no\nport=5070\n\
         listen=udp:127.0.0.1:5090\nlisten=udp:10.0.0.1:5060 advertise 1.2.3.4:5080\n\
         listen=udp:[::1]:5062\nlisten=127.0.0.2\nalias=\"sip.example.com\"\nalias=udp:other.example.com:5060\n\
         mpath=\"/usr/lib/kamailio/modules/\"\nmax_branches=8\ndialect=\"opensips\"\nworker_exit=\"shutdown\"\n\
         memdbg=5\nmemlog=5\ntcp_connection_lifetime=3605\ndns=no\nrev_dns=no\n\
         request_route { exit; }\n",
    );
    let c = &cfg.core;
    assert_eq!(c.debug, 3);
    assert!(c.log_stderror);
    assert_eq!(c.log_facility, "LOG_LOCAL0");
    assert_eq!(c.log_prefix.as_deref(), Some("{$mt $hdr(CSeq)} "));
    assert!(c.fork && c.disable_tcp && !c.auto_aliases);
    assert_eq!(c.children, 4);
    assert_eq!(c.port, Some(5070));
    assert_eq!(c.listen.len(), 4);
    assert_eq!(c.listen[0].proto, Proto::Udp);
    assert_eq!(c.listen[0].host, Host::Ip("127.0.0.1".parse().unwrap()));
    assert_eq!(c.listen[0].port, Some(5090));
    assert_eq!(
        c.listen[1].advertise,
        Some((Host::Ip("1.2.3.4".parse().unwrap()), Some(5080)))
    );
    assert_eq!(c.listen[2].host, Host::Ip("::1".parse().unwrap()));
    assert_eq!(c.listen[3].port, None);
    assert_eq!(c.aliases, vec!["sip.example.com", "other.example.com:5060"]);
    assert_eq!(c.mpath.as_deref(), Some("/usr/lib/kamailio/modules/"));
    assert_eq!(c.max_branches, 8);
    assert_eq!(c.dialect, Dialect::Opensips);
    assert_eq!(c.worker_exit, WorkerExit::Shutdown);
    assert_eq!(cfg.compat, Some(CompatMode::Kamailio));
    assert!(
        cfg.globals
            .iter()
            .any(|g| g.name == "tcp_connection_lifetime")
    );
}

#[test]
fn defaults_and_udp_workers_alias() {
    let cfg = load("request_route { exit; }");
    assert_eq!(cfg.core, CoreParams::default());
    assert_eq!(cfg.core.children, 8);
    let cfg = load("udp_workers=3\nrequest_route { exit; }");
    assert_eq!(cfg.core.children, 3);
}

#[test]
fn unknown_core_param_points_at_name() {
    assert_eq!(
        first_err("debug=2\n    chidren=4\n"),
        "2:5: unknown core parameter `chidren`"
    );
}

#[test]
fn bad_core_values() {
    assert!(first_err("children=\"four\"").contains("bad value for `children`"));
    assert!(first_err("fork=maybe").contains("bad value for `fork`"));
    assert_eq!(
        first_err("listen=udp:127.0.0.1:99999"),
        "1:22: bad listen value: bad port `99999`"
    );
    assert!(first_err("listen=foo:1.2.3.4:5060").contains("unknown protocol `foo`"));
    assert!(first_err("dialect=\"ser\"").contains("bad value for `dialect`"));
}

#[test]
fn cfg_framework_vars() {
    let cfg =
        load("pstn.gw_ip = \"\" desc \"PSTN GW Address\"\nvm.port = 5060\nrequest_route { exit; }");
    assert_eq!(cfg.cfg_vars.len(), 2);
    assert_eq!(cfg.cfg_vars[0].group, "pstn");
    assert_eq!(cfg.cfg_vars[0].name, "gw_ip");
    assert_eq!(cfg.cfg_vars[0].desc.as_deref(), Some("PSTN GW Address"));
    assert_eq!(cfg.cfg_vars[1].value, ParamValue::Int(5060));
}

#[test]
fn loadmodule_forms_and_check() {
    let cfg = load(
        "loadmodule \"tm.so\"\nloadmodule \"sl\"\nloadmodule \"/usr/lib/x86_64-linux-gnu/kamailio/modules/rr.so\"\n\
         loadmodule \"nope.so\"\nrequest_route { exit; }",
    );
    let names: Vec<_> = cfg.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["tm", "sl", "rr", "nope"]);
    let errs = check_modules(&cfg, &["tm", "sl", "rr"]);
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].span.line, errs[0].span.col), (4, 1));
    assert!(errs[0].message.contains("module `nope` is not available"));
    assert!(check_modules(&cfg, &["tm", "sl", "rr", "nope"]).is_empty());
}

#[test]
fn modparams_are_recorded_with_spans() {
    let cfg = load(
        "#!define FRT 5000\n\
         modparam(\"tm\", \"fr_timer\", FRT)\n\
         modparam(\"nathelper|registrar\", \"received_avp\", \"$avp(RECEIVED)\");\n\
         modparam(\"x\", \"neg\", -1)\nmodparam(\"auth_db\", \"calculate_ha1\", yes)\n\
         request_route { exit; }",
    );
    let m = &cfg.modparams;
    assert_eq!(m[0].module, "tm");
    assert_eq!(m[0].value, ModParamValue::Int(5000));
    assert_eq!((m[0].value_span.line, m[0].value_span.col), (2, 28));
    assert_eq!(m[1].module, "nathelper|registrar");
    assert_eq!(m[1].value, ModParamValue::Str("$avp(RECEIVED)".into()));
    assert_eq!(m[2].value, ModParamValue::Int(-1));
    assert_eq!(m[3].value, ModParamValue::Int(1));
    assert!(first_err("modparam(\"tm\", \"x\")").contains("expected `,`"));
}

// ---------------------------------------------------------------- route blocks

#[test]
fn all_route_block_kinds() {
    let cfg = load(
        "route { route(A); route(1); route(\"q s\"); }\n\
         route[A] { return; }\nroute[1] { return; }\nroute[\"q s\"] { return; }\n\
         failure_route[F] { exit; }\nonreply_route[R] { exit; }\nonreply_route { exit; }\n\
         branch_route[B] { exit; }\nonsend_route { exit; }\n\
         event_route[tm:branch-failure:X] { exit; }\nevent_route[dispatcher:dst-down] { exit; }\n",
    );
    assert!(cfg.request_route().is_some());
    for (k, n) in [
        (RouteKind::Route, Some("A")),
        (RouteKind::Route, Some("1")),
        (RouteKind::Route, Some("q s")),
        (RouteKind::Failure, Some("F")),
        (RouteKind::OnReply, Some("R")),
        (RouteKind::Reply, None),
        (RouteKind::Branch, Some("B")),
        (RouteKind::OnSend, None),
        (RouteKind::Event, Some("tm:branch-failure:X")),
        (RouteKind::Event, Some("dispatcher:dst-down")),
    ] {
        assert!(cfg.route(k, n).is_some(), "{k:?} {n:?}");
    }
    let cfg = load("request_route { exit; }\nreply_route { drop; }");
    assert!(cfg.route(RouteKind::Reply, None).is_some());
}

#[test]
fn repeated_unnamed_blocks_are_concatenated_as_in_kamailio() {
    // kamailio 5.6.3 accepts these and runs the blocks one after the other.
    let cfg = load(
        "request_route { $var(a) = 1; }\nroute { $var(b) = 2; }\nrequest_route { exit; }\n\
         onreply_route { $var(c) = 3; }\nreply_route { drop; }",
    );
    let main = cfg.route(RouteKind::Request, None).unwrap();
    assert_eq!(main.body.len(), 3);
    assert_eq!(main.body[2].span.line, 3);
    assert_eq!(cfg.route(RouteKind::Reply, None).unwrap().body.len(), 2);
    let blocks = |k| cfg.routes.iter().filter(|r| r.kind == k).count();
    assert_eq!(
        (blocks(RouteKind::Request), blocks(RouteKind::Reply)),
        (1, 1)
    );
}

#[test]
fn route_block_errors() {
    assert_eq!(
        first_err("request_route { exit; }\nroute[A] { exit; }\n\nroute[A] { exit; }"),
        "4:1: duplicate route name `A` in `route` (first defined at line 2)"
    );
    assert!(
        first_err("request_route { exit; }\nfailure_route[F] { exit; }\nfailure_route[F] { }")
            .starts_with("3:1: duplicate route name `F` in `failure_route`")
    );
    assert_eq!(
        first_err("request_route { exit; }\nfoo_route[X] { exit; }"),
        "2:1: unknown route block keyword `foo_route`"
    );
    assert!(first_err("failure_route { exit; }").contains("needs a name"));
    assert_eq!(
        first_err("request_route {\n  route(NOPE);\n}"),
        "2:3: route `NOPE` is not defined (no `route[NOPE]` block)"
    );
}

// ---------------------------------------------------------------- statements

#[test]
fn if_else_forms() {
    let b = body(
        "if (is_method(\"INVITE\")) t_relay(); else if ($rU == \"x\") { exit; } else drop;\n\
         if (a()) { b(); }\n\
         else\n  if (c()) d();",
    );
    assert_eq!(b.len(), 2);
    let StmtKind::If {
        then_body,
        else_body: Some(e),
        ..
    } = &b[0].kind
    else {
        panic!()
    };
    assert_eq!(then_body.len(), 1);
    let StmtKind::If {
        else_body: Some(e2),
        ..
    } = &e[0].kind
    else {
        panic!()
    };
    assert_eq!(e2[0].kind, StmtKind::Drop);
    let StmtKind::If {
        else_body: Some(e3),
        ..
    } = &b[1].kind
    else {
        panic!()
    };
    assert!(matches!(e3[0].kind, StmtKind::If { .. }));
}

#[test]
fn while_break_and_break_outside() {
    let b = body(
        "$var(i) = 0;\nwhile ($var(i) < 10) { $var(i) = $var(i) + 1; if ($var(i) == 3) break; }",
    );
    assert!(matches!(b[1].kind, StmtKind::While { .. }));
    assert_eq!(
        first_err("request_route {\n  break;\n}"),
        "2:3: `break` outside `while` or `switch`"
    );
}

#[test]
fn switch_cases_fall_through_and_strings() {
    let b = body(
        "switch ($var(rc)) {\n case -1:\n case -3:\n  send_reply(\"404\", \"Not Found\");\n  exit;\n \
         case 2: break;\n default:\n  xlog(\"x\");\n}\n\
         switch ($rm) { case \"OPTIONS\": exit; }",
    );
    let StmtKind::Switch { cases, .. } = &b[0].kind else {
        panic!()
    };
    let labels: Vec<_> = cases.iter().map(|c| c.label.clone()).collect();
    assert_eq!(
        labels,
        vec![
            CaseLabel::Int(-1),
            CaseLabel::Int(-3),
            CaseLabel::Int(2),
            CaseLabel::Default
        ]
    );
    assert!(cases[0].body.is_empty(), "case -1 falls through");
    assert_eq!(cases[1].body.len(), 2);
    assert_eq!(cases[2].body[0].kind, StmtKind::Break);
    let StmtKind::Switch { cases, .. } = &b[1].kind else {
        panic!()
    };
    assert_eq!(cases[0].label, CaseLabel::Str("OPTIONS".into()));
    assert!(
        first_err("request_route { switch ($rm) { case 1: exit; case 1: exit; } }")
            .contains("duplicate case value")
    );
    assert!(
        first_err("request_route { switch ($rm) { exit; } }")
            .contains("expected `case` or `default`")
    );
}

#[test]
fn return_exit_drop() {
    let b = body("return;\nreturn -3;\nreturn $var(x);\nexit;\ndrop;");
    assert_eq!(b[0].kind, StmtKind::Return(None));
    let StmtKind::Return(Some(e)) = &b[1].kind else {
        panic!()
    };
    assert_eq!(e.kind, ExprKind::Int(-3));
    assert!(matches!(
        &b[2].kind,
        StmtKind::Return(Some(Expr {
            kind: ExprKind::Pv(_),
            ..
        }))
    ));
    assert_eq!(b[3].kind, StmtKind::Exit);
    assert_eq!(b[4].kind, StmtKind::Drop);
}

#[test]
fn assignments_and_plus_assign() {
    let b =
        body("$avp(a) = 1;\n$du = $null;\n$ru = \"sip:\" + $rU + \"@\" + $rd;\n$sht(t=>k) = 1;");
    let StmtKind::Assign {
        target,
        value,
        target_span,
    } = &b[0].kind
    else {
        panic!()
    };
    assert_eq!(target.name, "avp");
    assert_eq!(value.kind, ExprKind::Int(1));
    assert_eq!((target_span.line, target_span.col), (2, 1));
    let StmtKind::Assign { value, .. } = &b[1].kind else {
        panic!()
    };
    assert_eq!(value.kind, ExprKind::Null);
    assert_eq!(
        first_err("request_route {\n  $var(a) += 2;\n}"),
        "2:11: syntax error: `+=` is not supported (write `$x = $x + value`)"
    );
}

#[test]
fn calls_with_mixed_args_and_route_calls() {
    let b = body_with_r(
        "xlog(\"L_INFO\", \"$ci $rd:$rp\\n\");\nsanity_check(\"1511\", \"7\");\nsetflag(1 + 2);\nf($var(x), -1);\nif (route(R)) exit;\nroute(R);",
    );
    let StmtKind::Expr(Expr {
        kind: ExprKind::Call(c),
        ..
    }) = &b[0].kind
    else {
        panic!()
    };
    assert_eq!(c.name, "xlog");
    assert_eq!(c.args.len(), 2);
    let StmtKind::Expr(Expr {
        kind: ExprKind::Call(c),
        ..
    }) = &b[2].kind
    else {
        panic!()
    };
    assert_eq!(c.args[0].kind, ExprKind::Int(3), "constant args are folded");
    let StmtKind::Expr(Expr {
        kind: ExprKind::Call(c),
        ..
    }) = &b[3].kind
    else {
        panic!()
    };
    assert!(matches!(c.args[0].kind, ExprKind::Pv(_)));
    assert_eq!(c.args[1].kind, ExprKind::Int(-1));
    let StmtKind::Expr(e) = &b[5].kind else {
        panic!()
    };
    assert_eq!(e.kind, ExprKind::RouteCall("R".into()));
}

// The `route(R)` calls above need a route[R]; add it via a wrapper.
fn body_with_r(src: &str) -> Vec<Stmt> {
    let cfg = load(&format!(
        "request_route {{\n{src}\n}}\nroute[R] {{ return 1; }}\n"
    ));
    cfg.request_route().expect("request_route").body.clone()
}

#[test]
fn route_calls_resolve_when_defined() {
    assert_eq!(body_with_r("route(R);").len(), 1);
}

#[test]
fn missing_semicolon_is_reported_after_previous_token() {
    assert_eq!(
        first_err("request_route {\n  xlog(\"a\")\n  exit;\n}"),
        "2:12: syntax error: missing `;` before `exit`"
    );
}

#[test]
fn one_error_per_statement_without_cascade() {
    let errs = all_errs(
        "request_route {\n  xlog(\"a\")\n  exit;\n  $var(x) += 1;\n  f(;\n  ok();\n}\nroute[Z] { g() }\n",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("2:12:"));
    assert!(errs[1].starts_with("4:11:"));
    assert!(errs[2].starts_with("5:5:"));
    assert!(errs[3].starts_with("8:15:"), "{}", errs[3]);
}

#[test]
fn unbalanced_braces() {
    assert_eq!(
        first_err("request_route {\n  if (a()) {\n    exit;\n}\n"),
        "1:15: unbalanced braces: this `{` is never closed"
    );
    assert_eq!(
        first_err("request_route {\n  exit;\n}\n}\n"),
        "4:1: unbalanced braces: unexpected `}`"
    );
}

#[test]
fn unknown_identifier_in_expression() {
    assert!(
        first_err("request_route { setflag(FLT_ACC); }").contains("unknown identifier `FLT_ACC`")
    );
}

// ---------------------------------------------------------------- expressions

#[test]
fn precedence_follows_cfg_y() {
    assert_eq!(sexpr(&cond("$a || $b && $c")), "($a || ($b && $c))");
    assert_eq!(
        sexpr(&cond("$a == 1 && $b == 2")),
        "(($a == 1) && ($b == 2))"
    );
    assert_eq!(sexpr(&cond("$a + 1 == $b * 2")), "(($a + 1) == ($b * 2))");
    assert_eq!(sexpr(&cond("$a - $b - $c")), "(($a - $b) - $c)");
    assert_eq!(
        sexpr(&cond("$a + $b * $c mod $d")),
        "($a + (($b * $c) mod $d))"
    );
    assert_eq!(sexpr(&cond("$a < $b == $c")), "(($a < $b) == $c)");
    // Kamailio puts bit operators below comparison (C-like).
    assert_eq!(sexpr(&cond("$a | $b == $c")), "($a | ($b == $c))");
    assert_eq!(sexpr(&cond("$a & $b | $c")), "(($a & $b) | $c)");
    assert_eq!(sexpr(&cond("-$a + $b")), "((Neg $a) + $b)");
    assert_eq!(sexpr(&cond("!$a == 1")), "((Not $a) == 1)");
    assert_eq!(
        sexpr(&cond("not $a or $b and $c")),
        "((Not $a) || ($b && $c))"
    );
    assert_eq!(sexpr(&cond("($a || $b) && $c")), "(($a || $b) && $c)");
    assert_eq!(sexpr(&cond("(int)$a + 1")), "((Int)$a + 1)");
    assert_eq!(
        sexpr(&cond("$a eq $b || $c ieq 2")),
        "(($a eq $b) || ($c ieq 2))"
    );
}

#[test]
fn core_keywords_in_conditions() {
    assert_eq!(sexpr(&cond("uri == myself")), "(Uri == Myself)");
    assert_eq!(sexpr(&cond("!uri==myself")), "(Not (Uri == Myself))");
    assert_eq!(sexpr(&cond("src_ip != myself")), "(SrcIp != Myself)");
    assert_eq!(sexpr(&cond("src_ip == 127.0.0.1")), "(SrcIp == 127.0.0.1)");
    assert_eq!(
        sexpr(&cond("src_ip == 10.0.0.0/8")),
        "(SrcIp == 10.0.0.0/8)"
    );
    assert_eq!(sexpr(&cond("dst_ip == ::1")), "(DstIp == ::1)");
    assert_eq!(
        sexpr(&cond("status =~ \"[12][0-9][0-9]\"")),
        "(Status =~ \"[12][0-9][0-9]\")"
    );
    assert_eq!(
        sexpr(&cond("method == \"INVITE\" && msg:len > 100")),
        "((Method == \"INVITE\") && (MsgLen > 100))"
    );
    assert_eq!(
        sexpr(&cond("$rc < 0 || $? == 1")),
        "(($rc < 0) || ($? == 1))"
    );
}

#[test]
fn defined_strlen_strempty_and_casts() {
    assert_eq!(sexpr(&cond("defined $avp(x)")), "defined $avp(x)");
    assert_eq!(sexpr(&cond("strlen($rU) > 3")), "(strlen($rU) > 3)");
    assert_eq!(
        sexpr(&cond("strempty($sel(cfg_get.pstn.gw_ip))")),
        "strempty($sel(cfg_get.pstn.gw_ip))"
    );
    assert_eq!(
        sexpr(&cond("(str)$var(a) == \"1\"")),
        "((Str)$var(a) == \"1\")"
    );
}

#[test]
fn pv_nodes_keep_parts_apart() {
    let e = cond("$(hdr(Via)[1]{s.len}) > 0");
    let ExprKind::Binary { lhs, .. } = &e.kind else {
        panic!()
    };
    let ExprKind::Pv(p) = &lhs.kind else { panic!() };
    assert_eq!(p.name, "hdr");
    assert_eq!(p.inner.as_deref(), Some("Via"));
    assert_eq!(p.index, Some(PvIndex::Int(1)));
    assert_eq!(p.transforms[0].name, "s.len");
    let e = cond("$T_reply_code == 408");
    assert!(
        matches!(&e.kind, ExprKind::Binary { lhs, .. } if matches!(&lhs.kind, ExprKind::Pv(p) if p.name == "T_reply_code"))
    );
}

#[test]
fn constant_folding_follows_left_operand() {
    assert_eq!(
        cond("\"a\" + \"b\" + 1").kind,
        ExprKind::Str(StrLit {
            value: "ab1".into(),
            quote: lexer::Quote::Double
        })
    );
    assert_eq!(cond("1 + 2 * 3").kind, ExprKind::Int(7));
    assert_eq!(cond("\"10\" == 10").kind, ExprKind::Int(1));
    assert_eq!(cond("0x10 | 1").kind, ExprKind::Int(17));
    assert_eq!(cond("!0").kind, ExprKind::Int(1));
}

#[test]
fn constant_type_conflicts_are_errors() {
    assert_eq!(
        first_err("request_route {\n  if (1 + \"2\") exit;\n}"),
        "2:9: bad expression: type mismatch (int `+` string): an int on the left makes `+` an \
         integer operation"
    );
    assert_eq!(
        first_err("request_route {\n  if (10 == \"10\") exit;\n}"),
        "2:10: bad expression: type mismatch (int `==` string): an int on the left makes `==` \
         an integer operation"
    );
    assert_eq!(
        first_err("request_route {\n  if ($var(s) < \"9\") exit;\n}"),
        "2:15: bad expression: type mismatch (run-time value `<` string): `<` takes integers"
    );
    assert_eq!(
        first_err("request_route {\n  if (1 =~ $var(s)) exit;\n}"),
        "2:9: bad expression: type mismatch (int `=~` run-time value): `=~` needs a string on \
         the left"
    );
    assert!(first_err("request_route { $var(x) = \"a\" - 1; }").contains("type mismatch"));
    assert!(first_err("request_route { $var(x) = -\"a\"; }").contains("type mismatch"));
    assert_eq!(
        first_err("request_route { if (!\"abc\") exit; }"),
        "1:21: bad expression: type mismatch (`!` string): `!` takes an integer"
    );
    assert!(first_err("request_route { $var(x) = 1 / 0; }").contains("division by zero"));
    // Run-time operands are not checked at load.
    load("request_route { if ($var(a) + \"2\") exit; if (1 + $var(b)) exit; }");
}

/// Each loads in Kamailio 5.6.3 (`kamailio -c`), so it loads here too; the rejected
/// counterparts are the `type_mismatch_*` files of the broken corpus.
#[test]
fn constant_operands_kamailio_accepts_load() {
    for e in [
        r#""a" =~ 1"#,
        r#"$var(s) =~ 1"#,
        r#""a" =~ $var(s)"#,
        r#""a" == 1"#,
        r#""a" != 1"#,
        r#""a" + 1"#,
        r#""a" eq 1"#,
        r#""a" eq "b""#,
        r#"$var(s) eq 1"#,
        r#"$var(s) ne "a""#,
        r#"1 ieq 1"#,
        r#"$var(s) ine $var(t)"#,
        r#"(int)"a" < 2"#,
        r#"1 < $var(s)"#,
        r#"$var(s) + "a" < 1"#,
        r#"!1"#,
        r#"!$var(s)"#,
    ] {
        let src = format!("request_route {{ if ({e}) exit; }}");
        if let Err(err) = load_str("t.cfg", &src, &[]) {
            panic!("`{e}` must load:\n{}", err.render());
        }
    }
}

// ---------------------------------------------------------------- diagnostics rendering

#[test]
fn rendered_error_has_file_line_col_and_caret() {
    let e = load_str("etc/broken.cfg", "debug=2\n    chidren=4\n", &[]).unwrap_err();
    assert_eq!(
        e.render(),
        "etc/broken.cfg:2:5: unknown core parameter `chidren`\n    chidren=4\n    ^\n"
    );
}

#[test]
fn errors_in_included_files_name_that_file() {
    let loader = MemLoader::new()
        .with_file("/k/main.cfg", "debug=2\ninclude_file \"routes.cfg\"\n")
        .with_file("/k/routes.cfg", "request_route {\n\texit\n}\n");
    let e = sip_script::load(std::path::Path::new("/k/main.cfg"), &[], &loader).unwrap_err();
    let d = e.first().unwrap();
    assert_eq!(e.sources.name(d.span.file), "/k/routes.cfg");
    assert_eq!((d.span.line, d.span.col), (2, 6));
    assert!(
        e.render()
            .starts_with("/k/routes.cfg:2:6: syntax error: missing `;`")
    );
}

#[test]
fn single_quoted_crlf_is_a_warning_not_an_error() {
    let cfg = load("request_route { t_add_cancel_reason('Reason: SIP;cause=200\\r\\n'); }");
    assert_eq!(cfg.warnings.len(), 1);
    assert_eq!(cfg.warnings[0].severity, Severity::Warning);
    assert!(
        cfg.render(&cfg.warnings)
            .starts_with("t.cfg:1:37: warning: single-quoted string")
    );
}

#[test]
fn defines_from_command_line() {
    let defs = vec![
        ("WITH_X".to_string(), None),
        ("N".to_string(), Some("7".to_string())),
    ];
    let cfg = load_str(
        "t.cfg",
        "#!ifdef WITH_X\nchildren=N\n#!endif\nrequest_route { exit; }",
        &defs,
    )
    .unwrap();
    assert_eq!(cfg.core.children, 7);
}
