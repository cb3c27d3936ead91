//! The modules through the real compiler and interpreter: cfg text in, sends and logs out.

use std::net::SocketAddr;

use sip_modules::all_modules;
use sip_msg::Message;
use sip_script::testhost::TestHost;
use sip_script::{Ctx, Outcome, RouteKind, Script, compile, load_str};

const INVITE: &str = "INVITE sip:bob@10.0.0.20:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5091>\r\n\
Content-Length: 0\r\n\
\r\n";

fn script(text: &str) -> Script {
    let cfg = load_str("test.cfg", text, &[]).unwrap_or_else(|e| panic!("load: {e:?}"));
    compile(&cfg, all_modules()).unwrap_or_else(|e| panic!("compile: {e:?}"))
}

/// Runs `request_route` of `cfg` once over `msg`; returns the outcome and the host.
fn run(cfg: &str, msg: &str) -> (Outcome, TestHost) {
    let s = script(cfg);
    let mut rt = s.new_runtime();
    s.init_modules(&mut rt)
        .unwrap_or_else(|e| panic!("init: {e}"));
    let msg = Message::parse(msg.as_bytes().to_vec()).unwrap_or_else(|e| panic!("parse: {e}"));
    let mut host = TestHost::new();
    let src = TestHost::source(SocketAddr::from(([192, 0, 2, 10], 5091)));
    let outcome = {
        let mut ctx = Ctx::new(&mut rt, &mut host, &msg, src, RouteKind::Request);
        s.run_request(&mut ctx)
    };
    (outcome, host)
}

fn sent_text(host: &TestHost, i: usize) -> String {
    host.sent
        .get(i)
        .map(|s| String::from_utf8_lossy(&s.bytes).into_owned())
        .unwrap_or_default()
}

const STOCK_LIKE: &str = r#"
debug=2
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "rr.so"
loadmodule "ctl.so"
loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "cfgutils.so"
loadmodule "cfg_rpc.so"
modparam("ctl", "binrpc", "unix:/tmp/siplab_ctl")
modparam("rr", "enable_full_lr", 0)
modparam("rr", "append_fromtag", 0)
modparam("maxfwd", "max_limit", 70)

request_route {
    xlog("L_INFO", "REQ $rm $ru ci=$ci src=$si:$sp\n");
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (!sanity_check("1511", "7")) {
        xlog("Malformed SIP request from $si:$sp\n");
        exit;
    }
    force_rport();
    if (is_method("CANCEL|ACK")) { exit; }
    if (has_totag()) { sl_send_reply("404", "Not here"); exit; }
    if (is_method("INVITE|SUBSCRIBE")) { record_route(); }
    if ($rU == $null) { sl_send_reply("484", "Address Incomplete"); exit; }
    remove_hf("Contact");
    append_hf("X-Lab: $rU\r\n");
    if (!forward()) { sl_reply_error(); }
    exit;
}
"#;

#[test]
fn stock_like_route_forwards_with_rr_via_and_decremented_max_forwards() {
    let (outcome, host) = run(STOCK_LIKE, INVITE);
    assert!(
        matches!(outcome, Outcome::Exit { drop: false, .. }),
        "{outcome:?}"
    );
    assert_eq!(host.sent.len(), 1, "{:?}", host.log_texts());
    assert_eq!(host.sent[0].dst, SocketAddr::from(([10, 0, 0, 20], 5070)));
    let out = sent_text(&host, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "INVITE sip:bob@10.0.0.20:5070 SIP/2.0");
    assert_eq!(lines[1], "Record-Route: <sip:127.0.0.1:5060;lr>");
    assert!(lines[2].starts_with("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"));
    assert_eq!(
        lines[3],
        "Via: SIP/2.0/UDP 192.0.2.10:5091;received=192.0.2.10;branch=z9hG4bKuac1;rport=5091"
    );
    assert!(out.contains("\r\nMax-Forwards: 69\r\n"));
    assert!(!out.contains("Contact:"));
    assert!(out.contains("\r\nX-Lab: bob\r\n\r\n"), "{out}");
    assert_eq!(
        host.log_texts(),
        ["REQ INVITE sip:bob@10.0.0.20:5070 ci=call-1@192.0.2.10 src=192.0.2.10:5091\n"]
    );
}

#[test]
fn stock_like_route_answers_483_at_zero_max_forwards() {
    let (_, host) = run(
        STOCK_LIKE,
        &INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(host.sent.len(), 1);
    assert!(sent_text(&host, 0).starts_with("SIP/2.0 483 Too Many Hops\r\n"));
}

#[test]
fn stock_like_route_sanity_reply_and_exit() {
    let (outcome, host) = run(
        STOCK_LIKE,
        &INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS"),
    );
    assert!(
        matches!(outcome, Outcome::Exit { ret: 0, .. }),
        "{outcome:?}"
    );
    assert_eq!(host.sent.len(), 1);
    assert!(sent_text(&host, 0).starts_with("SIP/2.0 400 CSeq method does not match"));
}

#[test]
fn forward_unknown_scheme_is_416_through_the_cfg() {
    let (_, host) = run(
        STOCK_LIKE,
        &INVITE.replacen("sip:bob@10.0.0.20:5070", "tel:+15551234", 1),
    );
    // sanity's scheme check (bit 2) is not in 1511, so forward() fails and
    // sl_reply_error() answers.
    assert_eq!(host.sent.len(), 1, "{:?}", host.log_texts());
    assert!(sent_text(&host, 0).starts_with("SIP/2.0 416 Unsupported URI Scheme\r\n"));
}

#[test]
fn reply_reason_and_code_take_pvs() {
    let cfg = r#"
loadmodule "sl.so"
loadmodule "pv.so"
request_route {
    $var(code) = 486;
    sl_send_reply("$var(code)", "Busy $rU");
}
"#;
    let (_, host) = run(cfg, INVITE);
    assert!(sent_text(&host, 0).starts_with("SIP/2.0 486 Busy bob\r\n"));
}

#[test]
fn xlog_level_fixup_rejects_unknown_level_at_compile_time() {
    let cfg = load_str(
        "bad.cfg",
        "loadmodule \"xlog.so\"\nrequest_route { xlog(\"L_LOUD\", \"x\"); }\n",
        &[],
    )
    .unwrap_or_else(|e| panic!("load: {e:?}"));
    let errors = compile(&cfg, all_modules()).err().unwrap_or_default();
    assert!(
        errors.iter().any(|d| d.message.contains("L_LOUD")),
        "{errors:?}"
    );
}

#[test]
fn is_method_needs_textops_loaded() {
    let cfg = load_str("t.cfg", "request_route { is_method(\"INVITE\"); }\n", &[])
        .unwrap_or_else(|e| panic!("load: {e:?}"));
    assert!(
        compile(&cfg, all_modules()).is_err(),
        "E21: is_method needs textops"
    );
}

#[test]
fn pv_unset_and_pv_printf() {
    let cfg = r#"
loadmodule "pv.so"
loadmodule "kex.so"
loadmodule "xlog.so"
request_route {
    $du = "sip:10.0.0.1";
    pv_unset("$du");
    if (!pv_isset("$du")) { xlog("L_ERR", "du unset\n"); }
    pv_printf("$var(x)", "ci=$ci");
    xlog("L_ERR", "$var(x)\n");
}
"#;
    let (_, host) = run(cfg, INVITE);
    assert_eq!(host.log_texts(), ["du unset\n", "ci=call-1@192.0.2.10\n"]);
}
