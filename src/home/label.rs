//! Token labels of the store: they name its PIN files, so a strict charset.

use super::StoreError;

/// The longest token label PKCS#11 allows (`CK_TOKEN_INFO.label` is 32 bytes).
const MAX_LABEL: usize = 32;

/// Checks that `label` can name a token of the store and its PIN files.
pub fn check_label(label: &str) -> Result<(), StoreError> {
    let reason = if label.is_empty() {
        "is empty"
    } else if label.len() > MAX_LABEL {
        "is longer than 32 bytes"
    } else if label.starts_with('.') {
        "starts with '.'"
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        "has a character other than A-Z a-z 0-9 . _ -"
    } else {
        return Ok(());
    };
    let shown: String = label.chars().take(40).collect();
    Err(StoreError::InvalidLabel {
        label: if shown.len() < label.len() {
            format!("{shown}...")
        } else {
            shown
        },
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_a_strict_charset_of_1_to_32_bytes() {
        for good in ["tezos-hsm", "second", "a", "A.b_c-9", &"x".repeat(32)] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".",
            "..",
            ".hidden",
            "x y",
            "x\ny",
            "é",
            &"x".repeat(33),
        ] {
            let err = check_label(bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_input", "{bad:?}");
        }
        let long = check_label(&"y".repeat(1 << 20)).unwrap_err().to_string();
        assert!(long.len() < 400, "the message stays short: {}", long.len());
    }
}
