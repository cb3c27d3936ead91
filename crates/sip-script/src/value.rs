//! Script values and Kamailio's conversion rules (K: src/core/rvalue.c).
//!
//! A value is an int, a string or null. Conversions follow Kamailio 5.6.3 as measured against
//! the running server: a string converts to an int only when it is *all* number — an optional
//! sign and decimal digits within Kamailio's 32-bit `int`, or `0x`/`0X` and hex digits (taken
//! modulo 2^32, so `"0xffffffff"` is -1). Anything else (`"12abc"`, `" 12"`, `"12 "`,
//! `"-0x10"`, `""`, `"2147483648"`) fails and counts as 0 (Kamailio logs "automatic string to
//! int conversion failed"). An int prints in decimal; null is 0 / the empty string — except
//! in `xlog`, which prints `<null>`.

use std::borrow::Cow;
use std::fmt;

/// A script value.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Value {
    /// `$null`, a missing header, `$rU` of a URI without user, an unset `$avp`.
    #[default]
    Null,
    Int(i64),
    Str(String),
}

/// The text `xlog` and format strings print for a null value (K: src/core/pvapi.c).
pub const NULL_TEXT: &str = "<null>";

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A string from message bytes; invalid UTF-8 is replaced (SIP text is ASCII in practice).
    pub fn from_bytes(b: &[u8]) -> Value {
        Value::Str(String::from_utf8_lossy(b).into_owned())
    }

    /// `Some(bytes)` as a string value, `None` as null.
    pub fn opt_bytes(b: Option<&[u8]>) -> Value {
        b.map_or(Value::Null, Value::from_bytes)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The integer value as an expression, cast or `switch` sees it: strings by
    /// [`str_to_int`] (0 when that fails), null as 0.
    pub fn to_int(&self) -> i64 {
        match self {
            Value::Null => 0,
            Value::Int(i) => *i,
            Value::Str(s) => str_to_int(s).unwrap_or(0),
        }
    }

    /// The integer value if this is an int or a string holding exactly a signed decimal
    /// number (Kamailio's `str2sint`, used by `{s.int}` and int module parameters: no blanks,
    /// no hex).
    pub fn as_exact_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => str_to_sint(s),
            Value::Null => None,
        }
    }

    /// The string value: ints in decimal, null as the empty string.
    pub fn to_str(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Str(s) => Cow::Borrowed(s),
        }
    }

    /// Kamailio truth: the integer value is > 0.
    pub fn is_true(&self) -> bool {
        self.to_int() > 0
    }

    /// Appends the value as a format string prints it (null → `<null>`).
    pub fn write_to(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str(NULL_TEXT),
            Value::Int(i) => push_int(out, *i),
            Value::Str(s) => out.push_str(s),
        }
    }
}

/// Appends `i` in decimal, as `{i}` prints it, without the `fmt` machinery (format strings
/// print integers per message: `$sp`, `$pp`, `$cs` in log lines).
pub(crate) fn push_int(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    push_u64(out, i.unsigned_abs());
}

/// "00" to "99": two digits appended per step instead of one.
const DIGIT_PAIRS: &str = "\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal: the digits above the last two first, then those two.
fn push_u64(out: &mut String, n: u64) {
    if n >= 100 {
        push_u64(out, n / 100);
    }
    push_below_100(out, (n % 100) as u8, n >= 100);
}

/// Appends a byte value (an IPv4 octet) in decimal.
#[inline]
pub(crate) fn push_u8(out: &mut String, n: u8) {
    if n >= 100 {
        // The hundreds digit is 1 or 2: a one-byte char.
        out.push(char::from(b'0' + n / 100));
    }
    push_below_100(out, n % 100, n >= 100);
}

/// Appends `n` (below 100) as two digits, or as one below 10 unless `pad`.
#[inline]
fn push_below_100(out: &mut String, n: u8, pad: bool) {
    if n >= 10 || pad {
        let at = usize::from(n) * 2;
        out.push_str(DIGIT_PAIRS.get(at..at + 2).unwrap_or_default());
    } else {
        out.push(char::from(b'0' + n));
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str(NULL_TEXT),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

/// The int a string converts to in an expression (K: rvalue.c `rval_get_int`): the whole
/// string must be a signed decimal number in the 32-bit range ([`str_to_sint`]) or `0x`/`0X`
/// followed by hex digits, wrapped to 32 bits as Kamailio's unsigned parse does (no sign
/// before `0x`). `None` when the conversion fails.
pub fn str_to_int(s: &str) -> Option<i64> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
    match hex {
        Some(digits) => {
            if digits.is_empty() {
                return None;
            }
            let mut n: u32 = 0;
            for b in digits.bytes() {
                let d = char::from(b).to_digit(16)?;
                n = n.wrapping_mul(16).wrapping_add(d);
            }
            // The unsigned result read back as Kamailio's signed int.
            Some(i64::from(n as i32))
        }
        None => str_to_sint(s),
    }
}

/// An optional `+`/`-` and decimal digits only, within `i32` (K: ut.h `str2sint` as 5.6.3
/// behaves: `"2147483648"` fails) — exactly what Rust's `i32` parser accepts.
pub fn str_to_sint(s: &str) -> Option<i64> {
    s.parse::<i32>().ok().map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Value::str("12abc").to_int(), 0);
        assert_eq!(Value::str("abc").to_int(), 0);
        assert_eq!(Value::str("-7").to_int(), -7);
        assert_eq!(Value::Null.to_int(), 0);
        assert_eq!(Value::Int(5).to_str(), "5");
        assert_eq!(Value::Null.to_str(), "");
        assert_eq!(Value::Null.to_string(), "<null>");
        assert!(!Value::Int(0).is_true());
        assert!(!Value::Int(-1).is_true());
        assert!(Value::str("3").is_true());
        assert_eq!(Value::str("10").as_exact_int(), Some(10));
        assert_eq!(Value::str("10x").as_exact_int(), None);
    }

    /// Each pair measured with Kamailio 5.6.3 (`$var(r) = 0 + $var(x)` with `$var(x)` set to
    /// the string, then xlog).
    #[test]
    fn string_to_int_matches_kamailio() {
        let cases: &[(&str, i64)] = &[
            ("12", 12),
            ("12abc", 0),
            (" 12", 0),
            ("12 ", 0),
            ("0x10", 16),
            ("0X10", 16),
            ("0x1F", 31),
            ("-5", -5),
            ("+5", 5),
            ("-0x10", 0),
            ("+0x10", 0),
            ("0x", 0),
            ("0xZZ", 0),
            ("00x10", 0),
            ("010", 10),
            ("0b101", 0),
            ("1e3", 0),
            ("", 0),
            ("-", 0),
            ("+-5", 0),
            ("2147483647", 2_147_483_647),
            ("2147483648", 0),
            ("-2147483648", -2_147_483_648),
            ("-2147483649", 0),
            ("99999999999", 0),
            ("0x7fffffff", 2_147_483_647),
            ("0x80000000", -2_147_483_648),
            ("0xffffffff", -1),
            ("0x100000000", 0),
            ("0xFFFFFFFFF", -1),
        ];
        for (text, want) in cases {
            assert_eq!(Value::str(*text).to_int(), *want, "{text:?}");
        }
    }

    /// `{s.int}` and int module parameters take signed decimal only (Kamailio `str2sint`).
    #[test]
    fn exact_int_is_signed_decimal_only() {
        assert_eq!(Value::str("-5").as_exact_int(), Some(-5));
        assert_eq!(Value::str("+5").as_exact_int(), Some(5));
        for bad in ["0x10", " 12", "12 ", "12abc", "", "2147483648"] {
            assert_eq!(Value::str(bad).as_exact_int(), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_print_as_display_does() {
        let edges = [0, 7, -7, 9, 10, 99, 100, 101, 1000, 5060, -5060, 10_001];
        for i in edges.into_iter().chain([i64::MAX, i64::MIN, i64::MIN + 1]) {
            let mut out = String::from("x");
            Value::Int(i).write_to(&mut out);
            assert_eq!(out, format!("x{i}"));
        }
    }
}
