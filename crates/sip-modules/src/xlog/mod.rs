//! `xlog`: formatted script logging (`xlog([level,] fmt)`, `xdbg`, `xinfo`, ...). A line is
//! written when its level is enabled by `debug` (Kamailio: `level <= debug`); the line prefix
//! (` 1(123) INFO: <script>: `) is the host's job.

use std::sync::Arc;

use sip_script::abi::{
    Arg, ArgKind, Ctx, FixupCtx, FixupError, FunctionExport, HandlerFn, LogLevel, ModuleExports,
    ParamExport, ParamKind, RouteKinds,
};

/// The module name log lines carry (Kamailio prints `<script>`).
pub const LOG_MODULE: &str = "script";

const fn at_level(name: &'static str, handler: HandlerFn) -> FunctionExport {
    FunctionExport {
        name,
        args: &[ArgKind::Format],
        fixup: None,
        routes: RouteKinds::ANY,
        handler,
    }
}

static FUNCTIONS: [FunctionExport; 10] = [
    at_level("xlog", w_xerr),
    FunctionExport {
        name: "xlog",
        args: &[ArgKind::Str, ArgKind::Format],
        fixup: Some(fixup_level),
        routes: RouteKinds::ANY,
        handler: w_xlog,
    },
    at_level("xdbg", w_xdbg),
    at_level("xinfo", w_xinfo),
    at_level("xnotice", w_xnotice),
    at_level("xwarn", w_xwarn),
    at_level("xerr", w_xerr),
    at_level("xbug", w_xbug),
    at_level("xcrit", w_xcrit),
    at_level("xalert", w_xalert),
];

/// Accepted for compatibility; they tune Kamailio's output buffer and colours.
static PARAMS: [ParamExport; 6] = [
    ParamExport {
        name: "buf_size",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "force_color",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "long_format",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "prefix",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "log_facility",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "methods_filter",
        kind: ParamKind::Int,
        aliases: &[],
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "xlog",
    functions: &FUNCTIONS,
    params: &PARAMS,
    ..ModuleExports::EMPTY
};

/// Parses the level name at load: `L_INFO`, `INFO`, ... (a bad name is a config error).
fn fixup_level(_ctx: &mut FixupCtx<'_>, args: &mut [Arg]) -> Result<(), FixupError> {
    let Some(arg) = args.first_mut() else {
        return Err(FixupError::call("xlog needs a level"));
    };
    let name = arg
        .const_str()
        .ok_or_else(|| FixupError::arg(0, "xlog level must be a constant like \"L_INFO\""))?;
    let level = LogLevel::from_name(name.trim())
        .ok_or_else(|| FixupError::arg(0, format!("unknown xlog level `{name}`")))?;
    *arg = Arg::Data(Arc::new(level));
    Ok(())
}

/// Formats and writes `fmt` at `level`, formatting only when the level is enabled.
fn log_at(ctx: &mut Ctx<'_>, level: LogLevel, fmt: Option<&Arg>) -> i32 {
    if !ctx.log_enabled(level) {
        return 1;
    }
    let Some(fmt) = fmt else { return -1 };
    ctx.log_arg(level, LOG_MODULE, fmt);
    1
}

fn w_xlog(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let level = match args.first() {
        Some(a) => match a.data::<LogLevel>() {
            Some(l) => *l,
            None => {
                let name = ctx.arg_str(a).into_owned();
                LogLevel::from_name(name.trim()).unwrap_or(LogLevel::Err)
            }
        },
        None => return -1,
    };
    log_at(ctx, level, args.get(1))
}

fn w_xdbg(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Dbg, args.first())
}
fn w_xinfo(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Info, args.first())
}
fn w_xnotice(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Notice, args.first())
}
fn w_xwarn(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Warn, args.first())
}
/// Also the one-argument `xlog(fmt)`, which logs at L_ERR.
fn w_xerr(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Err, args.first())
}
fn w_xbug(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Bug, args.first())
}
fn w_xcrit(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Crit, args.first())
}
fn w_xalert(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    log_at(ctx, LogLevel::Alert, args.first())
}

#[cfg(test)]
mod tests {
    use sip_script::abi::CoreParams;
    use sip_script::testhost::TestHost;

    use super::*;
    use crate::testutil::{INVITE, fmt, parse, runtime, s, with_ctx};

    fn level(name: &str) -> Arg {
        let core = CoreParams::default();
        let mut fctx = FixupCtx {
            core: &core,
            route_kinds: RouteKinds::REQUEST,
            warnings: Vec::new(),
        };
        let mut args = [s(name), fmt("")];
        assert!(fixup_level(&mut fctx, &mut args).is_ok());
        let [l, _] = args;
        l
    }

    #[test]
    fn xlog_respects_debug() {
        let msg = parse(INVITE);
        let mut host = TestHost::new();
        let mut rt = runtime(2);
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_xlog(ctx, &[level("L_INFO"), fmt("info line\n")]), 1);
            assert_eq!(w_xlog(ctx, &[level("L_DBG"), fmt("debug line\n")]), 1);
            w_xdbg(ctx, &[fmt("xdbg line\n")]);
            w_xlog(ctx, &[level("L_ALERT"), fmt("alert line\n")]);
        });
        assert_eq!(host.log_texts(), ["info line\n", "alert line\n"]);
        assert_eq!(host.logs[0].level, LogLevel::Info);
        assert_eq!(host.logs[0].module, LOG_MODULE);

        let mut host = TestHost::new();
        let mut rt = runtime(3);
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            w_xdbg(ctx, &[fmt("now shown\n")])
        });
        assert_eq!(host.log_texts(), ["now shown\n"]);
    }

    #[test]
    fn one_arg_xlog_is_l_err() {
        let msg = parse(INVITE);
        let mut host = TestHost::new();
        let mut rt = runtime(-1);
        let one_arg = FUNCTIONS
            .iter()
            .find(|f| f.name == "xlog" && f.args.len() == 1)
            .map(|f| f.handler);
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            one_arg.map(|h| h(ctx, &[fmt("err line\n")]));
            w_xwarn(ctx, &[fmt("hidden at debug=-1\n")]);
        });
        assert_eq!(host.log_texts(), ["err line\n"]);
        assert_eq!(host.logs[0].level, LogLevel::Err);
    }

    /// `log_prefix` (Kamailio: expanded once when the message arrives, printed before
    /// `<module>`): every line of the message carries it, with the values it had on arrival.
    #[test]
    fn log_prefix_is_expanded_per_message_and_leads_each_line() {
        let text = "debug=2\nlog_prefix=\"{$mt $cs $rU} \"\nloadmodule \"xlog.so\"\n\
            request_route {\n$rU = \"carol\";\nxlog(\"L_INFO\", \"one\\n\");\n\
            xlog(\"L_INFO\", \"$ci\\n\");\n}\n";
        let cfg = sip_script::load_str("t.cfg", text, &[]).expect("parses");
        let script = sip_script::compile(&cfg, crate::all_modules()).expect("compiles");
        let mut rt = script.new_runtime();
        let msg = parse(INVITE);
        let mut host = TestHost::new();
        let mut ctx = sip_script::Ctx::new(
            &mut rt,
            &mut host,
            &msg,
            crate::testutil::source(),
            sip_script::RouteKind::Request,
        );
        ctx.set_script(&script);
        script.run_request(&mut ctx);
        drop(ctx);
        // TestHost keeps the prefix in front of the text (the binary's host puts it
        // before `<script>`, see siplab's log tests).
        assert_eq!(
            host.log_texts(),
            ["{1 1 bob} one\n", "{1 1 bob} call-1@192.0.2.10\n"]
        );
        // A bad pseudo-variable in log_prefix is a load error at its value.
        let bad = "log_prefix=\"$nosuchpv \"\nloadmodule \"xlog.so\"\nrequest_route { exit; }\n";
        let cfg = sip_script::load_str("t.cfg", bad, &[]).expect("parses");
        let errors = sip_script::compile(&cfg, crate::all_modules()).expect_err("bad log_prefix");
        assert!(
            errors
                .iter()
                .any(|e| e.span.line == 1 && e.message.contains("log_prefix")),
            "{errors:?}"
        );
    }

    /// Lines with PVs are expanded into the runtime's reused buffer: each line is exactly its
    /// own text, whatever the previous (longer) line left, and an extension method prints as
    /// written.
    #[test]
    fn pv_lines_on_one_runtime_are_each_exact() {
        let text = "debug=2\nloadmodule \"xlog.so\"\nrequest_route {\n\
            xlog(\"L_INFO\", \"$rm $ru from $si:$sp (worker $pp)\\n\");\n\
            xlog(\"L_INFO\", \"$rm\");\n\
            xlog(\"L_DBG\", \"hidden $rm\\n\");\n\
            xinfo(\"$ci|$cs|$sp\\n\");\n}\n";
        let cfg = sip_script::load_str("t.cfg", text, &[]).expect("parses");
        let script = sip_script::compile(&cfg, crate::all_modules()).expect("compiles");
        let mut rt = script.new_runtime();
        for (msg_text, method) in [
            (INVITE.to_string(), "INVITE"),
            (
                INVITE
                    .replacen("INVITE", "FOOBAR", 1)
                    .replace("1 INVITE", "1 FOOBAR"),
                "FOOBAR",
            ),
        ] {
            let msg = parse(&msg_text);
            let mut host = TestHost::new();
            with_ctx(&mut rt, &mut host, &msg, |ctx| script.run_request(ctx));
            assert_eq!(
                host.log_texts(),
                [
                    format!("{method} sip:bob@example.com from 192.0.2.10:5091 (worker 4242)\n"),
                    method.to_string(),
                    "call-1@192.0.2.10|1|5091\n".to_string(),
                ]
            );
            assert!(host.logs.iter().all(|l| l.level == LogLevel::Info));
        }
    }

    #[test]
    fn bad_level_is_a_fixup_error() {
        let core = CoreParams::default();
        let mut fctx = FixupCtx {
            core: &core,
            route_kinds: RouteKinds::REQUEST,
            warnings: Vec::new(),
        };
        let err = fixup_level(&mut fctx, &mut [s("L_LOUD"), fmt("")]);
        assert!(err.is_err_and(|e| e.arg == Some(0)));
    }
}
