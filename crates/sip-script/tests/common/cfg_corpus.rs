//! The cfg corpus under `tests/data/cfg/<sub>/`: each file's first line says which
//! diagnostic it must give, as `# expect: LINE:COL: message`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn corpus_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/cfg")
        .join(sub)
}

/// The `.cfg` files of a corpus folder, sorted.
pub fn cfg_files(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(sub))
        .expect("corpus folder exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
        .collect();
    files.sort();
    files
}

/// Parses `# expect: 12:5: message`.
pub fn expectation(path: &Path) -> (u32, u32, String) {
    let text = std::fs::read_to_string(path).expect("readable");
    let first = text.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("# expect: ").unwrap_or_else(|| {
        panic!(
            "{}: first line must be `# expect: L:C: msg`",
            path.display()
        )
    });
    let mut parts = rest.splitn(3, ':');
    let line = parts.next().and_then(|s| s.trim().parse().ok());
    let col = parts.next().and_then(|s| s.trim().parse().ok());
    let msg = parts.next().map(|s| s.trim().to_string());
    match (line, col, msg) {
        (Some(l), Some(c), Some(m)) => (l, c, m),
        _ => panic!("{}: malformed expect line `{first}`", path.display()),
    }
}
