//! `cfgutils`: `sleep`, `usleep` (through the host, which blocks the worker — the point of
//! the race lab [E8]), and the random event functions.

use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModInit, ModuleExports, ParamExport, ParamKind,
    RouteKinds,
};

/// `initial_probability` default, in percent.
pub const DEFAULT_PROBABILITY: u32 = 10;

const ANY: RouteKinds = RouteKinds::ANY;

static FUNCTIONS: [FunctionExport; 6] = [
    FunctionExport {
        name: "sleep",
        args: &[ArgKind::Int],
        fixup: None,
        routes: ANY,
        handler: w_sleep,
    },
    FunctionExport {
        name: "usleep",
        args: &[ArgKind::Int],
        fixup: None,
        routes: ANY,
        handler: w_usleep,
    },
    FunctionExport {
        name: "rand_event",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: w_rand_event,
    },
    FunctionExport {
        name: "rand_set_prob",
        args: &[ArgKind::Int],
        fixup: None,
        routes: ANY,
        handler: w_rand_set_prob,
    },
    FunctionExport {
        name: "rand_reset_prob",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: w_rand_reset_prob,
    },
    FunctionExport {
        name: "rand_get_prob",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: w_rand_get_prob,
    },
];

static PARAMS: [ParamExport; 1] = [ParamExport {
    name: "initial_probability",
    kind: ParamKind::Int,
    aliases: &[],
}];

pub static MODULE: ModuleExports = ModuleExports {
    name: "cfgutils",
    functions: &FUNCTIONS,
    params: &PARAMS,
    init: Some(init),
    ..ModuleExports::EMPTY
};

/// Per-process probability state of the random event functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandState {
    pub initial: u32,
    pub current: u32,
}

impl Default for RandState {
    fn default() -> Self {
        RandState {
            initial: DEFAULT_PROBABILITY,
            current: DEFAULT_PROBABILITY,
        }
    }
}

fn init(init: &mut ModInit<'_>) -> Result<(), String> {
    let p = match init.param_int("initial_probability") {
        None => DEFAULT_PROBABILITY,
        Some(v) => u32::try_from(v)
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| format!("cfgutils: initial_probability {v} is not 0..100"))?,
    };
    init.set_state(RandState {
        initial: p,
        current: p,
    });
    Ok(())
}

fn non_negative(ctx: &mut Ctx<'_>, args: &[Arg], what: &str) -> Option<u64> {
    let v = args.first().and_then(|a| ctx.arg_int(a));
    match v.and_then(|v| u64::try_from(v).ok()) {
        Some(v) => Some(v),
        None => {
            ctx.log(
                LogLevel::Err,
                "cfgutils",
                &format!("{what}: invalid time value"),
            );
            None
        }
    }
}

/// `sleep(seconds)`.
fn w_sleep(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    match non_negative(ctx, args, "sleep") {
        Some(s) => {
            ctx.host.sleep_ms(s.saturating_mul(1000));
            1
        }
        None => -1,
    }
}

/// `usleep(microseconds)`; rounded up to whole milliseconds (the host's unit).
fn w_usleep(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    match non_negative(ctx, args, "usleep") {
        Some(us) => {
            ctx.host.sleep_ms(us.div_ceil(1000));
            1
        }
        None => -1,
    }
}

fn state(ctx: &Ctx<'_>) -> RandState {
    ctx.module_state::<RandState>().copied().unwrap_or_default()
}

fn store(ctx: &mut Ctx<'_>, s: RandState) {
    if let Some(st) = ctx.module_state_mut::<RandState>() {
        *st = s;
    }
}

/// True with the current probability (percent).
fn w_rand_event(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    let p = state(ctx).current;
    if ctx.host.random_u32() % 100 < p {
        1
    } else {
        -1
    }
}

fn w_rand_set_prob(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let v = args.first().and_then(|a| ctx.arg_int(a));
    match v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v <= 100) {
        Some(p) => {
            let mut s = state(ctx);
            s.current = p;
            store(ctx, s);
            1
        }
        None => {
            ctx.log(LogLevel::Err, "cfgutils", "rand_set_prob: not a percentage");
            -1
        }
    }
}

fn w_rand_reset_prob(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    let mut s = state(ctx);
    s.current = s.initial;
    store(ctx, s);
    1
}

/// Logs the current probability (Kamailio prints it and returns true).
fn w_rand_get_prob(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    let p = state(ctx).current;
    ctx.log(
        LogLevel::Info,
        "cfgutils",
        &format!("Actual probability: {p}% (0..100)"),
    );
    1
}

#[cfg(test)]
mod tests {
    use sip_script::testhost::TestHost;

    use super::*;
    use crate::testutil::{INVITE, int, parse, runtime, with_ctx};

    #[test]
    fn sleep_and_usleep_go_through_the_host() {
        let msg = parse(INVITE);
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_sleep(ctx, &[int(2)]), 1);
            assert_eq!(w_usleep(ctx, &[int(1500)]), 1);
            assert_eq!(w_sleep(ctx, &[int(-1)]), -1);
        });
        assert_eq!(host.sleeps, [2000, 2]);
    }

    #[test]
    fn rand_event_follows_probability() {
        let msg = parse(INVITE);
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        rt.set_state(RandState::default());
        host.randoms = vec![5, 50];
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_rand_event(ctx, &[]), 1, "5 < 10%");
            assert_eq!(w_rand_event(ctx, &[]), -1, "50 >= 10%");
            assert_eq!(w_rand_set_prob(ctx, &[int(60)]), 1);
            assert_eq!(w_rand_event(ctx, &[]), 1, "5 < 60%");
            assert_eq!(w_rand_event(ctx, &[]), 1, "50 < 60%");
            assert_eq!(w_rand_reset_prob(ctx, &[]), 1);
            assert_eq!(w_rand_event(ctx, &[]), 1);
            assert_eq!(w_rand_event(ctx, &[]), -1);
            assert_eq!(w_rand_set_prob(ctx, &[int(101)]), -1);
        });
    }
}
