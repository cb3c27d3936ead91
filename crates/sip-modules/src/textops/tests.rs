use sip_script::abi::CoreParams;
use sip_script::testhost::TestHost;

use super::*;
use crate::testutil::{INVITE, fmt, invite_with, parse, runtime, s, with_ctx};

fn fixed(list: &str) -> Vec<Arg> {
    let core = CoreParams::default();
    let mut fctx = FixupCtx {
        core: &core,
        route_kinds: RouteKinds::REQUEST,
        warnings: Vec::new(),
    };
    let mut args = vec![s(list)];
    assert!(fixup_methods(&mut fctx, &mut args).is_ok());
    args
}

#[test]
fn is_method_alternatives() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_is_method(ctx, &fixed("INVITE")), 1);
        assert_eq!(w_is_method(ctx, &fixed("ACK|INVITE")), 1);
        assert_eq!(w_is_method(ctx, &fixed("invite")), 1);
        assert_eq!(w_is_method(ctx, &fixed("ACK|BYE|CANCEL")), -1);
        assert_eq!(w_is_method(ctx, &[s("OPTIONS|INVITE")]), 1, "unfixed form");
    });
    let reply = parse(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 7 BYE\r\n\r\n",
    );
    with_ctx(&mut rt, &mut host, &reply, |ctx| {
        assert_eq!(
            w_is_method(ctx, &fixed("BYE")),
            1,
            "replies use the CSeq method"
        );
    });
    let core = CoreParams::default();
    let mut fctx = FixupCtx {
        core: &core,
        route_kinds: RouteKinds::REQUEST,
        warnings: Vec::new(),
    };
    assert!(fixup_methods(&mut fctx, &mut [s("INVITE||ACK")]).is_err());
}

#[test]
fn method_set_bits_agree_with_the_text_compare() {
    let lists = [
        "INVITE|SUBSCRIBE",
        "invite",
        "ack|Bye|CANCEL",
        "FOO|OPTIONS",
        "PUBLISH|UPDATE|MESSAGE|REFER|INFO|NOTIFY|PRACK|REGISTER",
    ];
    let tokens = [
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
        "FOO",
        "invite",
        "Bye",
        "INVITEX",
    ];
    for list in lists {
        let set = MethodSet::parse(list).unwrap_or_else(|e| panic!("{e}"));
        for t in tokens {
            let method = Method::from_bytes(t.as_bytes(), Span::default());
            assert_eq!(
                set.contains_method(method, t.as_bytes()),
                set.contains(t.as_bytes()),
                "{list} / {t}"
            );
        }
    }
}

#[test]
fn is_method_on_lowercase_and_extension_methods() {
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let lower = parse(&INVITE.replacen("INVITE sip:", "invite sip:", 1));
    with_ctx(&mut rt, &mut host, &lower, |ctx| {
        assert_eq!(
            w_is_method(ctx, &fixed("INVITE|ACK")),
            1,
            "case-insensitive"
        );
        assert_eq!(w_is_method(ctx, &fixed("ACK")), -1);
    });
    let ext = parse(&INVITE.replacen("INVITE sip:", "FOO sip:", 1));
    with_ctx(&mut rt, &mut host, &ext, |ctx| {
        assert_eq!(w_is_method(ctx, &fixed("foo|BAR")), 1);
        assert_eq!(w_is_method(ctx, &fixed("INVITE")), -1);
    });
}

#[test]
fn append_and_insert_hf() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let out = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_append_hf(ctx, &[fmt("X-Req: 1\r\n")]), 1);
        assert_eq!(w_insert_hf(ctx, &[fmt("X-Top: t\r\n")]), 1);
        assert_eq!(
            w_append_hf_after(ctx, &[fmt("X-After-Cseq: 2\r\n"), s("CSeq")]),
            1
        );
        assert_eq!(
            w_insert_hf_before(ctx, &[fmt("X-Before-Cseq: 3\r\n"), s("cseq")]),
            1
        );
        assert_eq!(
            w_insert_hf_before(ctx, &[fmt("X-No-Subject: 4\r\n"), s("Subject")]),
            1
        );
        String::from_utf8_lossy(&ctx.msg.to_bytes(&ctx.edits)).into_owned()
    });
    assert!(out.contains("X-Before-Cseq: 3\r\nCSeq: 1 INVITE\r\nX-After-Cseq: 2\r\n"));
    assert!(
        out.starts_with(
            "INVITE sip:bob@example.com SIP/2.0\r\nX-Top: t\r\nX-No-Subject: 4\r\nVia:"
        ),
        "{out}"
    );
    assert!(
        out.contains("Content-Length: 4\r\nX-Req: 1\r\n\r\nv=0\n"),
        "{out}"
    );
}

#[test]
fn remove_hf_compact_form() {
    let msg = parse(
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\n\
To: <sip:a@b>\r\ni: c1\r\nCSeq: 1 OPTIONS\r\nSubject: one\r\ns: two\r\nContent-Length: 0\r\n\r\n",
    );
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let out = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(
            w_remove_hf(ctx, &[s("Subject")]),
            2,
            "long and compact form"
        );
        assert_eq!(w_remove_hf(ctx, &[s("X-None")]), -1);
        assert_eq!(w_is_present_hf(ctx, &[s("Call-ID")]), 1, "compact i");
        assert_eq!(w_is_present_hf(ctx, &[s("X-None")]), -1);
        String::from_utf8_lossy(&ctx.msg.to_bytes(&ctx.edits)).into_owned()
    });
    assert!(!out.contains("Subject"));
    assert!(!out.contains("s: two"));
    assert!(out.contains("i: c1\r\n"));
}

#[test]
fn search_and_has_body() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        let re = |p: &str| match regex::Regex::new(p) {
            Ok(r) => vec![Arg::Regex(r)],
            Err(e) => panic!("{e}"),
        };
        assert_eq!(w_search(ctx, &re("Call-ID: call-1@")), 1);
        assert_eq!(w_search(ctx, &re("^BYE")), -1);
        assert_eq!(w_search_body(ctx, &re("v=0")), 1);
        assert_eq!(w_has_body(ctx, &[]), 1);
        assert_eq!(w_has_body_type(ctx, &[s("application/sdp")]), 1);
        assert_eq!(w_has_body_type(ctx, &[s("text/plain")]), -1);
    });
    let empty = parse(&INVITE.replace(
        "Content-Length: 4\r\n\r\nv=0\n",
        "Content-Length: 0\r\n\r\n",
    ));
    with_ctx(&mut rt, &mut host, &empty, |ctx| {
        assert_eq!(w_has_body(ctx, &[]), -1);
    });
}

#[test]
fn append_to_reply_reaches_sl_reply() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_append_to_reply(ctx, &[fmt("Retry-After: 30\r\n")]);
        crate::sl::send_stateless(ctx, 503, "Busy", &[])
    });
    assert!(crate::testutil::only_send(&host).contains("\r\nRetry-After: 30\r\n"));
}

/// `search`/`search_body` patterns as the fixup compiles them.
fn line_re(pattern: &str) -> Vec<Arg> {
    let core = CoreParams::default();
    let mut fctx = FixupCtx {
        core: &core,
        route_kinds: RouteKinds::REQUEST,
        warnings: Vec::new(),
    };
    let mut args = match regex::Regex::new(pattern) {
        Ok(r) => vec![Arg::Regex(r)],
        Err(e) => panic!("{e}"),
    };
    if let Err(e) = fixup_line_regex(&mut fctx, &mut args) {
        panic!("{pattern}: {}", e.message);
    }
    args
}

/// Kamailio 5.6.3 (checked on the real server) compiles these with
/// REG_EXTENDED|REG_ICASE|REG_NEWLINE; each expected value below is what it returned.
#[test]
fn search_ignores_case_and_anchors_at_lines_like_kamailio() {
    let msg = parse(&invite_with(
        "Content-Type: application/sdp\r\n",
        "X-A: two\r\nX-B: one\r\nContent-Type: application/sdp\r\n",
    ));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_search(ctx, &line_re("^X-A: t")), 1, "^ at a line start");
        assert_eq!(w_search(ctx, &line_re("^x-a: T")), 1, "case-insensitive");
        assert_eq!(w_search(ctx, &line_re("^invite sip:")), 1);
        assert_eq!(w_search(ctx, &line_re("two$")), -1, "$ only before \\n");
        assert_eq!(w_search(ctx, &line_re("two\r$")), 1);
        assert_eq!(w_search(ctx, &line_re("two.$")), 1, ". matches \\r");
        assert_eq!(w_search(ctx, &line_re("two.X-B")), -1, ". never \\n");
        assert_eq!(w_search(ctx, &line_re("two[^a]*X-B")), -1, "[^a] never \\n");
        assert_eq!(w_search(ctx, &line_re("two[[:space:]]*X-B")), 1);
        assert_eq!(w_search(ctx, &line_re("^X-C")), -1);
        assert_eq!(w_search_body(ctx, &line_re("^V=0$")), 1);
        assert_eq!(w_search_body(ctx, &line_re("^0")), -1);
    });
}

#[test]
fn negated_brackets_exclude_newline() {
    let cases = [
        ("[^a]", "[[^a]&&[^\\n]]"),
        ("x[^]a]y", "x[[^]a]&&[^\\n]]y"),
        ("[^[:digit:]x]+", "[[^[:digit:]x]&&[^\\n]]+"),
        ("\\[^a][a^]", "\\[^a][a^]"),
        ("[a-z][^\\]]", "[a-z][[^\\]]&&[^\\n]]"),
        ("[^a[b]c]", "[[^a[b]c]&&[^\\n]]"),
        ("unclosed [^", "unclosed [^"),
    ];
    for (pattern, want) in cases {
        assert_eq!(
            exclude_newline_from_negated_classes(pattern),
            want,
            "{pattern}"
        );
    }
    let re = match line_regex("a[^]b]c") {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert!(re.is_match("AxC"), "case-insensitive");
    assert!(!re.is_match("a]c"), "`]` first in the bracket is a member");
    assert!(!re.is_match("a\nc"));
}
