//! Arbitrary cfg text never panics the front end: it loads or returns diagnostics.

use proptest::prelude::*;

const PIECES: &[&str] = &[
    "request_route",
    "route",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    ";",
    "if",
    "else",
    "while",
    "switch",
    "case",
    "default",
    ":",
    "break",
    "return",
    "exit",
    "$var(x)",
    "$(hdr(Via)[1]{s.len})",
    "=",
    "==",
    "+=",
    "+",
    "-",
    "\"s\"",
    "'r\\r\\n'",
    "1",
    "0x1",
    "08",
    "#!define A 1\n",
    "#!ifdef A\n",
    "#!else\n",
    "#!endif\n",
    "A",
    "listen=udp:127.0.0.1:5060\n",
    "/*",
    "*/",
    "\n",
    " ",
    "$",
    "::1",
    "1.2.3.4",
    "!",
    "&&",
    "||",
    "modparam(\"tm\",\"x\",1)",
    "loadmodule \"tm\"\n",
    "import_file \"x\"\n",
    "\"unterminated",
    "é",
    "\\",
];

proptest! {
    #[test]
    fn token_soup_never_panics(idx in proptest::collection::vec(0..PIECES.len(), 0..60)) {
        let text: String = idx.iter().map(|&i| PIECES[i]).collect();
        let _ = sip_script::load_str("fuzz.cfg", &text, &[]);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Err(e) = sip_script::load_str("fuzz.cfg", &text, &[]) {
            let _ = e.render();
        }
    }

    #[test]
    fn format_parser_never_panics(text in "[$(){}\\[\\]a-z0-9.,*-]{0,40}") {
        let _ = sip_script::parse_format(&text);
    }
}
