//! `jsonrpcs`: Kamailio's JSON-RPC transports. siplab's ctl process serves JSON-RPC on its
//! unix socket regardless; this module accepts the stock cfg's parameters and has no script
//! functions (`jsonrpc_dispatch` needs xhttp, which siplab lacks).

use sip_script::abi::{ModuleExports, ParamExport, ParamKind};

static PARAMS: [ParamExport; 5] = [
    ParamExport {
        name: "pretty_format",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "transport",
        kind: ParamKind::Int,
        aliases: &[],
    },
    ParamExport {
        name: "fifo_name",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "dgram_socket",
        kind: ParamKind::Str,
        aliases: &[],
    },
    ParamExport {
        name: "tcp_socket",
        kind: ParamKind::Str,
        aliases: &[],
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "jsonrpcs",
    params: &PARAMS,
    ..ModuleExports::EMPTY
};
