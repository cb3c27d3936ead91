//! tmx — tm extensions, as Kamailio splits them: the `$T_*` pseudo-variables live here, not in
//! tm, so a cfg that reads `$T_reply_reason` without `loadmodule "tmx.so"` fails at load in
//! siplab as it does in Kamailio. The values come from tm's per-message data.
//! (`$T_reply_code` is also a built-in of the script runtime, answering through `TmApi`.)

use sip_script::abi::{ModuleExports, PvExport};

use crate::tm;

static PVS: [PvExport; 3] = [
    PvExport {
        name: "T_reply_code",
        get: tm::pv_reply_code,
        set: None,
    },
    PvExport {
        name: "T_reply_reason",
        get: tm::pv_reply_reason,
        set: None,
    },
    PvExport {
        name: "T_branch_idx",
        get: tm::pv_branch_idx,
        set: None,
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "tmx",
    pvs: &PVS,
    ..ModuleExports::EMPTY
};

#[cfg(test)]
mod tests {
    use sip_script::{compile, load_str};

    const CFG: &str = "loadmodule \"tm.so\"\nLOADS\nrequest_route {\n    xlog(\"L_INFO\", \"$T_reply_reason $T_branch_idx\\n\");\n}\n";

    fn compiles(loads: &str) -> bool {
        let text = CFG.replace("LOADS", &format!("loadmodule \"xlog.so\"\n{loads}"));
        let cfg = load_str("t.cfg", &text, &[]).expect("parses");
        compile(&cfg, crate::all_modules()).is_ok()
    }

    #[test]
    fn t_pseudo_variables_need_tmx_as_in_kamailio() {
        assert!(!compiles(""), "$T_reply_reason must be unknown without tmx");
        assert!(compiles("loadmodule \"tmx.so\""));
    }
}
