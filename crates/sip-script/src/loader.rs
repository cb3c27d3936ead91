//! Where cfg text comes from: the file system in production, memory in tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Reads cfg files (main file and includes) and environment variables for `#!defenv`.
pub trait SourceLoader {
    /// The file's text, or `None` when it does not exist or cannot be read.
    fn read(&self, path: &Path) -> Option<String>;
    /// An environment variable, for `#!defenv`.
    fn env_var(&self, name: &str) -> Option<String>;
}

/// Reads from the file system and the process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl SourceLoader for FsLoader {
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// An in-memory file set and environment, for tests.
#[derive(Clone, Debug, Default)]
pub struct MemLoader {
    pub files: HashMap<PathBuf, String>,
    pub env: HashMap<String, String>,
}

impl MemLoader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.files.insert(path.into(), text.into());
        self
    }

    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

impl SourceLoader for MemLoader {
    fn read(&self, path: &Path) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}
