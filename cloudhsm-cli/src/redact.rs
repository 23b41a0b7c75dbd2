//! Secrets out of everything the CLI prints, before it lands in an error.
//!
//! A secret (the PIN `<user>:<password>`, its password, a new user's password) can come back in
//! the CLI's output in several spellings: as is (a parsed JSON string), JSON-escaped (`"` as
//! `\"`, `\` as `\\`, control characters as `\n` or `\u001b`, raw JSON re-serialised from a
//! failure's `data`), JSON-escaped to ASCII (`é` as `\u00e9`, as some encoders write it), and
//! escaped as Rust's `{:?}` does (serde's own error messages quote values that way). [`Redactor`]
//! replaces every one of them, longest first, and always over the whole text: text is cut
//! (shortened, first line) only after it is redacted, so a cut never leaves part of a secret.

use std::fmt::Write as _;

use zeroize::Zeroizing;

/// What replaces a secret in messages.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Longest CLI message (or line of its output) kept in an error, in characters.
const MAX_MESSAGE: usize = 300;
/// Longest text field of an error built from the CLI's output, in characters: a message of ours
/// around a CLI message, or serde's words about the answer (which quote the values in it).
const MAX_FIELD: usize = 1000;

/// The secrets of one command, in every spelling the CLI's output may give them.
pub(crate) struct Redactor {
    /// Longest first, so a whole PIN is replaced before its password part.
    forms: Vec<Zeroizing<String>>,
}

impl Redactor {
    /// A redactor for `secrets` (empty ones are ignored).
    pub(crate) fn new(secrets: &[&str]) -> Self {
        let mut forms: Vec<Zeroizing<String>> = Vec::new();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            for form in [
                Zeroizing::new((*secret).to_string()),
                json_escaped(secret, Ascii::No),
                json_escaped(secret, Ascii::Lower),
                json_escaped(secret, Ascii::Upper),
                debug_escaped(secret),
            ] {
                if !forms.iter().any(|f| **f == *form) {
                    forms.push(form);
                }
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Self { forms }
    }

    /// `text` with every form of every secret replaced by `[REDACTED]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for form in &self.forms {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), REDACTED);
            }
        }
        text
    }

    /// `text` redacted, trimmed, then shortened for a message.
    pub(crate) fn message(&self, text: &str) -> String {
        truncate(self.redact(text).trim(), MAX_MESSAGE)
    }

    /// `text` redacted, then shortened to the length of an error's field.
    pub(crate) fn field(&self, text: &str) -> String {
        truncate(&self.redact(text), MAX_FIELD)
    }

    /// The first non-empty line of `text`, redacted (over the whole text) then shortened.
    pub(crate) fn first_line(&self, text: &str) -> Option<String> {
        self.redact(text)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|line| truncate(line, MAX_MESSAGE))
    }
}

/// How [`json_escaped`] writes characters outside ASCII.
#[derive(Clone, Copy)]
enum Ascii {
    /// As they are (serde_json's way).
    No,
    /// As `\uXXXX` with lower-case hex digits.
    Lower,
    /// As `\uXXXX` with upper-case hex digits.
    Upper,
}

/// `secret` as it appears inside a JSON string (RFC 8259 section 7).
fn json_escaped(secret: &str, ascii: Ascii) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() + 8));
    let unicode = |out: &mut String, unit: u16| {
        // Writing to a String cannot fail.
        let _ = match ascii {
            Ascii::Upper => write!(out, "\\u{unit:04X}"),
            Ascii::No | Ascii::Lower => write!(out, "\\u{unit:04x}"),
        };
    };
    for c in secret.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => unicode(&mut out, c as u16),
            c if c.is_ascii() => out.push(c),
            c => match ascii {
                Ascii::No => out.push(c),
                Ascii::Lower | Ascii::Upper => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        unicode(&mut out, *unit);
                    }
                }
            },
        }
    }
    out
}

/// `secret` as Rust's `{:?}` writes it inside quotes (serde's messages quote values that way).
fn debug_escaped(secret: &str) -> Zeroizing<String> {
    let quoted = Zeroizing::new(format!("{secret:?}"));
    Zeroizing::new(quoted[1..quoted.len() - 1].to_string())
}

/// At most `max` characters, `…` marking a cut. Only for redacted text.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_whole_pin_then_password() {
        let redactor = Redactor::new(&["cu1:Passw0rd!", "Passw0rd!"]);
        assert_eq!(
            redactor.redact("bad cu1:Passw0rd! or Passw0rd!"),
            "bad [REDACTED] or [REDACTED]"
        );
        assert_eq!(redactor.redact("nothing secret"), "nothing secret");
    }

    #[test]
    fn escaped_forms_are_redacted() {
        let secret = "Pa\"ss\\wörd\u{1b}😀";
        let redactor = Redactor::new(&[secret]);
        let json = serde_json::to_string(secret).unwrap();
        for text in [
            secret.to_string(),
            json[1..json.len() - 1].to_string(),
            r#"Pa\"ss\\w\u00f6rd\u001b\ud83d\ude00"#.to_string(),
            r#"Pa\"ss\\w\u00F6rd\u001B\uD83D\uDE00"#.to_string(),
            format!("{secret:?}")[1..].trim_end_matches('"').to_string(),
        ] {
            assert_eq!(
                redactor.redact(&format!("<{text}>")),
                "<[REDACTED]>",
                "{text}"
            );
        }
    }

    #[test]
    fn redaction_comes_before_any_cut() {
        let redactor = Redactor::new(&["Passw0rd-that-is-long"]);
        let text = format!("{}Passw0rd-that-is-long", "x".repeat(MAX_MESSAGE - 8));
        let message = redactor.message(&text);
        assert!(!message.contains("Passw0rd"), "{message}");
        let redactor = Redactor::new(&["two\nlines"]);
        assert_eq!(
            redactor.first_line("\n two\nlines!").unwrap(),
            "[REDACTED]!"
        );
    }
}
