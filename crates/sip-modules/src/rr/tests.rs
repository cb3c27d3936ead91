use std::net::SocketAddr;

use sip_script::abi::{LocalSocket, Proto};
use sip_script::testhost::TestHost;

use super::*;
use crate::testutil::{INVITE, fmt, parse, runtime, with_ctx};

fn printed(ctx: &Ctx<'_>) -> String {
    String::from_utf8_lossy(&ctx.msg.to_bytes(&ctx.edits)).into_owned()
}

#[test]
fn record_route_uses_socket_address_and_ftag_by_default() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let out = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_record_route(ctx, &[]), 1);
        printed(ctx)
    });
    assert!(
        out.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nRecord-Route: <sip:127.0.0.1:5060;lr;ftag=from1>\r\nVia:"),
        "{out}"
    );
    assert!(
        out.contains("Record-Route: <sip:proxy0.example.org;lr>\r\n"),
        "received RR kept"
    );
}

#[test]
fn record_route_uses_advertised_address() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    rt.set_state(RrConfig {
        append_fromtag: false,
        ..RrConfig::default()
    });
    let out = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.src.local = LocalSocket {
            addr: SocketAddr::from(([10, 0, 0, 1], 5060)),
            proto: Proto::Udp,
            advertise: Some(("203.0.113.1".into(), 5080)),
        };
        assert_eq!(w_add_rr_param(ctx, &[fmt(";nat=yes")]), 1);
        assert_eq!(w_record_route(ctx, &[]), 1);
        assert_eq!(
            w_add_rr_param(ctx, &[fmt(";late=1")]),
            1,
            "after record_route"
        );
        printed(ctx)
    });
    assert!(
        out.contains("Record-Route: <sip:203.0.113.1:5080;lr;nat=yes;late=1>\r\n"),
        "{out}"
    );
}

#[test]
fn record_route_preset_and_full_lr() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    rt.set_state(RrConfig {
        full_lr: true,
        append_fromtag: false,
        add_username: false,
    });
    let out = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_record_route_preset(ctx, &[fmt("1.2.3.4:5090"), fmt("10.0.0.1:5060")]);
        printed(ctx)
    });
    assert!(
        out.contains(
            "Record-Route: <sip:1.2.3.4:5090;lr=on>\r\nRecord-Route: <sip:10.0.0.1:5060;lr=on>\r\n"
        ),
        "{out}"
    );
}

#[test]
fn loose_route_pops_own_route() {
    let msg = parse(
        "BYE sip:bob@192.0.2.20:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKb\r\n\
Route: <sip:127.0.0.1:5060;lr;ftag=from1>\r\nRoute: <sip:10.5.5.5;lr>\r\n\
From: <sip:alice@example.org>;tag=from1\r\nTo: <sip:bob@example.com>;tag=to1\r\n\
Call-ID: c9\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    );
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let (rc, du, out) = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        let rc = w_loose_route(ctx, &[]);
        (rc, ctx.dst_uri.clone(), printed(ctx))
    });
    assert_eq!(rc, 1);
    assert_eq!(du.as_deref(), Some("sip:10.5.5.5;lr"));
    assert!(!out.contains("127.0.0.1"), "{out}");
    assert!(out.contains("Route: <sip:10.5.5.5;lr>\r\n"));
}

#[test]
fn loose_route_without_route_is_false() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| w_loose_route(ctx, &[]));
    assert_eq!(rc, -1);
}

#[test]
fn loose_route_handles_strict_previous_hop() {
    // A strict router before us put our RR URI in the R-URI and the real target last.
    let msg = parse(
        "BYE sip:127.0.0.1:5060;lr SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKs\r\n\
Route: <sip:bob@192.0.2.20:5070>\r\n\
From: <sip:alice@example.org>;tag=from1\r\nTo: <sip:bob@example.com>;tag=to1\r\n\
Call-ID: c9\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
    );
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let (rc, ruri, du, out) = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        let rc = w_loose_route(ctx, &[]);
        (
            rc,
            ctx.ruri().into_owned(),
            ctx.dst_uri.clone(),
            printed(ctx),
        )
    });
    assert_eq!(rc, 1);
    assert_eq!(ruri, "sip:bob@192.0.2.20:5070");
    assert_eq!(du, None);
    assert!(!out.contains("Route:"), "{out}");
}

#[test]
fn route_uri_pv() {
    let msg = parse(&INVITE.replacen(
        "Max-Forwards: 70\r\n",
        "Route: <sip:10.5.5.5;lr>\r\nMax-Forwards: 70\r\n",
        1,
    ));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let v = with_ctx(&mut rt, &mut host, &msg, |ctx| pv_route_uri(ctx, None));
    assert_eq!(v, Value::str("sip:10.5.5.5;lr"));
}

/// The Record-Route lines `script` inserts into [`INVITE`] (From tag `from1`), default
/// module settings (append_fromtag on).
fn rr_lines(script: impl FnOnce(&mut Ctx<'_>)) -> Vec<String> {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let out = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        script(ctx);
        printed(ctx)
    });
    out.lines()
        .filter(|l| l.starts_with("Record-Route:") && !l.contains("proxy0.example.org"))
        .map(str::to_owned)
        .collect()
}

fn call(ctx: &mut Ctx<'_>, f: fn(&mut Ctx<'_>, &[Arg]) -> i32, args: &[&str]) {
    let args: Vec<Arg> = args.iter().map(|a| fmt(a)).collect();
    assert_eq!(f(ctx, &args), 1);
}

/// Each case as Kamailio 5.6.3 put it on the wire (rr with default settings; the listen
/// address there was 127.0.0.1:15060, here 127.0.0.1:5060).
#[test]
fn record_route_variants_and_add_rr_param_match_kamailio() {
    let preset = w_record_route_preset as fn(&mut Ctx<'_>, &[Arg]) -> i32;
    let param = w_add_rr_param as fn(&mut Ctx<'_>, &[Arg]) -> i32;
    let rr = w_record_route as fn(&mut Ctx<'_>, &[Arg]) -> i32;
    let adv = w_record_route_advertised as fn(&mut Ctx<'_>, &[Arg]) -> i32;
    type Step<'a> = (fn(&mut Ctx<'_>, &[Arg]) -> i32, &'a [&'a str]);
    let cases: &[(&[Step<'_>], &[&str])] = &[
        (
            &[(preset, &["127.0.0.1:5060;x=1"])],
            &["Record-Route: <sip:127.0.0.1:5060;x=1;ftag=from1;lr>"],
        ),
        (
            &[(preset, &["127.0.0.1:5060;x=1"]), (param, &[";foo=bar"])],
            &["Record-Route: <sip:127.0.0.1:5060;x=1;ftag=from1;lr;foo=bar>"],
        ),
        (
            &[(param, &[";foo=bar"]), (preset, &["127.0.0.1:5060;x=1"])],
            &["Record-Route: <sip:127.0.0.1:5060;x=1;ftag=from1;foo=bar;lr>"],
        ),
        (
            &[
                (param, &[";a=1"]),
                (preset, &["127.0.0.1:5060"]),
                (param, &[";b=2"]),
            ],
            &["Record-Route: <sip:127.0.0.1:5060;ftag=from1;a=1;lr;b=2>"],
        ),
        (
            &[
                (preset, &["127.0.0.1:5060;x=1", "127.0.0.1:5061"]),
                (param, &[";foo=bar"]),
            ],
            &[
                "Record-Route: <sip:127.0.0.1:5060;x=1;ftag=from1;lr;foo=bar>",
                "Record-Route: <sip:127.0.0.1:5061;ftag=from1;lr;foo=bar>",
            ],
        ),
        (
            &[
                (param, &[";foo=bar"]),
                (preset, &["127.0.0.1:5060;x=1", "127.0.0.1:5061"]),
            ],
            &[
                "Record-Route: <sip:127.0.0.1:5060;x=1;ftag=from1;foo=bar;lr>",
                "Record-Route: <sip:127.0.0.1:5061;ftag=from1;foo=bar;lr>",
            ],
        ),
        (
            &[(preset, &["sip:127.0.0.1:5060;lr"])],
            &["Record-Route: <sip:sip:127.0.0.1:5060;lr;ftag=from1;lr>"],
        ),
        (
            &[(rr, &[]), (param, &[";foo=bar"]), (param, &[";baz"])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1;foo=bar;baz>"],
        ),
        (
            &[(param, &[";foo=bar"]), (rr, &[])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1;foo=bar>"],
        ),
        (
            &[(param, &[";foo=bar"]), (rr, &[";a=b"])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1;a=b;foo=bar>"],
        ),
        (
            &[(rr, &[";a=b"]), (param, &[";foo=bar"])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1;a=b;foo=bar>"],
        ),
        // Kamailio adds no `;` to either.
        (
            &[(rr, &["a=b"])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1a=b>"],
        ),
        (
            &[(rr, &[]), (param, &["foo=bar"])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1foo=bar>"],
        ),
        (
            &[(param, &["foo=bar"]), (rr, &[])],
            &["Record-Route: <sip:127.0.0.1:5060;lr;ftag=from1foo=bar>"],
        ),
        (
            &[(adv, &["1.2.3.4:5080"]), (param, &[";foo=bar"])],
            &["Record-Route: <sip:1.2.3.4:5080;ftag=from1;lr;foo=bar>"],
        ),
        (
            &[(param, &[";foo=bar"]), (adv, &["1.2.3.4:5080"])],
            &["Record-Route: <sip:1.2.3.4:5080;ftag=from1;lr;foo=bar>"],
        ),
    ];
    for (steps, expected) in cases {
        let lines = rr_lines(|ctx| {
            for (f, args) in *steps {
                call(ctx, *f, args);
            }
        });
        assert_eq!(lines, *expected);
    }
}

/// A Record-Route no longer in the edit list (printed into a stored request) cannot be
/// amended: add_rr_param says so instead of dropping the parameter silently.
#[test]
fn add_rr_param_without_an_editable_record_route_is_an_error() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_record_route(ctx, &[]), 1);
        ctx.edits.clear();
        w_add_rr_param(ctx, &[fmt(";nat=yes")])
    });
    assert_eq!(rc, -1);
    assert!(
        host.log_texts()
            .iter()
            .any(|l| l
                .contains("add_rr_param: the Record-Route added earlier is no longer editable")),
        "{:?}",
        host.log_texts()
    );
}
