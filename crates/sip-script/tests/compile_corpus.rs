//! Compile-stage broken configs (`tests/data/cfg/broken-compile/*.cfg`): each loads, then
//! fails to compile against the test module table with the diagnostic named in its first line
//! (`# expect: <line>:<col>: <message substring>`); the rendering shows file:line:col, the
//! source line and a caret.

mod common;

use std::path::PathBuf;

use sip_script::{FsLoader, compile, load};

#[path = "common/cfg_corpus.rs"]
mod cfg_corpus;
use cfg_corpus::expectation;

fn corpus() -> Vec<PathBuf> {
    cfg_corpus::cfg_files("broken-compile")
}

#[test]
fn compile_stage_configs_fail_with_expected_first_diagnostic() {
    let files = corpus();
    assert!(files.len() >= 15, "only {} files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let (line, col, msg) = expectation(path);
        let cfg = load(path, &[], &FsLoader)
            .unwrap_or_else(|e| panic!("{} must load:\n{}", path.display(), e.render()));
        let errs = match compile(&cfg, common::MODULES) {
            Ok(_) => {
                failures.push(format!("{}: compiled without error", path.display()));
                continue;
            }
            Err(e) => e,
        };
        let d = &errs[0];
        if d.span.line != line || d.span.col != col || !d.message.contains(&msg) {
            failures.push(format!(
                "{}: expected {line}:{col}: {msg}\n  got {}:{}: {}",
                path.display(),
                d.span.line,
                d.span.col,
                d.message
            ));
        }
        let rendered = cfg.render(std::slice::from_ref(d));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            rendered.contains(&format!("{name}:{}:{}: ", d.span.line, d.span.col)),
            "{rendered}"
        );
        assert!(
            rendered
                .lines()
                .nth(2)
                .is_some_and(|l| l.trim_end().ends_with('^')),
            "{rendered}"
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn good_configs_compile_against_a_table_with_their_functions() {
    // The lab cfg needs the real modules; here: a cfg using every test-table module compiles.
    let s = common::script(
        r#"modparam("test", "level", 2)
        modparam("te.t", "name", "regex-matched")
        request_route {
            if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
            if (is_method("INVITE") && !has_totag()) record_route();
            xlog("L_DBG", "ru=$ru\n");
            forward();
        }
        failure_route[F] { append_hf("X-F: 1\r\n"); forward(); }"#,
    );
    assert!(s.is_loaded("core"), "core is always loaded");
    let test = s
        .modules()
        .iter()
        .find(|m| m.exports.name == "test")
        .unwrap();
    assert_eq!(
        test.params.len(),
        2,
        "`te.t` matched module test as a regex"
    );
}
