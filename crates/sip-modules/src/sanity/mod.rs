//! `sanity`: Kamailio's request sanity checks (`sanity_check([checks[, uri_checks]])`,
//! `sanity_reply()`), replying through `sl` like Kamailio.

pub mod checks;

pub use checks::{
    DEFAULT_CHECKS, DEFAULT_URI_CHECKS, SanityFailure, parse_proxy_require, sanity_check,
};

use sip_msg::Method;
use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModInit, ModuleExports, ParamExport, ParamKind,
    RouteKinds, Value,
};

use crate::util::{private_get, private_name, private_set};

const REQ: RouteKinds = RouteKinds::REQUEST
    .union(RouteKinds::FAILURE)
    .union(RouteKinds::BRANCH);

static FUNCTIONS: [FunctionExport; 4] = [
    FunctionExport {
        name: "sanity_check",
        args: &[],
        fixup: None,
        routes: REQ,
        handler: w_sanity_check,
    },
    FunctionExport {
        name: "sanity_check",
        args: &[ArgKind::Int],
        fixup: None,
        routes: REQ,
        handler: w_sanity_check,
    },
    FunctionExport {
        name: "sanity_check",
        args: &[ArgKind::Int, ArgKind::Int],
        fixup: None,
        routes: REQ,
        handler: w_sanity_check,
    },
    FunctionExport {
        name: "sanity_reply",
        args: &[],
        fixup: None,
        routes: REQ,
        handler: w_sanity_reply,
    },
];

static PARAMS: [ParamExport; 5] = [
    ParamExport {
        name: "default_checks",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "uri_checks",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "proxy_require",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "autodrop",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "noreply",
        kind: ParamKind::Int,
        aliases: &[],
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "sanity",
    functions: &FUNCTIONS,
    params: &PARAMS,
    init: Some(init),
    ..ModuleExports::EMPTY
};

/// The module's settings after init (Kamailio defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanityConfig {
    pub default_checks: u32,
    pub uri_checks: u32,
    /// Option tags this proxy supports in Proxy-Require.
    pub proxy_require: Vec<String>,
    /// A failed check stops the script (return 0) instead of returning -1.
    pub autodrop: bool,
    /// Do not reply; `sanity_reply()` sends the stored reply later.
    pub noreply: bool,
}

/// The settings without init (a runtime the module was not loaded into).
static DEFAULT_CONFIG: SanityConfig = SanityConfig {
    default_checks: DEFAULT_CHECKS,
    uri_checks: DEFAULT_URI_CHECKS,
    proxy_require: Vec::new(),
    autodrop: true,
    noreply: false,
};

impl Default for SanityConfig {
    fn default() -> Self {
        DEFAULT_CONFIG.clone()
    }
}

fn mask(v: Option<i64>, default: u32, name: &str) -> Result<u32, String> {
    match v {
        None => Ok(default),
        Some(v) => u32::try_from(v).map_err(|_| format!("sanity: bad {name} {v}")),
    }
}

fn init(init: &mut ModInit<'_>) -> Result<(), String> {
    let cfg = SanityConfig {
        default_checks: mask(
            init.param_int("default_checks"),
            DEFAULT_CHECKS,
            "default_checks",
        )?,
        uri_checks: mask(
            init.param_int("uri_checks"),
            DEFAULT_URI_CHECKS,
            "uri_checks",
        )?,
        proxy_require: init
            .param_str("proxy_require")
            .map(parse_proxy_require)
            .unwrap_or_default(),
        autodrop: init.param_int("autodrop").is_none_or(|v| v != 0),
        noreply: init.param_int("noreply").is_some_and(|v| v != 0),
    };
    init.set_state(cfg);
    Ok(())
}

/// A mask argument; `None` when its value is not a u32.
fn mask_arg(ctx: &mut Ctx<'_>, arg: &Arg) -> Option<u32> {
    ctx.arg_int(arg).and_then(|v| u32::try_from(v).ok())
}

/// Sends (or, with `noreply`, stores) the reply for a failed check. ACKs are never answered.
fn answer(ctx: &mut Ctx<'_>, failure: &SanityFailure, noreply: bool) {
    let Some((code, reason)) = failure.reply else {
        return;
    };
    if ctx.msg.method() == Some(Method::Ack) {
        return;
    }
    if noreply {
        private_set(
            ctx,
            private_name!("sanity", "code"),
            Value::Int(i64::from(code)),
        );
        private_set(ctx, private_name!("sanity", "reason"), Value::str(reason));
        private_set(
            ctx,
            private_name!("sanity", "header"),
            Value::opt_bytes(failure.extra_header.as_deref().map(str::as_bytes)),
        );
        return;
    }
    match failure.extra_header.as_deref() {
        Some(h) => crate::sl::send_stateless(ctx, code, reason, &[h.as_bytes()]),
        None => crate::sl::send_stateless(ctx, code, reason, &[]),
    };
}

fn w_sanity_check(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    // Masks given as arguments are evaluated first, so the config is looked up once and
    // borrowed, not cloned, per call.
    let given_checks = args.first().map(|a| mask_arg(ctx, a));
    let given_uri_checks = args.get(1).map(|a| mask_arg(ctx, a));
    let cfg = ctx
        .module_state::<SanityConfig>()
        .unwrap_or(&DEFAULT_CONFIG);
    let (autodrop, noreply) = (cfg.autodrop, cfg.noreply);
    let (Some(checks), Some(uri_checks)) = (
        given_checks.unwrap_or(Some(cfg.default_checks)),
        given_uri_checks.unwrap_or(Some(cfg.uri_checks)),
    ) else {
        ctx.log(LogLevel::Err, "sanity", "invalid check mask");
        return -1;
    };
    let proxy_require = cfg.proxy_require.as_slice();
    match sanity_check(ctx.msg, checks, uri_checks, proxy_require) {
        Ok(()) => 1,
        Err(failure) => {
            if ctx.log_enabled(LogLevel::Dbg) {
                let what = failure.reply.map_or("silent check", |(_, r)| r);
                ctx.log(
                    LogLevel::Dbg,
                    "sanity",
                    &format!("sanity check failed: {what}"),
                );
            }
            answer(ctx, &failure, noreply);
            if autodrop { 0 } else { -1 }
        }
    }
}

/// `sanity_reply()`: sends the reply a failed check stored under `noreply`.
fn w_sanity_reply(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    let Some(code) = private_get(ctx, private_name!("sanity", "code")) else {
        return -1;
    };
    let code = u16::try_from(code.to_int()).unwrap_or(500);
    let reason = private_get(ctx, private_name!("sanity", "reason"))
        .map(|v| v.to_str().into_owned())
        .unwrap_or_default();
    let header = private_get(ctx, private_name!("sanity", "header"))
        .filter(|v| !v.is_null())
        .map(|v| v.to_str().into_owned());
    let extra: Vec<&[u8]> = header.as_deref().map(str::as_bytes).into_iter().collect();
    crate::sl::send_stateless(ctx, code, &reason, &extra)
}

#[cfg(test)]
mod tests;
