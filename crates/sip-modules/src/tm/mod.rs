//! `tm`: stateful transactions in shared memory (see README.md).
//!
//! * [`table`]: the shm hash table, reference-counted cells, state blobs, timer wheel.
//! * [`key`]: a request's matching key and its stored blob.
//! * [`state`]: the per-transaction state and its validated byte encoding.
//! * [`engine`]: t_relay/t_reply/lookup, the reply hook, end-of-script and timer hooks.

pub mod engine;
pub mod key;
pub mod state;
pub mod table;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod exhaustion_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod gap_tests;
#[cfg(test)]
mod lab;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use sip_msg::Method as MsgMethod;
use sip_script::Dialect;
use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModInit, ModuleExports, ParamExport, ParamKind,
    RouteKind, RouteKinds, RpcError, RpcExport, TmApi, Value,
};
use sip_txn::{
    CancelBMethod, CheckTrans, CheckedMessage, FailureReplyMode, MatchConfig, Millis, TmConfig,
};

use engine::{Tm, TmMsg, tm_of, txn_route};
use key::OwnedKey;
use table::{Stat, Table};

const REQ: RouteKinds = RouteKinds::REQUEST;
const REQ_FAIL: RouteKinds = RouteKinds::REQUEST.union(RouteKinds::FAILURE);
const TX_ROUTES: RouteKinds = RouteKinds::REQUEST
    .union(RouteKinds::FAILURE)
    .union(RouteKinds::ONREPLY)
    .union(RouteKinds::BRANCH);

macro_rules! f {
    ($name:expr, [$($a:expr),*], $routes:expr, $h:expr) => {
        FunctionExport { name: $name, args: &[$($a),*], fixup: None, routes: $routes, handler: $h }
    };
}

static FUNCTIONS: [FunctionExport; 22] = [
    f!("t_relay", [], REQ_FAIL, w_t_relay),
    f!(
        "t_relay",
        [ArgKind::Format, ArgKind::Int],
        REQ_FAIL,
        w_t_relay_to
    ),
    f!("t_newtran", [], REQ, w_t_newtran),
    f!(
        "t_reply",
        [ArgKind::Int, ArgKind::Format],
        REQ_FAIL,
        w_t_reply
    ),
    f!(
        "t_check_trans",
        [],
        TX_ROUTES.union(RouteKinds::REPLY),
        w_t_check_trans
    ),
    f!(
        "t_on_failure",
        [ArgKind::Route(RouteKind::Failure)],
        TX_ROUTES,
        w_t_on_failure
    ),
    f!(
        "t_on_reply",
        [ArgKind::Route(RouteKind::OnReply)],
        TX_ROUTES,
        w_t_on_reply
    ),
    f!(
        "t_on_branch",
        [ArgKind::Route(RouteKind::Branch)],
        TX_ROUTES,
        w_t_on_branch
    ),
    f!("t_is_set", [ArgKind::Str], TX_ROUTES, w_t_is_set),
    f!(
        "t_check_status",
        [ArgKind::Regex],
        TX_ROUTES,
        w_t_check_status
    ),
    f!("t_set_fr", [ArgKind::Int], TX_ROUTES, w_t_set_fr),
    f!(
        "t_set_fr",
        [ArgKind::Int, ArgKind::Int],
        TX_ROUTES,
        w_t_set_fr
    ),
    f!(
        "t_set_retr",
        [ArgKind::Int, ArgKind::Int],
        TX_ROUTES,
        w_t_set_retr
    ),
    f!("t_reset_fr", [], TX_ROUTES, w_t_reset_fr),
    f!("t_release", [], REQ, w_t_release),
    f!("t_is_canceled", [], TX_ROUTES, w_t_is_canceled),
    f!("t_was_cancelled", [], TX_ROUTES, w_t_is_canceled),
    f!("t_is_expired", [], TX_ROUTES, w_t_is_expired),
    f!("t_any_timeout", [], TX_ROUTES, w_t_any_timeout),
    f!("t_drop_replies", [], RouteKinds::FAILURE, w_t_drop_replies),
    f!("t_lookup_cancel", [], REQ, w_t_lookup_cancel),
    f!("t_branch_timeout", [], RouteKinds::FAILURE, w_t_any_timeout),
];

macro_rules! p {
    ($name:expr, $kind:expr) => {
        ParamExport { name: $name, kind: $kind, aliases: &[] }
    };
    ($name:expr, $kind:expr, $($alias:expr),+) => {
        ParamExport { name: $name, kind: $kind, aliases: &[$($alias),+] }
    };
}

static PARAMS: [ParamExport; 22] = [
    p!("fr_timer", ParamKind::Int),
    p!("fr_inv_timer", ParamKind::Int),
    p!("fr_timeout", ParamKind::Int),
    p!("fr_inv_timeout", ParamKind::Int),
    p!("retr_timer1", ParamKind::Int, "T1_timer"),
    p!("retr_timer2", ParamKind::Int, "T2_timer"),
    p!("wt_timer", ParamKind::Int),
    p!("max_inv_lifetime", ParamKind::Int),
    p!("max_noninv_lifetime", ParamKind::Int),
    p!("restart_fr_on_each_reply", ParamKind::Int),
    p!("auto_inv_100", ParamKind::Int, "auto_100trying"),
    p!("auto_inv_100_reason", ParamKind::Str),
    p!("failure_reply_mode", ParamKind::Int),
    p!("noisy_ctimer", ParamKind::Int),
    p!("remap_503_500", ParamKind::Int),
    p!("hash_size", ParamKind::Int),
    p!("cancel_b_method", ParamKind::Int),
    p!("e2e_cancel_reason", ParamKind::Int),
    p!("local_cancel_reason", ParamKind::Int),
    p!("unmatched_cancel", ParamKind::Int),
    p!("ruri_matching", ParamKind::Int),
    p!("via1_matching", ParamKind::Int),
];

static RPC: [RpcExport; 1] = [RpcExport {
    name: "tm.stats",
    doc: "transaction statistics",
    handler: rpc_stats,
}];

pub static MODULE: ModuleExports = ModuleExports {
    name: "tm",
    functions: &FUNCTIONS,
    params: &PARAMS,
    init: Some(init),
    rpc: &RPC,
    reply_hook: Some(engine::on_reply),
    post_script: Some(engine::post_script),
    timer: Some(engine::timer_tick),
    ..ModuleExports::EMPTY
};

/// Kamailio's default 100 reason (`auto_inv_100_reason`).
pub const DEFAULT_100_REASON: &str = "trying -- your call is important to us";
/// OpenSIPS's 100 reason, sent at t_newtran under `dialect=opensips`.
pub const OPENSIPS_100_REASON: &str = "Giving it a try";
/// Default `hash_size` (Kamailio's `TABLE_ENTRIES`).
pub const DEFAULT_HASH_SIZE: u32 = 65_536;

fn ms_param(init: &ModInit<'_>, ms: &str, secs: &str, default: u32) -> u32 {
    if let Some(v) = init.param_int(ms) {
        return u32::try_from(v).unwrap_or(default);
    }
    init.param_int(secs)
        .and_then(|s| u32::try_from(s.saturating_mul(1000)).ok())
        .unwrap_or(default)
}

/// The core `max_branches` as a cell can hold it: a cell has [`sip_txn::CELL_BRANCHES`]
/// slots (the shm budget per transaction), so a larger value is clamped.
fn max_branches_of(core: u32) -> u8 {
    u8::try_from(core.clamp(1, sip_txn::CELL_BRANCHES as u32)).unwrap_or(1)
}

/// Turns the modparams into a [`TmConfig`] (pure, testable).
fn config_of(init: &ModInit<'_>) -> (TmConfig, MatchConfig) {
    let d = TmConfig::default();
    let int = |n: &str, dv: u32| {
        init.param_int(n)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(dv)
    };
    let flag = |n: &str, dv: bool| init.param_int(n).map_or(dv, |v| v != 0);
    let cfg = TmConfig {
        t1: int("retr_timer1", d.t1),
        t2: int("retr_timer2", d.t2),
        fr: ms_param(init, "fr_timer", "fr_timeout", d.fr),
        fr_inv: ms_param(init, "fr_inv_timer", "fr_inv_timeout", d.fr_inv),
        // OpenSIPS gives wt_timer in seconds: small values are taken as seconds.
        wait: match int("wt_timer", d.wait) {
            v if v < 100 && init.core.dialect == Dialect::Opensips => v * 1000,
            v => v,
        },
        max_inv_lifetime: int("max_inv_lifetime", d.max_inv_lifetime),
        max_noninv_lifetime: int("max_noninv_lifetime", d.max_noninv_lifetime),
        restart_fr_on_each_reply: flag("restart_fr_on_each_reply", d.restart_fr_on_each_reply),
        cancel_b_method: match init.param_int("cancel_b_method") {
            Some(0) => CancelBMethod::FakeReply,
            Some(2) => CancelBMethod::Always,
            _ => d.cancel_b_method,
        },
        failure_reply_mode: match init.param_int("failure_reply_mode") {
            Some(0) => FailureReplyMode::KeepAll,
            Some(1) => FailureReplyMode::DropAll,
            Some(2) => FailureReplyMode::DropPreviousLeg,
            _ => d.failure_reply_mode,
        },
        remap_503_500: flag("remap_503_500", d.remap_503_500),
        noisy_ctimer: flag("noisy_ctimer", d.noisy_ctimer),
        e2e_cancel_reason: flag("e2e_cancel_reason", d.e2e_cancel_reason),
        local_cancel_reason: flag("local_cancel_reason", d.local_cancel_reason),
        max_branches: max_branches_of(init.core.max_branches),
        timer_hz: init.core.timer_hz,
        ..d
    };
    let m = MatchConfig {
        ruri_matching: flag("ruri_matching", true),
        via1_matching: flag("via1_matching", true),
        ..MatchConfig::default()
    };
    (cfg, m)
}

/// Builds the table in shm (when the binary provided a region) and the module state.
fn init(init: &mut ModInit<'_>) -> Result<(), String> {
    let (cfg, mcfg) = config_of(init);
    if init.core.max_branches > u32::from(cfg.max_branches) {
        init.warn(format!(
            "max_branches={} is more than a transaction cell holds; tm uses {}",
            init.core.max_branches, cfg.max_branches
        ));
    }
    let hash_size = init
        .param_int("hash_size")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(DEFAULT_HASH_SIZE);
    let table = match init.shm() {
        Some(region) => match Table::open(region) {
            Ok(t) => Some(t),
            Err(_) => Some(
                Table::create_with(region, hash_size, cfg.timer_hz)
                    .map_err(|e| format!("tm table: {e}"))?,
            ),
        },
        None => None,
    };
    let opensips = init.core.dialect == Dialect::Opensips;
    let auto_inv_100 = init.param_int("auto_inv_100").is_none_or(|v| v != 0);
    let tm = Tm {
        table,
        cfg,
        mcfg,
        auto_inv_100,
        auto_inv_100_reason: init.param_str("auto_inv_100_reason").map_or_else(
            || {
                if opensips {
                    OPENSIPS_100_REASON
                } else {
                    DEFAULT_100_REASON
                }
                .to_string()
            },
            str::to_string,
        ),
        opensips_100: opensips && auto_inv_100,
        unmatched_cancel: engine::UnmatchedCancel::from_param(init.param_int("unmatched_cancel")),
    };
    init.set_state(Arc::new(tm));
    init.register_api::<dyn TmApi>(Arc::new(TmApiImpl));
    Ok(())
}

struct TmApiImpl;

impl TmApi for TmApiImpl {
    fn has_transaction(&self, ctx: &Ctx<'_>) -> bool {
        ctx.msg_data::<TmMsg>()
            .is_some_and(|m| m.cell.is_some() || m.active.is_some())
    }

    fn reply(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> i32 {
        match tm_of(ctx) {
            Some(tm) => engine::t_reply(ctx, &tm, code, reason),
            None => -1,
        }
    }

    fn reply_code(&self, ctx: &Ctx<'_>) -> i32 {
        i32::from(reply_code_of(ctx))
    }
}

fn no_tm(ctx: &mut Ctx<'_>) -> i32 {
    ctx.log(
        LogLevel::Err,
        "tm",
        "tm is not initialised (no shared memory)",
    );
    -1
}

fn w_t_relay(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    if tm.table.is_none() {
        return no_tm(ctx);
    }
    relay_dispatch(ctx, &tm, None)
}

/// `t_relay` by method: ACK and CANCEL have their own rules (§3.2, §4.1) in request_route.
fn relay_dispatch(ctx: &mut Ctx<'_>, tm: &Tm, host_port: Option<(String, u16)>) -> i32 {
    if ctx.route_kind == RouteKind::Request {
        match ctx.msg.method() {
            Some(MsgMethod::Ack) => return engine::relay_ack(ctx, tm, host_port),
            Some(MsgMethod::Cancel) => return engine::relay_cancel(ctx, tm, host_port),
            _ => {}
        }
    }
    engine::t_relay(ctx, tm, host_port)
}

fn w_t_relay_to(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    let (Some(h), Some(p)) = (a.first(), a.get(1)) else {
        return -1;
    };
    let host = ctx.arg_str(h).trim().to_string();
    let port = ctx
        .arg_int(p)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(5060);
    if host.is_empty() {
        return -1;
    }
    if tm.table.is_none() {
        return no_tm(ctx);
    }
    relay_dispatch(ctx, &tm, Some((host, port)))
}

fn w_t_newtran(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    if ctx.msg.method() == Some(MsgMethod::Ack) {
        return -1;
    }
    match engine::get_or_create(ctx, &tm) {
        Ok(engine::Got::Tx { .. }) => 1,
        Ok(_) => 0,
        Err((code, reason)) => {
            ctx.log(
                LogLevel::Err,
                "tm",
                &format!("t_newtran failed: {code} {reason}"),
            );
            ctx.ser_error = Some(sip_script::abi::SerError {
                status: code,
                reason,
            });
            -1
        }
    }
}

fn w_t_reply(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    let code = a
        .first()
        .and_then(|x| ctx.arg_int(x))
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (100..700).contains(c));
    let Some(code) = code else {
        ctx.log(LogLevel::Err, "tm", "t_reply: invalid code");
        return -1;
    };
    let reason = a
        .get(1)
        .map(|r| ctx.arg_str(r).into_owned())
        .unwrap_or_default();
    engine::t_reply(ctx, &tm, code, &reason)
}

/// `t_check_trans()`: spec §3.2 exactly. A reply is looked up wherever it is checked
/// (core `reply_route` or onreply_route, Kamailio's ONREPLY type).
fn w_t_check_trans(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    let kind = if ctx.route_kind == RouteKind::Request || !ctx.is_request() {
        sip_txn::RouteKind::Request
    } else {
        sip_txn::RouteKind::TransactionRoute
    };
    if kind == sip_txn::RouteKind::TransactionRoute {
        return 1;
    }
    let Some(table) = tm.table else {
        return no_tm(ctx);
    };
    let checked = if !ctx.is_request() {
        let found = ctx
            .msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .and_then(|b| sip_txn::decode_branch(b, table.hash_size(), tm.cfg.max_branches))
            .zip(ctx.msg.cseq().ok())
            .is_some_and(|(d, c)| matches!(table.lookup_reply(&d, c.method), Ok(Some(_))));
        CheckedMessage::Reply { found }
    } else {
        match OwnedKey::of(ctx.msg) {
            Err(_) => CheckedMessage::ParseError,
            Ok(key) => {
                let rk = key.key();
                let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, table.hash_size());
                if ctx.msg.method() == Some(MsgMethod::Cancel) {
                    let found = matches!(
                        table.lookup_cancel_target(bucket, &rk, &tm.mcfg),
                        Ok(Some(_))
                    );
                    CheckedMessage::Cancel {
                        invite_found: found,
                    }
                } else {
                    match table.lookup_request(bucket, &rk, &tm.mcfg) {
                        Ok(Some((cell, m))) => {
                            let decision = CheckTrans::decide(kind, CheckedMessage::Request(m));
                            act_on_match(ctx, &tm, &table, cell, decision);
                            // OpenSIPS: a hop-by-hop ACK returns 1 and the script goes on
                            // (spec §3.2 note, §9, §11 decision 3).
                            if decision == CheckTrans::AckAbsorbed
                                && ctx.core().dialect == Dialect::Opensips
                            {
                                return 1;
                            }
                            return decision.return_code();
                        }
                        Ok(None) => CheckedMessage::Request(sip_txn::Match::NoMatch),
                        Err(_) => CheckedMessage::ParseError,
                    }
                }
            }
        }
    };
    CheckTrans::decide(kind, checked).return_code()
}

/// Retransmission → re-send the last reply; ACK to a negative final → absorb.
fn act_on_match(ctx: &mut Ctx<'_>, tm: &Tm, table: &Table, cell: table::CellRef, d: CheckTrans) {
    let Some((mut g, mut st)) = engine::lock_state(&cell) else {
        return;
    };
    let now = Millis(ctx.host.now().0);
    match d {
        CheckTrans::Retransmission => {
            if let Some(a) = st.cell.request_retransmitted() {
                let mut acts = sip_txn::ActionList::default();
                acts.push(a);
                engine::exec(ctx, tm, table, &cell, &mut st, &acts, None, None);
            }
        }
        CheckTrans::AckAbsorbed => {
            st.cell.ack_received(now);
        }
        _ => return,
    }
    let _ = engine::save(table, &cell, &mut g, &mut st);
}

enum Arm {
    Failure,
    Reply,
    Branch,
}

fn arm(ctx: &mut Ctx<'_>, a: &[Arg], which: Arm) -> i32 {
    let Some(Arg::Route(id)) = a.first() else {
        return -1;
    };
    let r = txn_route(*id);
    let tm = tm_of(ctx);
    let applied = tm.as_ref().and_then(|tm| {
        engine::with_state(ctx, tm, |_, _, _, st| match which {
            Arm::Failure => st.cell.arm_failure_route(r),
            Arm::Reply => st.cell.arm_reply_route(r),
            Arm::Branch => st.cell.arm_branch_route(r),
        })
    });
    if applied.is_none() {
        let m = ctx.msg_data_mut::<TmMsg>();
        match which {
            Arm::Failure => m.pending_failure = Some(r),
            Arm::Reply => m.pending_reply = Some(r),
            Arm::Branch => m.pending_branch = Some(r),
        }
    }
    1
}

fn w_t_on_failure(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    arm(ctx, a, Arm::Failure)
}
fn w_t_on_reply(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    arm(ctx, a, Arm::Reply)
}
fn w_t_on_branch(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    arm(ctx, a, Arm::Branch)
}

fn truth(b: bool) -> i32 {
    if b { 1 } else { -1 }
}

/// `t_is_set(kind)`: the transaction's armed route once it exists, else the one armed
/// for it on this message.
fn w_t_is_set(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let what = a.first().and_then(Arg::const_str).unwrap_or("").to_string();
    let from_cell = tm_of(ctx).and_then(|tm| {
        engine::with_state(ctx, &tm, |_, _, _, st| {
            (
                st.cell.failure_route().is_some(),
                st.cell.branch_route().is_some(),
                st.cell.reply_route().is_some(),
            )
        })
    });
    let (failure, branch, reply) = from_cell.unwrap_or_else(|| {
        ctx.msg_data::<TmMsg>().map_or((false, false, false), |m| {
            (
                m.pending_failure.is_some(),
                m.pending_branch.is_some(),
                m.pending_reply.is_some(),
            )
        })
    });
    truth(match what.as_str() {
        "failure_route" => failure,
        "branch_route" => branch,
        "onreply_route" => reply,
        _ => false,
    })
}

/// The last status sent upstream for the message's transaction (0 without one).
fn uas_status_of(ctx: &Ctx<'_>) -> u16 {
    let Some(m) = ctx.msg_data::<TmMsg>() else {
        return 0;
    };
    match (&m.active, &m.cell) {
        (Some(st), _) => st.cell.uas_status(),
        (None, Some(cell)) => cell.uas_status(),
        (None, None) => 0,
    }
}

/// `$T_reply_code` and what `t_check_status` matches (spec §8.7): the current reply in
/// onreply/reply route, the winning one in failure_route, the last code sent upstream in
/// request and branch route.
fn reply_code_of(ctx: &Ctx<'_>) -> u16 {
    if matches!(ctx.route_kind, RouteKind::Request | RouteKind::Branch) {
        return uas_status_of(ctx);
    }
    ctx.msg_data::<TmMsg>()
        .and_then(|m| m.reply.as_ref())
        .map(|r| r.code)
        .or_else(|| ctx.msg.status_code())
        .unwrap_or(0)
}

fn w_t_check_status(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let Some(Arg::Regex(re)) = a.first() else {
        return -1;
    };
    truth(re.is_match(&reply_code_of(ctx).to_string()))
}

/// `t_set_fr`/`t_set_retr`/`t_reset_fr`: on the transaction when it exists, else kept
/// with the message and applied when its transaction is created (the common
/// `t_set_fr(…); t_relay();`). A value of 0 keeps the configured one.
fn set_timers(ctx: &mut Ctx<'_>, change: impl Fn(&mut engine::TimerOverrides)) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    let cfg = tm.cfg;
    let applied = engine::with_state(ctx, &tm, |_, _, _, st| {
        let mut o = engine::TimerOverrides::default();
        change(&mut o);
        let mut t = st.cell.timer_values();
        o.apply(&mut t, &cfg);
        st.cell.set_timer_values(t);
    });
    if applied.is_none() {
        change(&mut ctx.msg_data_mut::<TmMsg>().pending_timers);
    }
    1
}

fn positive_arg(ctx: &mut Ctx<'_>, a: &[Arg], i: usize) -> Option<u32> {
    a.get(i)
        .and_then(|x| ctx.arg_int(x))
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
}

fn w_t_set_fr(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let (inv, noninv) = (positive_arg(ctx, a, 0), positive_arg(ctx, a, 1));
    set_timers(ctx, |o| {
        o.fr_inv = inv.or(o.fr_inv);
        o.fr = noninv.or(o.fr);
    })
}

fn w_t_set_retr(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let (t1, t2) = (positive_arg(ctx, a, 0), positive_arg(ctx, a, 1));
    set_timers(ctx, |o| {
        o.t1 = t1.or(o.t1);
        o.t2 = t2.or(o.t2);
    })
}

/// `t_reset_fr()`: back to the configured `fr_timer`/`fr_inv_timer`.
fn w_t_reset_fr(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    let cfg = tm.cfg;
    let applied = engine::with_state(ctx, &tm, |_, _, _, st| {
        let d = cfg.timer_values(st.cell.method() == sip_txn::Method::Invite);
        let mut t = st.cell.timer_values();
        t.fr = d.fr;
        t.fr_inv = d.fr_inv;
        st.cell.set_timer_values(t);
    });
    if applied.is_none() {
        let o = &mut ctx.msg_data_mut::<TmMsg>().pending_timers;
        o.fr = None;
        o.fr_inv = None;
    }
    1
}

/// `t_release()`: the transaction goes on the wait timer (Kamailio
/// `t_release_transaction`): its timers stop, but for `wt_timer` it still absorbs
/// retransmissions and matches replies.
fn w_t_release(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else {
        return no_tm(ctx);
    };
    let now = Millis(ctx.host.now().0);
    let r = engine::with_state(ctx, &tm, |_, _, _, st| st.cell.release(now));
    if r.is_some() {
        ctx.msg_data_mut::<TmMsg>().handled = true;
    }
    truth(r.is_some())
}

fn w_t_is_canceled(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else { return -1 };
    truth(engine::with_state(ctx, &tm, |_, _, _, st| st.cell.is_canceled()).unwrap_or(false))
}

fn w_t_is_expired(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else { return -1 };
    let now = Millis(ctx.host.now().0);
    truth(engine::with_state(ctx, &tm, |_, _, _, st| st.cell.is_expired(now)).unwrap_or(false))
}

fn w_t_any_timeout(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else { return -1 };
    truth(engine::with_state(ctx, &tm, |_, _, _, st| st.cell.any_timeout()).unwrap_or(false))
}

fn w_t_drop_replies(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else { return -1 };
    truth(engine::with_state(ctx, &tm, |_, _, _, st| st.cell.drop_replies()).is_some())
}

fn w_t_lookup_cancel(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let Some(tm) = tm_of(ctx) else { return -1 };
    let Some(table) = tm.table else { return -1 };
    let Ok(key) = OwnedKey::of(ctx.msg) else {
        return -1;
    };
    let rk = key.key();
    let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, table.hash_size());
    truth(matches!(
        table.lookup_cancel_target(bucket, &rk, &tm.mcfg),
        Ok(Some(_))
    ))
}

/// `$T_reply_code` (exported by tmx, as in Kamailio).
pub(crate) fn pv_reply_code(ctx: &mut Ctx<'_>, _i: Option<&str>) -> Value {
    Value::Int(i64::from(reply_code_of(ctx)))
}

/// `$T_reply_reason` (exported by tmx).
pub(crate) fn pv_reply_reason(ctx: &mut Ctx<'_>, _i: Option<&str>) -> Value {
    ctx.msg_data::<TmMsg>()
        .and_then(|m| m.reply.as_ref())
        .map_or(Value::Null, |r| Value::Str(r.reason.clone()))
}

/// `$T_branch_idx` (exported by tmx).
pub(crate) fn pv_branch_idx(ctx: &mut Ctx<'_>, _i: Option<&str>) -> Value {
    let m = ctx.msg_data::<TmMsg>();
    let in_branch_route = m.and_then(|m| m.branch_idx);
    Value::Int(
        in_branch_route.unwrap_or_else(|| m.and_then(|m| m.reply.as_ref()).map_or(0, |r| r.branch)),
    )
}

/// `tm.stats` with Kamailio's field names.
fn rpc_stats(
    rt: &mut sip_script::Runtime,
    _p: &serde_json::Value,
) -> Result<serde_json::Value, RpcError> {
    let tm = rt.state::<Arc<Tm>>().cloned().ok_or(RpcError {
        code: -32000,
        message: "tm not loaded".into(),
    })?;
    let t = tm.table.ok_or(RpcError {
        code: -32000,
        message: "tm table not in shared memory".into(),
    })?;
    let created = t.stat(Stat::Created);
    let freed = t.stat(Stat::Freed);
    Ok(serde_json::json!({
        "current": created.saturating_sub(freed),
        "waiting": 0,
        "total": created,
        "total_local": t.stat(Stat::TotalLocal),
        "rpl_received": t.stat(Stat::RplReceived),
        "rpl_generated": t.stat(Stat::RplGenerated),
        "rpl_sent": t.stat(Stat::RplSent),
        "6xx": t.stat(Stat::C6xx),
        "5xx": t.stat(Stat::C5xx),
        "4xx": t.stat(Stat::C4xx),
        "3xx": t.stat(Stat::C3xx),
        "2xx": t.stat(Stat::C2xx),
        "created": created,
        "freed": freed,
        "delayed_free": 0,
        "shm_exhausted": t.stat(Stat::ShmExhausted),
    }))
}
