//! On AWS CloudHSM, whether every user and key of the cluster is on every one of its HSMs.
//!
//! Inside a cluster CloudHSM copies users and keys to every HSM itself, and PKCS#11 shows the
//! cluster as one token, so comparing tokens cannot see an HSM that lacks a user or a key. The
//! CloudHSM CLI can: `cluster-coverage` of each user in `user list` (AWS docs
//! `cloudhsm_cli-user-list`) and `key-coverage` of each key's owner and shared users in `key list
//! --verbose` (`manage-keys-cloudhsm-cli-filtering`); `full` means on every HSM. Anything else is
//! reported, naming the user or key.

use std::fmt;

use cloudhsm_cli::CliRole;
use serde::Serialize;

use super::user::Users;
use crate::error::CliError;
use crate::text::Escaped;

/// The users and keys whose coverage is not full: `{"users":[{"username","cluster_coverage"}],
/// "keys":[{"reference","label","class","incomplete":[...]}],"complete"}`.
#[derive(Serialize)]
pub struct Coverage {
    users: Vec<UserCoverage>,
    keys: Vec<KeyCoverage>,
    complete: bool,
}

#[derive(Serialize)]
struct UserCoverage {
    username: String,
    cluster_coverage: Option<String>,
}

#[derive(Serialize)]
struct KeyCoverage {
    reference: String,
    label: Option<String>,
    class: Option<String>,
    incomplete: Vec<String>,
}

impl Coverage {
    /// Whether every user and key is on every HSM.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

/// Reads the coverage of every user, and of every key the crypto user of --pin owns or shares
/// (and every public key), through cloudhsm-cli.
pub fn check(users: &Users<'_>) -> Result<Coverage, CliError> {
    let cli = users.cli(CliRole::CryptoUser)?;
    let users: Vec<UserCoverage> = cli
        .list_users()?
        .into_iter()
        .filter(|u| !u.has_full_coverage())
        .map(|u| UserCoverage {
            username: u.username,
            cluster_coverage: u.cluster_coverage,
        })
        .collect();
    let keys: Vec<KeyCoverage> = cli
        .list_keys()?
        .into_iter()
        .filter_map(|k| {
            let incomplete = k.incomplete_coverage();
            (!incomplete.is_empty()).then_some(KeyCoverage {
                reference: k.reference,
                label: k.label,
                class: k.class,
                incomplete,
            })
        })
        .collect();
    let complete = users.is_empty() && keys.is_empty();
    Ok(Coverage {
        users,
        keys,
        complete,
    })
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        for u in &self.users {
            lines.push(format!(
                "user {:<27} cluster-coverage {} (NOT on every HSM of the cluster)",
                Escaped(&u.username),
                Escaped(u.cluster_coverage.as_deref().unwrap_or("not reported"))
            ));
        }
        for k in &self.keys {
            lines.push(format!(
                "{} '{}' {}: NOT on every HSM ({})",
                Escaped(k.class.as_deref().unwrap_or("key")),
                Escaped(k.label.as_deref().unwrap_or("")),
                Escaped(&k.reference),
                Escaped(&k.incomplete.join("; "))
            ));
        }
        lines.push(if self.complete {
            "coverage: every user and key is on every HSM of the cluster".to_string()
        } else {
            "coverage NOT full: see above".to_string()
        });
        f.write_str(&lines.join("\n"))
    }
}
