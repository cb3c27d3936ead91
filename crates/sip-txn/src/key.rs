//! Transaction keys and matching of requests, ACKs, CANCELs and replies (spec §2.4–§2.7).
//!
//! The caller (tm) iterates the bucket and hands each candidate cell's stored fields to one
//! of the `match_*` functions; the answer is a value, never a callback. All inputs are plain
//! byte slices the caller extracted from parsed messages (this crate does not parse SIP).

use crate::branch::{DecodedBranch, MAGIC_COOKIE, Md5Field};

/// Request methods that matter to tm; everything else compares by name.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// CANCEL.
    Cancel,
    /// Any other method (BYE, OPTIONS, MESSAGE, extensions...).
    Other,
}

impl Method {
    /// Classifies a method token (case-sensitive, as RFC 3261 says).
    #[must_use]
    pub fn classify(token: &[u8]) -> Method {
        match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"CANCEL" => Method::Cancel,
            _ => Method::Other,
        }
    }
}

/// Top Via fields used by matching.
#[derive(Clone, Copy, Debug, Default)]
pub struct ViaFields<'a> {
    /// The whole Via value as received (RFC 2543 `via1_matching`).
    pub raw: &'a [u8],
    /// Host as written.
    pub host: &'a [u8],
    /// Port if written.
    pub port: Option<u16>,
    /// Transport token (`UDP`, `TCP`, `TLS`...).
    pub transport: &'a [u8],
    /// `branch` parameter value, empty when absent.
    pub branch: &'a [u8],
}

impl ViaFields<'_> {
    /// Port with the default filled in: 5061 for TLS, 5060 otherwise.
    #[must_use]
    pub fn effective_port(&self) -> u16 {
        self.port
            .unwrap_or(if self.transport.eq_ignore_ascii_case(b"TLS") {
                5061
            } else {
                5060
            })
    }
}

/// The fields of a request that take part in matching.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestKey<'a> {
    /// Method token of the request line.
    pub method: &'a [u8],
    /// Call-ID body (trimmed).
    pub call_id: &'a [u8],
    /// CSeq number string.
    pub cseq_num: &'a [u8],
    /// Whole From header body.
    pub from: &'a [u8],
    /// From-tag.
    pub from_tag: &'a [u8],
    /// Whole To header body.
    pub to: &'a [u8],
    /// To URI.
    pub to_uri: &'a [u8],
    /// To-tag (empty when absent).
    pub to_tag: &'a [u8],
    /// Request-URI as received.
    pub ruri: &'a [u8],
    /// Top Via.
    pub via: ViaFields<'a>,
}

/// How a request is identified: RFC 3261 branch or the RFC 2543 tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKey<'a> {
    /// Top Via branch starts with the magic cookie and is longer than it.
    Rfc3261 {
        /// Branch without the cookie.
        txid: &'a [u8],
        /// Sent-by host.
        host: &'a [u8],
        /// Sent-by port (default filled in).
        port: u16,
        /// Transport token.
        transport: &'a [u8],
    },
    /// No cookie: match on Call-ID, CSeq, From, To, R-URI and whole top Via.
    Rfc2543,
}

impl<'a> TxKey<'a> {
    /// The key kind of a request.
    #[must_use]
    pub fn of(req: &RequestKey<'a>) -> TxKey<'a> {
        match req.via.branch.strip_prefix(MAGIC_COOKIE) {
            Some(txid) if !txid.is_empty() => TxKey::Rfc3261 {
                txid,
                host: req.via.host,
                port: req.via.effective_port(),
                transport: req.via.transport,
            },
            _ => TxKey::Rfc2543,
        }
    }

    /// RFC 3261 §17.2.3 comparison of two keys (branch, sent-by, transport).
    fn same_3261(&self, other: &TxKey<'_>) -> bool {
        match (self, other) {
            (
                TxKey::Rfc3261 {
                    txid,
                    host,
                    port,
                    transport,
                },
                TxKey::Rfc3261 {
                    txid: t2,
                    host: h2,
                    port: p2,
                    transport: tr2,
                },
            ) => txid == t2 && host == h2 && port == p2 && transport.eq_ignore_ascii_case(tr2),
            _ => false,
        }
    }
}

/// Matching switches (tm modparams), Kamailio defaults via `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// `callid_matching` (default off): also require equal Call-ID in RFC 3261 mode.
    pub callid_matching: bool,
    /// `ruri_matching` (default on): RFC 2543 mode compares the request-URI.
    pub ruri_matching: bool,
    /// `via1_matching` (default on): RFC 2543 mode compares the whole top Via.
    pub via1_matching: bool,
    /// E2E-ACK callbacks registered: ACKs to 2xx are looked up by dialog.
    pub e2e_ack_callbacks: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            callid_matching: false,
            ruri_matching: true,
            via1_matching: true,
            e2e_ack_callbacks: false,
        }
    }
}

/// A cell of the bucket as seen by request matching.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Fields of the request the cell was created for.
    pub key: RequestKey<'a>,
    /// False for local (UAC) transactions, which have no received request.
    pub has_uas_request: bool,
    /// Last status sent upstream (0 = none).
    pub uas_status: u16,
    /// The final reply upstream was generated locally (`t_reply`), not relayed.
    pub locally_replied: bool,
    /// To-tag of our local reply, for dialog matching of an ACK to a local 2xx.
    pub local_to_tag: &'a [u8],
}

/// Outcome of matching a request against one candidate cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// Not this cell.
    NoMatch,
    /// Same request: a retransmission (resend the last reply upstream).
    Retransmission,
    /// ACK for a negative (≥300) final of this INVITE: absorb it, stop reply retransmission.
    AckToNegative,
    /// ACK to the 2xx this cell sent itself (`t_reply(200)`), matched by dialog: absorb it,
    /// stop the 2xx retransmission (spec §3.2, §6.3).
    AckToLocal2xx,
    /// ACK to a relayed 2xx that matched by dialog (E2E-ACK callbacks).
    E2eAck,
    /// A CANCEL transaction for this (non-CANCEL) request already exists: born canceled.
    CancelExists,
}

impl Match {
    /// An ACK the transaction absorbs (to its negative final or to its own 2xx).
    #[must_use]
    pub fn is_absorbed_ack(self) -> bool {
        matches!(self, Match::AckToNegative | Match::AckToLocal2xx)
    }
}

fn method_of(key: &RequestKey<'_>) -> Method {
    Method::classify(key.method)
}

/// Whether `req`'s method may match `cell`'s method, and whether a hit is only a CANCEL flag.
enum MethodFilter {
    Same,
    CancelFlag,
    Skip,
}

fn method_filter(req: &RequestKey<'_>, cell: &RequestKey<'_>) -> MethodFilter {
    let (rm, cm) = (method_of(req), method_of(cell));
    match rm {
        Method::Ack if cm == Method::Invite => MethodFilter::Same,
        Method::Ack => MethodFilter::Skip,
        Method::Cancel if cm == Method::Cancel => MethodFilter::Same,
        Method::Cancel => MethodFilter::Skip,
        _ if cm == Method::Cancel => MethodFilter::CancelFlag,
        _ if req.method == cell.method => MethodFilter::Same,
        _ => MethodFilter::Skip,
    }
}

/// Dialog match of an ACK to a 2xx: Call-ID, CSeq number, From-tag and our local To-tag.
fn dialog_ack_matches(req: &RequestKey<'_>, cell: &Candidate<'_>) -> bool {
    req.call_id == cell.key.call_id
        && req.cseq_num == cell.key.cseq_num
        && req.from_tag == cell.key.from_tag
        && !cell.local_to_tag.is_empty()
        && req.to_tag == cell.local_to_tag
}

/// ACK against an INVITE cell that has sent nothing final or a 2xx (spec §2.4 A.3).
fn ack_to_non_negative(req: &RequestKey<'_>, cell: &Candidate<'_>, cfg: &MatchConfig) -> Match {
    let local_2xx = cell.locally_replied && (200..300).contains(&cell.uas_status);
    if !(local_2xx || cfg.e2e_ack_callbacks) || !dialog_ack_matches(req, cell) {
        Match::NoMatch
    } else if local_2xx {
        Match::AckToLocal2xx
    } else {
        Match::E2eAck
    }
}

/// Matches an incoming request against one cell (Kamailio `t_lookup_request`, spec §2.4).
#[must_use]
pub fn match_request(req: &RequestKey<'_>, cell: &Candidate<'_>, cfg: &MatchConfig) -> Match {
    if !cell.has_uas_request {
        return Match::NoMatch;
    }
    let filter = method_filter(req, &cell.key);
    if matches!(filter, MethodFilter::Skip) {
        return Match::NoMatch;
    }
    let is_ack = method_of(req) == Method::Ack;
    if is_ack && cell.uas_status < 300 {
        return ack_to_non_negative(req, cell, cfg);
    }
    let same = match TxKey::of(req) {
        key @ TxKey::Rfc3261 { .. } => {
            key.same_3261(&TxKey::of(&cell.key))
                && (!cfg.callid_matching || req.call_id == cell.key.call_id)
        }
        TxKey::Rfc2543 if is_ack => {
            same_2543_common(req, &cell.key)
                && req.to_uri == cell.key.to_uri
                && req.from == cell.key.from
                && ruri_via_2543(req, &cell.key, cfg)
        }
        TxKey::Rfc2543 => {
            same_2543_common(req, &cell.key)
                && req.from == cell.key.from
                && req.to == cell.key.to
                && ruri_via_2543(req, &cell.key, cfg)
        }
    };
    match (same, filter, is_ack) {
        (false, _, _) => Match::NoMatch,
        (true, MethodFilter::CancelFlag, _) => Match::CancelExists,
        (true, _, true) => Match::AckToNegative,
        (true, _, false) => Match::Retransmission,
    }
}

fn same_2543_common(req: &RequestKey<'_>, cell: &RequestKey<'_>) -> bool {
    req.call_id == cell.call_id && req.cseq_num == cell.cseq_num
}

fn ruri_via_2543(req: &RequestKey<'_>, cell: &RequestKey<'_>, cfg: &MatchConfig) -> bool {
    (!cfg.ruri_matching || req.ruri == cell.ruri)
        && (!cfg.via1_matching || req.via.raw == cell.via.raw)
}

/// Whether `cancel` cancels the request of `cell` (Kamailio `t_lookupOriginalT`, spec §2.5).
///
/// CANCEL cells are skipped; the RFC 2543 form compares only the To URI (the To-tag differs).
#[must_use]
pub fn match_cancel_target(
    cancel: &RequestKey<'_>,
    cell: &Candidate<'_>,
    cfg: &MatchConfig,
) -> bool {
    if !cell.has_uas_request || method_of(&cell.key) == Method::Cancel {
        return false;
    }
    match TxKey::of(cancel) {
        key @ TxKey::Rfc3261 { .. } => {
            key.same_3261(&TxKey::of(&cell.key))
                && (!cfg.callid_matching || cancel.call_id == cell.key.call_id)
        }
        TxKey::Rfc2543 => {
            same_2543_common(cancel, &cell.key)
                && cancel.from == cell.key.from
                && cancel.to_uri == cell.key.to_uri
                && ruri_via_2543(cancel, &cell.key, cfg)
        }
    }
}

/// A cell of the bucket as seen by reply matching.
#[derive(Clone, Copy, Debug)]
pub struct ReplyCandidate {
    /// The cell's 32-char branch field.
    pub md5: Md5Field,
    /// The cell's request method class.
    pub method: Method,
    /// Number of branches created so far.
    pub nr_branches: u8,
    /// Bit `n` set when we sent a CANCEL on branch `n`.
    pub cancel_sent: u32,
}

/// Outcome of matching a reply against one cell (spec §2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMatch {
    /// Not this cell.
    NoMatch,
    /// A reply to branch `n`'s request.
    Branch(u8),
    /// A reply to the CANCEL we sent on branch `n`.
    CancelReply(u8),
}

/// Matches a reply (decoded top-Via branch + CSeq method) against one cell.
///
/// `cseq_method` other than INVITE/ACK/CANCEL is matched by class `Other`; the caller must
/// additionally compare the method name when the cell's method is `Other`.
#[must_use]
pub fn match_reply(
    branch: &DecodedBranch,
    cseq_method: Method,
    cell: &ReplyCandidate,
) -> ReplyMatch {
    if branch.md5 != cell.md5 || branch.branch_no >= cell.nr_branches {
        return ReplyMatch::NoMatch;
    }
    let on_branch = 1u32.checked_shl(u32::from(branch.branch_no)).unwrap_or(0);
    if cseq_method == cell.method {
        ReplyMatch::Branch(branch.branch_no)
    } else if cseq_method == Method::Cancel
        && cell.method == Method::Invite
        && cell.cancel_sent & on_branch != 0
    {
        ReplyMatch::CancelReply(branch.branch_no)
    } else {
        ReplyMatch::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::branch::{DEFAULT_TABLE_SIZE, decode_branch, encode_branch};

    fn invite() -> RequestKey<'static> {
        RequestKey {
            method: b"INVITE",
            call_id: b"c1@a",
            cseq_num: b"1",
            from: b"<sip:a@x>;tag=ft",
            from_tag: b"ft",
            to: b"<sip:b@y>",
            to_uri: b"sip:b@y",
            to_tag: b"",
            ruri: b"sip:b@y",
            via: ViaFields {
                raw: b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc",
                host: b"10.0.0.1",
                port: Some(5060),
                transport: b"UDP",
                branch: b"z9hG4bKabc",
            },
        }
    }

    fn rfc2543(mut k: RequestKey<'static>) -> RequestKey<'static> {
        k.via.branch = b"";
        k.via.raw = b"SIP/2.0/UDP 10.0.0.1:5060";
        k
    }

    fn cell(key: RequestKey<'static>, uas_status: u16) -> Candidate<'static> {
        Candidate {
            key,
            has_uas_request: true,
            uas_status,
            locally_replied: false,
            local_to_tag: b"",
        }
    }

    fn with_method(mut k: RequestKey<'static>, m: &'static [u8]) -> RequestKey<'static> {
        k.method = m;
        k
    }

    const CFG: MatchConfig = MatchConfig {
        callid_matching: false,
        ruri_matching: true,
        via1_matching: true,
        e2e_ack_callbacks: false,
    };

    #[test]
    fn tx_key_needs_cookie_and_something_after_it() {
        assert!(matches!(
            TxKey::of(&invite()),
            TxKey::Rfc3261 { txid: b"abc", .. }
        ));
        let mut k = invite();
        k.via.branch = b"z9hG4bK";
        assert_eq!(TxKey::of(&k), TxKey::Rfc2543);
        k.via.branch = b"1234";
        assert_eq!(TxKey::of(&k), TxKey::Rfc2543);
    }

    #[test]
    fn rfc3261_retransmission_matches_same_branch_host_port_transport() {
        assert_eq!(
            match_request(&invite(), &cell(invite(), 100), &CFG),
            Match::Retransmission
        );
    }

    #[test]
    fn rfc3261_different_branch_host_port_or_transport_does_not_match() {
        let c = cell(invite(), 100);
        let mut r = invite();
        r.via.branch = b"z9hG4bKabd";
        assert_eq!(match_request(&r, &c, &CFG), Match::NoMatch);
        let mut r = invite();
        r.via.host = b"10.0.0.2";
        assert_eq!(match_request(&r, &c, &CFG), Match::NoMatch);
        let mut r = invite();
        r.via.port = Some(5070);
        assert_eq!(match_request(&r, &c, &CFG), Match::NoMatch);
        let mut r = invite();
        r.via.transport = b"TCP";
        assert_eq!(match_request(&r, &c, &CFG), Match::NoMatch);
    }

    #[test]
    fn rfc3261_host_is_compared_bytewise_and_transport_caselessly() {
        let c = cell(invite(), 100);
        let mut r = invite();
        r.via.transport = b"udp";
        assert_eq!(match_request(&r, &c, &CFG), Match::Retransmission);
        let mut up = invite();
        up.via.host = b"Host.Example";
        let mut low = invite();
        low.via.host = b"host.example";
        assert_eq!(match_request(&low, &cell(up, 100), &CFG), Match::NoMatch);
    }

    #[test]
    fn missing_via_port_equals_5060_and_5061_for_tls() {
        let mut r = invite();
        r.via.port = None;
        assert_eq!(
            match_request(&r, &cell(invite(), 100), &CFG),
            Match::Retransmission
        );
        let mut tls = invite();
        tls.via.transport = b"TLS";
        tls.via.port = Some(5061);
        let mut r = tls;
        r.via.port = None;
        assert_eq!(
            match_request(&r, &cell(tls, 100), &CFG),
            Match::Retransmission
        );
        let mut c = invite();
        c.via.port = Some(5070);
        let mut r = invite();
        r.via.port = None;
        assert_eq!(match_request(&r, &cell(c, 100), &CFG), Match::NoMatch);
    }

    #[test]
    fn non_ack_request_matches_only_cells_of_the_same_method() {
        let bye = with_method(invite(), b"BYE");
        assert_eq!(
            match_request(&bye, &cell(invite(), 0), &CFG),
            Match::NoMatch
        );
        assert_eq!(
            match_request(&bye, &cell(bye, 0), &CFG),
            Match::Retransmission
        );
        let msg = with_method(invite(), b"MESSAGE");
        assert_eq!(match_request(&msg, &cell(bye, 0), &CFG), Match::NoMatch);
    }

    #[test]
    fn cancel_never_matches_the_invite_as_request_but_matches_its_own_retransmission() {
        let cancel = with_method(invite(), b"CANCEL");
        assert_eq!(
            match_request(&cancel, &cell(invite(), 180), &CFG),
            Match::NoMatch
        );
        assert_eq!(
            match_request(&cancel, &cell(cancel, 200), &CFG),
            Match::Retransmission
        );
    }

    #[test]
    fn invite_arriving_after_its_cancel_is_flagged_cancel_exists() {
        let cancel = with_method(invite(), b"CANCEL");
        assert_eq!(
            match_request(&invite(), &cell(cancel, 200), &CFG),
            Match::CancelExists
        );
        assert_eq!(
            match_request(&rfc2543(invite()), &cell(rfc2543(cancel), 200), &CFG),
            Match::CancelExists
        );
    }

    #[test]
    fn local_cells_without_uas_request_are_skipped() {
        let mut c = cell(invite(), 100);
        c.has_uas_request = false;
        assert_eq!(match_request(&invite(), &c, &CFG), Match::NoMatch);
        assert!(!match_cancel_target(
            &with_method(invite(), b"CANCEL"),
            &c,
            &CFG
        ));
    }

    #[test]
    fn ack_to_486_matches_invite() {
        let ack = with_method(invite(), b"ACK");
        assert_eq!(
            match_request(&ack, &cell(invite(), 486), &CFG),
            Match::AckToNegative
        );
    }

    #[test]
    fn ack_only_matches_invite_cells() {
        let ack = with_method(invite(), b"ACK");
        let bye = with_method(invite(), b"BYE");
        assert_eq!(match_request(&ack, &cell(bye, 486), &CFG), Match::NoMatch);
    }

    #[test]
    fn ack_to_2xx_is_not_found_without_e2e_callbacks() {
        let mut ack = with_method(invite(), b"ACK");
        ack.via.branch = b"z9hG4bKnew";
        ack.to_tag = b"tt";
        assert_eq!(
            match_request(&ack, &cell(invite(), 200), &CFG),
            Match::NoMatch
        );
        // Even the INVITE's own branch does not match a cell with status < 300.
        let ack = with_method(invite(), b"ACK");
        assert_eq!(
            match_request(&ack, &cell(invite(), 180), &CFG),
            Match::NoMatch
        );
    }

    #[test]
    fn ack_to_local_2xx_matches_by_dialog() {
        let mut ack = with_method(invite(), b"ACK");
        ack.via.branch = b"z9hG4bKnew";
        ack.to_tag = b"ourtag";
        let mut c = cell(invite(), 200);
        c.locally_replied = true;
        c.local_to_tag = b"ourtag";
        assert_eq!(match_request(&ack, &c, &CFG), Match::AckToLocal2xx);
        assert!(Match::AckToLocal2xx.is_absorbed_ack());
        // Before the local 2xx (a local 180 only) nothing is absorbed.
        c.uas_status = 180;
        assert_eq!(match_request(&ack, &c, &CFG), Match::NoMatch);
        c.uas_status = 200;
        ack.to_tag = b"other";
        assert_eq!(match_request(&ack, &c, &CFG), Match::NoMatch);
        // With E2E callbacks the relayed 2xx's ACK is looked up by dialog too.
        let cfg = MatchConfig {
            e2e_ack_callbacks: true,
            ..CFG
        };
        let mut c = cell(invite(), 200);
        c.local_to_tag = b"dtag";
        ack.to_tag = b"dtag";
        assert_eq!(match_request(&ack, &c, &cfg), Match::E2eAck);
    }

    #[test]
    fn callid_matching_adds_call_id_equality() {
        let mut r = invite();
        r.call_id = b"other";
        let c = cell(invite(), 100);
        assert_eq!(match_request(&r, &c, &CFG), Match::Retransmission);
        let cfg = MatchConfig {
            callid_matching: true,
            ..CFG
        };
        assert_eq!(match_request(&r, &c, &cfg), Match::NoMatch);
    }

    #[test]
    fn rfc2543_request_matches_on_callid_cseq_from_to_ruri_via() {
        let c = cell(rfc2543(invite()), 100);
        assert_eq!(
            match_request(&rfc2543(invite()), &c, &CFG),
            Match::Retransmission
        );
        for change in 0..5 {
            let mut r = rfc2543(invite());
            match change {
                0 => r.call_id = b"x",
                1 => r.cseq_num = b"2",
                2 => r.from = b"<sip:a@x>;tag=other",
                3 => r.to = b"<sip:b@y>;tag=t",
                _ => r.ruri = b"sip:c@y",
            }
            assert_eq!(
                match_request(&r, &c, &CFG),
                Match::NoMatch,
                "change {change}"
            );
        }
        let mut r = rfc2543(invite());
        r.via.raw = b"SIP/2.0/UDP 10.0.0.9";
        assert_eq!(match_request(&r, &c, &CFG), Match::NoMatch);
    }

    #[test]
    fn rfc2543_ruri_and_via1_switches_relax_matching() {
        let c = cell(rfc2543(invite()), 100);
        let mut r = rfc2543(invite());
        r.ruri = b"sip:c@y";
        r.via.raw = b"SIP/2.0/UDP 10.0.0.9";
        let cfg = MatchConfig {
            ruri_matching: false,
            via1_matching: false,
            ..CFG
        };
        assert_eq!(match_request(&r, &c, &cfg), Match::Retransmission);
    }

    #[test]
    fn rfc2543_ack_to_negative_compares_to_uri_not_to_tag() {
        let c = cell(rfc2543(invite()), 404);
        let mut ack = with_method(rfc2543(invite()), b"ACK");
        ack.to = b"<sip:b@y>;tag=downstream";
        ack.to_tag = b"downstream";
        assert_eq!(match_request(&ack, &c, &CFG), Match::AckToNegative);
        ack.to_uri = b"sip:z@y";
        assert_eq!(match_request(&ack, &c, &CFG), Match::NoMatch);
    }

    #[test]
    fn cancel_lookup_finds_invite_by_via() {
        let cancel = with_method(invite(), b"CANCEL");
        assert!(match_cancel_target(&cancel, &cell(invite(), 180), &CFG));
        let mut other = cancel;
        other.via.branch = b"z9hG4bKzzz";
        assert!(!match_cancel_target(&other, &cell(invite(), 180), &CFG));
    }

    #[test]
    fn cancel_lookup_skips_cancel_cells() {
        let cancel = with_method(invite(), b"CANCEL");
        assert!(!match_cancel_target(&cancel, &cell(cancel, 200), &CFG));
    }

    #[test]
    fn rfc2543_cancel_lookup_ignores_to_tag() {
        let inv = rfc2543(invite());
        let mut cancel = with_method(inv, b"CANCEL");
        cancel.to = b"<sip:b@y>;tag=x";
        assert!(match_cancel_target(&cancel, &cell(inv, 180), &CFG));
        cancel.from = b"<sip:a@x>;tag=zz";
        assert!(!match_cancel_target(&cancel, &cell(inv, 180), &CFG));
    }

    fn reply_cell(method: Method, nr: u8, cancel_sent: u32) -> (ReplyCandidate, Md5Field) {
        let md5 = Md5Field([7; 16]);
        (
            ReplyCandidate {
                md5,
                method,
                nr_branches: nr,
                cancel_sent,
            },
            md5,
        )
    }

    fn decoded(md5: Md5Field, b: u8) -> DecodedBranch {
        decode_branch(encode_branch(42, md5, b).as_bytes(), DEFAULT_TABLE_SIZE, 12).unwrap()
    }

    #[test]
    fn reply_matches_by_own_branch_and_cseq_method() {
        let (c, md5) = reply_cell(Method::Invite, 2, 0);
        assert_eq!(
            match_reply(&decoded(md5, 1), Method::Invite, &c),
            ReplyMatch::Branch(1)
        );
        assert_eq!(
            match_reply(&decoded(md5, 1), Method::Other, &c),
            ReplyMatch::NoMatch
        );
        assert_eq!(
            match_reply(&decoded(Md5Field([8; 16]), 1), Method::Invite, &c),
            ReplyMatch::NoMatch
        );
    }

    #[test]
    fn reply_to_branch_not_yet_created_does_not_match() {
        let (c, md5) = reply_cell(Method::Invite, 2, 0);
        assert_eq!(
            match_reply(&decoded(md5, 2), Method::Invite, &c),
            ReplyMatch::NoMatch
        );
    }

    #[test]
    fn reply_to_our_cancel_matches_only_where_we_sent_one() {
        let (c, md5) = reply_cell(Method::Invite, 3, 0b100);
        assert_eq!(
            match_reply(&decoded(md5, 2), Method::Cancel, &c),
            ReplyMatch::CancelReply(2)
        );
        assert_eq!(
            match_reply(&decoded(md5, 1), Method::Cancel, &c),
            ReplyMatch::NoMatch
        );
        let (c, md5) = reply_cell(Method::Other, 3, 0b100);
        assert_eq!(
            match_reply(&decoded(md5, 2), Method::Cancel, &c),
            ReplyMatch::NoMatch
        );
    }
}
