//! Keys as `cloudhsm-cli key list --verbose` shows them: reference, owner, shared users, and on
//! how many HSMs of the cluster each copy is (coverage).

use std::fmt;

/// The value of `cluster-coverage` / `key-coverage` when a user or key is on every HSM of the
/// cluster (AWS docs `cloudhsm_cli-user-list`, `manage-keys-cloudhsm-cli-filtering`). Any other
/// value means the cluster is out of sync for it.
pub const FULL_COVERAGE: &str = "full";

/// A user of a key (its owner or a user it is shared with), with that user's `key-coverage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUser {
    /// User name.
    pub username: String,
    /// `key-coverage` as reported (`full` when the key is on every HSM); `None` when absent.
    pub key_coverage: Option<String>,
}

/// One key of `key list --verbose` (AWS docs `cloudhsm_cli-key-list`,
/// `manage-keys-cloudhsm-cli-filtering`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    /// `key-reference`, e.g. `0x00000000001c0686`: selects this key in `--filter
    /// key-reference=...` ([`crate::KeyRef::Reference`]).
    pub reference: String,
    /// `attributes.label`.
    pub label: Option<String>,
    /// `attributes.class`: `private-key`, `public-key`, `secret-key`.
    pub class: Option<String>,
    /// `attributes.trusted`.
    pub trusted: Option<bool>,
    /// `key-info.key-owners` (one, the crypto user that created the key).
    pub owners: Vec<KeyUser>,
    /// `key-info.shared-users`.
    pub shared_users: Vec<KeyUser>,
    /// `key-info.cluster-coverage`, when reported.
    pub cluster_coverage: Option<String>,
}

impl KeyListing {
    /// Every coverage of this key that is not [`FULL_COVERAGE`], as `"<who>: <coverage>"`
    /// (`"key-owner baker_owner: partial"`); empty when the key is on every HSM. A missing
    /// `key-coverage` counts as not full: the check must not pass on silence.
    pub fn incomplete_coverage(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |who: String, coverage: Option<&String>| match coverage {
            Some(c) if c == FULL_COVERAGE => {}
            Some(c) => out.push(format!("{who}: {c}")),
            None => out.push(format!("{who}: not reported")),
        };
        for owner in &self.owners {
            check(
                format!("key-owner {}", owner.username),
                owner.key_coverage.as_ref(),
            );
        }
        for user in &self.shared_users {
            check(
                format!("shared-user {}", user.username),
                user.key_coverage.as_ref(),
            );
        }
        if let Some(c) = &self.cluster_coverage {
            if c != FULL_COVERAGE {
                out.push(format!("cluster-coverage: {c}"));
            }
        }
        out
    }

    /// Whether `username` owns this key (user names compared case-insensitively, as CloudHSM
    /// does).
    pub fn is_owned_by(&self, username: &str) -> bool {
        self.owners
            .iter()
            .any(|o| o.username.eq_ignore_ascii_case(username))
    }
}

impl fmt::Display for KeyListing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.class, &self.label) {
            (Some(class), Some(label)) => write!(f, "{class} '{label}' ({})", self.reference),
            (None, Some(label)) => write!(f, "key '{label}' ({})", self.reference),
            _ => write!(f, "key {}", self.reference),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, coverage: Option<&str>) -> KeyUser {
        KeyUser {
            username: name.into(),
            key_coverage: coverage.map(Into::into),
        }
    }

    #[test]
    fn coverage_other_than_full_is_reported() {
        let mut key = KeyListing {
            reference: "0x1".into(),
            label: Some("baker".into()),
            class: Some("private-key".into()),
            trusted: Some(false),
            owners: vec![user("baker_owner", Some("full"))],
            shared_users: vec![user("signer", Some("full"))],
            cluster_coverage: Some("full".into()),
        };
        assert!(key.incomplete_coverage().is_empty());
        assert!(key.is_owned_by("Baker_Owner"));
        assert!(!key.is_owned_by("signer"));
        key.shared_users.push(user("kmsuser", Some("partial")));
        key.owners[0].key_coverage = None;
        assert_eq!(
            key.incomplete_coverage(),
            [
                "key-owner baker_owner: not reported",
                "shared-user kmsuser: partial"
            ]
        );
        assert_eq!(key.to_string(), "private-key 'baker' (0x1)");
    }
}
