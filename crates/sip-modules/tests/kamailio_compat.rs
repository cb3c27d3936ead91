//! Behaviour checked against the real Kamailio 5.6.3, through the compiler and interpreter:
//! each cfg sends one reply whose reason says what the functions returned.

use std::net::SocketAddr;

use sip_modules::all_modules;
use sip_msg::Message;
use sip_script::testhost::TestHost;
use sip_script::{Ctx, RouteKind, compile, load_str};

const OPTIONS: &str = "OPTIONS sip:bob@127.0.0.1;transport=udp;lr SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1\r\n\
Max-Forwards: 1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\n\
To: <sip:bob@127.0.0.1>\r\n\
Call-ID: c1@x\r\n\
CSeq: 1 OPTIONS\r\n\
X-A: two\r\n\
X-B: one\r\n\
Content-Length: 0\r\n\
\r\n";

/// Runs `request_route` of `cfg` over `msg`; returns the first line of the one reply sent.
fn first_reply_line(cfg: &str, msg: &str) -> String {
    let cfg = load_str("compat.cfg", cfg, &[]).unwrap_or_else(|e| panic!("load: {e:?}"));
    let script = compile(&cfg, all_modules()).unwrap_or_else(|e| panic!("compile: {e:?}"));
    let mut rt = script.new_runtime();
    script
        .init_modules(&mut rt)
        .unwrap_or_else(|e| panic!("init: {e}"));
    let msg = Message::parse(msg.as_bytes().to_vec()).unwrap_or_else(|e| panic!("parse: {e}"));
    let mut host = TestHost::new();
    let src = TestHost::source(SocketAddr::from(([127, 0, 0, 1], 5091)));
    {
        let mut ctx = Ctx::new(&mut rt, &mut host, &msg, src, RouteKind::Request);
        script.run_request(&mut ctx);
    }
    assert_eq!(host.sent.len(), 1, "{:?}", host.log_texts());
    host.sent
        .first()
        .map(|s| String::from_utf8_lossy(&s.bytes).into_owned())
        .and_then(|t| t.lines().next().map(str::to_owned))
        .unwrap_or_default()
}

/// A cfg that appends `1`/`0` to `$var(r)` per condition, then replies `200 <bits>`.
fn bits_cfg(modules: &[&str], conditions: &[&str]) -> String {
    let mut cfg = String::from("loadmodule \"sl.so\"\nloadmodule \"pv.so\"\n");
    for m in modules {
        cfg.push_str(&format!("loadmodule \"{m}.so\"\n"));
    }
    cfg.push_str("request_route {\n    $var(r) = \"\";\n");
    for c in conditions {
        cfg.push_str(&format!(
            "    if ({c}) {{ $var(r) = $var(r) + \"1\"; }} else {{ $var(r) = $var(r) + \"0\"; }}\n"
        ));
    }
    cfg.push_str("    sl_send_reply(\"200\", \"$var(r)\");\n}\n");
    cfg
}

#[test]
fn search_is_case_insensitive_and_per_line_through_the_cfg() {
    let cfg = bits_cfg(
        &["textops"],
        &[
            r#"search("^X-A: t")"#,
            r#"search("^x-a: T")"#,
            r#"search("two$")"#,
            r#"search("two.$")"#,
            r#"search("two.X-B")"#,
            r#"search("two[^a]*X-B")"#,
            r#"search("^options")"#,
        ],
    );
    // Kamailio 5.6.3 on the same request: true true false true false false true.
    assert_eq!(first_reply_line(&cfg, OPTIONS), "SIP/2.0 200 1101001");
}

#[test]
fn uri_param_one_argument_needs_a_parameter_without_value() {
    let cfg = bits_cfg(
        &["siputils"],
        &[
            r#"uri_param("transport")"#,
            r#"uri_param("lr")"#,
            r#"uri_param("LR")"#,
            r#"uri_param("transport", "udp")"#,
            r#"uri_param("lr", "")"#,
        ],
    );
    // Kamailio 5.6.3: false true false true true.
    assert_eq!(first_reply_line(&cfg, OPTIONS), "SIP/2.0 200 01011");
}

#[test]
fn sanity_420_uses_kamailio_reason() {
    let cfg = "loadmodule \"sl.so\"\nloadmodule \"sanity.so\"\n\
request_route {\n    sanity_check();\n    sl_send_reply(\"200\", \"passed\");\n}\n";
    let msg = OPTIONS.replace("X-B: one\r\n", "Proxy-Require: foo\r\n");
    assert_eq!(
        first_reply_line(cfg, &msg),
        "SIP/2.0 420 Bad Proxy Require Extension"
    );
}

/// `$fu`, `$tU` then `$td` as Kamailio 5.6.3 sends them (captured from its `forward()` on
/// 2026-11-22): the URI is replaced inside the brackets (its own params go with it), the
/// display name and tag stay, user and domain writes both apply; reads keep the received
/// values (Kamailio's writes are lumps).
#[test]
fn from_and_to_uri_writes_are_sent_as_kamailio_sends_them() {
    let cfg = "loadmodule \"pv.so\"\nloadmodule \"xlog.so\"\nrequest_route {\n\
        $fu = \"sip:z@z.example\"; $tU = \"carol\"; $td = \"d.example\";\n\
        xlog(\"L_ERR\", \"$fu $tU $td\");\n\
        forward(\"127.0.0.1\", 5982); exit;\n}\n";
    let invite = "INVITE sip:bob@127.0.0.1:5981 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5983;branch=z9hG4bK-abc-1\r\n\
Max-Forwards: 70\r\n\
From: \"Al\" <sip:a@x.example;user=phone>;tag=ft1\r\n\
To: sip:bob@x.example\r\n\
Call-ID: cid-77@x\r\n\
CSeq: 5 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";
    let cfg = load_str("compat.cfg", cfg, &[]).unwrap_or_else(|e| panic!("load: {e:?}"));
    let script = compile(&cfg, all_modules()).unwrap_or_else(|e| panic!("compile: {e:?}"));
    let mut rt = script.new_runtime();
    script
        .init_modules(&mut rt)
        .unwrap_or_else(|e| panic!("init: {e}"));
    let msg = Message::parse(invite.as_bytes().to_vec()).unwrap_or_else(|e| panic!("parse: {e}"));
    let mut host = TestHost::new();
    let src = TestHost::source(SocketAddr::from(([127, 0, 0, 1], 5983)));
    {
        let mut ctx = Ctx::new(&mut rt, &mut host, &msg, src, RouteKind::Request);
        script.run_request(&mut ctx);
    }
    assert_eq!(
        host.log_texts(),
        ["sip:a@x.example;user=phone bob x.example"]
    );
    assert_eq!(host.sent.len(), 1, "{:?}", host.log_texts());
    let sent = String::from_utf8_lossy(&host.sent[0].bytes).into_owned();
    let from_to: Vec<&str> = sent
        .lines()
        .filter(|l| l.starts_with("From") || l.starts_with("To"))
        .collect();
    assert_eq!(
        from_to,
        [
            "From: \"Al\" <sip:z@z.example>;tag=ft1",
            "To: sip:carol@d.example"
        ],
        "{sent}"
    );
}
