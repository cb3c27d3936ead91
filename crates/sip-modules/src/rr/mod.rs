//! `rr`: Record-Route insertion and Route processing (`record_route`,
//! `record_route_preset`, `record_route_advertised_address`, `add_rr_param`, `loose_route`).

pub mod logic;

use std::borrow::Cow;
use std::ops::Range;

use sip_msg::{HeaderName, InsertAt, Uri};
use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModInit, ModuleExports, ParamExport, ParamKind,
    PvExport, RouteKinds, Value,
};

pub use logic::{LooseRoute, insert_record_route, loose_route, record_route_line};

use crate::util::{is_myself, private_get, private_name, private_set, put_public_host_port};

const RR_ROUTES: RouteKinds = RouteKinds::REQUEST
    .union(RouteKinds::FAILURE)
    .union(RouteKinds::BRANCH);

static FUNCTIONS: [FunctionExport; 7] = [
    FunctionExport {
        name: "record_route",
        args: &[],
        fixup: None,
        routes: RR_ROUTES,
        handler: w_record_route,
    },
    FunctionExport {
        name: "record_route",
        args: &[ArgKind::Format],
        fixup: None,
        routes: RR_ROUTES,
        handler: w_record_route,
    },
    FunctionExport {
        name: "record_route_preset",
        args: &[ArgKind::Format],
        fixup: None,
        routes: RR_ROUTES,
        handler: w_record_route_preset,
    },
    FunctionExport {
        name: "record_route_preset",
        args: &[ArgKind::Format, ArgKind::Format],
        fixup: None,
        routes: RR_ROUTES,
        handler: w_record_route_preset,
    },
    FunctionExport {
        name: "record_route_advertised_address",
        args: &[ArgKind::Format],
        fixup: None,
        routes: RR_ROUTES,
        handler: w_record_route_advertised,
    },
    FunctionExport {
        name: "add_rr_param",
        args: &[ArgKind::Format],
        fixup: None,
        routes: RR_ROUTES,
        handler: w_add_rr_param,
    },
    FunctionExport {
        name: "loose_route",
        args: &[],
        fixup: None,
        routes: RouteKinds::REQUEST,
        handler: w_loose_route,
    },
];

const fn int_param(name: &'static str) -> ParamExport {
    ParamExport {
        name,
        kind: ParamKind::Int,
        aliases: &[],
    }
}

static PARAMS: [ParamExport; 7] = [
    int_param("enable_full_lr"),
    int_param("append_fromtag"),
    int_param("enable_double_rr"),
    int_param("add_username"),
    int_param("enable_socket_mismatch_warning"),
    int_param("force_send_socket"),
    ParamExport {
        name: "custom_user_avp",
        kind: ParamKind::Str,
        aliases: &[],
    },
];

static PVS: [PvExport; 1] = [PvExport {
    name: "route_uri",
    get: pv_route_uri,
    set: None,
}];

pub static MODULE: ModuleExports = ModuleExports {
    name: "rr",
    functions: &FUNCTIONS,
    params: &PARAMS,
    init: Some(init),
    pvs: &PVS,
    ..ModuleExports::EMPTY
};

/// The module's settings after init (Kamailio defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrConfig {
    /// `;lr=on` instead of `;lr`.
    pub full_lr: bool,
    /// Add `;ftag=<From tag>` (Kamailio's default is on).
    pub append_fromtag: bool,
    /// Put the R-URI user into the Record-Route URI.
    pub add_username: bool,
}

impl Default for RrConfig {
    fn default() -> Self {
        RrConfig {
            full_lr: false,
            append_fromtag: true,
            add_username: false,
        }
    }
}

fn init(init: &mut ModInit<'_>) -> Result<(), String> {
    let d = RrConfig::default();
    let flag = |name: &str, default: bool| init.param_int(name).map_or(default, |v| v != 0);
    let cfg = RrConfig {
        full_lr: flag("enable_full_lr", d.full_lr),
        append_fromtag: flag("append_fromtag", d.append_fromtag),
        add_username: flag("add_username", d.add_username),
    };
    init.set_state(cfg);
    Ok(())
}

fn config(ctx: &Ctx<'_>) -> RrConfig {
    ctx.module_state::<RrConfig>().copied().unwrap_or_default()
}

const PARAMS_AVP: &str = private_name!("rr", "params");
const LINES_AVP: &str = private_name!("rr", "lines");

/// Params queued by `add_rr_param` for this message, as given.
fn pending_params<'c>(ctx: &'c Ctx<'_>) -> Cow<'c, str> {
    private_get(ctx, PARAMS_AVP).map_or(Cow::Borrowed(""), Value::to_str)
}

/// Where in the edit list the Record-Route lines of the last `record_route*` call are, so
/// a later `add_rr_param` can amend them. That call inserted them one after another, so
/// they are a range of indices, kept as one int (`start << 32 | end`, no allocation).
fn recorded_lines(ctx: &Ctx<'_>) -> Option<Range<usize>> {
    let Value::Int(packed) = *private_get(ctx, LINES_AVP)? else {
        return None;
    };
    let start = usize::try_from(packed >> 32).ok()?;
    let end = usize::try_from(packed & i64::from(u32::MAX)).ok()?;
    Some(start..end)
}

/// Records the lines inserted since the edit list had `start` edits as this call's.
fn mark_recorded(ctx: &mut Ctx<'_>, start: usize) {
    // Edit lists hold a handful of edits; the clamps only keep the packing in range.
    let start = i64::from(i32::try_from(start).unwrap_or(i32::MAX));
    let end = i64::from(u32::try_from(ctx.edits.len()).unwrap_or(u32::MAX));
    private_set(ctx, LINES_AVP, Value::Int(start << 32 | end));
}

/// The From tag `;ftag=` carries when `append_fromtag` is on (none when empty).
fn from_tag<'m>(ctx: &Ctx<'m>, cfg: RrConfig) -> Option<&'m [u8]> {
    let msg = ctx.msg;
    cfg.append_fromtag
        .then(|| msg.from_tag())
        .flatten()
        .filter(|t| !t.is_empty())
}

/// Starts a Record-Route line: `Record-Route: <sip:` and, with `add_username`, the R-URI
/// user and `@`.
fn start_line(ctx: &Ctx<'_>, cfg: RrConfig, capacity: usize) -> Vec<u8> {
    let mut line = Vec::with_capacity(96 + capacity);
    line.extend_from_slice(logic::RECORD_ROUTE_START);
    if cfg.add_username {
        let ruri = ctx.ruri();
        if let Some(u) = Uri::parse(ruri.as_bytes()).ok().and_then(|u| u.user) {
            // As text, like the R-URI user it came from (invalid UTF-8 replaced).
            line.extend_from_slice(String::from_utf8_lossy(u).as_bytes());
            line.push(b'@');
        }
    }
    line
}

/// `record_route([params])`: `<sip:HOST:PORT;lr[;ftag=..]<params><add_rr_param params>>`,
/// as Kamailio's `build_rr`; the queued params are used up.
fn w_record_route(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    if !ctx.is_request() {
        return -1;
    }
    let extra = match args.first() {
        Some(a) => ctx.arg_str(a).into_owned(),
        None => String::new(),
    };
    let cfg = config(ctx);
    let ftag = from_tag(ctx, cfg);
    let pending = pending_params(ctx).into_owned();
    let mut line = start_line(ctx, cfg, pending.len() + extra.len());
    put_public_host_port(&mut line, &ctx.src.local);
    logic::finish_record_route(
        &mut line,
        cfg.full_lr,
        ftag,
        &[extra.as_bytes(), pending.as_bytes()],
    );
    let start = ctx.edits.len();
    ctx.edits.insert_header_line(InsertAt::Top, line);
    mark_recorded(ctx, start);
    if !pending.is_empty() {
        private_set(ctx, PARAMS_AVP, Value::Str(String::new()));
    }
    1
}

/// `record_route_advertised_address(host:port)`: `<sip:HOSTPORT[;ftag=..];lr<params>>`,
/// as Kamailio's `build_advertised_rr` (tag before `;lr` there).
fn w_record_route_advertised(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    if !ctx.is_request() {
        return -1;
    }
    let host_port = ctx.arg_str(a).trim().to_string();
    let cfg = config(ctx);
    let ftag = from_tag(ctx, cfg);
    let pending = pending_params(ctx).into_owned();
    let mut line = start_line(ctx, cfg, host_port.len() + pending.len());
    line.extend_from_slice(host_port.as_bytes());
    logic::finish_preset(&mut line, cfg.full_lr, ftag, b"", pending.as_bytes());
    let start = ctx.edits.len();
    ctx.edits.insert_header_line(InsertAt::Top, line);
    mark_recorded(ctx, start);
    1
}

/// `record_route_preset(value[, value2])`: per value `<sip:VALUE[;ftag=..]<params>;lr>`
/// exactly as Kamailio 5.6.3 prints it (`sip:` and `;lr` always added, the value used as
/// given); with two, both lines are inserted (outbound side on top).
fn w_record_route_preset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    if !ctx.is_request() {
        return -1;
    }
    let cfg = config(ctx);
    let ftag = from_tag(ctx, cfg);
    let pending = pending_params(ctx).into_owned();
    let start = ctx.edits.len();
    for a in args {
        let value = ctx.arg_str(a).trim().to_string();
        let mut line = start_line(ctx, cfg, value.len() + pending.len());
        line.extend_from_slice(value.as_bytes());
        logic::finish_preset(&mut line, cfg.full_lr, ftag, pending.as_bytes(), b"");
        // Top inserts print in the order added: the first value ends up first.
        ctx.edits.insert_header_line(InsertAt::Top, line);
    }
    mark_recorded(ctx, start);
    1
}

/// `add_rr_param(param)`: the text as given (Kamailio adds no `;`). Before a
/// `record_route*` it is queued for the Record-Route to come; after one it goes at the
/// end of the Record-Route line(s) that call inserted, before the `>`.
fn w_add_rr_param(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let p = ctx.arg_str(a).into_owned();
    let Some(lines) = recorded_lines(ctx) else {
        let all = format!("{}{p}", pending_params(ctx));
        private_set(ctx, PARAMS_AVP, Value::Str(all));
        return 1;
    };
    let mut amended = false;
    for index in lines {
        if let Some(line) = ctx.edits.inserted_line_mut(index) {
            if line.starts_with(logic::RECORD_ROUTE_START) && line.ends_with(b">") {
                let at = line.len() - 1;
                line.splice(at..at, p.bytes());
                amended = true;
            }
        }
    }
    if !amended {
        // The Record-Route was printed into the stored request earlier (a branch created
        // from failure_route): siplab cannot change it any more.
        ctx.log(
            LogLevel::Err,
            "rr",
            "add_rr_param: the Record-Route added earlier is no longer editable here",
        );
        return -1;
    }
    1
}

/// `loose_route()`: see [`logic::loose_route`]; updates the R-URI and `$du`.
fn w_loose_route(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    if !ctx.is_request() || ctx.msg.header(HeaderName::Route).is_none() {
        return -1;
    }
    let ruri = ctx.ruri().into_owned();
    let mut edits = std::mem::take(&mut ctx.edits);
    let outcome = {
        let me = &*ctx;
        loose_route(me.msg, ruri.as_bytes(), &mut edits, &|u| is_myself(me, u))
    };
    ctx.edits = edits;
    if let Some(u) = outcome.request_uri {
        ctx.set_ruri(String::from_utf8_lossy(&u).into_owned());
    }
    if let Some(d) = outcome.dst_uri {
        ctx.dst_uri = Some(String::from_utf8_lossy(&d).into_owned());
    }
    outcome.ret
}

/// `$route_uri`: the URI of the top Route header.
fn pv_route_uri(ctx: &mut Ctx<'_>, _inner: Option<&str>) -> Value {
    match ctx.msg.routes().next() {
        Some(Ok(r)) => Value::from_bytes(r.uri.raw),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests;
