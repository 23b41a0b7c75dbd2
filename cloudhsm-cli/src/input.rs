//! Checks of the caller's input against CloudHSM's rules, before the CLI runs.

use secrecy::{ExposeSecret, SecretString};

use crate::error::invalid;
use crate::{Result, MAX_USERNAME_LEN, PASSWORD_LEN};

/// Checks a user name as CloudHSM defines it and lower-cases it (AWS docs
/// `cloudhsm_cli-user-create`: at most 31 characters, `_` the only special character, not
/// case-sensitive, always displayed in lower case).
pub(crate) fn check_username(username: &str) -> Result<String> {
    let bad = |reason: String| invalid("HSM user name", reason);
    if username.is_empty() {
        return Err(bad("the name is empty".into()));
    }
    if username.chars().count() > MAX_USERNAME_LEN {
        return Err(bad(format!(
            "'{username}' is longer than {MAX_USERNAME_LEN} characters"
        )));
    }
    if let Some(c) = username
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(bad(format!(
            "'{username}' contains {c:?}; only letters, digits and '_' are allowed"
        )));
    }
    Ok(username.to_ascii_lowercase())
}

/// Checks a new user's password length (AWS docs `limits`: 8 to 32 characters).
pub(crate) fn check_password(password: &SecretString) -> Result<()> {
    let password = password.expose_secret();
    let len = password.chars().count();
    if !PASSWORD_LEN.contains(&len) {
        return Err(invalid(
            "password",
            format!(
                "it has {len} characters; CloudHSM passwords have {} to {}",
                PASSWORD_LEN.start(),
                PASSWORD_LEN.end()
            ),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(invalid(
            "password",
            "it contains control characters (a newline?)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_aws_rules() {
        assert_eq!(check_username("Signer_2").unwrap(), "signer_2");
        assert_eq!(check_username(&"a".repeat(31)).unwrap(), "a".repeat(31));
        assert!(check_username(&"a".repeat(32)).is_err());
        assert!(check_username("").is_err());
        assert!(check_username("bob-1").is_err());
        assert!(check_username("bob smith").is_err());
        assert!(check_username("émile").is_err());
    }

    #[test]
    fn passwords_are_8_to_32_characters() {
        assert!(check_password(&SecretString::from("1234567")).is_err());
        assert!(check_password(&SecretString::from("12345678")).is_ok());
        assert!(check_password(&SecretString::from("x".repeat(32))).is_ok());
        assert!(check_password(&SecretString::from("x".repeat(33))).is_err());
        assert!(check_password(&SecretString::from("pass\nword")).is_err());
        let err = check_password(&SecretString::from("short")).unwrap_err();
        assert!(!err.to_string().contains("short"));
    }
}
