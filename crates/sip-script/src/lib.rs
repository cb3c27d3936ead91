//! Kamailio-syntax routing scripts.
//!
//! Will hold: the `#!` preprocessor, lexer, parser and AST, the compiler that binds calls
//! to module exports and runs fixups before fork, the per-message interpreter with
//! pseudo-variables, and the module ABI (static export tables, route kinds).
#![forbid(unsafe_code)]
