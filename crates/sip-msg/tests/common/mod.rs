//! Shared helpers for the integration tests: locating and reading the RFC 4475 corpus.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$SIPLAB_SHARED/corpus/rfc4475`, else `shared/` beside the repository checkout.
pub fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("SIPLAB_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("corpus/rfc4475")
}

/// Every `.dat` file of the corpus: (file name, bytes), sorted by name.
pub fn corpus_messages() -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 40,
        "corpus at {} looks incomplete",
        dir.display()
    );
    files
}
