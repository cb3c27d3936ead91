//! The matching key of a request: extracted from a parsed message, and stored in the
//! cell's immutable key blob (the fields sip-txn's `match_*` functions compare).

use sip_msg::{Message, SipError};
use sip_txn::wire::{Reader, Writer};
use sip_txn::{RequestKey, ViaFields};

/// Owned key fields of a received request.
#[derive(Clone, Debug, Default)]
pub struct OwnedKey {
    pub method: Vec<u8>,
    pub call_id: Vec<u8>,
    pub cseq_num: Vec<u8>,
    pub cseq_method: Vec<u8>,
    pub from: Vec<u8>,
    pub from_tag: Vec<u8>,
    pub to: Vec<u8>,
    pub to_uri: Vec<u8>,
    pub to_tag: Vec<u8>,
    pub ruri: Vec<u8>,
    pub via_raw: Vec<u8>,
    pub via_host: Vec<u8>,
    pub via_port: Option<u16>,
    pub via_transport: Vec<u8>,
    pub via_branch: Vec<u8>,
}

impl OwnedKey {
    /// The key of a request; a missing or broken Via/From/To/Call-ID/CSeq is an error
    /// (`t_check_trans` "parse error").
    pub fn of(msg: &Message) -> Result<OwnedKey, SipError> {
        let via = msg.top_via()?;
        let from = msg.from()?;
        let to = msg.to()?;
        let cseq = msg.cseq()?;
        Ok(OwnedKey {
            method: msg.method_bytes().unwrap_or_default().to_vec(),
            call_id: msg.call_id()?.to_vec(),
            cseq_num: cseq.number.to_string().into_bytes(),
            cseq_method: cseq.method.to_vec(),
            from: from.raw.to_vec(),
            from_tag: from.tag().unwrap_or_default().to_vec(),
            to: to.raw.to_vec(),
            to_uri: to.uri.raw.to_vec(),
            to_tag: to.tag().unwrap_or_default().to_vec(),
            ruri: msg.request_uri_bytes().unwrap_or_default().to_vec(),
            via_raw: via.raw.to_vec(),
            via_host: via.host_raw.to_vec(),
            via_port: via.port,
            via_transport: via.transport.to_vec(),
            via_branch: via.branch().unwrap_or_default().to_vec(),
        })
    }

    /// Borrowed view for sip-txn matching.
    pub fn key(&self) -> RequestKey<'_> {
        RequestKey {
            method: &self.method,
            call_id: &self.call_id,
            cseq_num: &self.cseq_num,
            from: &self.from,
            from_tag: &self.from_tag,
            to: &self.to,
            to_uri: &self.to_uri,
            to_tag: &self.to_tag,
            ruri: &self.ruri,
            via: ViaFields {
                raw: &self.via_raw,
                host: &self.via_host,
                port: self.via_port,
                transport: &self.via_transport,
                branch: &self.via_branch,
            },
        }
    }

    /// The key blob stored with a new cell; `local_to_tag` is the To-tag our local
    /// replies carry (dialog matching of the ACK to a local 2xx).
    ///
    /// For an RFC 3261 request (cookie branch) the whole From, To, To URI, R-URI and top
    /// Via are left empty: matching against such a cell compares branch, sent-by and
    /// transport (plus Call-ID, CSeq number and tags for the dialog ACK), and a request
    /// without a cookie can never equal it anyway (its Via differs). That saves ~200 bytes
    /// of shm per transaction.
    pub fn blob(&self, local_to_tag: &[u8]) -> Vec<u8> {
        let cookie = self
            .via_branch
            .strip_prefix(sip_txn::MAGIC_COOKIE)
            .is_some_and(|id| !id.is_empty());
        let rfc2543 = |f: &'_ Vec<u8>| -> Vec<u8> { if cookie { Vec::new() } else { f.clone() } };
        let mut out = Vec::with_capacity(256);
        let mut w = Writer::new(&mut out);
        for f in [
            &self.method,
            &self.call_id,
            &self.cseq_num,
            &rfc2543(&self.from),
            &self.from_tag,
            &rfc2543(&self.to),
            &rfc2543(&self.to_uri),
            &self.to_tag,
            &rfc2543(&self.ruri),
            &rfc2543(&self.via_raw),
            &self.via_host,
            &self.via_transport,
            &self.via_branch,
        ] {
            w.bytes(f);
        }
        w.u32(self.via_port.map_or(u32::MAX, u32::from));
        w.bytes(local_to_tag);
        out
    }
}

/// A key read back from a blob (slices into it).
pub struct StoredKey<'a> {
    pub key: RequestKey<'a>,
    pub local_to_tag: &'a [u8],
}

impl<'a> StoredKey<'a> {
    /// Parses a key blob; `None` when it is malformed (the cell is then skipped).
    pub fn parse(blob: &'a [u8]) -> Option<StoredKey<'a>> {
        let mut r = Reader::new(blob);
        let mut f = [&b""[..]; 13];
        for slot in &mut f {
            *slot = r.bytes().ok()?;
        }
        let port = r.u32().ok()?;
        let local_to_tag = r.bytes().ok()?;
        let [
            method,
            call_id,
            cseq_num,
            from,
            from_tag,
            to,
            to_uri,
            to_tag,
            ruri,
            raw,
            host,
            transport,
            branch,
        ] = f;
        Some(StoredKey {
            key: RequestKey {
                method,
                call_id,
                cseq_num,
                from,
                from_tag,
                to,
                to_uri,
                to_tag,
                ruri,
                via: ViaFields {
                    raw,
                    host,
                    port: u16::try_from(port).ok(),
                    transport,
                    branch,
                },
            },
            local_to_tag,
        })
    }
}
