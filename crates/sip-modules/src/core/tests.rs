use std::net::{IpAddr, SocketAddr};

use sip_script::Runtime;
use sip_script::abi::LocalSocket;
use sip_script::testhost::TestHost;

use super::*;
use crate::testutil::{INVITE, fmt, int, invite_with, only_send, parse, runtime, with_ctx};

fn via_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("Via:")).collect()
}

#[test]
fn forward_adds_via_received_rport() {
    // The UAC's Via says 192.0.2.10 but the datagram came from 198.51.100.7:6000.
    let msg = parse(&invite_with(
        "192.0.2.10:5091;branch",
        "uac.example.org:5091;branch",
    ));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    host.dns
        .push(("example.com".into(), vec![IpAddr::from([203, 0, 113, 5])]));
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.src.addr = SocketAddr::from(([198, 51, 100, 7], 6000));
        w_forward(ctx, &[])
    });
    assert_eq!(rc, 1);
    assert_eq!(host.counted, vec![sip_script::abi::Stat::FwdRequests]);
    let out = only_send(&host);
    assert_eq!(
        host.sent.first().map(|s| s.dst),
        Some(SocketAddr::from(([203, 0, 113, 5], 5060)))
    );
    let vias = via_lines(&out);
    assert_eq!(vias.len(), 2);
    assert!(
        vias[0].starts_with("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"),
        "{}",
        vias[0]
    );
    // Kamailio 5.6.3: received right after the sent-by, the UAC's rport filled in place.
    assert_eq!(
        vias[1],
        "Via: SIP/2.0/UDP uac.example.org:5091;received=198.51.100.7;branch=z9hG4bKuac1;rport=6000"
    );
    assert!(
        out.contains("Max-Forwards: 70\r\n"),
        "forward never touches Max-Forwards"
    );
}

#[test]
fn forward_without_rport_same_host_leaves_via_alone() {
    let msg = parse(&invite_with(";rport\r\n", "\r\n"));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.dst_uri = Some("sip:10.1.2.3:5080".into());
        w_forward(ctx, &[])
    });
    let out = only_send(&host);
    assert_eq!(host.sent[0].dst, SocketAddr::from(([10, 1, 2, 3], 5080)));
    assert_eq!(
        via_lines(&out)[1],
        "Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1"
    );
    // force_rport answers rport even when the UAC did not ask, right after the sent-by;
    // no received, the sent-by being the source IP (bytes of Kamailio 5.6.3).
    let mut host = TestHost::new();
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.dst_uri = Some("sip:10.1.2.3:5080".into());
        w_force_rport(ctx, &[]);
        w_forward(ctx, &[])
    });
    assert_eq!(
        via_lines(&only_send(&host))[1],
        "Via: SIP/2.0/UDP 192.0.2.10:5091;rport=5091;branch=z9hG4bKuac1"
    );
}

#[test]
fn forward_branch_is_stable_for_retransmission() {
    let msg = parse(INVITE);
    let again = parse(INVITE);
    let other = parse(&invite_with("CSeq: 1 INVITE", "CSeq: 2 INVITE"));
    assert_eq!(stateless_branch(&msg), stateless_branch(&again));
    assert_ne!(stateless_branch(&msg), stateless_branch(&other));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    for m in [&msg, &again] {
        with_ctx(&mut rt, &mut host, m, |ctx| {
            ctx.dst_uri = Some("sip:10.1.2.3".into());
            w_forward(ctx, &[])
        });
    }
    assert_eq!(host.sent[0].bytes, host.sent[1].bytes);
}

#[test]
fn forward_unknown_scheme_is_416_via_sl_reply_error() {
    let msg = parse(&INVITE.replacen("sip:bob@example.com", "tel:+15551234", 1));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        let rc = w_forward(ctx, &[]);
        let handler = crate::sl::MODULE
            .functions
            .iter()
            .find(|f| f.name == "sl_reply_error")
            .map(|f| f.handler);
        handler.map(|h| h(ctx, &[]));
        rc
    });
    assert_eq!(rc, -1);
    assert!(only_send(&host).starts_with("SIP/2.0 416 Unsupported URI Scheme\r\n"));
}

#[test]
fn forward_uses_rewritten_ruri_and_advertised_address() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.src.local = LocalSocket {
            addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
            proto: Proto::Udp,
            advertise: Some(("proxy.example.net".into(), 5070)),
        };
        w_rewritehostport(ctx, &[fmt("10.9.9.9:5099")]);
        w_forward(ctx, &[])
    });
    let out = only_send(&host);
    assert_eq!(host.sent[0].dst, SocketAddr::from(([10, 9, 9, 9], 5099)));
    assert!(out.starts_with("INVITE sip:bob@10.9.9.9:5099 SIP/2.0\r\n"));
    assert!(out.contains("Via: SIP/2.0/UDP proxy.example.net:5070;branch=z9hG4bK"));
}

#[test]
fn forward_host_port_and_unresolvable_name() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_forward_to(ctx, &[fmt("10.0.0.8"), int(5090)])
    });
    assert_eq!(rc, 1);
    assert_eq!(host.sent[0].dst, SocketAddr::from(([10, 0, 0, 8], 5090)));
    let mut host = TestHost::new();
    let status = with_ctx(&mut rt, &mut host, &msg, |ctx| {
        let rc = w_forward(ctx, &[]);
        (rc, ctx.ser_error.clone().map(|e| e.status))
    });
    assert_eq!(
        status,
        (-1, Some(478)),
        "example.com is not in the test DNS"
    );
    assert!(host.sent.is_empty());
}

#[test]
fn flags_set_reset_test() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_isflagset(ctx, &[int(3)]), -1);
        assert_eq!(w_setflag(ctx, &[int(3)]), 1);
        assert_eq!(w_isflagset(ctx, &[int(3)]), 1);
        assert_eq!(w_resetflag(ctx, &[int(3)]), 1);
        assert_eq!(w_isflagset(ctx, &[int(3)]), -1);
        assert_eq!(w_setbflag(ctx, &[int(6)]), 1);
        assert_eq!(ctx.bflags, 1 << 6);
        assert_eq!(w_isbflagset(ctx, &[int(6)]), 1);
        assert_eq!(w_resetbflag(ctx, &[int(6)]), 1);
        assert_eq!(w_isbflagset(ctx, &[int(6)]), -1);
        assert_eq!(w_setflag(ctx, &[int(64)]), -1, "out of range");
    });
}

#[test]
fn ruri_rewrites_strip_prefix_revert() {
    let msg = parse(&INVITE.replacen(
        "sip:bob@example.com",
        "sip:00123@gw.example.com:5070;user=phone",
        1,
    ));
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        w_strip(ctx, &[int(2)]);
        assert_eq!(ctx.ruri(), "sip:123@gw.example.com:5070;user=phone");
        w_prefix(ctx, &[fmt("+49")]);
        assert_eq!(ctx.ruri(), "sip:+49123@gw.example.com:5070;user=phone");
        w_rewritehost(ctx, &[fmt("10.0.0.2")]);
        assert_eq!(ctx.ruri(), "sip:+49123@10.0.0.2:5070;user=phone");
        w_rewriteport(ctx, &[fmt("5080")]);
        assert_eq!(ctx.ruri(), "sip:+49123@10.0.0.2:5080;user=phone");
        w_rewriteuser(ctx, &[fmt("alice")]);
        assert_eq!(ctx.ruri(), "sip:alice@10.0.0.2:5080;user=phone");
        w_strip_tail(ctx, &[int(2)]);
        assert_eq!(ctx.ruri(), "sip:ali@10.0.0.2:5080;user=phone");
        w_rewriteuri(ctx, &[fmt("sip:carol@example.net")]);
        assert_eq!(ctx.ruri(), "sip:carol@example.net");
        w_revert_uri(ctx, &[]);
        assert_eq!(ctx.ruri(), "sip:00123@gw.example.com:5070;user=phone");
        assert_eq!(w_rewriteuri(ctx, &[fmt("not a uri")]), -1);
    });
}

#[test]
fn reply_forwarded_in_script_goes_to_second_via() {
    let reply = parse(
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;branch=z9hG4bKuac1;rport=5091;received=192.0.2.10\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    );
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    let rc = with_ctx(&mut rt, &mut host, &reply, |ctx| w_forward(ctx, &[]));
    assert_eq!(rc, 1);
    let out = only_send(&host);
    assert_eq!(host.sent[0].dst, SocketAddr::from(([192, 0, 2, 10], 5091)));
    assert_eq!(via_lines(&out).len(), 1);
}

#[test]
fn dst_uri_actions() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        assert_eq!(w_isdsturiset(ctx, &[]), -1);
        assert_eq!(w_setdsturi(ctx, &[fmt("sip:10.0.0.7:5070")]), 1);
        assert_eq!(ctx.dst_uri.as_deref(), Some("sip:10.0.0.7:5070"));
        assert_eq!(w_isdsturiset(ctx, &[]), 1);
        assert_eq!(w_setdsturi(ctx, &[fmt("bad uri")]), -1);
        assert_eq!(w_resetdsturi(ctx, &[]), 1);
        assert_eq!(w_isdsturiset(ctx, &[]), -1);
    });
}

#[test]
fn forward_remembers_only_the_last_ip_literal_hop() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    rt.set_state(LastHop::default());
    host.dns.push((
        "gw.example.com".into(),
        vec![IpAddr::from([203, 0, 113, 9])],
    ));
    let mut forward = |rt: &mut Runtime, du: &str| {
        with_ctx(rt, &mut host, &msg, |ctx| {
            ctx.dst_uri = Some(du.into());
            w_forward(ctx, &[])
        });
        host.sent.last().map(|s| s.dst)
    };
    let last = |rt: &Runtime| rt.state::<LastHop>().and_then(|l| l.last.clone());
    let a = SocketAddr::from(([10, 1, 2, 3], 5080));
    let b = SocketAddr::from(([10, 9, 9, 9], 5090));
    assert_eq!(forward(&mut rt, "sip:10.1.2.3:5080"), Some(a));
    assert_eq!(forward(&mut rt, "sip:10.1.2.3:5080"), Some(a));
    assert_eq!(last(&rt), Some(("sip:10.1.2.3:5080".to_string(), a)));
    assert_eq!(forward(&mut rt, "sip:10.9.9.9:5090;transport=udp"), Some(b));
    // A name is resolved per request, never kept.
    assert_eq!(
        forward(&mut rt, "sip:gw.example.com:5070"),
        Some(SocketAddr::from(([203, 0, 113, 9], 5070)))
    );
    assert_eq!(
        last(&rt),
        Some(("sip:10.9.9.9:5090;transport=udp".to_string(), b))
    );
    assert_eq!(forward(&mut rt, "sip:10.1.2.3:5080"), Some(a));
}

/// The whole datagram of a forward, byte for byte: the script's edits (Max-Forwards, a
/// Record-Route at the top, a new R-URI), `received`/`rport` on the UAC's Via and the
/// proxy's Via above it with the stateless branch. Printed twice from the same process
/// state, so a buffer reused between forwards carries nothing over.
#[test]
fn forward_prints_the_exact_datagram() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    for _ in 0..2 {
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            ctx.src.addr = SocketAddr::from(([198, 51, 100, 7], 6000));
            ctx.edits.set_max_forwards(69);
            ctx.edits.insert_header(
                sip_msg::InsertAt::Top,
                b"Record-Route: <sip:127.0.0.1:5060;lr>",
            );
            ctx.new_ruri = Some("sip:bob@10.1.2.3:5070".into());
            ctx.dst_uri = Some("sip:10.1.2.3:5070".into());
            w_forward(ctx, &[])
        });
    }
    let expected = "INVITE sip:bob@10.1.2.3:5070 SIP/2.0\r\n\
Record-Route: <sip:127.0.0.1:5060;lr>\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK500f.8629bf724f38cd1089ca4328c220335a.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5091;received=198.51.100.7;branch=z9hG4bKuac1;rport=6000\r\n\
Max-Forwards: 69\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=from1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5091>\r\n\
Record-Route: <sip:proxy0.example.org;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";
    assert_eq!(host.sent.len(), 2);
    for sent in &host.sent {
        assert_eq!(sent.dst, SocketAddr::from(([10, 1, 2, 3], 5070)));
        assert_eq!(String::from_utf8_lossy(&sent.bytes), expected);
    }
}

/// The same over an IPv6 listen socket: the sent-by is the bracketed address.
#[test]
fn forward_from_an_ipv6_socket_brackets_the_sent_by() {
    let msg = parse(INVITE);
    let (mut rt, mut host) = (runtime(0), TestHost::new());
    with_ctx(&mut rt, &mut host, &msg, |ctx| {
        ctx.src.local = LocalSocket {
            addr: SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10], 5062)),
            proto: sip_script::abi::Proto::Udp,
            advertise: None,
        };
        ctx.dst_uri = Some("sip:10.1.2.3".into());
        w_forward(ctx, &[])
    });
    let out = only_send(&host);
    assert!(
        out.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::10]:5062;branch=z9hG4bK"),
        "{out}"
    );
}
