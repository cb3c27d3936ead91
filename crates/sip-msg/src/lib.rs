//! SIP messages, parsed the way Kamailio parses them.
//!
//! A datagram is indexed once (start line and header boundaries); a header is decoded
//! into a typed view only when asked. Values are byte ranges into the received buffer.
//! Changes are an edit list applied when printing, so untouched bytes go out exactly as
//! they came in. Bad input is an error value carrying the SIP status it deserves.
#![forbid(unsafe_code)]
