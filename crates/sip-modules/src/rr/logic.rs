//! Record-Route and Route processing (RFC 3261 §16.4, §16.6 step 6, §16.12), pure: the
//! caller says which URIs are "myself" and applies the outcome to its message state.

use sip_msg::{EditList, HeaderName, InsertAt, Message, NameAddr, Uri};

/// The Record-Route line for `host_port` (the listen or advertised address):
/// `Record-Route: <sip:HOST:PORT;lr[;ftag=..][params]>`.
pub fn record_route_line(
    host_port: &str,
    full_lr: bool,
    ftag: Option<&[u8]>,
    params: &str,
) -> Vec<u8> {
    let mut line = Vec::with_capacity(64 + host_port.len() + params.len());
    line.extend_from_slice(RECORD_ROUTE_START);
    line.extend_from_slice(host_port.as_bytes());
    finish_record_route(&mut line, full_lr, ftag, &[params.as_bytes()]);
    line
}

/// What a Record-Route line starts with, up to the host.
pub(crate) const RECORD_ROUTE_START: &[u8] = b"Record-Route: <sip:";

/// Ends a Record-Route line after its host:port: `;lr`, the From tag, `params`, `>`.
pub(crate) fn finish_record_route(
    line: &mut Vec<u8>,
    full_lr: bool,
    ftag: Option<&[u8]>,
    params: &[&[u8]],
) {
    let lr: &[u8] = match (full_lr, ftag.is_some()) {
        (false, false) => b";lr",
        (true, false) => b";lr=on",
        (false, true) => b";lr;ftag=",
        (true, true) => b";lr=on;ftag=",
    };
    line.extend_from_slice(lr);
    if let Some(tag) = ftag {
        line.extend_from_slice(tag);
    }
    for p in params {
        if !p.is_empty() {
            line.extend_from_slice(p);
        }
    }
    line.push(b'>');
}

/// Ends a preset or advertised Record-Route line after its address, as Kamailio's
/// `record_route_preset` / `build_advertised_rr`: the From tag, `before_lr`, `;lr`,
/// `after_lr`, `>`.
pub(crate) fn finish_preset(
    line: &mut Vec<u8>,
    full_lr: bool,
    ftag: Option<&[u8]>,
    before_lr: &[u8],
    after_lr: &[u8],
) {
    if let Some(tag) = ftag {
        line.extend_from_slice(b";ftag=");
        line.extend_from_slice(tag);
    }
    line.extend_from_slice(before_lr);
    line.extend_from_slice(if full_lr { b";lr=on" } else { b";lr" });
    line.extend_from_slice(after_lr);
    line.push(b'>');
}

/// The Record-Route line of `record_route_preset(value)` as Kamailio 5.6.3 prints it:
/// `sip:` + the value as given + `;ftag=<tag>` + `params` (queued by `add_rr_param`) +
/// `;lr` — `sip:` and `;lr` are added even when the value has them.
pub fn record_route_preset_line(
    value: &str,
    full_lr: bool,
    ftag: Option<&[u8]>,
    params: &str,
) -> Vec<u8> {
    let mut line = Vec::with_capacity(64 + value.len() + params.len());
    line.extend_from_slice(RECORD_ROUTE_START);
    line.extend_from_slice(value.as_bytes());
    finish_preset(&mut line, full_lr, ftag, params.as_bytes(), b"");
    line
}

/// Inserts a Record-Route line above the others (Kamailio anchors it before the first
/// header, so it lands on top of any received Record-Route).
pub fn insert_record_route(edits: &mut EditList, line: &[u8]) {
    edits.insert_header(InsertAt::Top, line);
}

/// What `loose_route()` decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LooseRoute {
    /// Kamailio's return code: 1 routed by Route, -1 no (remaining) route to follow.
    pub ret: i32,
    /// New Request-URI (strict-router handling).
    pub request_uri: Option<Vec<u8>>,
    /// New `$du` (the next loose-routing hop).
    pub dst_uri: Option<Vec<u8>>,
}

/// One Route value as written, with its parsed address.
struct RouteValue<'a> {
    raw: &'a [u8],
    addr: NameAddr<'a>,
}

fn routes(msg: &Message) -> Result<Vec<RouteValue<'_>>, sip_msg::SipError> {
    msg.header_values(HeaderName::Route)
        .map(|s| {
            let raw = msg.slice(s);
            NameAddr::parse(raw).map(|addr| RouteValue { raw, addr })
        })
        .collect()
}

fn is_loose(uri: &Uri<'_>) -> bool {
    uri.param(b"lr").is_some()
}

/// Rewrites the whole Route set: every Route header removed, `kept` written back as one
/// header at the place of the last received one (keeps order; EditList can only drop the
/// first value otherwise).
fn rewrite_routes(edits: &mut EditList, kept: &[&[u8]]) {
    edits.remove_header_known(HeaderName::Route);
    if !kept.is_empty() {
        let mut line = b"Route: ".to_vec();
        line.extend_from_slice(&kept.join(&b", "[..]));
        edits.insert_header(InsertAt::AfterLast(HeaderName::Route), &line);
    }
}

/// `loose_route()`: follows the Route set of request `msg` (R-URI `ruri`, the script's
/// current one). `myself` says whether a URI points at this proxy. Route edits go into
/// `edits`; the new R-URI / `$du` come back for the caller to set.
pub fn loose_route(
    msg: &Message,
    ruri: &[u8],
    edits: &mut EditList,
    myself: &dyn Fn(&Uri<'_>) -> bool,
) -> LooseRoute {
    let no_route = LooseRoute {
        ret: -1,
        ..LooseRoute::default()
    };
    let Ok(all) = routes(msg) else {
        return no_route;
    };
    if all.is_empty() {
        return no_route;
    }
    let mut outcome = LooseRoute::default();
    let mut set: Vec<&RouteValue<'_>> = all.iter().collect();
    let mut current_ruri = ruri.to_vec();

    // §16.4: an R-URI we put in a Record-Route means the previous hop was a strict
    // router; the real R-URI is the last Route value.
    let ruri_is_ours = Uri::parse(ruri).is_ok_and(|u| u.user.is_none() && myself(&u));
    if ruri_is_ours {
        if let Some(last) = set.pop() {
            current_ruri = last.addr.uri.raw.to_vec();
            outcome.request_uri = Some(current_ruri.clone());
        }
    }
    // §16.4: our own Route entry on top is removed.
    let mut removed_own = false;
    if set.first().is_some_and(|r| myself(&r.addr.uri)) {
        set.remove(0);
        removed_own = true;
    }
    match set.first() {
        None => {
            // Kamailio: an out-of-dialog request whose only Route was ours is routed
            // normally (false); in-dialog it follows the R-URI (true).
            let in_dialog = msg.to_tag().is_some();
            outcome.ret = if removed_own && !in_dialog && !ruri_is_ours {
                -1
            } else {
                1
            };
        }
        Some(next) if is_loose(&next.addr.uri) => {
            outcome.dst_uri = Some(next.addr.uri.raw.to_vec());
            outcome.ret = 1;
        }
        Some(next) => {
            // §16.6 step 6: the next hop is a strict router: it becomes the R-URI and
            // the current R-URI goes to the end of the Route set.
            outcome.request_uri = Some(next.addr.uri.raw.to_vec());
            let old = format!("<{}>", String::from_utf8_lossy(&current_ruri));
            let mut kept: Vec<&[u8]> = set.iter().skip(1).map(|r| r.raw).collect();
            kept.push(old.as_bytes());
            rewrite_routes(edits, &kept);
            outcome.ret = 1;
            return outcome;
        }
    }
    if ruri_is_ours {
        let kept: Vec<&[u8]> = set.iter().map(|r| r.raw).collect();
        rewrite_routes(edits, &kept);
    } else if removed_own {
        edits.remove_first_route();
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn ours(u: &Uri<'_>) -> bool {
        u.host_raw == b"10.0.0.1" && u.port.unwrap_or(5060) == 5060
    }

    fn req(routes: &str, to_tag: bool, ruri: &str) -> Result<Message, sip_msg::ParseError> {
        let tag = if to_tag { ";tag=t1" } else { "" };
        Message::parse(
            format!(
                "BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n{routes}From: <sip:a@b>;tag=f\r\nTo: <sip:c@d>{tag}\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
    }

    #[test]
    fn pops_own_route_and_sets_du_to_next() -> TestResult {
        let m = req(
            "Route: <sip:10.0.0.1;lr>, <sip:10.0.0.2;lr>\r\n",
            true,
            "sip:bob@10.0.0.7",
        )?;
        let mut edits = EditList::new();
        let out = loose_route(&m, b"sip:bob@10.0.0.7", &mut edits, &ours);
        assert_eq!(out.ret, 1);
        assert_eq!(out.dst_uri.as_deref(), Some(&b"sip:10.0.0.2;lr"[..]));
        assert_eq!(out.request_uri, None);
        let text = String::from_utf8(m.to_bytes(&edits))?;
        assert!(text.contains("Route: <sip:10.0.0.2;lr>\r\n"), "{text}");
        assert!(!text.contains("10.0.0.1"));
        Ok(())
    }

    #[test]
    fn no_route_is_false_and_only_own_route_out_of_dialog_is_false() -> TestResult {
        let m = req("", false, "sip:bob@10.0.0.7")?;
        let mut edits = EditList::new();
        assert_eq!(
            loose_route(&m, b"sip:bob@10.0.0.7", &mut edits, &ours).ret,
            -1
        );
        let m = req("Route: <sip:10.0.0.1;lr>\r\n", false, "sip:bob@10.0.0.7")?;
        let out = loose_route(&m, b"sip:bob@10.0.0.7", &mut edits, &ours);
        assert_eq!(out.ret, -1);
        assert!(!String::from_utf8(m.to_bytes(&edits))?.contains("Route:"));
        let m = req("Route: <sip:10.0.0.1;lr>\r\n", true, "sip:bob@10.0.0.7")?;
        let mut edits = EditList::new();
        assert_eq!(
            loose_route(&m, b"sip:bob@10.0.0.7", &mut edits, &ours).ret,
            1
        );
        Ok(())
    }

    #[test]
    fn strict_previous_hop_restores_ruri_from_last_route() -> TestResult {
        let m = req(
            "Route: <sip:10.0.0.2;lr>\r\nRoute: <sip:bob@10.0.0.7>\r\n",
            true,
            "sip:10.0.0.1;lr",
        )?;
        let mut edits = EditList::new();
        let out = loose_route(&m, b"sip:10.0.0.1;lr", &mut edits, &ours);
        assert_eq!(out.ret, 1);
        assert_eq!(out.request_uri.as_deref(), Some(&b"sip:bob@10.0.0.7"[..]));
        assert_eq!(out.dst_uri.as_deref(), Some(&b"sip:10.0.0.2;lr"[..]));
        let text = String::from_utf8(m.to_bytes(&edits))?;
        assert!(text.contains("Route: <sip:10.0.0.2;lr>\r\n"));
        assert!(!text.contains("Route: <sip:bob@"));
        Ok(())
    }

    #[test]
    fn strict_next_hop_becomes_ruri() -> TestResult {
        let m = req(
            "Route: <sip:10.0.0.1;lr>, <sip:10.0.0.3>\r\n",
            true,
            "sip:bob@10.0.0.7",
        )?;
        let mut edits = EditList::new();
        let out = loose_route(&m, b"sip:bob@10.0.0.7", &mut edits, &ours);
        assert_eq!(out.request_uri.as_deref(), Some(&b"sip:10.0.0.3"[..]));
        let text = String::from_utf8(m.to_bytes(&edits))?;
        assert!(text.contains("Route: <sip:bob@10.0.0.7>\r\n"), "{text}");
        Ok(())
    }

    #[test]
    fn record_route_lines() {
        assert_eq!(
            record_route_line("10.0.0.1:5060", false, None, ""),
            b"Record-Route: <sip:10.0.0.1:5060;lr>".to_vec()
        );
        assert_eq!(
            record_route_line("10.0.0.1:5060", true, Some(b"f1"), ";nat=yes"),
            b"Record-Route: <sip:10.0.0.1:5060;lr=on;ftag=f1;nat=yes>".to_vec()
        );
        assert_eq!(
            record_route_line("10.0.0.1:5060", false, Some(b"f1"), ""),
            b"Record-Route: <sip:10.0.0.1:5060;lr;ftag=f1>".to_vec()
        );
        assert_eq!(
            record_route_line("10.0.0.1:5060", true, None, ";a=1;b"),
            b"Record-Route: <sip:10.0.0.1:5060;lr=on;a=1;b>".to_vec()
        );
        assert_eq!(
            record_route_preset_line("1.2.3.4:5090", false, None, ""),
            b"Record-Route: <sip:1.2.3.4:5090;lr>".to_vec()
        );
        // Kamailio 5.6.3 on the wire: the tag and queued params before `;lr`, and `sip:` /
        // `;lr` added whatever the value holds.
        assert_eq!(
            record_route_preset_line("127.0.0.1:5060;x=1", false, Some(b"ft123"), ";foo=bar"),
            b"Record-Route: <sip:127.0.0.1:5060;x=1;ftag=ft123;foo=bar;lr>".to_vec()
        );
        assert_eq!(
            record_route_preset_line("sip:127.0.0.1:5060;lr", false, Some(b"ft123"), ""),
            b"Record-Route: <sip:sip:127.0.0.1:5060;lr;ftag=ft123;lr>".to_vec()
        );
    }
}
