//! The supported transformations (K: src/modules/pv/pv_trans.c): `{s.len} {s.int}
//! {s.tolower} {s.toupper} {s.select,i,c} {uri.user} {uri.host}`. Anything else is a load
//! error. A transformation that fails gives `$null`, which a format string (`xlog`) prints as
//! nothing, not `<null>` (Kamailio 5.6.3: `$(hdr(Nope){s.len})` prints empty): every
//! transformation of `$null` fails (K: pv_trans.c returns -1 for a `PV_VAL_NULL` input), and so
//! does `{s.int}` of a string that is not a signed decimal number (`"12abc"`, `" 12"`, `"0x10"`).

use sip_msg::Uri;

use crate::abi::Ctx;
use crate::pv::Transform;
use crate::pvar::PvEnv;
use crate::value::Value;

#[derive(Clone, Debug)]
pub(crate) enum Trans {
    Len,
    Int,
    Lower,
    Upper,
    /// Field `index` (negative from the end) when split at `sep`.
    Select {
        index: i64,
        sep: char,
    },
    UriUser,
    UriHost,
}

pub(crate) fn compile(t: &Transform, _env: &mut PvEnv) -> Result<Trans, String> {
    let no_args = |tr: Trans| {
        if t.args.is_empty() {
            Ok(tr)
        } else {
            Err(format!(
                "transformation `{{{}}}` takes no arguments",
                t.name
            ))
        }
    };
    match t.name.as_str() {
        "s.len" => no_args(Trans::Len),
        "s.int" => no_args(Trans::Int),
        "s.tolower" => no_args(Trans::Lower),
        "s.toupper" => no_args(Trans::Upper),
        "uri.user" => no_args(Trans::UriUser),
        "uri.host" => no_args(Trans::UriHost),
        "s.select" => {
            let [index, sep] = t.args.as_slice() else {
                return Err(
                    "transformation `{s.select,index,separator}` needs two arguments".into(),
                );
            };
            let index = index
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("bad index `{index}` in `{{s.select}}`"))?;
            let mut chars = sep.chars();
            let (Some(sep), None) = (chars.next(), chars.next()) else {
                return Err(format!(
                    "bad separator `{sep}` in `{{s.select}}`: one character"
                ));
            };
            Ok(Trans::Select { index, sep })
        }
        other => Err(format!("unknown transformation `{{{other}}}`")),
    }
}

fn apply(t: &Trans, v: Value) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match t {
        Trans::Len => Value::Int(v.to_str().len() as i64),
        Trans::Int => v.as_exact_int().map_or(Value::Null, Value::Int),
        Trans::Lower => Value::Str(v.to_str().to_ascii_lowercase()),
        Trans::Upper => Value::Str(v.to_str().to_ascii_uppercase()),
        Trans::Select { index, sep } => {
            let s = v.to_str();
            let fields: Vec<&str> = s.split(*sep).collect();
            let pos = if *index < 0 {
                fields.len().checked_sub(index.unsigned_abs() as usize)
            } else {
                Some(*index as usize)
            };
            pos.and_then(|p| fields.get(p))
                .map_or(Value::Null, |f| Value::str(*f))
        }
        Trans::UriUser | Trans::UriHost => {
            let s = v.to_str();
            match Uri::parse(s.trim().as_bytes()) {
                Ok(u) if matches!(t, Trans::UriUser) => Value::opt_bytes(u.user),
                Ok(u) => Value::from_bytes(u.host_raw),
                Err(_) => Value::Null,
            }
        }
    }
}

pub(crate) fn apply_all(_ctx: &mut Ctx<'_>, ts: &[Trans], mut v: Value) -> Value {
    for t in ts {
        v = apply(t, v);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(name: &str, args: &[&str]) -> Trans {
        compile(
            &Transform {
                name: name.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
            },
            &mut PvEnv::default(),
        )
        .unwrap()
    }

    #[test]
    fn string_transformations() {
        assert_eq!(apply(&tr("s.len", &[]), Value::str("abcd")), Value::Int(4));
        assert_eq!(apply(&tr("s.int", &[]), Value::str("42")), Value::Int(42));
        assert_eq!(apply(&tr("s.int", &[]), Value::str("-5")), Value::Int(-5));
        assert_eq!(
            apply(&tr("s.tolower", &[]), Value::str("AbC")),
            Value::str("abc")
        );
        assert_eq!(
            apply(&tr("s.toupper", &[]), Value::str("AbC")),
            Value::str("ABC")
        );
        let sel = tr("s.select", &["1", ","]);
        assert_eq!(apply(&sel, Value::str("a,b,c")), Value::str("b"));
        let last = tr("s.select", &["-1", ","]);
        assert_eq!(apply(&last, Value::str("a,b,c")), Value::str("c"));
        assert_eq!(apply(&sel, Value::str("a")), Value::Null);
    }

    /// Measured with Kamailio 5.6.3: these transformations fail and give an empty value.
    #[test]
    fn failing_transformations_give_null() {
        let int = tr("s.int", &[]);
        for bad in ["12abc", " 12", "0x10", "-0x10", ""] {
            assert_eq!(apply(&int, Value::str(bad)), Value::Null, "{bad:?}");
        }
        assert_eq!(apply(&tr("s.len", &[]), Value::Null), Value::Null);
        assert_eq!(apply(&int, Value::Null), Value::Null);
        assert_eq!(apply(&tr("s.tolower", &[]), Value::Null), Value::Null);
    }

    #[test]
    fn uri_transformations() {
        let u = Value::str("sip:alice@example.com:5070;transport=udp");
        assert_eq!(apply(&tr("uri.user", &[]), u.clone()), Value::str("alice"));
        assert_eq!(apply(&tr("uri.host", &[]), u), Value::str("example.com"));
        assert_eq!(
            apply(&tr("uri.user", &[]), Value::str("sip:h")),
            Value::Null
        );
    }

    #[test]
    fn unknown_and_bad_arguments_are_errors() {
        let mut env = PvEnv::default();
        let t = |name: &str, args: &[&str]| Transform {
            name: name.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        assert!(compile(&t("s.md5x", &[]), &mut env).is_err());
        assert!(compile(&t("s.select", &["x", ","]), &mut env).is_err());
        assert!(compile(&t("s.select", &["1"]), &mut env).is_err());
        assert!(compile(&t("s.len", &["1"]), &mut env).is_err());
    }
}
