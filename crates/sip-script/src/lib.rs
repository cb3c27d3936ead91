//! Kamailio-syntax routing scripts.
//!
//! Front end: the `#!` preprocessor, lexer, parser, AST and diagnostics. Later: the compiler
//! that binds calls to module exports and runs fixups before fork, the per-message
//! interpreter with pseudo-variables, and the module ABI (static export tables, route kinds).
#![forbid(unsafe_code)]

pub mod diag;
pub mod lexer;
pub mod loader;
pub mod preproc;
pub mod pv;
pub mod span;
