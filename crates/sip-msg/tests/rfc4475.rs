//! Every RFC 4475 torture message gives, at the message layer, the outcome its
//! MANIFEST.tsv line describes. A corpus file missing from the table fails the test.

mod common;

use sip_msg::build::{ReplyOpts, build_reply};
use sip_msg::{Contact, EditList, HeaderName, Host, Message, Method, Scheme};

/// What a corpus file must give.
enum Expect {
    /// Parses, passes `validate()`, and the named fields check out.
    Valid(fn(&Message)),
    /// Parses, the named fields check out, and `validate()` fails with this status.
    Invalid(u16, fn(&Message)),
    /// `parse` fails with this status; the partial message (when the check is given) is
    /// good enough to build the error reply.
    ParseFails(u16, Option<fn(&Message)>),
}

use Expect::*;

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn contact_addrs(m: &Message) -> Vec<sip_msg::NameAddr<'_>> {
    m.contacts()
        .map(|c| match c.unwrap() {
            Contact::Addr(a) => a,
            Contact::Star => panic!("unexpected Contact: *"),
        })
        .collect()
}

/// The headers an error reply needs are usable.
fn reply_ready(m: &Message) {
    m.top_via().unwrap();
    m.call_id().unwrap();
    m.cseq().unwrap();
    m.from().unwrap();
    m.to().unwrap();
}

fn table() -> Vec<(&'static str, Expect)> {
    vec![
        (
            "wsinv.dat",
            Valid(|m| {
                assert_eq!(m.method(), Some(Method::Invite));
                assert_eq!(m.request_uri().unwrap().param(b"unknownparam"), Some(None));
                assert_eq!(m.max_forwards().unwrap(), Some(68));
                let cseq = m.cseq().unwrap();
                assert_eq!((cseq.number, cseq.method), (9, &b"INVITE"[..]));
                let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
                assert_eq!(vias.len(), 3);
                assert_eq!(
                    (vias[0].transport, vias[0].branch()),
                    (&b"UDP"[..], Some(&b"390skdjuw"[..]))
                );
                assert_eq!(vias[0].host, Host::Ipv4("192.0.2.2".parse().unwrap()));
                assert_eq!(
                    (vias[1].transport, vias[1].branch()),
                    (&b"TCP"[..], Some(&b"z9hG4bK9ikj8"[..]))
                );
                assert_eq!(vias[1].host, Host::Name(b"spindle.example.com"));
                assert_eq!(
                    (vias[2].transport, vias[2].branch()),
                    (&b"UDP"[..], Some(&b"z9hG4bK30239"[..]))
                );
                assert_eq!(m.to().unwrap().tag(), Some(&b"1918181833n"[..]));
                let from = m.from().unwrap();
                assert_eq!(from.tag(), Some(&b"98asjd8"[..]));
                assert_eq!(from.display(), Some(&br#"J Rosenberg \\\""#[..]));
                assert_eq!(m.call_id().unwrap(), b"wsinv.ndaksdj@192.0.2.1");
                let contacts = contact_addrs(m);
                assert_eq!(contacts.len(), 1);
                assert_eq!(contacts[0].param(b"newparam"), Some(Some(&b"newvalue"[..])));
                assert_eq!(contacts[0].param(b"q"), Some(Some(&b"0.33"[..])));
                assert_eq!(m.routes().count(), 1);
                assert_eq!(m.header_value(HeaderName::Subject), Some(&b""[..]));
                assert_eq!(m.content_length(), Some(150));
                assert_eq!(m.body().len(), 150);
            }),
        ),
        (
            "intmeth.dat",
            Valid(|m| {
                assert!(matches!(m.method(), Some(Method::Other(_))));
                assert_eq!(
                    m.method_bytes(),
                    Some(&b"!interesting-Method0123456789_*+`.%indeed'~"[..])
                );
                let uri = m.request_uri().unwrap();
                assert_eq!(
                    uri.user,
                    Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
                );
                assert_eq!(
                    uri.password,
                    Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
                );
                assert_eq!(uri.host, Some(Host::Name(b"example.com")));
                assert_eq!(
                    m.to().unwrap().display(),
                    Some(&b"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"[..])
                );
                assert_eq!(m.from().unwrap().tag(), Some(&b"_token~1'+`*%!-."[..]));
                assert_eq!(m.headers_named(b"extensionHeader-!.%*+_`'~").count(), 1);
            }),
        ),
        (
            "esc01.dat",
            Valid(|m| {
                let uri = m.request_uri().unwrap();
                assert_eq!(uri.user, Some(&b"sips%3Auser%40example.com"[..]));
                assert_eq!(uri.host, Some(Host::Name(b"example.net")));
                assert_eq!(m.to().unwrap().uri.user, Some(&b"%75se%72"[..]));
                assert_eq!(m.from().unwrap().uri.user, Some(&b"I%20have%20spaces"[..]));
                let c = contact_addrs(m);
                assert_eq!(c.len(), 1);
                assert_eq!(
                    c[0].uri.param(b"n%61me"),
                    Some(Some(&b"v%61lue%25%34%31"[..]))
                );
                assert_eq!(c[0].uri.param(b"%6C%72"), Some(None));
                assert_eq!(m.content_type().unwrap().unwrap().subtype, b"sdp");
            }),
        ),
        (
            "escnull.dat",
            Valid(|m| {
                assert_eq!(m.method(), Some(Method::Register));
                assert_eq!(m.to().unwrap().uri.user, Some(&b"null-%00-null"[..]));
                let users: Vec<_> = contact_addrs(m)
                    .iter()
                    .map(|c| c.uri.user.unwrap())
                    .collect();
                assert_eq!(users, vec![&b"%00"[..], &b"%00%00"[..]]);
            }),
        ),
        (
            "esc02.dat",
            Valid(|m| {
                assert!(matches!(m.method(), Some(Method::Other(_))));
                assert_eq!(m.method_bytes(), Some(&b"RE%47IST%45R"[..]));
                assert_eq!(m.cseq().unwrap().method, b"RE%47IST%45R");
                assert_eq!(
                    m.top_via().unwrap().branch(),
                    Some(&b"z9hG4bK209%fzsnel234"[..])
                );
                assert_eq!(m.to().unwrap().display(), Some(&b"%Z%45"[..]));
                assert_eq!(contact_addrs(m).len(), 2);
                assert_eq!(m.headers_named(b"C%6Fntact").count(), 1);
            }),
        ),
        (
            "lwsdisp.dat",
            Valid(|m| {
                let from = m.from().unwrap();
                assert_eq!(from.display(), Some(&b"caller"[..]));
                assert_eq!(from.tag(), Some(&b"323"[..]));
            }),
        ),
        (
            "longreq.dat",
            Valid(|m| {
                assert_eq!(m.vias().count(), 34);
                assert!(m.vias().all(|v| v.is_ok()));
                let to = m.to().unwrap();
                assert_eq!(to.uri.port, Some(6000));
                assert_eq!(to.uri.param(b"longparamnamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamename"), Some(Some(&b"shortvalue"[..])));
                assert!(m.call_id().unwrap().len() > 100);
                assert_eq!(m.body().len(), 150);
            }),
        ),
        (
            "dblreq.dat",
            Valid(|m| {
                assert_eq!(m.method(), Some(Method::Register));
                assert_eq!(m.body(), b"");
                assert!((m.body_span().end as usize) < m.as_bytes().len());
                let printed = m.to_bytes(&EditList::new());
                assert!(
                    !printed.windows(6).any(|w| w == b"INVITE"),
                    "trailing INVITE must be dropped"
                );
            }),
        ),
        (
            "semiuri.dat",
            Valid(|m| {
                let uri = m.request_uri().unwrap();
                assert_eq!(uri.user, Some(&b"user;par=u%40example.net"[..]));
                assert_eq!(uri.host, Some(Host::Name(b"example.com")));
                assert_eq!(uri.params.iter().count(), 0);
                assert_eq!(m.header_values(HeaderName::Accept).count(), 6);
            }),
        ),
        (
            "transports.dat",
            Valid(|m| {
                let t: Vec<_> = m
                    .vias()
                    .map(|v| s(v.unwrap().transport).to_owned())
                    .collect();
                assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
            }),
        ),
        (
            "mpart01.dat",
            Valid(|m| {
                let raw = m.as_bytes();
                let blank = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                assert_eq!(m.content_length(), Some(553));
                assert_eq!(m.body(), &raw[blank..blank + 553]);
                assert!(m.body().contains(&0) || m.body().contains(&b'\r'));
                let ct = m.content_type().unwrap().unwrap();
                assert_eq!(
                    (ct.media_type, ct.subtype),
                    (&b"multipart"[..], &b"mixed"[..])
                );
                assert_eq!(
                    ct.params.get(b"boundary"),
                    Some(Some(&b"7a9cbec02ceef655"[..]))
                );
                assert_eq!(m.top_via().unwrap().rport(), Some(None));
            }),
        ),
        (
            "unreason.dat",
            Valid(|m| {
                assert_eq!(m.status_code(), Some(200));
                assert!(m.reason_phrase().unwrap().starts_with(b"= 2**3 * 5**2 "));
                assert!(m.reason_phrase().unwrap().len() > 20);
            }),
        ),
        (
            "noreason.dat",
            Valid(|m| {
                assert_eq!(m.status_code(), Some(100));
                assert_eq!(m.reason_phrase(), Some(&b""[..]));
            }),
        ),
        (
            "badinv01.dat",
            Invalid(400, |m| {
                assert!(m.top_via().is_err());
                assert!(m.contacts().next().unwrap().is_err());
            }),
        ),
        ("clerr.dat", ParseFails(400, Some(reply_ready))),
        ("ncl.dat", ParseFails(400, Some(reply_ready))),
        (
            "scalar02.dat",
            Invalid(400, |m| {
                assert_eq!(m.cseq().unwrap_err().status, 400);
                assert_eq!(m.max_forwards().unwrap(), Some(300));
                assert_eq!(m.expires().unwrap(), Some(u32::MAX));
            }),
        ),
        (
            "scalarlg.dat",
            Invalid(400, |m| {
                assert_eq!(m.status_code(), Some(503));
                assert_eq!(m.cseq().unwrap_err().status, 400);
            }),
        ),
        (
            "quotbal.dat",
            Invalid(400, |m| {
                assert_eq!(m.to().unwrap_err().status, 400);
                m.from().unwrap();
            }),
        ),
        ("ltgtruri.dat", ParseFails(400, Some(reply_ready))),
        ("lwsruri.dat", ParseFails(400, Some(reply_ready))),
        ("lwsstart.dat", ParseFails(400, Some(reply_ready))),
        // Strict ABNF: trailing SP after the version is rejected.
        ("trws.dat", ParseFails(400, Some(reply_ready))),
        // Tolerant: parsed and routable; the escaped header is exposed so it is never acted on.
        (
            "escruri.dat",
            Valid(|m| {
                assert_eq!(
                    m.request_uri().unwrap().headers,
                    Some(&b"Route=%3Csip:example.com%3E"[..])
                );
            }),
        ),
        (
            "baddate.dat",
            Valid(|m| {
                assert!(m.header_value(HeaderName::Date).unwrap().ends_with(b"EST"));
            }),
        ),
        (
            "regbadct.dat",
            Valid(|m| {
                let c = contact_addrs(m);
                assert_eq!(c.len(), 1);
                assert!(!c[0].angle);
                assert_eq!(
                    c[0].uri.headers,
                    Some(&b"Route=%3Csip:sip.example.com%3E"[..])
                );
            }),
        ),
        (
            "badaspec.dat",
            Valid(|m| {
                assert_eq!(m.to().unwrap().uri.raw, b"sip:t.watson@example.org");
            }),
        ),
        (
            "baddn.dat",
            Valid(|m| {
                let from = m.from().unwrap();
                assert_eq!(from.display(), Some(&b"Bell, Alexander"[..]));
                assert_eq!(from.tag(), Some(&b"43"[..]));
                assert_eq!(m.header_values(HeaderName::From).count(), 1);
                assert_eq!(m.to().unwrap().display(), Some(&b"Watson, Thomas"[..]));
            }),
        ),
        (
            "badvers.dat",
            ParseFails(
                505,
                Some(|m| {
                    reply_ready(m);
                    let reply = build_reply(
                        m,
                        505,
                        b"Version Not Supported",
                        &ReplyOpts {
                            to_tag: Some(b"t1"),
                            ..ReplyOpts::default()
                        },
                    );
                    let reply = Message::parse(reply).unwrap();
                    assert_eq!(reply.status_code(), Some(505));
                    assert_eq!(reply.call_id().unwrap(), b"badvers.31417@c.example.com");
                    assert_eq!(reply.to().unwrap().tag(), Some(&b"t1"[..]));
                }),
            ),
        ),
        (
            "mismatch01.dat",
            Invalid(400, |m| {
                assert_eq!(m.method(), Some(Method::Options));
                assert_eq!(m.cseq().unwrap().method, b"INVITE");
            }),
        ),
        (
            "mismatch02.dat",
            Invalid(400, |m| {
                assert_eq!(m.method_bytes(), Some(&b"NEWMETHOD"[..]));
                assert!(matches!(m.method(), Some(Method::Other(_))));
            }),
        ),
        ("bigcode.dat", ParseFails(400, None)),
        (
            "badbranch.dat",
            Valid(|m| {
                assert_eq!(m.top_via().unwrap().branch(), Some(&b"z9hG4bK"[..]));
            }),
        ),
        (
            "insuf.dat",
            Invalid(400, |m| {
                assert!(m.call_id().is_err() && m.from().is_err() && m.to().is_err());
                assert_eq!(m.max_forwards().unwrap(), None);
            }),
        ),
        (
            "unkscm.dat",
            Valid(|m| {
                let uri = m.request_uri().unwrap();
                assert_eq!(uri.scheme, Scheme::Other);
                assert_eq!(uri.scheme_raw, b"nobodyKnowsThisScheme");
                assert_eq!(uri.opaque, b"totallyopaquecontent");
            }),
        ),
        (
            "novelsc.dat",
            Valid(|m| {
                let uri = m.request_uri().unwrap();
                assert_eq!(
                    (uri.scheme, uri.scheme_raw),
                    (Scheme::Other, &b"soap.beep"[..])
                );
            }),
        ),
        (
            "unksm2.dat",
            Valid(|m| {
                assert_eq!(m.to().unwrap().uri.scheme_raw, b"isbn");
                assert_eq!(m.from().unwrap().uri.scheme_raw, b"http");
                assert_eq!(contact_addrs(m)[0].uri.scheme_raw, b"name");
            }),
        ),
        (
            "bext01.dat",
            Valid(|m| {
                let tags: Vec<_> = m.proxy_require().collect();
                assert_eq!(
                    tags,
                    vec![
                        &b"noProxiesSupportThis"[..],
                        &b"norDoAnyProxiesSupportThis"[..]
                    ]
                );
                assert_eq!(m.require().count(), 2);
            }),
        ),
        (
            "invut.dat",
            Valid(|m| {
                assert_eq!(m.content_type().unwrap().unwrap().subtype, b"unknownformat");
                assert_eq!(m.body().len() as u32, m.content_length().unwrap());
            }),
        ),
        (
            "regaut01.dat",
            Valid(|m| {
                assert!(m.header(HeaderName::Authorization).is_some());
            }),
        ),
        (
            "multi01.dat",
            Invalid(400, |m| {
                assert_eq!(m.headers_of(HeaderName::CSeq).count(), 2);
                assert_eq!(contact_addrs(m).len(), 2);
            }),
        ),
        ("mcl01.dat", ParseFails(400, Some(reply_ready))),
        (
            "bcast.dat",
            Valid(|m| {
                let second = m.vias().nth(1).unwrap().unwrap();
                assert_eq!(second.host, Host::Ipv4("255.255.255.255".parse().unwrap()));
            }),
        ),
        (
            "zeromf.dat",
            Valid(|m| {
                assert_eq!(m.max_forwards().unwrap(), Some(0));
            }),
        ),
        (
            "cparam01.dat",
            Valid(|m| {
                let c = contact_addrs(m);
                assert!(!c[0].angle);
                assert_eq!(c[0].param(b"unknownparam"), Some(None));
                assert_eq!(c[0].uri.params.iter().count(), 0);
            }),
        ),
        (
            "cparam02.dat",
            Valid(|m| {
                let c = contact_addrs(m);
                assert!(c[0].angle);
                assert_eq!(c[0].uri.param(b"unknownparam"), Some(None));
                assert_eq!(c[0].params.iter().count(), 0);
            }),
        ),
        (
            "regescrt.dat",
            Valid(|m| {
                let c = contact_addrs(m);
                assert_eq!(
                    c[0].uri.headers,
                    Some(&b"Route=%3Csip:sip.example.com%3E"[..])
                );
            }),
        ),
        (
            "sdp01.dat",
            Valid(|m| {
                assert_eq!(
                    m.header_value(HeaderName::Accept),
                    Some(&b"text/nobodyKnowsThis"[..])
                );
                assert_eq!(m.content_type().unwrap().unwrap().subtype, b"sdp");
            }),
        ),
        (
            "inv2543.dat",
            Valid(|m| {
                assert_eq!(m.top_via().unwrap().branch(), None);
                assert_eq!(m.max_forwards().unwrap(), None);
                assert_eq!(m.content_length(), None);
                assert!(m.body().starts_with(b"v=0"));
                assert_eq!(m.body_span().end as usize, m.as_bytes().len());
                let rr = m.record_routes().next().unwrap().unwrap();
                assert_eq!(rr.uri.param(b"maddr"), Some(Some(&b"ss1.example.com"[..])));
            }),
        ),
        ("test.dat", ParseFails(400, None)),
    ]
}

#[test]
fn every_corpus_file_gives_its_manifest_outcome() {
    let manifest = std::fs::read_to_string(common::corpus_dir().join("MANIFEST.tsv")).unwrap();
    let manifest_files: Vec<&str> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .collect();
    let table = table();
    let mut checked = 0;
    for (file, bytes) in common::corpus_messages() {
        assert!(
            manifest_files.contains(&file.as_str()),
            "{file} is not in MANIFEST.tsv"
        );
        let (_, expect) = table
            .iter()
            .find(|(name, _)| *name == file)
            .unwrap_or_else(|| panic!("{file} is in the corpus but not in this test's table"));
        match (expect, Message::parse(bytes.clone())) {
            (Valid(check), Ok(m)) => {
                check(&m);
                if let Err(e) = m.validate() {
                    panic!("{file}: validate failed: {e}");
                }
                assert_round_trip(&file, &m, &bytes);
            }
            (Invalid(status, check), Ok(m)) => {
                check(&m);
                let err = m.validate().expect_err(&file);
                assert_eq!(err.status, *status, "{file}: {err}");
                assert_round_trip(&file, &m, &bytes);
            }
            (ParseFails(status, check), Err(e)) => {
                assert_eq!(e.status(), *status, "{file}: {e}");
                if let Some(check) = check {
                    check(
                        e.partial()
                            .unwrap_or_else(|| panic!("{file}: no partial message")),
                    );
                }
            }
            (_, Ok(_)) => panic!("{file}: parsed but the manifest says parsing must fail"),
            (_, Err(e)) => panic!("{file}: parse failed: {e}"),
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        table.len(),
        "table names a file that is not in the corpus"
    );
    assert_eq!(
        checked,
        manifest_files.len(),
        "manifest and corpus disagree"
    );
}

/// Printing without edits gives the input up to the end of the body.
fn assert_round_trip(file: &str, m: &Message, input: &[u8]) {
    let printed = m.to_bytes(&EditList::new());
    let end = m.body_span().end as usize;
    assert_eq!(
        printed,
        &input[..end],
        "{file}: unedited print differs from input"
    );
}

#[test]
fn proxy_edits_on_corpus_reparse() {
    for (file, bytes) in common::corpus_messages() {
        let Ok(m) = Message::parse(bytes) else {
            continue;
        };
        if !m.is_request() || m.validate().is_err() {
            continue;
        }
        let mut edits = EditList::new();
        edits.prepend_via(b"SIP/2.0/UDP 192.0.2.200;branch=z9hG4bKsiplab1");
        edits.set_max_forwards(m.max_forwards().unwrap().unwrap_or(70).saturating_sub(1));
        edits.set_top_via_param(b"received", Some(b"198.51.100.7"));
        let out = Message::parse(m.to_bytes(&edits)).unwrap_or_else(|e| panic!("{file}: {e}"));
        out.validate().unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(out.vias().count(), m.vias().count() + 1, "{file}");
        assert_eq!(
            out.top_via().unwrap().branch(),
            Some(&b"z9hG4bKsiplab1"[..])
        );
        assert_eq!(
            out.vias().nth(1).unwrap().unwrap().received(),
            Some(&b"198.51.100.7"[..]),
            "{file}"
        );
        assert_eq!(out.body(), m.body(), "{file}");
        assert_eq!(out.call_id().unwrap(), m.call_id().unwrap());
    }
}
