//! Pseudo-variables at run time: the compiled form of a [`PvRef`] ([`PvSpec`]), format
//! strings ([`Format`]), reading and writing (spec §8.7, K: src/modules/pv/pv_core.c).
//!
//! Names are resolved when the script is compiled, so an unknown PV, an unknown
//! transformation or a write to a read-only PV is a load error, never a run-time surprise.

use std::borrow::Cow;
use std::net::IpAddr;

use sip_msg::{HeaderName, Message, NameAddr, Scheme, Span, Uri};

use crate::abi::{Ctx, PvExport};
use crate::pv::{FormatPart, PvIndex, PvRef};
use crate::transform::{self, Trans};
use crate::value::{NULL_TEXT, Value, push_int, push_u8};

/// Built-in PVs that need no argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    Rm,
    Ru,
    RUser,
    Rd,
    Rp,
    Rz,
    Ou,
    Du,
    Ci,
    Cs,
    Si,
    Sp,
    Ri,
    Rp2,
    Pr,
    Pp,
    Fu,
    FUser,
    Fd,
    Ft,
    Tu,
    TUser,
    Td,
    Tt,
    Ua,
    Rs,
    Rr,
    Mt,
    Ml,
    Rc,
    TReplyCode,
}

const BUILTINS: &[(&str, Builtin)] = &[
    ("rm", Builtin::Rm),
    ("ru", Builtin::Ru),
    ("rU", Builtin::RUser),
    ("rd", Builtin::Rd),
    ("rp", Builtin::Rp),
    ("rz", Builtin::Rz),
    ("ou", Builtin::Ou),
    ("du", Builtin::Du),
    ("ci", Builtin::Ci),
    ("cs", Builtin::Cs),
    ("si", Builtin::Si),
    ("sp", Builtin::Sp),
    ("Ri", Builtin::Ri),
    ("Rp", Builtin::Rp2),
    ("pr", Builtin::Pr),
    ("proto", Builtin::Pr),
    ("pp", Builtin::Pp),
    ("fu", Builtin::Fu),
    ("fU", Builtin::FUser),
    ("fd", Builtin::Fd),
    ("ft", Builtin::Ft),
    ("tu", Builtin::Tu),
    ("tU", Builtin::TUser),
    ("td", Builtin::Td),
    ("tt", Builtin::Tt),
    ("ua", Builtin::Ua),
    ("rs", Builtin::Rs),
    ("rr", Builtin::Rr),
    ("mt", Builtin::Mt),
    ("ml", Builtin::Ml),
    ("rc", Builtin::Rc),
    ("retcode", Builtin::Rc),
    ("?", Builtin::Rc),
    ("T_reply_code", Builtin::TReplyCode),
];

impl Builtin {
    fn writable(self) -> bool {
        matches!(
            self,
            Builtin::Ru
                | Builtin::RUser
                | Builtin::Rd
                | Builtin::Rp
                | Builtin::Du
                | Builtin::Fu
                | Builtin::FUser
                | Builtin::Fd
                | Builtin::Tu
                | Builtin::TUser
                | Builtin::Td
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) enum PvKind {
    Builtin(Builtin),
    /// `$hdr(Name)`.
    Hdr(String),
    /// `$var(x)`: slot in the runtime's variable table.
    Var(usize),
    Avp(String),
    Null,
    Module(&'static PvExport, Option<String>),
}

#[derive(Clone, Debug)]
pub(crate) enum Idx {
    Int(i64),
    All,
    Pv(Box<PvSpec>),
}

/// A compiled pseudo-variable: name resolved, index and transformations prepared.
#[derive(Clone, Debug)]
pub struct PvSpec {
    pub(crate) kind: PvKind,
    pub(crate) index: Option<Idx>,
    pub(crate) transforms: Vec<Trans>,
    /// The PV as written, for messages.
    pub text: String,
}

impl PvSpec {
    /// Whether the PV can be assigned.
    pub fn is_writable(&self) -> bool {
        self.transforms.is_empty()
            && match &self.kind {
                PvKind::Builtin(b) => b.writable(),
                PvKind::Var(_) | PvKind::Avp(_) => true,
                PvKind::Module(m, _) => m.set.is_some(),
                PvKind::Hdr(_) | PvKind::Null => false,
            }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, PvKind::Null)
    }
}

/// A format string with its PVs resolved (xlog, append_hf, reply reasons).
#[derive(Clone, Debug, Default)]
pub struct Format {
    parts: Vec<FmtPart>,
    /// Bytes an expansion usually needs (literals + a typical PV length), computed once so
    /// [`format_into`] reserves once without summing the parts per call.
    size_guess: usize,
}

/// Bytes reserved per PV of a format: fits an IP, a port, a method, a short URI.
const PV_SIZE_GUESS: usize = 24;

#[derive(Clone, Debug)]
enum FmtPart {
    Lit(String),
    Pv(PvSpec),
}

impl Format {
    fn from_parts(parts: Vec<FmtPart>) -> Format {
        let size_guess = parts
            .iter()
            .map(|p| match p {
                FmtPart::Lit(s) => s.len(),
                FmtPart::Pv(_) => PV_SIZE_GUESS,
            })
            .sum();
        Format { parts, size_guess }
    }

    /// A format without PVs.
    pub fn literal(s: impl Into<String>) -> Format {
        let s = s.into();
        Format::from_parts(if s.is_empty() {
            Vec::new()
        } else {
            vec![FmtPart::Lit(s)]
        })
    }

    /// A format that is exactly one PV.
    pub fn of_pv(pv: PvSpec) -> Format {
        Format::from_parts(vec![FmtPart::Pv(pv)])
    }

    /// The text when the format has no PVs.
    pub fn as_const(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [FmtPart::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// The single PV when the format is exactly one.
    pub fn as_single_pv(&self) -> Option<&PvSpec> {
        match self.parts.as_slice() {
            [FmtPart::Pv(p)] => Some(p),
            _ => None,
        }
    }
}

/// Resolves PV names while compiling: `$var` slots and module PVs.
#[derive(Debug, Default)]
pub(crate) struct PvEnv {
    pub vars: Vec<String>,
    pub module_pvs: Vec<&'static PvExport>,
}

impl PvEnv {
    fn var_slot(&mut self, name: &str) -> usize {
        match self.vars.iter().position(|v| v == name) {
            Some(i) => i,
            None => {
                self.vars.push(name.to_string());
                self.vars.len() - 1
            }
        }
    }

    /// Compiles a parsed PV reference; the error is the diagnostic message.
    pub fn compile(&mut self, r: &PvRef) -> Result<PvSpec, String> {
        let text = r.to_string();
        let module = self.module_pvs.iter().find(|m| m.name == r.name).copied();
        let need_inner = |what: &str| -> Result<String, String> {
            match r.inner.as_deref().map(str::trim) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(format!(
                    "pseudo-variable `{text}` needs a {what} in parentheses"
                )),
            }
        };
        let kind = if let Some(m) = module {
            PvKind::Module(m, r.inner.clone())
        } else {
            match r.name.as_str() {
                "null" => PvKind::Null,
                "var" => PvKind::Var(self.var_slot(&need_inner("variable name")?)),
                "avp" => PvKind::Avp(need_inner("AVP name")?),
                "hdr" => PvKind::Hdr(need_inner("header name")?),
                name => match BUILTINS.iter().find(|(n, _)| *n == name) {
                    Some((_, b)) if r.inner.is_none() => PvKind::Builtin(*b),
                    Some(_) => {
                        return Err(format!(
                            "pseudo-variable `${name}` takes no argument in parentheses"
                        ));
                    }
                    None => return Err(format!("unknown pseudo-variable `{text}`")),
                },
            }
        };
        let index = match &r.index {
            None => None,
            Some(PvIndex::Int(i)) => Some(Idx::Int(*i)),
            Some(PvIndex::All) => Some(Idx::All),
            Some(PvIndex::Pv(p)) => Some(Idx::Pv(Box::new(self.compile(p)?))),
        };
        if index.is_some() && !matches!(kind, PvKind::Hdr(_) | PvKind::Avp(_)) {
            return Err(format!("pseudo-variable `{text}` cannot be indexed"));
        }
        let transforms = r
            .transforms
            .iter()
            .map(|t| transform::compile(t, self))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PvSpec {
            kind,
            index,
            transforms,
            text,
        })
    }

    /// Compiles a parsed format string.
    pub fn compile_format(&mut self, parts: &[FormatPart]) -> Result<Format, String> {
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            out.push(match p {
                FormatPart::Literal(s) => FmtPart::Lit(s.clone()),
                FormatPart::Pv(r) => FmtPart::Pv(self.compile(r)?),
            });
        }
        Ok(Format::from_parts(out))
    }
}

/// Appends the expansion of `f` to `out`.
pub(crate) fn format_into(ctx: &mut Ctx<'_>, f: &Format, out: &mut String) {
    // One allocation for the usual line instead of growing 8, 16, 32, ... bytes.
    out.reserve(f.size_guess);
    for p in &f.parts {
        match p {
            FmtPart::Lit(s) => out.push_str(s),
            FmtPart::Pv(pv) => {
                let plain = pv.transforms.is_empty() && pv.index.is_none();
                let written = match pv.kind {
                    PvKind::Builtin(b) if plain => write_builtin(ctx, b, out),
                    _ => false,
                };
                if !written {
                    let v = get(ctx, pv);
                    // A failed transformation prints nothing in Kamailio, not `<null>`.
                    if !v.is_null() || pv.transforms.is_empty() {
                        v.write_to(out);
                    }
                }
            }
        }
    }
}

/// Appends the text of the built-in PVs a per-request log line typically prints straight
/// into `out`, exactly as `get_builtin(..).write_to(out)` would, without a `Value` (one
/// `String` each); false for the others.
fn write_builtin(ctx: &mut Ctx<'_>, b: Builtin, out: &mut String) -> bool {
    let msg = ctx.msg;
    // `from_utf8` first: much cheaper than the lossy scan for the (usual) valid text.
    let push_opt_bytes = |out: &mut String, b: Option<&[u8]>| match b {
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => out.push_str(text),
            Err(_) => out.push_str(&String::from_utf8_lossy(b)),
        },
        None => out.push_str(NULL_TEXT),
    };
    match b {
        // A known method's token is exactly its name (sip-msg matches it byte for byte):
        // the static name needs no UTF-8 check.
        Builtin::Rm if msg.is_request() => match msg.method().and_then(|m| m.as_str()) {
            Some(name) => out.push_str(name),
            None => push_opt_bytes(out, msg.method_bytes()),
        },
        // What `Ctx::ruri` returns, without its copy of the received R-URI.
        Builtin::Ru if msg.is_request() => {
            match ctx.new_ruri.as_deref().or(ctx.orig_ruri.as_deref()) {
                Some(uri) => out.push_str(uri),
                None => push_opt_bytes(out, msg.request_uri_bytes()),
            }
        }
        Builtin::Ou => push_opt_bytes(out, msg.request_uri_bytes()),
        Builtin::Ci => push_opt_bytes(out, msg.call_id().ok()),
        Builtin::Si => push_ip(out, ctx.src.addr.ip()),
        Builtin::Sp => push_int(out, i64::from(ctx.src.addr.port())),
        Builtin::Ri => push_ip(out, ctx.src.local.addr.ip()),
        Builtin::Rp2 => push_int(out, i64::from(ctx.src.local.addr.port())),
        Builtin::Pp => push_int(out, i64::from(ctx.host.pid())),
        _ => return false,
    }
    true
}

/// Appends an IP address as `Display` prints it; IPv4 digit by digit (no `fmt`).
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // "255.255.255.255" is 15 bytes.
            out.reserve(15);
            let [a, b, c, d] = v4.octets();
            push_u8(out, a);
            for octet in [b, c, d] {
                out.push('.');
                push_u8(out, octet);
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

fn bytes_str(b: &[u8]) -> Value {
    Value::from_bytes(b)
}

fn ruri_part(ctx: &Ctx<'_>, part: fn(&Uri<'_>) -> Value) -> Value {
    let ru = ctx.ruri();
    match Uri::parse(ru.as_bytes()) {
        Ok(u) => part(&u),
        Err(_) => Value::Null,
    }
}

/// `$rp`: the URI's port, else 5061 for `;transport=tls` and 5060 otherwise — also for a
/// `sips:` URI without that parameter (Kamailio 5.6.3 `pv_get_xuri_attr` looks at the
/// transport parameter only; spec §8.7 said 5061 for sips, the server wins).
fn default_port(u: &Uri<'_>) -> i64 {
    let tls = u
        .params
        .get(b"transport")
        .flatten()
        .is_some_and(|t| t.eq_ignore_ascii_case(b"tls"));
    i64::from(u.port.unwrap_or(if tls { 5061 } else { 5060 }))
}

fn scheme_text(u: &Uri<'_>) -> Value {
    bytes_str(u.scheme_raw)
}

fn nameaddr_part(msg: &Message, to: bool, part: fn(&sip_msg::NameAddr<'_>) -> Value) -> Value {
    let na = if to { msg.to() } else { msg.from() };
    na.map_or(Value::Null, |n| part(&n))
}

fn header_value(msg: &Message, name: &str, index: Option<i64>, all: bool) -> Value {
    let values: Vec<&[u8]> = msg
        .headers_named(name.as_bytes())
        .map(|h| msg.slice(h.value))
        .collect();
    if all {
        if values.is_empty() {
            return Value::Null;
        }
        let joined: Vec<Cow<'_, str>> = values.iter().map(|v| String::from_utf8_lossy(v)).collect();
        return Value::Str(joined.join(","));
    }
    let i = index.unwrap_or(0);
    let pos = if i < 0 {
        values.len().checked_sub(i.unsigned_abs() as usize)
    } else {
        Some(i as usize)
    };
    pos.and_then(|p| values.get(p))
        .map_or(Value::Null, |v| bytes_str(v))
}

fn resolve_index(ctx: &mut Ctx<'_>, idx: &Option<Idx>) -> (Option<i64>, bool) {
    match idx {
        None => (None, false),
        Some(Idx::Int(i)) => (Some(*i), false),
        Some(Idx::All) => (None, true),
        Some(Idx::Pv(p)) => (Some(get(ctx, p).to_int()), false),
    }
}

fn get_builtin(ctx: &mut Ctx<'_>, b: Builtin) -> Value {
    let msg = ctx.msg;
    match b {
        Builtin::Rm => {
            if msg.is_request() {
                Value::opt_bytes(msg.method_bytes())
            } else {
                msg.cseq().map_or(Value::Null, |c| bytes_str(c.method))
            }
        }
        Builtin::Ru => {
            if msg.is_request() {
                Value::Str(ctx.ruri().into_owned())
            } else {
                Value::Null
            }
        }
        Builtin::Ou => Value::opt_bytes(msg.request_uri_bytes()),
        Builtin::RUser => ruri_part(ctx, |u| Value::opt_bytes(u.user)),
        Builtin::Rd => ruri_part(ctx, |u| {
            if u.host_raw.is_empty() {
                Value::Null
            } else {
                bytes_str(u.host_raw)
            }
        }),
        Builtin::Rp => ruri_part(ctx, |u| Value::Int(default_port(u))),
        Builtin::Rz => ruri_part(ctx, scheme_text),
        Builtin::Du => ctx.dst_uri.clone().map_or(Value::Null, Value::Str),
        Builtin::Ci => msg.call_id().map_or(Value::Null, bytes_str),
        Builtin::Cs => msg
            .cseq()
            .map_or(Value::Null, |c| Value::Int(i64::from(c.number))),
        Builtin::Si => Value::Str(ctx.src.addr.ip().to_string()),
        Builtin::Sp => Value::Int(i64::from(ctx.src.addr.port())),
        Builtin::Ri => Value::Str(ctx.src.local.addr.ip().to_string()),
        Builtin::Rp2 => Value::Int(i64::from(ctx.src.local.addr.port())),
        Builtin::Pr => Value::str(proto_name(ctx.src.proto)),
        Builtin::Pp => Value::Int(i64::from(ctx.host.pid())),
        Builtin::Fu => nameaddr_part(msg, false, |n| bytes_str(n.uri.raw)),
        Builtin::FUser => nameaddr_part(msg, false, |n| Value::opt_bytes(n.uri.user)),
        Builtin::Fd => nameaddr_part(msg, false, |n| bytes_str(n.uri.host_raw)),
        Builtin::Ft => nameaddr_part(msg, false, |n| Value::opt_bytes(n.tag())),
        Builtin::Tu => nameaddr_part(msg, true, |n| bytes_str(n.uri.raw)),
        Builtin::TUser => nameaddr_part(msg, true, |n| Value::opt_bytes(n.uri.user)),
        Builtin::Td => nameaddr_part(msg, true, |n| bytes_str(n.uri.host_raw)),
        Builtin::Tt => nameaddr_part(msg, true, |n| Value::opt_bytes(n.tag())),
        Builtin::Ua => Value::opt_bytes(msg.header_value(sip_msg::HeaderName::UserAgent)),
        Builtin::Rs => msg
            .status_code()
            .map_or(Value::Null, |c| Value::Int(i64::from(c))),
        Builtin::Rr => {
            if msg.is_request() {
                Value::Null
            } else {
                Value::opt_bytes(msg.reason_phrase())
            }
        }
        Builtin::Mt => Value::Int(if msg.is_request() { 1 } else { 2 }),
        Builtin::Ml => Value::Int(msg.as_bytes().len() as i64),
        Builtin::Rc => Value::Int(i64::from(ctx.rc)),
        Builtin::TReplyCode => Value::Int(
            ctx.api::<dyn crate::abi::TmApi>()
                .map_or(0, |tm| i64::from(tm.reply_code(ctx))),
        ),
    }
}

pub(crate) fn proto_name(p: crate::ast::Proto) -> &'static str {
    use crate::ast::Proto;
    match p {
        Proto::Udp => "udp",
        Proto::Tcp => "tcp",
        Proto::Tls => "tls",
        Proto::Sctp => "sctp",
        Proto::Ws => "ws",
        Proto::Wss => "wss",
    }
}

/// Reads a PV (index and transformations applied).
pub(crate) fn get(ctx: &mut Ctx<'_>, pv: &PvSpec) -> Value {
    let v = match &pv.kind {
        PvKind::Null => Value::Null,
        PvKind::Builtin(b) => get_builtin(ctx, *b),
        PvKind::Var(slot) => ctx.rt.var(*slot),
        PvKind::Hdr(name) => {
            let (i, all) = resolve_index(ctx, &pv.index);
            header_value(ctx.msg, name, i, all)
        }
        PvKind::Avp(name) => {
            let (i, all) = resolve_index(ctx, &pv.index);
            if all {
                let vals = ctx.avps.all(name);
                if vals.is_empty() {
                    Value::Null
                } else {
                    let joined: Vec<Cow<'_, str>> = vals.iter().map(|v| v.to_str()).collect();
                    // Kamailio 5.6.3 prints `$(avp(a)[*])` as `2, 1` (newest first).
                    Value::Str(joined.join(", "))
                }
            } else {
                ctx.avps
                    .get(name, i.unwrap_or(0))
                    .cloned()
                    .unwrap_or_default()
            }
        }
        PvKind::Module(m, inner) => (m.get)(ctx, inner.as_deref()),
    };
    if pv.transforms.is_empty() {
        v
    } else {
        transform::apply_all(ctx, &pv.transforms, v)
    }
}

/// Byte offset of `sub` inside `whole` (both views of the same buffer).
fn offset_in(whole: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Rebuilds the R-URI with one part replaced.
fn rewrite_ruri(ctx: &mut Ctx<'_>, part: RuriPart, v: &Value) -> Result<(), String> {
    let new = uri_with_part(&ctx.ruri(), "R-URI", part, v)?;
    ctx.new_ruri = Some(new);
    Ok(())
}

/// `uri` with one part (user, host, port) replaced by `v`, as `$rU`/`$rd`/`$rp` and
/// `$fU`/`$fd`/`$tU`/`$td` write it.
fn uri_with_part(ru: &str, what: &str, part: RuriPart, v: &Value) -> Result<String, String> {
    let u = Uri::parse(ru.as_bytes()).map_err(|e| format!("cannot rewrite {what} `{ru}`: {e}"))?;
    if !matches!(u.scheme, Scheme::Sip | Scheme::Sips) {
        return Err(format!("cannot rewrite parts of non-SIP {what} `{ru}`"));
    }
    let raw = ru.as_bytes();
    let host_start = offset_in(raw, u.host_raw);
    let host_end = host_start + u.host_raw.len();
    let new = match part {
        RuriPart::User => {
            let scheme_end = u.scheme_raw.len() + 1;
            let userinfo_end = match u.user {
                Some(_) => raw[..host_start]
                    .iter()
                    .rposition(|&b| b == b'@')
                    .unwrap_or(scheme_end),
                None => scheme_end,
            };
            // Keep a password (`user:pw@`) when replacing only the user.
            let pw = u
                .password
                .map(|p| format!(":{}", String::from_utf8_lossy(p)));
            let user = v.to_str();
            let userinfo = if user.is_empty() {
                String::new()
            } else {
                format!("{user}{}@", pw.unwrap_or_default())
            };
            format!(
                "{}{}{}",
                &ru[..scheme_end],
                userinfo,
                &ru[if u.user.is_some() {
                    userinfo_end + 1
                } else {
                    scheme_end
                }..]
            )
        }
        RuriPart::Host => {
            let host = v.to_str();
            if host.is_empty() {
                return Err(format!("cannot set an empty {what} host"));
            }
            format!("{}{}{}", &ru[..host_start], host, &ru[host_end..])
        }
        RuriPart::Port => {
            let after_host = &ru[host_end..];
            let port_len = match after_host.strip_prefix(':') {
                Some(rest) => 1 + rest.bytes().take_while(u8::is_ascii_digit).count(),
                None => 0,
            };
            let port = v.to_int();
            let port_text = if v.is_null() || port == 0 {
                String::new()
            } else if (1..=65535).contains(&port) {
                format!(":{port}")
            } else {
                return Err(format!("bad {what} port {port}"));
            };
            format!(
                "{}{}{}",
                &ru[..host_end],
                port_text,
                &after_host[port_len..]
            )
        }
    };
    Ok(new)
}

/// The From/To URIs the script set, per message: the edit that carries the rewritten header
/// line and the URI as it stands now (later writes of a part apply to it, as Kamailio's
/// `$fU` then `$fd` both show in the sent From).
#[derive(Default)]
struct NameAddrRewrites {
    from: Option<(usize, String)>,
    to: Option<(usize, String)>,
}

impl NameAddrRewrites {
    fn slot(&mut self, name: HeaderName) -> &mut Option<(usize, String)> {
        if name == HeaderName::From {
            &mut self.from
        } else {
            &mut self.to
        }
    }
}

/// Writes `$fu $fU $fd` / `$tu $tU $td`: the header is sent with its URI replaced (display
/// name, `<>`, tag and other parameters kept); reads still give the received value, as in
/// Kamailio, where these writes are lumps on the received message.
fn rewrite_name_addr_uri(
    ctx: &mut Ctx<'_>,
    name: HeaderName,
    part: Option<RuriPart>,
    v: &Value,
) -> Result<(), String> {
    let what = if name == HeaderName::From {
        "From URI"
    } else {
        "To URI"
    };
    let msg = ctx.msg;
    let h = msg
        .header(name)
        .ok_or_else(|| format!("cannot set the {what}: no such header"))?;
    let na =
        NameAddr::parse(msg.slice(h.value)).map_err(|e| format!("cannot set the {what}: {e}"))?;
    let uri_span = msg
        .span_of(na.uri.raw)
        .ok_or_else(|| format!("cannot set the {what}"))?;
    let (kept_index, current) = match ctx.msg_data_mut::<NameAddrRewrites>().slot(name) {
        Some((i, uri)) => (Some(*i), uri.clone()),
        None => (None, String::from_utf8_lossy(na.uri.raw).into_owned()),
    };
    let new_uri = match part {
        Some(part) => uri_with_part(&current, what, part, v)?,
        None => {
            let text = v.to_str();
            if v.is_null() || text.is_empty() {
                return Err(format!("cannot set the {what} to an empty value"));
            }
            Uri::parse(text.as_bytes()).map_err(|e| format!("bad {what} `{text}`: {e}"))?;
            text.into_owned()
        }
    };
    let mut line = msg
        .slice(Span {
            start: h.line.start,
            end: uri_span.start,
        })
        .to_vec();
    line.extend_from_slice(new_uri.as_bytes());
    line.extend_from_slice(msg.slice(Span {
        start: uri_span.end,
        end: h.value.end,
    }));
    let index = match kept_index.and_then(|i| ctx.edits.inserted_line_mut(i).map(|l| (i, l))) {
        Some((i, l)) => {
            *l = line;
            i
        }
        None => {
            // `msg` outlives `ctx`'s borrow: the name as written needs no copy.
            ctx.edits.remove_header_known(name);
            let i = ctx.edits.len();
            ctx.edits
                .insert_before_first_named(msg.slice(h.name_span), &line);
            i
        }
    };
    *ctx.msg_data_mut::<NameAddrRewrites>().slot(name) = Some((index, new_uri));
    Ok(())
}

#[derive(Clone, Copy)]
enum RuriPart {
    User,
    Host,
    Port,
}

/// Writes a PV. `$null` resets `$du`, deletes an `$avp` and sets a `$var` to 0.
pub(crate) fn set(ctx: &mut Ctx<'_>, pv: &PvSpec, v: Value) -> Result<(), String> {
    match &pv.kind {
        PvKind::Var(slot) => {
            // K: pv_set_scriptvar: null makes the variable int 0.
            let v = if v.is_null() { Value::Int(0) } else { v };
            ctx.rt.set_var(*slot, v);
            Ok(())
        }
        PvKind::Avp(name) => {
            if v.is_null() {
                match pv.index {
                    Some(Idx::All) => ctx.avps.remove_all(name),
                    _ => ctx.avps.remove_top(name),
                }
            } else {
                ctx.avps.push(name, v);
            }
            Ok(())
        }
        PvKind::Builtin(Builtin::Du) => {
            // A string value is moved in, not copied.
            ctx.dst_uri = match v {
                Value::Null => None,
                Value::Str(s) => (!s.is_empty()).then_some(s),
                v => Some(v.to_str().into_owned()),
            };
            Ok(())
        }
        PvKind::Builtin(Builtin::Ru) => {
            if !ctx.msg.is_request() {
                return Err("cannot set $ru on a reply".into());
            }
            let s = v.to_str();
            if v.is_null() || s.is_empty() {
                return Err("cannot set $ru to an empty value".into());
            }
            Uri::parse(s.as_bytes()).map_err(|e| format!("bad R-URI `{s}`: {e}"))?;
            ctx.new_ruri = Some(s.into_owned());
            Ok(())
        }
        PvKind::Builtin(Builtin::RUser) => rewrite_ruri(ctx, RuriPart::User, &v),
        PvKind::Builtin(Builtin::Fu) => rewrite_name_addr_uri(ctx, HeaderName::From, None, &v),
        PvKind::Builtin(Builtin::FUser) => {
            rewrite_name_addr_uri(ctx, HeaderName::From, Some(RuriPart::User), &v)
        }
        PvKind::Builtin(Builtin::Fd) => {
            rewrite_name_addr_uri(ctx, HeaderName::From, Some(RuriPart::Host), &v)
        }
        PvKind::Builtin(Builtin::Tu) => rewrite_name_addr_uri(ctx, HeaderName::To, None, &v),
        PvKind::Builtin(Builtin::TUser) => {
            rewrite_name_addr_uri(ctx, HeaderName::To, Some(RuriPart::User), &v)
        }
        PvKind::Builtin(Builtin::Td) => {
            rewrite_name_addr_uri(ctx, HeaderName::To, Some(RuriPart::Host), &v)
        }
        PvKind::Builtin(Builtin::Rd) => rewrite_ruri(ctx, RuriPart::Host, &v),
        PvKind::Builtin(Builtin::Rp) => rewrite_ruri(ctx, RuriPart::Port, &v),
        PvKind::Module(m, inner) => match m.set {
            Some(set) => set(ctx, inner.as_deref(), v),
            None => Err(format!("pseudo-variable `{}` is read-only", pv.text)),
        },
        PvKind::Builtin(_) | PvKind::Hdr(_) | PvKind::Null => {
            Err(format!("pseudo-variable `{}` is read-only", pv.text))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::push_ip;

    #[test]
    fn ip_text_is_what_display_prints() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "192.0.2.10",
            "255.255.255.255",
            "::1",
            "2001:db8::5",
        ] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            let mut out = String::from("x");
            push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}"));
        }
    }
}
