//! sipload: black-box SIP load generator and peers over UDP.
//!
//! Will hold: a UAC call generator, a UAS/gateway emulator, race scenarios and the
//! worker-count benchmark driver (`sipload bench`). It uses `sip-msg`, never the proxy's
//! internals.
#![forbid(unsafe_code)]
