//! Text for people: strings that come from a token, a file or another program are printed with
//! their control characters (and the invisible characters that reorder text) escaped, so a label
//! holding a newline or an escape sequence cannot forge a line of output or drive the terminal.
//! JSON output needs none of this: its strings are escaped by the encoder.

use std::fmt;

/// Whether `c` is shown escaped: a control character, or one of the invisible characters that
/// change how text around them reads (zero-width, bidirectional overrides, byte-order mark).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `text` on one line, its hidden characters written as Rust escapes (`\n`, `\u{1b}`).
pub fn escape(text: &str) -> String {
    escape_except(text, None)
}

/// Like [`escape`], keeping the line breaks of a message of several lines.
pub fn escape_keeping_lines(text: &str) -> String {
    escape_except(text, Some('\n'))
}

fn escape_except(text: &str, keep: Option<char>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if Some(c) == keep || !hidden(c) {
            out.push(c);
        } else if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// A string displayed escaped (see [`escape`]), padding and alignment included: `{:<20}`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("baker-1 clé"), "baker-1 clé");
        assert_eq!(escape("a\nb\u{1b}[2K\r"), "a\\nb\\u{1b}[2K\\r");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_keeping_lines("one\ntwo\u{7}"), "one\ntwo\\u{7}");
        assert_eq!(format!("[{:<6}]", Escaped("a\tb")), "[a\\tb  ]");
    }
}
