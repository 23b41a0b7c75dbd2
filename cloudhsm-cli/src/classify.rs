//! A failure answer (`error_code` ≠ 0) to a [`CloudHsmError`] variant, from the message's wording.

use crate::client::Invocation;
use crate::error::CloudHsmError;
use crate::types::CliRole;

/// Turns a failure answer (`error_code` ≠ 0) into a typed error, from the message's wording
/// (AWS does not document error codes or messages beyond a few examples).
pub(crate) fn classify(
    role: CliRole,
    inv: &Invocation<'_>,
    command: String,
    error_code: i64,
    message: String,
) -> CloudHsmError {
    let lower = message.to_ascii_lowercase();
    let not_found = [
        "not found",
        "does not exist",
        "doesn't exist",
        "unable to find",
        "could not find",
        "cannot find",
        "no such",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let matched = matched_key_count(&lower);
    if let Some(key) = inv.key {
        // "Key selection criteria matched 48 keys. Refine selection criteria to select a
        // single key." (AWS docs `manage-keys-cloudhsm-cli-filtering`)
        if matched.is_some_and(|n| n > 1) {
            return CloudHsmError::AmbiguousKey {
                key: key.to_string(),
                message,
            };
        }
        if matched == Some(0)
            || (lower.contains("key") && not_found)
            || lower.contains("no matching key")
            || lower.contains("no keys matched")
        {
            return CloudHsmError::KeyNotFound {
                key: key.to_string(),
                message,
            };
        }
    }
    if let Some(user) = inv.user {
        if lower.contains("already exists") {
            return CloudHsmError::UserExists {
                username: user.to_string(),
                message,
            };
        }
        if lower.contains("user") && not_found {
            return CloudHsmError::UserNotFound {
                username: user.to_string(),
                message,
            };
        }
    }
    if [
        "not logged in",
        "no user logged in",
        "no user is logged in",
        "login required",
        "must be logged in",
        "must log in",
        "not authenticated",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return CloudHsmError::NotLoggedIn { command, message };
    }
    if [
        "incorrect credentials",
        "incorrect password",
        "invalid credentials",
        "authentication failed",
        "authentication failure",
        "login failed",
        "failed to login",
        "failed to log in",
        "unauthorized",
        "locked",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return CloudHsmError::AuthenticationFailed {
            command,
            role,
            message,
        };
    }
    CloudHsmError::CliFailed {
        command,
        message: format!("error_code {error_code}: {message}"),
    }
}

/// N in "... matched N keys ..." (lower-cased text).
pub(crate) fn matched_key_count(lower: &str) -> Option<u64> {
    let rest = &lower[lower.find("matched ")? + "matched ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].trim_start();
    if digits.is_empty() || !after.starts_with("key") {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_counts() {
        assert_eq!(matched_key_count("criteria matched 0 keys."), Some(0));
        assert_eq!(matched_key_count("matched 1 key"), Some(1));
        assert_eq!(matched_key_count("matched the user"), None);
        assert_eq!(matched_key_count("nothing"), None);
    }
}
