//! Header names: the known ones as an enum, compact forms mapped to their long names.

/// A header name the proxy knows. Names are matched case-insensitively; compact
/// forms (`v`, `i`, `f`, ...) map to the same variant as the long name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Route,
    RecordRoute,
    Contact,
    Expires,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Reason,
    Subject,
    Event,
    ReferTo,
    AllowEvents,
    ReferredBy,
    Identity,
    SessionExpires,
    Allow,
    Accept,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    UserAgent,
    Server,
    Date,
    /// Any other header; its name is in [`crate::Header::name_span`].
    Other,
}

/// (long name, compact letter) for every known name.
const NAMES: &[(HeaderName, &str, Option<u8>)] = &[
    (HeaderName::Via, "Via", Some(b'v')),
    (HeaderName::From, "From", Some(b'f')),
    (HeaderName::To, "To", Some(b't')),
    (HeaderName::CallId, "Call-ID", Some(b'i')),
    (HeaderName::CSeq, "CSeq", None),
    (HeaderName::MaxForwards, "Max-Forwards", None),
    (HeaderName::ContentLength, "Content-Length", Some(b'l')),
    (HeaderName::ContentType, "Content-Type", Some(b'c')),
    (HeaderName::ContentEncoding, "Content-Encoding", Some(b'e')),
    (HeaderName::Route, "Route", None),
    (HeaderName::RecordRoute, "Record-Route", None),
    (HeaderName::Contact, "Contact", Some(b'm')),
    (HeaderName::Expires, "Expires", None),
    (HeaderName::Require, "Require", None),
    (HeaderName::ProxyRequire, "Proxy-Require", None),
    (HeaderName::Supported, "Supported", Some(b'k')),
    (HeaderName::Unsupported, "Unsupported", None),
    (HeaderName::Reason, "Reason", None),
    (HeaderName::Subject, "Subject", Some(b's')),
    (HeaderName::Event, "Event", Some(b'o')),
    (HeaderName::ReferTo, "Refer-To", Some(b'r')),
    (HeaderName::AllowEvents, "Allow-Events", Some(b'u')),
    (HeaderName::ReferredBy, "Referred-By", Some(b'b')),
    (HeaderName::Identity, "Identity", Some(b'y')),
    (HeaderName::SessionExpires, "Session-Expires", Some(b'x')),
    (HeaderName::Allow, "Allow", None),
    (HeaderName::Accept, "Accept", None),
    (HeaderName::Authorization, "Authorization", None),
    (HeaderName::ProxyAuthorization, "Proxy-Authorization", None),
    (HeaderName::WwwAuthenticate, "WWW-Authenticate", None),
    (HeaderName::ProxyAuthenticate, "Proxy-Authenticate", None),
    (HeaderName::UserAgent, "User-Agent", None),
    (HeaderName::Server, "Server", None),
    (HeaderName::Date, "Date", None),
];

impl HeaderName {
    /// Maps a header name as written (any case, long or compact) to its variant.
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        let Some(first) = name.first().map(u8::to_ascii_lowercase) else {
            return HeaderName::Other;
        };
        if name.len() == 1 {
            return NAMES
                .iter()
                .find(|(_, _, compact)| *compact == Some(first))
                .map_or(HeaderName::Other, |(h, _, _)| *h);
        }
        // Called once per header line while indexing: compare only same-length names
        // with the same first letter.
        NAMES
            .iter()
            .find(|(_, long, _)| {
                long.len() == name.len()
                    && long.as_bytes().first().map(u8::to_ascii_lowercase) == Some(first)
                    && long.as_bytes().eq_ignore_ascii_case(name)
            })
            .map_or(HeaderName::Other, |(h, _, _)| *h)
    }

    /// The canonical long name (`"Call-ID"`), or `None` for [`HeaderName::Other`].
    pub fn as_str(self) -> Option<&'static str> {
        NAMES
            .iter()
            .find(|(h, _, _)| *h == self)
            .map(|(_, long, _)| *long)
    }

    /// Headers whose values are comma-separated lists that are split on demand.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Contact
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Supported
                | HeaderName::Unsupported
                | HeaderName::Allow
                | HeaderName::AllowEvents
                | HeaderName::Accept
        )
    }
}

/// How an edit or lookup names a header: a known variant or any other name (case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NameKey {
    Known(HeaderName),
    Other(Vec<u8>),
}

impl NameKey {
    pub(crate) fn new(name: &[u8]) -> NameKey {
        match HeaderName::from_bytes(name) {
            HeaderName::Other => NameKey::Other(name.to_vec()),
            known => NameKey::Known(known),
        }
    }

    pub(crate) fn matches(&self, name: HeaderName, written: &[u8]) -> bool {
        match self {
            NameKey::Known(k) => *k == name,
            NameKey::Other(o) => name == HeaderName::Other && o.eq_ignore_ascii_case(written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn compact_and_case_insensitive_names() -> TestResult {
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"I"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_bytes(b"MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"y"), HeaderName::Identity);
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        assert_eq!(HeaderName::CallId.as_str(), Some("Call-ID"));
        Ok(())
    }
}
