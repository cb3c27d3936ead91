//! The one error type of the peers.

use std::fmt;

/// Why a peer operation failed.
#[derive(Debug)]
pub enum SiploadError {
    /// A socket call failed.
    Io(std::io::Error),
    /// A message we need to act on (a reply we must ACK, a 200 we must route a BYE from)
    /// lacks something or does not parse.
    BadMessage(String),
    /// A command-line or configuration value is invalid.
    Config(String),
}

impl fmt::Display for SiploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiploadError::Io(e) => write!(f, "socket: {e}"),
            SiploadError::BadMessage(m) => write!(f, "bad message: {m}"),
            SiploadError::Config(m) => write!(f, "bad configuration: {m}"),
        }
    }
}

impl std::error::Error for SiploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SiploadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for SiploadError {
    fn from(e: std::io::Error) -> Self {
        SiploadError::Io(e)
    }
}

impl From<sip_msg::SipError> for SiploadError {
    fn from(e: sip_msg::SipError) -> Self {
        SiploadError::BadMessage(e.to_string())
    }
}
