//! `key backup` (a wrapped key to a new file) and `key restore` (from such a file).

use std::fmt;

use cryptoki_ops::Hsm;
use serde::Serialize;
use tezos_keys::runbook::{Backup, RestoreOptions};

use super::KeyView;
use crate::cli::{BackupArgs, RestoreArgs};
use crate::commands::Output;
use crate::error::CliError;
use crate::text::Escaped;

/// `key backup`: `{"file","label","address"}`.
#[derive(Serialize)]
pub struct BackedUp {
    file: String,
    label: String,
    address: String,
    #[serde(skip)]
    wrapping_key: String,
    #[serde(skip)]
    check_value: String,
}

impl fmt::Display for BackedUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backed up '{}' ({}) to {}, wrapped under '{}' (check value {})",
            Escaped(&self.label),
            self.address,
            Escaped(&self.file),
            Escaped(&self.wrapping_key),
            self.check_value
        )
    }
}

impl Output for BackedUp {}

/// `key backup LABEL --wrap-key W --out FILE`.
pub fn backup(hsm: &Hsm, args: BackupArgs) -> Result<BackedUp, CliError> {
    let backup = Backup::create(hsm, &args.label, &args.wrap_key)?;
    backup.write(&args.out)?;
    Ok(BackedUp {
        file: args.out.display().to_string(),
        label: backup.label.clone(),
        address: backup.address.to_string(),
        wrapping_key: backup.wrapping_key.label.clone(),
        check_value: hex::encode(&backup.wrapping_key.check_value),
    })
}

/// `key restore`: the `key show` object of the restored key.
#[derive(Serialize)]
pub struct Restored {
    #[serde(flatten)]
    key: KeyView,
    #[serde(skip)]
    label: String,
    #[serde(skip)]
    address: String,
    #[serde(skip)]
    token: String,
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "restored '{}' ({}) on token '{}'",
            Escaped(&self.label),
            self.address,
            Escaped(&self.token)
        )
    }
}

impl Output for Restored {}

/// `key restore FILE [--label L] [--wrap-key W] [--not-backupable] [--new-id]`.
pub fn restore(hsm: &Hsm, args: RestoreArgs) -> Result<Restored, CliError> {
    let options = RestoreOptions {
        label: args.label,
        wrapping_key: args.wrap_key,
        backupable: !args.not_backupable,
        new_id: args.new_id,
    };
    let restored = Backup::read(&args.file)?.restore(hsm, &options)?;
    Ok(Restored {
        key: KeyView::new(&restored.pair, true)?,
        label: restored.pair.private.label.clone(),
        address: restored.address.to_string(),
        token: hsm.token_label().to_string(),
    })
}
