//! Text quoted from input, made safe to print.
//!
//! Keys, values and file names come from whoever wrote the manifest (on a pull request, a
//! stranger). Printed raw, they can clear a CI log (`ESC[2J`), paint a fake "ok" line after a
//! newline, or reorder what a reader sees (the bidi overrides U+202A–U+202E and isolates
//! U+2066–U+2069). Every report that writes text for a terminal or a log (human, GitHub
//! workflow commands, JUnit) passes what it quotes through [`escape`], the one place that decides
//! what is shown as an escape. Machine formats that have their own escaping (JSON, SARIF) keep
//! the text as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal or a log as itself: control characters (C0, DEL, C1,
/// newlines and tabs included) and the characters that reorder or hide text (bidi embeddings,
/// overrides and isolates, the marks, zero-width joiners and the byte-order mark).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200B}'..='\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{FEFF}'
        )
}

/// `text` with every [unsafe](is_unsafe) character written as an escape: `\n`, `\r`, `\t`, or
/// `\u{1b}`. Borrowed, with no copy, when there is nothing to escape (the usual case).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Bytes that should be UTF-8 (a file name), shown losslessly: valid text is [escaped](escape),
/// each invalid byte is written `\xNN`, so two names that differ only in invalid bytes stay two
/// names.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("name: web-1 名前"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        assert_eq!(
            escape("a\u{1b}[2J\u{1b}[31m\nok: no findings"),
            "a\\u{1b}[2J\\u{1b}[31m\\nok: no findings"
        );
        assert_eq!(
            escape("x\u{202e}y\u{2066}z\r\t"),
            "x\\u{202e}y\\u{2066}z\\r\\t"
        );
        assert_eq!(escape("\u{85}\u{7f}"), "\\u{85}\\u{7f}");
    }

    #[test]
    fn invalid_bytes_stay_distinct() {
        assert_eq!(escape_bytes(b"a\xff.yaml"), "a\\xff.yaml");
        assert_ne!(escape_bytes(b"a\xfe.yaml"), escape_bytes(b"a\xff.yaml"));
        assert_eq!(escape_bytes("é\u{1b}".as_bytes()), "é\\u{1b}");
    }
}
