//! `pv`: the pseudo-variables themselves live in the script runtime; this module exists so
//! `loadmodule "pv.so"` works, and adds `pv_isset` / `pv_unset`.

use sip_script::abi::{
    Arg, ArgKind, Ctx, FunctionExport, LogLevel, ModuleExports, RouteKinds, Value,
};

static FUNCTIONS: [FunctionExport; 2] = [
    FunctionExport {
        name: "pv_isset",
        args: &[ArgKind::Pv],
        fixup: None,
        routes: RouteKinds::ANY,
        handler: w_pv_isset,
    },
    FunctionExport {
        name: "pv_unset",
        args: &[ArgKind::PvWritable],
        fixup: None,
        routes: RouteKinds::ANY,
        handler: w_pv_unset,
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "pv",
    functions: &FUNCTIONS,
    ..ModuleExports::EMPTY
};

/// True when the PV has a value (is not null).
fn w_pv_isset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    match args.first() {
        Some(Arg::Pv(pv)) => {
            if ctx.pv_get(pv).is_null() {
                -1
            } else {
                1
            }
        }
        _ => -1,
    }
}

/// Sets the PV to null (deletes an AVP, resets `$du`, ...).
fn w_pv_unset(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(Arg::Pv(pv)) = args.first() else {
        return -1;
    };
    match ctx.pv_set(pv, Value::Null) {
        Ok(()) => 1,
        Err(e) => {
            ctx.log(LogLevel::Err, "pv", &format!("pv_unset: {e}"));
            -1
        }
    }
}
