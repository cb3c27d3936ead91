//! `rr`: Record-Route insertion and Route processing (`record_route`,
//! `record_route_preset`, `record_route_advertised_address`, `add_rr_param`, `loose_route`).

pub mod logic;

use std::borrow::Cow;

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
const DONE_AVP: &str = private_name!("rr", "done");

/// `;name=value` params queued by `add_rr_param` for this message.
fn pending_params<'c>(ctx: &'c Ctx<'_>) -> Cow<'c, str> {
    private_get(ctx, PARAMS_AVP).map_or(Cow::Borrowed(""), Value::to_str)
}

fn already_recorded(ctx: &Ctx<'_>) -> bool {
    private_get(ctx, DONE_AVP).is_some()
}

fn mark_recorded(ctx: &mut Ctx<'_>) {
    private_set(ctx, DONE_AVP, Value::Int(1));
}

/// The address a Record-Route carries.
enum RrAddress<'a> {
    /// The receiving socket's public address (written without an intermediate String).
    Socket,
    /// `host:port` given by the script.
    Given(&'a str),
}

/// Inserts our Record-Route for `address`, with the params queued by `add_rr_param` and
/// `extra`.
fn insert_rr(ctx: &mut Ctx<'_>, address: RrAddress<'_>, extra: &str) -> i32 {
    if !ctx.is_request() {
        return -1;
    }
    let cfg = config(ctx);
    let msg = ctx.msg;
    let ftag = if cfg.append_fromtag {
        msg.from_tag()
    } else {
        None
    };
    let ruri = cfg.add_username.then(|| ctx.ruri());
    let ruri_parsed = ruri.as_ref().and_then(|r| Uri::parse(r.as_bytes()).ok());
    let user = ruri_parsed.as_ref().and_then(|u| u.user);
    let pending = pending_params(ctx);
    let mut line = Vec::with_capacity(96 + pending.len() + extra.len());
    line.extend_from_slice(logic::RECORD_ROUTE_START);
    if let Some(u) = user {
        // As text, like the R-URI user it came from (invalid UTF-8 replaced).
        line.extend_from_slice(String::from_utf8_lossy(u).as_bytes());
        line.push(b'@');
    }
    match address {
        RrAddress::Socket => put_public_host_port(&mut line, &ctx.src.local),
        RrAddress::Given(host_port) => line.extend_from_slice(host_port.as_bytes()),
    }
    logic::finish_record_route(
        &mut line,
        cfg.full_lr,
        ftag,
        &[pending.as_bytes(), extra.as_bytes()],
    );
    ctx.edits.insert_header_line(InsertAt::Top, line);
    mark_recorded(ctx);
    1
}

/// `record_route([params])`.
fn w_record_route(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let extra = match args.first() {
        Some(a) => ctx.arg_str(a),
        None => Cow::Borrowed(""),
    };
    insert_rr(ctx, RrAddress::Socket, &extra)
}

/// `record_route_advertised_address(host:port)`.
fn w_record_route_advertised(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let hp = ctx.arg_str(a);
    insert_rr(ctx, RrAddress::Given(hp.trim()), "")
}

/// `record_route_preset(value[, value2])`: the values are used as given (`sip:` and `;lr`
/// added when missing); with two, both lines are inserted (outbound side on top).
fn w_record_route_preset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    if !ctx.is_request() {
        return -1;
    }
    let full_lr = config(ctx).full_lr;
    let mut values = Vec::new();
    for a in args {
        values.push(ctx.arg_str(a).trim().to_string());
    }
    // Top inserts print in the order added: the first value ends up first.
    for v in &values {
        let line = logic::record_route_preset_line(v, full_lr);
        insert_record_route(&mut ctx.edits, &line);
    }
    mark_recorded(ctx);
    1
}

/// `add_rr_param(";name=value")`: before `record_route` it becomes part of our
/// Record-Route. The edit list cannot change a line already inserted, so after
/// `record_route` it fails with an error (Kamailio accepts both orders).
fn w_add_rr_param(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let p = ctx.arg_str(a).trim().to_string();
    if already_recorded(ctx) {
        ctx.log(
            LogLevel::Err,
            "rr",
            "add_rr_param after record_route is not supported by siplab; call it before",
        );
        return -1;
    }
    let p = if p.starts_with(';') {
        p
    } else {
        format!(";{p}")
    };
    let all = format!("{}{p}", pending_params(ctx));
    private_set(ctx, PARAMS_AVP, Value::Str(all));
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
