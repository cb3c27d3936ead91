//! Walks `tests/data/cfg/{broken,good}`: every broken cfg must fail with the diagnostic named
//! in its first line (`# expect: <line>:<col>: <message substring>`); every good cfg must load
//! and pass the module check against the modules siplab plans to have.

use sip_script::{FsLoader, check_modules, load};

/// The module names later issues decide on; used here as data only.
const SIPLAB_MODULES: &[&str] = &[
    "tm",
    "tmx",
    "sl",
    "rr",
    "maxfwd",
    "textops",
    "textopsx",
    "siputils",
    "pv",
    "xlog",
    "cfgutils",
    "corex",
    "kex",
    "sanity",
    "dispatcher",
    "ctl",
    "jsonrpcs",
    "counters",
    "cfg_rpc",
    "acc",
    "usrloc",
    "registrar",
];

#[path = "common/cfg_corpus.rs"]
mod cfg_corpus;
use cfg_corpus::{cfg_files, corpus_dir, expectation};

#[test]
fn broken_configs_fail_with_expected_first_diagnostic() {
    let files = cfg_files("broken");
    assert!(
        files.len() >= 20,
        "broken corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let (line, col, msg) = expectation(path);
        let first = match load(path, &[], &FsLoader) {
            Err(e) => {
                let d = e.first().expect("an error diagnostic").clone();
                (d, e.render())
            }
            Ok(cfg) => match check_modules(&cfg, SIPLAB_MODULES).into_iter().next() {
                Some(d) => {
                    let text = cfg.render(std::slice::from_ref(&d));
                    (d, text)
                }
                None => {
                    failures.push(format!("{}: loaded without error", path.display()));
                    continue;
                }
            },
        };
        let (d, rendered) = first;
        if d.span.line != line || d.span.col != col || !d.message.contains(&msg) {
            failures.push(format!(
                "{}: expected {line}:{col}: {msg}\n  got {}:{}: {}",
                path.display(),
                d.span.line,
                d.span.col,
                d.message
            ));
        }
        // The rendering names the file and shows a caret.
        assert!(rendered.contains(&format!(":{}:{}: ", d.span.line, d.span.col)));
        assert!(rendered.contains('^'), "{rendered}");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn good_configs_load_and_use_known_modules() {
    let files = cfg_files("good");
    assert!(!files.is_empty());
    for path in &files {
        let cfg = load(path, &[], &FsLoader)
            .unwrap_or_else(|e| panic!("{} failed:\n{}", path.display(), e.render()));
        let errs = check_modules(&cfg, SIPLAB_MODULES);
        assert!(
            errs.is_empty(),
            "{}:\n{}",
            path.display(),
            cfg.render(&errs)
        );
        assert!(
            cfg.request_route().is_some(),
            "{} has a request_route",
            path.display()
        );
    }
}

#[test]
fn stock_cfg_parses_with_every_feature_enabled() {
    let path = corpus_dir("good").join("kamailio-stock-udp.cfg");
    let text = std::fs::read_to_string(&path).expect("readable");
    let mut features: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#!ifdef "))
        .map(|s| s.trim().to_string())
        .filter(|s| s.starts_with("WITH_"))
        .collect();
    features.sort();
    features.dedup();
    assert!(features.len() >= 15, "{features:?}");
    let defines: Vec<(String, Option<String>)> = features.into_iter().map(|f| (f, None)).collect();
    let cfg = load(&path, &defines, &FsLoader)
        .unwrap_or_else(|e| panic!("all WITH_* on:\n{}", e.render()));
    assert_eq!(cfg.core.debug, 3, "WITH_DEBUG selects DBGLEVEL 3");
    assert!(cfg.modules.iter().any(|m| m.name == "auth_db"));
    assert!(
        cfg.cfg_vars
            .iter()
            .any(|v| v.group == "pstn" && v.name == "gw_ip")
    );
    assert!(
        cfg.route(sip_script::RouteKind::Event, Some("xhttp:request"))
            .is_some()
    );
    // Without the features the default build has the stock module set only.
    let plain = load(&path, &[], &FsLoader).expect("loads");
    assert_eq!(plain.core.debug, 2);
    assert_eq!(plain.core.children, 8);
    assert_eq!(plain.core.listen.len(), 1);
    assert!(plain.core.disable_tcp);
    let log_extra = plain
        .modparams
        .iter()
        .find(|m| m.module == "acc" && m.name == "log_extra")
        .expect("acc log_extra");
    assert_eq!(
        log_extra.value,
        sip_script::ModParamValue::Str(
            "src_user=$fU;src_domain=$fd;src_ip=$si;dst_ouser=$tU;dst_user=$rU;dst_domain=$rd"
                .into()
        ),
        "adjacent strings in a modparam value are joined"
    );
}

#[test]
fn language_tour_details() {
    let path = corpus_dir("good").join("language-tour.cfg");
    let cfg = load(&path, &[], &FsLoader).expect("loads");
    assert_eq!(cfg.core.children, 2);
    assert_eq!(cfg.core.dialect, sip_script::Dialect::Opensips);
    assert_eq!(
        cfg.core.listen[0].host,
        sip_script::Host::Ip("127.0.0.1".parse().unwrap()),
        "the substdef define was re-lexed as an IPv4 literal"
    );
    assert!(
        cfg.route(sip_script::RouteKind::Route, Some("RELAY"))
            .is_some()
    );
    assert_eq!(
        cfg.warnings.len(),
        1,
        "single-quoted \\r\\n lint from the include"
    );
    assert!(
        cfg.sources
            .name(cfg.warnings[0].span.file)
            .ends_with("include/relay.inc")
    );
}
