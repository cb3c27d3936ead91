//! The module ABI: how a built-in module plugs into the script runtime.
//!
//! A module is a static [`ModuleExports`] table, like Kamailio's `struct module_exports`:
//!
//! * **functions** ([`FunctionExport`]): name, typed arguments ([`ArgKind`]; the arity is the
//!   number of kinds, overloads repeat the name with another arity), an optional fixup run at
//!   compile time, the route kinds it may be called from ([`RouteKinds`]) and the handler
//!   `fn(&mut Ctx, &[Arg]) -> i32`. Return codes as Kamailio: positive = true, negative =
//!   false, **0 = stop the script**.
//! * **params** ([`ParamExport`]): `modparam` names with their type and aliases (OpenSIPS
//!   spellings); values are checked at compile time, a wrong name or type is a config error.
//! * **init** (before fork) turns the params into module state ([`ModInit::set_state`]) and
//!   may register an API ([`ModInit::register_api`]); **child_init(rank)** runs in every
//!   process after fork.
//! * **pvs** ([`PvExport`]): module-provided pseudo-variables (tmx's `$T_reply_code`); a
//!   module PV overrides a built-in one of the same name.
//! * **rpc** ([`RpcExport`]): JSON-RPC methods for the ctl process, over `serde_json::Value`.
//!
//! Core actions (`forward`, `setflag`, `strip`, ...) are a pseudo-module named `core` with the
//! same ABI, looked up for every config without `loadmodule`.
//!
//! # How arguments are prepared
//!
//! The compiler converts each call argument by its [`ArgKind`] into an [`Arg`] (so a handler
//! never parses): `Int` literals (also `"10"` strings) become [`Arg::Int`], a PV becomes
//! [`Arg::DynInt`]; `Format` strings are parsed once into a [`Format`]; `Regex` is compiled;
//! `Route(kind)` names are bound to a [`RouteId`] and must exist. Then the export's own
//! `fixup` may check or precompute more (e.g. `xlog` turning `"L_INFO"` into a level), and may
//! replace an argument by [`Arg::Data`]. Handlers read arguments with [`Ctx::arg_str`] /
//! [`Ctx::arg_int`], which evaluate the dynamic forms.
//!
//! # Effects
//!
//! The runtime is pure: every effect (send, log, clock, randomness, sleep, DNS) goes through
//! [`Host`], which the binary implements with real I/O and tests with
//! [`crate::testhost::TestHost`].
//!
//! # Modules talk through API traits
//!
//! A module that offers services to others registers an `Arc<dyn Trait>` in init
//! ([`ModInit::register_api`]); others fetch it with [`Ctx::api`]. The registry is keyed by
//! the trait object type, so no module names a concrete type of another. [`TmApi`] is the
//! first one: `sl`'s `send_reply` asks it whether a transaction exists (no tm → no).
//!
//! # Life cycle (what the binary does)
//!
//! 1. `let script = compile::compile(&config, sip_modules::all_modules())?` — binds every call
//!    by name and arity (`unknown function NAME/ARITY`), checks route kinds, runs fixups,
//!    checks modparams.
//! 2. `let mut rt = script.new_runtime(); script.init_modules(&mut rt)?` — before fork.
//! 3. After fork: `script.child_init(&mut rt, rank)?`.
//! 4. Per message: `let mut ctx = Ctx::new(&mut rt, &mut host, &msg, src, RouteKind::Request);
//!    let outcome = script.run_request(&mut ctx);` — sends already happened through the host.
//!
//! # Testing a module
//!
//! Build a [`Runtime`] (`Runtime::new(&CoreParams::default())`), a
//! [`crate::testhost::TestHost`], parse a message with `sip_msg::Message::parse`, make a
//! [`Ctx`] with [`Ctx::new`] and call the handler with prepared [`Arg`]s (e.g.
//! `Arg::Format(Format::literal("X-A: 1\r\n"))`); or compile a small cfg with your module
//! table and run it.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sip_msg::{EditList, Message};

pub use crate::ast::{ModParamValue, Proto, RouteKind};
pub use crate::core_params::CoreParams;
pub use crate::pvar::{Format, PvSpec};
use crate::runtime::Runtime;
pub use crate::value::Value;

// ---------------------------------------------------------------------------------------------
// Route kinds

/// A set of route kinds a function may be called from (Kamailio's `REQUEST_ROUTE|...` flags).
/// `route[NAME]` blocks are checked against every kind that can reach them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RouteKinds(pub u16);

impl RouteKinds {
    pub const NONE: RouteKinds = RouteKinds(0);
    /// `request_route`.
    pub const REQUEST: RouteKinds = RouteKinds(1);
    /// `failure_route[...]`.
    pub const FAILURE: RouteKinds = RouteKinds(1 << 1);
    /// tm's per-branch `onreply_route[NAME]`.
    pub const ONREPLY: RouteKinds = RouteKinds(1 << 2);
    /// `branch_route[...]`.
    pub const BRANCH: RouteKinds = RouteKinds(1 << 3);
    /// The core `reply_route` (every reply, before tm).
    pub const REPLY: RouteKinds = RouteKinds(1 << 4);
    /// `onsend_route`.
    pub const ONSEND: RouteKinds = RouteKinds(1 << 5);
    /// `event_route[...]`.
    pub const EVENT: RouteKinds = RouteKinds(1 << 6);
    /// tm's local route (requests generated by the proxy itself).
    pub const LOCAL: RouteKinds = RouteKinds(1 << 7);
    pub const ANY: RouteKinds = RouteKinds(0xff);

    pub const fn union(self, other: RouteKinds) -> RouteKinds {
        RouteKinds(self.0 | other.0)
    }

    pub const fn contains(self, other: RouteKinds) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: RouteKinds) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flag of a top-level block kind. `route[NAME]` has none of its own (its callers
    /// decide); that gives [`RouteKinds::NONE`].
    pub const fn of(kind: RouteKind) -> RouteKinds {
        match kind {
            RouteKind::Request => RouteKinds::REQUEST,
            RouteKind::Route => RouteKinds::NONE,
            RouteKind::Failure => RouteKinds::FAILURE,
            RouteKind::OnReply => RouteKinds::ONREPLY,
            RouteKind::Branch => RouteKinds::BRANCH,
            RouteKind::Reply => RouteKinds::REPLY,
            RouteKind::OnSend => RouteKinds::ONSEND,
            RouteKind::Event => RouteKinds::EVENT,
        }
    }

    /// Block keywords of the kinds in the set, for error messages.
    pub fn names(self) -> Vec<&'static str> {
        const ALL: [(RouteKinds, &str); 8] = [
            (RouteKinds::REQUEST, "request_route"),
            (RouteKinds::FAILURE, "failure_route"),
            (RouteKinds::ONREPLY, "onreply_route"),
            (RouteKinds::BRANCH, "branch_route"),
            (RouteKinds::REPLY, "reply_route"),
            (RouteKinds::ONSEND, "onsend_route"),
            (RouteKinds::EVENT, "event_route"),
            (RouteKinds::LOCAL, "local_route"),
        ];
        ALL.iter()
            .filter(|(k, _)| self.intersects(*k))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl std::ops::BitOr for RouteKinds {
    type Output = RouteKinds;
    fn bitor(self, rhs: RouteKinds) -> RouteKinds {
        self.union(rhs)
    }
}

/// Index of a compiled route block within its kind (`failure_route[X]` → the id that
/// `t_on_failure("X")` stores). Resolved at compile time, so it always names an existing block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteId {
    pub kind: RouteKind,
    pub index: u32,
}

// ---------------------------------------------------------------------------------------------
// Function exports

/// The type of one function argument; decides how the compiler prepares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// An integer: int literal or numeric string literal (`"10"`) → [`Arg::Int`]; a PV or a
    /// string with PVs → [`Arg::DynInt`] (evaluated per call). `"abc"` is a compile error.
    Int,
    /// A constant string, no PV expansion (`is_method("INVITE|ACK")`) → [`Arg::Str`]. Int
    /// literals are accepted as their decimal text.
    Str,
    /// A string whose PVs are expanded per call (`xlog`, `append_hf`, reply reasons) →
    /// [`Arg::Format`]; a bare PV argument is a format of that PV.
    Format,
    /// A constant POSIX-ERE-like pattern compiled at load → [`Arg::Regex`].
    Regex,
    /// A PV name, readable (`"$var(x)"` or a bare `$var(x)`) → [`Arg::Pv`].
    Pv,
    /// A PV that must be writable → [`Arg::Pv`]; a read-only PV is a compile error.
    PvWritable,
    /// The name of a route block of that kind, which must exist → [`Arg::Route`].
    Route(RouteKind),
}

/// A prepared argument, as handlers receive it.
#[derive(Clone)]
pub enum Arg {
    Int(i64),
    /// An int argument given as PV(s); [`Ctx::arg_int`] evaluates it.
    DynInt(Format),
    Str(String),
    Format(Format),
    Regex(regex::Regex),
    Pv(PvSpec),
    Route(RouteId),
    /// Whatever a module's fixup precomputed (a parsed level, a method set, ...).
    Data(Arc<dyn Any + Send + Sync>),
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Int(i) => write!(f, "Int({i})"),
            Arg::DynInt(x) => write!(f, "DynInt({x:?})"),
            Arg::Str(s) => write!(f, "Str({s:?})"),
            Arg::Format(x) => write!(f, "Format({x:?})"),
            Arg::Regex(r) => write!(f, "Regex({:?})", r.as_str()),
            Arg::Pv(p) => write!(f, "Pv({p:?})"),
            Arg::Route(r) => write!(f, "Route({r:?})"),
            Arg::Data(_) => f.write_str("Data(..)"),
        }
    }
}

impl Arg {
    /// The precomputed data of an [`Arg::Data`] as `T`.
    pub fn data<T: Any>(&self) -> Option<&T> {
        match self {
            Arg::Data(d) => d.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// The constant text of a `Str` or a constant `Format` argument.
    pub fn const_str(&self) -> Option<&str> {
        match self {
            Arg::Str(s) => Some(s),
            Arg::Format(f) => f.as_const(),
            _ => None,
        }
    }
}

/// A fixup failure; `arg` (0-based) says which argument the diagnostic points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixupError {
    pub arg: Option<usize>,
    pub message: String,
}

impl FixupError {
    pub fn arg(index: usize, message: impl Into<String>) -> FixupError {
        FixupError {
            arg: Some(index),
            message: message.into(),
        }
    }

    pub fn call(message: impl Into<String>) -> FixupError {
        FixupError {
            arg: None,
            message: message.into(),
        }
    }
}

/// What a fixup may look at besides the arguments.
#[derive(Debug)]
pub struct FixupCtx<'a> {
    /// The config's core parameters (`dialect`, `debug`, ...).
    pub core: &'a CoreParams,
    /// Kinds of the blocks this call can run in.
    pub route_kinds: RouteKinds,
    /// Compile warnings the fixup wants printed (`siplab -c` shows them), e.g. spec §11.1.
    pub warnings: Vec<String>,
}

/// Per-call fixup run at compile time after the generic per-argument preparation.
pub type FixupFn = fn(&mut FixupCtx<'_>, &mut [Arg]) -> Result<(), FixupError>;

/// A script function's handler. Returns Kamailio's code: >0 true, <0 false, 0 stop the script.
pub type HandlerFn = fn(&mut Ctx<'_>, &[Arg]) -> i32;

/// One script function (one arity).
#[derive(Clone, Copy, Debug)]
pub struct FunctionExport {
    pub name: &'static str,
    /// Argument kinds; the arity is their number.
    pub args: &'static [ArgKind],
    pub fixup: Option<FixupFn>,
    /// Route kinds the function may be called from.
    pub routes: RouteKinds,
    pub handler: HandlerFn,
}

// ---------------------------------------------------------------------------------------------
// Module parameters, PVs, RPC, init

/// The type of a `modparam` value. A value of the other type is a config error [E22].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Int,
    Str,
}

/// One `modparam` a module accepts.
#[derive(Clone, Copy, Debug)]
pub struct ParamExport {
    pub name: &'static str,
    pub kind: ParamKind,
    /// Other accepted spellings (OpenSIPS names, old typos like `ds_probing_threshhold`).
    pub aliases: &'static [&'static str],
}

/// Reads a module PV. `inner` is the raw text in parentheses (`x` of `$foo(x)`).
pub type PvGetFn = fn(&mut Ctx<'_>, inner: Option<&str>) -> Value;
/// Writes a module PV; the error is reported as a script run error.
pub type PvSetFn = fn(&mut Ctx<'_>, inner: Option<&str>, Value) -> Result<(), String>;

/// A pseudo-variable provided by a module.
#[derive(Clone, Copy, Debug)]
pub struct PvExport {
    pub name: &'static str,
    pub get: PvGetFn,
    /// `None`: read-only (assigning is a compile error).
    pub set: Option<PvSetFn>,
}

/// A JSON-RPC error (code and message as JSON-RPC 2.0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

/// A JSON-RPC method (`ds.list`): runs in the ctl process with that process's runtime.
pub type RpcFn = fn(&mut Runtime, &serde_json::Value) -> Result<serde_json::Value, RpcError>;

#[derive(Clone, Copy, Debug)]
pub struct RpcExport {
    pub name: &'static str,
    pub doc: &'static str,
    pub handler: RpcFn,
}

/// What happens to a received reply after the module reply hooks ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyDisposition {
    /// A module (tm) took the reply: relayed, stored or absorbed by its transaction.
    Consumed,
    /// No module claims it: the core forwards it statelessly along its second Via.
    Forward,
}

/// Called for every reply after the core `reply_route` (Kamailio's tm `reply_received`
/// hook): the ctx is the reply's, with the script available through [`Ctx::run_route`].
pub type ReplyHookFn = fn(&mut Ctx<'_>) -> ReplyDisposition;
/// Called once per request after `request_route` ended, however it ended (Kamailio's
/// POST_SCRIPT callbacks: tm's delayed error reply and release, tmx's precheck slot).
pub type PostScriptFn = fn(&mut Ctx<'_>);
/// Called by the timer process every tick (`timer_hz`, 16/s by default) with that process's
/// runtime and host.
/// The module builds its own [`Ctx`]s (with [`Ctx::set_script`]) to run routes.
pub type TimerFn = fn(&crate::compile::Script, &mut Runtime, &mut dyn Host);

/// Module init, before fork: params in, state and APIs out.
pub type InitFn = fn(&mut ModInit<'_>) -> Result<(), String>;
/// Per-process init after fork; `rank` as Kamailio (`> 0` workers, `0` main, negatives special).
pub type ChildInitFn = fn(&mut ModChildInit<'_>, rank: i32) -> Result<(), String>;

/// A module's export table.
#[derive(Clone, Copy, Debug)]
pub struct ModuleExports {
    /// `loadmodule "NAME.so"` name.
    pub name: &'static str,
    pub functions: &'static [FunctionExport],
    pub params: &'static [ParamExport],
    pub init: Option<InitFn>,
    pub child_init: Option<ChildInitFn>,
    pub rpc: &'static [RpcExport],
    pub pvs: &'static [PvExport],
    /// Reply hook (tm): see [`ReplyHookFn`].
    pub reply_hook: Option<ReplyHookFn>,
    /// End-of-request hook: see [`PostScriptFn`].
    pub post_script: Option<PostScriptFn>,
    /// Timer-process hook: see [`TimerFn`].
    pub timer: Option<TimerFn>,
}

impl ModuleExports {
    /// An export table with nothing in it (for `..ModuleExports::EMPTY` in statics).
    pub const EMPTY: ModuleExports = ModuleExports {
        name: "",
        functions: &[],
        params: &[],
        init: None,
        child_init: None,
        rpc: &[],
        pvs: &[],
        reply_hook: None,
        post_script: None,
        timer: None,
    };

    pub fn param(&self, name: &str) -> Option<&'static ParamExport> {
        self.params
            .iter()
            .find(|p| p.name == name || p.aliases.contains(&name))
    }
}

/// A `modparam` value after checking, under the param's canonical name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSetting {
    pub name: &'static str,
    pub value: ModParamValue,
}

/// What `init` gets: the module's params (in cfg order), the core params, and the runtime to
/// store state and APIs in.
pub struct ModInit<'a> {
    pub module: &'static ModuleExports,
    pub params: &'a [ParamSetting],
    pub core: &'a CoreParams,
    pub(crate) rt: &'a mut Runtime,
}

impl ModInit<'_> {
    /// The last value set for `name` if it is an int param.
    pub fn param_int(&self, name: &str) -> Option<i64> {
        self.params.iter().rev().find_map(|p| match &p.value {
            ModParamValue::Int(i) if p.name == name => Some(*i),
            _ => None,
        })
    }

    /// The last value set for `name` if it is a string param.
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.params.iter().rev().find_map(|p| match &p.value {
            ModParamValue::Str(s) if p.name == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// Every value set for `name`, in cfg order (repeatable params).
    pub fn param_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s ModParamValue> {
        self.params
            .iter()
            .filter(move |p| p.name == name)
            .map(|p| &p.value)
    }

    /// Stores the module's state; handlers fetch it with [`Ctx::module_state`]. One value per
    /// type: storing the same type again replaces it.
    pub fn set_state<T: Any + Send>(&mut self, state: T) {
        self.rt.set_state(state);
    }

    pub fn state_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.rt.state_mut::<T>()
    }

    /// Registers an API for other modules, keyed by its (trait object) type:
    /// `init.register_api::<dyn TmApi>(Arc::new(MyTm))`.
    pub fn register_api<A: ?Sized + Send + Sync + 'static>(&mut self, api: Arc<A>) {
        self.rt.apis.register(api);
    }

    /// An API registered by a module initialised earlier.
    pub fn api<A: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<A>> {
        self.rt.apis.get::<A>()
    }

    /// The shared region mapped before fork (`None` in `siplab -c` and in tests that do
    /// not provide one).
    pub fn shm(&self) -> Option<&'static sip_shm::Region> {
        self.rt.shm()
    }

    /// A load-time warning (a setting the module adjusted); kept in the runtime as
    /// `"<module>: <text>"` for the binary to print ([`Runtime::init_warnings`]).
    pub fn warn(&mut self, text: impl std::fmt::Display) {
        let line = format!("{}: {text}", self.module.name);
        self.rt.init_warnings.push(line);
    }
}

/// What `child_init` gets: the process's runtime (module state, APIs).
pub struct ModChildInit<'a> {
    pub module: &'static ModuleExports,
    pub rt: &'a mut Runtime,
}

impl ModChildInit<'_> {
    pub fn state_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.rt.state_mut::<T>()
    }
}

/// A map keyed by `TypeId`. A `TypeId` is already a hash, so the hasher keeps its bits
/// instead of running SipHash over them: modules look up their state on every call.
pub(crate) type TypeIdMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;

/// Hasher for [`TypeIdMap`]: `TypeId` hashes itself as integer writes, which are mixed
/// in as they are; byte writes (not used by `TypeId` today) are folded in FNV-style.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

/// APIs modules offer each other, keyed by the API's (trait object) type.
#[derive(Default)]
pub struct ApiRegistry {
    apis: TypeIdMap<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for ApiRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiRegistry({} apis)", self.apis.len())
    }
}

impl ApiRegistry {
    pub fn register<A: ?Sized + Send + Sync + 'static>(&mut self, api: Arc<A>) {
        self.apis.insert(TypeId::of::<A>(), Box::new(api));
    }

    pub fn get<A: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<A>> {
        self.apis
            .get(&TypeId::of::<A>())
            .and_then(|b| b.downcast_ref::<Arc<A>>())
            .cloned()
    }
}

/// The transaction module's API as other modules see it. Until tm exists nothing registers
/// it and [`Ctx::has_transaction`] answers "no".
pub trait TmApi: Send + Sync {
    /// Whether the message being processed belongs to a transaction (`send_reply` then
    /// replies statefully).
    fn has_transaction(&self, ctx: &Ctx<'_>) -> bool;
    /// Sends a reply through the transaction (`t_reply`); the script return code.
    fn reply(&self, ctx: &mut Ctx<'_>, code: u16, reason: &str) -> i32;
    /// `$T_reply_code`: see spec §8.7 (0 without a transaction).
    fn reply_code(&self, ctx: &Ctx<'_>) -> i32;
}

// ---------------------------------------------------------------------------------------------
// Host: every effect

/// Monotonic milliseconds from the supervisor's start tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

/// Kamailio log levels (K: src/core/dprint.h); a message prints when `level <= debug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Alert = -5,
    Bug = -4,
    Crit = -3,
    Err = -1,
    Warn = 0,
    Notice = 1,
    Info = 2,
    Dbg = 3,
}

impl LogLevel {
    pub fn value(self) -> i32 {
        self as i32
    }

    /// Parses `L_INFO`-style names (xlog) and the bare names (`INFO`).
    pub fn from_name(name: &str) -> Option<LogLevel> {
        let n = name.strip_prefix("L_").unwrap_or(name);
        Some(match n {
            "ALERT" => LogLevel::Alert,
            "BUG" => LogLevel::Bug,
            "CRIT" => LogLevel::Crit,
            "ERR" => LogLevel::Err,
            "WARN" => LogLevel::Warn,
            "NOTICE" => LogLevel::Notice,
            "INFO" => LogLevel::Info,
            "DBG" => LogLevel::Dbg,
            _ => return None,
        })
    }

    /// The word Kamailio prints in a log line (`INFO`, `ERROR`, ...).
    pub fn label(self) -> &'static str {
        match self {
            LogLevel::Alert => "ALERT",
            LogLevel::Bug => "BUG",
            LogLevel::Crit => "CRITICAL",
            LogLevel::Err => "ERROR",
            LogLevel::Warn => "WARNING",
            LogLevel::Notice => "NOTICE",
            LogLevel::Info => "INFO",
            LogLevel::Dbg => "DEBUG",
        }
    }
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError(pub String);

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send failed: {}", self.0)
    }
}

impl std::error::Error for SendError {}

/// A listen address or alias, for `myself` checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    /// An IP address text (`127.0.0.1`, `::1` without brackets) or an alias name.
    pub host: String,
    /// `None` for an alias without port: matches any port.
    pub port: Option<u16>,
    pub proto: Proto,
}

/// The socket a message arrived on (what `record_route`/`forward` advertise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSocket {
    pub addr: SocketAddr,
    pub proto: Proto,
    /// `listen=... advertise host:port`.
    pub advertise: Option<(String, u16)>,
}

impl LocalSocket {
    /// The host and port to put in Via/Record-Route: the advertised ones if set.
    pub fn public(&self) -> (Cow<'_, str>, u16) {
        match &self.advertise {
            Some((h, p)) => (Cow::Borrowed(h.as_str()), *p),
            None => (
                match self.addr.ip() {
                    IpAddr::V6(a) => Cow::Owned(format!("[{a}]")),
                    a => Cow::Owned(a.to_string()),
                },
                self.addr.port(),
            ),
        }
    }
}

/// Where a message came from (`$si`, `$sp`, `src_ip`, `proto`) and the socket it hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub addr: SocketAddr,
    pub proto: Proto,
    pub local: LocalSocket,
}

/// Every effect the script and modules may have. The binary implements it with sockets,
/// syslog/stderr, the monotonic tick and a real sleep; tests use
/// [`crate::testhost::TestHost`], which records.
pub trait Host {
    /// Sends a datagram (or stream message) to `dst`.
    fn send(&mut self, proto: Proto, dst: SocketAddr, bytes: &[u8]) -> Result<(), SendError>;
    /// Writes a log line; the line prefix (` 1(123) INFO: <script>: `) is the host's business.
    /// `module` is the module name (`xlog` prints `<script>`-style lines with `"script"`).
    fn log(&mut self, level: LogLevel, module: &str, text: &str);

    /// A log line with the cfg's `log_prefix` (expanded for the current message), which
    /// Kamailio prints between the level and `<module>`. By default the prefix leads the text.
    fn log_prefixed(&mut self, level: LogLevel, prefix: &str, module: &str, text: &str) {
        self.log(level, module, &format!("{prefix}{text}"));
    }
    fn now(&self) -> Millis;
    fn random_u32(&mut self) -> u32;
    /// Blocks this worker (cfgutils `sleep`); the test host only records it.
    fn sleep_ms(&mut self, ms: u64);
    /// Listen addresses and aliases, for `myself`.
    fn local_addrs(&self) -> &[LocalAddr];
    /// DNS A/AAAA lookup of a host name (not an IP literal); empty when it does not resolve.
    fn resolve(&mut self, name: &str) -> Vec<IpAddr>;
    /// `$pp`.
    fn pid(&self) -> u32;
    /// This process's rank (workers 1..=N).
    fn rank(&self) -> i32;
    /// Counts one event of a Kamailio statistic (`stats.get_statistics`); counters live in
    /// shared memory, so the binary does it. The default (tests) counts nothing.
    fn count(&mut self, _stat: Stat) {}
}

/// Statistics that modules report through [`Host::count`], with Kamailio's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    /// `core:fwd_requests`: a request forwarded statelessly (`forward()`).
    FwdRequests,
    /// `sl:sent_replies`: a stateless reply sent by sl.
    SlSentReplies,
    /// `sl:sent_err_replies`: a stateless reply with a code ≥ 300.
    SlSentErrReplies,
}

impl Stat {
    pub const ALL: [Stat; 3] = [
        Stat::FwdRequests,
        Stat::SlSentReplies,
        Stat::SlSentErrReplies,
    ];

    /// `group:name` as `stats.get_statistics` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Stat::FwdRequests => "core:fwd_requests",
            Stat::SlSentReplies => "sl:sent_replies",
            Stat::SlSentErrReplies => "sl:sent_err_replies",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Per-message context

/// An extra branch added by `append_branch` (used when tm forks).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Branch {
    pub uri: String,
    pub dst_uri: Option<String>,
    /// q value times 1000; `None` when not given.
    pub q: Option<u16>,
    pub flags: u64,
}

/// The error a failed function leaves for `sl_reply_error()` (Kamailio's `ser_error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerError {
    pub status: u16,
    pub reason: String,
}

/// `$avp(name)` values: a stack per name, newest first (`$avp(a)=1; $avp(a)=2;` → `$avp(a)`
/// is 2, `$(avp(a)[1])` is 1 [E20]). Per message now; tm will make it per transaction.
///
/// Short names, single values and a single name are stored inline: a module's per-message
/// mark (rr's "recorded") costs no allocation.
#[derive(Clone, Debug, Default)]
pub struct AvpStore {
    entries: AvpEntries,
}

/// The names in insertion order; one name without a Vec.
#[derive(Clone, Debug, Default)]
enum AvpEntries {
    #[default]
    Empty,
    One(AvpEntry),
    Many(Vec<AvpEntry>),
}

impl AvpEntries {
    fn as_slice(&self) -> &[AvpEntry] {
        match self {
            AvpEntries::Empty => &[],
            AvpEntries::One(e) => std::slice::from_ref(e),
            AvpEntries::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [AvpEntry] {
        match self {
            AvpEntries::Empty => &mut [],
            AvpEntries::One(e) => std::slice::from_mut(e),
            AvpEntries::Many(v) => v,
        }
    }

    fn push(&mut self, entry: AvpEntry) {
        match self {
            AvpEntries::Many(v) => v.push(entry),
            AvpEntries::Empty => *self = AvpEntries::One(entry),
            AvpEntries::One(_) => {
                if let AvpEntries::One(first) = std::mem::take(self) {
                    *self = AvpEntries::Many(vec![first, entry]);
                }
            }
        }
    }

    fn retain(&mut self, keep: impl Fn(&AvpEntry) -> bool) {
        match self {
            AvpEntries::Empty => {}
            AvpEntries::One(e) => {
                if !keep(e) {
                    *self = AvpEntries::Empty;
                }
            }
            AvpEntries::Many(v) => v.retain(keep),
        }
    }
}

#[derive(Clone, Debug)]
struct AvpEntry {
    name: AvpName,
    vals: AvpStack,
}

/// Longest name kept inline (module-private names and typical script names fit).
const AVP_INLINE_NAME: usize = 22;

#[derive(Clone, Debug)]
enum AvpName {
    Inline { buf: [u8; AVP_INLINE_NAME], len: u8 },
    Heap(String),
}

impl AvpName {
    fn new(name: &str) -> AvpName {
        match (u8::try_from(name.len()), name.len() <= AVP_INLINE_NAME) {
            (Ok(len), true) => {
                let mut buf = [0u8; AVP_INLINE_NAME];
                buf[..name.len()].copy_from_slice(name.as_bytes());
                AvpName::Inline { buf, len }
            }
            _ => AvpName::Heap(name.to_string()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            AvpName::Inline { buf, len } => &buf[..usize::from(*len)],
            AvpName::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `&str`, so always valid UTF-8.
            AvpName::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            AvpName::Heap(s) => s,
        }
    }

    fn is(&self, name: &str) -> bool {
        self.as_bytes() == name.as_bytes()
    }
}

/// One name's values, newest first; a single value without a Vec.
#[derive(Clone, Debug)]
enum AvpStack {
    One(Value),
    Many(Vec<Value>),
}

impl AvpStack {
    fn as_slice(&self) -> &[Value] {
        match self {
            AvpStack::One(v) => std::slice::from_ref(v),
            AvpStack::Many(vals) => vals,
        }
    }

    fn push_front(&mut self, v: Value) {
        match self {
            AvpStack::Many(vals) if vals.is_empty() => *self = AvpStack::One(v),
            AvpStack::Many(vals) => vals.insert(0, v),
            AvpStack::One(old) => {
                let old = std::mem::take(old);
                *self = AvpStack::Many(vec![v, old]);
            }
        }
    }

    fn remove_front(&mut self) {
        match self {
            AvpStack::One(_) => *self = AvpStack::Many(Vec::new()),
            AvpStack::Many(vals) if !vals.is_empty() => {
                vals.remove(0);
            }
            AvpStack::Many(_) => {}
        }
    }
}

impl PartialEq for AvpStore {
    /// Same names in the same order with the same values (however they are stored).
    fn eq(&self, other: &AvpStore) -> bool {
        self.entries.as_slice().len() == other.entries.as_slice().len()
            && self.iter().eq(other.iter())
    }
}

impl Eq for AvpStore {}

impl AvpStore {
    pub fn new() -> AvpStore {
        AvpStore::default()
    }

    fn entry(&self, name: &str) -> Option<&AvpEntry> {
        self.entries.as_slice().iter().find(|e| e.name.is(name))
    }

    /// Adds a value on top of the name's stack.
    pub fn push(&mut self, name: &str, v: Value) {
        match self
            .entries
            .as_mut_slice()
            .iter_mut()
            .find(|e| e.name.is(name))
        {
            Some(e) => e.vals.push_front(v),
            None => self.entries.push(AvpEntry {
                name: AvpName::new(name),
                vals: AvpStack::One(v),
            }),
        }
    }

    /// The `index`-th value (0 = newest, negative from the oldest: -1 = oldest).
    pub fn get(&self, name: &str, index: i64) -> Option<&Value> {
        let vals = self.all(name);
        let i = if index < 0 {
            vals.len().checked_sub(index.unsigned_abs() as usize)?
        } else {
            index as usize
        };
        vals.get(i)
    }

    /// All values of a name, newest first.
    pub fn all(&self, name: &str) -> &[Value] {
        self.entry(name).map_or(&[], |e| e.vals.as_slice())
    }

    /// Removes the newest value.
    pub fn remove_top(&mut self, name: &str) {
        if let Some(e) = self
            .entries
            .as_mut_slice()
            .iter_mut()
            .find(|e| e.name.is(name))
        {
            e.vals.remove_front();
        }
    }

    /// Removes every value of the name.
    pub fn remove_all(&mut self, name: &str) {
        self.entries.retain(|e| !e.name.is(name));
    }

    pub fn clear(&mut self) {
        self.entries = AvpEntries::Empty;
    }

    /// Every name with its values (newest first), e.g. for tm to save them with a
    /// transaction.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Value])> + '_ {
        self.entries
            .as_slice()
            .iter()
            .map(|e| (e.name.as_str(), e.vals.as_slice()))
    }
}

/// Largest log buffer capacity [`Ctx::log_arg`] keeps between messages.
const LOG_BUF_KEEP: usize = 4096;

/// Everything a script run and a module handler may read or change for one message.
///
/// Built by the binary (or tm, for failure/branch routes) with [`Ctx::new`]; public fields are
/// the per-message state Kamailio keeps in `struct sip_msg`. The R-URI is kept as a rewrite
/// over the received one: [`Ctx::ruri`] is what `$ru` shows; `forward`/tm apply it to the edit
/// list when sending.
pub struct Ctx<'a> {
    /// The received (or, in failure_route, the transaction's) message.
    pub msg: &'a Message,
    /// Header edits (lumps) recorded so far.
    pub edits: EditList,
    /// The top-level block kind being run (never [`RouteKind::Route`]).
    pub route_kind: RouteKind,
    pub src: Source,
    /// The R-URI after `$ru`/`$rU`/`rewritehostport`/`strip`/`prefix`; `None` = unchanged.
    pub new_ruri: Option<String>,
    /// The R-URI `revert_uri` returns to, when it is not the message's (tm's saved R-URI).
    pub orig_ruri: Option<String>,
    /// `$du`.
    pub dst_uri: Option<String>,
    /// Message flags (`setflag`), bit n = flag n.
    pub flags: u64,
    /// Branch flags of branch 0 (`setbflag`).
    pub bflags: u64,
    /// `force_rport()` was called.
    pub force_rport: bool,
    /// `set_reply_no_connect()` was called (no effect on UDP).
    pub reply_no_connect: bool,
    /// Branches added by `append_branch`.
    pub branches: Vec<Branch>,
    pub avps: AvpStore,
    /// `$rc` / `$?`: the last function or route return code.
    pub rc: i32,
    /// `drop` was executed.
    pub drop: bool,
    /// The last internal error (for `sl_reply_error`).
    pub ser_error: Option<SerError>,
    /// Per-message module data, one value per type ([`Ctx::msg_data`]); a few types at
    /// most, so a list (no hasher to seed per message).
    msg_data: Vec<(TypeId, Box<dyn Any + Send>)>,
    /// This message's `log_prefix` text (empty when the cfg sets none).
    log_prefix: String,
    pub host: &'a mut dyn Host,
    pub(crate) rt: &'a mut Runtime,
    /// The compiled script, so modules can run route blocks ([`Ctx::run_route`]).
    script: Option<&'a crate::compile::Script>,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("route_kind", &self.route_kind)
            .field("src", &self.src)
            .field("new_ruri", &self.new_ruri)
            .field("dst_uri", &self.dst_uri)
            .field("flags", &self.flags)
            .field("rc", &self.rc)
            .field("drop", &self.drop)
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    pub fn new(
        rt: &'a mut Runtime,
        host: &'a mut dyn Host,
        msg: &'a Message,
        src: Source,
        route_kind: RouteKind,
    ) -> Ctx<'a> {
        Ctx {
            msg,
            edits: EditList::new(),
            route_kind,
            src,
            new_ruri: None,
            orig_ruri: None,
            dst_uri: None,
            flags: 0,
            bflags: 0,
            force_rport: false,
            reply_no_connect: false,
            branches: Vec::new(),
            avps: AvpStore::new(),
            rc: 1,
            drop: false,
            ser_error: None,
            msg_data: Vec::new(),
            log_prefix: String::new(),
            host,
            rt,
            script: None,
        }
    }

    /// Makes the script available to modules running in this context (tm runs
    /// onreply/failure/branch routes); the binary sets it on every context it builds.
    pub fn set_script(&mut self, script: &'a crate::compile::Script) {
        self.script = Some(script);
        // Kamailio expands log_prefix once, when the message arrives.
        if let Some(f) = &script.log_prefix {
            let mut prefix = String::new();
            crate::pvar::format_into(self, f, &mut prefix);
            self.log_prefix = prefix;
        }
    }

    /// The script set with [`Ctx::set_script`].
    pub fn script(&self) -> Option<&'a crate::compile::Script> {
        self.script
    }

    /// Runs a top-level route block in this context (`ctx.route_kind` becomes its kind).
    /// Without a script the run is an error outcome.
    pub fn run_route(&mut self, id: RouteId) -> crate::interp::Outcome {
        match self.script {
            Some(script) => script.run_route(id, self),
            None => {
                let message = format!("cannot run {}: no script in context", id.kind.keyword());
                crate::interp::Outcome::Error(crate::interp::RunError {
                    span: crate::span::Span::default(),
                    location: message.clone(),
                    message,
                })
            }
        }
    }

    /// A fresh context for another message (tm: the transaction's request in
    /// failure_route) sharing this context's runtime, host and script.
    pub fn child<'b>(&'b mut self, msg: &'b Message, src: Source, kind: RouteKind) -> Ctx<'b> {
        let script = self.script;
        let mut c = Ctx::new(&mut *self.rt, &mut *self.host, msg, src, kind);
        c.script = script;
        c
    }

    /// The shared region, if the binary provided one.
    pub fn shm(&self) -> Option<&'static sip_shm::Region> {
        self.rt.shm()
    }

    /// Per-message data a module keeps between its calls for this message (Kamailio modules
    /// keep such state in `struct sip_msg` fields), one value per type; gone with the Ctx.
    pub fn msg_data<T: Any + Send>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.msg_data
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, b)| b.downcast_ref::<T>())
    }

    /// The per-message value of type `T`, created with `T::default()` on first use.
    pub fn msg_data_mut<T: Any + Send + Default>(&mut self) -> &mut T {
        let id = TypeId::of::<T>();
        let at = match self.msg_data.iter().position(|(t, _)| *t == id) {
            Some(at) => at,
            None => {
                self.msg_data.push((id, Box::new(T::default())));
                self.msg_data.len() - 1
            }
        };
        let slot = &mut self.msg_data[at].1;
        if !slot.is::<T>() {
            // Keys are TypeIds, so the box always holds a T; rebuild defensively anyway.
            *slot = Box::new(T::default());
        }
        slot.downcast_mut::<T>()
            .unwrap_or_else(|| unreachable!("slot keyed by TypeId::of::<T>() holds a T"))
    }

    /// The current R-URI (`$ru`): the rewritten one, else the original, else the message's.
    /// Empty for replies.
    pub fn ruri(&self) -> Cow<'_, str> {
        if let Some(u) = self.new_ruri.as_deref().or(self.orig_ruri.as_deref()) {
            return Cow::Borrowed(u);
        }
        match self.msg.request_uri_bytes() {
            Some(b) => String::from_utf8_lossy(b),
            None => Cow::Borrowed(""),
        }
    }

    /// Whether the R-URI was rewritten by the script.
    pub fn ruri_changed(&self) -> bool {
        self.new_ruri.is_some()
    }

    /// Sets the R-URI (`$ru = ...`, `rewriteuri`).
    pub fn set_ruri(&mut self, uri: impl Into<String>) {
        self.new_ruri = Some(uri.into());
    }

    /// `revert_uri()`: back to the received (or tm-saved) R-URI.
    pub fn revert_ruri(&mut self) {
        self.new_ruri = None;
    }

    pub fn is_request(&self) -> bool {
        self.msg.is_request()
    }

    /// Module state stored by that module's init ([`ModInit::set_state`]).
    pub fn module_state<T: Any + Send>(&self) -> Option<&T> {
        self.rt.state::<T>()
    }

    pub fn module_state_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.rt.state_mut::<T>()
    }

    /// An API another module registered (`ctx.api::<dyn TmApi>()`).
    pub fn api<A: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<A>> {
        self.rt.apis.get::<A>()
    }

    /// Whether a transaction exists for this message (asks [`TmApi`]; no tm → false).
    pub fn has_transaction(&self) -> bool {
        self.api::<dyn TmApi>()
            .is_some_and(|tm| tm.has_transaction(self))
    }

    /// The config's core parameters.
    pub fn core(&self) -> &CoreParams {
        self.rt.core()
    }

    /// Whether a log line at `level` would print (`level <= debug`); check before formatting.
    pub fn log_enabled(&self, level: LogLevel) -> bool {
        level.value() as i64 <= self.rt.debug
    }

    /// Logs through the host if the level is enabled.
    pub fn log(&mut self, level: LogLevel, module: &str, text: &str) {
        if self.log_enabled(level) {
            self.host_log(level, module, text);
        }
    }

    /// To the host, with this message's `log_prefix` when the cfg sets one.
    fn host_log(&mut self, level: LogLevel, module: &str, text: &str) {
        if self.log_prefix.is_empty() {
            self.host.log(level, module, text);
        } else {
            self.host
                .log_prefixed(level, &self.log_prefix, module, text);
        }
    }

    /// Logs the text of `arg` (as [`Ctx::arg_str`] gives it) at `level`, expanding it only
    /// when the level is enabled. A format is expanded into a buffer the runtime keeps, so a
    /// per-request log line costs no allocation.
    pub fn log_arg(&mut self, level: LogLevel, module: &str, arg: &Arg) {
        if !self.log_enabled(level) {
            return;
        }
        let f = match arg {
            Arg::Format(f) | Arg::DynInt(f) if f.as_const().is_none() => f,
            other => {
                let text = self.arg_str(other);
                self.host_log(level, module, &text);
                return;
            }
        };
        let mut line = std::mem::take(&mut self.rt.log_buf);
        line.clear();
        crate::pvar::format_into(self, f, &mut line);
        self.host_log(level, module, &line);
        // An unusually long line is not kept for the process's lifetime.
        if line.capacity() <= LOG_BUF_KEEP {
            self.rt.log_buf = line;
        }
    }

    /// Expands a format string (PVs replaced by their values, null as `<null>`).
    pub fn format(&mut self, f: &Format) -> String {
        let mut out = String::new();
        crate::pvar::format_into(self, f, &mut out);
        out
    }

    /// Reads a PV.
    pub fn pv_get(&mut self, pv: &PvSpec) -> Value {
        crate::pvar::get(self, pv)
    }

    /// Writes a PV (`$null` deletes/resets where Kamailio does).
    pub fn pv_set(&mut self, pv: &PvSpec, v: Value) -> Result<(), String> {
        crate::pvar::set(self, pv, v)
    }

    /// The text of a `Str`, `Format`, `Int`/`DynInt` argument (formats expanded).
    pub fn arg_str<'s>(&mut self, arg: &'s Arg) -> Cow<'s, str> {
        match arg {
            Arg::Str(s) => Cow::Borrowed(s),
            Arg::Format(f) | Arg::DynInt(f) => match f.as_const() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(self.format(f)),
            },
            Arg::Int(i) => Cow::Owned(i.to_string()),
            Arg::Pv(p) => Cow::Owned(self.pv_get(p).to_str().into_owned()),
            Arg::Regex(r) => Cow::Borrowed(r.as_str()),
            Arg::Route(_) | Arg::Data(_) => Cow::Borrowed(""),
        }
    }

    /// The integer of an `Int`/`DynInt` (or numeric text) argument; `None` when the dynamic
    /// value is not a number.
    pub fn arg_int(&mut self, arg: &Arg) -> Option<i64> {
        match arg {
            Arg::Int(i) => Some(*i),
            Arg::Pv(p) => self.pv_get(p).as_exact_int(),
            other => self.arg_str(other).trim().parse().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AvpStore, Value};

    #[test]
    fn avp_stacks_keep_newest_first_through_inline_and_heap_storage() {
        let long = "a_name_longer_than_twenty_two_bytes";
        let mut avps = AvpStore::new();
        for name in ["ü:x", long] {
            avps.push(name, Value::Int(1));
            assert_eq!(avps.all(name), [Value::Int(1)]);
            avps.push(name, Value::Int(2));
            avps.push(name, Value::Int(3));
            assert_eq!(
                avps.all(name),
                [Value::Int(3), Value::Int(2), Value::Int(1)]
            );
            assert_eq!(avps.get(name, -1), Some(&Value::Int(1)));
            avps.remove_top(name);
            avps.remove_top(name);
            avps.remove_top(name);
            assert!(avps.all(name).is_empty());
            assert_eq!(avps.get(name, 0), None);
            avps.push(name, Value::str("again"));
            assert_eq!(avps.get(name, 0), Some(&Value::str("again")));
        }
        let names: Vec<&str> = avps.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ü:x", long]);
        avps.remove_all("ü:x");
        assert!(avps.all("ü:x").is_empty());
        assert_eq!(avps.all(long).len(), 1);
    }

    #[test]
    fn avp_names_keep_insertion_order_from_one_to_many_and_back() {
        let names = |avps: &AvpStore| avps.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        let mut avps = AvpStore::new();
        avps.push("a", Value::Int(1));
        avps.remove_all("a");
        assert!(names(&avps).is_empty());
        assert_eq!(avps, AvpStore::new());
        for name in ["a", "b", "c"] {
            avps.push(name, Value::str(name));
        }
        avps.push("b", Value::Int(2));
        avps.remove_all("a");
        assert_eq!(names(&avps), ["b", "c"]);
        assert_eq!(avps.all("b"), [Value::Int(2), Value::str("b")]);
        avps.push("a", Value::Int(3));
        assert_eq!(names(&avps), ["b", "c", "a"]);
        avps.clear();
        assert!(names(&avps).is_empty());
        avps.push("z", Value::Int(4));
        assert_eq!(avps.get("z", 0), Some(&Value::Int(4)));
    }

    #[test]
    fn avp_stores_compare_by_content_not_by_storage() {
        let mut one = AvpStore::new();
        one.push("a", Value::Int(1));
        let mut emptied = AvpStore::new();
        emptied.push("a", Value::Int(9));
        emptied.push("a", Value::Int(1));
        assert_ne!(one, emptied);
        // [1] in a Vec after a removal equals [1] stored inline.
        let mut popped = AvpStore::new();
        popped.push("a", Value::Int(1));
        popped.push("a", Value::Int(9));
        popped.remove_top("a");
        assert_eq!(one, popped);
    }
}
