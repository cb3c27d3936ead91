//! A small module table for tests and the bench: modules named like Kamailio's, each with a
//! few functions whose behaviour is easy to assert. The real modules live in sip-modules.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use sip_msg::{InsertAt, Message};
use sip_script::testhost::TestHost;
use sip_script::{
    Arg, ArgKind, Config, Ctx, FixupCtx, FixupError, FunctionExport, LogLevel, ModInit,
    ModuleExports, Outcome, ParamExport, ParamKind, PvExport, RouteKind, RouteKinds, Runtime,
    Script, Value, compile, load_str,
};

const ANY: RouteKinds = RouteKinds::ANY;
const REQ_FAIL: RouteKinds = RouteKinds(RouteKinds::REQUEST.0 | RouteKinds::FAILURE.0);

// --- core -----------------------------------------------------------------------------------

fn h_setflag(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let n = ctx.arg_int(&a[0]).unwrap_or(0);
    ctx.flags |= 1 << n;
    1
}
fn h_isflagset(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let n = ctx.arg_int(&a[0]).unwrap_or(0);
    if ctx.flags & (1 << n) != 0 { 1 } else { -1 }
}
/// Sends the message (with its edits and R-URI) to 127.0.0.1:5070.
fn h_forward(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    if ctx.ruri_changed() {
        let ru = ctx.ruri().into_owned();
        ctx.edits.set_request_uri(ru.as_bytes());
    }
    let bytes = ctx.msg.to_bytes(&ctx.edits);
    let dst: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    match ctx.host.send(sip_script::Proto::Udp, dst, &bytes) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

pub static CORE: ModuleExports = ModuleExports {
    name: "core",
    functions: &[
        FunctionExport {
            name: "setflag",
            args: &[ArgKind::Int],
            fixup: None,
            routes: ANY,
            handler: h_setflag,
        },
        FunctionExport {
            name: "isflagset",
            args: &[ArgKind::Int],
            fixup: None,
            routes: ANY,
            handler: h_isflagset,
        },
        FunctionExport {
            name: "forward",
            args: &[],
            fixup: None,
            routes: REQ_FAIL,
            handler: h_forward,
        },
    ],
    ..ModuleExports::EMPTY
};

// --- test: return codes and plumbing -----------------------------------------------------------

fn h_ret(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    ctx.arg_int(&a[0]).unwrap_or(-99) as i32
}
fn h_note(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let text = ctx.arg_str(&a[0]).into_owned();
    ctx.host.log(LogLevel::Info, "test", &text);
    1
}
fn h_unset(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    match &a[0] {
        Arg::Pv(p) => match ctx.pv_set(p, Value::Null) {
            Ok(()) => 1,
            Err(_) => -1,
        },
        _ => -1,
    }
}
fn h_match(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let text = ctx.arg_str(&a[1]).into_owned();
    match &a[0] {
        Arg::Regex(re) if re.is_match(&text) => 1,
        _ => -1,
    }
}
/// Reads the state init built from modparams.
fn h_greeting(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let g = ctx
        .module_state::<TestState>()
        .map(|s| format!("{} x{}", s.name, s.level))
        .unwrap_or_else(|| "no state".into());
    ctx.host.log(LogLevel::Info, "test", &g);
    1
}
fn h_has_tm(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    if ctx.has_transaction() { 1 } else { -1 }
}
fn h_arm(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    if let Arg::Route(id) = a[0] {
        ctx.avps.push("armed", Value::Int(i64::from(id.index)));
    }
    1
}
fn fixup_even(_f: &mut FixupCtx<'_>, a: &mut [Arg]) -> Result<(), FixupError> {
    match a[0] {
        Arg::Int(n) if n % 2 == 0 => {
            a[0] = Arg::Data(Arc::new(n / 2));
            Ok(())
        }
        _ => Err(FixupError::arg(0, "must be an even number")),
    }
}
fn h_half(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let _ = ctx;
    a[0].data::<i64>().map_or(-1, |n| *n as i32)
}
fn pv_greeting(ctx: &mut Ctx<'_>, inner: Option<&str>) -> Value {
    let name = ctx
        .module_state::<TestState>()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    Value::Str(format!("{}:{}", name, inner.unwrap_or("")))
}

#[derive(Debug)]
pub struct TestState {
    pub name: String,
    pub level: i64,
    /// Set by child_init.
    pub rank: Option<i32>,
}

fn test_child_init(c: &mut sip_script::ModChildInit<'_>, rank: i32) -> Result<(), String> {
    let state = c.state_mut::<TestState>().ok_or("child_init before init")?;
    state.rank = Some(rank);
    Ok(())
}

fn test_init(init: &mut ModInit<'_>) -> Result<(), String> {
    let level = init.param_int("level").unwrap_or(1);
    if level < 0 {
        return Err("level must not be negative".into());
    }
    let name = init.param_str("name").unwrap_or("anon").to_string();
    init.set_state(TestState {
        name,
        level,
        rank: None,
    });
    Ok(())
}

pub static TEST: ModuleExports = ModuleExports {
    name: "test",
    functions: &[
        FunctionExport {
            name: "ret",
            args: &[ArgKind::Int],
            fixup: None,
            routes: ANY,
            handler: h_ret,
        },
        FunctionExport {
            name: "note",
            args: &[ArgKind::Format],
            fixup: None,
            routes: ANY,
            handler: h_note,
        },
        FunctionExport {
            name: "unset",
            args: &[ArgKind::PvWritable],
            fixup: None,
            routes: ANY,
            handler: h_unset,
        },
        FunctionExport {
            name: "matches",
            args: &[ArgKind::Regex, ArgKind::Format],
            fixup: None,
            routes: ANY,
            handler: h_match,
        },
        FunctionExport {
            name: "greeting",
            args: &[],
            fixup: None,
            routes: ANY,
            handler: h_greeting,
        },
        FunctionExport {
            name: "has_tm",
            args: &[],
            fixup: None,
            routes: ANY,
            handler: h_has_tm,
        },
        FunctionExport {
            name: "arm_failure",
            args: &[ArgKind::Route(RouteKind::Failure)],
            fixup: None,
            routes: ANY,
            handler: h_arm,
        },
        FunctionExport {
            name: "half",
            args: &[ArgKind::Int],
            fixup: Some(fixup_even),
            routes: ANY,
            handler: h_half,
        },
        FunctionExport {
            name: "request_only",
            args: &[],
            fixup: None,
            routes: RouteKinds::REQUEST,
            handler: h_ret_one,
        },
    ],
    params: &[
        ParamExport {
            name: "level",
            kind: ParamKind::Int,
            aliases: &["lvl"],
        },
        ParamExport {
            name: "name",
            kind: ParamKind::Str,
            aliases: &[],
        },
    ],
    init: Some(test_init),
    child_init: Some(test_child_init),
    pvs: &[PvExport {
        name: "greet",
        get: pv_greeting,
        set: None,
    }],
    ..ModuleExports::EMPTY
};

fn h_ret_one(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    1
}

// --- stock-like names for the bench and corpus -------------------------------------------------

fn h_is_method(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let Some(list) = a[0].const_str() else {
        return -1;
    };
    let m = ctx.msg.method_bytes().unwrap_or_default();
    if list
        .split('|')
        .any(|x| x.as_bytes().eq_ignore_ascii_case(m))
    {
        1
    } else {
        -1
    }
}
fn h_has_totag(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    match ctx.msg.to() {
        Ok(t) if t.tag().is_some() => 1,
        _ => -1,
    }
}
fn h_append_hf(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let line = ctx.arg_str(&a[0]).into_owned();
    let line = line.trim_end_matches(['\r', '\n']);
    ctx.edits
        .insert_header(InsertAt::BeforeBody, line.as_bytes());
    1
}
fn h_record_route(ctx: &mut Ctx<'_>, _a: &[Arg]) -> i32 {
    let (host, port) = ctx.src.local.public();
    let line = format!("Record-Route: <sip:{host}:{port};lr>");
    ctx.edits.insert_header(InsertAt::Top, line.as_bytes());
    1
}
fn h_mf(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let limit = ctx.arg_int(&a[0]).unwrap_or(70) as u32;
    match ctx.msg.max_forwards() {
        Ok(Some(0)) => -1,
        Ok(Some(n)) => {
            ctx.edits.set_max_forwards(n.min(limit) - 1);
            1
        }
        Ok(None) => {
            ctx.edits.set_max_forwards(limit);
            1
        }
        Err(_) => -2,
    }
}
fn xlog_level(_f: &mut FixupCtx<'_>, a: &mut [Arg]) -> Result<(), FixupError> {
    let name = a[0].const_str().unwrap_or_default().to_string();
    let level = LogLevel::from_name(&name)
        .ok_or_else(|| FixupError::arg(0, format!("unknown log level `{name}`")))?;
    a[0] = Arg::Data(Arc::new(level));
    Ok(())
}
fn h_xlog2(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let level = a[0].data::<LogLevel>().copied().unwrap_or(LogLevel::Err);
    if !ctx.log_enabled(level) {
        return 1;
    }
    let text = ctx.arg_str(&a[1]).into_owned();
    ctx.host.log(level, "script", &text);
    1
}
fn h_xlog1(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    if !ctx.log_enabled(LogLevel::Err) {
        return 1;
    }
    let text = ctx.arg_str(&a[0]).into_owned();
    ctx.host.log(LogLevel::Err, "script", &text);
    1
}
fn h_sl_send_reply(ctx: &mut Ctx<'_>, a: &[Arg]) -> i32 {
    let code = ctx.arg_int(&a[0]).unwrap_or(500) as u16;
    let reason = ctx.arg_str(&a[1]).into_owned();
    let bytes = sip_msg::build::build_reply(
        ctx.msg,
        code,
        reason.as_bytes(),
        &sip_msg::build::ReplyOpts::default(),
    );
    let dst = ctx.src.addr;
    match ctx.host.send(sip_script::Proto::Udp, dst, &bytes) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

pub static TEXTOPS: ModuleExports = ModuleExports {
    name: "textops",
    functions: &[
        FunctionExport {
            name: "is_method",
            args: &[ArgKind::Str],
            fixup: None,
            routes: ANY,
            handler: h_is_method,
        },
        FunctionExport {
            name: "append_hf",
            args: &[ArgKind::Format],
            fixup: None,
            routes: REQ_FAIL,
            handler: h_append_hf,
        },
    ],
    ..ModuleExports::EMPTY
};

pub static SIPUTILS: ModuleExports = ModuleExports {
    name: "siputils",
    functions: &[FunctionExport {
        name: "has_totag",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: h_has_totag,
    }],
    ..ModuleExports::EMPTY
};

pub static RR: ModuleExports = ModuleExports {
    name: "rr",
    functions: &[FunctionExport {
        name: "record_route",
        args: &[],
        fixup: None,
        routes: REQ_FAIL,
        handler: h_record_route,
    }],
    ..ModuleExports::EMPTY
};

pub static MAXFWD: ModuleExports = ModuleExports {
    name: "maxfwd",
    functions: &[FunctionExport {
        name: "mf_process_maxfwd_header",
        args: &[ArgKind::Int],
        fixup: None,
        routes: RouteKinds::REQUEST,
        handler: h_mf,
    }],
    ..ModuleExports::EMPTY
};

pub static XLOG: ModuleExports = ModuleExports {
    name: "xlog",
    functions: &[
        FunctionExport {
            name: "xlog",
            args: &[ArgKind::Str, ArgKind::Format],
            fixup: Some(xlog_level),
            routes: ANY,
            handler: h_xlog2,
        },
        FunctionExport {
            name: "xlog",
            args: &[ArgKind::Format],
            fixup: None,
            routes: ANY,
            handler: h_xlog1,
        },
    ],
    ..ModuleExports::EMPTY
};

pub static SL: ModuleExports = ModuleExports {
    name: "sl",
    functions: &[FunctionExport {
        name: "sl_send_reply",
        args: &[ArgKind::Int, ArgKind::Format],
        fixup: None,
        routes: REQ_FAIL,
        handler: h_sl_send_reply,
    }],
    ..ModuleExports::EMPTY
};

/// A module that is available but not loaded by the corpus cfgs (hint messages).
pub static PV: ModuleExports = ModuleExports {
    name: "pv",
    functions: &[f_pv_unset()],
    ..ModuleExports::EMPTY
};

const fn f_pv_unset() -> FunctionExport {
    FunctionExport {
        name: "pv_unset",
        args: &[ArgKind::PvWritable],
        fixup: None,
        routes: ANY,
        handler: h_unset,
    }
}

pub static MODULES: &[&ModuleExports] = &[
    &CORE, &TEST, &TEXTOPS, &SIPUTILS, &RR, &MAXFWD, &XLOG, &SL, &PV,
];

// --- helpers ----------------------------------------------------------------------------------

/// A ~700-byte INVITE with SDP.
pub const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.15:5060;branch=z9hG4bKnashds8;received=192.0.2.4\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n\
Supported: replaces, timer\r\n\
User-Agent: TestPhone/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 134\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

pub fn parse(text: &str) -> Message {
    Message::parse(text.as_bytes().to_vec()).expect("test message parses")
}

/// Loads cfg text with every test module loaded (the `loadmodule` lines go after the text so
/// line numbers in diagnostics stay those of the text; a module the text loads itself is not
/// loaded twice, which would be a load error).
pub fn cfg(text: &str) -> Config {
    let mut full = text.to_string();
    full.push('\n');
    for m in ["test", "textops", "siputils", "rr", "maxfwd", "xlog", "sl"] {
        let line = format!("loadmodule \"{m}.so\"\n");
        if !text.contains(line.trim_end()) {
            full.push_str(&line);
        }
    }
    load_str("test.cfg", &full, &[]).unwrap_or_else(|e| panic!("load failed:\n{}", e.render()))
}

/// Compiles cfg text against the test modules, panicking with rendered errors.
pub fn script(text: &str) -> Script {
    let c = cfg(text);
    compile(&c, MODULES).unwrap_or_else(|e| panic!("compile failed:\n{}", c.render(&e)))
}

/// The first compile error for cfg text: (line, col, message).
pub fn compile_error(text: &str) -> (u32, u32, String) {
    let c = cfg(text);
    match compile(&c, MODULES) {
        Ok(_) => panic!("compiled without error:\n{text}"),
        Err(e) => (e[0].span.line, e[0].span.col, e[0].message.clone()),
    }
}

pub fn source() -> sip_script::Source {
    TestHost::source("192.0.2.10:5060".parse().unwrap())
}

/// Runs request_route once over `msg` and returns the outcome plus what the Ctx ended with.
pub struct Run {
    pub outcome: Outcome,
    pub rc: i32,
    pub ruri: String,
    pub du: Option<String>,
    pub flags: u64,
    pub printed: Vec<u8>,
}

pub fn run_msg(s: &Script, rt: &mut Runtime, host: &mut TestHost, msg: &Message) -> Run {
    let mut ctx = Ctx::new(rt, host, msg, source(), RouteKind::Request);
    let outcome = s.run_request(&mut ctx);
    Run {
        outcome,
        rc: ctx.rc,
        ruri: ctx.ruri().into_owned(),
        du: ctx.dst_uri.clone(),
        flags: ctx.flags,
        printed: msg.to_bytes(&ctx.edits),
    }
}

/// Compiles, inits and runs the cfg once over the test INVITE; returns run and host.
pub fn run(text: &str) -> (Run, TestHost) {
    let s = script(text);
    let mut rt = s.new_runtime();
    s.init_modules(&mut rt).expect("init");
    let mut host = TestHost::new();
    let msg = parse(INVITE);
    let r = run_msg(&s, &mut rt, &mut host, &msg);
    (r, host)
}

/// The info-level log texts of a run.
pub fn logs(host: &TestHost) -> Vec<String> {
    host.logs.iter().map(|l| l.text.clone()).collect()
}
