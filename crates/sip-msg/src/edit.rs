//! The edit list: changes recorded against a parsed message and applied only when
//! printing, so every untouched byte goes out exactly as it came in.

use crate::header::{HeaderName, NameKey};
use crate::message::{Header, Message, Span, StartLine};
use crate::scan::{CommaSplit, Params};

/// Where [`EditList::insert_header`] puts a new header line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertAt {
    /// Before the first header.
    Top,
    /// After the last header with this name (before the body when there is none).
    AfterLast(HeaderName),
    /// After the last header, before the empty line.
    BeforeBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Position {
    Top,
    AfterLast(NameKey),
    /// Before the first header with this name (at the top when there is none).
    BeforeFirst(NameKey),
    BeforeBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Edit {
    Insert {
        at: Position,
        line: Vec<u8>,
    },
    Remove(NameKey),
    RemoveTopVia,
    RemoveFirstRoute,
    SetRequestUri(Vec<u8>),
    SetMaxForwards(u32),
    /// `name` or `name=value`; `name_len` bytes are the name.
    SetTopViaParam {
        param: ParamText,
        name_len: usize,
    },
    /// `name[=value]` added to the top Via before its parameter `before` (when it has
    /// one), else before its first parameter (right after the sent-by).
    InsertTopViaParam {
        param: ParamText,
        name_len: usize,
        before: Option<&'static [u8]>,
    },
    ReplaceBody(Vec<u8>),
}

/// The text of a top-Via parameter edit, inline when short: `received=<IPv4>` and
/// `rport=<port>` fit, so the two edits of every forward do not allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ParamText {
    Inline { buf: [u8; 30], len: u8 },
    Heap(Vec<u8>),
}

impl ParamText {
    #[inline(always)]
    fn new(name: &[u8], value: Option<&[u8]>) -> ParamText {
        let len = name.len() + value.map_or(0, |v| 1 + v.len());
        let mut buf = [0u8; 30];
        match (buf.get_mut(..len), u8::try_from(len)) {
            (Some(dst), Ok(len_u8)) => {
                let (dst_name, rest) = dst.split_at_mut(name.len());
                dst_name.copy_from_slice(name);
                if let (Some(v), Some((eq, dst_value))) = (value, rest.split_first_mut()) {
                    *eq = b'=';
                    dst_value.copy_from_slice(v);
                }
                ParamText::Inline { buf, len: len_u8 }
            }
            _ => {
                let mut param = Vec::with_capacity(len);
                param.extend_from_slice(name);
                if let Some(v) = value {
                    param.push(b'=');
                    param.extend_from_slice(v);
                }
                ParamText::Heap(param)
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            ParamText::Inline { buf, len } => buf.get(..usize::from(*len)).unwrap_or_default(),
            ParamText::Heap(v) => v,
        }
    }
}

/// See [`EditList::summary`].
#[derive(Default)]
struct Summary<'e> {
    uri: Option<&'e [u8]>,
    max_forwards: Option<u32>,
    body: Option<&'e [u8]>,
    remove_top_via: bool,
    remove_first_route: bool,
    via_params: bool,
    any_remove: bool,
    any_after_last: bool,
    any_before_first: bool,
}

/// Changes to print a message with. Edits at the same place print in the order added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EditList {
    edits: Vec<Edit>,
}

impl EditList {
    pub fn new() -> EditList {
        EditList::default()
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    pub fn clear(&mut self) {
        self.edits.clear();
    }

    /// The number of edits recorded (a mark for [`EditList::truncate`]).
    pub fn len(&self) -> usize {
        self.edits.len()
    }

    /// Drops the edits recorded after the first `len`: a caller that adds edits for one
    /// printing only (a forward's Via) takes them back instead of cloning the list.
    pub fn truncate(&mut self, len: usize) {
        self.edits.truncate(len);
    }

    /// Inserts a header line (`Name: value`, without line end).
    pub fn insert_header(&mut self, at: InsertAt, line: &[u8]) {
        self.insert_header_line(at, line.to_vec());
    }

    /// [`EditList::insert_header`] with a line the caller built (no copy).
    pub fn insert_header_line(&mut self, at: InsertAt, line: Vec<u8>) {
        let at = match at {
            InsertAt::Top => Position::Top,
            InsertAt::AfterLast(name) => Position::AfterLast(NameKey::Known(name)),
            InsertAt::BeforeBody => Position::BeforeBody,
        };
        self.push(Edit::Insert { at, line });
    }

    /// The line (without line end) of the header insertion recorded at `index` (the
    /// list's [`EditList::len`] before it was added), for a module that amends its own line
    /// later, as rr's `add_rr_param` after `record_route` does. `None` when that edit is
    /// not a header insertion.
    pub fn inserted_line_mut(&mut self, index: usize) -> Option<&mut Vec<u8>> {
        match self.edits.get_mut(index) {
            Some(Edit::Insert { line, .. }) => Some(line),
            _ => None,
        }
    }

    /// Inserts a header line after the last header with this name as written
    /// (case-insensitive, compact forms mapped); before the body when there is none.
    pub fn insert_after_last_named(&mut self, name: &[u8], line: &[u8]) {
        self.push(Edit::Insert {
            at: Position::AfterLast(NameKey::new(name)),
            line: line.to_vec(),
        });
    }

    /// Inserts a header line before the first header with this name (long or compact form,
    /// any case), or at the top when there is none (textops `insert_hf(txt, hdr)`).
    pub fn insert_before_first_named(&mut self, name: &[u8], line: &[u8]) {
        self.push(Edit::Insert {
            at: Position::BeforeFirst(NameKey::new(name)),
            line: line.to_vec(),
        });
    }

    /// Removes every header with this name (long or compact form, any case).
    pub fn remove_header(&mut self, name: &[u8]) {
        self.push(Edit::Remove(NameKey::new(name)));
    }

    /// Removes every header of a known name.
    pub fn remove_header_known(&mut self, name: HeaderName) {
        self.push(Edit::Remove(NameKey::Known(name)));
    }

    /// Adds a Via (value only) above every other header.
    pub fn prepend_via(&mut self, value: &[u8]) {
        let mut line = Vec::with_capacity(5 + value.len());
        line.extend_from_slice(b"Via: ");
        line.extend_from_slice(value);
        self.push(Edit::Insert {
            at: Position::Top,
            line,
        });
    }

    /// Removes the first Via value (the whole line when it holds only that value).
    pub fn remove_top_via(&mut self) {
        self.push(Edit::RemoveTopVia);
    }

    /// Removes the first Route value (the whole line when it holds only that value).
    pub fn remove_first_route(&mut self) {
        self.push(Edit::RemoveFirstRoute);
    }

    /// Replaces the Request-URI (ignored for responses). The last one set wins.
    pub fn set_request_uri(&mut self, uri: &[u8]) {
        self.push(Edit::SetRequestUri(uri.to_vec()));
    }

    /// Sets Max-Forwards (added before the body when absent). The last one set wins.
    pub fn set_max_forwards(&mut self, value: u32) {
        self.push(Edit::SetMaxForwards(value));
    }

    /// Adds or replaces a parameter of the received top Via value (`received`, `rport`).
    #[inline]
    pub fn set_top_via_param(&mut self, name: &[u8], value: Option<&[u8]>) {
        self.push(Edit::SetTopViaParam {
            param: ParamText::new(name, value),
            name_len: name.len(),
        });
    }

    /// Inserts a parameter into the received top Via value whether or not it has one of
    /// that name: before the parameter `before` when the Via has it, else before the
    /// Via's first parameter (right after the sent-by). Insertions at the same place print
    /// in the order added. This is where Kamailio's core puts `received` / `rport` on a
    /// forwarded request.
    pub fn insert_top_via_param(
        &mut self,
        before: Option<&'static [u8]>,
        name: &[u8],
        value: Option<&[u8]>,
    ) {
        self.push(Edit::InsertTopViaParam {
            param: ParamText::new(name, value),
            name_len: name.len(),
            before,
        });
    }

    /// Replaces the body; Content-Length is rewritten (added when absent).
    pub fn replace_body(&mut self, body: &[u8]) {
        self.push(Edit::ReplaceBody(body.to_vec()));
    }

    fn push(&mut self, edit: Edit) {
        // A forward records about five edits: allocate once for them, not 4 then 8.
        if self.edits.capacity() == 0 {
            self.edits.reserve(8);
        }
        self.edits.push(edit);
    }

    /// What the printer needs to know about the whole list, found in one pass.
    fn summary(&self) -> Summary<'_> {
        let mut sum = Summary::default();
        // Later edits of the same kind win, so the last one seen is kept.
        for e in &self.edits {
            match e {
                Edit::Insert { at, .. } => match at {
                    Position::Top => {}
                    Position::AfterLast(_) => sum.any_after_last = true,
                    Position::BeforeFirst(_) => sum.any_before_first = true,
                    Position::BeforeBody => {}
                },
                Edit::Remove(_) => sum.any_remove = true,
                Edit::RemoveTopVia => sum.remove_top_via = true,
                Edit::RemoveFirstRoute => sum.remove_first_route = true,
                Edit::SetRequestUri(u) => sum.uri = Some(u),
                Edit::SetMaxForwards(n) => sum.max_forwards = Some(*n),
                Edit::SetTopViaParam { .. } | Edit::InsertTopViaParam { .. } => {
                    sum.via_params = true
                }
                Edit::ReplaceBody(b) => sum.body = Some(b),
            }
        }
        sum
    }

    fn removes(&self, msg: &Message, h: &Header) -> bool {
        self.edits
            .iter()
            .any(|e| matches!(e, Edit::Remove(k) if k.matches(h.name, msg.slice(h.name_span))))
    }

    fn inserts_at<'a>(&'a self, pos: &'a Position) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.edits.iter().filter_map(move |e| match e {
            Edit::Insert { at, line } if at == pos => Some(line.as_slice()),
            _ => None,
        })
    }
}

fn put_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

fn put_number(out: &mut Vec<u8>, n: u64) {
    // u64::MAX has 20 digits; format without allocating.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Writes a header line with its value replaced by a number.
fn put_with_value_number(out: &mut Vec<u8>, msg: &Message, h: &Header, n: u64) {
    out.extend_from_slice(msg.slice(Span {
        start: h.line.start,
        end: h.value.start,
    }));
    put_number(out, n);
    out.extend_from_slice(msg.slice(Span {
        start: h.value.end,
        end: h.line.end,
    }));
}

/// Writes a list header without its first value (nothing when it has only one).
fn put_without_first_value(out: &mut Vec<u8>, msg: &Message, h: &Header) {
    let second = CommaSplit::new(msg.slice(h.value))
        .nth(1)
        .and_then(|v| msg.span_of(v));
    if let Some(second) = second {
        out.extend_from_slice(msg.slice(Span {
            start: h.line.start,
            end: h.value.start,
        }));
        out.extend_from_slice(msg.slice(Span {
            start: second.start,
            end: h.line.end,
        }));
    }
}

/// How a top-Via parameter edit applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ViaPlace {
    /// Replaces the parameter of that name (the last such edit wins), else appended.
    Set,
    /// Inserted before the named parameter when the Via has it, else before the first.
    Insert(Option<&'static [u8]>),
}

/// One top-Via parameter edit: (index in the list, name, `name[=value]`, placement).
type ViaParamEdit<'e> = (usize, &'e [u8], &'e [u8], ViaPlace);

/// The top-Via parameter edit `e` is, if it is one.
fn via_param(e: &Edit) -> Option<(&[u8], &[u8], ViaPlace)> {
    match e {
        Edit::SetTopViaParam { param, name_len } => {
            let param = param.as_bytes();
            Some((param.get(..*name_len)?, param, ViaPlace::Set))
        }
        Edit::InsertTopViaParam {
            param,
            name_len,
            before,
        } => {
            let param = param.as_bytes();
            Some((param.get(..*name_len)?, param, ViaPlace::Insert(*before)))
        }
        _ => None,
    }
}

/// Parameter names compare case-insensitively; the edits mostly spell them as the
/// message does, which a plain comparison settles at once.
fn same_param_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a == b || a.eq_ignore_ascii_case(b))
}

/// Writes `;param` for each insertion in `edits` that `goes_here` selects, in list order.
fn put_inserted_params(
    out: &mut Vec<u8>,
    edits: &[ViaParamEdit<'_>],
    goes_here: impl Fn(Option<&'static [u8]>) -> bool,
) {
    for &(_, _, param, place) in edits {
        if matches!(place, ViaPlace::Insert(before) if goes_here(before)) {
            out.push(b';');
            out.extend_from_slice(param);
        }
    }
}

/// Writes the first Via line with the top value's parameters added or replaced.
fn put_top_via_with_params(out: &mut Vec<u8>, msg: &Message, h: &Header, edits: &EditList) {
    let first = CommaSplit::new(msg.slice(h.value))
        .next()
        .unwrap_or_default();
    let Some(first_span) = msg.span_of(first) else {
        out.extend_from_slice(msg.slice(h.line));
        return;
    };
    // The parameter edits gathered once: on the stack for up to four (a forward has two),
    // on the heap past that.
    let mut inline: [ViaParamEdit<'_>; 4] = [(0, &[], &[], ViaPlace::Set); 4];
    let mut count = 0;
    for (i, e) in edits.edits.iter().enumerate() {
        if let Some((name, param, place)) = via_param(e) {
            if let Some(slot) = inline.get_mut(count) {
                *slot = (i, name, param, place);
            }
            count += 1;
        }
    }
    let spill: Vec<ViaParamEdit<'_>>;
    let param_edits = match inline.get(..count) {
        Some(list) => list,
        None => {
            spill = edits
                .edits
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    via_param(e).map(|(name, param, place)| (i, name, param, place))
                })
                .collect();
            &spill
        }
    };
    // The parameters start at the value's first `;`: neither the sent-protocol nor the
    // sent-by can hold one (the Via was checked when the message was validated).
    let params_at = memchr::memchr(b';', first);
    let params = params_at
        .and_then(|p| first.get(p..))
        .map(Params::from_checked)
        .unwrap_or_default();
    // Insertions without a parameter of theirs to go before go before the first one.
    let front = params_at
        .and_then(|p| u32::try_from(p).ok())
        .map_or(first_span.end, |p| first_span.start + p);
    out.extend_from_slice(msg.slice(Span {
        start: h.line.start,
        end: front,
    }));
    put_inserted_params(out, param_edits, |before| {
        before.is_none_or(|name| !params.has(name))
    });
    let mut cursor = front;
    // Bit i: edit i replaced a parameter of the Via, so it is not appended.
    let mut replaced: u64 = 0;
    for (j, p) in params.iter().enumerate() {
        let Some(name_span) = msg.span_of(p.name) else {
            continue;
        };
        // Insertions before this parameter, at its first occurrence only.
        let anchors_here = param_edits.iter().any(|&(_, _, _, place)| {
            matches!(place, ViaPlace::Insert(Some(before)) if same_param_name(before, p.name))
        }) && !params
            .iter()
            .take(j)
            .any(|q| same_param_name(q.name, p.name));
        if anchors_here {
            // The parameter's `;`: only LWS lies between it and the name.
            let semicolon = msg
                .slice(Span {
                    start: cursor,
                    end: name_span.start,
                })
                .iter()
                .rposition(|&b| b == b';')
                .and_then(|k| u32::try_from(k).ok())
                .map_or(name_span.start, |k| cursor + k);
            out.extend_from_slice(msg.slice(Span {
                start: cursor,
                end: semicolon,
            }));
            put_inserted_params(out, param_edits, |before| {
                before.is_some_and(|name| same_param_name(name, p.name))
            });
            cursor = semicolon;
        }
        // The last set edit for a name wins.
        let Some(&(index, _, param, _)) = param_edits
            .iter()
            .rev()
            .find(|&&(_, name, _, place)| place == ViaPlace::Set && same_param_name(name, p.name))
        else {
            continue;
        };
        if index < 64 {
            replaced |= 1 << index;
        }
        let end = p
            .value
            .and_then(|v| msg.span_of(v))
            .map_or(name_span.end, |s| s.end);
        out.extend_from_slice(msg.slice(Span {
            start: cursor,
            end: name_span.start,
        }));
        out.extend_from_slice(param);
        cursor = end;
    }
    out.extend_from_slice(msg.slice(Span {
        start: cursor,
        end: first_span.end,
    }));
    // The set edits for names the Via lacks are appended in list order, again the last
    // edit for each name.
    for (k, &(index, name, param, place)) in param_edits.iter().enumerate() {
        if place != ViaPlace::Set {
            continue;
        }
        let present = if index < 64 {
            replaced & (1 << index) != 0
        } else {
            params.has(name)
        };
        let overridden = param_edits
            .get(k + 1..)
            .unwrap_or_default()
            .iter()
            .any(|&(_, later, _, place)| place == ViaPlace::Set && same_param_name(later, name));
        if !present && !overridden {
            out.push(b';');
            out.extend_from_slice(param);
        }
    }
    out.extend_from_slice(msg.slice(Span {
        start: first_span.end,
        end: h.line.end,
    }));
}

/// A pending run of unchanged bytes of the message, copied out in one go.
#[derive(Default)]
struct CopyRun {
    span: Option<Span>,
}

impl CopyRun {
    /// Appends `line` to the run, first writing the run out when `line` does not follow it.
    #[inline]
    fn add(&mut self, out: &mut Vec<u8>, msg: &Message, line: Span) {
        match &mut self.span {
            Some(run) if run.end == line.start => run.end = line.end,
            _ => {
                self.flush(out, msg);
                self.span = Some(line);
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<u8>, msg: &Message) {
        if let Some(run) = self.span.take() {
            out.extend_from_slice(msg.slice(run));
        }
    }
}

/// Which header of its name a named insertion is placed by.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// [`Position::BeforeFirst`]: before the first.
    First,
    /// [`Position::AfterLast`]: after the last.
    Last,
}

/// The lines of the named insertions of `kind`, in list order, each with the index of the
/// header it is placed by (`None` when the message has no header of that name).
fn named_inserts<'a>(
    edits: &'a EditList,
    msg: &'a Message,
    kind: Anchor,
) -> impl Iterator<Item = (Option<usize>, &'a [u8])> + 'a {
    let headers: &'a [Header] = msg.headers().as_slice();
    edits.edits.iter().filter_map(move |e| {
        let Edit::Insert { at, line } = e else {
            return None;
        };
        let named =
            |key: &'a NameKey| move |h: &Header| key.matches(h.name, msg.slice(h.name_span));
        let index = match (at, kind) {
            (Position::BeforeFirst(key), Anchor::First) => headers.iter().position(named(key)),
            (Position::AfterLast(key), Anchor::Last) => headers.iter().rposition(named(key)),
            _ => return None,
        };
        Some((index, line.as_slice()))
    })
}

/// Prints `msg` with `edits` applied into `out` (appending; no allocation when `out` has room);
/// `put_top` writes its header lines after the list's [`InsertAt::Top`] lines.
pub(crate) fn write_message(
    msg: &Message,
    edits: &EditList,
    put_top: impl FnOnce(&mut Vec<u8>),
    out: &mut Vec<u8>,
) {
    let start_line = msg.start_line_span();
    let sum = edits.summary();
    match (msg.start_line(), sum.uri) {
        (StartLine::Request { uri, .. }, Some(new_uri)) => {
            out.extend_from_slice(msg.slice(Span {
                start: start_line.start,
                end: uri.start,
            }));
            out.extend_from_slice(new_uri);
            out.extend_from_slice(msg.slice(Span {
                start: uri.end,
                end: start_line.end,
            }));
        }
        _ => out.extend_from_slice(msg.slice(start_line)),
    }
    for line in edits.inserts_at(&Position::Top) {
        put_line(out, line);
    }
    let headers: &[Header] = msg.headers().as_slice();
    let any_before_first = sum.any_before_first;
    if any_before_first {
        // Named headers the message does not have: these lines go to the top.
        for (_, line) in named_inserts(edits, msg, Anchor::First).filter(|(at, _)| at.is_none()) {
            put_line(out, line);
        }
    }
    put_top(out);
    let max_forwards = sum.max_forwards;
    let new_body = sum.body;
    let (remove_top_via, remove_first_route) = (sum.remove_top_via, sum.remove_first_route);
    let via_params = sum.via_params;
    let (mut seen_via, mut seen_route, mut wrote_mf, mut wrote_cl) = (false, false, false, false);
    // Per-header edit scans only when such edits exist (a forward has none).
    let any_remove = sum.any_remove;
    let any_after_last = sum.any_after_last;
    // Unchanged header lines are contiguous in the buffer: copy each run at once.
    let mut run = CopyRun::default();
    for (i, h) in headers.iter().enumerate() {
        if any_before_first {
            for (_, line) in
                named_inserts(edits, msg, Anchor::First).filter(|(at, _)| *at == Some(i))
            {
                run.flush(out, msg);
                put_line(out, line);
            }
        }
        if !(any_remove && edits.removes(msg, h)) {
            match h.name {
                HeaderName::Via if !seen_via => {
                    seen_via = true;
                    if remove_top_via {
                        run.flush(out, msg);
                        put_without_first_value(out, msg, h);
                    } else if via_params {
                        run.flush(out, msg);
                        put_top_via_with_params(out, msg, h, edits);
                    } else {
                        run.add(out, msg, h.line);
                    }
                }
                HeaderName::Route if !seen_route && remove_first_route => {
                    seen_route = true;
                    run.flush(out, msg);
                    put_without_first_value(out, msg, h);
                }
                HeaderName::MaxForwards if max_forwards.is_some() => {
                    wrote_mf = true;
                    run.flush(out, msg);
                    put_with_value_number(out, msg, h, u64::from(max_forwards.unwrap_or(0)));
                }
                HeaderName::ContentLength if new_body.is_some() => {
                    wrote_cl = true;
                    let len = new_body.map_or(0, <[u8]>::len);
                    run.flush(out, msg);
                    put_with_value_number(out, msg, h, len as u64);
                }
                _ => run.add(out, msg, h.line),
            }
            if h.name == HeaderName::Route {
                seen_route = true;
            }
        }
        if any_after_last {
            for (_, line) in
                named_inserts(edits, msg, Anchor::Last).filter(|(at, _)| *at == Some(i))
            {
                run.flush(out, msg);
                put_line(out, line);
            }
        }
    }
    run.flush(out, msg);
    if any_after_last {
        // Named headers the message does not have: these lines go before the body.
        for (_, line) in named_inserts(edits, msg, Anchor::Last).filter(|(at, _)| at.is_none()) {
            put_line(out, line);
        }
    }
    if let (Some(n), false) = (max_forwards, wrote_mf) {
        out.extend_from_slice(b"Max-Forwards: ");
        put_number(out, u64::from(n));
        out.extend_from_slice(b"\r\n");
    }
    if let (Some(body), false) = (new_body, wrote_cl) {
        out.extend_from_slice(b"Content-Length: ");
        put_number(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    for line in edits.inserts_at(&Position::BeforeBody) {
        put_line(out, line);
    }
    let body = msg.body_span();
    let blank = msg.slice(Span {
        start: msg.headers_end(),
        end: body.start,
    });
    out.extend_from_slice(if blank.is_empty() { b"\r\n" } else { blank });
    out.extend_from_slice(new_body.unwrap_or_else(|| msg.slice(body)));
}

impl Message {
    /// Prints the message with `edits` applied, appending to `out`. Without edits the
    /// output is the input up to the end of the body (bytes after a Content-Length body
    /// are not part of the message and are dropped).
    pub fn write_to(&self, edits: &EditList, out: &mut Vec<u8>) {
        write_message(self, edits, |_| {}, out);
    }

    /// [`Message::write_to`] with header lines of the caller's after the edit list's
    /// [`InsertAt::Top`] lines: `put_top` appends them, each ending in CRLF. A forward
    /// writes its own Via this way, straight into the output rather than through a line
    /// recorded in the list and taken back.
    pub fn write_with_top_lines(
        &self,
        edits: &EditList,
        put_top: impl FnOnce(&mut Vec<u8>),
        out: &mut Vec<u8>,
    ) {
        write_message(self, edits, put_top, out);
    }

    /// Prints the message with `edits` applied into a new buffer.
    pub fn to_bytes(&self, edits: &EditList) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.as_bytes().len() + 256);
        write_message(self, edits, |_| {}, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const REQ: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.com>;tag=a\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
X-A: 1\r\n\
x-a: 2\r\n\
Content-Length: 4\r\n\
\r\n\
abcd";

    fn print(edits: &EditList) -> Result<String, Box<dyn std::error::Error>> {
        let m = Message::parse_slice(REQ)?;
        Ok(String::from_utf8(m.to_bytes(edits))?)
    }

    #[test]
    fn no_edits_is_byte_exact() -> TestResult {
        assert_eq!(print(&EditList::new())?.as_bytes(), REQ);
        Ok(())
    }

    #[test]
    fn top_via_params_short_and_long() -> TestResult {
        let long = b"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff";
        for (name, value) in [
            (&b"rport"[..], Some(&b"5091"[..])),
            (b"received", Some(&long[..])),
            (b"x-flag", None),
        ] {
            let mut e = EditList::new();
            e.set_top_via_param(name, value);
            let mut param = name.to_vec();
            if let Some(v) = value {
                param.push(b'=');
                param.extend_from_slice(v);
            }
            let text = print(&e)?;
            let param = String::from_utf8(param)?;
            // rport is replaced in place, the others are appended to the top value.
            let expected = if name == b"rport" {
                format!("branch=z9hG4bK1;{param}, SIP/2.0/UDP 10.0.0.2")
            } else {
                format!("branch=z9hG4bK1;rport;{param}, SIP/2.0/UDP 10.0.0.2")
            };
            assert!(text.contains(&expected), "{text}");
        }
        Ok(())
    }

    #[test]
    fn truncate_takes_back_the_edits_added_after_the_mark() -> TestResult {
        let mut e = EditList::new();
        e.set_max_forwards(69);
        let before = print(&e)?;
        let mark = e.len();
        e.insert_header_line(
            InsertAt::Top,
            b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx".to_vec(),
        );
        e.set_top_via_param(b"received", Some(b"10.0.0.7"));
        let with = print(&e)?;
        assert!(with.starts_with(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport;received=10.0.0.7, "
        ));
        e.truncate(mark);
        assert_eq!(e.len(), 1);
        assert_eq!(print(&e)?, before);
        Ok(())
    }

    #[test]
    fn proxy_style_edits() -> TestResult {
        let mut e = EditList::new();
        e.prepend_via(b"SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew");
        e.remove_first_route();
        e.set_request_uri(b"sip:bob@10.1.1.1");
        e.set_max_forwards(69);
        e.set_top_via_param(b"received", Some(b"203.0.113.1"));
        e.set_top_via_param(b"rport", Some(b"5062"));
        let out = print(&e)?;
        assert!(out.starts_with(
            "INVITE sip:bob@10.1.1.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew\r\n"
        ));
        assert!(out.contains(
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5062;received=203.0.113.1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"
        ));
        assert!(out.contains("Route: <sip:p2.example.com;lr>\r\n"));
        assert!(out.contains("Max-Forwards: 69\r\n"));
        let reparsed = Message::parse_slice(out.as_bytes())?;
        assert_eq!(reparsed.vias().count(), 3);
        assert_eq!(reparsed.body(), b"abcd");
        Ok(())
    }

    #[test]
    fn remove_headers_and_vias() -> TestResult {
        let mut e = EditList::new();
        e.remove_header(b"x-A");
        e.remove_top_via();
        e.remove_first_route();
        e.remove_first_route();
        let out = print(&e)?;
        assert!(!out.to_ascii_lowercase().contains("x-a"));
        assert!(out.contains("\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"));
        assert!(out.contains("Route: <sip:p2.example.com;lr>\r\n"));
        let m =
            Message::parse_slice(b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\nl: 0\r\n\r\n")?;
        let mut e = EditList::new();
        e.remove_top_via();
        e.remove_header(b"Content-Length");
        assert_eq!(m.to_bytes(&e), b"OPTIONS sip:a@b SIP/2.0\r\n\r\n");
        Ok(())
    }

    #[test]
    fn inserts_in_order_added() -> TestResult {
        let mut e = EditList::new();
        e.insert_header(InsertAt::Top, b"X-T: 1");
        e.insert_header(InsertAt::Top, b"X-T: 2");
        e.insert_after_last_named(b"X-A", b"X-A: 3");
        e.insert_header(
            InsertAt::AfterLast(HeaderName::Contact),
            b"Contact: <sip:x@y>",
        );
        e.insert_header(InsertAt::BeforeBody, b"X-B: 1");
        let out = print(&e)?;
        assert!(out.contains("SIP/2.0\r\nX-T: 1\r\nX-T: 2\r\nVia:"));
        assert!(out.contains(
            "x-a: 2\r\nX-A: 3\r\nContent-Length: 4\r\nContact: <sip:x@y>\r\nX-B: 1\r\n\r\nabcd"
        ));
        Ok(())
    }

    #[test]
    fn insert_before_first_named_goes_before_the_first_or_to_the_top() -> TestResult {
        let mut e = EditList::new();
        // Any case, before the first of several; compact `f` names From.
        e.insert_before_first_named(b"x-A", b"X-N: 1");
        e.insert_before_first_named(b"f", b"X-F: 1");
        e.insert_before_first_named(b"Subject", b"X-S: 1");
        e.insert_header(InsertAt::Top, b"X-T: 1");
        e.remove_header(b"CSeq");
        e.insert_before_first_named(b"CSeq", b"X-C: 1");
        let out = print(&e)?;
        assert!(
            out.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nX-T: 1\r\nX-S: 1\r\nVia:"),
            "{out}"
        );
        assert!(out.contains("Max-Forwards: 70\r\nX-F: 1\r\nFrom:"), "{out}");
        // Before a removed header is still where it stood.
        assert!(
            out.contains("Call-ID: c1\r\nX-C: 1\r\nX-N: 1\r\nX-A: 1\r\nx-a: 2\r\n"),
            "{out}"
        );
        assert_eq!(out.matches("X-N: 1").count(), 1);
        Ok(())
    }

    #[test]
    fn replace_body_fixes_content_length() -> TestResult {
        let mut e = EditList::new();
        e.replace_body(b"hello world");
        let out = print(&e)?;
        assert!(out.ends_with("Content-Length: 11\r\n\r\nhello world"));
        let m = Message::parse_slice(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n")?;
        assert_eq!(
            m.to_bytes(&e),
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 11\r\n\r\nhello world"
        );
        Ok(())
    }

    #[test]
    fn rport_without_value_is_replaced() -> TestResult {
        let m = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;rport;branch=z\r\n\r\n",
        )?;
        let mut e = EditList::new();
        e.set_top_via_param(b"rport", Some(b"5070"));
        e.set_top_via_param(b"received", Some(b"1.2.3.4"));
        assert_eq!(
            m.to_bytes(&e),
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;rport=5070;branch=z;received=1.2.3.4\r\n\r\n"
        );
        Ok(())
    }

    #[test]
    fn the_last_via_param_edit_for_a_name_wins() -> TestResult {
        let mut e = EditList::new();
        e.set_top_via_param(b"received", Some(b"192.0.2.1"));
        e.set_top_via_param(b"rport", Some(b"1"));
        e.set_top_via_param(b"x-new", None);
        e.set_top_via_param(b"RPORT", Some(b"2"));
        e.set_top_via_param(b"received", Some(b"192.0.2.2"));
        // rport is replaced in place by the last edit for it (any case); the others are
        // appended in the order of their last edits.
        assert!(
            print(&e)?.contains(
                "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;RPORT=2;x-new;received=192.0.2.2, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"
            ),
            "{}",
            print(&e)?
        );
        Ok(())
    }

    #[test]
    fn via_params_with_lws_and_quotes_are_replaced_whole() -> TestResult {
        let m = Message::parse_slice(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5060 ;x=\"a;rport\" ; rport ;branch=z\r\n\r\n",
        )?;
        let mut e = EditList::new();
        e.set_top_via_param(b"rport", Some(b"5070"));
        e.set_top_via_param(b"x", Some(b"1"));
        assert_eq!(
            m.to_bytes(&e),
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5060 ;x=1 ; rport=5070 ;branch=z\r\n\r\n"
        );
        Ok(())
    }

    fn via_with_inserts(via: &str, edits: &EditList) -> Result<String, Box<dyn std::error::Error>> {
        let text = format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\n\r\n");
        let m = Message::parse_slice(text.as_bytes())?;
        let out = String::from_utf8(m.to_bytes(edits))?;
        Ok(out
            .trim_start_matches("OPTIONS sip:a@b SIP/2.0\r\nVia: ")
            .trim_end_matches("\r\n\r\n")
            .to_owned())
    }

    #[test]
    fn inserted_via_params_go_right_after_the_sent_by_in_list_order() -> TestResult {
        let mut e = EditList::new();
        e.insert_top_via_param(None, b"rport", Some(b"5070"));
        e.insert_top_via_param(None, b"received", Some(b"192.0.2.1"));
        for (via, expected) in [
            (
                "SIP/2.0/UDP h:5060;branch=z",
                "SIP/2.0/UDP h:5060;rport=5070;received=192.0.2.1;branch=z",
            ),
            (
                "SIP/2.0/UDP h:5060 ;branch=z",
                "SIP/2.0/UDP h:5060 ;rport=5070;received=192.0.2.1;branch=z",
            ),
            (
                "SIP/2.0/UDP h",
                "SIP/2.0/UDP h;rport=5070;received=192.0.2.1",
            ),
            (
                "SIP/2.0/UDP h;branch=z, SIP/2.0/UDP g;branch=y",
                "SIP/2.0/UDP h;rport=5070;received=192.0.2.1;branch=z, SIP/2.0/UDP g;branch=y",
            ),
        ] {
            assert_eq!(via_with_inserts(via, &e)?, expected);
        }
        Ok(())
    }

    #[test]
    fn inserted_via_params_go_before_their_anchor_else_first() -> TestResult {
        let mut e = EditList::new();
        e.insert_top_via_param(Some(b"received"), b"rport", Some(b"5070"));
        e.set_top_via_param(b"received", Some(b"192.0.2.1"));
        // Before the first parameter of that name (any case), its LWS kept; the set edit
        // replaces every one.
        assert_eq!(
            via_with_inserts("SIP/2.0/UDP h;branch=z ; Received=1.1.1.1;received=2", &e)?,
            "SIP/2.0/UDP h;branch=z ;rport=5070; received=192.0.2.1;received=192.0.2.1"
        );
        assert_eq!(
            via_with_inserts("SIP/2.0/UDP h;received=1.1.1.1;branch=z", &e)?,
            "SIP/2.0/UDP h;rport=5070;received=192.0.2.1;branch=z"
        );
        // Without the anchor: first, and the set edit appends as usual.
        assert_eq!(
            via_with_inserts("SIP/2.0/UDP h;branch=z", &e)?,
            "SIP/2.0/UDP h;rport=5070;branch=z;received=192.0.2.1"
        );
        Ok(())
    }

    #[test]
    fn an_inserted_line_can_be_amended_by_its_index() -> TestResult {
        let mut e = EditList::new();
        e.set_max_forwards(69);
        let index = e.len();
        e.insert_header(InsertAt::Top, b"Record-Route: <sip:p;lr>");
        assert!(e.inserted_line_mut(0).is_none(), "not an insertion");
        assert!(e.inserted_line_mut(9).is_none());
        if let Some(line) = e.inserted_line_mut(index) {
            line.splice(line.len() - 1..line.len() - 1, b";x=1".iter().copied());
        }
        assert!(print(&e)?.contains("\r\nRecord-Route: <sip:p;lr;x=1>\r\nVia: "));
        Ok(())
    }

    #[test]
    fn top_lines_of_the_caller_follow_the_list_top_inserts() -> TestResult {
        let m = Message::parse_slice(REQ)?;
        let mut e = EditList::new();
        e.insert_header(InsertAt::Top, b"Record-Route: <sip:192.0.2.9;lr>");
        e.set_top_via_param(b"received", Some(b"192.0.2.7"));
        let mut out = b"x".to_vec();
        m.write_with_top_lines(
            &e,
            |out| out.extend_from_slice(b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKt\r\n"),
            &mut out,
        );
        let mut expected = b"x".to_vec();
        let mut with_line = e.clone();
        with_line.insert_header(InsertAt::Top, b"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKt");
        m.write_to(&with_line, &mut expected);
        assert_eq!(String::from_utf8(out)?, String::from_utf8(expected)?);
        let text = print(&with_line)?;
        assert!(text.starts_with(
            "INVITE sip:bob@example.com SIP/2.0\r\nRecord-Route: <sip:192.0.2.9;lr>\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKt\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport;received=192.0.2.7, "
        ));
        Ok(())
    }

    #[test]
    fn write_to_reuses_capacity() -> TestResult {
        let m = Message::parse_slice(REQ)?;
        let mut e = EditList::new();
        e.set_max_forwards(10);
        let mut out = Vec::with_capacity(4096);
        let ptr = out.as_ptr();
        m.write_to(&e, &mut out);
        assert_eq!(out.as_ptr(), ptr);
        Ok(())
    }
}
