//! Runbook operations across tokens: backup and restore, replication to a second HSM, a
//! consistency check over N tokens, and the opt-in hot-wallet export.
//!
//! - [`backup`]: [`Backup`], an EC private key wrapped under a named AES wrapping key, as a
//!   versioned, self-describing, checksummed JSON file written atomically with mode 0600;
//!   [`Backup::restore`] puts it on a token that holds the same wrapping key.
//! - [`replicate`](mod@replicate): copy one key, or every key whose label starts with a prefix, from one token to
//!   another ([`replicate()`]), and put the same wrapping key on several tokens from a key
//!   ceremony ([`install_ceremony_key`]).
//! - [`consistency`]: [`check_consistency`] over N tokens: per key label, present or missing on
//!   each, same public key or not, attributes that differ, and the wrapping keys' check values.
//! - [`hot_wallet`]: [`export_hot_wallet`], which turns a backup-able HSM key into a software
//!   `spsk`/`p2sk` secret key. It defeats the HSM and is named and gated accordingly.
//!
//! Every failure is a [`RunbookError`]; its message says what was wrong and how to fix it and
//! never holds a key byte, a PIN or wrapped-key bytes.
//!
//! ```no_run
//! use cryptoki_ops::{Hsm, HsmConfig, KeySelector};
//! use tezos_keys::runbook::{Backup, RestoreOptions};
//!
//! let a = Hsm::open(&HsmConfig::from_env()?)?;
//! let backup = Backup::create(&a, &"baker".parse()?, &"ceremony-wrap".parse()?)?;
//! backup.write(std::path::Path::new("baker.backup.json"))?; // atomic, 0600, never overwrites
//!
//! # let b = a.clone();
//! let restored = Backup::read(std::path::Path::new("baker.backup.json"))?
//!     .restore(&b, &RestoreOptions::default())?;
//! assert_eq!(restored.address, backup.address);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backup;
pub mod consistency;
mod error;
mod file;
pub mod hot_wallet;
pub mod replicate;

pub use backup::{
    Backup, RestoreOptions, RestoredKey, WrappingKeyRef, BACKUP_FORMAT, BACKUP_VERSION,
};
pub use consistency::{
    check_consistency, AttributeDifference, ConsistencyReport, KeyCheck, KeyOnToken,
    WrappingKeyCheck, WrappingKeyOnToken,
};
pub use error::RunbookError;
pub use file::write_private_file;
pub use hot_wallet::{export_hot_wallet, HotWalletConsent};
pub use replicate::{
    check_value, install_ceremony_key, replicate, KeySelection, ReplicationOutcome,
    ReplicationReport, ReplicationStatus,
};

/// Progress of a long operation over several items (keys, tokens), for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// Items finished so far (this one excluded).
    pub done: usize,
    /// Items in all.
    pub total: usize,
    /// What is being worked on now (a key label or a token label).
    pub item: &'a str,
}
