//! `kex`: the Kamailio-extensions functions siplab can honour: script flags, `pv_printf`,
//! `km_append_branch`. (`setdebug`/`resetdebug` are not provided: a cfg using them fails
//! at load with "unknown function".)

use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModuleExports, RouteKinds, Value,
};

const ANY: RouteKinds = RouteKinds::ANY;

static FUNCTIONS: [FunctionExport; 7] = [
    FunctionExport {
        name: "setsflag",
        args: &[ArgKind::Int],
        fixup: None,
        routes: ANY,
        handler: w_setsflag,
    },
    FunctionExport {
        name: "resetsflag",
        args: &[ArgKind::Int],
        fixup: None,
        routes: ANY,
        handler: w_resetsflag,
    },
    FunctionExport {
        name: "issflagset",
        args: &[ArgKind::Int],
        fixup: None,
        routes: ANY,
        handler: w_issflagset,
    },
    FunctionExport {
        name: "pv_printf",
        args: &[ArgKind::PvWritable, ArgKind::Format],
        fixup: None,
        routes: ANY,
        handler: w_pv_printf,
    },
    FunctionExport {
        name: "avp_printf",
        args: &[ArgKind::PvWritable, ArgKind::Format],
        fixup: None,
        routes: ANY,
        handler: w_pv_printf,
    },
    FunctionExport {
        name: "km_append_branch",
        args: &[],
        fixup: None,
        routes: RouteKinds::REQUEST.union(RouteKinds::FAILURE),
        handler: w_km_append_branch,
    },
    FunctionExport {
        name: "km_append_branch",
        args: &[ArgKind::Format],
        fixup: None,
        routes: RouteKinds::REQUEST.union(RouteKinds::FAILURE),
        handler: w_km_append_branch,
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "kex",
    functions: &FUNCTIONS,
    init: Some(init),
    ..ModuleExports::EMPTY
};

/// Script flags: per process, not per message (Kamailio keeps them in a process global).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags(pub u64);

fn sflag_bit(ctx: &mut Ctx<'_>, args: &[Arg]) -> Option<u64> {
    let n = args.first().and_then(|a| ctx.arg_int(a))?;
    match u32::try_from(n).ok().filter(|n| *n < 64) {
        Some(n) => Some(1u64 << n),
        None => {
            ctx.log(LogLevel::Err, "kex", &format!("bad script flag {n}"));
            None
        }
    }
}

/// The process's script flags (kept by the module's state from init).
fn sflags(ctx: &mut Ctx<'_>) -> u64 {
    ctx.module_state::<ScriptFlags>().map_or(0, |f| f.0)
}

fn store_sflags(ctx: &mut Ctx<'_>, v: u64) -> bool {
    match ctx.module_state_mut::<ScriptFlags>() {
        Some(f) => {
            f.0 = v;
            true
        }
        None => false,
    }
}

fn w_setsflag(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(b) = sflag_bit(ctx, args) else {
        return -1;
    };
    let v = sflags(ctx) | b;
    if store_sflags(ctx, v) { 1 } else { -1 }
}

fn w_resetsflag(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(b) = sflag_bit(ctx, args) else {
        return -1;
    };
    let v = sflags(ctx) & !b;
    if store_sflags(ctx, v) { 1 } else { -1 }
}

fn w_issflagset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(b) = sflag_bit(ctx, args) else {
        return -1;
    };
    if sflags(ctx) & b != 0 { 1 } else { -1 }
}

/// `pv_printf(pv, fmt)`: assigns the expanded format string.
fn w_pv_printf(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let (Some(Arg::Pv(pv)), Some(f)) = (args.first(), args.get(1)) else {
        return -1;
    };
    let text = ctx.arg_str(f).into_owned();
    match ctx.pv_set(pv, Value::Str(text)) {
        Ok(()) => 1,
        Err(e) => {
            ctx.log(LogLevel::Err, "kex", &format!("pv_printf: {e}"));
            -1
        }
    }
}

fn w_km_append_branch(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let handler = crate::corex::MODULE
        .functions
        .iter()
        .find(|f| f.name == "append_branch" && f.args.len() == args.len())
        .map(|f| f.handler);
    handler.map_or(-1, |h| h(ctx, args))
}

/// Module init: the script-flag word of this process.
fn init(init: &mut sip_script::abi::ModInit<'_>) -> Result<(), String> {
    init.set_state(ScriptFlags::default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use sip_script::testhost::TestHost;

    use super::*;
    use crate::testutil::{INVITE, fmt, int, parse, runtime, with_ctx};

    #[test]
    fn script_flags_persist_across_messages() {
        let msg = parse(INVITE);
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        rt.set_state(ScriptFlags::default());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_issflagset(ctx, &[int(2)]), -1);
            assert_eq!(w_setsflag(ctx, &[int(2)]), 1);
        });
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_issflagset(ctx, &[int(2)]), 1);
            assert_eq!(w_resetsflag(ctx, &[int(2)]), 1);
            assert_eq!(w_issflagset(ctx, &[int(2)]), -1);
        });
    }

    #[test]
    fn km_append_branch_is_corex_append_branch() {
        let msg = parse(INVITE);
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_km_append_branch(ctx, &[fmt("sip:x@example.net")]), 1);
            assert_eq!(ctx.branches.len(), 1);
        });
    }
}
