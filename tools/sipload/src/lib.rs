//! sipload: black-box SIP load generator and peers over UDP.
//!
//! - [`Gateway`]: a UAS/gateway emulator on a background thread (answer modes, delays, drop
//!   rate, CANCEL/ACK/BYE/OPTIONS handling), recording every datagram it receives.
//! - [`Uac`]: a synchronous client peer for scripted scenarios (INVITE, retransmission
//!   copies, CANCEL with Reason, ACKs, BYE), recording every reply.
//! - [`load`]: the call generator behind `sipload uac` (rate control, retransmissions,
//!   latency histogram).
//!
//! It uses `sip-msg` for parsing and building, never the proxy's internals.
#![forbid(unsafe_code)]

pub mod datagram;
pub mod dialog;
pub mod error;
pub mod gateway;
pub mod load;
pub mod uac;

pub use datagram::Datagram;
pub use error::SiploadError;
pub use gateway::{Gateway, GatewayConfig, Mode};
pub use load::{LatencyHistogram, LoadConfig, LoadReport, run_load};
pub use uac::{Call, Uac};
