//! The interpreter through the test host: every rule of spec §8.5–§8.7 and the observations
//! [E20] and [E23], run over a parsed INVITE with the test module table.

mod common;

use std::sync::Arc;

use common::*;
use sip_script::testhost::TestHost;
use sip_script::{Ctx, LogLevel, Outcome, RouteKind, TmApi, load_str};

fn notes(text: &str) -> Vec<String> {
    let (r, host) = run(text);
    assert!(
        matches!(r.outcome, Outcome::Exit { .. }),
        "run failed: {:?}",
        r.outcome
    );
    logs(&host)
}

fn one(expr_text: &str) -> String {
    let n = notes(&format!("request_route {{ note({expr_text}); }}"));
    assert_eq!(n.len(), 1, "{n:?}");
    n[0].clone()
}

/// Evaluates a condition through `if` and reports which branch ran.
fn cond(c: &str) -> bool {
    let n = notes(&format!(
        "request_route {{ if ({c}) note(\"T\"); else note(\"F\"); }}"
    ));
    n == ["T"]
}

// ---- §8.5 statements -------------------------------------------------------------------------

#[test]
fn if_else_chains_with_single_statements() {
    let n = notes(
        r#"request_route {
            $var(x) = 2;
            if ($var(x) == 1) note("one");
            else if ($var(x) == 2) note("two");
            else note("other");
            if ($var(x) == 3) { note("no"); } else { note("else"); }
        }"#,
    );
    assert_eq!(n, ["two", "else"]);
}

#[test]
fn two_request_route_blocks_both_run_in_file_order() {
    // kamailio 5.6.3 with two `request_route` blocks logs both blocks' xlog, first one first.
    let n = notes("request_route { note(\"A\"); }\nrequest_route { note(\"B\"); }");
    assert_eq!(n, ["A", "B"]);
    let n = notes("request_route { note(\"A\"); exit; }\nroute { note(\"B\"); }");
    assert_eq!(n, ["A"]);
}

#[test]
fn while_with_break_e23() {
    let n = notes(
        r#"request_route {
            $var(i) = 0;
            while ($var(i) < 10) { $var(i) = $var(i) + 1; if ($var(i) == 3) break; }
            note("while-break i=$var(i)");
        }"#,
    );
    assert_eq!(n, ["while-break i=3"]);
}

#[test]
fn runaway_while_logs_an_error_and_the_script_goes_on() {
    // kamailio 5.6.3, default max_while_loops=100: "runaway while (8, 35): more then 100
    // loops" at ERROR, the body ran 100 times, and the statements after the loop run.
    let (r, host) = run(
        "request_route {\n  while (1) { $var(n) = $var(n) + 1; }\n  note(\"after n=$var(n)\");\n}",
    );
    assert!(matches!(r.outcome, Outcome::Exit { .. }), "{:?}", r.outcome);
    let err: Vec<_> = host
        .logs
        .iter()
        .filter(|l| l.level == LogLevel::Err)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        err,
        ["test.cfg:2:3: runaway while: more than 100 loops (max_while_loops)"]
    );
    assert_eq!(logs(&host).last().unwrap(), "after n=100");
}

#[test]
fn max_while_loops_sets_the_limit_per_loop_and_zero_means_none() {
    let n = notes(
        "max_while_loops=5\nrequest_route {\n  while ($var(i) < 10) { $var(i) = $var(i) + 1; }\n  \
         while ($var(j) < 3) { $var(j) = $var(j) + 1; }\n  note(\"i=$var(i) j=$var(j)\");\n}",
    );
    assert_eq!(
        n,
        [
            "test.cfg:3:3: runaway while: more than 5 loops (max_while_loops)",
            "i=5 j=3"
        ]
    );
    let n = notes(
        "max_while_loops=0\nrequest_route {\n  while ($var(i) < 1000) { $var(i) = $var(i) + 1; }\n  \
         note(\"i=$var(i)\");\n}",
    );
    assert_eq!(n, ["i=1000"]);
}

#[test]
fn switch_falls_through_without_break_e23() {
    let n = notes(
        r#"request_route {
            $var(x) = 3;
            switch ($var(x)) {
                case 1: note("case 1"); break;
                case 3: note("case 3");
                case 4: note("case 4"); break;
                case 5: note("case 5");
                default: note("default");
            }
        }"#,
    );
    assert_eq!(n, ["case 3", "case 4"]);
}

#[test]
fn switch_string_case_and_default() {
    let n = notes(
        r#"request_route {
            switch ($rm) { case "OPTIONS": note("options"); break; case "INVITE": note("invite"); break; }
            switch ($rU) { case "alice": note("alice"); break; default: note("default"); }
        }"#,
    );
    assert_eq!(n, ["invite", "default"]);
}

/// Int cases against a string value convert it as Kamailio 5.6.3 does (checked on the
/// server): `" 12"` and `"abc"` are 0, `"0x0C"` and `"+12"` are 12.
#[test]
fn switch_int_cases_convert_strings_strictly() {
    let n = notes(
        r#"request_route {
            $var(i) = 0;
            while ($var(i) < 4) {
                if ($var(i) == 0) $var(s) = " 12";
                if ($var(i) == 1) $var(s) = "abc";
                if ($var(i) == 2) $var(s) = "0x0C";
                if ($var(i) == 3) $var(s) = "+12";
                switch ($var(s)) {
                    case 0: note("zero"); break;
                    case 12: note("twelve"); break;
                    default: note("default");
                }
                $var(i) = $var(i) + 1;
            }
        }"#,
    );
    assert_eq!(n, ["zero", "zero", "twelve", "twelve"]);
}

#[test]
fn exit_and_drop_stop_the_script() {
    let (r, host) = run(r#"request_route { note("a"); exit; note("b"); }"#);
    assert_eq!(
        r.outcome,
        Outcome::Exit {
            drop: false,
            ret: 0
        }
    );
    assert_eq!(logs(&host), ["a"]);
    let (r, host) = run(r#"route[D] { drop; } request_route { route(D); note("b"); }"#);
    assert!(r.outcome.is_drop());
    assert!(logs(&host).is_empty());
}

#[test]
fn return_without_value_is_one() {
    let n = notes(
        r#"route[R] { return; }
        request_route { route(R); note("rc=$rc"); if (route(R)) note("true"); }"#,
    );
    assert_eq!(n, ["rc=1", "true"]);
}

#[test]
fn avp_stack_and_delete_e20() {
    let n = notes(
        r#"request_route {
            $avp(a) = 1; $avp(a) = 2;
            note("$avp(a) $(avp(a)[1]) $(avp(a)[-1]) $(avp(a)[*])");
            $avp(a) = $null;
            note("$avp(a)");
            $(avp(a)[*]) = $null;
            note("$avp(a)");
        }"#,
    );
    // Kamailio 5.6.3 joins `[*]` with ", ".
    assert_eq!(n, ["2 1 1 2, 1", "1", "<null>"]);
}

#[test]
fn du_reset_with_null() {
    let (r, _) = run(r#"request_route { $du = "sip:127.0.0.1:5097"; }"#);
    assert_eq!(r.du.as_deref(), Some("sip:127.0.0.1:5097"));
    let (r, _) = run(r#"request_route { $du = "sip:127.0.0.1:5097"; $du = $null; }"#);
    assert_eq!(r.du, None);
    assert_eq!(one("\"$du\""), "<null>");
}

#[test]
fn ruri_writes_rewrite_parts() {
    let (r, _) = run(r#"request_route { $rU = "carol"; $rd = "10.0.0.1"; $rp = 5080; }"#);
    assert_eq!(r.ruri, "sip:carol@10.0.0.1:5080");
    assert!(
        String::from_utf8_lossy(&r.printed).starts_with("INVITE sip:bob@example.com"),
        "R-URI writes stay in the Ctx until a sending function applies them"
    );
    let (r, _) = run(
        r#"request_route { $ru = "sip:dave@h.example;transport=udp"; $rp = 5070; $rU = $null; }"#,
    );
    assert_eq!(r.ruri, "sip:h.example:5070;transport=udp");
    let (r, _) = run(r#"request_route { $rU = "x"; forward(); }"#);
    assert_eq!(r.ruri, "sip:x@example.com");
    assert!(String::from_utf8_lossy(&r.printed).starts_with("INVITE sip:x@example.com"));
}

#[test]
fn forward_sends_through_the_host() {
    let (_, host) = run(r#"request_route { $rU = "x"; append_hf("X-A: $rU\r\n"); forward(); }"#);
    assert_eq!(host.sent.len(), 1);
    let text = String::from_utf8_lossy(&host.sent[0].bytes).into_owned();
    assert!(
        text.starts_with("INVITE sip:x@example.com SIP/2.0\r\n"),
        "{text}"
    );
    assert!(text.contains("X-A: x\r\n"), "{text}");
    assert_eq!(host.sent[0].dst.to_string(), "127.0.0.1:5070");
}

#[test]
fn plus_assign_is_rejected_e23() {
    let e = load_str("t.cfg", "request_route { $var(a) += 2; }", &[]).unwrap_err();
    assert!(e.first().is_some());
}

// ---- §8.6 expressions -------------------------------------------------------------------------

#[test]
fn string_left_compares_as_string_e23() {
    assert!(cond(r#""10" == 10"#));
    assert!(cond(r#"$var(s) == 0"#), "unset var is int 0");
    assert!(
        !cond(r#"$var(unset) == $null"#),
        "unset $var is not null [E23]"
    );
    assert!(cond(r#"$rU == "bob""#));
    assert!(
        cond(r#"$cs == "314159""#),
        "int left converts the right side"
    );
    assert!(cond(r#"$rm != "BYE""#));
}

#[test]
fn null_left_takes_right_type() {
    let n = notes(
        r#"request_route { $ru = "sip:example.com"; if ($rU == $null) note("nouser"); if ($rU == "") note("empty"); }"#,
    );
    assert_eq!(n, ["nouser", "empty"]);
}

#[test]
fn plus_concatenates_on_string_left_e23() {
    assert_eq!(one(r#""a" + "b" + 1"#), "ab1");
    let n = notes(
        r#"request_route { $var(s) = "a"; $var(t) = $var(s) + 1; $var(n) = 1 + 2; $var(m) = $var(n) + "3"; note("$var(t) $var(n) $var(m)"); }"#,
    );
    assert_eq!(n, ["a1 3 6"]);
}

#[test]
fn constant_type_conflicts_are_load_errors_e23() {
    for bad in [r#"$var(a) = 1 + "2";"#, r#"if (10 == "10") exit;"#] {
        let e = load_str("t.cfg", &format!("request_route {{ {bad} }}"), &[]).unwrap_err();
        assert!(
            e.first().unwrap().message.contains("type mismatch"),
            "{}",
            e.render()
        );
    }
}

#[test]
fn regex_match_constant_and_dynamic() {
    assert!(cond(r#"$ua =~ "^TestPhone/[0-9]+\.[0-9]$""#));
    assert!(!cond(r#"$ua =~ "friendly|scanner""#));
    assert!(cond(r#"$rm =~ "^INV""#));
    let n = notes(
        r#"request_route { $var(re) = "^INV"; if ($rm =~ $var(re)) note("dyn"); if (!($rm =~ "^BYE")) note("neg"); }"#,
    );
    assert_eq!(n, ["dyn", "neg"]);
    assert!(!cond(r#"$hdr(X-None) =~ ".*""#), "null never matches");
}

/// Kamailio 5.6.3 compiles `=~` patterns with REG_ICASE, constant and dynamic alike.
#[test]
fn regex_match_ignores_case() {
    assert!(cond(r#"$rm =~ "^inv""#));
    assert!(cond(r#"$rm =~ "[[:lower:]]""#));
    let n = notes(r#"request_route { $var(re) = "^invite$"; if ($rm =~ $var(re)) note("dyn"); }"#);
    assert_eq!(n, ["dyn"]);
}

/// Measured with Kamailio 5.6.3: a string converts to an int only when it is all number
/// (decimal or `0x` hex); otherwise it counts as 0.
#[test]
fn string_to_int_in_expressions_is_strict() {
    let n = notes(
        r#"request_route {
            $var(a) = "12abc"; $var(r) = $var(a) - 1; note("$var(r)");
            $var(x) = " 12"; $var(r) = 0 + $var(x); note("$var(r)");
            $var(x) = "0x10"; $var(r) = 0 + $var(x); note("$var(r)");
            $var(x) = "12 "; $var(r) = 0 + $var(x); note("$var(r)");
            $var(x) = "-0x10"; $var(r) = 0 + $var(x); note("$var(r)");
            $var(x) = "+5"; $var(r) = 0 + $var(x); note("$var(r)");
            $var(r) = (int)"12abc"; note("$var(r)");
            $var(r) = (int)"0x1F"; note("$var(r)");
            $var(x) = "12abc"; $var(r) = -$var(x); note("$var(r)");
        }"#,
    );
    assert_eq!(n, ["-1", "0", "16", "0", "0", "5", "0", "31", "0"]);
    assert!(!cond(r#"$var(x) > 5"#));
}

/// Kamailio 5.6.3: a transformation that fails (`{s.int}` of a non-number, any of `$null`)
/// prints as nothing, and assigns as `$null` (a `$var` then holds 0).
#[test]
fn failed_transformations_print_empty() {
    let n = notes(
        r#"request_route {
            $var(x) = "12abc";
            note("[$(var(x){s.int})] [$(hdr(Nope){s.len})] [$(hdr(Nope){s.int})] [$hdr(Nope)]");
            $var(x) = "-5"; note("[$(var(x){s.int})]");
            $var(x) = "0x10"; note("[$(var(x){s.int})]");
            $var(r) = $(hdr(Nope){s.len}); note("$var(r)");
        }"#,
    );
    assert_eq!(n, ["[] [] [] [<null>]", "[-5]", "[]", "0"]);
}

#[test]
fn truth_is_int_greater_than_zero() {
    assert!(cond("ret(1)"));
    assert!(cond("ret(7)"));
    assert!(!cond("ret(-1)"));
    assert!(!cond("!ret(1)"));
    assert!(cond("!ret(-2)"));
    assert!(cond("ret(1) && ret(2)"));
    assert!(!cond("ret(1) && ret(-2)"));
    assert!(cond("ret(-1) || ret(2)"));
    assert!(cond("$var(x) == 0 and not ret(-1)"));
}

#[test]
fn function_returning_zero_ends_the_script() {
    let (r, host) = run(r#"request_route { note("a"); if (ret(0)) note("b"); note("c"); }"#);
    assert_eq!(
        r.outcome,
        Outcome::Exit {
            drop: false,
            ret: 0
        }
    );
    assert_eq!(logs(&host), ["a"]);
    assert_eq!(r.rc, 0);
}

#[test]
fn rc_holds_last_function_result() {
    let n = notes(
        r#"request_route { ret(-5); note("$rc $?"); ret(3); $var(r) = $rc; note("$var(r) $retcode"); }"#,
    );
    assert_eq!(n, ["-5 -5", "3 3"]);
}

#[test]
fn route_return_values_e20() {
    let n = notes(
        r#"route[R3] { return -3; }
        route[R5] { return 5; }
        request_route {
            if (route(R3)) note("R3 true"); else note("R3 false rc=$rc");
            if (route(R5)) note("R5 true rc=$rc");
        }"#,
    );
    assert_eq!(n, ["R3 false rc=-3", "R5 true rc=5"]);
}

#[test]
fn return_zero_in_subroute_ends_whole_script_e20() {
    let (r, host) = run(r#"route[R0] { note("in R0"); return 0; }
        request_route { if (route(R0)) note("then"); else note("else"); note("after"); }"#);
    assert_eq!(logs(&host), ["in R0"]);
    assert_eq!(
        r.outcome,
        Outcome::Exit {
            drop: false,
            ret: 0
        }
    );
}

#[test]
fn return_zero_after_reply_stops_the_route_e20() {
    let (_, host) = run(r#"route[R] { sl_send_reply("404", "Nope"); return 0; }
        request_route { route(R); note("not reached"); }"#);
    assert_eq!(host.sent.len(), 1);
    assert!(String::from_utf8_lossy(&host.sent[0].bytes).starts_with("SIP/2.0 404 Nope\r\n"));
    assert!(logs(&host).is_empty());
}

#[test]
fn too_deep_route_call_fails_and_the_caller_goes_on() {
    // kamailio 5.6.3 with this script: "too many recursive routing table lookups (257)
    // giving up!", the innermost route(R) gives $rc -1, every level then finishes: d=255255.
    let (r, host) = run(
        "route[R] {\n  $var(d) = $var(d) + 1;\n  route(R);\n  if ($var(d) == 255) note(\"rc=$rc\");\n  \
         $var(d) = $var(d) + 1000;\n}\nrequest_route { route(R); note(\"d=$var(d)\"); }",
    );
    assert!(matches!(r.outcome, Outcome::Exit { .. }), "{:?}", r.outcome);
    let err: Vec<_> = host
        .logs
        .iter()
        .filter(|l| l.level == LogLevel::Err)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        err,
        [
            "test.cfg:3:3: route `R` not run: too many recursive routing table lookups (more \
          than 256 levels)"
        ]
    );
    let notes: Vec<_> = logs(&host)
        .into_iter()
        .filter(|l| !l.contains("recursive"))
        .collect();
    assert_eq!(notes, ["rc=-1", "d=255255"]);
}

#[test]
fn core_keywords() {
    assert!(!cond("uri == myself"), "example.com is not ours");
    let n = notes(
        r#"request_route {
            $ru = "sip:bob@127.0.0.1";
            if (uri == myself) note("uri mine");
            $rp = 5080;
            if (uri != myself) note("other port");
            if (src_ip == 192.0.2.0/24) note("net");
            if (src_ip == 192.0.2.10) note("ip");
            if (src_ip != myself) note("src not mine");
            if (from_uri == myself) note("from mine");
            if (method == "invite") note("method");
            if (status == $null) note("no status");
            if (src_port == 5060) note("port");
        }"#,
    );
    assert_eq!(
        n,
        [
            "uri mine",
            "other port",
            "net",
            "ip",
            "src not mine",
            "method",
            "no status",
            "port"
        ]
    );
}

#[test]
fn casts_strlen_strempty_defined_and_string_ops() {
    assert_eq!(one(r#""$(ci{s.len})""#), "39");
    assert!(cond(r#"strlen($rU) == 3"#));
    assert!(cond(r#"strempty($hdr(X-None))"#));
    assert!(cond(r#"defined $ua"#));
    assert!(!cond(r#"defined $hdr(X-None)"#));
    assert!(cond(r#"(int)"42" == 42"#));
    assert!(cond(r#"(int)"42abc" == 0"#), "Kamailio 5.6.3: not a number");
    assert!(cond(r#"(str)$cs eq "314159""#));
    assert!(cond(r#"$rU ne "alice""#));
    assert!(cond(r#"$cs ieq 314159"#));
    assert!(
        cond(r#"$hdr(CSeq) ine 314159"#),
        "`314159 INVITE` is no number: 0"
    );
    assert!(cond(r#"7 mod 4 == 3 && (6 | 1) == 7 && (1 << 3) == 8"#));
}

#[test]
fn division_by_zero_at_run_time_is_an_error() {
    let (r, _) = run("request_route { $var(z) = 0; $var(x) = 1 / $var(z); }");
    assert!(matches!(r.outcome, Outcome::Error(ref e) if e.message.contains("division")));
}

// ---- §8.7 pseudo-variables ----------------------------------------------------------------------

#[test]
fn message_pvs_read_the_invite() {
    let n = notes(
        r#"request_route {
            note("$rm|$ru|$rU|$rd|$rp|$rz|$ci|$cs|$si|$sp|$mt");
            note("$fu|$fU|$fd|$ft|$tu|$tU|$td|$tt|$ua|$rs|$rr|$du|$pp");
        }"#,
    );
    assert_eq!(
        n,
        [
            "INVITE|sip:bob@example.com|bob|example.com|5060|sip|a84b4c76e66710@pc33.atlanta.example.com|314159|192.0.2.10|5060|1",
            "sip:alice@atlanta.example.com|alice|atlanta.example.com|1928301774|sip:bob@example.com|bob|example.com|<null>|TestPhone/1.0|<null>|<null>|<null>|4242",
        ]
    );
}

#[test]
fn rp_defaults_to_5060_e18b() {
    assert_eq!(one(r#""$rp""#), "5060");
    // Kamailio 5.6.3: the default follows `;transport=tls`, not the `sips` scheme.
    let n = notes(
        r#"request_route {
            $ru = "sips:e@e.example"; note("$rp");
            $ru = "sips:e@e.example;transport=tls"; note("$rp");
            $ru = "sip:e@e.example;transport=TLS"; note("$rp");
            $ru = "sips:e@e.example:5070"; note("$rp");
        }"#,
    );
    assert_eq!(n, ["5060", "5061", "5061", "5070"]);
}

#[test]
fn header_pvs_e20() {
    assert_eq!(one(r#""$hdr(CSeq)""#), "314159 INVITE");
    assert_eq!(one(r#""$hdr(cseq)|$hdr(X-None)""#), "314159 INVITE|<null>");
    assert_eq!(
        one(r#""$(hdr(Via)[0])""#),
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport"
    );
    assert_eq!(one(r#""$(hdr(l)[-1])""#), "134", "compact form, last");
}

#[test]
fn ua_is_null_when_absent_e20() {
    let s = script(r#"request_route { note("$ua"); }"#);
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(&INVITE.replace("User-Agent: TestPhone/1.0\r\n", ""));
    run_msg(&s, &mut rt, &mut host, &msg);
    assert_eq!(logs(&host), ["<null>"]);
}

#[test]
fn var_persists_across_messages_of_one_process_e20() {
    let s = script(r#"request_route { $var(cnt) = $var(cnt) + 1; note("cnt=$var(cnt)"); }"#);
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(INVITE);
    for _ in 0..3 {
        run_msg(&s, &mut rt, &mut host, &msg);
    }
    assert_eq!(logs(&host), ["cnt=1", "cnt=2", "cnt=3"]);
    // Another process (runtime) starts from 0; $avp does not survive the message.
    let mut rt2 = s.new_runtime();
    run_msg(&s, &mut rt2, &mut host, &msg);
    assert_eq!(logs(&host).last().unwrap(), "cnt=1");
}

#[test]
fn avp_is_per_message() {
    let s = script(r#"request_route { note("$avp(x)"); $avp(x) = 1; }"#);
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(INVITE);
    run_msg(&s, &mut rt, &mut host, &msg);
    run_msg(&s, &mut rt, &mut host, &msg);
    assert_eq!(logs(&host), ["<null>", "<null>"]);
}

#[test]
fn null_prints_as_null_and_var_null_resets_to_zero() {
    assert_eq!(one(r#""$null""#), "<null>");
    let n = notes(r#"request_route { $var(x) = "s"; $var(x) = $null; note("$var(x)"); }"#);
    assert_eq!(n, ["0"]);
}

#[test]
fn t_reply_code_is_zero_without_tm() {
    assert_eq!(one(r#""$T_reply_code""#), "0");
    assert!(!cond("has_tm()"));
}

struct FakeTm;
impl TmApi for FakeTm {
    fn has_transaction(&self, _ctx: &Ctx<'_>) -> bool {
        true
    }
    fn reply(&self, _ctx: &mut Ctx<'_>, _code: u16, _reason: &str) -> i32 {
        1
    }
    fn reply_code(&self, _ctx: &Ctx<'_>) -> i32 {
        487
    }
}

#[test]
fn tm_api_registry_answers_for_transactions() {
    let s = script(r#"request_route { if (has_tm()) note("tm $T_reply_code"); }"#);
    let mut rt = s.new_runtime();
    rt.register_api::<dyn TmApi>(Arc::new(FakeTm));
    let mut host = TestHost::new();
    run_msg(&s, &mut rt, &mut host, &parse(INVITE));
    assert_eq!(logs(&host), ["tm 487"]);
}

#[test]
fn transformations() {
    assert_eq!(
        one(r#""$(rm{s.tolower}) $(rU{s.toupper}) $(hdr(CSeq){s.select,1, })""#),
        "invite BOB INVITE"
    );
    assert_eq!(
        one(r#""$(fu{uri.user})@$(fu{uri.host}) $(cs{s.len}) $(cs{s.int})""#),
        "alice@atlanta.example.com 6 314159"
    );
    let n = notes(
        r#"request_route { $var(i) = 1; note("$(hdr(CSeq)[$var(i)])|$(avp(z)[$var(i)])"); }"#,
    );
    assert_eq!(n, ["<null>|<null>"]);
}

#[test]
fn module_pv_and_module_state_from_params() {
    let n = notes(
        r#"loadmodule "test.so"
        modparam("test", "name", "bob")
        modparam("test", "lvl", 3)
        request_route { greeting(); note("$greet(x)"); }"#,
    );
    assert_eq!(n, ["bob x3", "bob:x"]);
}

#[test]
fn module_init_error_is_reported() {
    let s = script(
        r#"loadmodule "test.so"
        modparam("test", "level", -1)
        request_route { exit; }"#,
    );
    let mut rt = s.new_runtime();
    let e = s.init_modules(&mut rt).unwrap_err();
    assert_eq!(e.module, "test");
    assert!(e.to_string().contains("must not be negative"));
}

#[test]
fn fixup_data_and_route_args_reach_the_handler() {
    let n = notes(
        r#"failure_route[F1] { exit; }
        failure_route[F2] { exit; }
        request_route { if (half(8) == 4) note("half"); arm_failure("F2"); note("$avp(armed)"); }"#,
    );
    assert_eq!(n, ["half", "1"]);
}

#[test]
fn pv_argument_writes_through() {
    let n = notes(
        r#"request_route { $var(x) = 5; unset("$var(x)"); $du = "sip:a"; unset($du); note("$var(x) $du"); }"#,
    );
    assert_eq!(n, ["0 <null>"]);
}

#[test]
fn dynamic_int_argument() {
    let n = notes(
        r#"request_route { $var(c) = -4; ret($var(c)); note("$rc"); ret("$var(c)"); note("$rc"); }"#,
    );
    assert_eq!(n, ["-4", "-4"]);
}

#[test]
fn regex_argument_compiled_at_load() {
    assert!(cond(r#"matches("^a.*e$", "$fU")"#));
    assert!(!cond(r#"matches("^b", "$fU")"#));
}

#[test]
fn run_failure_route_by_id() {
    let s = script(
        r#"failure_route[F] { note("failure $ru"); $ru = "sip:next@h"; }
        request_route { exit; }"#,
    );
    let id = s.route_id(RouteKind::Failure, Some("F")).unwrap();
    assert_eq!(s.route_name(id), Some("F"));
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(INVITE);
    let mut ctx = Ctx::new(&mut rt, &mut host, &msg, source(), RouteKind::Request);
    ctx.orig_ruri = Some("sip:saved@gw".into());
    let out = s.run_route(id, &mut ctx);
    assert_eq!(
        out,
        Outcome::Exit {
            drop: false,
            ret: 1
        }
    );
    assert_eq!(ctx.route_kind, RouteKind::Failure);
    assert_eq!(ctx.ruri(), "sip:next@h");
    ctx.revert_ruri();
    assert_eq!(ctx.ruri(), "sip:saved@gw");
    drop(ctx);
    assert_eq!(logs(&host), ["failure sip:saved@gw"]);
}

// ---- preprocessor observations of [E20] through the runtime -------------------------------------

#[test]
fn define_not_in_quotes_substdef_in_quotes_e20() {
    let n = notes(
        "#!define MYCODE 404\n#!substdef \"!GW!gateway!\"\nrequest_route { note(\"MYCODE\"); ret(MYCODE); note(\"$rc\"); note(\"GW GW\"); }",
    );
    assert_eq!(n, ["MYCODE", "404", "gateway GW"]);
}

#[test]
fn child_init_runs_per_process_after_init() {
    let s = script("request_route { exit; }");
    let mut rt = s.new_runtime();
    s.init_modules(&mut rt).unwrap();
    assert_eq!(rt.state::<TestState>().unwrap().rank, None);
    s.child_init(&mut rt, 3).unwrap();
    assert_eq!(rt.state::<TestState>().unwrap().rank, Some(3));
}

const REPLY: &str = "SIP/2.0 486 Busy Here\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\r\n\
To: Bob <sip:bob@example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";

#[test]
fn reply_pvs_and_status_keyword_in_reply_route() {
    let s = script(
        r#"reply_route {
            note("$rs $rr $rm $mt $tt $ru");
            if (status == "486") note("status eq");
            if (status =~ "^4[0-9][0-9]$") note("status re");
            if ($rs == 486 && $rs >= 400) note("int");
            drop;
        }
        request_route { exit; }"#,
    );
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(REPLY);
    let mut ctx = Ctx::new(&mut rt, &mut host, &msg, source(), RouteKind::Reply);
    let out = s.run_named(RouteKind::Reply, None, &mut ctx).unwrap();
    assert!(out.is_drop(), "drop in reply_route: do not relay");
    drop(ctx);
    assert_eq!(
        logs(&host),
        [
            "486 Busy Here INVITE 2 a6c85cf <null>",
            "status eq",
            "status re",
            "int"
        ]
    );
}

#[test]
fn route_kinds_follow_callers_at_compile_time() {
    // request_only() may run in request_route, so route[R] called from there compiles...
    script("route[R] { request_only(); } request_route { route(R); }");
    // ...but not when failure_route can reach it, even through another route.
    let (line, col, msg) = compile_error(
        "route[R] { request_only(); }\nroute[M] { route(R); }\nfailure_route[F] { route(M); }\nrequest_route { route(R); }",
    );
    assert_eq!((line, col), (1, 12));
    assert!(msg.contains("not allowed in failure_route"), "{msg}");
}

#[test]
fn unknown_function_reports_name_and_arity_e21() {
    let (line, col, msg) = compile_error("request_route {\n  t_relay(\"8\");\n}");
    assert_eq!((line, col), (2, 3));
    assert_eq!(msg, "unknown function t_relay/1");
}

#[test]
fn per_message_module_data_lives_with_the_ctx() {
    let s = script("request_route { exit; }");
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(INVITE);
    let mut ctx = Ctx::new(&mut rt, &mut host, &msg, source(), RouteKind::Request);
    assert_eq!(ctx.msg_data::<u32>(), None);
    *ctx.msg_data_mut::<u32>() += 2;
    *ctx.msg_data_mut::<u32>() += 3;
    ctx.msg_data_mut::<String>().push_str("rr-done");
    assert_eq!(ctx.msg_data::<u32>(), Some(&5));
    assert_eq!(
        ctx.msg_data::<String>().map(String::as_str),
        Some("rr-done")
    );
    drop(ctx);
    let ctx = Ctx::new(&mut rt, &mut host, &msg, source(), RouteKind::Request);
    assert_eq!(ctx.msg_data::<u32>(), None, "a new message starts empty");
}

// ---- module ABI for tm: routes from a handler's context, child contexts ----------------------

#[test]
fn ctx_run_route_needs_the_script_and_child_ctx_shares_runtime_and_host() {
    let s = script(
        r#"failure_route[F] { note("child $ru"); $var(seen) = 1; }
        request_route { exit; }"#,
    );
    let id = s.route_id(RouteKind::Failure, Some("F")).unwrap();
    let mut rt = s.new_runtime();
    let mut host = TestHost::new();
    let msg = parse(INVITE);
    let other = parse(&INVITE.replacen("sip:bob@", "sip:carol@", 1));
    let mut ctx = Ctx::new(&mut rt, &mut host, &msg, source(), RouteKind::Request);
    // Without a script a module cannot run a route: an error outcome, not a panic.
    assert!(matches!(ctx.run_route(id), Outcome::Error(_)));
    ctx.set_script(&s);
    let out = {
        let mut child = ctx.child(&other, source(), RouteKind::Failure);
        child.run_route(id)
    };
    assert_eq!(
        out,
        Outcome::Exit {
            drop: false,
            ret: 1
        }
    );
    // The parent's own state is untouched by the child run.
    assert_eq!(ctx.route_kind, RouteKind::Request);
    drop(ctx);
    assert!(
        logs(&host)
            .iter()
            .any(|l| l.starts_with("child sip:carol@"))
    );
}

#[test]
fn avp_store_iter_lists_names_with_newest_first_values() {
    use sip_script::Value;
    let mut avps = sip_script::AvpStore::new();
    avps.push("a", Value::Int(1));
    avps.push("a", Value::Int(2));
    avps.push("b", Value::Str("x".into()));
    let all: Vec<(String, Vec<Value>)> = avps
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    assert_eq!(
        all,
        [
            ("a".to_string(), vec![Value::Int(2), Value::Int(1)]),
            ("b".to_string(), vec![Value::Str("x".into())])
        ]
    );
}
