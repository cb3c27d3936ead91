//! The peers against each other, no proxy in the path: the UAC sends straight to the
//! gateway, so every reply and ACK/BYE goes directly between them.

use sipload::{Gateway, GatewayConfig, LoadConfig, Mode, SiploadError, Uac, run_load};
use std::time::Duration;

type TestResult = Result<(), SiploadError>;

const STEP: Duration = Duration::from_secs(5);

fn gateway(mode: Mode) -> Gateway {
    Gateway::start(GatewayConfig::with_mode(mode)).expect("start gateway")
}

fn ruri(gw: &Gateway) -> String {
    format!("sip:callee@{}", gw.addr())
}

#[test]
fn basic_call_invite_200_ack_bye_completes() -> TestResult {
    let gw = gateway(Mode::Answer {
        ring_ms: Some(0),
        answer_ms: 50,
    });
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.invite(&ruri(&gw), &["X-Test: basic"])?;
    let ringing = uac.wait_status(&call, "INVITE", 180, STEP)?.expect("180");
    let ok = uac.wait_final(&call, "INVITE", STEP)?.expect("final");
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.to_tag(), ringing.to_tag(), "one dialog, one to-tag");
    uac.ack_2xx(&call, &ok)?;
    uac.bye(&call, &ok)?;
    let bye_ok = uac.wait_final(&call, "BYE", STEP)?.expect("BYE reply");
    assert_eq!(bye_ok.status(), Some(200));

    let invites = gw.requests("INVITE");
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0].header("X-Test"), Some("basic"));
    let ack = gw.wait_for(STEP, |d| d.is_request("ACK")).expect("ACK");
    assert_ne!(
        ack.top_branch(),
        invites[0].top_branch(),
        "2xx ACK is a new transaction"
    );
    assert_eq!(ack.to_tag(), ok.to_tag());
    assert_eq!(gw.requests("BYE").len(), 1);
    Ok(())
}

#[test]
fn cancel_gets_200_then_487_and_the_reason_reaches_the_gateway() -> TestResult {
    let gw = gateway(Mode::Ring);
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.invite(&ruri(&gw), &[])?;
    uac.wait_status(&call, "INVITE", 180, STEP)?.expect("180");
    let reason = r#"Reason: Q.850;cause=16;text="Normal call clearing""#;
    uac.cancel(&call, &[reason])?;
    let cancel_ok = uac
        .wait_final(&call, "CANCEL", STEP)?
        .expect("CANCEL reply");
    assert_eq!(cancel_ok.status(), Some(200));
    let terminated = uac
        .wait_final(&call, "INVITE", STEP)?
        .expect("INVITE final");
    assert_eq!(terminated.status(), Some(487));
    uac.ack_non2xx(&call, &terminated)?;

    let cancel = gw
        .wait_for(STEP, |d| d.is_request("CANCEL"))
        .expect("CANCEL");
    assert_eq!(cancel.top_branch(), Some(call.branch.as_str()));
    assert_eq!(
        cancel.headers("Reason"),
        vec![r#"Q.850;cause=16;text="Normal call clearing""#]
    );
    let ack = gw.wait_for(STEP, |d| d.is_request("ACK")).expect("ACK");
    assert_eq!(
        ack.top_branch(),
        Some(call.branch.as_str()),
        "non-2xx ACK keeps the branch"
    );
    assert_eq!(ack.to_tag(), terminated.to_tag());
    Ok(())
}

#[test]
fn cancel_for_an_unknown_invite_gets_481() -> TestResult {
    let gw = gateway(Mode::Ring);
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.new_request("INVITE", &ruri(&gw), &[])?;
    uac.cancel(&call, &[])?;
    let reply = uac
        .wait_final(&call, "CANCEL", STEP)?
        .expect("CANCEL reply");
    assert_eq!(reply.status(), Some(481));
    Ok(())
}

#[test]
fn ringing_reject_sends_180_then_the_code_and_silent_sends_nothing() -> TestResult {
    let gw = gateway(Mode::Silent);
    let mut uac = Uac::bind(gw.addr())?;
    let silent = uac.invite(&ruri(&gw), &[])?;
    let rejected = uac.new_request("INVITE", &ruri(&gw), &[])?;
    gw.set_call_mode(
        &rejected.call_id,
        Mode::Reject {
            code: 486,
            delay_ms: 100,
            ring: true,
        },
    );
    uac.retransmit(&rejected)?;
    uac.wait_status(&rejected, "INVITE", 180, STEP)?
        .expect("180");
    let busy = uac.wait_final(&rejected, "INVITE", STEP)?.expect("486");
    assert_eq!(
        (busy.status(), busy.reason()),
        (Some(486), Some("Busy Here"))
    );
    let replies = uac.listen_for(Duration::from_millis(300))?;
    assert!(
        uac.received()
            .iter()
            .all(|d| d.call_id() != Some(silent.call_id.as_str())),
        "silent gateway answered: {replies:?}"
    );
    assert_eq!(gw.requests("INVITE").len(), 2);
    Ok(())
}

#[test]
fn retransmitted_invite_gets_the_last_reply_again_and_copies_are_recorded() -> TestResult {
    let gw = gateway(Mode::Ring);
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.invite(&ruri(&gw), &[])?;
    uac.schedule_copies(
        &call,
        &[Duration::from_millis(100), Duration::from_millis(200)],
    );
    let got = uac.listen_for(Duration::from_millis(600))?;
    let ringing = got.iter().filter(|d| d.status() == Some(180)).count();
    assert_eq!(ringing, 3, "one 180 per copy: {got:?}");
    let invites = gw.requests("INVITE");
    assert_eq!(invites.len(), 3);
    assert!(invites.windows(2).all(|w| w[0].at <= w[1].at));
    Ok(())
}

#[test]
fn reject_then_answer_rejects_the_first_branch_and_answers_the_next() -> TestResult {
    let gw = gateway(Mode::RejectThenAnswer { code: 503 });
    let mut uac = Uac::bind(gw.addr())?;
    let first = uac.invite(&ruri(&gw), &[])?;
    let rejected = uac
        .wait_final(&first, "INVITE", STEP)?
        .expect("first final");
    assert_eq!(rejected.status(), Some(503));
    uac.ack_non2xx(&first, &rejected)?;
    let second = uac.new_branch(&first)?;
    assert_eq!(second.call_id, first.call_id);
    let ok = uac
        .wait_final(&second, "INVITE", STEP)?
        .expect("second final");
    assert_eq!(ok.status(), Some(200));
    assert_ne!(
        ok.to_tag(),
        rejected.to_tag(),
        "a new transaction, a new to-tag"
    );
    Ok(())
}

#[test]
fn options_are_answered_with_the_configured_code() -> TestResult {
    let gw = Gateway::start(GatewayConfig {
        options_code: 404,
        ..GatewayConfig::default()
    })?;
    let mut uac = Uac::bind(gw.addr())?;
    let ping = uac.request("OPTIONS", &ruri(&gw), &[])?;
    let reply = uac.wait_final(&ping, "OPTIONS", STEP)?.expect("reply");
    assert_eq!(reply.status(), Some(404));
    Ok(())
}

#[test]
fn final_replies_are_retransmitted_until_the_ack_when_asked() -> TestResult {
    let gw = Gateway::start(GatewayConfig {
        retransmit_finals: true,
        ..GatewayConfig::with_mode(Mode::Reject {
            code: 486,
            delay_ms: 0,
            ring: false,
        })
    })?;
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.invite(&ruri(&gw), &[])?;
    // T1 = 500 ms: the 486 comes again at +0.5 s and +1.5 s without an ACK.
    let first = uac.wait_final(&call, "INVITE", STEP)?.expect("486");
    let again = uac
        .wait_final(&call, "INVITE", STEP)?
        .expect("486 retransmission");
    assert_eq!(again.bytes, first.bytes);
    uac.ack_non2xx(&call, &first)?;
    gw.wait_for(STEP, |d| d.is_request("ACK")).expect("ACK");
    let after_ack = uac.listen_for(Duration::from_millis(1500))?;
    assert!(
        after_ack.is_empty(),
        "retransmitted after the ACK: {after_ack:?}"
    );
    Ok(())
}

#[test]
fn dropping_everything_loses_every_request() -> TestResult {
    let gw = Gateway::start(GatewayConfig {
        drop_rate: 1.0,
        ..GatewayConfig::default()
    })?;
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.invite(&ruri(&gw), &[])?;
    assert!(
        uac.wait_final(&call, "INVITE", Duration::from_millis(300))?
            .is_none()
    );
    assert!(gw.received().is_empty());
    assert_eq!(gw.dropped(), 1);
    Ok(())
}

#[test]
fn load_run_completes_every_call_against_an_answering_gateway() -> TestResult {
    let gw = gateway(Mode::Answer {
        ring_ms: Some(0),
        answer_ms: 0,
    });
    let report = run_load(&LoadConfig::new(gw.addr(), &ruri(&gw), 50, 500.0))?;
    assert_eq!((report.ok, report.failed), (50, 0), "{report}");
    assert_eq!(report.setup.count(), 50);
    assert_eq!(gw.requests("INVITE").len(), 50);
    assert_eq!(gw.requests("ACK").len(), 50);
    assert_eq!(gw.requests("BYE").len(), 50);
    Ok(())
}

#[test]
fn load_run_counts_rejected_and_unanswered_calls_as_failed() -> TestResult {
    let busy = gateway(Mode::Reject {
        code: 486,
        delay_ms: 0,
        ring: false,
    });
    let report = run_load(&LoadConfig::new(busy.addr(), &ruri(&busy), 3, 100.0))?;
    assert_eq!((report.ok, report.failed), (0, 3), "{report}");
    assert!(
        report.failures.iter().all(|f| f.contains("486")),
        "{report}"
    );
    // The non-2xx ACK is sent for each rejected call.
    assert_eq!(busy.wait_count(STEP, 3, |d| d.is_request("ACK")).len(), 3);

    let silent = gateway(Mode::Silent);
    let cfg = LoadConfig {
        call_timeout: Duration::from_millis(700),
        ..LoadConfig::new(silent.addr(), &ruri(&silent), 2, 100.0)
    };
    let report = run_load(&cfg)?;
    assert_eq!((report.ok, report.failed), (0, 2), "{report}");
    // Timer A: the INVITE went again at +0.5 s.
    assert!(silent.requests("INVITE").len() >= 4);
    Ok(())
}

#[test]
fn a_scheduled_cancel_goes_out_while_waiting_and_ends_the_call_with_487() -> TestResult {
    let gw = gateway(Mode::Ring);
    let mut uac = Uac::bind(gw.addr())?;
    let call = uac.invite(&ruri(&gw), &[])?;
    let cancel = uac.build_cancel(&call, &[])?;
    uac.schedule(call.sent_at + Duration::from_millis(200), cancel);
    let fin = uac
        .wait_final(&call, "INVITE", STEP)?
        .expect("INVITE final");
    assert_eq!(fin.status(), Some(487));
    let cancel = gw
        .wait_for(STEP, |d| d.is_request("CANCEL"))
        .expect("CANCEL");
    assert!(cancel.headers("Reason").is_empty());
    let ringing = gw
        .sent()
        .into_iter()
        .find(|d| d.status() == Some(180))
        .expect("180 sent");
    assert!(cancel.at >= ringing.at, "the CANCEL waited for its time");
    Ok(())
}
