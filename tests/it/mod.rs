//! Harness pieces (`harness`, `sipp`, `udp`) and the test groups that use them.

pub mod harness;
pub mod sipp;
pub mod udp;

mod cfg_check;
mod corpus;
mod garbage;
mod process;
mod tm;
