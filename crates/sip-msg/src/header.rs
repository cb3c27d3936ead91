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

/// Every known name (not `Other`), for tests.
#[cfg(test)]
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
        use HeaderName as H;
        // Called once per header line while indexing: length and first letter pick the one
        // candidate, then a word-wise case-insensitive compare confirms it. `| 0x20` lowercases
        // letters; a non-letter may pick a wrong candidate, which the compare rejects.
        let first = name.first().map_or(0, |b| b | 0x20);
        let (candidate, lower): (HeaderName, &[u8]) = match (name.len(), first) {
            (0, _) => return H::Other,
            (1, _) => return H::from_compact(first),
            (2, b't') => (H::To, b"to"),
            (3, b'v') => (H::Via, b"via"),
            (4, b'c') => (H::CSeq, b"cseq"),
            (4, b'd') => (H::Date, b"date"),
            (4, b'f') => (H::From, b"from"),
            (5, b'a') => (H::Allow, b"allow"),
            (5, b'e') => (H::Event, b"event"),
            (5, b'r') => (H::Route, b"route"),
            (6, b'a') => (H::Accept, b"accept"),
            (6, b'r') => (H::Reason, b"reason"),
            (6, b's') => (H::Server, b"server"),
            (7, b'c') => match name.get(1).map(|b| b | 0x20) {
                Some(b'a') => (H::CallId, b"call-id"),
                _ => (H::Contact, b"contact"),
            },
            (7, b'e') => (H::Expires, b"expires"),
            (7, b'r') => (H::Require, b"require"),
            (7, b's') => (H::Subject, b"subject"),
            (8, b'i') => (H::Identity, b"identity"),
            (8, b'r') => (H::ReferTo, b"refer-to"),
            (9, b's') => (H::Supported, b"supported"),
            (10, b'u') => (H::UserAgent, b"user-agent"),
            (11, b'r') => (H::ReferredBy, b"referred-by"),
            (11, b'u') => (H::Unsupported, b"unsupported"),
            (12, b'a') => (H::AllowEvents, b"allow-events"),
            (12, b'c') => (H::ContentType, b"content-type"),
            (12, b'm') => (H::MaxForwards, b"max-forwards"),
            (12, b'r') => (H::RecordRoute, b"record-route"),
            (13, b'a') => (H::Authorization, b"authorization"),
            (13, b'p') => (H::ProxyRequire, b"proxy-require"),
            (14, b'c') => (H::ContentLength, b"content-length"),
            (15, b's') => (H::SessionExpires, b"session-expires"),
            (16, b'c') => (H::ContentEncoding, b"content-encoding"),
            (16, b'w') => (H::WwwAuthenticate, b"www-authenticate"),
            (18, b'p') => (H::ProxyAuthenticate, b"proxy-authenticate"),
            (19, b'p') => (H::ProxyAuthorization, b"proxy-authorization"),
            _ => return H::Other,
        };
        if eq_ignore_case_lower(name, lower) {
            candidate
        } else {
            H::Other
        }
    }

    /// The variant of a compact form letter (any case); `Other` for unused letters.
    fn from_compact(letter: u8) -> HeaderName {
        use HeaderName as H;
        match letter.to_ascii_lowercase() {
            b'v' => H::Via,
            b'f' => H::From,
            b't' => H::To,
            b'i' => H::CallId,
            b'l' => H::ContentLength,
            b'c' => H::ContentType,
            b'e' => H::ContentEncoding,
            b'm' => H::Contact,
            b'k' => H::Supported,
            b's' => H::Subject,
            b'o' => H::Event,
            b'r' => H::ReferTo,
            b'u' => H::AllowEvents,
            b'b' => H::ReferredBy,
            b'y' => H::Identity,
            b'x' => H::SessionExpires,
            _ => H::Other,
        }
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

/// `name` equals `lower` (lowercase letters, digits and `-`) ignoring ASCII case, compared
/// 8 (or 4) bytes at a time: a letter byte of `lower` accepts both cases (`| 0x20` on the
/// input byte), any other byte must match exactly.
pub(crate) fn eq_ignore_case_lower(name: &[u8], lower: &[u8]) -> bool {
    fn word8(s: &[u8], at: usize) -> u64 {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    }
    fn word4(s: &[u8], at: usize) -> u64 {
        s.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
    }
    // Letters (0x61..=0x7a) have bit 0x40 set; digits and '-' do not.
    fn folds(input: u64, lower: u64) -> bool {
        input | ((lower & 0x4040_4040_4040_4040) >> 1) == lower
    }
    let n = lower.len();
    if name.len() != n {
        return false;
    }
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if !folds(word8(name, at), word8(lower, at)) {
                return false;
            }
            at += 8;
        }
        // The last 8 bytes, overlapping the previous word.
        folds(word8(name, n - 8), word8(lower, n - 8))
    } else if n >= 4 {
        folds(word4(name, 0), word4(lower, 0)) && folds(word4(name, n - 4), word4(lower, n - 4))
    } else {
        name.iter()
            .zip(lower)
            .all(|(&b, &l)| folds(u64::from(b), u64::from(l)))
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
    fn names_sharing_length_and_first_letter_are_told_apart() {
        assert_eq!(HeaderName::from_bytes(b"CALL-ID"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"contact"), HeaderName::Contact);
        assert_eq!(HeaderName::from_bytes(b"Caller1"), HeaderName::Other);
        // '@' | 0x20 is '`': a non-letter must not pass for a letter.
        assert_eq!(HeaderName::from_bytes(b"@ia"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"V\xc3a"), HeaderName::Other);
        assert_eq!(
            HeaderName::from_bytes(b"Proxy-Authorizations"),
            HeaderName::Other
        );
        // Every known name is unique under (length, first letter) but Call-ID/Contact.
        for a in KNOWN {
            for b in KNOWN {
                let (la, lb) = (a.as_str().unwrap_or(""), b.as_str().unwrap_or(""));
                let same_slot = la.len() == lb.len()
                    && la.as_bytes()[0].eq_ignore_ascii_case(&lb.as_bytes()[0]);
                let call_id_contact = matches!(
                    (a, b),
                    (HeaderName::CallId, HeaderName::Contact)
                        | (HeaderName::Contact, HeaderName::CallId)
                );
                assert!(a == b || !same_slot || call_id_contact, "{la} vs {lb}");
            }
        }
    }

    #[test]
    fn case_folding_compare_is_exact() {
        for lower in [
            "to",
            "via",
            "cseq",
            "call-id",
            "max-forwards",
            "proxy-authorization",
        ] {
            let l = lower.as_bytes();
            assert!(eq_ignore_case_lower(l, l));
            assert!(eq_ignore_case_lower(
                lower.to_ascii_uppercase().as_bytes(),
                l
            ));
            // Every single-byte change is rejected unless it is the other case of a letter.
            for i in 0..l.len() {
                for b in 0..=255u8 {
                    let mut changed = l.to_vec();
                    changed[i] = b;
                    let same = b == l[i] || (l[i].is_ascii_lowercase() && b == l[i] - 32);
                    assert_eq!(eq_ignore_case_lower(&changed, l), same, "{lower} {i} {b}");
                }
            }
            assert!(!eq_ignore_case_lower(&l[1..], l));
        }
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
