//! Raw UDP peers the tests own (a client and a gateway), and a small SIP request template.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A UDP socket on 127.0.0.1 with an ephemeral port.
#[derive(Debug)]
pub struct Peer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn bind() -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = sock.local_addr().expect("local addr");
        Peer { sock, addr }
    }

    pub fn send_to(&self, data: &[u8], to: SocketAddr) {
        if let Err(e) = self.sock.send_to(data, to) {
            panic!("send {} bytes to {to}: {e}", data.len());
        }
    }

    /// The next datagram within `limit`, if any.
    pub fn recv_within(&self, limit: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).expect("set timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!("recv on {}: {e}", self.addr),
            }
        }
    }

    /// Every datagram that arrives until the socket has been quiet for `quiet`.
    pub fn drain(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((d, _)) = self.recv_within(quiet) {
            out.push(d);
        }
        out
    }
}

/// The status code of a SIP response datagram (`SIP/2.0 NNN ...`).
pub fn status_code(datagram: &[u8]) -> Option<u16> {
    let rest = datagram.strip_prefix(b"SIP/2.0 ")?;
    let code = std::str::from_utf8(rest.get(..3)?).ok()?;
    code.parse().ok()
}

/// The first line of a datagram, lossily, for messages.
pub fn first_line(datagram: &[u8]) -> String {
    let end = datagram
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(datagram.len().min(120));
    String::from_utf8_lossy(&datagram[..end]).into_owned()
}

/// The value of the first header named `name` (case-insensitive; long form only).
pub fn header<'a>(datagram: &'a [u8], name: &str) -> Option<&'a str> {
    // Only the head must be text: bodies may be binary (mpart01).
    let end = datagram
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(datagram.len());
    let head = std::str::from_utf8(&datagram[..end]).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An OPTIONS request whose Via (with `rport`) points back at `from`, so replies reach it.
pub fn options_request(from: SocketAddr, to: SocketAddr, call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:service@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:tester@{from}>;tag=t-{call_id}\r\n\
         To: <sip:service@{to}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:tester@{from}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// An INVITE with an SDP body, Via (with `rport`) pointing back at `from`.
pub fn invite_request(from: SocketAddr, to: SocketAddr, call_id: &str) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "INVITE sip:callee@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:caller@{from}>;tag=t-{call_id}\r\n\
         To: <sip:callee@{to}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{from}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

/// The header lines of `msg` whose (long or compact) name is one of `names`.
fn header_lines<'a>(msg: &'a str, names: &[&str]) -> Vec<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .skip(1)
        .filter(|line| {
            line.split_once(':').is_some_and(|(n, _)| {
                let n = n.trim();
                names.iter().any(|want| n.eq_ignore_ascii_case(want))
            })
        })
        .collect()
}

/// A UAS reply to `request` echoing its Via, Record-Route, From, Call-ID, CSeq and a tagged To.
pub fn reply_to(request: &[u8], status: &str, to_tag: &str, contact: SocketAddr) -> Vec<u8> {
    let req = String::from_utf8_lossy(request);
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in header_lines(
        &req,
        &[
            "via",
            "v",
            "record-route",
            "from",
            "f",
            "call-id",
            "i",
            "cseq",
        ],
    ) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    for line in header_lines(&req, &["to", "t"]) {
        out.push_str(line);
        if !line.contains(";tag=") {
            out.push_str(&format!(";tag={to_tag}"));
        }
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Contact: <sip:gw@{contact}>\r\nContent-Length: 0\r\n\r\n"
    ));
    out.into_bytes()
}

/// An in-dialog request (ACK or BYE) built from the dialog's 200 OK, routed by its
/// Record-Route set towards the remote target in its Contact.
fn in_dialog(
    ok: &[u8],
    from: SocketAddr,
    method: &str,
    cseq: u32,
    branch: &str,
) -> Result<Vec<u8>, String> {
    let ok = String::from_utf8_lossy(ok);
    let value = |names: &[&str]| -> Vec<String> {
        header_lines(&ok, names)
            .iter()
            .filter_map(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
            .collect()
    };
    let contact = value(&["contact", "m"])
        .into_iter()
        .next()
        .ok_or("200 OK without Contact")?;
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .to_string();
    let one = |names: &[&str], what: &str| -> Result<String, String> {
        value(names)
            .into_iter()
            .next()
            .ok_or(format!("200 OK without {what}"))
    };
    let mut msg = format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{branch};rport\r\n\
         Max-Forwards: 70\r\n"
    );
    // Record-Route in a reply lists the route set in reverse for the UAC; one proxy: same.
    for rr in value(&["record-route"]).iter().rev() {
        msg.push_str(&format!("Route: {rr}\r\n"));
    }
    msg.push_str(&format!(
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        one(&["from", "f"], "From")?,
        one(&["to", "t"], "To")?,
        one(&["call-id", "i"], "Call-ID")?,
    ));
    Ok(msg.into_bytes())
}

const STEP: Duration = Duration::from_secs(5);

fn expect_request(gateway: &Peer, method: &str) -> Result<(Vec<u8>, SocketAddr), String> {
    let (data, from) = gateway
        .recv_within(STEP)
        .ok_or(format!("gateway got no {method}"))?;
    if !data.starts_with(format!("{method} ").as_bytes()) {
        return Err(format!(
            "gateway wanted {method}, got `{}`",
            first_line(&data)
        ));
    }
    Ok((data, from))
}

fn expect_status(client: &Peer, want: u16, what: &str) -> Result<Vec<u8>, String> {
    let (data, _) = client
        .recv_within(STEP)
        .ok_or(format!("client got no reply to {what}"))?;
    match status_code(&data) {
        Some(code) if code == want => Ok(data),
        _ => Err(format!(
            "client wanted {want} to {what}, got `{}`",
            first_line(&data)
        )),
    }
}

/// A whole call through the proxy with raw UDP: INVITE/200/ACK, then BYE/200, each message
/// checked where it must arrive.
pub fn raw_call(
    client: &Peer,
    gateway: &Peer,
    proxy: SocketAddr,
    call_id: &str,
) -> Result<(), String> {
    client.send_to(&invite_request(client.addr, proxy, call_id), proxy);
    let (invite, hop) = expect_request(gateway, "INVITE")?;
    gateway.send_to(&reply_to(&invite, "200 OK", "gw1", gateway.addr), hop);
    let ok = expect_status(client, 200, "INVITE")?;
    client.send_to(
        &in_dialog(&ok, client.addr, "ACK", 1, &format!("{call_id}-ack"))?,
        proxy,
    );
    expect_request(gateway, "ACK")?;
    client.send_to(
        &in_dialog(&ok, client.addr, "BYE", 2, &format!("{call_id}-bye"))?,
        proxy,
    );
    let (bye, hop) = expect_request(gateway, "BYE")?;
    gateway.send_to(&reply_to(&bye, "200 OK", "gw1", gateway.addr), hop);
    expect_status(client, 200, "BYE")?;
    Ok(())
}

#[test]
fn raw_call_completes_when_the_gateway_is_reached_directly() {
    // Checks the raw call helper itself: with no proxy in the path every hop is direct.
    let client = Peer::bind();
    let gateway = Peer::bind();
    raw_call(&client, &gateway, gateway.addr, "direct-1").expect("direct call");
}

#[test]
fn reply_to_echoes_the_transaction_headers_and_tags_to() {
    let from: SocketAddr = "127.0.0.1:5071".parse().expect("addr");
    let to: SocketAddr = "127.0.0.1:5072".parse().expect("addr");
    let invite = invite_request(from, to, "c-1");
    let reply = reply_to(&invite, "200 OK", "x1", to);
    assert_eq!(status_code(&reply), Some(200));
    assert_eq!(header(&reply, "Call-ID"), Some("c-1"));
    assert_eq!(header(&reply, "CSeq"), Some("1 INVITE"));
    assert_eq!(
        header(&reply, "To"),
        Some("<sip:callee@127.0.0.1:5072>;tag=x1")
    );
    assert!(header(&reply, "Via").is_some_and(|v| v.contains("127.0.0.1:5071")));
}
