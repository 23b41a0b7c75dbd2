//! The values the API takes and returns: login roles, HSM users, key references.

use std::fmt;

use crate::error::invalid;
use crate::Result;

/// The role the CLI logs in with (`CLOUDHSM_ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliRole {
    /// `admin`: manages users (create, delete, change passwords).
    Admin,
    /// `crypto-user`: owns and uses keys; shares and unshares the keys it owns.
    CryptoUser,
}

impl CliRole {
    /// The value the CLI expects: `admin` or `crypto-user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::CryptoUser => "crypto-user",
        }
    }
}

impl fmt::Display for CliRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of an HSM user, as `user list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRole {
    /// `admin`.
    Admin,
    /// `crypto-user`.
    CryptoUser,
    /// Anything else, as reported, e.g. `internal(APPLIANCE_USER)` for the appliance user.
    Other(String),
}

impl UserRole {
    pub(crate) fn parse(role: &str) -> Self {
        match role {
            "admin" => Self::Admin,
            "crypto-user" => Self::CryptoUser,
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::CryptoUser => f.write_str("crypto-user"),
            Self::Other(role) => f.write_str(role),
        }
    }
}

/// One multi-factor authentication strategy of a user, e.g. `token-sign`, `enabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStrategy {
    /// The strategy, e.g. `token-sign`.
    pub strategy: String,
    /// Its status, e.g. `enabled`.
    pub status: String,
}

/// An HSM user of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmUser {
    /// User name (CloudHSM always reports it lower-cased).
    pub username: String,
    /// Role.
    pub role: UserRole,
    /// Whether the account is locked (after too many wrong passwords; an admin unlocks it by
    /// changing its password).
    pub locked: bool,
    /// Multi-factor authentication strategies.
    pub mfa: Vec<MfaStrategy>,
    /// On how many HSMs of the cluster the user exists (`full`, or a partial value when the
    /// cluster is out of sync); `None` when the CLI did not say (a user just created).
    pub cluster_coverage: Option<String>,
}

impl HsmUser {
    /// Whether the user exists on every HSM of the cluster (`cluster-coverage` is `full`). A
    /// missing value counts as not full.
    pub fn has_full_coverage(&self) -> bool {
        self.cluster_coverage.as_deref() == Some(crate::keys::FULL_COVERAGE)
    }
}

/// Selects one key for the CLI's `--filter`.
///
/// ```
/// use cloudhsm_cli::KeyRef;
/// assert_eq!(KeyRef::Label("baker".into()).to_string(), "private key labelled 'baker'");
/// assert_eq!(KeyRef::Reference("0x1C0686".into()).to_string(), "key 0x1C0686");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// The private key with this label: `--filter attr.label=LABEL attr.class=private-key`.
    Label(String),
    /// The secret (AES wrapping) key with this label: `--filter attr.label=LABEL
    /// attr.class=secret-key`.
    SecretKey(String),
    /// A key reference as `key list` prints it (`0x` and up to 16 hex digits), for any key class:
    /// `--filter key-reference=0x...`.
    Reference(String),
}

impl KeyRef {
    /// The `--filter` values selecting this key, after checking them.
    pub(crate) fn filter(&self) -> Result<Vec<String>> {
        match self {
            Self::Label(label) | Self::SecretKey(label) => {
                let class = if matches!(self, Self::Label(_)) {
                    "private-key"
                } else {
                    "secret-key"
                };
                if label.is_empty() {
                    return Err(invalid("key label", "the label is empty".into()));
                }
                if label.chars().any(char::is_control) {
                    return Err(invalid(
                        "key label",
                        "the label contains control characters".into(),
                    ));
                }
                Ok(vec![
                    format!("attr.label={label}"),
                    format!("attr.class={class}"),
                ])
            }
            Self::Reference(reference) => {
                let digits = reference
                    .strip_prefix("0x")
                    .or_else(|| reference.strip_prefix("0X"))
                    .unwrap_or("");
                if digits.is_empty()
                    || digits.len() > 16
                    || !digits.chars().all(|c| c.is_ascii_hexdigit())
                {
                    return Err(invalid(
                        "key reference",
                        format!(
                            "'{reference}' is not 0x followed by 1 to 16 hex digits, as \
                             `cloudhsm-cli key list` prints it (e.g. 0x00000000001c0686)"
                        ),
                    ));
                }
                Ok(vec![format!(
                    "key-reference=0x{}",
                    digits.to_ascii_lowercase()
                )])
            }
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(label) => write!(f, "private key labelled '{label}'"),
            Self::SecretKey(label) => write!(f, "secret key labelled '{label}'"),
            Self::Reference(reference) => write!(f, "key {reference}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_filters() {
        assert_eq!(
            KeyRef::Label("baker key".into()).filter().unwrap(),
            ["attr.label=baker key", "attr.class=private-key"]
        );
        assert_eq!(
            KeyRef::Reference("0X00000000001C0686".into())
                .filter()
                .unwrap(),
            ["key-reference=0x00000000001c0686"]
        );
        for bad in ["", "0x", "1c0686", "0x12345678901234567", "0xzz"] {
            assert!(KeyRef::Reference(bad.into()).filter().is_err(), "{bad}");
        }
        assert!(KeyRef::Label(String::new()).filter().is_err());
        assert!(KeyRef::Label("a\nb".into()).filter().is_err());
    }
}
