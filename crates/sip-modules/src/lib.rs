//! siplab's built-in modules, one folder per Kamailio module, each a static
//! [`ModuleExports`] table in the module ABI of `sip-script`.
//!
//! Module logic is pure: every effect (send, log, sleep, randomness, DNS) goes through the
//! [`sip_script::abi::Host`] of the running script. The wire-facing pieces that do not need a
//! script (stateless reply forwarding, error replies for unparsable requests) are plain
//! functions in [`core`] for the binary to call.
//!
//! [`all_modules`] is the registry the runtime compiles against; [`LOADABLE`] are the names
//! `loadmodule` accepts (the always-loaded pseudo-module `core` is not among them).
#![forbid(unsafe_code)]

use sip_script::abi::ModuleExports;

pub mod cfg_rpc;
pub mod cfgutils;
pub mod core;
pub mod corex;
pub mod ctl;
pub mod jsonrpcs;
pub mod kex;
pub mod maxfwd;
pub mod pv;
pub mod rr;
pub mod sanity;
pub mod siputils;
pub mod sl;
pub mod textops;
pub mod tm;
pub mod tmx;
pub mod xlog;

mod util;

#[cfg(test)]
pub(crate) mod testutil;

static ALL: [&ModuleExports; 17] = [
    &core::MODULE,
    &sl::MODULE,
    &textops::MODULE,
    &siputils::MODULE,
    &maxfwd::MODULE,
    &pv::MODULE,
    &xlog::MODULE,
    &cfgutils::MODULE,
    &corex::MODULE,
    &rr::MODULE,
    &sanity::MODULE,
    &ctl::MODULE,
    &jsonrpcs::MODULE,
    &kex::MODULE,
    &cfg_rpc::MODULE,
    &tm::MODULE,
    &tmx::MODULE,
];

/// Every module this crate provides, `core` first.
pub fn all_modules() -> &'static [&'static ModuleExports] {
    &ALL
}

/// The module names `loadmodule "NAME.so"` accepts from this crate.
pub const LOADABLE: &[&str] = &[
    "sl", "textops", "siputils", "maxfwd", "pv", "xlog", "cfgutils", "corex", "rr", "sanity",
    "ctl", "jsonrpcs", "kex", "cfg_rpc", "tm", "tmx",
];

/// The export table of a module by its `loadmodule` name (`core` included).
pub fn module(name: &str) -> Option<&'static ModuleExports> {
    ALL.iter().copied().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_loadable_ones_exist() {
        for name in LOADABLE {
            assert!(module(name).is_some(), "{name}");
        }
        let mut names: Vec<&str> = all_modules().iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all_modules().len());
        assert_eq!(all_modules().first().map(|m| m.name), Some("core"));
    }

    #[test]
    fn no_function_is_exported_twice_with_the_same_arity() {
        let mut seen = Vec::new();
        for m in all_modules() {
            for f in m.functions {
                let key = (f.name, f.args.len());
                assert!(
                    !seen.contains(&key),
                    "{}/{} in {}",
                    f.name,
                    f.args.len(),
                    m.name
                );
                seen.push(key);
            }
        }
    }
}
