//! Small helpers shared by the modules.

use std::net::IpAddr;

use sip_msg::{Host, Uri};
use sip_script::abi::{Ctx, Value};

/// Whether `uri` points at this proxy (Kamailio's `myself`): its host is one of the listen
/// addresses or aliases and its port (default 5060) matches, or the entry has no port.
pub(crate) fn is_myself(ctx: &Ctx<'_>, uri: &Uri<'_>) -> bool {
    let Some(host) = uri.host else {
        return false;
    };
    let port = uri.port.unwrap_or(crate::core::forward::DEFAULT_PORT);
    ctx.host.local_addrs().iter().any(|la| {
        let host_matches = match host {
            Host::Ipv4(ip) => la.host.parse::<IpAddr>().ok() == Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => la.host.parse::<IpAddr>().ok() == Some(IpAddr::V6(ip)),
            Host::Name(name) => la.host.as_bytes().eq_ignore_ascii_case(name),
        };
        host_matches && la.port.is_none_or(|p| p == port)
    })
}

/// Per-message module data kept in the message's AVP store under names a script cannot
/// write (the ABI has no per-message module slot; the AVP store is reset per message).
pub(crate) fn private_avp_name(module: &str, key: &str) -> String {
    format!("\u{1}{module}:{key}")
}

pub(crate) fn private_get(ctx: &Ctx<'_>, module: &str, key: &str) -> Option<Value> {
    ctx.avps.get(&private_avp_name(module, key), 0).cloned()
}

pub(crate) fn private_set(ctx: &mut Ctx<'_>, module: &str, key: &str, v: Value) {
    let name = private_avp_name(module, key);
    ctx.avps.remove_all(&name);
    ctx.avps.push(&name, v);
}

/// Strips one trailing line end from header text given in the cfg (`"X-A: 1\r\n"`): the
/// edit list adds its own.
pub(crate) fn header_line(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}
