//! Secrets out of everything the CLI prints, before it lands in an error.

/// What replaces a secret in messages.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// The first non-empty line, redacted and shortened.
pub(crate) fn first_line(text: &str, secrets: &[&str]) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| truncate(&redact(l, secrets)))
}

/// Replaces every secret (PIN, password) in `text` by `[REDACTED]`.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    // Longest first, so the whole PIN is replaced before its password part.
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_replaces_whole_pin_then_password() {
        let secrets = ["cu1:Passw0rd!", "Passw0rd!"];
        assert_eq!(
            redact("bad cu1:Passw0rd! or Passw0rd!", &secrets),
            "bad [REDACTED] or [REDACTED]"
        );
        assert_eq!(redact("nothing secret", &secrets), "nothing secret");
    }
}
