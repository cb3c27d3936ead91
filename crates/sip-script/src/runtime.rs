//! Per-process script state: `$var` values (they persist across the messages one worker
//! handles [E20]), module states, the API registry, the log level and the cache of regexes
//! built from dynamic patterns.

use std::any::{Any, TypeId};
use std::collections::HashMap;

use crate::abi::{ApiRegistry, TypeIdMap};
use crate::core_params::CoreParams;
use crate::value::Value;

/// Upper bound of the dynamic-regex cache; a script building patterns from message data must
/// not grow memory without bound.
const REGEX_CACHE_MAX: usize = 256;

/// One process's runtime. Created before fork from the compiled script's config
/// (`Runtime::new`); each forked process keeps its own copy.
pub struct Runtime {
    vars: Vec<Value>,
    states: TypeIdMap<Box<dyn Any + Send>>,
    pub(crate) apis: ApiRegistry,
    /// `debug` (log level); `setdebug`-like functions may change it.
    pub debug: i64,
    core: CoreParams,
    regex_cache: HashMap<String, regex::Regex>,
    /// Most `while` body runs before the loop is ended with a "runaway while" error log
    /// (Kamailio's `max_while_loops`); 0: no limit. The script goes on after the loop.
    pub while_limit: u32,
    /// Deepest block nesting, the top-level block being level 1 (Kamailio's
    /// `ROUTE_MAX_REC_LEV`): a `route()` that would go deeper is not run, logs an error and
    /// gives -1, and the script goes on.
    pub route_depth_limit: u32,
    /// The shared-memory region the binary mapped before fork (tm's table lives in it).
    shm: Option<&'static sip_shm::Region>,
    /// Warnings module `init`s gave ([`crate::abi::ModInit::warn`]).
    pub(crate) init_warnings: Vec<String>,
    /// The buffer log lines are expanded into ([`crate::abi::Ctx::log_arg`]), kept between
    /// messages so a per-request `xlog` line allocates nothing.
    pub(crate) log_buf: String,
    /// The host's local addresses with their IPs parsed, for `myself` (a field, not a module
    /// state: checked on every request).
    pub(crate) local_addrs: Option<crate::interp::LocalAddrCache>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("vars", &self.vars)
            .field("states", &self.states.len())
            .field("apis", &self.apis)
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

/// Kamailio's route nesting limit (`ROUTE_MAX_REC_LEV`, src/core/action.c).
pub const ROUTE_DEPTH_LIMIT: u32 = 256;

impl Runtime {
    pub fn new(core: &CoreParams) -> Runtime {
        Runtime {
            vars: Vec::new(),
            states: TypeIdMap::default(),
            apis: ApiRegistry::default(),
            debug: core.debug,
            core: core.clone(),
            regex_cache: HashMap::new(),
            while_limit: core.max_while_loops,
            route_depth_limit: ROUTE_DEPTH_LIMIT,
            shm: None,
            init_warnings: Vec::new(),
            log_buf: String::new(),
            local_addrs: None,
        }
    }

    /// Hands the shared region to modules; the binary calls it before `init_modules` so tm
    /// can create its table there (tests pass a leaked `Region::heap`).
    pub fn set_shm(&mut self, region: &'static sip_shm::Region) {
        self.shm = Some(region);
    }

    /// The shared region, when the binary (or a test) provided one.
    pub fn shm(&self) -> Option<&'static sip_shm::Region> {
        self.shm
    }

    pub fn core(&self) -> &CoreParams {
        &self.core
    }

    /// What module `init`s warned about (`"<module>: <text>"`), in load order.
    pub fn init_warnings(&self) -> &[String] {
        &self.init_warnings
    }

    /// A `$var` slot's value; unset variables are int 0, not null [E23].
    pub(crate) fn var(&self, slot: usize) -> Value {
        self.vars.get(slot).cloned().unwrap_or(Value::Int(0))
    }

    pub(crate) fn set_var(&mut self, slot: usize, v: Value) {
        if slot >= self.vars.len() {
            self.vars.resize(slot + 1, Value::Int(0));
        }
        self.vars[slot] = v;
    }

    pub fn set_state<T: Any + Send>(&mut self, state: T) {
        self.states.insert(TypeId::of::<T>(), Box::new(state));
    }

    pub fn state<T: Any + Send>(&self) -> Option<&T> {
        self.states
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
    }

    pub fn state_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.states
            .get_mut(&TypeId::of::<T>())
            .and_then(|b| b.downcast_mut::<T>())
    }

    /// An API registered by a module (`rt.api::<dyn TmApi>()`), e.g. for the binary.
    pub fn api<A: ?Sized + Send + Sync + 'static>(&self) -> Option<std::sync::Arc<A>> {
        self.apis.get::<A>()
    }

    /// Registers an API directly (tests, or the binary wiring a host-side service).
    pub fn register_api<A: ?Sized + Send + Sync + 'static>(&mut self, api: std::sync::Arc<A>) {
        self.apis.register(api);
    }

    /// A regex for a pattern only known at run time, compiled once per process.
    pub(crate) fn dynamic_regex(&mut self, pattern: &str) -> Result<regex::Regex, regex::Error> {
        if let Some(r) = self.regex_cache.get(pattern) {
            return Ok(r.clone());
        }
        let r = crate::compile::build_regex(pattern)?;
        if self.regex_cache.len() >= REGEX_CACHE_MAX {
            self.regex_cache.clear();
        }
        self.regex_cache.insert(pattern.to_string(), r.clone());
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_states_are_kept_per_type() {
        let mut states: TypeIdMap<Box<dyn Any + Send>> = TypeIdMap::default();
        states.insert(TypeId::of::<u8>(), Box::new(1u8));
        states.insert(TypeId::of::<u16>(), Box::new(2u16));
        states.insert(TypeId::of::<String>(), Box::new(String::from("s")));
        states.insert(TypeId::of::<Vec<u8>>(), Box::new(vec![4u8]));
        let get = |id| states.get(&id).map(|b| (**b).type_id() == id);
        for id in [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<String>(),
            TypeId::of::<Vec<u8>>(),
        ] {
            assert_eq!(get(id), Some(true));
        }
        assert_eq!(get(TypeId::of::<u32>()), None);
        assert_eq!(
            states
                .get(&TypeId::of::<u16>())
                .and_then(|b| b.downcast_ref::<u16>()),
            Some(&2)
        );
    }
}
