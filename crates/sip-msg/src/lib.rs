//! SIP messages, parsed the way Kamailio parses them.
//!
//! A datagram is indexed once (start line and header boundaries); a header is decoded
//! into a typed view only when asked. Values are byte ranges into the received buffer.
//! Changes are an edit list applied when printing, so untouched bytes go out exactly as
//! they came in. Bad input is an error value carrying the SIP status it deserves.
//!
//! # Broken messages still get an answer
//!
//! [`Message::parse`] fails on a broken start line (bad version → 505, stray whitespace,
//! `<>` around the Request-URI, ... → 400), on a header line without a colon, and on bad
//! framing (Content-Length negative, non-numeric, conflicting or larger than the datagram
//! → 400). In every one of those cases the [`ParseError`] still carries the *partial*
//! message ([`ParseError::partial`]): all well-formed header lines indexed, and a
//! best-effort start line. The proxy hands that to [`build::build_reply`] to send the
//! error status, which needs only Via/From/To/Call-ID/CSeq. Problems inside a header value
//! (an unterminated quote in To, a CSeq number over 2^32-1, a mismatched CSeq method,
//! missing or duplicated required headers) are found lazily by the typed views and by
//! [`Message::validate`], the checks a proxy runs before routing.
//!
//! # Framing
//!
//! Messages are datagrams: without Content-Length the body is the rest of the datagram;
//! bytes after a Content-Length body are ignored (RFC 4475 dblreq).
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod build;
mod edit;
mod error;
mod header;
mod message;
mod scan;
mod uri;
mod views;

pub use edit::{EditList, InsertAt};
pub use error::SipError;
pub use header::HeaderName;
pub use message::{Header, Message, Method, ParseError, Span, StartLine};
pub use scan::{Param, ParamIter, Params};
pub use uri::{Host, Scheme, Uri};
pub use views::{CSeq, Contact, ContentType, NameAddr, Reason, Via};
