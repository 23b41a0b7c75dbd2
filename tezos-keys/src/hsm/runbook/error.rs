//! [`RunbookError`]: everything a runbook operation can refuse or fail with.

use std::path::PathBuf;

/// Why a backup, restore, replication, consistency check or export failed.
///
/// Messages say what was wrong and how to fix it. They name keys by label and wrapping keys by
/// label and key check value (3 bytes of AES-ECB of a zero block, which identifies a key without
/// revealing it); never a key byte, a PIN or wrapped-key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunbookError {
    /// The HSM (PKCS#11) side failed: module, login, key, policy...
    #[error(transparent)]
    Hsm(#[from] cryptoki_ops::Error),

    /// A Tezos encoding (public key, address, secret key) was refused.
    #[error(transparent)]
    Tezos(#[from] crate::Error),

    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was attempted ("read the backup", "write"...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },

    /// The output file exists already; a backup is never overwritten.
    #[error("{path} already exists; a backup is never overwritten: choose another file name or move the old one away first")]
    FileExists {
        /// The file.
        path: PathBuf,
    },

    /// The backup file is damaged or is not a backup: bad JSON, a field missing or unknown, a
    /// checksum that does not match, a value that does not decode.
    #[error("the backup is corrupt: {reason}; it cannot be trusted, restore from another copy of the backup")]
    CorruptBackup {
        /// What is wrong (names the field, never its secret content).
        reason: String,
    },

    /// The backup file has a format version this program does not know.
    #[error("the backup has format version {found}, this program reads version {supported} only; use the tezos-hsm version that wrote it")]
    UnknownVersion {
        /// The version in the file.
        found: u64,
        /// The version this program reads.
        supported: u32,
    },

    /// The wrapping key on the target token is not the one the backup was made with (their key
    /// check values differ). Checked before anything is unwrapped.
    #[error("wrapping key '{label}' on token '{token}' has check value {found}, but the backup was wrapped under a key with check value {expected}: it is a different key; put the same wrapping key on this token (key ceremony import) or name the right one")]
    WrongWrappingKey {
        /// Label of the wrapping key on the target token.
        label: String,
        /// Target token.
        token: String,
        /// Check value recorded in the backup (hex).
        expected: String,
        /// Check value of the key on the token (hex).
        found: String,
    },

    /// The key unwrapped from the backup is not the key whose public key the backup records;
    /// nothing was left on the token.
    #[error("the key unwrapped on token '{token}' does not match the public key recorded for '{label}' ({public_key}); nothing was kept; the backup was made from another key or edited")]
    KeyMismatch {
        /// The label being restored.
        label: String,
        /// Target token.
        token: String,
        /// The recorded public key (base58).
        public_key: String,
    },

    /// The same wrapping-key label names different keys on the two tokens of a replication.
    #[error("wrapping key '{label}' differs between token '{source_token}' (check value {source_check_value}) and token '{target_token}' (check value {target_check_value}); put the same key on both (key ceremony import) before replicating")]
    WrappingKeyDiffers {
        /// Wrapping-key label.
        label: String,
        /// Source token.
        source_token: String,
        /// Its check value there (hex, or "none").
        source_check_value: String,
        /// Target token.
        target_token: String,
        /// Its check value there (hex, or "none").
        target_check_value: String,
    },

    /// A key with the label exists on the target token but is another key.
    #[error("token '{token}' already has a different key labelled '{label}' ({found}, not {expected}); delete or rename it there, or replicate under another label")]
    LabelConflict {
        /// Label.
        label: String,
        /// Target token.
        token: String,
        /// Address of the key the source has.
        expected: String,
        /// Address of the key the target has.
        found: String,
    },

    /// No private key on the source token matched the selection.
    #[error(
        "no private key on token '{token}' {selection}; list the keys with `tezos-hsm key list`"
    )]
    NothingSelected {
        /// Source token.
        token: String,
        /// The selection, as text ("labelled 'x'", "with a label starting with 'x'").
        selection: String,
    },

    /// A key selection that cannot be right (empty label or prefix).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What input.
        what: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// A hot-wallet export was asked for a key the HSM will never release.
    #[error("key '{label}' on token '{token}' is not extractable (CKA_EXTRACTABLE=false): it was made to never leave the HSM, so it cannot become a hot wallet; generate a new key in software for a hot wallet instead")]
    NotExtractable {
        /// Key label.
        label: String,
        /// Token.
        token: String,
    },

    /// The wrapping-key value the caller gave is not the value of the wrapping key on the token.
    #[error("the wrapping-key value given has check value {given}, but wrapping key '{label}' on token '{token}' has check value {on_token}; give the value of that key (from its key ceremony)")]
    WrappingKeyValueMismatch {
        /// Wrapping-key label.
        label: String,
        /// Token.
        token: String,
        /// Check value of the given value (hex).
        given: String,
        /// Check value on the token (hex, or "none").
        on_token: String,
    },

    /// The software side of the hot-wallet export cannot handle this key or mechanism.
    #[error("cannot export {what} as a hot wallet: {reason}")]
    ExportUnsupported {
        /// What (a curve, a mechanism).
        what: String,
        /// Why, and what would work.
        reason: &'static str,
    },

    /// The bytes the HSM wrapped did not unwrap or parse in software.
    #[error("the wrapped key did not unwrap in software: {reason}")]
    SoftwareUnwrap {
        /// Why (integrity check, PKCS#8 structure...), never the bytes.
        reason: &'static str,
    },
}

impl RunbookError {
    /// A stable snake_case name of the error's kind, for machine-readable output:
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | [`cryptoki_ops::Error::kind`] | [`RunbookError::Hsm`] |
    /// | [`crate::Error::kind`] | [`RunbookError::Tezos`] |
    /// | `invalid_input` | [`RunbookError::InvalidInput`] |
    /// | `io` | [`RunbookError::Io`] |
    /// | `file_exists` | [`RunbookError::FileExists`] |
    /// | `corrupt_backup` | [`RunbookError::CorruptBackup`] |
    /// | `unknown_version` | [`RunbookError::UnknownVersion`] |
    /// | `wrong_wrapping_key` | [`RunbookError::WrongWrappingKey`], [`RunbookError::WrappingKeyValueMismatch`] |
    /// | `key_mismatch` | [`RunbookError::KeyMismatch`] |
    /// | `wrapping_key_differs` | [`RunbookError::WrappingKeyDiffers`] |
    /// | `label_conflict` | [`RunbookError::LabelConflict`] |
    /// | `key_not_found` | [`RunbookError::NothingSelected`] |
    /// | `not_extractable` | [`RunbookError::NotExtractable`] |
    /// | `unsupported` | [`RunbookError::ExportUnsupported`] |
    /// | `unwrap_failed` | [`RunbookError::SoftwareUnwrap`] |
    ///
    /// ```
    /// let err = tezos_keys::runbook::RunbookError::UnknownVersion { found: 9, supported: 1 };
    /// assert_eq!(err.kind(), "unknown_version");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hsm(e) => e.kind(),
            Self::Tezos(e) => e.kind(),
            Self::InvalidInput { .. } => "invalid_input",
            Self::Io { .. } => "io",
            Self::FileExists { .. } => "file_exists",
            Self::CorruptBackup { .. } => "corrupt_backup",
            Self::UnknownVersion { .. } => "unknown_version",
            Self::WrongWrappingKey { .. } => "wrong_wrapping_key",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::WrappingKeyDiffers { .. } => "wrapping_key_differs",
            Self::LabelConflict { .. } => "label_conflict",
            Self::NothingSelected { .. } => "key_not_found",
            Self::NotExtractable { .. } => "not_extractable",
            Self::WrappingKeyValueMismatch { .. } => "wrong_wrapping_key",
            Self::ExportUnsupported { .. } => "unsupported",
            Self::SoftwareUnwrap { .. } => "unwrap_failed",
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Self::CorruptBackup {
            reason: reason.into(),
        }
    }
}

/// Hex of a check value, or "none" when the token does not report one.
pub(crate) fn check_value_text(value: Option<&[u8]>) -> String {
    value.map_or_else(|| "none".to_string(), hex::encode)
}
