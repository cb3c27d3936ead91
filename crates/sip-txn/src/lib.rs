//! The sans-IO transaction core of siplab's tm module.
//!
//! Will hold: `TxKey` (RFC 3261 branch / RFC 2543 tuple) and matching of requests, ACKs,
//! CANCELs and replies; client and server transaction state machines with Kamailio's
//! timer schedule; the proxy cell (one server side, up to 12 branches) and best-reply
//! choice. Time is a value passed in; timers are data. No sockets, clocks or threads.
#![forbid(unsafe_code)]
