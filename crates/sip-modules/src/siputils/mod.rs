//! `siputils`: `has_totag`, `is_first_hop`, `uri_param`.

use sip_msg::Uri;
use sip_script::abi::{Arg, ArgKind, Ctx, FunctionExport, ModuleExports, RouteKinds};

const ANY: RouteKinds = RouteKinds::ANY;
const REQ: RouteKinds = RouteKinds::REQUEST
    .union(RouteKinds::FAILURE)
    .union(RouteKinds::BRANCH);

static FUNCTIONS: [FunctionExport; 4] = [
    FunctionExport {
        name: "has_totag",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: w_has_totag,
    },
    FunctionExport {
        name: "is_first_hop",
        args: &[],
        fixup: None,
        routes: ANY,
        handler: w_is_first_hop,
    },
    FunctionExport {
        name: "uri_param",
        args: &[ArgKind::Format],
        fixup: None,
        routes: REQ,
        handler: w_uri_param,
    },
    FunctionExport {
        name: "uri_param",
        args: &[ArgKind::Format, ArgKind::Format],
        fixup: None,
        routes: REQ,
        handler: w_uri_param_value,
    },
];

pub static MODULE: ModuleExports = ModuleExports {
    name: "siputils",
    functions: &FUNCTIONS,
    ..ModuleExports::EMPTY
};

fn truth(b: bool) -> i32 {
    if b { 1 } else { -1 }
}

fn w_has_totag(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    truth(ctx.msg.to_tag().is_some())
}

/// A request with one Via came straight from its UAC; a reply with two Vias goes straight
/// back to it.
fn w_is_first_hop(ctx: &mut Ctx<'_>, _args: &[Arg]) -> i32 {
    let vias = ctx.msg.vias().count();
    truth(if ctx.is_request() {
        vias == 1
    } else {
        vias == 2
    })
}

/// The current R-URI's parameter `name`: `None` absent, `Some(None)` without value.
///
/// As Kamailio's `uri_param`: names compare case-sensitively (`strncmp`), and a list with a
/// `name=` of empty value does not parse there, so every lookup in it fails.
fn ruri_param(ctx: &Ctx<'_>, name: &str) -> Option<Option<String>> {
    let ruri = ctx.ruri();
    let uri = Uri::parse(ruri.as_bytes()).ok()?;
    if uri
        .params
        .iter()
        .any(|p| p.value.is_some_and(<[u8]>::is_empty))
    {
        return None;
    }
    uri.params
        .iter()
        .find(|p| p.name == name.as_bytes())
        .map(|p| p.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// `uri_param(name)`: true only for a parameter without value (`;lr`); Kamailio answers
/// false for `;transport=udp`.
fn w_uri_param(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let Some(a) = args.first() else { return -1 };
    let name = ctx.arg_str(a).into_owned();
    truth(ruri_param(ctx, &name).is_some_and(|v| v.is_none()))
}

/// `uri_param(name, value)`: the value compares case-sensitively; `""` matches a
/// parameter without value.
fn w_uri_param_value(ctx: &mut Ctx<'_>, args: &[Arg]) -> i32 {
    let (Some(a), Some(b)) = (args.first(), args.get(1)) else {
        return -1;
    };
    let name = ctx.arg_str(a).into_owned();
    let value = ctx.arg_str(b).into_owned();
    truth(ruri_param(ctx, &name).is_some_and(|v| v.unwrap_or_default() == value))
}

#[cfg(test)]
mod tests {
    use sip_script::testhost::TestHost;

    use super::*;
    use crate::testutil::{INVITE, fmt, invite_with, parse, runtime, with_ctx};

    #[test]
    fn has_totag_and_first_hop() {
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        let initial = parse(INVITE);
        with_ctx(&mut rt, &mut host, &initial, |ctx| {
            assert_eq!(w_has_totag(ctx, &[]), -1);
            assert_eq!(w_is_first_hop(ctx, &[]), 1);
        });
        let in_dialog = parse(&invite_with(
            "To: <sip:bob@example.com>",
            "To: <sip:bob@example.com>;tag=b1",
        ));
        let two_vias = parse(&invite_with(
            "Max-Forwards: 70\r\n",
            "Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK2\r\nMax-Forwards: 70\r\n",
        ));
        with_ctx(&mut rt, &mut host, &in_dialog, |ctx| {
            assert_eq!(w_has_totag(ctx, &[]), 1);
        });
        with_ctx(&mut rt, &mut host, &two_vias, |ctx| {
            assert_eq!(w_is_first_hop(ctx, &[]), -1);
        });
    }

    #[test]
    fn uri_param_with_and_without_value() {
        let msg = parse(&INVITE.replacen(
            "sip:bob@example.com",
            "sip:bob@example.com;user=phone;lr",
            1,
        ));
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(w_uri_param(ctx, &[fmt("lr")]), 1);
            assert_eq!(w_uri_param(ctx, &[fmt("transport")]), -1);
            assert_eq!(w_uri_param_value(ctx, &[fmt("user"), fmt("phone")]), 1);
            assert_eq!(w_uri_param_value(ctx, &[fmt("user"), fmt("ip")]), -1);
            ctx.set_ruri("sip:bob@example.com;lr;transport=udp");
            assert_eq!(w_uri_param(ctx, &[fmt("lr")]), 1, "follows $ru");
        });
    }

    /// What Kamailio 5.6.3 answered for these R-URIs (checked on the real server).
    #[test]
    fn uri_param_matches_kamailio_on_values_and_case() {
        let msg = parse(&INVITE.replacen(
            "sip:bob@example.com",
            "sip:bob@example.com;transport=udp;lr;Flag;user=ip",
            1,
        ));
        let (mut rt, mut host) = (runtime(0), TestHost::new());
        with_ctx(&mut rt, &mut host, &msg, |ctx| {
            assert_eq!(
                w_uri_param(ctx, &[fmt("transport")]),
                -1,
                "one argument: only a parameter without value"
            );
            assert_eq!(w_uri_param(ctx, &[fmt("Flag")]), 1);
            assert_eq!(
                w_uri_param(ctx, &[fmt("flag")]),
                -1,
                "names are case-sensitive"
            );
            assert_eq!(w_uri_param(ctx, &[fmt("LR")]), -1);
            assert_eq!(w_uri_param(ctx, &[fmt("nope")]), -1);
            let pair = |n: &str, v: &str| [fmt(n), fmt(v)];
            assert_eq!(w_uri_param_value(ctx, &pair("transport", "udp")), 1);
            assert_eq!(w_uri_param_value(ctx, &pair("transport", "UDP")), -1);
            assert_eq!(w_uri_param_value(ctx, &pair("Transport", "udp")), -1);
            assert_eq!(
                w_uri_param_value(ctx, &pair("lr", "")),
                1,
                "\"\" = no value"
            );
            assert_eq!(w_uri_param_value(ctx, &pair("user", "")), -1);
            ctx.set_ruri("sip:bob@example.com;lr;e=;f");
            assert_eq!(
                w_uri_param(ctx, &[fmt("lr")]),
                -1,
                "`e=` makes Kamailio's parameter parse fail"
            );
            assert_eq!(w_uri_param(ctx, &[fmt("f")]), -1);
        });
    }
}
