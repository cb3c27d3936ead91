//! Bucket hashing and the Via branch parameter that encodes bucket and branch number.
//!
//! Layout (Kamailio `branch_builder`, spec §2.3):
//! `z9hG4bK` + bucket index in hex, **least-significant nibble first** + `.` + 32 lowercase hex
//! chars + `.` + branch number in the same reversed-nibble hex, e.g.
//! `z9hG4bK34b8.b3bd067461a623f747a48ac73d495d50.0` is bucket `0x8b43`, branch 0.
//! The 32-char field is the MD5 "characteristic value" of a proxied request, or a
//! caller-supplied random number padded with `0` for locally originated requests.

use md5::{Digest, Md5};

/// RFC 3261 magic cookie.
pub const MAGIC_COOKIE: &[u8] = b"z9hG4bK";

/// Default number of buckets (2^16, Kamailio `T_TABLE_POWER 16`).
pub const DEFAULT_TABLE_SIZE: u32 = 1 << 16;

/// Kamailio's default `max_branches`.
pub const DEFAULT_MAX_BRANCHES: u8 = 12;

/// Kamailio's hard limit for `max_branches`.
pub const MAX_BRANCHES_LIMIT: u8 = 32;

/// Bucket of a request: a word-at-a-time multiplicative hash (FxHash's step) over the
/// Call-ID and the CSeq number string, each followed by its length, with a final mix so
/// every input byte reaches the low (index) bits.
///
/// The CSeq method is deliberately not hashed so INVITE, its CANCEL and its non-2xx ACK share
/// a bucket. `table_size` must be a power of two. The function is fixed and seed-free so every
/// process computes the same bucket.
#[must_use]
pub fn bucket_of(call_id: &[u8], cseq_num: &[u8], table_size: u32) -> u32 {
    let mut h = 0u64;
    for part in [call_id, cseq_num] {
        let mut words = part.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = fx_step(h, u64::from_le_bytes(b));
        }
        let tail = words.remainder();
        let mut b = [0u8; 8];
        b[..tail.len()].copy_from_slice(tail);
        h = fx_step(h, u64::from_le_bytes(b));
        // The length keeps ("ab", "c") and ("a", "bc") apart.
        h = fx_step(h, part.len() as u64);
    }
    // MurmurHash3's fmix64: the multiply above only carries bits upwards.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h as u32) & table_size.wrapping_sub(1)
}

fn fx_step(h: u64, word: u64) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    (h.rotate_left(5) ^ word).wrapping_mul(K)
}

/// The 16-byte value behind the 32 hex chars of a branch (shown as lowercase hex on the wire).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Md5Field(pub [u8; 16]);

impl Md5Field {
    /// Field for a locally originated request: the random number in hex, padded with `0`
    /// to 32 chars (Kamailio `init_synonym_id`), e.g. `c06999a2000000000000000000000000`.
    #[must_use]
    pub fn local(random: u32) -> Md5Field {
        let mut v = [0u8; 16];
        v[..4].copy_from_slice(&random.to_be_bytes());
        Md5Field(v)
    }

    /// The 32 lowercase hex chars.
    #[must_use]
    pub fn to_hex(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }

    /// Parses exactly 32 lowercase hex chars (we only ever emit lowercase, so anything else
    /// cannot match a cell of ours).
    #[must_use]
    pub fn from_hex(s: &[u8]) -> Option<Md5Field> {
        if s.len() != 32 {
            return None;
        }
        let mut v = [0u8; 16];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            v[i] = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
        }
        Some(Md5Field(v))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn lower_hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn any_hex_digit(c: u8) -> Option<u8> {
    lower_hex_digit(c.to_ascii_lowercase())
}

/// The request values hashed into a proxied branch (Kamailio `char_msg_val`, spec §2.3).
#[derive(Clone, Copy, Debug, Default)]
pub struct CharValueFields<'a> {
    /// From-tag.
    pub from_tag: &'a [u8],
    /// To-tag; the caller leaves it empty for INVITE/ACK/CANCEL.
    pub to_tag: &'a [u8],
    /// Call-ID body.
    pub call_id: &'a [u8],
    /// Request-URI as received.
    pub ruri: &'a [u8],
    /// CSeq number string.
    pub cseq_num: &'a [u8],
    /// Top Via host.
    pub via_host: &'a [u8],
    /// Top Via port as written (empty when absent).
    pub via_port: &'a [u8],
    /// Top Via branch.
    pub via_branch: &'a [u8],
}

impl<'a> CharValueFields<'a> {
    /// The To-tag as it takes part in the hash: none for INVITE, ACK and CANCEL (Kamailio's
    /// `char_msg_val`), so a CANCEL and the ACK of a negative reply hash like their INVITE.
    #[must_use]
    pub fn hashed_to_tag(method: &[u8], to_tag: &'a [u8]) -> &'a [u8] {
        if matches!(method, b"INVITE" | b"ACK" | b"CANCEL") {
            b""
        } else {
            to_tag
        }
    }
}

/// MD5 over the concatenated characteristic values.
#[must_use]
pub fn char_value(f: &CharValueFields<'_>) -> Md5Field {
    let parts = [
        f.from_tag,
        f.to_tag,
        f.call_id,
        f.ruri,
        f.cseq_num,
        f.via_host,
        f.via_port,
        f.via_branch,
    ];
    // One update per field: copying them into one buffer first measured no cheaper, the
    // MD5 blocks themselves are the cost.
    let mut h = Md5::new();
    for part in parts {
        h.update(part);
    }
    Md5Field(h.finalize().into())
}

/// A built branch parameter value (at most 7 + 8 + 1 + 32 + 1 + 8 = 57 bytes).
#[derive(Clone, Copy, Debug)]
pub struct BranchParam {
    buf: [u8; 64],
    len: u8,
}

impl BranchParam {
    /// The parameter value bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

fn push_reverse_hex(out: &mut [u8; 64], len: &mut usize, mut v: u32) {
    loop {
        out[*len] = HEX[(v & 0xf) as usize];
        *len += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
}

/// Builds `z9hG4bK<rev-hex bucket>.<32 hex>.<rev-hex branch>`.
#[must_use]
pub fn encode_branch(bucket: u32, md5: Md5Field, branch_no: u8) -> BranchParam {
    let mut buf = [0u8; 64];
    let mut len = MAGIC_COOKIE.len();
    buf[..len].copy_from_slice(MAGIC_COOKIE);
    push_reverse_hex(&mut buf, &mut len, bucket);
    buf[len] = b'.';
    len += 1;
    buf[len..len + 32].copy_from_slice(&md5.to_hex());
    len += 32;
    buf[len] = b'.';
    len += 1;
    push_reverse_hex(&mut buf, &mut len, u32::from(branch_no));
    // At most 57 bytes were written, so the length fits a u8.
    BranchParam {
        buf,
        len: len as u8,
    }
}

/// What a reply's top-Via branch says about the cell it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedBranch {
    /// Bucket index.
    pub bucket: u32,
    /// The 32-char field.
    pub md5: Md5Field,
    /// Branch number.
    pub branch_no: u8,
}

/// Reversed-nibble hex (Kamailio `reverse_hex2int`): 1–8 digits, either case.
fn parse_reverse_hex(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in s.iter().rev() {
        v = (v << 4) | u32::from(any_hex_digit(c)?);
    }
    Some(v)
}

/// Splits a reply's branch (spec §2.7); `None` when it is not ours: no cookie, malformed,
/// MD5 field not exactly 32 chars, `bucket >= table_size` or `branch >= max_branches`.
#[must_use]
pub fn decode_branch(branch: &[u8], table_size: u32, max_branches: u8) -> Option<DecodedBranch> {
    let rest = branch.strip_prefix(MAGIC_COOKIE)?;
    let mut parts = rest.split(|&c| c == b'.');
    let bucket = parse_reverse_hex(parts.next()?)?;
    let md5 = Md5Field::from_hex(parts.next()?)?;
    let branch_no = parse_reverse_hex(parts.next()?)?;
    if parts.next().is_some() || bucket >= table_size || branch_no >= u32::from(max_branches) {
        return None;
    }
    Some(DecodedBranch {
        bucket,
        md5,
        // branch_no < max_branches <= u8::MAX, so this cannot truncate.
        branch_no: branch_no as u8,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn to_tag_is_left_out_for_invite_ack_and_cancel_only() {
        for m in [&b"INVITE"[..], b"ACK", b"CANCEL"] {
            assert_eq!(CharValueFields::hashed_to_tag(m, b"t1"), b"");
        }
        assert_eq!(CharValueFields::hashed_to_tag(b"BYE", b"t1"), b"t1");
        assert_eq!(
            CharValueFields::hashed_to_tag(b"invite", b"t1"),
            b"t1",
            "methods are case-sensitive"
        );
    }

    use super::*;

    const MD5_HEX: &[u8] = b"b3bd067461a623f747a48ac73d495d50";

    fn md5() -> Md5Field {
        Md5Field::from_hex(MD5_HEX).unwrap()
    }

    #[test]
    fn branch_encodes_bucket_with_reversed_nibbles_like_kamailio() {
        let p = encode_branch(0x8b43, md5(), 0);
        assert_eq!(
            p.as_bytes(),
            b"z9hG4bK34b8.b3bd067461a623f747a48ac73d495d50.0"
        );
        let p = encode_branch(0, md5(), 11);
        assert_eq!(p.as_bytes(), b"z9hG4bK0.b3bd067461a623f747a48ac73d495d50.b");
    }

    #[test]
    fn branch_round_trips_for_every_branch_number() {
        for b in 0..DEFAULT_MAX_BRANCHES {
            let p = encode_branch(0xffff, md5(), b);
            let d = decode_branch(p.as_bytes(), DEFAULT_TABLE_SIZE, DEFAULT_MAX_BRANCHES);
            assert_eq!(
                d,
                Some(DecodedBranch {
                    bucket: 0xffff,
                    md5: md5(),
                    branch_no: b
                })
            );
        }
    }

    #[test]
    fn branch_of_kamailio_example_decodes() {
        let d = decode_branch(
            b"z9hG4bK34b8.b3bd067461a623f747a48ac73d495d50.0",
            DEFAULT_TABLE_SIZE,
            12,
        )
        .unwrap();
        assert_eq!(d.bucket, 0x8b43);
        assert_eq!(d.branch_no, 0);
    }

    #[test]
    fn reply_branch_with_31_hex_chars_is_rejected() {
        assert_eq!(
            decode_branch(
                b"z9hG4bK34b8.b3bd067461a623f747a48ac73d495d5.0",
                DEFAULT_TABLE_SIZE,
                12
            ),
            None
        );
        assert_eq!(
            decode_branch(
                b"z9hG4bK34b8.b3bd067461a623f747a48ac73d495d500.0",
                DEFAULT_TABLE_SIZE,
                12
            ),
            None
        );
    }

    #[test]
    fn reply_branch_with_index_beyond_table_is_rejected() {
        let p = encode_branch(0x1_0000, md5(), 0);
        assert_eq!(decode_branch(p.as_bytes(), DEFAULT_TABLE_SIZE, 12), None);
        let p = encode_branch(300, md5(), 0);
        assert_eq!(decode_branch(p.as_bytes(), 256, 12), None);
        assert!(decode_branch(p.as_bytes(), 512, 12).is_some());
    }

    #[test]
    fn reply_branch_number_at_max_branches_is_rejected() {
        let p = encode_branch(1, md5(), 12);
        assert_eq!(decode_branch(p.as_bytes(), DEFAULT_TABLE_SIZE, 12), None);
        assert!(decode_branch(p.as_bytes(), DEFAULT_TABLE_SIZE, 13).is_some());
    }

    #[test]
    fn malformed_reply_branches_are_rejected() {
        for bad in [
            &b""[..],
            b"z9hG4bK",
            b"z9hG4bKabc",
            b"z9hG4bK.b3bd067461a623f747a48ac73d495d50.0",
            b"z9hG4bK34b8.b3bd067461a623f747a48ac73d495d50.",
            b"z9hG4bK34b8.b3bd067461a623f747a48ac73d495d50.0.1",
            b"z9hG4bK34x8.b3bd067461a623f747a48ac73d495d50.0",
            b"z9hG4bK34b8.B3BD067461A623F747A48AC73D495D50.0",
            b"z9hG4bK34b8.g3bd067461a623f747a48ac73d495d50.0",
            b"z9hG4bK123456789.b3bd067461a623f747a48ac73d495d50.0",
            b"z9hg4bk34b8.b3bd067461a623f747a48ac73d495d50.0",
            b"xyz.b3bd067461a623f747a48ac73d495d50.0",
        ] {
            assert_eq!(
                decode_branch(bad, DEFAULT_TABLE_SIZE, 12),
                None,
                "{:?}",
                bad
            );
        }
    }

    #[test]
    fn local_md5_field_is_random_hex_padded_with_zeros() {
        let f = Md5Field::local(0xc069_99a2);
        assert_eq!(&f.to_hex(), b"c06999a2000000000000000000000000");
    }

    #[test]
    fn hash_ignores_method_and_depends_on_call_id_and_cseq_number() {
        let a = bucket_of(b"abc@host", b"1", DEFAULT_TABLE_SIZE);
        assert_eq!(a, bucket_of(b"abc@host", b"1", DEFAULT_TABLE_SIZE));
        assert!(a < DEFAULT_TABLE_SIZE);
        assert_ne!(a, bucket_of(b"abc@host", b"2", DEFAULT_TABLE_SIZE));
        assert_ne!(a, bucket_of(b"abd@host", b"1", DEFAULT_TABLE_SIZE));
        assert!(bucket_of(b"abc@host", b"1", 16) < 16);
    }

    #[test]
    fn buckets_spread_over_the_table() {
        // Call-IDs that differ only in a digit deep inside a word still land apart.
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let cid = format!("a84b4c76e66710-{i:06}@pc33.atlanta.example.com");
            seen.insert(bucket_of(cid.as_bytes(), b"314159", DEFAULT_TABLE_SIZE));
        }
        assert!(seen.len() > 985, "{} distinct buckets of 1000", seen.len());
        assert_ne!(
            bucket_of(b"ab", b"c", DEFAULT_TABLE_SIZE),
            bucket_of(b"a", b"bc", DEFAULT_TABLE_SIZE)
        );
    }

    #[test]
    fn char_value_is_the_md5_of_the_concatenated_fields() {
        let long = [b'x'; 300];
        for (ruri, via_branch) in [
            (&b"sip:b@x"[..], &b"z9hG4bKabc"[..]),
            (&long[..], &long[..]),
        ] {
            let f = CharValueFields {
                from_tag: b"ft",
                call_id: b"cid",
                ruri,
                cseq_num: b"1",
                via_host: b"10.0.0.1",
                via_port: b"5060",
                via_branch,
                ..Default::default()
            };
            let joined = [
                f.from_tag,
                f.to_tag,
                f.call_id,
                f.ruri,
                f.cseq_num,
                f.via_host,
                f.via_port,
                f.via_branch,
            ]
            .concat();
            assert_eq!(char_value(&f), Md5Field(Md5::digest(&joined).into()));
        }
        // A fixed vector, so the branch text stays what earlier builds produced.
        let f = CharValueFields {
            call_id: b"abc",
            ..Default::default()
        };
        assert_eq!(
            &char_value(&f).to_hex(),
            b"900150983cd24fb0d6963f7d28e17f72"
        );
    }

    /// The same value Kamailio 5.6.3's `char_msg_val` gave for this request (captured on the
    /// wire from its stateless `forward()` on 2026-11-22: `branch=z9hG4bK0041.3b97...e8e.0`).
    #[test]
    fn char_value_equals_kamailios_for_a_captured_request() {
        let f = CharValueFields {
            from_tag: b"ft1",
            to_tag: CharValueFields::hashed_to_tag(b"INVITE", b""),
            call_id: b"cid-77@x",
            ruri: b"sip:bob@127.0.0.1:5981",
            cseq_num: b"5",
            via_host: b"127.0.0.1",
            via_port: b"5983",
            via_branch: b"z9hG4bK-abc-1",
        };
        assert_eq!(
            &char_value(&f).to_hex(),
            b"3b975a861cc01227695a1b6bc0293e8e"
        );
    }

    #[test]
    fn char_value_differs_per_field_and_is_deterministic() {
        let base = CharValueFields {
            from_tag: b"ft",
            call_id: b"cid",
            ruri: b"sip:b@x",
            cseq_num: b"1",
            via_host: b"10.0.0.1",
            via_port: b"5060",
            via_branch: b"z9hG4bKabc",
            ..Default::default()
        };
        let v = char_value(&base);
        assert_eq!(v, char_value(&base));
        assert_ne!(
            v,
            char_value(&CharValueFields {
                via_branch: b"z9hG4bKabd",
                ..base
            })
        );
        assert_ne!(
            v,
            char_value(&CharValueFields {
                to_tag: b"t",
                ..base
            })
        );
    }
}
