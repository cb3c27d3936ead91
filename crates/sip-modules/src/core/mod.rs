//! `core`: Kamailio's core actions as an always-loaded pseudo-module (`forward`, flags,
//! R-URI rewrites, `force_rport`, ...), plus the wire helpers the binary calls without a
//! script: [`forward_reply`] and [`error_reply`].

pub mod forward;

use std::net::SocketAddr;

pub use forward::{
    DEFAULT_PORT, Destination, build_forward, error_reply, forward_reply, is_forbidden_destination,
    stateless_branch, uri_destination,
};

use sip_msg::{SipError, Uri};

use crate::util::put_public_host_port;
use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModInit, ModuleExports, Proto, RouteKinds,
    SerError, Stat,
};

const ANY: RouteKinds = RouteKinds::ANY;
const REQ_FAIL_BRANCH: RouteKinds = RouteKinds::REQUEST
    .union(RouteKinds::FAILURE)
    .union(RouteKinds::BRANCH);

const fn f(
    name: &'static str,
    args: &'static [ArgKind],
    routes: RouteKinds,
    handler: sip_script::abi::HandlerFn,
) -> FunctionExport {
    FunctionExport {
        name,
        args,
        fixup: None,
        routes,
        handler,
    }
}

static FUNCTIONS: [FunctionExport; 29] = [
    f(
        "forward",
        &[],
        REQ_FAIL_BRANCH.union(RouteKinds::ONREPLY),
        w_forward,
    ),
    f(
        "forward",
        &[ArgKind::Format, ArgKind::Int],
        REQ_FAIL_BRANCH,
        w_forward_to,
    ),
    f("force_rport", &[], ANY, w_force_rport),
    f("set_reply_no_connect", &[], ANY, w_set_reply_no_connect),
    f("setflag", &[ArgKind::Int], ANY, w_setflag),
    f("resetflag", &[ArgKind::Int], ANY, w_resetflag),
    f("isflagset", &[ArgKind::Int], ANY, w_isflagset),
    f("setbflag", &[ArgKind::Int], ANY, w_setbflag),
    f("resetbflag", &[ArgKind::Int], ANY, w_resetbflag),
    f("isbflagset", &[ArgKind::Int], ANY, w_isbflagset),
    f("strip", &[ArgKind::Int], REQ_FAIL_BRANCH, w_strip),
    f("strip_tail", &[ArgKind::Int], REQ_FAIL_BRANCH, w_strip_tail),
    f("prefix", &[ArgKind::Format], REQ_FAIL_BRANCH, w_prefix),
    f(
        "rewritehostport",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewritehostport,
    ),
    f(
        "sethostport",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewritehostport,
    ),
    f(
        "rewritehost",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewritehost,
    ),
    f(
        "sethost",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewritehost,
    ),
    f(
        "rewriteport",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewriteport,
    ),
    f(
        "rewriteuser",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewriteuser,
    ),
    f(
        "setuser",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewriteuser,
    ),
    f(
        "rewriteuri",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_rewriteuri,
    ),
    f("seturi", &[ArgKind::Format], REQ_FAIL_BRANCH, w_rewriteuri),
    f("revert_uri", &[], REQ_FAIL_BRANCH, w_revert_uri),
    f("resetdsturi", &[], REQ_FAIL_BRANCH, w_resetdsturi),
    f("resetduri", &[], REQ_FAIL_BRANCH, w_resetdsturi),
    f(
        "setdsturi",
        &[ArgKind::Format],
        REQ_FAIL_BRANCH,
        w_setdsturi,
    ),
    f("setduri", &[ArgKind::Format], REQ_FAIL_BRANCH, w_setdsturi),
    f("isdsturiset", &[], REQ_FAIL_BRANCH, w_isdsturiset),
    f("isduriset", &[], REQ_FAIL_BRANCH, w_isdsturiset),
];

/// The always-loaded core pseudo-module.
pub static MODULE: ModuleExports = ModuleExports {
    name: "core",
    functions: &FUNCTIONS,
    init: Some(init),
    ..ModuleExports::EMPTY
};

fn init(init: &mut ModInit<'_>) -> Result<(), String> {
    init.set_state(LastHop::default());
    Ok(())
}

/// The last next hop `forward()` parsed from an IP-literal URI, per process: scripts set
/// `$du` to the same gateway for every request, so the URI is parsed once, not per
/// request. Names are not kept (their DNS answer may change).
#[derive(Debug, Default)]
struct LastHop {
    last: Option<(String, SocketAddr)>,
    /// The buffer forwards are printed into, kept between requests so a forward does not
    /// allocate (and free) a message-sized buffer each time.
    out: Vec<u8>,
}

impl LastHop {
    fn get(&self, uri: &str) -> Option<SocketAddr> {
        self.last
            .as_ref()
            .and_then(|(u, addr)| (u == uri).then_some(*addr))
    }
}

/// Records a failure for `sl_reply_error()` and logs it; returns -1.
fn fail(ctx: &mut Ctx<'_>, err: SipError) -> i32 {
    ctx.log(LogLevel::Err, "core", &format!("forward: {err}"));
    ctx.ser_error = Some(SerError {
        status: err.status(),
        reason: err.reason_phrase().to_string(),
    });
    -1
}

/// Where a forward goes before DNS: an IP literal (no lookup) or a name for the host.
enum NextHop {
    Ip(SocketAddr),
    Name(Destination),
}

/// `addr`, unless it is an address a proxy must never send to.
fn allowed(addr: SocketAddr) -> Result<SocketAddr, SipError> {
    if is_forbidden_destination(addr.ip()) {
        return Err(SipError::with_status(
            "destination is a broadcast address",
            500,
        ));
    }
    Ok(addr)
}

/// Turns a destination into a socket address (IP literal or DNS through the host).
fn resolve(ctx: &mut Ctx<'_>, dst: &Destination) -> Result<SocketAddr, SipError> {
    let ip = match dst.ip() {
        Some(ip) => ip,
        None => ctx
            .host
            .resolve(&dst.host)
            .into_iter()
            .next()
            .ok_or(SipError::with_status("unresolvable destination", 478))?,
    };
    allowed(SocketAddr::new(ip, dst.port))
}

fn resolve_hop(ctx: &mut Ctx<'_>, hop: NextHop) -> Result<SocketAddr, SipError> {
    match hop {
        NextHop::Ip(addr) => allowed(addr),
        NextHop::Name(dst) => resolve(ctx, &dst),
    }
}

/// Sends the current request statelessly to `dst` (see [`build_forward`]); replies go to
/// their second Via.
fn forward_to(ctx: &mut Ctx<'_>, dst: Result<NextHop, SipError>) -> i32 {
    if !ctx.is_request() {
        return relay_reply(ctx);
    }
    let addr = match dst.and_then(|d| resolve_hop(ctx, d)) {
        Ok(a) => a,
        Err(e) => return fail(ctx, e),
    };
    let src = forward::Source {
        ip: ctx.src.addr.ip(),
        port: ctx.src.addr.port(),
    };
    // The R-URI rewrite and the forward's own edits are added to the script's list for
    // this printing only (print_forward and the truncate take them back).
    let mark = ctx.edits.len();
    if let Some(uri) = &ctx.new_ruri {
        ctx.edits.set_request_uri(uri.as_bytes());
    }
    let mut out = ctx
        .module_state_mut::<LastHop>()
        .map(|state| std::mem::take(&mut state.out))
        .unwrap_or_default();
    out.clear();
    out.reserve(ctx.msg.as_bytes().len() + 256);
    let local = &ctx.src.local;
    forward::print_forward(
        ctx.msg,
        &mut ctx.edits,
        src,
        ctx.force_rport,
        |line| put_public_host_port(line, local),
        &mut out,
    );
    ctx.edits.truncate(mark);
    let sent = send(ctx, addr, &out);
    if let Some(state) = ctx.module_state_mut::<LastHop>() {
        state.out = out;
    }
    sent
}

/// A reply goes to its second Via, whatever the destination given.
fn relay_reply(ctx: &mut Ctx<'_>) -> i32 {
    match forward_reply(ctx.msg) {
        Ok((host, port, bytes)) => {
            let dst = Destination { host, port };
            match resolve(ctx, &dst) {
                Ok(addr) => send(ctx, addr, &bytes),
                Err(e) => fail(ctx, e),
            }
        }
        Err(e) => fail(ctx, e),
    }
}

fn send(ctx: &mut Ctx<'_>, addr: SocketAddr, bytes: &[u8]) -> i32 {
    match ctx.host.send(Proto::Udp, addr, bytes) {
        Ok(()) => {
            ctx.host.count(Stat::FwdRequests);
            1
        }
        Err(e) => {
            ctx.log(LogLevel::Err, "core", &format!("forward: {e}"));
            ctx.ser_error = Some(SerError {
                status: 500,
                reason: "Unable to send".into(),
            });
            -1
        }
    }
}

/// `forward()`: to `$du` if set, else the R-URI.
fn w_forward(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    if !ctx.is_request() {
        return relay_reply(ctx);
    }
    let mut remember = None;
    let hop = {
        let ruri;
        let target = match &ctx.dst_uri {
            Some(du) => du.as_str(),
            None => {
                ruri = ctx.ruri();
                &*ruri
            }
        };
        // The received R-URI is decoded once per message (sanity, `uri == myself`).
        let received_ruri =
            ctx.dst_uri.is_none() && ctx.new_ruri.is_none() && ctx.orig_ruri.is_none();
        match ctx.module_state::<LastHop>().and_then(|l| l.get(target)) {
            Some(addr) => Ok(NextHop::Ip(addr)),
            None => if received_ruri {
                ctx.msg.request_uri().and_then(forward::parsed_uri_target)
            } else {
                forward::uri_target(target.as_bytes())
            }
            .map(|t| match t.ip() {
                Some(ip) => {
                    let addr = SocketAddr::new(ip, t.port);
                    remember = Some((target.to_string(), addr));
                    NextHop::Ip(addr)
                }
                None => NextHop::Name(t.destination()),
            }),
        }
    };
    if let (Some(last), Some(state)) = (remember, ctx.module_state_mut::<LastHop>()) {
        state.last = Some(last);
    }
    forward_to(ctx, hop)
}

/// `forward(host, port)`.
fn w_forward_to(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let (Some(host_arg), Some(port_arg)) = (args.first(), args.get(1)) else {
        return -1;
    };
    let host = ctx.arg_str(host_arg).trim().to_string();
    let port = ctx
        .arg_int(port_arg)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_PORT);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .to_string();
    if host.is_empty() {
        return fail(ctx, SipError::with_status("forward: empty host", 500));
    }
    forward_to(ctx, Ok(NextHop::Name(Destination { host, port })))
}

fn w_force_rport(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    ctx.force_rport = true;
    1
}

fn w_set_reply_no_connect(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    ctx.reply_no_connect = true;
    1
}

/// Flag numbers 0..=63 (Kamailio has 32 message flags; siplab's word is 64 bits).
fn flag_bit(ctx: &mut Ctx<'_>, args: &[Arg]) -> Option<u64> {
    let n = args.first().and_then(|a| ctx.arg_int(a))?;
    match u32::try_from(n).ok().filter(|n| *n < 64) {
        Some(n) => Some(1u64 << n),
        None => {
            ctx.log(LogLevel::Err, "core", &format!("bad flag number {n}"));
            None
        }
    }
}

fn truth(b: bool) -> i32 {
    if b { 1 } else { -1 }
}

fn w_setflag(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    flag_bit(ctx, args).map_or(-1, |b| {
        ctx.flags |= b;
        1
    })
}

fn w_resetflag(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    flag_bit(ctx, args).map_or(-1, |b| {
        ctx.flags &= !b;
        1
    })
}

fn w_isflagset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    flag_bit(ctx, args).map_or(-1, |b| truth(ctx.flags & b != 0))
}

fn w_setbflag(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    flag_bit(ctx, args).map_or(-1, |b| {
        ctx.bflags |= b;
        1
    })
}

fn w_resetbflag(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    flag_bit(ctx, args).map_or(-1, |b| {
        ctx.bflags &= !b;
        1
    })
}

fn w_isbflagset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    flag_bit(ctx, args).map_or(-1, |b| truth(ctx.bflags & b != 0))
}

/// The parts of a sip/sips R-URI a rewrite works on: `scheme:`, user (without `@`),
/// `host[:port]` and the rest (`;params?headers`), all as written.
struct UriParts {
    scheme: String,
    user: Option<String>,
    hostport: String,
    rest: String,
}

impl UriParts {
    fn of(uri: &str) -> Result<UriParts, SipError> {
        let parsed = Uri::parse(uri.as_bytes())?;
        if !parsed.is_sip() {
            return Err(SipError::UNSUPPORTED_URI_SCHEME);
        }
        let scheme = format!("{}:", String::from_utf8_lossy(parsed.scheme_raw));
        let after_scheme = uri.get(scheme.len()..).unwrap_or_default();
        // Everything from the host on: host, optional port, then params/headers.
        let host_at = after_scheme.find('@').map_or(0, |i| i + 1);
        let (userinfo, hostpart) = after_scheme.split_at(host_at);
        let end = hostpart.find([';', '?']).unwrap_or(hostpart.len());
        let (hostport, rest) = hostpart.split_at(end);
        Ok(UriParts {
            scheme,
            user: (!userinfo.is_empty()).then(|| userinfo.trim_end_matches('@').to_string()),
            hostport: hostport.to_string(),
            rest: rest.to_string(),
        })
    }

    fn build(&self) -> String {
        let mut s = self.scheme.clone();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.hostport);
        s.push_str(&self.rest);
        s
    }

    /// The user without `:password` and the password part (with its `:`).
    fn split_user(&self) -> (String, String) {
        let u = self.user.clone().unwrap_or_default();
        match u.split_once(':') {
            Some((user, pw)) => (user.to_string(), format!(":{pw}")),
            None => (u, String::new()),
        }
    }
}

/// Applies `change` to the current R-URI and stores the result.
fn rewrite(ctx: &mut Ctx<'_>, change: impl FnOnce(&mut UriParts)) -> i32 {
    let current = ctx.ruri().into_owned();
    match UriParts::of(&current) {
        Ok(mut parts) => {
            change(&mut parts);
            ctx.set_ruri(parts.build());
            1
        }
        Err(e) => {
            ctx.log(LogLevel::Err, "core", &format!("cannot rewrite R-URI: {e}"));
            -1
        }
    }
}

fn w_strip(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let n = args.first().and_then(|a| ctx.arg_int(a)).unwrap_or(0);
    let n = usize::try_from(n).unwrap_or(0);
    rewrite(ctx, |p| {
        let (user, pw) = p.split_user();
        let kept: String = user.chars().skip(n).collect();
        p.user = (!kept.is_empty() || !pw.is_empty()).then(|| format!("{kept}{pw}"));
    })
}

fn w_strip_tail(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let n = args.first().and_then(|a| ctx.arg_int(a)).unwrap_or(0);
    let n = usize::try_from(n).unwrap_or(0);
    rewrite(ctx, |p| {
        let (user, pw) = p.split_user();
        let keep = user.chars().count().saturating_sub(n);
        let kept: String = user.chars().take(keep).collect();
        p.user = (!kept.is_empty() || !pw.is_empty()).then(|| format!("{kept}{pw}"));
    })
}

fn w_prefix(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let prefix = ctx.arg_str(a).into_owned();
    rewrite(ctx, |p| {
        p.user = Some(format!("{prefix}{}", p.user.clone().unwrap_or_default()));
    })
}

fn w_rewritehostport(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let hp = ctx.arg_str(a).into_owned();
    rewrite(ctx, |p| p.hostport = hp)
}

fn w_rewritehost(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let host = ctx.arg_str(a).into_owned();
    rewrite(ctx, |p| {
        // Keep the port: it follows the last ':' outside an IPv6 reference.
        let port = match p.hostport.rfind(':') {
            Some(i) if !p.hostport.get(i..).unwrap_or_default().contains(']') => {
                p.hostport.get(i..).unwrap_or_default().to_string()
            }
            _ => String::new(),
        };
        p.hostport = format!("{host}{port}");
    })
}

fn w_rewriteport(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let port = ctx.arg_str(a).into_owned();
    rewrite(ctx, |p| {
        let host = match p.hostport.rfind(':') {
            Some(i) if !p.hostport.get(i..).unwrap_or_default().contains(']') => {
                p.hostport.get(..i).unwrap_or_default().to_string()
            }
            _ => p.hostport.clone(),
        };
        p.hostport = if port.is_empty() {
            host
        } else {
            format!("{host}:{port}")
        };
    })
}

fn w_rewriteuser(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let user = ctx.arg_str(a).into_owned();
    rewrite(ctx, |p| {
        let (_, pw) = p.split_user();
        p.user = (!user.is_empty() || !pw.is_empty()).then(|| format!("{user}{pw}"));
    })
}

fn w_rewriteuri(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let uri = ctx.arg_str(a).into_owned();
    if Uri::parse(uri.as_bytes()).is_err() {
        ctx.log(
            LogLevel::Err,
            "core",
            &format!("rewriteuri: bad URI `{uri}`"),
        );
        return -1;
    }
    ctx.set_ruri(uri);
    1
}

fn w_revert_uri(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    ctx.revert_ruri();
    1
}

fn w_resetdsturi(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    ctx.dst_uri = None;
    1
}

/// `setdsturi(uri)`: sets `$du` (must parse).
fn w_setdsturi(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let uri = ctx.arg_str(a).trim().to_string();
    if Uri::parse(uri.as_bytes()).is_err() {
        ctx.log(
            LogLevel::Err,
            "core",
            &format!("setdsturi: bad URI `{uri}`"),
        );
        return -1;
    }
    ctx.dst_uri = Some(uri);
    1
}

fn w_isdsturiset(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    truth(ctx.dst_uri.is_some())
}

#[cfg(test)]
mod tests;
