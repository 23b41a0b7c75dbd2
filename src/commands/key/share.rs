//! `key share` / `key unshare`: CloudHSM key sharing through `cloudhsm-cli` (as the key's owner).

use std::fmt;

use cloudhsm_cli::{CliRole, KeyRef};
use serde::Serialize;

use crate::commands::user::Users;
use crate::commands::Output;
use crate::error::CliError;
use crate::text::{escape, Escaped};

/// `0x...` selects a key by CloudHSM key reference, anything else by label.
fn key_ref(key: &str) -> KeyRef {
    if key.starts_with("0x") {
        KeyRef::Reference(key.to_string())
    } else {
        KeyRef::Label(key.to_string())
    }
}

/// The key's sharing after the change: `{"key","shared_with":[...]}`.
#[derive(Serialize)]
pub struct Shared {
    key: String,
    shared_with: Vec<String>,
    #[serde(skip)]
    user: String,
    #[serde(skip)]
    share: bool,
}

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {} {} {}; shared with: {}",
            Escaped(&self.key),
            if self.share {
                "shared with"
            } else {
                "no longer shared with"
            },
            Escaped(&self.user),
            if self.shared_with.is_empty() {
                "nobody".to_string()
            } else {
                escape(&self.shared_with.join(", "))
            }
        )
    }
}

impl Output for Shared {}

/// `key share KEY --user U` (`share`) / `key unshare KEY --user U`.
pub fn run(users: &Users<'_>, key: &str, user: &str, share: bool) -> Result<Shared, CliError> {
    let cli = users.cli(CliRole::CryptoUser)?;
    let key = key_ref(key);
    if share {
        cli.share_key(&key, user)?;
    } else {
        cli.unshare_key(&key, user)?;
    }
    let shared_with = cli.key_shared_users(&key)?;
    Ok(Shared {
        key: key.to_string(),
        shared_with,
        user: user.to_string(),
        share,
    })
}
