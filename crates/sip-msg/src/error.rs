//! The one error type of this crate: what is wrong (static text) and the SIP status it deserves.

use std::fmt;

/// A problem found in a message, with the status code a proxy answers it with
/// (400 Bad Request, 505 Version Not Supported, 416 Unsupported URI Scheme, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipError {
    /// Short static description naming the broken part.
    pub what: &'static str,
    /// The SIP status code a reply to this problem carries.
    pub status: u16,
}

impl SipError {
    /// 416: the Request-URI scheme cannot be routed (the proxy decides; the parser keeps
    /// unknown schemes opaque).
    pub const UNSUPPORTED_URI_SCHEME: SipError =
        SipError::with_status("unsupported URI scheme", 416);
    /// 420: a Proxy-Require option tag the proxy does not support.
    pub const BAD_EXTENSION: SipError =
        SipError::with_status("unsupported Proxy-Require option", 420);
    /// 483: Max-Forwards reached 0.
    pub const TOO_MANY_HOPS: SipError = SipError::with_status("Max-Forwards exhausted", 483);

    /// A 400 Bad Request error.
    pub const fn bad_request(what: &'static str) -> SipError {
        SipError { what, status: 400 }
    }

    /// An error with an explicit status.
    pub const fn with_status(what: &'static str, status: u16) -> SipError {
        SipError { what, status }
    }

    /// The SIP status code this error deserves.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The static description.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The canonical reason phrase for [`SipError::status`].
    pub fn reason_phrase(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            483 => "Too Many Hops",
            500 => "Server Internal Error",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            _ => "Error",
        }
    }
}

impl fmt::Display for SipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} {})",
            self.what,
            self.status,
            self.reason_phrase()
        )
    }
}

impl std::error::Error for SipError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_problem_and_status() {
        assert_eq!(
            SipError::bad_request("bad CSeq number").to_string(),
            "bad CSeq number (400 Bad Request)"
        );
        assert_eq!(SipError::TOO_MANY_HOPS.status(), 483);
        assert_eq!(SipError::BAD_EXTENSION.reason_phrase(), "Bad Extension");
        assert_eq!(SipError::UNSUPPORTED_URI_SCHEME.status(), 416);
    }
}
