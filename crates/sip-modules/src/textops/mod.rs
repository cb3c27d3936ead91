//! `textops`: method tests and header edits (`is_method`, `append_hf`, `insert_hf`,
//! `remove_hf`, `is_present_hf`, `search`, `has_body`).

use std::sync::Arc;

use sip_msg::{HeaderName, InsertAt, Method, Span};
use sip_script::abi::{
    Arg, ArgKind, Ctx, FixupCtx, FixupError, FunctionExport, ModuleExports, RouteKinds,
};

use crate::util::header_line;

const ANY: RouteKinds = RouteKinds::ANY;

static FUNCTIONS: [FunctionExport; 12] = [
    FunctionExport {
        name: "is_method",
        args: &[ArgKind::Str],
        fixup: Some(fixup_methods),
        routes: ANY,
        handler: w_is_method,
    },
    FunctionExport {
        name: "append_hf",
        args: &[ArgKind::Format],
        fixup: None,
        routes: ANY,
        handler: w_append_hf,
    },
    FunctionExport {
        name: "append_hf",
        args: &[ArgKind::Format, ArgKind::Str],
        fixup: None,
        routes: ANY,
        handler: w_append_hf_after,
    },
    FunctionExport {
        name: "insert_hf",
        args: &[ArgKind::Format],
        fixup: None,
        routes: ANY,
        handler: w_insert_hf,
    },
    FunctionExport {
        name: "insert_hf",
        args: &[ArgKind::Format, ArgKind::Str],
        fixup: None,
        routes: ANY,
        handler: w_insert_hf_before,
    },
    FunctionExport {
        name: "remove_hf",
        args: &[ArgKind::Str],
        fixup: None,
        routes: ANY,
        handler: w_remove_hf,
    },
    FunctionExport {
        name: "is_present_hf",
        args: &[ArgKind::Str],
        fixup: None,
        routes: ANY,
        handler: w_is_present_hf,
    },
    FunctionExport {
        name: "search",
        args: &[ArgKind::Regex],
        fixup: Some(fixup_line_regex),
        routes: ANY,
        handler: w_search,
    },
    FunctionExport {
        name: "search_body",
        args: &[ArgKind::Regex],
        fixup: Some(fixup_line_regex),
        routes: ANY,
        handler: w_search_body,
    },
    FunctionExport {
        name: "has_body",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: w_has_body,
    },
    FunctionExport {
        name: "has_body",
        args: &[ArgKind::Str],
        fixup: None,
        routes: ANY,
        handler: w_has_body_type,
    },
    FunctionExport {
        name: "append_to_reply",
        args: &[ArgKind::Format],
        fixup: None,
        routes: RouteKinds::REQUEST.union(RouteKinds::FAILURE),
        handler: w_append_to_reply,
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "textops",
    functions: &FUNCTIONS,
    ..ModuleExports::EMPTY
};

/// The method names of an `is_method("A|B")` argument, upper-cased, with the known
/// methods among them as a bit set (a known request method is then one AND, like
/// Kamailio's method bitmask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSet {
    names: Vec<String>,
    /// [`method_bit`] of every name that is a known method.
    known: u16,
}

/// A bit for each known method; `None` for extension methods.
fn method_bit(method: Method) -> Option<u16> {
    let index = match method {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Cancel => 2,
        Method::Bye => 3,
        Method::Options => 4,
        Method::Register => 5,
        Method::Prack => 6,
        Method::Subscribe => 7,
        Method::Notify => 8,
        Method::Publish => 9,
        Method::Info => 10,
        Method::Refer => 11,
        Method::Message => 12,
        Method::Update => 13,
        Method::Other(_) => return None,
    };
    Some(1 << index)
}

impl MethodSet {
    /// Parses `A|B|C`; empty alternatives are an error.
    pub fn parse(list: &str) -> Result<MethodSet, String> {
        let names: Vec<String> = list
            .split('|')
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        if names.iter().any(String::is_empty) {
            return Err(format!("bad method list `{list}`"));
        }
        let known = names
            .iter()
            .filter_map(|n| method_bit(Method::from_bytes(n.as_bytes(), Span::default())))
            .fold(0, |all, b| all | b);
        Ok(MethodSet { names, known })
    }

    /// The names, upper-cased, in list order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Kamailio compares method names case-insensitively.
    pub fn contains(&self, method: &[u8]) -> bool {
        self.names
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(method))
    }

    /// Whether a request's method is in the set. A known `Method` was written exactly as
    /// its upper-case name, which matches a listed name iff that name is the same known
    /// method, so the bit set answers without comparing text.
    pub fn contains_method(&self, method: Method, token: &[u8]) -> bool {
        match method_bit(method) {
            Some(bit) => self.known & bit != 0,
            None => self.contains(token),
        }
    }
}

fn fixup_methods(_ctx: &mut FixupCtx<'_>, args: &mut [Arg]) -> Result<(), FixupError> {
    let Some(arg) = args.first_mut() else {
        return Err(FixupError::call("is_method needs a method list"));
    };
    let list = arg
        .const_str()
        .ok_or_else(|| FixupError::arg(0, "is_method needs a constant method list"))?;
    let set = MethodSet::parse(list).map_err(|e| FixupError::arg(0, e))?;
    *arg = Arg::Data(Arc::new(set));
    Ok(())
}

fn truth(b: bool) -> i32 {
    if b { 1 } else { -1 }
}

/// The method of a request, or of the CSeq of a reply.
fn message_method<'m>(ctx: &Ctx<'m>) -> Option<&'m [u8]> {
    let msg = ctx.msg;
    match msg.method_bytes() {
        Some(m) => Some(m),
        None => msg.cseq().ok().map(|c| c.method),
    }
}

fn w_is_method(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(arg) = args.first() else { return -1 };
    let Some(method) = message_method(ctx) else {
        return -1;
    };
    match arg.data::<MethodSet>() {
        Some(set) => truth(match ctx.msg.method() {
            Some(known) => set.contains_method(known, method),
            None => set.contains(method),
        }),
        // Not fixed up (a dynamic list): parse per call.
        None => {
            let list = ctx.arg_str(arg).into_owned();
            truth(MethodSet::parse(&list).is_ok_and(|s| s.contains(method)))
        }
    }
}

fn w_append_hf(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let text = ctx.arg_str(a).into_owned();
    ctx.edits
        .insert_header(InsertAt::BeforeBody, header_line(&text).as_bytes());
    1
}

/// `append_hf(text, name)`: after the last header called `name`.
fn w_append_hf_after(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let (Some(a), Some(n)) = (args.first(), args.get(1)) else {
        return -1;
    };
    let text = ctx.arg_str(a).into_owned();
    let name = ctx.arg_str(n).into_owned();
    ctx.edits
        .insert_after_last_named(name.trim().as_bytes(), header_line(&text).as_bytes());
    1
}

fn w_insert_hf(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let text = ctx.arg_str(a).into_owned();
    ctx.edits
        .insert_header(InsertAt::Top, header_line(&text).as_bytes());
    1
}

/// `insert_hf(txt, hdr)`: before the first `hdr` header (long or compact form, any case);
/// at the top when the message has none, as Kamailio 5.6.3 does (still true).
fn w_insert_hf_before(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let (Some(a), Some(n)) = (args.first(), args.get(1)) else {
        return -1;
    };
    let text = ctx.arg_str(a).into_owned();
    let name = ctx.arg_str(n).into_owned();
    ctx.edits
        .insert_before_first_named(name.trim().as_bytes(), header_line(&text).as_bytes());
    1
}

/// Removes every header with that name (long or compact form); false when none existed.
fn w_remove_hf(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let name = ctx.arg_str(a).trim().to_string();
    let count = ctx.msg.headers_named(name.as_bytes()).count();
    if count == 0 {
        return -1;
    }
    ctx.edits.remove_header(name.as_bytes());
    i32::try_from(count).unwrap_or(i32::MAX)
}

fn w_is_present_hf(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let name = ctx.arg_str(a).trim().to_string();
    truth(ctx.msg.headers_named(name.as_bytes()).next().is_some())
}

/// Rebuilds a pattern the way Kamailio's textops compiles it:
/// `regcomp(REG_EXTENDED|REG_ICASE|REG_NEWLINE)`. So the match ignores case, `^`/`$` match at
/// every line start/end (before the `\n`, so `two$` does not match `two\r\n`: a `\r` is an
/// ordinary character, as in POSIX), and neither `.` nor a negated bracket `[^...]` matches a
/// newline. The `regex` crate's `.` already stops at `\n`; its `[^...]` does not, so each
/// negated bracket is rewritten to exclude `\n` (see [`exclude_newline_from_negated_classes`]).
pub fn line_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&exclude_newline_from_negated_classes(pattern))
        .case_insensitive(true)
        .multi_line(true)
        .build()
}

/// `[^X]` → `[[^X]&&[^\n]]` (class intersection), the rest unchanged. Bracket ends are found
/// with the `regex` crate's syntax (the pattern already compiled with it): `\` escapes, a `]`
/// right after `[` or `[^` is literal, `[:name:]` is a POSIX class, another `[` nests.
pub fn exclude_newline_from_negated_classes(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'\\') => i += 2,
            Some(b'[') => {
                let end = bracket_end(bytes, i);
                let Some(end) = end else { break };
                if bytes.get(i + 1) == Some(&b'^') {
                    // Both indices are ASCII bytes, so they are char boundaries.
                    out.push_str(pattern.get(copied..i).unwrap_or_default());
                    out.push('[');
                    out.push_str(pattern.get(i..=end).unwrap_or_default());
                    out.push_str("&&[^\\n]]");
                    copied = end + 1;
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    out.push_str(pattern.get(copied..).unwrap_or_default());
    out
}

/// The index of the `]` closing the bracket expression that opens at `open`.
fn bracket_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if bytes.get(i) == Some(&b'^') {
        i += 1;
    }
    if bytes.get(i) == Some(&b']') {
        i += 1;
    }
    let mut depth = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 1,
            b'[' if bytes.get(i + 1) == Some(&b':') => {
                let close = bytes.get(i + 2..)?.windows(2).position(|w| w == b":]")?;
                i += 2 + close + 1;
            }
            b'[' => {
                depth += 1;
                if bytes.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if depth == 0 => return Some(i),
            b']' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Fixup of `search`/`search_body`: recompiles the pattern with Kamailio's flags.
fn fixup_line_regex(_ctx: &mut FixupCtx<'_>, args: &mut [Arg]) -> Result<(), FixupError> {
    let Some(Arg::Regex(re)) = args.first_mut() else {
        return Err(FixupError::arg(0, "expected a constant regular expression"));
    };
    *re = line_regex(re.as_str()).map_err(|e| {
        // The crate's message spans several lines; its last one says what is wrong.
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        FixupError::arg(0, format!("bad regular expression: {}", reason.trim()))
    })?;
    Ok(())
}

fn regex_matches(args: &[Arg], text: &[u8]) -> i32 {
    match args.first() {
        Some(Arg::Regex(re)) => truth(re.is_match(&String::from_utf8_lossy(text))),
        _ => -1,
    }
}

/// `search(re)`: the regex against the whole received message.
fn w_search(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let msg = ctx.msg;
    let end = msg.body_span().end as usize;
    regex_matches(args, msg.as_bytes().get(..end).unwrap_or(msg.as_bytes()))
}

fn w_search_body(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    regex_matches(args, ctx.msg.body())
}

fn w_has_body(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    truth(!ctx.msg.body().is_empty())
}

/// `has_body("type/subtype")`: a body of that Content-Type.
fn w_has_body_type(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let wanted = ctx.arg_str(a).trim().to_string();
    if ctx.msg.body().is_empty() {
        return -1;
    }
    let Some(ct) = ctx.msg.header_value(HeaderName::ContentType) else {
        return -1;
    };
    let mime = ct.split(|&b| b == b';').next().unwrap_or_default();
    truth(mime.trim_ascii().eq_ignore_ascii_case(wanted.as_bytes()))
}

/// `append_to_reply(text)`: extra header lines for the next local reply. Stored with the
/// message's private AVPs; `sl` adds them.
fn w_append_to_reply(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let text = ctx.arg_str(a).into_owned();
    let mut lines =
        crate::util::private_get(ctx, crate::util::private_name!("textops", "reply_headers"))
            .map(|v| v.to_str().into_owned())
            .unwrap_or_default();
    lines.push_str(header_line(&text));
    lines.push_str("\r\n");
    crate::util::private_set(
        ctx,
        crate::util::private_name!("textops", "reply_headers"),
        sip_script::abi::Value::Str(lines),
    );
    1
}

/// The header lines `append_to_reply` queued for this message (no line ends).
pub fn reply_headers(ctx: &Ctx<'_>) -> Vec<String> {
    crate::util::private_get(ctx, crate::util::private_name!("textops", "reply_headers"))
        .map(|v| {
            v.to_str()
                .split("\r\n")
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
