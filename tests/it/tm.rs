//! Stateful proxying through tm (issue 5 §5), black-box: the real siplab with a stateful cfg
//! (Kamailio's idiom: `t_check_trans`, `t_relay`, `t_on_reply`, `t_on_failure`) between a
//! sipload UAC and sipload gateways. Timers are short (`fr_timer` 4 s, `fr_inv_timer` 3 s,
//! `wt_timer` 2 s) so the module runs in well under a minute with its tests in parallel.
//!
//! Timing checks follow the spec's observations (§6.2, E4, E9) with generous tolerances.

use super::harness::{Proxy, ProxyCfg, wait_until};
use serde_json::{Value, json};
use sipload::{Call, Datagram, Gateway, GatewayConfig, LoadConfig, Mode, Uac, run_load};
use std::time::Duration;

const FR_TIMER_MS: u64 = 4000;
const FR_INV_TIMER_MS: u64 = 3000;
const WT_TIMER_MS: u64 = 2000;
/// Longest wait for a reply that must come promptly.
const STEP: Duration = Duration::from_secs(5);
/// Tolerance on the retransmission schedule (spec: ±150 ms; tm ticks are 62.5 ms).
const SCHEDULE_SLACK: f64 = 0.150;

/// The stateful route (spec §3.3 idiom without tmx). `GWPORT`/`GW2PORT` are the gateways;
/// without a second gateway there is no failure_route, so the winning reply is relayed.
fn stateful_route(gw2: Option<u16>) -> String {
    let mut route = format!(
        r#"loadmodule "tm.so"
modparam("tm", "fr_timer", {FR_TIMER_MS})
modparam("tm", "fr_inv_timer", {FR_INV_TIMER_MS})
modparam("tm", "wt_timer", {WT_TIMER_MS})
request_route {{
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (!is_method("ACK")) t_check_trans();
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) t_relay(); exit; }}
    }}
    if (is_method("INVITE")) record_route();
    $du = "sip:127.0.0.1:GWPORT";
    t_on_reply("R");
"#
    );
    if gw2.is_some() {
        route.push_str("    t_on_failure(\"F\");\n");
    }
    route.push_str(
        r#"    if (!t_relay()) sl_reply_error();
}
onreply_route[R] { if (status =~ "18[0-9]") append_hf("X-Reply: 1\r\n"); }
"#,
    );
    if let Some(port) = gw2 {
        route.push_str(&format!(
            r#"failure_route[F] {{
    if (t_is_canceled()) exit;
    append_hf("X-Failure: 1\r\n");
    $du = "sip:127.0.0.1:{port}";
    t_relay();
}}
"#
        ));
    }
    route
}

fn start_proxy(tag: &str, gw: &Gateway, gw2: Option<&Gateway>) -> Proxy {
    let cfg = ProxyCfg {
        children: 4,
        gateway_port: gw.port(),
        globals: Vec::new(),
        route: stateful_route(gw2.map(Gateway::port)),
        env: Vec::new(),
    };
    match Proxy::start(tag, cfg) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn gateway(mode: Mode) -> Gateway {
    Gateway::start(GatewayConfig::with_mode(mode)).expect("start gateway")
}

fn uac(proxy: &Proxy) -> Uac {
    Uac::bind(proxy.addr()).expect("bind uac")
}

fn ruri(proxy: &Proxy) -> String {
    format!("sip:one@{}", proxy.addr())
}

fn log_tail(proxy: &Proxy) -> String {
    let text = proxy.log_text();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A reply or request that must arrive; panics with the proxy log when it does not.
fn must<T>(what: &str, got: Result<Option<T>, sipload::SiploadError>, proxy: &Proxy) -> T {
    match got {
        Ok(Some(v)) => v,
        Ok(None) => panic!(
            "{what}: nothing arrived\n--- siplab log tail\n{}",
            log_tail(proxy)
        ),
        Err(e) => panic!("{what}: {e}"),
    }
}

fn first_lines(ds: &[Datagram]) -> Vec<String> {
    ds.iter().map(Datagram::first_line).collect()
}

/// Requests of one call that reached a gateway.
fn call_requests(gw: &Gateway, call: &Call, method: &str) -> Vec<Datagram> {
    gw.requests(method)
        .into_iter()
        .filter(|d| d.call_id() == Some(call.call_id.as_str()))
        .collect()
}

fn tm_stats(proxy: &Proxy) -> Value {
    match proxy.rpc("tm.stats", json!([])) {
        Ok(v) => v,
        Err(e) => panic!(
            "tm.stats failed: {e}\n--- siplab log tail\n{}",
            log_tail(proxy)
        ),
    }
}

fn stat(stats: &Value, name: &str) -> i64 {
    match stats.get(name).and_then(Value::as_i64) {
        Some(n) => n,
        None => panic!("tm.stats has no integer `{name}`: {stats}"),
    }
}

#[test]
fn tm_stateful_1000_basic_calls_succeed_and_every_transaction_is_freed_after_wt_timer() {
    let gw = gateway(Mode::Answer {
        ring_ms: Some(0),
        answer_ms: 0,
    });
    let proxy = start_proxy("tm-calls", &gw, None);
    let report =
        run_load(&LoadConfig::new(proxy.addr(), &ruri(&proxy), 1000, 200.0)).expect("load run");
    assert_eq!(
        (report.ok, report.failed),
        (1000, 0),
        "1,000 stateful calls must all succeed\n{report}\n--- siplab log tail\n{}",
        log_tail(&proxy)
    );
    assert_eq!(
        gw.requests("INVITE").len(),
        1000,
        "one INVITE per call at the gateway"
    );
    assert_eq!(gw.requests("BYE").len(), 1000);

    // Every transaction (1,000 INVITEs, 1,000 BYEs) is deleted wt_timer after completion.
    let mut last = Value::Null;
    let drained = wait_until(Duration::from_millis(WT_TIMER_MS + 6000), || {
        last = tm_stats(&proxy);
        stat(&last, "current") == 0
    });
    assert!(
        drained,
        "tm.stats current not back to 0 after wt_timer: {last}\n--- siplab log tail\n{}",
        log_tail(&proxy)
    );
    assert_eq!(stat(&last, "total"), 2000, "INVITE + BYE per call: {last}");
    assert_eq!(
        stat(&last, "2xx"),
        2000,
        "every transaction ended 2xx: {last}"
    );
    assert_eq!(
        stat(&last, "created"),
        stat(&last, "freed"),
        "created cells must all be freed: {last}"
    );
}

#[test]
fn tm_retransmitted_invite_is_absorbed_and_the_last_reply_180_is_resent() {
    let gw = gateway(Mode::Ring);
    let proxy = start_proxy("tm-retr", &gw, None);
    let mut uac = uac(&proxy);
    let call = uac.invite(&ruri(&proxy), &[]).expect("send INVITE");
    must(
        "180 relayed",
        uac.wait_status(&call, "INVITE", 180, STEP),
        &proxy,
    );
    // Anything else already queued (a 100) is not what the retransmission gets.
    uac.drain(Duration::from_millis(100)).expect("drain");

    uac.retransmit(&call).expect("retransmit INVITE");
    let after = uac.listen_for(Duration::from_millis(1000)).expect("listen");
    let codes: Vec<Option<u16>> = after.iter().map(Datagram::status).collect();
    assert_eq!(
        codes,
        vec![Some(180)],
        "the retransmission must get exactly the last reply sent upstream (180): {:?}\n--- siplab log tail\n{}",
        first_lines(&after),
        log_tail(&proxy)
    );
    let invites = call_requests(&gw, &call, "INVITE");
    assert_eq!(
        invites.len(),
        1,
        "the UAS must see one INVITE: {:?}",
        first_lines(&invites)
    );
}

#[test]
fn tm_ack_for_a_486_is_absorbed_and_stops_the_486_retransmissions() {
    let gw = gateway(Mode::Reject {
        code: 486,
        delay_ms: 0,
        ring: false,
    });
    let proxy = start_proxy("tm-ack486", &gw, None);
    let mut acking = uac(&proxy);
    let mut silent = uac(&proxy);
    let acked = acking.invite(&ruri(&proxy), &[]).expect("send INVITE");
    let unacked = silent.invite(&ruri(&proxy), &[]).expect("send INVITE");

    let busy = must(
        "486 relayed",
        acking.wait_final(&acked, "INVITE", STEP),
        &proxy,
    );
    assert_eq!(busy.status(), Some(486));
    acking.ack_non2xx(&acked, &busy).expect("send ACK");
    must(
        "486 relayed (control call)",
        silent.wait_final(&unacked, "INVITE", STEP),
        &proxy,
    );

    // Unacknowledged, tm retransmits the 486 at +0.5, +1.5 s (§6.3); acknowledged, never.
    let after_ack = acking
        .listen_for(Duration::from_millis(2500))
        .expect("listen");
    let control = silent
        .drain(Duration::from_millis(100))
        .expect("drain control");
    let repeats = |ds: &[Datagram]| ds.iter().filter(|d| d.status() == Some(486)).count();
    let gw_acks: Vec<String> = call_requests(&gw, &acked, "ACK")
        .iter()
        .map(|d| {
            format!(
                "{} ({} Via, {:?})",
                d.first_line(),
                d.via_count(),
                d.top_branch()
            )
        })
        .collect();
    assert_eq!(
        repeats(&after_ack),
        0,
        "486 retransmitted after the ACK: {:?}; ACKs at the gateway: {gw_acks:?}",
        first_lines(&after_ack)
    );
    assert!(
        repeats(&control) >= 2,
        "the control call without ACK must see 486 retransmissions (+0.5, +1.5 s), got {:?}",
        first_lines(&control)
    );

    // The gateway sees only tm's own hop-by-hop ACK (one Via, the INVITE's branch),
    // never the UAC's ACK forwarded.
    let invite = call_requests(&gw, &acked, "INVITE");
    let acks = call_requests(&gw, &acked, "ACK");
    assert_eq!(
        acks.len(),
        1,
        "ACKs at the gateway: {:?}",
        first_lines(&acks)
    );
    assert_eq!(
        acks[0].via_count(),
        1,
        "not tm's own ACK: {:?}",
        acks[0].first_line()
    );
    assert_eq!(acks[0].top_branch(), invite[0].top_branch());
}

#[test]
fn tm_silent_gateway_gets_invite_at_0_0_5_1_5_3_5_s_and_408_after_fr_timer() {
    let gw = gateway(Mode::Silent);
    let proxy = start_proxy("tm-silent", &gw, None);
    let mut uac = uac(&proxy);
    let call = uac.invite(&ruri(&proxy), &[]).expect("send INVITE");
    let timeout = must(
        "408 after fr_timer",
        uac.wait_final(&call, "INVITE", Duration::from_millis(FR_TIMER_MS + 3000)),
        &proxy,
    );
    assert_eq!(
        timeout.status(),
        Some(408),
        "final reply: {}",
        timeout.first_line()
    );
    let after = timeout.secs_since(call.sent_at);
    assert!(
        (3.85..=4.6).contains(&after),
        "408 came {after:.3} s after the INVITE, fr_timer is 4 s"
    );
    assert!(timeout.to_tag().is_some(), "local 408 needs a to-tag");
    uac.ack_non2xx(&call, &timeout).expect("ACK the 408");

    std::thread::sleep(Duration::from_millis(500));
    let invites = call_requests(&gw, &call, "INVITE");
    let first = invites.first().expect("INVITE reached the gateway").at;
    let offsets: Vec<f64> = invites.iter().map(|d| d.secs_since(first)).collect();
    let want = [0.0, 0.5, 1.5, 3.5];
    assert_eq!(
        offsets.len(),
        want.len(),
        "INVITE copies at {offsets:?}, want {want:?}"
    );
    for (got, want) in offsets.iter().zip(want) {
        assert!(
            (got - want).abs() <= SCHEDULE_SLACK,
            "INVITE copies at {offsets:?}, want {want:?} ±{SCHEDULE_SLACK}"
        );
    }
    assert!(
        call_requests(&gw, &call, "CANCEL").is_empty(),
        "no CANCEL without a provisional"
    );
}

#[test]
fn tm_ringing_gateway_gets_cancel_and_upstream_gets_408_after_fr_inv_timer() {
    let gw = gateway(Mode::Ring);
    let proxy = start_proxy("tm-ring", &gw, None);
    let mut uac = uac(&proxy);
    let call = uac.invite(&ruri(&proxy), &[]).expect("send INVITE");
    let ringing = must(
        "180 relayed",
        uac.wait_status(&call, "INVITE", 180, STEP),
        &proxy,
    );
    let timeout = must(
        "408 after fr_inv_timer",
        uac.wait_final(
            &call,
            "INVITE",
            Duration::from_millis(FR_INV_TIMER_MS + 3000),
        ),
        &proxy,
    );
    assert_eq!(
        timeout.status(),
        Some(408),
        "final reply: {}",
        timeout.first_line()
    );
    let after = timeout.secs_since(ringing.at);
    assert!(
        (2.85..=3.6).contains(&after),
        "408 came {after:.3} s after the 180, fr_inv_timer is 3 s"
    );
    uac.ack_non2xx(&call, &timeout).expect("ACK the 408");

    let cancel = gw
        .wait_for(STEP, |d| {
            d.is_request("CANCEL") && d.call_id() == Some(call.call_id.as_str())
        })
        .unwrap_or_else(|| panic!("no CANCEL downstream\n{}", log_tail(&proxy)));
    let invite = &call_requests(&gw, &call, "INVITE")[0];
    assert_eq!(
        cancel.top_branch(),
        invite.top_branch(),
        "CANCEL on the INVITE's branch"
    );
    assert!(
        cancel.headers("Reason").is_empty(),
        "a timeout CANCEL carries no Reason (E4): {:?}",
        cancel.headers("Reason")
    );
    let since_invite = cancel.secs_since(invite.at);
    assert!(
        (2.85..=3.6).contains(&since_invite),
        "CANCEL {since_invite:.3} s after the INVITE"
    );
    // The gateway's 487 ends its branch but is not relayed after the 408.
    let late = uac.listen_for(Duration::from_millis(700)).expect("listen");
    assert!(
        late.iter().all(|d| d.status() != Some(487)),
        "487 relayed after the 408: {:?}",
        first_lines(&late)
    );
}

#[test]
fn tm_gateway_503_becomes_500_service_unavailable_upstream() {
    let gw = gateway(Mode::Reject {
        code: 503,
        delay_ms: 0,
        ring: false,
    });
    let proxy = start_proxy("tm-503", &gw, None);
    let mut uac = uac(&proxy);
    let call = uac.invite(&ruri(&proxy), &[]).expect("send INVITE");
    let fin = must("final reply", uac.wait_final(&call, "INVITE", STEP), &proxy);
    assert_eq!(
        fin.first_line(),
        "SIP/2.0 500 Service Unavailable",
        "503 must be remapped (remap_503_500)"
    );
    let gw_tag = gw
        .sent()
        .iter()
        .find(|d| d.status() == Some(503))
        .and_then(|d| d.to_tag().map(str::to_string));
    assert!(fin.to_tag().is_some(), "the local 500 needs a to-tag");
    assert_ne!(
        fin.to_tag().map(str::to_string),
        gw_tag,
        "the 500 is built locally, not the gateway's reply"
    );
    uac.ack_non2xx(&call, &fin).expect("ACK the 500");
    let acks = gw.wait_count(STEP, 1, |d| {
        d.is_request("ACK") && d.call_id() == Some(call.call_id.as_str())
    });
    assert_eq!(acks.len(), 1, "tm ACKs the 503 hop by hop, once");
}

#[test]
fn tm_failure_route_relays_to_a_second_gateway_with_its_header_and_onreply_header_reaches_180() {
    let first = gateway(Mode::Reject {
        code: 486,
        delay_ms: 200,
        ring: true,
    });
    let second = gateway(Mode::Answer {
        ring_ms: None,
        answer_ms: 0,
    });
    let proxy = start_proxy("tm-failure", &first, Some(&second));
    let mut uac = uac(&proxy);
    let call = uac.invite(&ruri(&proxy), &[]).expect("send INVITE");

    let ringing = must(
        "180 relayed",
        uac.wait_status(&call, "INVITE", 180, STEP),
        &proxy,
    );
    assert_eq!(
        ringing.header("X-Reply"),
        Some("1"),
        "onreply_route's header must be in the relayed 180"
    );
    let ok = must("final reply", uac.wait_final(&call, "INVITE", STEP), &proxy);
    assert_eq!(
        ok.status(),
        Some(200),
        "the second gateway answers: got {}",
        ok.first_line()
    );
    assert!(
        ok.to_tag()
            .is_some_and(|t| t.starts_with(&format!("gw{}-", second.port()))),
        "the 200 comes from the second gateway: To tag {:?}",
        ok.to_tag()
    );
    uac.ack_2xx(&call, &ok).expect("ACK");
    uac.bye(&call, &ok).expect("BYE");
    let bye_ok = must("BYE reply", uac.wait_final(&call, "BYE", STEP), &proxy);
    assert_eq!(bye_ok.status(), Some(200));

    let first_invites = call_requests(&first, &call, "INVITE");
    assert_eq!(first_invites.len(), 1);
    assert!(
        !first_invites[0].has_header("X-Failure"),
        "the first branch was sent before failure_route ran"
    );
    let second_invites = call_requests(&second, &call, "INVITE");
    assert_eq!(
        second_invites.len(),
        1,
        "failure_route must relay once to the second gateway\n{}",
        log_tail(&proxy)
    );
    assert_eq!(second_invites[0].header("X-Failure"), Some("1"));
    assert_eq!(call_requests(&second, &call, "BYE").len(), 1);

    uac.drain(Duration::from_millis(200)).expect("drain");
    let all = uac.received();
    assert!(
        all.iter().all(|d| !d.has_header("X-Failure")),
        "a reply upstream carries failure_route's header: {:?}",
        all.iter()
            .filter(|d| d.has_header("X-Failure"))
            .map(|d| d.first_line())
            .collect::<Vec<_>>()
    );
    assert!(
        all.iter().all(|d| d.status() != Some(486)),
        "the 486 must not be relayed when failure_route forwards again"
    );
}
