//! rsip, an independent parser, must agree with sip-msg on the fields a proxy keys on
//! (method or status, Request-URI user/host/port, Call-ID, CSeq, From/To tags, top-Via
//! branch) for every message rsip accepts: the corpus and generated messages.

mod common;

use proptest::prelude::*;
use rsip::headers::UntypedHeader;
use rsip::prelude::{HeadersExt, ToTypedHeader};
use sip_msg::Message;

/// The fields compared, as strings, read by one parser.
#[derive(Debug, PartialEq, Eq)]
struct KeyFields {
    start: String,
    /// The Request-URI as text, and its port.
    uri: Option<(String, Option<u16>)>,
    call_id: String,
    cseq: (u32, String),
    from_tag: Option<String>,
    to_tag: Option<String>,
    branch: Option<String>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ours(bytes: &[u8]) -> Option<KeyFields> {
    let m = Message::parse_slice(bytes).ok()?;
    let start = match m.status_code() {
        Some(code) => code.to_string(),
        None => text(m.method_bytes()?),
    };
    let uri = if m.is_request() {
        let uri = m.request_uri().ok()?;
        Some((text(uri.raw), uri.port.filter(|_| uri.is_sip())))
    } else {
        None
    };
    let cseq = m.cseq().ok()?;
    Some(KeyFields {
        start,
        uri,
        call_id: text(m.call_id().ok()?),
        cseq: (cseq.number, text(cseq.method)),
        from_tag: m.from().ok()?.tag().map(text),
        to_tag: m.to().ok()?.tag().map(text),
        branch: m.top_via().ok()?.branch().map(text),
    })
}

fn theirs(bytes: &[u8]) -> Option<KeyFields> {
    let msg = rsip::SipMessage::try_from(bytes).ok()?;
    // rsip folds a user containing '.' into the host, so the URI is compared as a whole
    // (its Display re-prints what it parsed) plus the port.
    let (start, uri) = match &msg {
        rsip::SipMessage::Request(r) => {
            // Ports are compared for sip/sips only: other schemes stay opaque here.
            let sip = matches!(r.uri.scheme, Some(rsip::Scheme::Sip | rsip::Scheme::Sips));
            let port = r
                .uri
                .host_with_port
                .port
                .as_ref()
                .map(|p| *p.value())
                .filter(|_| sip);
            (r.method.to_string(), Some((r.uri.to_string(), port)))
        }
        rsip::SipMessage::Response(r) => (r.status_code.code().to_string(), None),
    };
    let cseq = msg.cseq_header().ok()?.typed().ok()?;
    let from = msg.from_header().ok()?.typed().ok()?;
    let to = msg.to_header().ok()?.typed().ok()?;
    let via = msg.via_header().ok()?.typed().ok()?;
    Some(KeyFields {
        start,
        uri,
        call_id: msg.call_id_header().ok()?.value().trim().to_owned(),
        cseq: (cseq.seq, cseq.method.to_string()),
        from_tag: from.tag().map(ToString::to_string),
        to_tag: to.tag().map(ToString::to_string),
        branch: via.branch().map(ToString::to_string),
    })
}

/// Returns true when rsip accepted the message (and then asserts agreement).
fn agree(name: &str, bytes: &[u8]) -> bool {
    let Some(expected) = theirs(bytes) else {
        return false;
    };
    let got = ours(bytes).unwrap_or_else(|| panic!("{name}: rsip accepts it but sip-msg does not"));
    assert_eq!(got, expected, "{name}: sip-msg and rsip disagree");
    true
}

#[test]
fn rsip_agrees_on_corpus() {
    let manifest = std::fs::read_to_string(common::corpus_dir().join("MANIFEST.tsv")).unwrap();
    let invalid: Vec<&str> = manifest
        .lines()
        .filter(|l| l.split('\t').nth(2) == Some("invalid"))
        .filter_map(|l| l.split('\t').next())
        .collect();
    let mut compared = Vec::new();
    for (file, bytes) in common::corpus_messages() {
        // rsip is laxer than RFC 4475 on some invalid messages (e.g. badinv01's ";;,;,,"
        // Via); there the manifest outcome, checked in rfc4475.rs, is the reference.
        if invalid.contains(&file.as_str()) && ours(&bytes).is_none() {
            continue;
        }
        if agree(&file, &bytes) {
            compared.push(file);
        }
    }
    eprintln!(
        "rsip oracle compared {} corpus messages: {compared:?}",
        compared.len()
    );
    // rsip rejects folded and compact forms; enough plain messages remain to mean something.
    assert!(
        compared.len() >= 10,
        "only {} corpus messages compared: {compared:?}",
        compared.len()
    );
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,2}",
        (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
    ]
}

prop_compose! {
    fn request()(
        method in prop_oneof![Just("INVITE"), Just("OPTIONS"), Just("BYE"), Just("REGISTER"), Just("MESSAGE")],
        user in "[a-z][a-z0-9_.]{0,10}",
        rhost in host(),
        port in proptest::option::of(1024u16..65535),
        vhost in host(),
        branch in "[a-zA-Z0-9]{1,16}",
        ftag in token(),
        ttag in proptest::option::of(token()),
        call_id in "[a-zA-Z0-9]{1,20}(@[a-z0-9.]{1,12})?",
        cseq in any::<u32>(),
        body in "[a-z0-9=\\r\\n ]{0,40}",
    ) -> Vec<u8> {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let to_tag = ttag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:{user}@{rhost}{port} SIP/2.0\r\n\
Via: SIP/2.0/UDP {vhost}:5060;branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag={ftag}\r\n\
To: <sip:{user}@{rhost}>{to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

prop_compose! {
    fn response()(code in 100u16..700, req in request()) -> Vec<u8> {
        let text = String::from_utf8(req).unwrap();
        let (_, rest) = text.split_once("\r\n").unwrap();
        format!("SIP/2.0 {code} Some Reason\r\n{rest}").into_bytes()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rsip_agrees_on_generated_requests(msg in request()) {
        prop_assert!(agree("generated request", &msg), "rsip rejected a plain request");
    }

    #[test]
    fn rsip_agrees_on_generated_responses(msg in response()) {
        prop_assert!(agree("generated response", &msg), "rsip rejected a plain response");
    }
}
