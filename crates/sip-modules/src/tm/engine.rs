//! The tm engine: drives sip-txn cells stored in the shm [`Table`] from script functions,
//! the reply hook, the end-of-script hook and the timer process, and performs the cells'
//! [`Action`]s (sends, stored buffers, failure_route runs).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sip_msg::build::{ReplyOpts, build_ack, build_cancel, build_reply};
use sip_msg::{EditList, Message, Method as MsgMethod};
use sip_script::abi::{
    Ctx, LocalSocket, LogLevel, Proto, RouteId as ScriptRouteId, RouteKind, SerError, Source,
};
use sip_txn::{
    Action, ActionList, BufRef, Cell, LocalReason, MatchConfig, Method, Millis, RouteId, TmConfig,
    TxError, WaitExtension, char_value, encode_branch,
};

use super::key::OwnedKey;
use super::state::{BranchHost, Saved, TxState};
use super::table::{CellRef, Lookup, Mirror, NewCell, Stat, StateRef, Table, TableError};
use crate::core::forward::{self, DEFAULT_PORT, Destination, md5_hex, uri_destination};
use crate::util::Decimal;

/// Module configuration + the table handle (process-wide, in the runtime).
#[derive(Debug)]
pub struct Tm {
    pub table: Option<Table>,
    pub cfg: TmConfig,
    pub mcfg: MatchConfig,
    pub auto_inv_100: bool,
    pub auto_inv_100_reason: String,
    /// `dialect=opensips`: `100 Giving it a try` sent at t_newtran.
    pub opensips_100: bool,
    /// What t_relay does with a CANCEL whose INVITE is unknown (spec §4.1).
    pub unmatched_cancel: UnmatchedCancel,
}

/// `unmatched_cancel`: a CANCEL with no INVITE transaction is relayed statefully like
/// any request (0, default), forwarded statelessly (1) or dropped silently (2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnmatchedCancel {
    #[default]
    Stateful,
    Stateless,
    Drop,
}

impl UnmatchedCancel {
    /// The modparam value (unknown values keep the default).
    pub fn from_param(v: Option<i64>) -> UnmatchedCancel {
        match v {
            Some(1) => UnmatchedCancel::Stateless,
            Some(2) => UnmatchedCancel::Drop,
            _ => UnmatchedCancel::Stateful,
        }
    }
}

/// The reply `$T_reply_code`/`$T_reply_reason`/`$T_branch_idx` show.
#[derive(Clone, Debug, Default)]
pub struct ReplyInfo {
    pub code: u16,
    pub reason: String,
    pub branch: i64,
}

/// Per-message tm data (Kamailio's `T` and friends), in `Ctx::msg_data`.
#[derive(Default)]
pub struct TmMsg {
    /// The message's transaction (a counted reference).
    pub cell: Option<CellRef>,
    /// The transaction's state while this process holds its lock and runs a route for
    /// it (onreply/failure route): nested tm calls work on it directly.
    pub active: Option<Box<TxState>>,
    /// The transaction was created for this message.
    pub created: bool,
    /// t_relay/t_reply happened for it.
    pub handled: bool,
    /// Error reply to send at end of script (§2.8).
    pub delayed_error: Option<(u16, String)>,
    pub reply: Option<ReplyInfo>,
    /// The transaction was abandoned (shm exhausted while its state grew): a delayed
    /// error reply goes out statelessly.
    pub abandoned: bool,
    /// `$T_branch_idx` while branch_route runs for a branch being created.
    pub branch_idx: Option<i64>,
    /// Routes armed before the transaction existed.
    pub pending_failure: Option<RouteId>,
    pub pending_reply: Option<RouteId>,
    pub pending_branch: Option<RouteId>,
    /// `t_set_fr`/`t_set_retr`/`t_reset_fr` called before the transaction existed
    /// (Kamailio keeps them per message and applies them when the cell is created).
    pub pending_timers: TimerOverrides,
}

/// Per-transaction timer values a script set (ms as given, rounded when applied); `None`
/// keeps the configured value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerOverrides {
    pub fr_inv: Option<u32>,
    pub fr: Option<u32>,
    pub t1: Option<u32>,
    pub t2: Option<u32>,
}

impl TimerOverrides {
    /// Applies the set values to `t`, rounded up to `cfg`'s timer ticks as Kamailio arms
    /// them.
    pub fn apply(&self, t: &mut sip_txn::TimerValues, cfg: &TmConfig) {
        let set = |slot: &mut u32, v: Option<u32>| {
            if let Some(v) = v {
                *slot = cfg.round(v);
            }
        };
        set(&mut t.fr_inv, self.fr_inv);
        set(&mut t.fr, self.fr);
        set(&mut t.t1, self.t1);
        set(&mut t.t2, self.t2);
    }
}

/// Script route ids ↔ sip-txn's compact ids (index + 1; 0 = none).
pub fn txn_route(id: ScriptRouteId) -> RouteId {
    RouteId(u16::try_from(id.index + 1).unwrap_or(0))
}

pub fn script_route(kind: RouteKind, id: RouteId) -> Option<ScriptRouteId> {
    id.is_some().then(|| ScriptRouteId {
        kind,
        index: u32::from(id.0) - 1,
    })
}

pub fn tm_of(ctx: &Ctx<'_>) -> Option<Arc<Tm>> {
    ctx.module_state::<Arc<Tm>>().cloned()
}

fn now(ctx: &Ctx<'_>) -> Millis {
    Millis(ctx.host.now().0)
}

/// The To-tag of tm's local replies: `<32 hex>-<8 hex>` (K: SER-TM tags), stable per
/// transaction so every local reply and the ACK matching use the same one.
pub fn local_to_tag(md5: sip_txn::Md5Field) -> String {
    let hex = md5.to_hex();
    let mut tag = md5_hex(&[b"siplab-tm"]);
    tag.push('-');
    tag.push_str(std::str::from_utf8(&hex[..8]).unwrap_or("00000000"));
    tag
}

/// RFC 3261 §18.2.2 over UDP: the source IP, and the source port when the Via asked for
/// rport, else the sent-by port.
pub fn upstream_of(msg: &Message, src: SocketAddr) -> SocketAddr {
    match msg.top_via() {
        Ok(v) if v.rport().is_none() => SocketAddr::new(src.ip(), v.port.unwrap_or(DEFAULT_PORT)),
        _ => src,
    }
}

fn resolve(ctx: &mut Ctx<'_>, d: &Destination) -> Option<SocketAddr> {
    let ip: IpAddr = match d.ip() {
        Some(ip) => ip,
        None => ctx.host.resolve(&d.host).into_iter().next()?,
    };
    (!forward::is_forbidden_destination(ip)).then(|| SocketAddr::new(ip, d.port))
}

fn source_of(st: &TxState) -> Source {
    Source {
        addr: st.src,
        proto: Proto::Udp,
        local: LocalSocket {
            addr: st.local,
            proto: Proto::Udp,
            advertise: st.advertise.clone(),
        },
    }
}

fn mirror(st: &TxState) -> Mirror {
    Mirror {
        uas_status: st.cell.uas_status(),
        nr_branches: st.cell.branches().len() as u8,
        cancel_sent: st.cell.reply_candidate().cancel_sent,
        locally_replied: st.cell.server().locally_replied(),
    }
}

/// Writes the state back and (re)schedules its next deadline; buffers the step replaced
/// are freed only now that the new state no longer lists them. When the state cannot be
/// stored the cell is abandoned ([`abandon`]) and the error returned.
pub(crate) fn save(
    table: &Table,
    cell: &CellRef,
    g: &mut StateRef,
    st: &mut TxState,
) -> Result<(), TableError> {
    if let Err(e) = cell.store(g, &st.encode(), &mirror(st)) {
        if e.is_exhausted() {
            table.count(Stat::ShmExhausted, 1);
        }
        abandon(table, cell, g, st);
        return Err(e);
    }
    for b in st.retired.drain(..) {
        table.free_buf(b);
    }
    if !st.deleted {
        if let Some(d) = st.cell.next_deadline() {
            table.schedule(cell, d.0)?;
        }
    }
    Ok(())
}

/// The state can no longer be kept (shm ran out while it grew). The cell must still free
/// every buffer it owns: its blob becomes their list alone, which no longer decodes, so
/// every process treats the cell as dead; it is unlinked and freed with its last
/// reference. Without room even for the list, the state is unpublished first (a crash
/// then leaks instead of double-freeing) and everything is freed here.
fn abandon(table: &Table, cell: &CellRef, g: &mut StateRef, st: &mut TxState) {
    let bufs = st.buffers();
    let mut list = Vec::with_capacity(4 + 4 * bufs.len());
    {
        let mut w = sip_txn::wire::Writer::new(&mut list);
        w.u32(bufs.len() as u32);
        for b in &bufs {
            w.u32(*b);
        }
    }
    if cell.store(g, &list, &mirror(st)).is_err() {
        let old = cell.clear_state(g);
        if old != 0 {
            table.free_buf(old);
        }
        for b in bufs {
            table.free_buf(b);
        }
    }
    for b in st.retired.drain(..) {
        table.free_buf(b);
    }
    cell.mark_dead();
    let _ = table.unlink(cell);
}

fn load(cell: &CellRef, g: &StateRef) -> Option<TxState> {
    let blob = cell.load(g).ok()?;
    match TxState::decode(&blob) {
        Ok(st) => Some(st),
        Err(_) => {
            // Corruption (the blob is replaced whole, so not a crashed writer): never act on
            // it again (its memory leaks rather than risking a double free).
            cell.mark_dead();
            let _ = cell.table().unlink(cell);
            None
        }
    }
}

/// Takes a cell's reply lock and loads its state. When the previous holder died mid-step
/// the published state is still whole (see [`CellRef::store`]) but what it mirrored for
/// matching may be ahead of it and its deadline may be off the wheel: both are redone
/// from the state. `None` when the lock fails or the cell is dead.
pub fn lock_state(cell: &CellRef) -> Option<(sip_shm::ShmGuard<'static, StateRef>, TxState)> {
    let (g, died) = cell.lock().ok()?;
    let st = load(cell, &g)?;
    if died {
        let _ = cell.publish(&mirror(&st));
        if !st.deleted {
            if let Some(d) = st.cell.next_deadline() {
                let _ = cell.table().schedule(cell, d.0);
            }
        }
    }
    Some((g, st))
}

fn count_final(table: &Table, code: u16) {
    let s = match code / 100 {
        2 => Stat::C2xx,
        3 => Stat::C3xx,
        4 => Stat::C4xx,
        5 => Stat::C5xx,
        6 => Stat::C6xx,
        _ => return,
    };
    table.count(s, 1);
}

fn read_msg(table: &Table, buf: BufRef) -> Option<Message> {
    if !buf.is_some() {
        return None;
    }
    Message::parse(table.read_buf(buf.0).ok()?).ok()
}

/// A branch request as stored: a delta against the transaction's stored request, as
/// `[u32 n]` then `n` × `[u32 copy][u32 skip][u32 len][len literal bytes]` (copy `copy`
/// bytes of the base, skip `skip`, insert the literal), then the rest of the base. Our
/// Via, the R-URI and the received/rport parameters are usually all that differ, so a
/// branch costs ~100 bytes of shm instead of a second copy of the request. Valid because
/// the stored request never changes once a branch exists.
pub fn branch_delta(base: &[u8], full: &[u8]) -> Vec<u8> {
    let common = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let prefix = common(base, full);
    let room = base.len().min(full.len()) - prefix;
    let suffix = base
        .iter()
        .rev()
        .zip(full.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    let bm = &base[prefix..base.len() - suffix];
    let fm = &full[prefix..full.len() - suffix];
    let mut out = Vec::with_capacity(32 + fm.len());
    let mut op = |copy: usize, skip: usize, lit: &[u8]| {
        for v in [copy, skip, lit.len()] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(lit);
    };
    // An insertion followed by a change (our Via before the received one, whose
    // parameters grew): the base resumes inside the changed part.
    const ANCHOR: usize = 8;
    let resume = bm
        .get(..ANCHOR)
        .and_then(|a| fm.windows(ANCHOR).position(|w| w == a));
    let n: u32 = if resume.is_some() { 2 } else { 1 };
    let mut head = n.to_le_bytes().to_vec();
    match resume {
        Some(j) => {
            let c = common(bm, &fm[j..]);
            op(prefix, 0, &fm[..j]);
            op(c, bm.len() - c, &fm[j + c..]);
        }
        None => op(prefix, bm.len(), fm),
    }
    head.extend_from_slice(&out);
    head
}

/// The request [`branch_delta`] encoded; `None` when the delta does not fit `base`.
pub fn apply_branch_delta(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    fn word(delta: &[u8], at: &mut usize) -> Option<usize> {
        let b: [u8; 4] = delta.get(*at..*at + 4)?.try_into().ok()?;
        *at += 4;
        Some(u32::from_le_bytes(b) as usize)
    }
    let mut at = 0usize;
    let n = word(delta, &mut at)?;
    if n > 16 {
        return None;
    }
    let mut out = Vec::with_capacity(base.len() + 128);
    let mut cursor = 0usize;
    for _ in 0..n {
        let (copy, skip, len) = (
            word(delta, &mut at)?,
            word(delta, &mut at)?,
            word(delta, &mut at)?,
        );
        out.extend_from_slice(base.get(cursor..cursor.checked_add(copy)?)?);
        cursor = cursor.checked_add(copy)?.checked_add(skip)?;
        out.extend_from_slice(delta.get(at..at.checked_add(len)?)?);
        at += len;
    }
    out.extend_from_slice(base.get(cursor..)?);
    (at == delta.len()).then_some(out)
}

/// The request sent on `branch`, rebuilt from the stored request and the branch's delta.
pub fn branch_request(table: &Table, st: &TxState, branch: u8) -> Option<Vec<u8>> {
    let b = st.cell.branch(branch)?;
    if !b.request.is_some() || !st.cell.request.is_some() {
        return None;
    }
    let base = table.read_buf(st.cell.request.0).ok()?;
    let delta = table.read_buf(b.request.0).ok()?;
    apply_branch_delta(&base, &delta)
}

/// Replaces `slot` by a new buffer holding `bytes`; the old one is retired (freed once the
/// state that no longer lists it is stored).
fn replace_buf(table: &Table, slot: &mut BufRef, bytes: &[u8], retired: &mut Vec<u32>) {
    if let Ok(off) = table.alloc_buf(bytes) {
        if slot.is_some() {
            retired.push(slot.0);
        }
        *slot = BufRef(off);
    } else {
        table.count(Stat::ShmExhausted, 1);
    }
}

/// The reply being processed when actions run from the reply hook.
pub struct CurReply<'r> {
    pub branch: u8,
    /// The reply as received (for the hop-by-hop ACK's To).
    pub msg: &'r Message,
    /// The bytes to relay: onreply_route edits applied, top Via removed.
    pub relay: Vec<u8>,
}

/// Performs `actions` on `st` (and every follow-up a failure_route run produces).
#[allow(clippy::too_many_arguments)]
pub fn exec(
    ctx: &mut Ctx<'_>,
    tm: &Tm,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    actions: &ActionList,
    cur: Option<&CurReply<'_>>,
    script_reason: Option<&str>,
) {
    let mut queue: Vec<Action> = actions.iter().copied().collect();
    let mut i = 0;
    while i < queue.len() {
        let a = queue[i];
        i += 1;
        match a {
            Action::SendAck { branch } => send_ack(ctx, table, st, branch, cur),
            Action::SendCancel { branch, reason } => {
                send_cancel(ctx, table, cell, st, branch, reason);
            }
            Action::RetransmitRequest { branch } => {
                if let (Some(bytes), Some(h)) = (
                    branch_request(table, st, branch),
                    st.branches.get(usize::from(branch)),
                ) {
                    if let Err(e) = ctx.host.send(Proto::Udp, h.dst, &bytes) {
                        ctx.log(LogLevel::Err, "tm", &format!("retransmission failed: {e}"));
                    }
                }
            }
            Action::RetransmitCancel { branch } => {
                if let Some(h) = st.branches.get(usize::from(branch)).copied() {
                    send_buf(ctx, table, h.cancel, h.dst);
                }
            }
            Action::RetransmitReply => {
                let up = st.upstream;
                send_buf(ctx, table, st.cell.server().reply, up);
            }
            Action::RelayAggregated {
                code, challenges, ..
            } => relay_aggregated(ctx, table, cell, st, code, challenges, cur),
            Action::Relay { branch, code } => {
                let bytes = match cur {
                    Some(c) if c.branch == branch => Some(c.relay.clone()),
                    _ => st
                        .cell
                        .branch(branch)
                        .map(|b| b.reply)
                        .filter(|r| r.is_some())
                        .and_then(|r| table.read_buf(r.0).ok()),
                };
                if let Some(bytes) = bytes {
                    send_upstream(ctx, table, cell, st, &bytes, code);
                }
            }
            Action::LocalReply { code, reason } => {
                let text = match reason {
                    LocalReason::Script => script_reason.unwrap_or("").to_string(),
                    other => other.phrase().to_string(),
                };
                local_reply(ctx, tm, table, cell, st, code, &text);
            }
            Action::Store { branch } => {
                if let Some(c) = cur.filter(|c| c.branch == branch) {
                    if let Some(b) = st.cell.branch_mut(branch) {
                        let mut slot = b.reply;
                        replace_buf(table, &mut slot, &c.relay, &mut st.retired);
                        b.reply = slot;
                    }
                }
            }
            Action::Discard => {}
            Action::RunFailureRoute {
                route,
                branch,
                code,
            } => {
                run_failure_route(ctx, tm, table, cell, st, route, branch, code, cur);
                let more = st.cell.failure_route_finished(now(ctx), &tm.cfg);
                queue.extend(more.iter().copied());
            }
            Action::Delete => {
                // The timer holds the wheel's reference and the list owns one; any other
                // is a worker still busy with the cell: wait another period, up to
                // TM_LIFETIME_LIMIT, then unlink anyway (Kamailio `wait_handler`).
                let busy = cell.is_linked() && cell.ref_count() > 2;
                if busy && st.cell.extend_wait(now(ctx)) == WaitExtension::Rearmed {
                    ctx.log(
                        LogLevel::Dbg,
                        "tm",
                        "wait timer: transaction still referenced, re-armed",
                    );
                    continue;
                }
                if busy {
                    ctx.log(
                        LogLevel::Warn,
                        "tm",
                        "wait timer: transaction referenced for too long, unlinked",
                    );
                }
                st.deleted = true;
                let _ = table.unlink(cell);
            }
        }
    }
}

fn send_buf(ctx: &mut Ctx<'_>, table: &Table, buf: BufRef, dst: SocketAddr) {
    if !buf.is_some() {
        return;
    }
    if let Ok(bytes) = table.read_buf(buf.0) {
        if let Err(e) = ctx.host.send(Proto::Udp, dst, &bytes) {
            ctx.log(LogLevel::Err, "tm", &format!("retransmission failed: {e}"));
        }
    }
}

fn send_upstream(
    ctx: &mut Ctx<'_>,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    bytes: &[u8],
    code: u16,
) {
    let _ = cell.publish(&mirror(st));
    let up = st.upstream;
    match ctx.host.send(Proto::Udp, up, bytes) {
        Ok(()) => {
            table.count(Stat::RplSent, 1);
            count_final(table, code);
        }
        Err(e) => ctx.log(LogLevel::Err, "tm", &format!("reply not sent: {e}")),
    }
    let mut slot = st.cell.server().reply;
    replace_buf(table, &mut slot, bytes, &mut st.retired);
    st.cell.set_uas_reply(slot);
}

/// Builds and sends a local reply from the stored request (100 trying, 408, 500, t_reply).
fn local_reply(
    ctx: &mut Ctx<'_>,
    _tm: &Tm,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    code: u16,
    reason: &str,
) {
    let Some(req) = read_msg(table, st.cell.request) else {
        ctx.log(
            LogLevel::Err,
            "tm",
            "local reply: stored request unreadable",
        );
        return;
    };
    let tag = local_to_tag(st.cell.md5);
    let opts = ReplyOpts {
        to_tag: Some(tag.as_bytes()),
        server: Some(crate::sl::DEFAULT_SERVER.as_bytes()),
        record_route: (180..300).contains(&code),
        extra_headers: &[],
    };
    let bytes = build_reply(&req, code, reason.as_bytes(), &opts);
    table.count(Stat::RplGenerated, 1);
    send_upstream(ctx, table, cell, st, &bytes, code);
}

/// The reply `branch` received as it would be relayed (the current one, or the stored one).
fn branch_reply(
    table: &Table,
    st: &TxState,
    branch: u8,
    cur: Option<&CurReply<'_>>,
) -> Option<Vec<u8>> {
    match cur {
        Some(c) if c.branch == branch => Some(c.relay.clone()),
        _ => st
            .cell
            .branch(branch)
            .map(|b| b.reply)
            .filter(|r| r.is_some())
            .and_then(|r| table.read_buf(r.0).ok()),
    }
}

/// `aggregate_challenges` (spec §5.3): more than one branch answered 401/407, so the
/// reply upstream is a local 401/407 (the winner's code, its standard phrase, tm's
/// To-tag) carrying every branch's WWW-Authenticate and Proxy-Authenticate headers in
/// branch order (Kamailio `reply_aggregate_auth`).
fn relay_aggregated(
    ctx: &mut Ctx<'_>,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    code: u16,
    challenges: u32,
    cur: Option<&CurReply<'_>>,
) {
    let Some(req) = read_msg(table, st.cell.request) else {
        ctx.log(
            LogLevel::Err,
            "tm",
            "aggregated reply: stored request unreadable",
        );
        return;
    };
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for i in (0..sip_txn::CELL_BRANCHES as u8).filter(|i| challenges & (1 << i) != 0) {
        let Some(reply) = branch_reply(table, st, i, cur).and_then(|b| Message::parse(b).ok())
        else {
            continue;
        };
        for h in reply.headers() {
            let name = reply.slice(h.name_span);
            if name.eq_ignore_ascii_case(b"WWW-Authenticate")
                || name.eq_ignore_ascii_case(b"Proxy-Authenticate")
            {
                let line = sip_msg::Span {
                    start: h.line.start,
                    end: h.value.end,
                };
                lines.push(reply.slice(line).to_vec());
            }
        }
    }
    let extra: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let tag = local_to_tag(st.cell.md5);
    let opts = ReplyOpts {
        to_tag: Some(tag.as_bytes()),
        server: Some(crate::sl::DEFAULT_SERVER.as_bytes()),
        record_route: false,
        extra_headers: &extra,
    };
    let reason: &[u8] = if code == 407 {
        b"Proxy Authentication Required"
    } else {
        b"Unauthorized"
    };
    let bytes = build_reply(&req, code, reason, &opts);
    table.count(Stat::RplGenerated, 1);
    send_upstream(ctx, table, cell, st, &bytes, code);
}

fn send_ack(
    ctx: &mut Ctx<'_>,
    table: &Table,
    st: &TxState,
    branch: u8,
    cur: Option<&CurReply<'_>>,
) {
    let (Some(c), Some(h)) = (cur, st.branches.get(usize::from(branch))) else {
        return;
    };
    let Some(invite) = branch_request(table, st, branch).and_then(|b| Message::parse(b).ok())
    else {
        return;
    };
    if let Ok(ack) = build_ack(&invite, c.msg) {
        let _ = ctx.host.send(Proto::Udp, h.dst, &ack);
    }
}

fn send_cancel(
    ctx: &mut Ctx<'_>,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    branch: u8,
    reason: sip_txn::CancelReason,
) {
    let Some(h) = st.branches.get(usize::from(branch)).copied() else {
        return;
    };
    let Some(invite) = branch_request(table, st, branch).and_then(|b| Message::parse(b).ok())
    else {
        return;
    };
    let mut lines: Vec<Vec<u8>> = Vec::new();
    match reason {
        sip_txn::CancelReason::Cause(_) => lines.push(reason.to_string().into_bytes()),
        sip_txn::CancelReason::CopyReceived => {
            if let Ok(text) = table.read_buf(st.cell.e2e_reason.0) {
                lines.extend(
                    text.split(|b| *b == b'\n')
                        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                        .filter(|l| !l.is_empty()),
                );
            }
        }
        sip_txn::CancelReason::None => {}
    }
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let Ok(cancel) = build_cancel(&invite, &refs) else {
        return;
    };
    let _ = cell.publish_cancel(branch);
    let _ = ctx.host.send(Proto::Udp, h.dst, &cancel);
    if let Some(hh) = st.branches.get_mut(usize::from(branch)) {
        let mut slot = hh.cancel;
        replace_buf(table, &mut slot, &cancel, &mut st.retired);
        hh.cancel = slot;
    }
}

/// Runs failure_route `route` for the winning `branch` in the request's context restored
/// from the transaction (spec §5.4).
#[allow(clippy::too_many_arguments)]
fn run_failure_route(
    ctx: &mut Ctx<'_>,
    tm: &Tm,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    route: RouteId,
    branch: u8,
    code: u16,
    cur: Option<&CurReply<'_>>,
) {
    let Some(id) = script_route(RouteKind::Failure, route) else {
        return;
    };
    let Some(base) = read_msg(table, st.cell.request) else {
        return;
    };
    let reason = match cur {
        Some(c) if c.branch == branch => {
            String::from_utf8_lossy(c.msg.reason_phrase().unwrap_or_default()).into_owned()
        }
        _ => st
            .cell
            .branch(branch)
            .filter(|b| b.reply.is_some())
            .and_then(|b| read_msg(table, b.reply))
            .map(|m| String::from_utf8_lossy(m.reason_phrase().unwrap_or_default()).into_owned())
            .unwrap_or_else(|| {
                if code == 487 {
                    LocalReason::RequestTerminated.phrase().to_string()
                } else {
                    LocalReason::RequestTimeout.phrase().to_string()
                }
            }),
    };
    let bflags = st.cell.branch(branch).map_or(0, |b| u64::from(b.bflags));
    let saved = st.saved.clone();
    let taken = std::mem::replace(st, placeholder(st));
    let cell_ref = cell.clone_ref().ok();
    let (outcome, back, avps) = {
        let mut child = ctx.child(&base, source_of(&taken), RouteKind::Failure);
        child.orig_ruri = saved.ruri.clone();
        child.dst_uri = saved.du.clone();
        child.flags = saved.flags;
        child.bflags = bflags;
        child.avps = avp_store(&saved.avps);
        {
            let m = child.msg_data_mut::<TmMsg>();
            m.active = Some(Box::new(taken));
            m.cell = cell_ref;
            m.reply = Some(ReplyInfo {
                code,
                reason,
                branch: i64::from(branch),
            });
        }
        let out = child.run_route(id);
        let avps = saved_avps(&child.avps);
        let flags = child.flags;
        let m = child.msg_data_mut::<TmMsg>();
        (out, m.active.take(), (avps, flags))
    };
    if let Some(b) = back {
        *st = *b;
    }
    // Kamailio copies the faked request's flags and AVPs back into the transaction.
    st.saved.avps = avps.0;
    set_flags(st, avps.1);
    if let sip_script::Outcome::Error(e) = outcome {
        ctx.log(LogLevel::Err, "tm", &format!("failure_route: {e}"));
    }
    let _ = tm;
}

/// Saves message flags a transaction route changed (Kamailio copies them back into the
/// stored request).
fn set_flags(st: &mut TxState, flags: u64) {
    st.saved.flags = flags;
    st.cell.msg_flags = flags as u32;
}

/// The transaction's AVPs as a script AVP store.
fn avp_store(avps: &[(String, Vec<sip_script::abi::Value>)]) -> sip_script::abi::AvpStore {
    let mut store = sip_script::abi::AvpStore::new();
    for (name, vals) in avps {
        // `push` adds on top: push the oldest first so the order survives.
        for v in vals.iter().rev() {
            store.push(name, v.clone());
        }
    }
    store
}

/// A script AVP store in the transaction's form.
fn saved_avps(store: &sip_script::abi::AvpStore) -> Vec<(String, Vec<sip_script::abi::Value>)> {
    store
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect()
}

/// A throwaway state to swap in while the real one is lent to a route run.
fn placeholder(st: &TxState) -> TxState {
    TxState {
        cell: st.cell,
        src: st.src,
        local: st.local,
        upstream: st.upstream,
        advertise: None,
        branches: Vec::new(),
        saved: Saved::default(),
        deleted: st.deleted,
        retired: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Branch creation

/// Builds one branch of the current request and adds it to the cell: `$du` (else the
/// R-URI) as destination, the message's edits, received/rport on the received Via and our
/// Via with the branch that encodes bucket and branch number.
pub fn add_branch(
    ctx: &mut Ctx<'_>,
    tm: &Tm,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    ruri: &str,
    du: Option<&str>,
) -> Result<u8, (u16, String)> {
    let idx = st.cell.branches().len() as u8;
    let routed = match script_route(RouteKind::Branch, st.cell.branch_route()) {
        Some(route) => run_branch_route(ctx, cell, st, route, idx, ruri, du),
        None => Some(BranchPlan {
            ruri: ruri.to_string(),
            du: du.map(str::to_string),
            edits: ctx.edits.clone(),
            bflags: ctx.bflags,
        }),
    };
    let Some(plan) = routed else {
        return Err((500, BRANCH_DROPPED.to_string()));
    };
    let (ruri, du) = (plan.ruri.as_str(), plan.du.as_deref());
    let target = du.unwrap_or(ruri);
    let dst = uri_destination(target.as_bytes())
        .map_err(|e| (e.status(), e.reason_phrase().to_string()))?;
    let addr = resolve(ctx, &dst).ok_or((478, "Unresolvable destination".to_string()))?;
    let param = encode_branch(st.cell.bucket, st.cell.md5, idx);
    let (host, port) = ctx.src.local.public();
    let via = format!(
        "SIP/2.0/UDP {host}:{port};branch={}",
        String::from_utf8_lossy(param.as_bytes())
    );
    let mut edits: EditList = plan.edits;
    if ruri.as_bytes() != ctx.msg.request_uri_bytes().unwrap_or_default() {
        edits.set_request_uri(ruri.as_bytes());
    }
    let src = forward::Source {
        ip: ctx.src.addr.ip(),
        port: ctx.src.addr.port(),
    };
    forward::fix_top_via(ctx.msg, src, ctx.force_rport, &mut edits);
    edits.prepend_via(via.as_bytes());
    let bytes = ctx.msg.to_bytes(&edits);
    let base = table
        .read_buf(st.cell.request.0)
        .map_err(|_| (500, "stored request unreadable".to_string()))?;
    let buf = table.alloc_buf(&branch_delta(&base, &bytes)).map_err(|e| {
        if e.is_exhausted() {
            table.count(Stat::ShmExhausted, 1);
        }
        (500, "No shared memory".to_string())
    })?;
    let n = now(ctx);
    match st.cell.add_branch(BufRef(buf), false, n, &tm.cfg) {
        Ok(i) => {
            if let Some(b) = st.cell.branch_mut(i) {
                b.bflags = plan.bflags as u32;
            }
            st.branches.push(BranchHost {
                dst: addr,
                cancel: BufRef::NONE,
            });
            let _ = cell.publish_branches(i + 1);
            if let Err(e) = ctx.host.send(Proto::Udp, addr, &bytes) {
                ctx.log(LogLevel::Err, "tm", &format!("branch not sent: {e}"));
            }
            Ok(i)
        }
        Err(e) => {
            table.free_buf(buf);
            let (code, reason) = e.sip_reply().unwrap_or((500, "Server Internal Error"));
            Err((code, reason.to_string()))
        }
    }
}

/// The reason of the error a t_relay that created no branch because branch_route dropped
/// them all answers with.
pub const BRANCH_DROPPED: &str = "Branch dropped in branch_route";

/// What one branch is built from: `$ru`, `$du`, the edit list and branch flags, after
/// branch_route (if armed) had its say.
struct BranchPlan {
    ruri: String,
    du: Option<String>,
    edits: EditList,
    bflags: u64,
}

/// Runs branch_route `route` for the branch about to become `idx` (spec §5.5): `$ru`,
/// `$du`, header edits and branch flags changed there apply to this branch only, so the
/// context is restored afterwards. `None` when the route executed `drop`.
#[allow(clippy::too_many_arguments)]
fn run_branch_route(
    ctx: &mut Ctx<'_>,
    cell: &CellRef,
    st: &mut TxState,
    route: ScriptRouteId,
    idx: u8,
    ruri: &str,
    du: Option<&str>,
) -> Option<BranchPlan> {
    let saved = (
        ctx.edits.clone(),
        ctx.new_ruri.take(),
        ctx.dst_uri.take(),
        ctx.bflags,
        ctx.drop,
        ctx.route_kind,
    );
    ctx.new_ruri = Some(ruri.to_string());
    ctx.dst_uri = du.map(str::to_string);
    ctx.drop = false;
    {
        // tm functions called from the route work on this transaction's state.
        let m = ctx.msg_data_mut::<TmMsg>();
        let lent = std::mem::replace(st, placeholder(st));
        m.active = Some(Box::new(lent));
        if m.cell.is_none() {
            m.cell = cell.clone_ref().ok();
        }
        m.branch_idx = Some(i64::from(idx));
    }
    let out = ctx.run_route(route);
    {
        let m = ctx.msg_data_mut::<TmMsg>();
        if let Some(b) = m.active.take() {
            *st = *b;
        }
        m.branch_idx = None;
    }
    if let sip_script::Outcome::Error(e) = &out {
        ctx.log(LogLevel::Err, "tm", &format!("branch_route: {e}"));
    }
    let dropped = ctx.drop || out.is_drop();
    let plan = BranchPlan {
        ruri: ctx.ruri().into_owned(),
        du: ctx.dst_uri.clone(),
        edits: std::mem::replace(&mut ctx.edits, saved.0),
        bflags: ctx.bflags,
    };
    ctx.new_ruri = saved.1;
    ctx.dst_uri = saved.2;
    ctx.bflags = saved.3;
    ctx.drop = saved.4;
    ctx.route_kind = saved.5;
    (!dropped).then_some(plan)
}

/// Relays the current request on every destination (`$du`/`$ru` + appended branches).
/// Returns the number of branches created or the error of the first failure.
pub fn relay_all(
    ctx: &mut Ctx<'_>,
    tm: &Tm,
    table: &Table,
    cell: &CellRef,
    st: &mut TxState,
    host_port: Option<(String, u16)>,
) -> Result<usize, (u16, String)> {
    if st.cell.is_canceled() {
        return Err(TxError::Canceled
            .sip_reply()
            .map(|(c, r)| (c, r.to_string()))
            .unwrap_or((487, "Transaction canceled".into())));
    }
    let ruri = ctx.ruri().into_owned();
    let du = match host_port {
        Some((h, p)) => Some(format!("sip:{h}:{p}")),
        None => ctx.dst_uri.clone(),
    };
    let mut targets = vec![(ruri, du)];
    for b in ctx.branches.clone() {
        targets.push((b.uri, b.dst_uri));
    }
    let mut created = 0;
    let mut first_err = None;
    for (ru, du) in targets {
        match add_branch(ctx, tm, table, cell, st, &ru, du.as_deref()) {
            Ok(_) => created += 1,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (created, first_err) {
        (0, Some(e)) => Err(e),
        (n, _) => Ok(n),
    }
}

// ---------------------------------------------------------------------------------------
// Lookup / create

/// `t_newtran` and the creating half of `t_relay`.
pub enum Got {
    /// A transaction for this message (new or this message's own).
    Tx { fresh: bool },
    /// A retransmission: the last reply was re-sent; stop here.
    Retransmission,
    /// The ACK to our negative final was absorbed.
    AckAbsorbed,
}

fn saved_of(ctx: &Ctx<'_>) -> Saved {
    // An unchanged R-URI is the stored request's own: failure_route's `$ru` shows it
    // without a copy in the state (spec §5.4).
    let ruri = ctx.ruri();
    let changed = ruri.as_bytes() != ctx.msg.request_uri_bytes().unwrap_or_default();
    Saved {
        ruri: changed.then(|| ruri.into_owned()),
        du: ctx.dst_uri.clone(),
        flags: ctx.flags,
        bflags: ctx.bflags,
        avps: ctx
            .avps
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
    }
}

/// Finds or creates the transaction of the current request (lookup-then-insert under the
/// bucket lock). On `Tx`, `TmMsg::cell` holds it.
pub fn get_or_create(ctx: &mut Ctx<'_>, tm: &Tm) -> Result<Got, (u16, String)> {
    if ctx.msg_data::<TmMsg>().is_some_and(|m| m.cell.is_some()) {
        return Ok(Got::Tx { fresh: false });
    }
    let table = tm.table.ok_or((500, "tm not initialised".to_string()))?;
    let key = OwnedKey::of(ctx.msg).map_err(|e| (400, e.reason_phrase().to_string()))?;
    let rk = key.key();
    let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, table.hash_size());
    let via_port = rk.via.port.map(|p| Decimal::new(u64::from(p)));
    let md5 = char_value(&sip_txn::CharValueFields {
        from_tag: rk.from_tag,
        to_tag: sip_txn::CharValueFields::hashed_to_tag(rk.method, rk.to_tag),
        call_id: rk.call_id,
        ruri: rk.ruri,
        cseq_num: rk.cseq_num,
        via_host: rk.via.host,
        via_port: via_port.as_ref().map(Decimal::as_bytes).unwrap_or_default(),
        via_branch: rk.via.branch,
    });
    // The local To-tag is derived from md5 when an ACK is matched (table::match_one).
    let blob = key.blob(b"");
    let method = Method::classify(rk.method);
    let new = NewCell {
        key_blob: &blob,
        md5,
        method,
    };
    let looked = table
        .lookup_or_insert(bucket, &rk, &tm.mcfg, &new)
        .map_err(|e| {
            if e.is_exhausted() {
                table.count(Stat::ShmExhausted, 1);
            }
            ctx_log_err(e)
        })?;
    match looked {
        Lookup::Found(cell, m) => {
            let Some((mut g, mut st)) = lock_state(&cell) else {
                return Ok(Got::Retransmission);
            };
            let n = now(ctx);
            let got = if m.is_absorbed_ack() {
                st.cell.ack_received(n);
                Got::AckAbsorbed
            } else {
                let mut acts = ActionList::default();
                if let Some(a) = st.cell.request_retransmitted() {
                    acts.push(a);
                }
                exec(ctx, tm, &table, &cell, &mut st, &acts, None, None);
                Got::Retransmission
            };
            let _ = save(&table, &cell, &mut g, &mut st);
            Ok(got)
        }
        Lookup::Created {
            cell,
            mut guard,
            born_canceled,
        } => {
            let n = now(ctx);
            let base = ctx.msg.to_bytes(&ctx.edits);
            let req = match table.alloc_buf(&base) {
                Ok(off) => BufRef(off),
                Err(e) => {
                    table.count(Stat::ShmExhausted, 1);
                    cell.mark_dead();
                    drop(guard);
                    let _ = table.unlink(&cell);
                    return Err(ctx_log_err(e));
                }
            };
            let mut c = Cell::new_server(req, method, md5, bucket, n, &tm.cfg, false);
            if born_canceled {
                c.mark_canceled();
            }
            let pending = ctx.msg_data::<TmMsg>().map(|m| {
                (
                    m.pending_failure,
                    m.pending_reply,
                    m.pending_branch,
                    m.pending_timers,
                )
            });
            if let Some((f, r, b, timers)) = pending {
                let mut t = c.timer_values();
                timers.apply(&mut t, &tm.cfg);
                c.set_timer_values(t);
                if let Some(f) = f {
                    c.arm_failure_route(f);
                }
                if let Some(r) = r {
                    c.arm_reply_route(r);
                }
                if let Some(b) = b {
                    c.arm_branch_route(b);
                }
            }
            let mut st = TxState {
                cell: c,
                src: ctx.src.addr,
                local: ctx.src.local.addr,
                upstream: upstream_of(ctx.msg, ctx.src.addr),
                advertise: ctx.src.local.advertise.clone(),
                branches: Vec::new(),
                saved: saved_of(ctx),
                deleted: false,
                retired: Vec::new(),
            };
            if let Err(e) = save(&table, &cell, &mut guard, &mut st) {
                // The cell owns `req` now (listed in its blob, or freed by `abandon`).
                cell.mark_dead();
                drop(guard);
                let _ = table.unlink(&cell);
                return Err(ctx_log_err(e));
            }
            drop(guard);
            let m = ctx.msg_data_mut::<TmMsg>();
            m.cell = Some(cell);
            m.created = true;
            if tm.opensips_100 && method == Method::Invite && !born_canceled {
                // OpenSIPS answers 100 when the INVITE transaction is created (spec §5.6).
                let reason = tm.auto_inv_100_reason.clone();
                with_state(ctx, tm, |ctx, table, cell, st| {
                    if let Ok(acts) = st.cell.local_reply(100, now(ctx), &tm.cfg) {
                        exec(ctx, tm, table, cell, st, &acts, None, Some(&reason));
                    }
                });
            }
            Ok(Got::Tx { fresh: true })
        }
    }
}

fn ctx_log_err(e: TableError) -> (u16, String) {
    if e.is_exhausted() {
        (500, "No shared memory".to_string())
    } else {
        (500, format!("tm table error: {e}"))
    }
}

/// Runs `f` on the message's transaction state: the active one (inside a transaction
/// route) or the message's cell, locked, loaded and saved around `f`.
pub fn with_state<R>(
    ctx: &mut Ctx<'_>,
    tm: &Tm,
    f: impl FnOnce(&mut Ctx<'_>, &Table, &CellRef, &mut TxState) -> R,
) -> Option<R> {
    let table = tm.table?;
    let m = ctx.msg_data_mut::<TmMsg>();
    if let Some(mut st) = m.active.take() {
        let cell = m.cell.as_ref().and_then(|c| c.clone_ref().ok())?;
        let r = f(ctx, &table, &cell, &mut st);
        ctx.msg_data_mut::<TmMsg>().active = Some(st);
        return Some(r);
    }
    let cell = m.cell.as_ref().and_then(|c| c.clone_ref().ok())?;
    let (mut g, mut st) = lock_state(&cell)?;
    let r = f(ctx, &table, &cell, &mut st);
    if save(&table, &cell, &mut g, &mut st).is_err() {
        ctx.msg_data_mut::<TmMsg>().abandoned = true;
    }
    Some(r)
}

/// `t_reply` on the message's transaction; the script return code.
pub fn t_reply(ctx: &mut Ctx<'_>, tm: &Tm, code: u16, reason: &str) -> i32 {
    let tmc = tm;
    let r = with_state(ctx, tm, |ctx, table, cell, st| {
        match st.cell.local_reply(code, now(ctx), &tmc.cfg) {
            Ok(acts) => {
                exec(ctx, tmc, table, cell, st, &acts, None, Some(reason));
                1
            }
            Err(e) => {
                ctx.log(
                    LogLevel::Err,
                    "tm",
                    &format!("can't generate {code} reply: {e}"),
                );
                -1
            }
        }
    });
    match r {
        Some(rc) => {
            if rc > 0 {
                ctx.msg_data_mut::<TmMsg>().handled = true;
            }
            rc
        }
        None => {
            ctx.log(
                LogLevel::Err,
                "tm",
                "cannot send a t_reply to a message for which no T-state has been established",
            );
            -1
        }
    }
}

/// `t_relay([host, port])` for a non-ACK, non-CANCEL request (request or failure route).
pub fn t_relay(ctx: &mut Ctx<'_>, tm: &Tm, host_port: Option<(String, u16)>) -> i32 {
    let in_failure = ctx.msg_data::<TmMsg>().is_some_and(|m| m.active.is_some());
    if !in_failure {
        match get_or_create(ctx, tm) {
            Ok(Got::Tx { .. }) => {}
            Ok(Got::Retransmission | Got::AckAbsorbed) => return 1,
            Err((code, reason)) => return fail(ctx, code, reason),
        }
    }
    let res = with_state(ctx, tm, |ctx, table, cell, st| {
        if !in_failure {
            if st.cell.method() == Method::Invite
                && st.cell.uas_status() == 0
                && tm.auto_inv_100
                && !tm.opensips_100
                && !st.cell.is_canceled()
            {
                if let Ok(acts) = st.cell.local_reply(100, now(ctx), &tm.cfg) {
                    let reason = tm.auto_inv_100_reason.clone();
                    exec(ctx, tm, table, cell, st, &acts, None, Some(&reason));
                }
            }
            if st.cell.branches().is_empty() && !ctx.edits.is_empty() {
                // Lumps of request_route apply to every later branch (spec §5.4).
                let mut slot = st.cell.request;
                replace_buf(
                    table,
                    &mut slot,
                    &ctx.msg.to_bytes(&ctx.edits),
                    &mut st.retired,
                );
                st.cell.request = slot;
            }
            if st.cell.branches().is_empty() {
                st.saved = saved_of(ctx);
                st.cell.msg_flags = ctx.flags as u32;
            }
        }
        relay_all(ctx, tm, table, cell, st, host_port)
    });
    let abandoned = ctx.msg_data::<TmMsg>().is_some_and(|m| m.abandoned);
    match res {
        Some(Ok(_)) if !abandoned => {
            ctx.msg_data_mut::<TmMsg>().handled = true;
            1
        }
        Some(Ok(_)) => fail(ctx, 500, "No shared memory".into()),
        Some(Err((code, reason))) => fail(ctx, code, reason),
        None => fail(ctx, 500, "no transaction".into()),
    }
}

/// A failed t_relay: the error reply is sent at the end of the script (§2.8).
fn fail(ctx: &mut Ctx<'_>, code: u16, reason: String) -> i32 {
    ctx.ser_error = Some(SerError {
        status: code,
        reason: reason.clone(),
    });
    let m = ctx.msg_data_mut::<TmMsg>();
    if m.active.is_none() {
        // Kamailio's err2reason_phrase signature: `<text> (<code>/TM)`.
        m.delayed_error = Some((code, format!("{reason} ({code}/TM)")));
    }
    -1
}

/// `t_relay([host, port])` on an ACK: absorb the ACK to our negative final, else forward
/// it statelessly to `host:port`, else `$du`/R-URI.
pub fn relay_ack(ctx: &mut Ctx<'_>, tm: &Tm, host_port: Option<(String, u16)>) -> i32 {
    if let Some(table) = tm.table {
        if let Ok(key) = OwnedKey::of(ctx.msg) {
            let rk = key.key();
            let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, table.hash_size());
            if let Ok(Some((cell, m))) = table.lookup_request(bucket, &rk, &tm.mcfg)
                && m.is_absorbed_ack()
            {
                if let Some((mut g, mut st)) = lock_state(&cell) {
                    st.cell.ack_received(now(ctx));
                    let _ = save(&table, &cell, &mut g, &mut st);
                }
                return 1;
            }
        }
    }
    forward_stateless(ctx, host_port)
}

/// Forwards the current request statelessly to `host:port`, else `$du`/R-URI (a 2xx ACK,
/// an unmatched CANCEL under `unmatched_cancel=1`): our Via without transaction state.
fn forward_stateless(ctx: &mut Ctx<'_>, host_port: Option<(String, u16)>) -> i32 {
    let target = match host_port {
        Some((h, p)) => format!("sip:{h}:{p}"),
        None => ctx
            .dst_uri
            .clone()
            .unwrap_or_else(|| ctx.ruri().into_owned()),
    };
    let Ok(dst) = uri_destination(target.as_bytes()) else {
        return -1;
    };
    let Some(addr) = resolve(ctx, &dst) else {
        return -1;
    };
    let mut edits = ctx.edits.clone();
    if let Some(u) = &ctx.new_ruri {
        edits.set_request_uri(u.as_bytes());
    }
    let src = forward::Source {
        ip: ctx.src.addr.ip(),
        port: ctx.src.addr.port(),
    };
    let (host, port) = ctx.src.local.public();
    let bytes = forward::build_forward(
        ctx.msg,
        &edits,
        &format!("{host}:{port}"),
        src,
        ctx.force_rport,
    );
    match ctx.host.send(Proto::Udp, addr, &bytes) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

/// `t_relay([host, port])` on a CANCEL (spec §4.1): its own transaction, then cancel the
/// INVITE's branches (where they went, whatever `host:port` says) or, when no INVITE
/// exists, relay it like any request.
pub fn relay_cancel(ctx: &mut Ctx<'_>, tm: &Tm, host_port: Option<(String, u16)>) -> i32 {
    let Some(table) = tm.table else {
        return -1;
    };
    let Ok(key) = OwnedKey::of(ctx.msg) else {
        return -1;
    };
    let rk = key.key();
    let bucket = sip_txn::bucket_of(rk.call_id, rk.cseq_num, table.hash_size());
    let lookup = || {
        table
            .lookup_cancel_target(bucket, &rk, &tm.mcfg)
            .ok()
            .flatten()
    };
    // Kamailio looks the INVITE up first and creates the CANCEL's own transaction only
    // when it is found or the CANCEL is to be relayed statefully (t_forward_cancel).
    let mut invite = lookup();
    if invite.is_none() {
        match tm.unmatched_cancel {
            UnmatchedCancel::Stateful => {}
            UnmatchedCancel::Stateless => return forward_stateless(ctx, host_port),
            UnmatchedCancel::Drop => {
                ctx.log(LogLevel::Dbg, "tm", "non matching cancel dropped");
                return 1;
            }
        }
    }
    match get_or_create(ctx, tm) {
        Ok(Got::Tx { .. }) => {}
        Ok(_) => return 1,
        Err((c, r)) => return fail(ctx, c, r),
    }
    if invite.is_none() {
        invite = lookup();
    }
    let Some(invite) = invite else {
        return t_relay(ctx, tm, host_port);
    };
    // Reason headers of the received CANCEL, copied into the CANCELs we send.
    let reasons: Vec<u8> = ctx
        .msg
        .headers_named(b"Reason")
        .flat_map(|h| {
            let mut l = ctx
                .msg
                .slice(sip_msg::Span {
                    start: h.line.start,
                    end: h.value.end,
                })
                .to_vec();
            l.extend_from_slice(b"\r\n");
            l
        })
        .collect();
    let Some((mut g, mut ist)) = lock_state(&invite) else {
        return -1;
    };
    let reason_buf = if reasons.is_empty() {
        BufRef::NONE
    } else {
        table
            .alloc_buf(&reasons)
            .map(BufRef)
            .unwrap_or(BufRef::NONE)
    };
    if ist.cell.e2e_reason.is_some() && reason_buf.is_some() {
        ist.retired.push(ist.cell.e2e_reason.0);
        ist.cell.e2e_reason = BufRef::NONE;
    }
    let out = ist.cell.handle_cancel(reason_buf, now(ctx), &tm.cfg);
    if reason_buf.is_some() && ist.cell.e2e_reason != reason_buf {
        table.free_buf(reason_buf.0);
    }
    // siplab answers the CANCEL before acting on the INVITE (spec §11 decision 8).
    let phrase = out.cancel_reply_reason.phrase().to_string();
    t_reply(ctx, tm, out.cancel_reply_code, &phrase);
    exec(ctx, tm, &table, &invite, &mut ist, &out.actions, None, None);
    let _ = save(&table, &invite, &mut g, &mut ist);
    1
}

// ---------------------------------------------------------------------------------------
// Reply hook

/// tm's part of reply processing (spec §5.1 steps 2–7). `Forward` when no transaction
/// matches (the core then forwards statelessly).
pub fn on_reply(ctx: &mut Ctx<'_>) -> sip_script::abi::ReplyDisposition {
    use sip_script::abi::ReplyDisposition::{Consumed, Forward};
    let Some(tm) = tm_of(ctx) else { return Forward };
    let Some(table) = tm.table else {
        return Forward;
    };
    let Ok(via) = ctx.msg.top_via() else {
        return Forward;
    };
    let Some(branch) = via.branch() else {
        return Forward;
    };
    let Some(decoded) = sip_txn::decode_branch(branch, table.hash_size(), tm.cfg.max_branches)
    else {
        return Forward;
    };
    let (Ok(cseq), Some(code)) = (ctx.msg.cseq(), ctx.msg.status_code()) else {
        return Forward;
    };
    let method = cseq.method.to_vec();
    let Ok(Some((cell, m))) = table.lookup_reply(&decoded, &method) else {
        return Forward;
    };
    table.count(Stat::RplReceived, 1);
    let Some((mut g, mut st)) = lock_state(&cell) else {
        return Consumed;
    };
    let n = now(ctx);
    let i = match m {
        sip_txn::ReplyMatch::CancelReply(i) => {
            let _ = st.cell.cancel_reply_received(i);
            let _ = save(&table, &cell, &mut g, &mut st);
            return Consumed;
        }
        sip_txn::ReplyMatch::Branch(i) => i,
        sip_txn::ReplyMatch::NoMatch => return Forward,
    };
    let Ok(step) = st.cell.reply_received(i, code, n, &tm.cfg) else {
        return Consumed;
    };
    let pre = CurReply {
        branch: i,
        msg: ctx.msg,
        relay: Vec::new(),
    };
    exec(
        ctx,
        &tm,
        &table,
        &cell,
        &mut st,
        &step.actions,
        Some(&pre),
        None,
    );
    if !step.proceed {
        let _ = save(&table, &cell, &mut g, &mut st);
        return Consumed;
    }
    let mut dropped = false;
    if let Some(route) = step
        .on_reply
        .and_then(|r| script_route(RouteKind::OnReply, r))
    {
        let reason =
            String::from_utf8_lossy(ctx.msg.reason_phrase().unwrap_or_default()).into_owned();
        // The route sees the transaction's AVPs, the request's flags and the branch's
        // flags; what it changes there goes back into the transaction (spec §5.1 step 5).
        let tx_ctx = (
            st.saved.flags,
            st.cell.branch(i).map_or(0, |b| u64::from(b.bflags)),
            avp_store(&st.saved.avps),
        );
        {
            let m = ctx.msg_data_mut::<TmMsg>();
            let ph = placeholder(&st);
            m.active = Some(Box::new(std::mem::replace(&mut st, ph)));
            m.cell = cell.clone_ref().ok();
            m.reply = Some(ReplyInfo {
                code,
                reason,
                branch: i64::from(i),
            });
        }
        ctx.drop = false;
        let own = (
            std::mem::replace(&mut ctx.flags, tx_ctx.0),
            std::mem::replace(&mut ctx.bflags, tx_ctx.1),
            std::mem::replace(&mut ctx.avps, tx_ctx.2),
        );
        let out = ctx.run_route(route);
        if let sip_script::Outcome::Error(e) = out {
            ctx.log(LogLevel::Err, "tm", &format!("onreply_route: {e}"));
        }
        dropped = ctx.drop;
        if let Some(b) = ctx.msg_data_mut::<TmMsg>().active.take() {
            st = *b;
        }
        set_flags(&mut st, ctx.flags);
        if let Some(b) = st.cell.branch_mut(i) {
            b.bflags = ctx.bflags as u32;
        }
        st.saved.avps = saved_avps(&ctx.avps);
        (ctx.flags, ctx.bflags, ctx.avps) = own;
    }
    let mut edits = ctx.edits.clone();
    edits.remove_top_via();
    let cur = CurReply {
        branch: i,
        msg: ctx.msg,
        relay: ctx.msg.to_bytes(&edits),
    };
    if let Ok(acts) = st
        .cell
        .reply_routed(i, code, BufRef::NONE, dropped, n, &tm.cfg)
    {
        exec(ctx, &tm, &table, &cell, &mut st, &acts, Some(&cur), None);
    }
    let _ = save(&table, &cell, &mut g, &mut st);
    Consumed
}

// ---------------------------------------------------------------------------------------
// End of script and timer

/// Kamailio's POST_SCRIPT for tm: the delayed error reply of a failed t_relay, release of
/// a transaction the script created but never relayed or replied, and the unref.
pub fn post_script(ctx: &mut Ctx<'_>) {
    let Some(tm) = tm_of(ctx) else { return };
    let Some(m) = ctx.msg_data::<TmMsg>() else {
        return;
    };
    let (delayed, created, handled) = (m.delayed_error.clone(), m.created, m.handled);
    if let Some((code, reason)) = delayed {
        let tmr = &tm;
        let sent = with_state(ctx, &tm, |ctx, table, cell, st| {
            if st.cell.uas_status() < 200 {
                if let Ok(acts) = st.cell.local_reply(code, now(ctx), &tmr.cfg) {
                    exec(ctx, tmr, table, cell, st, &acts, None, Some(&reason));
                }
            }
        });
        if sent.is_none() && ctx.msg_data::<TmMsg>().is_some_and(|m| m.abandoned) {
            stateless_reply(ctx, code, &reason);
        }
    } else if created && !handled {
        ctx.log(
            LogLevel::Warn,
            "tm",
            "script writer didn't release transaction",
        );
        with_state(ctx, &tm, |_, table, cell, st| {
            if st.cell.branches().is_empty() && st.cell.uas_status() == 0 {
                st.deleted = true;
                let _ = table.unlink(cell);
            }
        });
    }
    let m = ctx.msg_data_mut::<TmMsg>();
    m.cell = None;
}

/// A reply built from the received request and sent without a transaction (the one the
/// request had was abandoned).
fn stateless_reply(ctx: &mut Ctx<'_>, code: u16, reason: &str) {
    let opts = ReplyOpts {
        to_tag: None,
        server: Some(crate::sl::DEFAULT_SERVER.as_bytes()),
        record_route: false,
        extra_headers: &[],
    };
    let bytes = build_reply(ctx.msg, code, reason.as_bytes(), &opts);
    let up = upstream_of(ctx.msg, ctx.src.addr);
    if let Err(e) = ctx.host.send(Proto::Udp, up, &bytes) {
        ctx.log(LogLevel::Err, "tm", &format!("reply not sent: {e}"));
    }
}

/// The timer process's tick: step every due cell (`handle_timer` until nothing is due),
/// perform its actions, re-schedule.
pub fn timer_tick(
    script: &sip_script::Script,
    rt: &mut sip_script::Runtime,
    host: &mut dyn sip_script::abi::Host,
) {
    let Some(tm) = rt.state::<Arc<Tm>>().cloned() else {
        return;
    };
    let Some(table) = tm.table else { return };
    let n = host.now().0;
    let due = table.take_due(n).unwrap_or_default();
    for cell in due {
        let Some((mut g, mut st)) = lock_state(&cell) else {
            continue;
        };
        if st.deleted {
            continue;
        }
        let Some(base) = read_msg(&table, st.cell.request) else {
            st.deleted = true;
            let _ = table.unlink(&cell);
            let _ = save(&table, &cell, &mut g, &mut st);
            continue;
        };
        let src = source_of(&st);
        let mut ctx = Ctx::new(rt, host, &base, src, RouteKind::Failure);
        ctx.set_script(script);
        let now_ms = Millis(n);
        for _ in 0..16 {
            if st.deleted || st.cell.next_deadline().is_none_or(|d| d > now_ms) {
                break;
            }
            let acts = st.cell.handle_timer(now_ms, &tm.cfg);
            if acts.is_empty() {
                break;
            }
            exec(&mut ctx, &tm, &table, &cell, &mut st, &acts, None, None);
        }
        drop(ctx);
        let _ = save(&table, &cell, &mut g, &mut st);
    }
}

/// Whether `msg` is an INVITE (for `auto_inv_100`).
pub fn is_invite(msg: &Message) -> bool {
    msg.method() == Some(MsgMethod::Invite)
}
