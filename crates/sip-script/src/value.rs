//! Script values and Kamailio's conversion rules (K: src/core/rvalue.c).
//!
//! A value is an int, a string or null. Conversions follow Kamailio: a string converts to an
//! int by its leading decimal number (`"12abc"` → 12, `"abc"` → 0), an int prints in decimal,
//! null is 0 / the empty string — except in `xlog`, which prints `<null>`.

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

    /// The integer value: strings by their leading (signed) decimal number, null as 0.
    pub fn to_int(&self) -> i64 {
        match self {
            Value::Null => 0,
            Value::Int(i) => *i,
            Value::Str(s) => str_to_int(s).unwrap_or(0),
        }
    }

    /// The integer value if this is an int or a string holding exactly a number.
    pub fn as_exact_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse().ok(),
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

/// Leading signed decimal number of `s` after optional blanks (`" -12x"` → -12); `None` when
/// there are no digits.
pub fn str_to_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits[..end].bytes() {
        n = n.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
    }
    Some(if neg { n.wrapping_neg() } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Value::str("12abc").to_int(), 12);
        assert_eq!(Value::str("abc").to_int(), 0);
        assert_eq!(Value::str(" -7").to_int(), -7);
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
