//! What can go wrong with the local store, each with a stable kind and the way back.

use std::path::PathBuf;

use crate::error::CliError;

/// An error of the local SoftHSM2 store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another command holds the store's lock for longer than the timeout.
    #[error(
        "the store {dir} is busy: {holder} holds its lock {lock}; waited {waited_secs:.1} s. \
         Run the command again when it has finished, or wait longer with \
         TEZOS_HSM_LOCK_TIMEOUT=SECONDS (default 30)"
    )]
    Busy {
        /// The store.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Who holds it, as the lock file records it.
        holder: String,
        /// How long this command waited.
        waited_secs: f64,
    },
    /// A file of the store is damaged or missing, and nothing can repair it safely.
    #[error("the store is damaged: {file} {problem}. {way_back}")]
    Damaged {
        /// The file (or directory) concerned.
        file: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to get back to a working store.
        way_back: String,
    },
    /// A token label that cannot name PIN files.
    #[error(
        "token label {label:?} {reason}: token labels of the local store are 1 to 32 characters \
         among A-Z a-z 0-9 . _ - and do not start with '.'"
    )]
    InvalidLabel {
        /// The label as given (printed escaped).
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No token has this label in the store.
    #[error(
        "no token labelled '{label}' in the store {dir}; create it with `tezos-hsm token init \
         --label {label}`, or pick one of: {available}"
    )]
    TokenNotFound {
        /// The label asked for.
        label: String,
        /// The store.
        dir: PathBuf,
        /// The labels present.
        available: String,
    },
    /// A setting of the environment is wrong.
    #[error("{0}")]
    Config(String),
    /// A file operation failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// The stable kind of the error: `store_busy`, `store_damaged`, `invalid_input`,
    /// `token_not_found`, `config` or `io`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Busy { .. } => "store_busy",
            Self::Damaged { .. } => "store_damaged",
            Self::InvalidLabel { .. } => "invalid_input",
            Self::TokenNotFound { .. } => "token_not_found",
            Self::Config(_) => "config",
            Self::Io { .. } => "io",
        }
    }

    /// An [`StoreError::Io`] builder for `map_err`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}
