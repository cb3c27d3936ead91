//! `corex`: `append_branch` (the extra branches tm forks to).

use sip_msg::Uri;
use sip_script::abi::{
    Arg, ArgKind, Branch, Ctx, FunctionExport, LogLevel, ModuleExports, RouteKinds,
};

const REQ_FAIL: RouteKinds = RouteKinds::REQUEST.union(RouteKinds::FAILURE);

static FUNCTIONS: [FunctionExport; 3] = [
    FunctionExport {
        name: "append_branch",
        args: &[],
        fixup: None,
        routes: REQ_FAIL,
        handler: w_append_branch,
    },
    FunctionExport {
        name: "append_branch",
        args: &[ArgKind::Format],
        fixup: None,
        routes: REQ_FAIL,
        handler: w_append_branch,
    },
    FunctionExport {
        name: "append_branch",
        args: &[ArgKind::Format, ArgKind::Str],
        fixup: None,
        routes: REQ_FAIL,
        handler: w_append_branch,
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "corex",
    functions: &FUNCTIONS,
    ..ModuleExports::EMPTY
};

/// A q value (`0.5`, `1`, `1.0`) as thousandths; `None` when out of 0..=1.
pub fn parse_q(text: &str) -> Option<u16> {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: u16 = if int.is_empty() { 0 } else { int.parse().ok()? };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_val: u16 = format!("{frac:0<3}").parse().ok()?;
    let q = int.checked_mul(1000)?.checked_add(frac_val)?;
    (q <= 1000).then_some(q)
}

/// `append_branch([uri[, q]])`: without a URI the current R-URI and `$du` become a branch
/// (Kamailio's idiom before rewriting the R-URI for the next target).
fn w_append_branch(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let (uri, dst_uri) = match args.first() {
        Some(a) => (ctx.arg_str(a).into_owned(), None),
        None => (ctx.ruri().into_owned(), ctx.dst_uri.clone()),
    };
    if Uri::parse(uri.as_bytes()).is_err() {
        ctx.log(
            LogLevel::Err,
            "corex",
            &format!("append_branch: bad URI `{uri}`"),
        );
        return -1;
    }
    let q = match args.get(1) {
        Some(a) => {
            let text = ctx.arg_str(a).into_owned();
            match parse_q(&text) {
                Some(q) => Some(q),
                None => {
                    ctx.log(
                        LogLevel::Err,
                        "corex",
                        &format!("append_branch: bad q `{text}`"),
                    );
                    return -1;
                }
            }
        }
        None => None,
    };
    let max = ctx.core().max_branches as usize;
    if ctx.branches.len() + 1 >= max {
        ctx.log(LogLevel::Err, "corex", "append_branch: too many branches");
        return -1;
    }
    let flags = ctx.bflags;
    ctx.branches.push(Branch {
        uri,
        dst_uri,
        q,
        flags,
    });
    1
}

#[cfg(test)]
mod tests {
    use sip_script::testhost::TestHost;

    use super::*;
    use crate::testutil::{INVITE, fmt, parse, runtime, s, with_ctx};

    #[test]
    fn append_branch_forms() {
        let msg = parse(INVITE);
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            ctx.dst_uri = Some("sip:10.0.0.9".into());
            assert_eq!(w_append_branch(ctx, &[]), 1);
            assert_eq!(w_append_branch(ctx, &[fmt("sip:carol@example.net")]), 1);
            assert_eq!(
                w_append_branch(ctx, &[fmt("sip:dave@example.net"), s("0.5")]),
                1
            );
            assert_eq!(w_append_branch(ctx, &[fmt("no uri")]), -1);
            assert_eq!(w_append_branch(ctx, &[fmt("sip:x@y"), s("1.5")]), -1);
            assert_eq!(ctx.branches.len(), 3);
            assert_eq!(ctx.branches[0].uri, "sip:bob@example.com");
            assert_eq!(ctx.branches[0].dst_uri.as_deref(), Some("sip:10.0.0.9"));
            assert_eq!(ctx.branches[2].q, Some(500));
        });
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.25"), Some(250));
        assert_eq!(parse_q(".5"), Some(500));
        assert_eq!(parse_q("1.0001"), None);
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q("x"), None);
    }
}
