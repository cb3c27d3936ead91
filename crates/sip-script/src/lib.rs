//! Kamailio-syntax routing scripts.
//!
//! Front end: the `#!` preprocessor, lexer, parser, AST and diagnostics ([`load`] a file
//! through a [`SourceLoader`], [`load_str`] for tests).
//!
//! Runtime: the module ABI ([`abi`]: static export tables, typed arguments, route kinds, the
//! per-message [`Ctx`] and the `Host` trait for every effect), the compiler that binds calls
//! to module exports and runs fixups before fork ([`compile`]), the interpreter, the
//! pseudo-variables ([`pvar`]) and a recording [`testhost::TestHost`]. The effect trait is
//! [`abi::Host`] (not re-exported here: `Host` at the crate root is the AST's host name/IP).
#![forbid(unsafe_code)]

pub mod abi;
pub mod ast;
pub mod check;
pub mod compile;
pub mod core_params;
pub mod diag;
pub mod interp;
pub mod lexer;
pub mod loader;
pub mod parser;
pub mod preproc;
pub mod pv;
pub mod pvar;
pub mod runtime;
pub mod span;
pub mod testhost;
pub mod transform;
pub mod typeck;
pub mod value;

pub use abi::{
    ApiRegistry, Arg, ArgKind, AvpStore, Branch, Ctx, FixupCtx, FixupError, FunctionExport,
    LocalAddr, LocalSocket, LogLevel, Millis, ModChildInit, ModInit, ModuleExports, ParamExport,
    ParamKind, ParamSetting, PvExport, RouteId, RouteKinds, RpcError, RpcExport, SendError,
    SerError, Source, Stat, TmApi,
};
pub use ast::*;
pub use check::check_modules;
pub use compile::{LoadedModule, Script, compile};
pub use core_params::{CoreParams, Dialect, Listen, WorkerExit};
pub use diag::{Diagnostic, Severity};
pub use interp::{InitError, Outcome, RunError};
pub use loader::{FsLoader, MemLoader, SourceLoader};
pub use preproc::CompatMode;
pub use pv::{FormatPart, PvError, PvIndex, PvRef, Transform, parse_format, parse_pv};
pub use pvar::{Format, PvSpec};
pub use runtime::Runtime;
pub use span::{FileId, SourceMap, Span};
pub use value::Value;

use std::path::Path;

/// A loaded, syntactically valid config.
#[derive(Clone, Debug)]
pub struct Config {
    pub core: CoreParams,
    /// Every global `name = value` as written, including the ones siplab ignores.
    pub globals: Vec<GlobalParam>,
    pub cfg_vars: Vec<CfgVar>,
    pub modules: Vec<LoadModule>,
    pub modparams: Vec<ModParam>,
    pub routes: Vec<RouteBlock>,
    /// Lints (`siplab -c` prints them).
    pub warnings: Vec<Diagnostic>,
    pub sources: SourceMap,
    /// The `#!KAMAILIO` / `#!OPENSER` / `#!SER` marker, if any.
    pub compat: Option<CompatMode>,
}

impl Config {
    /// The block of that kind and name (`None` for unnamed blocks).
    pub fn route(&self, kind: RouteKind, name: Option<&str>) -> Option<&RouteBlock> {
        self.routes
            .iter()
            .find(|r| r.kind == kind && r.name.as_deref() == name)
    }

    pub fn request_route(&self) -> Option<&RouteBlock> {
        self.route(RouteKind::Request, None)
    }

    /// Renders diagnostics against this config's sources.
    pub fn render(&self, diags: &[Diagnostic]) -> String {
        diag::render_all(diags, &self.sources)
    }
}

/// Why a config did not load: the diagnostics (errors first, in source order, then warnings)
/// and the sources needed to render them.
#[derive(Clone, Debug)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

impl LoadError {
    pub fn render(&self) -> String {
        diag::render_all(&self.diagnostics, &self.sources)
    }

    /// The first error.
    pub fn first(&self) -> Option<&Diagnostic> {
        self.diagnostics.iter().find(|d| d.is_error())
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for LoadError {}

/// Loads a config file: preprocess (with `-A` defines), parse, check route references.
pub fn load(
    path: &Path,
    defines: &[(String, Option<String>)],
    loader: &dyn SourceLoader,
) -> Result<Config, LoadError> {
    let pre = preproc::Preprocessor::new(loader, defines).run(path);
    finish(pre)
}

/// Loads config text held in memory (tests, `siplab -c -` style use). Includes are resolved
/// relative to `name` but read from an empty loader, so only `import_file` may appear.
pub fn load_str(
    name: &str,
    text: &str,
    defines: &[(String, Option<String>)],
) -> Result<Config, LoadError> {
    let loader = MemLoader::new();
    let pre = preproc::Preprocessor::new(&loader, defines).run_text(Path::new(name), text.into());
    finish(pre)
}

fn finish(
    pre: Result<preproc::Preprocessed, (Diagnostic, SourceMap)>,
) -> Result<Config, LoadError> {
    let pre = match pre {
        Ok(p) => p,
        Err((d, sources)) => {
            return Err(LoadError {
                diagnostics: vec![d],
                sources,
            });
        }
    };
    let mut parsed = parser::Parser::new(pre.tokens).parse();
    if parsed.errors.is_empty() {
        parsed.errors = check::check_route_calls(&parsed.routes);
    }
    if !parsed.errors.is_empty() {
        let mut diagnostics = parsed.errors;
        diagnostics.extend(pre.warnings);
        return Err(LoadError {
            diagnostics,
            sources: pre.sources,
        });
    }
    let mut warnings = pre.warnings;
    warnings.extend(check::lint_dispatcher_failover(
        &parsed.routes,
        &parsed.modparams,
    ));
    Ok(Config {
        core: parsed.core,
        globals: parsed.globals,
        cfg_vars: parsed.cfg_vars,
        modules: parsed.modules,
        modparams: parsed.modparams,
        routes: parsed.routes,
        warnings,
        sources: pre.sources,
        compat: pre.compat,
    })
}
