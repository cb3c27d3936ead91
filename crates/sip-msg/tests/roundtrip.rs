//! Printing an unedited message returns the input bytes, for generated messages with
//! the shapes the parser must keep verbatim: compact and odd-case names, `Name  :` spacing,
//! folded lines, LF-only line ends, comma lists and bodies with or without Content-Length.

use proptest::prelude::*;
use sip_msg::{EditList, HeaderName, Message};

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Via".to_owned()),
        Just("v".to_owned()),
        Just("VIA".to_owned()),
        Just("Route".to_owned()),
        Just("Record-Route".to_owned()),
        Just("Contact".to_owned()),
        Just("m".to_owned()),
        Just("Subject".to_owned()),
        "X-[A-Za-z0-9]{1,8}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "SIP/2\\.0/UDP [a-z]{1,8}\\.example\\.com;branch=z9hG4bK[a-z0-9]{1,8}",
        "<sip:[a-z]{1,6}@[a-z]{1,6}\\.net;lr>",
        "\"[A-Za-z ,]{0,10}\" <sip:[a-z]{1,6}@h>;tag=[a-z0-9]{1,5}",
        "[ -~]{0,30}",
    ]
}

prop_compose! {
    fn header_line()(
        name in header_name(),
        spaces_before_colon in 0usize..3,
        values in prop::collection::vec(header_value(), 1..4),
        fold in any::<bool>(),
    ) -> String {
        let sep = if fold { " ,\r\n   " } else { ", " };
        format!("{name}{}: {}", " ".repeat(spaces_before_colon), values.join(sep).trim())
    }
}

prop_compose! {
    fn message()(
        extra in prop::collection::vec(header_line(), 0..8),
        body in prop::collection::vec(any::<u8>(), 0..64),
        with_length in any::<bool>(),
        lf_only in any::<bool>(),
        is_response in any::<bool>(),
    ) -> (Vec<u8>, usize) {
        let mut lines = vec![
            if is_response { "SIP/2.0 180 Ringing".to_owned() } else { "INVITE sip:bob@example.com SIP/2.0".to_owned() },
            "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa".to_owned(),
            "f: <sip:a@example.com>;tag=1".to_owned(),
            "t: <sip:b@example.com>".to_owned(),
            "i: abc@10.0.0.1".to_owned(),
            "CSeq: 1 INVITE".to_owned(),
        ];
        lines.extend(extra);
        if with_length {
            lines.push(format!("Content-Length: {}", body.len()));
        }
        let eol = if lf_only { "\n" } else { "\r\n" };
        let mut text = String::new();
        for l in lines {
            let l = if lf_only { l.replace("\r\n", "\n") } else { l };
            text.push_str(&l);
            text.push_str(eol);
        }
        text.push_str(eol);
        let mut bytes = text.into_bytes();
        let header_end = bytes.len();
        bytes.extend_from_slice(&body);
        (bytes, header_end)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn unedited_print_is_the_input((bytes, header_end) in message()) {
        let m = Message::parse(bytes.clone()).unwrap();
        prop_assert_eq!(m.to_bytes(&EditList::new()), bytes.clone());
        prop_assert_eq!(m.body(), &bytes[header_end..]);
        prop_assert_eq!(m.call_id().unwrap(), b"abc@10.0.0.1");
    }

    #[test]
    fn removing_and_reinserting_keeps_other_bytes((bytes, _) in message(), value in "[a-z0-9]{1,10}") {
        let m = Message::parse(bytes).unwrap();
        let mut edits = EditList::new();
        edits.remove_header(b"Subject");
        edits.insert_header(sip_msg::InsertAt::BeforeBody, format!("Subject: {value}").as_bytes());
        let out = Message::parse(m.to_bytes(&edits)).unwrap();
        let subjects: Vec<_> = out.headers_of(HeaderName::Subject).map(|h| out.slice(h.value).to_vec()).collect();
        prop_assert_eq!(subjects, vec![value.into_bytes()]);
        prop_assert_eq!(out.headers().count(), m.headers().filter(|h| h.name != HeaderName::Subject).count() + 1);
        prop_assert_eq!(out.body(), m.body());
    }
}
