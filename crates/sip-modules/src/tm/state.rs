//! A transaction's full state as the engine works on it, and its byte encoding in the
//! cell's state blob (`[n bufs][buf offsets][cell][addresses][branches][saved context]`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sip_script::abi::Value;
use sip_txn::wire::{Reader, WireError, Writer};
use sip_txn::{BufRef, Cell};

/// What tm keeps per branch besides sip-txn's `ClientTx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchHost {
    /// Where the branch's request went.
    pub dst: SocketAddr,
    /// The CANCEL we sent on it (for retransmission).
    pub cancel: BufRef,
}

/// The request context failure_route runs with (spec §5.4): `$ru`/`$du` as first relayed,
/// message flags, branch flags and AVPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub ruri: Option<String>,
    pub du: Option<String>,
    pub flags: u64,
    pub bflags: u64,
    pub avps: Vec<(String, Vec<Value>)>,
}

/// Everything stored for one transaction.
#[derive(Clone, Debug)]
pub struct TxState {
    pub cell: Cell,
    /// Where the request came from.
    pub src: SocketAddr,
    /// Our socket it arrived on.
    pub local: SocketAddr,
    /// Where replies go (RFC 3261 §18.2.2 with received/rport).
    pub upstream: SocketAddr,
    /// `advertise host:port` of the socket it arrived on: the timer process builds
    /// branches (failure_route after a timeout) with it in our Via.
    pub advertise: Option<(String, u16)>,
    pub branches: Vec<BranchHost>,
    pub saved: Saved,
    /// Set when the wait timer deleted the cell (never re-scheduled).
    pub deleted: bool,
    /// Buffers this step replaced: the stored state still lists them, so they are freed
    /// after the new state is stored (not encoded).
    pub retired: Vec<u32>,
}

/// An address: family byte, 4 or 16 address bytes, port.
fn put_addr(w: &mut Writer<'_>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            w.u8(4);
            w.raw(&v4.octets());
        }
        IpAddr::V6(v6) => {
            w.u8(6);
            w.raw(&v6.octets());
        }
    }
    w.u16(a.port());
}

fn get_addr(r: &mut Reader<'_>) -> Result<SocketAddr, WireError> {
    let ip = match r.u8()? {
        4 => {
            let mut o = [0u8; 4];
            o.copy_from_slice(r.take(4)?);
            IpAddr::V4(Ipv4Addr::from(o))
        }
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(r.take(16)?);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return Err(WireError("address family")),
    };
    Ok(SocketAddr::new(ip, r.u16()?))
}

fn put_opt_str(w: &mut Writer<'_>, s: Option<&str>) {
    match s {
        Some(s) => {
            w.u8(1);
            w.bytes(s.as_bytes());
        }
        None => w.u8(0),
    }
}

fn get_str(r: &mut Reader<'_>) -> Result<String, WireError> {
    String::from_utf8(r.bytes()?.to_vec()).map_err(|_| WireError("utf-8"))
}

fn get_opt_str(r: &mut Reader<'_>) -> Result<Option<String>, WireError> {
    match r.u8()? {
        0 => Ok(None),
        1 => get_str(r).map(Some),
        _ => Err(WireError("option tag")),
    }
}

impl TxState {
    /// Every buffer this state owns (freed with the cell).
    pub fn buffers(&self) -> Vec<u32> {
        let c = &self.cell;
        let mut v = vec![c.request, c.e2e_reason, c.server().reply];
        for b in c.branches() {
            v.push(b.request);
            v.push(b.reply);
        }
        v.extend(self.branches.iter().map(|b| b.cancel));
        v.into_iter().filter(|b| b.is_some()).map(|b| b.0).collect()
    }

    /// The state blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let bufs = self.buffers();
        {
            let mut w = Writer::new(&mut out);
            w.u32(bufs.len() as u32);
            for b in &bufs {
                w.u32(*b);
            }
        }
        self.cell.encode(&mut out);
        let mut w = Writer::new(&mut out);
        put_addr(&mut w, self.src);
        put_addr(&mut w, self.local);
        put_addr(&mut w, self.upstream);
        put_opt_str(&mut w, self.advertise.as_ref().map(|(h, _)| h.as_str()));
        w.u16(self.advertise.as_ref().map_or(0, |(_, p)| *p));
        w.u8(self.branches.len() as u8);
        for b in &self.branches {
            put_addr(&mut w, b.dst);
            w.u32(b.cancel.0);
        }
        put_opt_str(&mut w, self.saved.ruri.as_deref());
        put_opt_str(&mut w, self.saved.du.as_deref());
        w.u64(self.saved.flags);
        w.u64(self.saved.bflags);
        w.u32(self.saved.avps.len() as u32);
        for (name, vals) in &self.saved.avps {
            w.bytes(name.as_bytes());
            w.u32(vals.len() as u32);
            for v in vals {
                match v {
                    Value::Null => w.u8(0),
                    Value::Int(i) => {
                        w.u8(1);
                        w.u64(*i as u64);
                    }
                    Value::Str(s) => {
                        w.u8(2);
                        w.bytes(s.as_bytes());
                    }
                }
            }
        }
        w.u8(u8::from(self.deleted));
        out
    }

    /// Decodes a state blob, validating everything.
    pub fn decode(blob: &[u8]) -> Result<TxState, WireError> {
        let mut r = Reader::new(blob);
        let n = r.u32()? as usize;
        r.take(n.checked_mul(4).ok_or(WireError("buffer count"))?)?;
        let (cell, rest) = Cell::decode(r.remaining())?;
        let mut r = Reader::new(rest);
        let src = get_addr(&mut r)?;
        let local = get_addr(&mut r)?;
        let upstream = get_addr(&mut r)?;
        let adv_host = get_opt_str(&mut r)?;
        let adv_port = r.u16()?;
        let advertise = adv_host.map(|h| (h, adv_port));
        let nb = r.u8()?;
        if usize::from(nb) != cell.branches().len() {
            return Err(WireError("branch host count"));
        }
        let mut branches = Vec::with_capacity(usize::from(nb));
        for _ in 0..nb {
            branches.push(BranchHost {
                dst: get_addr(&mut r)?,
                cancel: BufRef(r.u32()?),
            });
        }
        let ruri = get_opt_str(&mut r)?;
        let du = get_opt_str(&mut r)?;
        let flags = r.u64()?;
        let bflags = r.u64()?;
        let na = r.u32()?.min(4096);
        let mut avps = Vec::new();
        for _ in 0..na {
            let name = get_str(&mut r)?;
            let nv = r.u32()?.min(4096);
            let mut vals = Vec::new();
            for _ in 0..nv {
                vals.push(match r.u8()? {
                    0 => Value::Null,
                    1 => Value::Int(r.u64()? as i64),
                    2 => Value::Str(get_str(&mut r)?),
                    _ => return Err(WireError("avp value tag")),
                });
            }
            avps.push((name, vals));
        }
        let deleted = r.u8()? != 0;
        Ok(TxState {
            cell,
            src,
            local,
            upstream,
            advertise,
            branches,
            saved: Saved {
                ruri,
                du,
                flags,
                bflags,
                avps,
            },
            deleted,
            retired: Vec::new(),
        })
    }
}
