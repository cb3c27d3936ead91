//! Builders: replies to a request, the CANCEL and hop-by-hop ACK for a sent INVITE
//! (shape of Kamailio's `build_local_reparse`, spec §4.4), and new requests from parts.

use crate::error::SipError;
use crate::header::HeaderName;
use crate::message::{Message, Method, Span};

/// Options for [`build_reply`].
#[derive(Clone, Debug, Default)]
pub struct ReplyOpts<'a> {
    /// Tag added to To when the code is ≥ 180 and To has none (the caller generates it:
    /// the core never reads randomness).
    pub to_tag: Option<&'a [u8]>,
    /// `Server:` header value.
    pub server: Option<&'a [u8]>,
    /// Copy the Record-Route headers (RFC 3261 §16.6 / dialog-creating replies).
    pub record_route: bool,
    /// Extra header lines (`Name: value`, no line end).
    pub extra_headers: &'a [&'a [u8]],
}

fn put_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b"\r\n");
}

/// Copies every header line of `name` (name and value as received, line end normalised).
fn copy_headers(out: &mut Vec<u8>, msg: &Message, name: HeaderName) {
    for h in msg.headers_of(name) {
        put_line(
            out,
            &[msg.slice(Span {
                start: h.line.start,
                end: h.value.end,
            })],
        );
    }
}

fn put_status_line(out: &mut Vec<u8>, code: u16, reason: &[u8]) {
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(code.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// Builds a reply to `req`: all Vias, From, To (with `opts.to_tag` added when the code is
/// ≥ 180 and To has no tag), Call-ID, CSeq, Record-Route when asked, Server, extra headers
/// and `Content-Length: 0`. Works on a partial message from [`crate::ParseError`] too.
pub fn build_reply(req: &Message, code: u16, reason: &[u8], opts: &ReplyOpts<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(req.as_bytes().len().min(2048) + 128);
    put_status_line(&mut out, code, reason);
    copy_headers(&mut out, req, HeaderName::Via);
    copy_headers(&mut out, req, HeaderName::From);
    if let Some(to) = req.header(HeaderName::To) {
        let head = req.slice(Span {
            start: to.line.start,
            end: to.value.end,
        });
        // The To value is decoded only when a tag might be added (not for 100 Trying).
        let has_tag = || req.to().is_ok_and(|t| t.tag().is_some());
        match opts.to_tag {
            Some(tag) if code >= 180 && !has_tag() => {
                put_line(&mut out, &[head, b";tag=", tag]);
            }
            _ => put_line(&mut out, &[head]),
        }
    }
    copy_headers(&mut out, req, HeaderName::CallId);
    copy_headers(&mut out, req, HeaderName::CSeq);
    if opts.record_route {
        copy_headers(&mut out, req, HeaderName::RecordRoute);
    }
    // Headers the script added (append_to_reply, sanity's Unsupported) come before
    // Server, as Kamailio prints its reply lumps before the server signature.
    for extra in opts.extra_headers {
        put_line(&mut out, &[extra]);
    }
    if let Some(server) = opts.server {
        put_line(&mut out, &[b"Server: ", server]);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// The parts of a sent INVITE that its CANCEL and ACK copy.
fn local_request_head(invite: &Message, method: &[u8], out: &mut Vec<u8>) -> Result<u32, SipError> {
    if invite.method() != Some(Method::Invite) {
        return Err(SipError::with_status("not an INVITE", 500));
    }
    let uri = invite
        .request_uri_bytes()
        .ok_or(SipError::with_status("not a request", 500))?;
    let via = invite
        .header_values(HeaderName::Via)
        .next()
        .ok_or(SipError::bad_request("missing Via"))?;
    let cseq = invite.cseq()?;
    put_line(out, &[method, b" ", uri, b" SIP/2.0"]);
    put_line(out, &[b"Via: ", invite.slice(via)]);
    copy_headers(out, invite, HeaderName::MaxForwards);
    copy_headers(out, invite, HeaderName::Route);
    copy_headers(out, invite, HeaderName::From);
    Ok(cseq.number)
}

/// Builds the CANCEL for an INVITE as sent on a branch (spec §4.4): request line and
/// R-URI of the branch, its top Via only, Max-Forwards, Route, From, To, Call-ID,
/// `CSeq: n CANCEL`, `Content-Length: 0`, then the `reasons` lines (full `Reason: ...`
/// header lines, no line end), then the empty line.
pub fn build_cancel(invite: &Message, reasons: &[&[u8]]) -> Result<Vec<u8>, SipError> {
    let mut out = Vec::with_capacity(invite.as_bytes().len().min(2048) + 64);
    let cseq = local_request_head(invite, b"CANCEL", &mut out)?;
    copy_headers(&mut out, invite, HeaderName::To);
    copy_headers(&mut out, invite, HeaderName::CallId);
    put_line(
        &mut out,
        &[b"CSeq: ", cseq.to_string().as_bytes(), b" CANCEL"],
    );
    out.extend_from_slice(b"Content-Length: 0\r\n");
    for reason in reasons {
        put_line(&mut out, &[reason]);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Builds the hop-by-hop ACK for a ≥ 300 `reply` to an INVITE as sent on a branch
/// (spec §4.4): like the CANCEL but To is the reply's (with the downstream to-tag) and
/// `CSeq: n ACK`.
pub fn build_ack(invite: &Message, reply: &Message) -> Result<Vec<u8>, SipError> {
    let mut out = Vec::with_capacity(invite.as_bytes().len().min(2048) + 64);
    let cseq = local_request_head(invite, b"ACK", &mut out)?;
    let to = reply
        .header_value(HeaderName::To)
        .ok_or(SipError::bad_request("reply without To"))?;
    put_line(&mut out, &[b"To: ", to]);
    copy_headers(&mut out, invite, HeaderName::CallId);
    put_line(&mut out, &[b"CSeq: ", cseq.to_string().as_bytes(), b" ACK"]);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(out)
}

/// A new request from parts (OPTIONS pings, sipload). Header values are given without names.
#[derive(Clone, Debug)]
pub struct RequestBuilder<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub via: &'a [u8],
    pub from: &'a [u8],
    pub to: &'a [u8],
    pub call_id: &'a [u8],
    pub cseq: u32,
    pub max_forwards: u32,
    pub contact: Option<&'a [u8]>,
    /// Extra header lines (`Name: value`, no line end).
    pub extra_headers: &'a [&'a [u8]],
    /// `Content-Type` value and body bytes.
    pub body: Option<(&'a [u8], &'a [u8])>,
}

impl<'a> RequestBuilder<'a> {
    /// A builder with Max-Forwards 70 and no Contact, extra headers or body.
    pub fn new(method: &'a [u8], uri: &'a [u8]) -> RequestBuilder<'a> {
        RequestBuilder {
            method,
            uri,
            via: b"",
            from: b"",
            to: b"",
            call_id: b"",
            cseq: 1,
            max_forwards: 70,
            contact: None,
            extra_headers: &[],
            body: None,
        }
    }

    /// Appends the request to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        put_line(out, &[self.method, b" ", self.uri, b" SIP/2.0"]);
        put_line(out, &[b"Via: ", self.via]);
        put_line(
            out,
            &[b"Max-Forwards: ", self.max_forwards.to_string().as_bytes()],
        );
        put_line(out, &[b"From: ", self.from]);
        put_line(out, &[b"To: ", self.to]);
        put_line(out, &[b"Call-ID: ", self.call_id]);
        put_line(
            out,
            &[
                b"CSeq: ",
                self.cseq.to_string().as_bytes(),
                b" ",
                self.method,
            ],
        );
        if let Some(contact) = self.contact {
            put_line(out, &[b"Contact: ", contact]);
        }
        for extra in self.extra_headers {
            put_line(out, &[extra]);
        }
        let (content_type, body) = self.body.unwrap_or((b"", b""));
        if !content_type.is_empty() {
            put_line(out, &[b"Content-Type: ", content_type]);
        }
        put_line(
            out,
            &[b"Content-Length: ", body.len().to_string().as_bytes()],
        );
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
    }

    /// The request as a new buffer.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_to(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const INVITE: &[u8] = b"INVITE sip:bob@10.0.0.5 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKproxy1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKuac\r\n\
Max-Forwards: 69\r\n\
Route: <sip:next.example.com;lr>\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
From: \"A\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c-1@x\r\n\
CSeq: 7 INVITE\r\n\
Require: 100rel\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 3\r\n\
\r\n\
v=0";

    #[test]
    fn reply_copies_dialog_headers_and_adds_tag() -> TestResult {
        let req = Message::parse_slice(INVITE)?;
        let opts = ReplyOpts {
            to_tag: Some(b"xyz"),
            server: Some(b"siplab"),
            record_route: true,
            extra_headers: &[b"X-E: 1"],
        };
        let r = Message::parse(build_reply(&req, 486, b"Busy Here", &opts))?;
        assert_eq!(r.status_code(), Some(486));
        assert_eq!(r.vias().count(), 2);
        assert_eq!(r.to()?.tag(), Some(&b"xyz"[..]));
        assert_eq!(r.from()?.tag(), Some(&b"a1"[..]));
        assert_eq!(r.cseq()?.number, 7);
        assert_eq!(r.record_routes().count(), 1);
        assert_eq!(r.header_value(HeaderName::Server), Some(&b"siplab"[..]));
        assert_eq!(r.content_length(), Some(0));
        // Kamailio's order: added headers, then Server, then Content-Length.
        let text = String::from_utf8_lossy(r.as_bytes()).into_owned();
        assert!(
            text.ends_with("X-E: 1\r\nServer: siplab\r\nContent-Length: 0\r\n\r\n"),
            "{text}"
        );
        r.validate()?;
        let trying = Message::parse(build_reply(&req, 100, b"Trying", &opts))?;
        assert_eq!(trying.to()?.tag(), None);
        Ok(())
    }

    #[test]
    fn cancel_shape_matches_kamailio() -> TestResult {
        let inv = Message::parse_slice(INVITE)?;
        let c = build_cancel(
            &inv,
            &[b"Reason: SIP;cause=200;text=\"Call completed elsewhere\""],
        )?;
        assert_eq!(
            std::str::from_utf8(&c)?,
            "CANCEL sip:bob@10.0.0.5 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKproxy1\r\n\
Max-Forwards: 69\r\n\
Route: <sip:next.example.com;lr>\r\n\
From: \"A\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c-1@x\r\n\
CSeq: 7 CANCEL\r\n\
Content-Length: 0\r\n\
Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n\r\n"
        );
        Message::parse(c)?.validate()?;
        Ok(())
    }

    #[test]
    fn ack_takes_reply_to_tag() -> TestResult {
        let inv = Message::parse_slice(INVITE)?;
        let reply = Message::parse_slice(
            b"SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKproxy1\r\nTo: <sip:bob@example.com>;tag=down\r\n\r\n",
        )
        ?;
        let ack = Message::parse(build_ack(&inv, &reply)?)?;
        assert_eq!(ack.method(), Some(Method::Ack));
        assert_eq!(ack.to()?.tag(), Some(&b"down"[..]));
        assert_eq!(ack.top_via()?.branch(), Some(&b"z9hG4bKproxy1"[..]));
        assert_eq!(ack.vias().count(), 1);
        assert_eq!(ack.cseq()?.method, b"ACK");
        ack.validate()?;
        Ok(())
    }

    #[test]
    fn request_builder_makes_valid_request() -> TestResult {
        let mut b = RequestBuilder::new(b"OPTIONS", b"sip:ds1.example.com");
        b.via = b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKping1";
        b.from = b"<sip:siplab@192.0.2.1>;tag=p1";
        b.to = b"<sip:ds1.example.com>";
        b.call_id = b"ping-1";
        b.cseq = 3;
        b.body = Some((b"text/plain", b"hi"));
        let m = Message::parse(b.build())?;
        m.validate()?;
        assert_eq!(m.method(), Some(Method::Options));
        assert_eq!(m.cseq()?.number, 3);
        assert_eq!(m.body(), b"hi");
        Ok(())
    }
}
