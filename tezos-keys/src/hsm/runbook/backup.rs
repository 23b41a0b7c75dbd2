//! [`Backup`]: an EC private key wrapped under a named AES wrapping key, as a versioned,
//! self-describing file, and its restore on a token that holds the same wrapping key.
//!
//! # File format (version 1)
//!
//! One JSON object, written atomically with mode 0600 ([`super::write_private_file`]):
//!
//! ```json
//! {
//!   "format": "tezos-hsm-key-backup",
//!   "version": 1,
//!   "curve": "secp256k1",
//!   "label": "baker",
//!   "id": "3f9a0c1d5e6b7a80",
//!   "public_key": "sppk7...",
//!   "address": "tz2...",
//!   "wrap_mechanism": "aes-key-wrap-pad",
//!   "wrapping_key": { "label": "ceremony-2026", "check_value": "a1b2c3" },
//!   "wrapped_key": "9c0e...",
//!   "checksum": "sha256:5d41..."
//! }
//! ```
//!
//! | Field | Meaning |
//! |---|---|
//! | `format` | always `tezos-hsm-key-backup` |
//! | `version` | format version; this program reads 1 ([`BACKUP_VERSION`]) and refuses others |
//! | `curve` | `secp256k1`, `p256` or `ed25519` ([`cryptoki_ops::Curve::name`]) |
//! | `label`, `id` | `CKA_LABEL` and `CKA_ID` (hex) of the key pair; restored as they were, unless the restore asks for another label or a new id |
//! | `public_key`, `address` | the Tezos public key (`sppk`/`p2pk`/`edpk`) and its address; the address must be the public key's hash |
//! | `wrap_mechanism` | how the key was wrapped ([`WrapMechanism::name`], e.g. `aes-key-wrap-pad` = RFC 5649, `cloudhsm-aes-key-wrap-zero-pad` on CloudHSM) |
//! | `wrapping_key` | `label` and `check_value` (hex `CKA_CHECK_VALUE`: AES-ECB of a zero block, first 3 bytes) of the AES key it was wrapped under |
//! | `wrapped_key` | hex of the wrapped PKCS#8 private key, as `C_WrapKey` returned it |
//! | `checksum` | `sha256:` + hex SHA-256 of the canonical content: the compact JSON array of every other field's value in the order above, the wrapping key's two values inline: `["tezos-hsm-key-backup",1,"secp256k1","baker","3f9a…","sppk…","tz2…","aes-key-wrap-pad","ceremony-2026","a1b2c3","9c0e…"]` |
//!
//! The file holds no secret in clear: the private key is encrypted under the wrapping key, which
//! never leaves the HSMs. The mode 0600 is there because the file is still key material.
//!
//! # Reading and restoring
//!
//! [`Backup::from_json`] refuses, with [`RunbookError::CorruptBackup`], anything that is not
//! exactly a version-1 backup: bad JSON, a missing or unknown field, a checksum that does not
//! match (so one flipped byte anywhere is caught), a value that does not decode, an address that
//! is not the public key's; and with [`RunbookError::UnknownVersion`] another version.
//! [`Backup::restore`] then compares the target token's wrapping-key check value with the
//! recorded one **before** unwrapping ([`RunbookError::WrongWrappingKey`]), unwraps, and has the
//! token prove with a test signature that the unwrapped key is the recorded public key's
//! ([`RunbookError::KeyMismatch`]); on any failure nothing is left on the token.

use std::fmt;
use std::path::Path;

use cryptoki_ops::{Hsm, KeyPairInfo, KeySelector, UnwrapTarget, WrapMechanism, WrappedKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::check_value_text;
use super::RunbookError;
use crate::{tezos_curve, tezos_public_key, PublicKey, PublicKeyHash};

/// The `format` field of every backup file.
pub const BACKUP_FORMAT: &str = "tezos-hsm-key-backup";
/// The format version this program writes and reads.
pub const BACKUP_VERSION: u32 = 1;

/// Which wrapping key a backup was made under: its label and key check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappingKeyRef {
    /// `CKA_LABEL` of the wrapping key on the source token.
    pub label: String,
    /// `CKA_CHECK_VALUE` of the wrapping key (3 bytes on SoftHSM2 and CloudHSM).
    pub check_value: Vec<u8>,
}

/// A wrapped private key and everything needed to restore it and check the result.
///
/// ```no_run
/// use cryptoki_ops::{Hsm, HsmConfig};
/// use tezos_keys::runbook::{Backup, RestoreOptions};
/// use std::path::Path;
///
/// let token_a = Hsm::open(&HsmConfig::from_env()?)?;
/// let backup = Backup::create(&token_a, &"baker".parse()?, &"ceremony-2026".parse()?)?;
/// backup.write(Path::new("/secure/baker.backup.json"))?;
/// println!("backed up {} under wrapping key '{}'", backup.address, backup.wrapping_key.label);
///
/// // Later, on a token that holds the same wrapping key:
/// # let token_b = token_a.clone();
/// let restored = Backup::read(Path::new("/secure/baker.backup.json"))?
///     .restore(&token_b, &RestoreOptions::default())?;
/// assert_eq!(restored.address, backup.address);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Backup {
    /// The key's curve.
    pub curve: cryptoki_ops::Curve,
    /// `CKA_LABEL` of the key pair.
    pub label: String,
    /// `CKA_ID` of the key pair.
    pub id: Vec<u8>,
    /// The Tezos public key.
    pub public_key: PublicKey,
    /// The Tezos address (the public key's hash).
    pub address: PublicKeyHash,
    /// How the key was wrapped.
    pub mechanism: WrapMechanism,
    /// The wrapping key it was wrapped under.
    pub wrapping_key: WrappingKeyRef,
    /// The wrapped (encrypted) PKCS#8 private key.
    pub wrapped_key: Vec<u8>,
}

impl fmt::Debug for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backup")
            .field("curve", &self.curve)
            .field("label", &self.label)
            .field("id", &hex::encode(&self.id))
            .field("address", &self.address.to_string())
            .field("mechanism", &self.mechanism)
            .field("wrapping_key", &self.wrapping_key)
            .field(
                "wrapped_key",
                &format_args!("<{} bytes>", self.wrapped_key.len()),
            )
            .finish()
    }
}

/// How to restore a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Restore under this label instead of the recorded one.
    pub label: Option<String>,
    /// Use this wrapping key instead of the one with the recorded label. Its check value must
    /// still be the recorded one.
    pub wrapping_key: Option<KeySelector>,
    /// Keep the restored key backup-able (extractable under a trusted wrapping key), so it can
    /// be backed up or replicated again. Default: true, as the source key was.
    pub backupable: bool,
    /// Give the restored key a fresh random `CKA_ID` instead of the recorded one: needed to
    /// restore a copy on a token that still holds the original (or another key with that id),
    /// and for a backup whose id is empty or longer than 32 bytes. Default: false.
    pub new_id: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            label: None,
            wrapping_key: None,
            backupable: true,
            new_id: false,
        }
    }
}

/// A key restored from a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredKey {
    /// The key pair as the target token now reports it.
    pub pair: KeyPairInfo,
    /// Its Tezos public key (the recorded one).
    pub public_key: PublicKey,
    /// Its address (the recorded one).
    pub address: PublicKeyHash,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrappingKeyFile {
    label: String,
    check_value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupFile {
    format: String,
    version: u64,
    curve: String,
    label: String,
    id: String,
    public_key: String,
    address: String,
    wrap_mechanism: String,
    wrapping_key: WrappingKeyFile,
    wrapped_key: String,
    checksum: String,
}

impl BackupFile {
    /// `sha256:` + hex SHA-256 of the compact JSON array of every other field (module docs).
    fn checksum(&self) -> String {
        let canonical = serde_json::json!([
            self.format,
            self.version,
            self.curve,
            self.label,
            self.id,
            self.public_key,
            self.address,
            self.wrap_mechanism,
            self.wrapping_key.label,
            self.wrapping_key.check_value,
            self.wrapped_key,
        ])
        .to_string();
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        )
    }
}

impl Backup {
    /// Wraps the private key `key` on `hsm` under `wrapping_key` (the token's default AES
    /// key-wrap mechanism) and records what a restore needs.
    ///
    /// The key must be backup-able (created with [`cryptoki_ops::EcKeySpec::backupable`]) and
    /// the wrapping key trusted; otherwise the token refuses ([`cryptoki_ops::Error::PolicyRefused`]).
    pub fn create(
        hsm: &Hsm,
        key: &KeySelector,
        wrapping_key: &KeySelector,
    ) -> Result<Self, RunbookError> {
        let pair = hsm.key_pair(key)?;
        let wrapper = hsm.find_wrapping_key(wrapping_key)?;
        let check_value = wrapper.check_value.clone().ok_or_else(|| RunbookError::InvalidInput {
            what: "wrapping key",
            reason: format!(
                "token '{}' does not report a check value (CKA_CHECK_VALUE) for wrapping key '{}', so a restore could not recognise it; use a wrapping key the token reports one for",
                hsm.token_label(),
                wrapper.label
            ),
        })?;
        let wrapped = hsm.wrap_private_key(key, wrapping_key, None)?;
        let public_key = tezos_public_key(&pair.public_key)?;
        Ok(Self {
            curve: pair.public_key.curve(),
            label: pair.private.label.clone(),
            id: pair.private.id.clone(),
            address: public_key.hash(),
            public_key,
            mechanism: wrapped.mechanism,
            wrapping_key: WrappingKeyRef {
                label: wrapper.label,
                check_value,
            },
            wrapped_key: wrapped.bytes,
        })
    }

    /// The backup file's text: pretty JSON with the checksum (module docs).
    pub fn to_json(&self) -> String {
        let mut file = BackupFile {
            format: BACKUP_FORMAT.to_string(),
            version: u64::from(BACKUP_VERSION),
            curve: self.curve.name().to_string(),
            label: self.label.clone(),
            id: hex::encode(&self.id),
            public_key: self.public_key.to_string(),
            address: self.address.to_string(),
            wrap_mechanism: self.mechanism.name().to_string(),
            wrapping_key: WrappingKeyFile {
                label: self.wrapping_key.label.clone(),
                check_value: hex::encode(&self.wrapping_key.check_value),
            },
            wrapped_key: hex::encode(&self.wrapped_key),
            checksum: String::new(),
        };
        file.checksum = file.checksum();
        // Serialising plain strings and numbers cannot fail.
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses and checks a backup file's text (see the module docs for every refusal).
    pub fn from_json(text: &str) -> Result<Self, RunbookError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| RunbookError::corrupt(format!("it is not valid JSON ({e})")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(BACKUP_FORMAT) => {}
            _ => {
                return Err(RunbookError::corrupt(format!(
                    "the field \"format\" is not \"{BACKUP_FORMAT}\": this is not a tezos-hsm key backup"
                )))
            }
        }
        let version = value
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| {
                RunbookError::corrupt("the field \"version\" is missing or not a whole number")
            })?;
        if version != u64::from(BACKUP_VERSION) {
            return Err(RunbookError::UnknownVersion {
                found: version,
                supported: BACKUP_VERSION,
            });
        }
        let file: BackupFile = serde_json::from_value(value).map_err(|e| {
            RunbookError::corrupt(format!("its fields are not those of version 1 ({e})"))
        })?;
        if file.checksum != file.checksum() {
            return Err(RunbookError::corrupt(
                "the checksum does not match the content: a byte changed since it was written",
            ));
        }
        Self::from_file(&file)
    }

    fn from_file(file: &BackupFile) -> Result<Self, RunbookError> {
        let field =
            |name: &str, why: String| RunbookError::corrupt(format!("the field \"{name}\" {why}"));
        let hex_field = |name: &str, text: &str| {
            hex::decode(text).map_err(|_| field(name, "is not hex".to_string()))
        };
        let curve: cryptoki_ops::Curve = file
            .curve
            .parse()
            .map_err(|_| field("curve", "is not secp256k1, p256 or ed25519".into()))?;
        let public_key: PublicKey = file
            .public_key
            .parse()
            .map_err(|e| field("public_key", format!("is not a Tezos public key ({e})")))?;
        if public_key.curve() != tezos_curve(curve) {
            return Err(field(
                "public_key",
                format!("is not a {} key", curve.name()),
            ));
        }
        let address: PublicKeyHash = file
            .address
            .parse()
            .map_err(|e| field("address", format!("is not a Tezos address ({e})")))?;
        if address != public_key.hash() {
            return Err(field(
                "address",
                "is not the address of the recorded public key".into(),
            ));
        }
        let mechanism: WrapMechanism = file
            .wrap_mechanism
            .parse()
            .map_err(|e| field("wrap_mechanism", format!("is unknown ({e})")))?;
        let check_value = hex_field("wrapping_key.check_value", &file.wrapping_key.check_value)?;
        if check_value.is_empty() {
            return Err(field("wrapping_key.check_value", "is empty".into()));
        }
        if file.label.is_empty() {
            return Err(field("label", "is empty".into()));
        }
        if file.wrapping_key.label.is_empty() {
            return Err(field("wrapping_key.label", "is empty".into()));
        }
        let wrapped_key = hex_field("wrapped_key", &file.wrapped_key)?;
        if wrapped_key.len() < 16 || wrapped_key.len() % 8 != 0 {
            return Err(field(
                "wrapped_key",
                "is not AES key-wrap output (a multiple of 8 bytes, at least 16)".into(),
            ));
        }
        Ok(Self {
            curve,
            label: file.label.clone(),
            id: hex_field("id", &file.id)?,
            public_key,
            address,
            mechanism,
            wrapping_key: WrappingKeyRef {
                label: file.wrapping_key.label.clone(),
                check_value,
            },
            wrapped_key,
        })
    }

    /// Writes the backup to `path`: atomically, mode 0600, never over an existing file.
    pub fn write(&self, path: &Path) -> Result<(), RunbookError> {
        super::write_private_file(path, self.to_json().as_bytes())
    }

    /// The largest backup file [`Backup::read`] accepts: a backup is well under 4 KiB.
    pub const MAX_FILE_BYTES: u64 = 64 * 1024;

    /// Reads and checks a backup file written by [`Backup::write`]: a regular file of at most
    /// [`Backup::MAX_FILE_BYTES`], never a FIFO or device (which would hang or fill memory), checked as [`Self::from_json`]
    /// does.
    pub fn read(path: &Path) -> Result<Self, RunbookError> {
        // A regular file of bounded size, opened without blocking: a FIFO or a device given by
        // mistake fails at once instead of hanging or filling memory.
        let not_found = || RunbookError::Io {
            action: "read the backup",
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let bytes = crate::durable::read_regular(path, Self::MAX_FILE_BYTES)
            .map_err(|e| match e {
                crate::durable::DurableError::Io { source, .. } => RunbookError::Io {
                    action: "read the backup",
                    path: path.to_path_buf(),
                    source,
                },
                other => RunbookError::corrupt(other.to_string()),
            })?
            .ok_or_else(not_found)?;
        let text =
            String::from_utf8(bytes).map_err(|_| RunbookError::corrupt("it is not UTF-8 text"))?;
        Self::from_json(&text)
    }

    /// Restores the key on `hsm`, which must hold the wrapping key the backup was made under
    /// (same check value). Returns the restored key pair; on any failure nothing is left on the
    /// token.
    ///
    /// Refusals: [`RunbookError::WrongWrappingKey`] (checked before unwrapping, when the token
    /// reports check values), [`RunbookError::KeyMismatch`], and the token's own
    /// ([`cryptoki_ops::Error::KeyExists`] if the label is taken, [`cryptoki_ops::Error::IdExists`]
    /// if another key on the token has the recorded id, naming that key: restore with
    /// [`RestoreOptions::new_id`], [`cryptoki_ops::Error::UnwrapFailed`]).
    pub fn restore(
        &self,
        hsm: &Hsm,
        options: &RestoreOptions,
    ) -> Result<RestoredKey, RunbookError> {
        let selector = options
            .wrapping_key
            .clone()
            .unwrap_or_else(|| KeySelector::Label(self.wrapping_key.label.clone()));
        let wrapper = hsm.find_wrapping_key(&selector)?;
        // A token that reports no check value is left to the unwrap's integrity check and the
        // test signature, which refuse a wrong key just as surely, only later.
        if let Some(found) = &wrapper.check_value {
            if *found != self.wrapping_key.check_value {
                return Err(RunbookError::WrongWrappingKey {
                    label: wrapper.label,
                    token: hsm.token_label().to_string(),
                    expected: hex::encode(&self.wrapping_key.check_value),
                    found: check_value_text(Some(found)),
                });
            }
        }
        let label = options.label.clone().unwrap_or_else(|| self.label.clone());
        let id = if options.new_id {
            hsm.with_session(|session| session.generate_random_vec(8))?
        } else {
            cryptoki_ops::keys::check_id(&self.id).map_err(|_| {
                cryptoki_ops::Error::InvalidInput {
                    what: "key id",
                    reason: format!(
                        "the backup's CKA_ID is {} bytes long, and a CKA_ID is 1 to 32 bytes; \
                     restore it with a new id (RestoreOptions::new_id, `key restore --new-id`)",
                        self.id.len()
                    ),
                }
            })?;
            self.id.clone()
        };
        let target = UnwrapTarget {
            label: label.clone(),
            id,
            public_key: cryptoki_ops::PublicKey::from_sec1(self.curve, self.public_key.as_bytes())?,
            backupable: options.backupable,
        };
        let wrapped = WrappedKey {
            mechanism: self.mechanism,
            bytes: self.wrapped_key.clone(),
        };
        let pair = hsm
            .unwrap_private_key(&wrapped, &selector, &target)
            .map_err(|e| match e {
                cryptoki_ops::Error::KeyMismatch { .. } => RunbookError::KeyMismatch {
                    label: label.clone(),
                    token: hsm.token_label().to_string(),
                    public_key: self.public_key.to_string(),
                },
                other => other.into(),
            })?;
        Ok(RestoredKey {
            pair,
            public_key: self.public_key,
            address: self.address,
        })
    }
}

#[cfg(test)]
mod tests;
