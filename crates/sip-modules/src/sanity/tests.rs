use sip_msg::Message;
use sip_script::testhost::TestHost;

use super::*;
use crate::testutil::{INVITE, int, invite_with, only_send, parse, rfc4475_dir, runtime, with_ctx};

fn corpus(name: &str) -> Message {
    let path = rfc4475_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs `sanity_check()` with default settings; returns the code and what was sent.
fn check(msg: &Message, args: &[Arg]) -> (i32, TestHost) {
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, msg, |ctx| w_sanity_check(ctx, args));
    (rc, host)
}

#[test]
fn sanity_420_lists_unknown_proxy_require() {
    let msg = corpus("bext01.dat");
    let (rc, host) = check(&msg, &[]);
    assert_eq!(rc, 0, "autodrop stops the script");
    let reply = only_send(&host);
    assert!(
        reply.starts_with("SIP/2.0 420 Bad Proxy Require Extension\r\n"),
        "{reply}"
    );
    let tags: Vec<String> = msg
        .proxy_require()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    assert!(!tags.is_empty());
    assert!(
        reply.contains(&format!("\r\nUnsupported: {}\r\n", tags.join(", "))),
        "{reply}"
    );
    // With the tags configured as supported the request passes.
    let supported = SanityConfig {
        proxy_require: tags,
        ..SanityConfig::default()
    };
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    rt.set_state(supported);
    assert_eq!(
        with_ctx(&mut rt, &mut host, &msg, |ctx| w_sanity_check(ctx, &[])),
        1
    );
}

#[test]
fn sanity_416_for_unsupported_ruri_scheme() {
    for name in ["unkscm.dat", "novelsc.dat"] {
        let (rc, host) = check(&corpus(name), &[]);
        assert_eq!(rc, 0);
        assert!(
            only_send(&host).starts_with("SIP/2.0 416 Unsupported URI Scheme in Request URI\r\n"),
            "{name}"
        );
    }
}

/// Every valid request of RFC 4475 passes the default checks — except the ones Kamailio's
/// defaults reject on purpose: unknown Proxy-Require (420), R-URI schemes it cannot route
/// (416) and a non-Digest Authorization (the digest check, 2048, fails without a reply).
#[test]
fn sanity_passes_rfc4475_valid_requests() {
    let manifest = std::fs::read_to_string(rfc4475_dir().join("MANIFEST.tsv"))
        .unwrap_or_else(|e| panic!("MANIFEST.tsv: {e}"));
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(file), Some(validity)) = (cols.first(), cols.get(2)) else {
            continue;
        };
        if *validity != "valid" {
            continue;
        }
        let msg = corpus(file);
        if !msg.is_request() {
            continue;
        }
        let (rc, host) = check(&msg, &[]);
        let first_line = host.sent.first().map(|s| {
            String::from_utf8_lossy(&s.bytes)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        });
        match *file {
            "bext01.dat" => assert_eq!(
                first_line.as_deref(),
                Some("SIP/2.0 420 Bad Proxy Require Extension")
            ),
            "unkscm.dat" | "novelsc.dat" => {
                assert!(
                    first_line.is_some_and(|l| l.starts_with("SIP/2.0 416")),
                    "{file}"
                );
            }
            "regaut01.dat" => assert_eq!((rc, first_line), (0, None), "{file}"),
            _ => assert_eq!((rc, first_line), (1, None), "{file}"),
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} valid requests found");
}

#[test]
fn sanity_400_for_bad_cseq_and_expires() {
    let bad_method = parse(&invite_with("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    let (rc, host) = check(&bad_method, &[]);
    assert_eq!(rc, 0);
    assert!(
        only_send(&host).starts_with("SIP/2.0 400 CSeq method does not match request method\r\n")
    );

    let bad_number = parse(&invite_with("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE"));
    let (_, host) = check(&bad_number, &[int(64)]);
    assert!(only_send(&host).starts_with("SIP/2.0 400 CSeq number is illegal\r\n"));

    let bad_expires = parse(&invite_with(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nExpires: 4294967296\r\n",
    ));
    let (_, host) = check(&bad_expires, &[]);
    assert!(only_send(&host).starts_with("SIP/2.0 400 Expires value is illegal\r\n"));

    // A mask without the failing check passes.
    let (rc, host) = check(&bad_method, &[int(1)]);
    assert_eq!((rc, host.sent.len()), (1, 0));
}

#[test]
fn sanity_uri_checks_mask() {
    let bad_from = parse(&invite_with(
        "<sip:alice@example.org>",
        "<http://alice.example.org>",
    ));
    let (rc, host) = check(&bad_from, &[int(1024), int(1)]);
    assert_eq!((rc, host.sent.len()), (1, 0), "From not selected");
    let (rc, host) = check(&bad_from, &[int(1024), int(2)]);
    assert_eq!(rc, 0);
    assert!(only_send(&host).starts_with("SIP/2.0 400 Bad From URI\r\n"));
}

#[test]
fn sanity_autodrop_off_returns_false_and_noreply_defers_to_sanity_reply() {
    let msg = parse(&invite_with("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    rt.set_state(SanityConfig {
        autodrop: false,
        noreply: true,
        ..SanityConfig::default()
    });
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_sanity_check(ctx, &[]), -1);
    });
    assert!(host.sent.is_empty(), "noreply");
    let mut host = TestHost::new();
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_sanity_check(ctx, &[]), -1);
        assert_eq!(w_sanity_reply(ctx, &[]), 1);
    });
    assert!(
        only_send(&host).starts_with("SIP/2.0 400 CSeq method does not match request method\r\n")
    );
}

#[test]
fn sanity_never_answers_ack() {
    let ack = parse(
        "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKa\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
    );
    let (rc, host) = check(&ack, &[]);
    assert_eq!(rc, 0, "the check still fails");
    assert!(host.sent.is_empty());
}

#[test]
fn sanity_passes_a_normal_invite() {
    let (rc, host) = check(&parse(INVITE), &[]);
    assert_eq!((rc, host.sent.len()), (1, 0));
}

#[test]
fn sanity_invalid_mask_argument_is_an_error_without_reply() {
    let bad_method = parse(&invite_with("CSeq: 1 INVITE", "CSeq: 1 BYE"));
    for args in [vec![int(-1)], vec![int(1), int(1 << 40)]] {
        let (rc, host) = check(&bad_method, &args);
        assert_eq!((rc, host.sent.len()), (-1, 0), "{args:?}");
    }
    // Explicit masks replace the configured defaults.
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    rt.set_state(SanityConfig {
        default_checks: 1,
        ..SanityConfig::default()
    });
    with_ctx(&mut rt, &mut host, &bad_method, |ctx| {
        assert_eq!(w_sanity_check(ctx, &[]), 1, "configured mask skips CSeq");
        assert_eq!(w_sanity_check(ctx, &[int(32)]), 0, "given mask checks it");
    });
}
