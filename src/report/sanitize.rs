//! Making record-derived text safe for terminals and spreadsheets. User agents,
//! names and error messages come from CloudTrail records that callers shape.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest field (in characters, after escaping) [`sanitize_terminal`] returns.
pub const MAX_TERMINAL_FIELD: usize = 256;

/// Text a terminal would act on rather than show: C0 controls (ESC included),
/// DEL, C1 controls, and the invisible format characters that reorder or hide
/// text (bidi overrides and isolates, zero-width characters, line separators).
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}')
}

/// Escapes every control and invisible format character into visible text
/// (`\x1b`, `\u{9b}`, `\u{202e}`) and caps the result at
/// [`MAX_TERMINAL_FIELD`] characters, ending a cut field with `…`.
pub fn sanitize_terminal(s: &str) -> String {
    escape_capped(s, MAX_TERMINAL_FIELD)
}

/// Like [`sanitize_terminal`] but never shortens: for messages (errors) whose
/// end matters as much as their start.
pub fn escape_terminal(s: &str) -> String {
    escape_capped(s, usize::MAX)
}

fn escape_capped(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut len = 0;
    let mut piece = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        piece.clear();
        if needs_escape(c) {
            let code = c as u32;
            if code < 0x80 {
                let _ = write!(piece, "\\x{code:02x}");
            } else {
                let _ = write!(piece, "\\u{{{code:x}}}");
            }
        } else {
            piece.push(c);
        }
        let n = piece.chars().count();
        // Keep one character of room for the ellipsis unless this is the end.
        let room = if chars.peek().is_some() { max - 1 } else { max };
        if len + n > room {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        len += n;
    }
    out
}

/// A cell a spreadsheet would run as a formula gets a leading `'`: one that
/// begins with `=`, `+`, `-`, `@`, tab or carriage return (or the full-width
/// `＝ ＋ － ＠`, which some spreadsheets also read as operators).
pub fn neutralize_csv_cell(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some(
            '=' | '+' | '-' | '@' | '\t' | '\r' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}',
        ) => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_prefixes_are_neutralized() {
        for cell in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "＝1+1",
        ] {
            let out = neutralize_csv_cell(cell);
            assert_eq!(out, format!("'{cell}"), "{cell:?}");
            assert!(matches!(out, Cow::Owned(_)));
        }
    }

    #[test]
    fn ordinary_cells_are_untouched() {
        for cell in [
            "",
            "arn:aws:iam::111111111111:user/alice",
            "Boto3/1.34 md/=x",
            "a-b",
            " =1",
            "'quoted",
            "1.5",
        ] {
            let out = neutralize_csv_cell(cell);
            assert_eq!(out, cell);
            assert!(matches!(out, Cow::Borrowed(_)), "{cell:?} was copied");
        }
    }

    #[test]
    fn escape_sequences_are_made_visible() {
        let s = sanitize_terminal("aws-cli\x1b]0;pwned\x07\x1b[2J\r\nnext");
        assert_eq!(s, "aws-cli\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0anext");
        assert!(!s.chars().any(char::is_control));
    }

    #[test]
    fn c1_del_and_bidi_are_escaped() {
        assert_eq!(sanitize_terminal("a\u{9b}31mb"), "a\\u{9b}31mb");
        assert_eq!(sanitize_terminal("x\u{7f}y\u{85}"), "x\\x7fy\\u{85}");
        assert_eq!(
            sanitize_terminal("user\u{202e}txt.exe"),
            "user\\u{202e}txt.exe"
        );
        assert_eq!(
            sanitize_terminal("a\u{2066}b\u{200b}c\u{feff}"),
            "a\\u{2066}b\\u{200b}c\\u{feff}"
        );
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let c = char::from_u32(c).unwrap();
            let s = sanitize_terminal(&c.to_string());
            assert!(!s.chars().any(char::is_control), "{c:?} -> {s:?}");
        }
    }

    #[test]
    fn printable_text_is_kept() {
        let s = "arn:aws:sts::111111111111:assumed-role/Admin/élodie 東京 \\x1b";
        assert_eq!(sanitize_terminal(s), s);
    }

    #[test]
    fn long_fields_are_capped() {
        let exact = "a".repeat(MAX_TERMINAL_FIELD);
        assert_eq!(sanitize_terminal(&exact), exact);
        let long = "a".repeat(MAX_TERMINAL_FIELD + 1);
        let out = sanitize_terminal(&long);
        assert_eq!(out.chars().count(), MAX_TERMINAL_FIELD);
        assert!(out.ends_with('…'));
        // An escape is never cut in half.
        let escapes = "\x1b".repeat(MAX_TERMINAL_FIELD);
        let out = sanitize_terminal(&escapes);
        assert!(out.chars().count() <= MAX_TERMINAL_FIELD);
        let long_message = format!("{}\x1b[2Jthe fix", "a".repeat(1000));
        let escaped = escape_terminal(&long_message);
        assert!(escaped.ends_with("\\x1b[2Jthe fix"), "never cut");
        assert!(out.trim_end_matches('…').ends_with("\\x1b"));
    }
}
