//! `ctl`: Kamailio's binrpc control socket. siplab's ctl process serves JSON-RPC itself, so
//! this module only accepts the parameters a stock cfg sets; it has no script functions.

use sip_script::abi::{ModuleExports, ParamExport, ParamKind};

static PARAMS: [ParamExport; 7] = [
    ParamExport {
        name: "binrpc",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "mode",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "user",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "group",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "fifo",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "autoconversion",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "binrpc_max_body_size",
        kind: ParamKind::Int,
        aliases: &[],
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "ctl",
    params: &PARAMS,
    ..ModuleExports::EMPTY
};
