//! siplab's built-in modules, one folder per Kamailio module (sl, tm, tmx, rr, maxfwd,
//! textops, siputils, pv, xlog, cfgutils, corex, sanity, dispatcher), each a static
//! export table in the module ABI of `sip-script`.
#![forbid(unsafe_code)]
