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

/// Every known name (not `Other`), for lookups by compact letter and for tests.
const KNOWN: &[HeaderName] = {
    use HeaderName as H;
    &[
        H::Via,
        H::From,
        H::To,
        H::CallId,
        H::CSeq,
        H::MaxForwards,
        H::ContentLength,
        H::ContentType,
        H::ContentEncoding,
        H::Route,
        H::RecordRoute,
        H::Contact,
        H::Expires,
        H::Require,
        H::ProxyRequire,
        H::Supported,
        H::Unsupported,
        H::Reason,
        H::Subject,
        H::Event,
        H::ReferTo,
        H::AllowEvents,
        H::ReferredBy,
        H::Identity,
        H::SessionExpires,
        H::Allow,
        H::Accept,
        H::Authorization,
        H::ProxyAuthorization,
        H::WwwAuthenticate,
        H::ProxyAuthenticate,
        H::UserAgent,
        H::Server,
        H::Date,
    ]
};

impl HeaderName {
    /// Maps a header name as written (any case, long or compact) to its variant.
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        let Some(first) = name.first().map(u8::to_ascii_lowercase) else {
            return HeaderName::Other;
        };
        if name.len() == 1 {
            return KNOWN
                .iter()
                .copied()
                .find(|h| h.compact() == Some(first))
                .unwrap_or(HeaderName::Other);
        }
        // Called once per header line while indexing: only names with the same first
        // letter are compared.
        use HeaderName as H;
        let candidates: &[HeaderName] = match first {
            b'a' => &[H::Accept, H::Allow, H::AllowEvents, H::Authorization],
            b'c' => &[
                H::CallId,
                H::CSeq,
                H::Contact,
                H::ContentLength,
                H::ContentType,
                H::ContentEncoding,
            ],
            b'd' => &[H::Date],
            b'e' => &[H::Expires, H::Event],
            b'f' => &[H::From],
            b'i' => &[H::Identity],
            b'm' => &[H::MaxForwards],
            b'p' => &[H::ProxyRequire, H::ProxyAuthorization, H::ProxyAuthenticate],
            b'r' => &[
                H::Route,
                H::RecordRoute,
                H::Require,
                H::Reason,
                H::ReferTo,
                H::ReferredBy,
            ],
            b's' => &[H::Supported, H::Subject, H::Server, H::SessionExpires],
            b't' => &[H::To],
            b'u' => &[H::Unsupported, H::UserAgent],
            b'v' => &[H::Via],
            b'w' => &[H::WwwAuthenticate],
            _ => &[],
        };
        candidates
            .iter()
            .copied()
            .find(|h| {
                h.as_str().is_some_and(|long| {
                    long.len() == name.len() && long.as_bytes().eq_ignore_ascii_case(name)
                })
            })
            .unwrap_or(HeaderName::Other)
    }

    /// The canonical long name (`"Call-ID"`), or `None` for [`HeaderName::Other`].
    pub fn as_str(self) -> Option<&'static str> {
        use HeaderName as H;
        Some(match self {
            H::Via => "Via",
            H::From => "From",
            H::To => "To",
            H::CallId => "Call-ID",
            H::CSeq => "CSeq",
            H::MaxForwards => "Max-Forwards",
            H::ContentLength => "Content-Length",
            H::ContentType => "Content-Type",
            H::ContentEncoding => "Content-Encoding",
            H::Route => "Route",
            H::RecordRoute => "Record-Route",
            H::Contact => "Contact",
            H::Expires => "Expires",
            H::Require => "Require",
            H::ProxyRequire => "Proxy-Require",
            H::Supported => "Supported",
            H::Unsupported => "Unsupported",
            H::Reason => "Reason",
            H::Subject => "Subject",
            H::Event => "Event",
            H::ReferTo => "Refer-To",
            H::AllowEvents => "Allow-Events",
            H::ReferredBy => "Referred-By",
            H::Identity => "Identity",
            H::SessionExpires => "Session-Expires",
            H::Allow => "Allow",
            H::Accept => "Accept",
            H::Authorization => "Authorization",
            H::ProxyAuthorization => "Proxy-Authorization",
            H::WwwAuthenticate => "WWW-Authenticate",
            H::ProxyAuthenticate => "Proxy-Authenticate",
            H::UserAgent => "User-Agent",
            H::Server => "Server",
            H::Date => "Date",
            H::Other => return None,
        })
    }

    /// The compact form (RFC 3261 §7.3.3 and later RFCs), lowercase.
    pub fn compact(self) -> Option<u8> {
        use HeaderName as H;
        Some(match self {
            H::Via => b'v',
            H::From => b'f',
            H::To => b't',
            H::CallId => b'i',
            H::ContentLength => b'l',
            H::ContentType => b'c',
            H::ContentEncoding => b'e',
            H::Contact => b'm',
            H::Supported => b'k',
            H::Subject => b's',
            H::Event => b'o',
            H::ReferTo => b'r',
            H::AllowEvents => b'u',
            H::ReferredBy => b'b',
            H::Identity => b'y',
            H::SessionExpires => b'x',
            _ => return None,
        })
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

    #[test]
    fn compact_and_case_insensitive_names() {
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"I"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_bytes(b"MaX-fOrWaRdS"),
            HeaderName::MaxForwards
        );
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"y"), HeaderName::Identity);
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b""), HeaderName::Other);
        assert_eq!(HeaderName::CallId.as_str(), Some("Call-ID"));
    }

    #[test]
    fn every_known_name_maps_back_to_itself() {
        for h in KNOWN {
            let long = h.as_str().unwrap_or_default();
            assert_eq!(HeaderName::from_bytes(long.as_bytes()), *h, "{long}");
            assert_eq!(
                HeaderName::from_bytes(long.to_ascii_lowercase().as_bytes()),
                *h
            );
            if let Some(c) = h.compact() {
                assert_eq!(HeaderName::from_bytes(&[c]), *h, "{long}");
                assert_eq!(HeaderName::from_bytes(&[c.to_ascii_uppercase()]), *h);
            }
        }
    }
}
