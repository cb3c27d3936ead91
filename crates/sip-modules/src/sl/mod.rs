//! `sl`: stateless replies (`sl_send_reply`, `sl_reply_error`, `send_reply`).

pub mod reply;

pub use reply::{
    DEFAULT_SERVER, SlReply, build_sl_reply, is_ack_to_local_reply, stateless_to_tag, to_tag_prefix,
};

use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModuleExports, ParamExport, ParamKind, RouteKinds,
    SerError, Stat, TmApi,
};

/// The reason `sl_reply_error()` uses when no function left an error (Kamailio's text for
/// its generic error number 1) [E15b].
pub const GENERIC_ERROR_REASON: &str = "I'm terribly sorry, server error occurred (1/SL)";

const REQ_FAIL: RouteKinds = RouteKinds::REQUEST.union(RouteKinds::FAILURE);

static FUNCTIONS: [FunctionExport; 4] = [
    FunctionExport {
        name: "sl_send_reply",
        args: &[ArgKind::Int, ArgKind::Format],
        fixup: None,
        routes: REQ_FAIL,
        handler: w_sl_send_reply,
    },
    FunctionExport {
        name: "sl_reply_error",
        args: &[],
        fixup: None,
        routes: REQ_FAIL,
        handler: w_sl_reply_error,
    },
    FunctionExport {
        name: "send_reply",
        args: &[ArgKind::Int, ArgKind::Format],
        fixup: None,
        routes: REQ_FAIL.union(RouteKinds::BRANCH),
        handler: w_send_reply,
    },
    FunctionExport {
        name: "sl_reply",
        args: &[ArgKind::Int, ArgKind::Format],
        fixup: None,
        routes: REQ_FAIL,
        handler: w_sl_send_reply,
    },
];

/// Accepted for compatibility; siplab's sl has nothing to tune.
static PARAMS: [ParamExport; 3] = [
    ParamExport {
        name: "bind_tm",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "default_code",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "default_reason",
        kind: ParamKind::Str,
        aliases: &[],
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "sl",
    functions: &FUNCTIONS,
    params: &PARAMS,
    ..ModuleExports::EMPTY
};

/// The `Server:` value the cfg asks for: `server_header` (with or without its `Server:`
/// name), none with `server_signature=no`, else siplab's.
fn server_value(ctx: &Ctx<'_>) -> Option<String> {
    let core = ctx.core();
    if !core.server_signature {
        return None;
    }
    Some(match &core.server_header {
        Some(h) => {
            let h = h.trim();
            match h.split_once(':') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("server") => {
                    value.trim().to_string()
                }
                _ => h.to_string(),
            }
        }
        None => DEFAULT_SERVER.to_string(),
    })
}

/// The To-tag seed of this proxy: the socket the request arrived on.
fn tag_seed(ctx: &Ctx<'_>) -> String {
    ctx.src.local.addr.to_string()
}

/// Sends a stateless reply to where the request came from (Kamailio replies to the
/// source address, not the Via, unless `reply_to_via` is set). Returns the script code:
/// 1 sent, -1 ACK / reply / send failure.
pub fn send_stateless(ctx: &mut Ctx<'_>, code: u16, reason: &str, extra_headers: &[&[u8]]) -> i32 {
    let server = server_value(ctx);
    let seed = tag_seed(ctx);
    // Lines queued by textops' append_to_reply come first, as Kamailio's reply lumps.
    let queued = crate::textops::reply_headers(ctx);
    let mut headers: Vec<&[u8]> = queued.iter().map(|l| l.as_bytes()).collect();
    headers.extend_from_slice(extra_headers);
    let opts = SlReply {
        server: server.as_deref(),
        tag_seed: &seed,
        extra_headers: &headers,
    };
    let Some(bytes) = build_sl_reply(ctx.msg, code, reason.as_bytes(), &opts) else {
        return -1;
    };
    let (proto, dst) = (ctx.src.proto, ctx.src.addr);
    match ctx.host.send(proto, dst, &bytes) {
        Ok(()) => {
            ctx.host.count(Stat::SlSentReplies);
            if code >= 300 {
                ctx.host.count(Stat::SlSentErrReplies);
            }
            1
        }
        Err(e) => {
            ctx.log(LogLevel::Err, "sl", &format!("failed to send reply: {e}"));
            -1
        }
    }
}

fn code_reason(ctx: &mut Ctx<'_>, args: &[Arg]) -> Option<(u16, String)> {
    let code = args.first().and_then(|a| ctx.arg_int(a))?;
    let code = u16::try_from(code)
        .ok()
        .filter(|c| (100..700).contains(c))?;
    let reason = args
        .get(1)
        .map(|a| ctx.arg_str(a).into_owned())
        .unwrap_or_default();
    Some((code, reason))
}

fn w_sl_send_reply(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    match code_reason(ctx, args) {
        Some((code, reason)) => send_stateless(ctx, code, &reason, &[]),
        None => {
            ctx.log(LogLevel::Err, "sl", "invalid reply code");
            -1
        }
    }
}

/// Replies with the error the last failing function left (e.g. `forward()` to a `tel:`
/// R-URI → 416), or Kamailio's generic 500.
fn w_sl_reply_error(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    let SerError { status, reason } = ctx.ser_error.clone().unwrap_or(SerError {
        status: 500,
        reason: GENERIC_ERROR_REASON.to_string(),
    });
    send_stateless(ctx, status, &reason, &[])
}

/// Stateful through tm when the message has a transaction, else stateless.
fn w_send_reply(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some((code, reason)) = code_reason(ctx, args) else {
        ctx.log(LogLevel::Err, "sl", "invalid reply code");
        return -1;
    };
    if let Some(tm) = ctx.api::<dyn TmApi>() {
        if tm.has_transaction(ctx) {
            return tm.reply(ctx, code, &reason);
        }
    }
    send_stateless(ctx, code, &reason, &[])
}

#[cfg(test)]
mod tests;
