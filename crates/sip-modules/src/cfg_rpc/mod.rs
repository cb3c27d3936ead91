//! `cfg_rpc`: Kamailio's RPC access to cfg-framework variables. It has no script functions
//! and no parameters; siplab accepts the `loadmodule` so stock configs load.

use sip_script::abi::ModuleExports;

pub static MODULE: ModuleExports = ModuleExports {
    name: "cfg_rpc",
    ..ModuleExports::EMPTY
};
