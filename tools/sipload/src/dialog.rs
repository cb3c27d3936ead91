//! Requests a UAC sends: new requests, and ACK/BYE inside the dialog a 200 OK created
//! (routed by its Record-Route set, RFC 3261 §12.1.2).

use crate::error::SiploadError;
use sip_msg::build::RequestBuilder;
use sip_msg::{Contact, Message};
use std::net::SocketAddr;

/// The SDP offer every INVITE carries (one PCMU stream; nobody sends media).
pub const SDP_OFFER: &str = "v=0\r\no=sipload 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Our Via value for a request sent from `local` with `branch` (with `rport`, so replies
/// come back to the socket that sent it).
pub fn via(local: SocketAddr, branch: &str) -> String {
    format!("SIP/2.0/UDP {local};branch={branch};rport")
}

/// The parts of a new out-of-dialog request.
#[derive(Clone, Debug)]
pub struct NewRequest<'a> {
    pub method: &'a str,
    pub ruri: &'a str,
    pub local: SocketAddr,
    pub call_id: &'a str,
    pub branch: &'a str,
    pub from_tag: &'a str,
    pub cseq: u32,
    /// Extra header lines (`Name: value`, no line end).
    pub extra_headers: &'a [&'a str],
    /// Attach [`SDP_OFFER`].
    pub sdp: bool,
}

impl NewRequest<'_> {
    pub fn build(&self) -> Vec<u8> {
        let via = via(self.local, self.branch);
        let from = format!("<sip:sipload@{}>;tag={}", self.local, self.from_tag);
        let to = format!("<{}>", self.ruri);
        let contact = format!("<sip:sipload@{}>", self.local);
        let extra: Vec<&[u8]> = self.extra_headers.iter().map(|h| h.as_bytes()).collect();
        let mut b = RequestBuilder::new(self.method.as_bytes(), self.ruri.as_bytes());
        b.via = via.as_bytes();
        b.from = from.as_bytes();
        b.to = to.as_bytes();
        b.call_id = self.call_id.as_bytes();
        b.cseq = self.cseq;
        b.contact = Some(contact.as_bytes());
        b.extra_headers = &extra;
        if self.sdp {
            b.body = Some((b"application/sdp", SDP_OFFER.as_bytes()));
        }
        b.build()
    }
}

fn utf8<'m>(value: &'m [u8], what: &str) -> Result<&'m str, SiploadError> {
    std::str::from_utf8(value).map_err(|_| SiploadError::BadMessage(format!("{what} is not UTF-8")))
}

/// A request inside the dialog established by `ok` (a 2xx to our INVITE): R-URI = the
/// remote Contact, Route = the Record-Route set reversed, From/To/Call-ID from the reply,
/// `CSeq: cseq method`, a fresh Via with `branch`.
pub fn in_dialog(
    ok: &Message,
    method: &str,
    cseq: u32,
    local: SocketAddr,
    branch: &str,
) -> Result<Vec<u8>, SiploadError> {
    let target = ok
        .contacts()
        .find_map(|c| match c {
            Ok(Contact::Addr(a)) => Some(a.uri.raw),
            _ => None,
        })
        .ok_or_else(|| SiploadError::BadMessage("2xx without a usable Contact".into()))?;
    let target = utf8(target, "Contact")?;
    let mut routes = Vec::new();
    for rr in ok.record_routes() {
        let rr = rr?;
        routes.push(format!("Route: {}", utf8(rr.raw, "Record-Route")?));
    }
    routes.reverse();
    let from = ok
        .header_value(sip_msg::HeaderName::From)
        .ok_or_else(|| SiploadError::BadMessage("2xx without From".into()))?;
    let to = ok
        .header_value(sip_msg::HeaderName::To)
        .ok_or_else(|| SiploadError::BadMessage("2xx without To".into()))?;
    let call_id = ok.call_id()?;
    let via = via(local, branch);
    let extra: Vec<&[u8]> = routes.iter().map(|r| r.as_bytes()).collect();
    let mut b = RequestBuilder::new(method.as_bytes(), target.as_bytes());
    b.via = via.as_bytes();
    b.from = from;
    b.to = to;
    b.call_id = call_id;
    b.cseq = cseq;
    b.extra_headers = &extra;
    Ok(b.build())
}

/// Replaces the top Via branch of a request we built (a new INVITE transaction in the same
/// call, e.g. to test a gateway's per-transaction state).
pub fn with_branch(request: &[u8], old: &str, new: &str) -> Vec<u8> {
    let needle = format!("branch={old}");
    let text = String::from_utf8_lossy(request);
    text.replacen(&needle, &format!("branch={new}"), 1)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:5091".parse().unwrap()
    }

    #[test]
    fn new_invite_parses_with_sdp_and_extra_headers() {
        let bytes = NewRequest {
            method: "INVITE",
            ruri: "sip:one@127.0.0.1:5090",
            local: local(),
            call_id: "c-1",
            branch: "z9hG4bK-1",
            from_tag: "f-1",
            cseq: 1,
            extra_headers: &["X-Test: yes"],
            sdp: true,
        }
        .build();
        let m = Message::parse(bytes).unwrap();
        m.validate().unwrap();
        assert_eq!(m.top_via().unwrap().branch(), Some(&b"z9hG4bK-1"[..]));
        assert_eq!(m.body(), SDP_OFFER.as_bytes());
        assert_eq!(m.headers_named(b"x-test").count(), 1);
        assert_eq!(m.from().unwrap().tag(), Some(&b"f-1"[..]));
    }

    #[test]
    fn in_dialog_bye_targets_contact_and_routes_by_reversed_record_route() {
        let ok = Message::parse(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1\r\n\
Record-Route: <sip:127.0.0.1:5090;lr>, <sip:10.0.0.9;lr>\r\n\
From: <sip:sipload@127.0.0.1:5091>;tag=f-1\r\nTo: <sip:one@127.0.0.1>;tag=gw-1\r\n\
Call-ID: c-1\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@127.0.0.1:5092>\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
        .unwrap();
        let bye = Message::parse(in_dialog(&ok, "BYE", 2, local(), "z9hG4bK-b").unwrap()).unwrap();
        bye.validate().unwrap();
        assert_eq!(bye.request_uri_bytes(), Some(&b"sip:gw@127.0.0.1:5092"[..]));
        let routes: Vec<_> = bye.routes().map(|r| r.unwrap().raw.to_vec()).collect();
        assert_eq!(
            routes,
            vec![
                b"<sip:10.0.0.9;lr>".to_vec(),
                b"<sip:127.0.0.1:5090;lr>".to_vec()
            ]
        );
        assert_eq!(bye.to().unwrap().tag(), Some(&b"gw-1"[..]));
        assert_eq!(bye.cseq().unwrap().number, 2);
        assert_eq!(bye.cseq().unwrap().method, b"BYE");
    }

    #[test]
    fn in_dialog_without_contact_is_an_error() {
        let ok = Message::parse(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-1\r\n\
From: <sip:a@h>;tag=f\r\nTo: <sip:b@h>;tag=t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
                .to_vec(),
        )
        .unwrap();
        assert!(matches!(
            in_dialog(&ok, "ACK", 1, local(), "z9hG4bK-a"),
            Err(SiploadError::BadMessage(_))
        ));
    }
}
