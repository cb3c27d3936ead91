//! Cell-level tests driven by a virtual clock.

mod support;

mod cancel;
mod failure;
mod relay;
mod timers;
