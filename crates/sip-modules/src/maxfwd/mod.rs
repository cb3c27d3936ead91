//! `maxfwd`: `mf_process_maxfwd_header(limit)` and `is_maxfwd_lt(limit)`. Max-Forwards is
//! changed by this module only; core and tm forward it untouched [E2].

use sip_msg::InsertAt;
use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModInit, ModuleExports, ParamExport, ParamKind,
    RouteKinds,
};

/// `max_limit` default: a larger received value is lowered to this before decrementing.
pub const DEFAULT_MAX_LIMIT: u32 = 70;

const REQ: RouteKinds = RouteKinds::REQUEST
    .union(RouteKinds::FAILURE)
    .union(RouteKinds::BRANCH);

static FUNCTIONS: [FunctionExport; 2] = [
    FunctionExport {
        name: "mf_process_maxfwd_header",
        args: &[ArgKind::Int],
        fixup: None,
        routes: REQ,
        handler: w_process_maxfwd,
    },
    FunctionExport {
        name: "is_maxfwd_lt",
        args: &[ArgKind::Int],
        fixup: None,
        routes: REQ,
        handler: w_is_maxfwd_lt,
    },
];

static PARAMS: [ParamExport; 1] = [ParamExport {
    name: "max_limit",
    kind: ParamKind::Int,
    aliases: &[],
}];

pub static MODULE: ModuleExports = ModuleExports {
    name: "maxfwd",
    functions: &FUNCTIONS,
    params: &PARAMS,
    init: Some(init),
    ..ModuleExports::EMPTY
};

/// The module's settings after init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxfwdConfig {
    pub max_limit: u32,
}

fn init(init: &mut ModInit<'_>) -> Result<(), String> {
    let max_limit = match init.param_int("max_limit") {
        None => DEFAULT_MAX_LIMIT,
        Some(v) => u32::try_from(v)
            .ok()
            .filter(|v| *v <= 255)
            .ok_or_else(|| format!("maxfwd: max_limit {v} out of range 0..255"))?,
    };
    init.set_state(MaxfwdConfig { max_limit });
    Ok(())
}

/// What `mf_process_maxfwd_header` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxFwd {
    /// No header: `Max-Forwards: <limit>` added (return 2).
    Added(u32),
    /// The new value after lowering to `max_limit` and decrementing (return 1).
    Decremented(u32),
    /// The value is 0: the cfg answers 483 (return -1).
    Exhausted,
}

/// Kamailio's decision for a received Max-Forwards `value` (pure).
pub fn decide(value: Option<u32>, limit: u32, max_limit: u32) -> MaxFwd {
    match value {
        None => MaxFwd::Added(limit),
        Some(0) => MaxFwd::Exhausted,
        Some(v) => MaxFwd::Decremented(v.min(max_limit.saturating_add(1)) - 1),
    }
}

fn limit_arg(ctx: &mut Ctx<'_>, args: &[Arg]) -> Option<u32> {
    let limit = args.first().and_then(|a| ctx.arg_int(a));
    match limit
        .and_then(|l| u32::try_from(l).ok())
        .filter(|l| *l <= 255)
    {
        Some(l) => Some(l),
        None => {
            ctx.log(LogLevel::Err, "maxfwd", "invalid param value (0..255)");
            None
        }
    }
}

fn w_process_maxfwd(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(limit) = limit_arg(ctx, args) else {
        return -1;
    };
    let max_limit = ctx
        .module_state::<MaxfwdConfig>()
        .map_or(DEFAULT_MAX_LIMIT, |c| c.max_limit);
    let value = match ctx.msg.max_forwards() {
        Ok(v) => v,
        Err(_) => {
            ctx.log(
                LogLevel::Err,
                "maxfwd",
                "unable to parse the max forwards number",
            );
            return -2;
        }
    };
    match decide(value, limit, max_limit) {
        MaxFwd::Added(n) => {
            // Kamailio puts the new header above all others.
            ctx.edits
                .insert_header(InsertAt::Top, format!("Max-Forwards: {n}").as_bytes());
            2
        }
        MaxFwd::Decremented(n) => {
            ctx.edits.set_max_forwards(n);
            1
        }
        MaxFwd::Exhausted => -1,
    }
}

/// `is_maxfwd_lt(limit)`: true when Max-Forwards is below `limit`; -2 without header.
fn w_is_maxfwd_lt(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(limit) = limit_arg(ctx, args) else {
        return -1;
    };
    match ctx.msg.max_forwards() {
        Ok(Some(v)) if v < limit => 1,
        Ok(Some(_)) => -1,
        Ok(None) => -2,
        Err(_) => -3,
    }
}

#[cfg(test)]
mod tests {
    use sip_script::testhost::TestHost;

    use super::*;
    use crate::testutil::{INVITE, int, invite_with, parse, runtime, with_ctx};

    fn run(text: &str, limit: i64, max_limit: Option<u32>) -> (i32, String) {
        let msg = parse(text);
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        if let Some(m) = max_limit {
            rt.set_state(MaxfwdConfig { max_limit: m });
        }
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            let rc = w_process_maxfwd(ctx, &[int(limit)]);
            (
                rc,
                String::from_utf8_lossy(&ctx.msg.to_bytes(&ctx.edits)).into_owned(),
            )
        })
    }

    #[test]
    fn mf_decrements_and_483_at_zero() {
        let (rc, out) = run(INVITE, 10, None);
        assert_eq!(rc, 1);
        assert!(out.contains("Max-Forwards: 69\r\n"), "{out}");
        let (rc, out) = run(
            &invite_with("Max-Forwards: 70", "Max-Forwards: 1"),
            10,
            None,
        );
        assert_eq!((rc, out.contains("Max-Forwards: 0\r\n")), (1, true));
        let (rc, out) = run(
            &invite_with("Max-Forwards: 70", "Max-Forwards: 0"),
            10,
            None,
        );
        assert_eq!(rc, -1, "the cfg answers 483");
        assert!(out.contains("Max-Forwards: 0\r\n"), "left unchanged");
    }

    #[test]
    fn mf_adds_missing_header_with_limit() {
        let (rc, out) = run(&invite_with("Max-Forwards: 70\r\n", ""), 10, None);
        assert_eq!(rc, 2);
        assert!(out.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nMax-Forwards: 10\r\n"));
    }

    #[test]
    fn mf_lowers_values_above_max_limit() {
        let (rc, out) = run(
            &invite_with("Max-Forwards: 70", "Max-Forwards: 200"),
            10,
            None,
        );
        assert_eq!(rc, 1);
        assert!(
            out.contains("Max-Forwards: 70\r\n"),
            "200 → max_limit 70 → kept at 70? {out}"
        );
        let (_, out) = run(
            &invite_with("Max-Forwards: 70", "Max-Forwards: 50"),
            10,
            Some(16),
        );
        assert!(out.contains("Max-Forwards: 16\r\n"), "{out}");
        let (rc, _) = run(
            &invite_with("Max-Forwards: 70", "Max-Forwards: x"),
            10,
            None,
        );
        assert_eq!(rc, -2);
    }

    #[test]
    fn decide_matches_kamailio() {
        assert_eq!(decide(None, 10, 70), MaxFwd::Added(10));
        assert_eq!(decide(Some(0), 10, 70), MaxFwd::Exhausted);
        assert_eq!(decide(Some(70), 10, 70), MaxFwd::Decremented(69));
        assert_eq!(decide(Some(71), 10, 70), MaxFwd::Decremented(70));
        assert_eq!(decide(Some(u32::MAX), 10, 70), MaxFwd::Decremented(70));
    }

    #[test]
    fn is_maxfwd_lt_compares() {
        let msg = parse(&invite_with("Max-Forwards: 70", "Max-Forwards: 5"));
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_is_maxfwd_lt(ctx, &[int(10)]), 1);
            assert_eq!(w_is_maxfwd_lt(ctx, &[int(5)]), -1);
        });
    }
}
