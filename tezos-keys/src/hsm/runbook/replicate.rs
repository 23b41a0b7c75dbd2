//! A second HSM: the same wrapping key on several tokens, and keys copied from one token to
//! another under it.
//!
//! The wrapping key gets onto every token by a key ceremony: its value, held by the ceremony's
//! custodians, is imported by each token's security officer as a trusted key
//! ([`install_ceremony_key`]), and [`check_value`] lets them confirm, without revealing it, that
//! every token holds the value they typed. Keys then move wrapped under it ([`replicate()`]): the
//! source token wraps, the target unwraps and proves with a test signature that the key is the
//! one the source's public key belongs to. The private key never exists in clear outside the
//! HSMs.
//!
//! (Carrying the wrapping key itself wrapped under a transport key is not offered: wrapping keys
//! are made non-extractable by `cryptoki-ops`' attribute policy, so no token will wrap one.)

use std::fmt;

use cryptoki_ops::secrecy::{ExposeSecret, SecretBox};
use cryptoki_ops::{Hsm, KeyClass, KeyInfo, KeySelector, WrappingKeySpec};
use serde::Serialize;

use super::backup::{Backup, RestoreOptions};
use super::error::check_value_text;
use super::{Progress, RunbookError};
use crate::tezos_public_key;

/// The key check value of an AES-256 key: the first 3 bytes of AES-ECB of a zero block, as
/// tokens report it in `CKA_CHECK_VALUE`. Identifies a key without revealing it.
///
/// ```
/// use cryptoki_ops::secrecy::SecretBox;
/// // Key 000102...1f; `openssl enc -aes-256-ecb -nopad` of a zero block gives f29000b6...
/// let value = SecretBox::new(Box::new(core::array::from_fn::<u8, 32, _>(|i| i as u8)));
/// assert_eq!(tezos_keys::runbook::check_value(&value), [0xf2, 0x90, 0x00]);
/// ```
pub fn check_value(value: &SecretBox<[u8; 32]>) -> [u8; 3] {
    use aes_kw::aes::cipher::{BlockCipherEncrypt, KeyInit};
    let cipher = aes_kw::aes::Aes256::new(&(*value.expose_secret()).into());
    let mut block = aes_kw::aes::Block::default();
    cipher.encrypt_block(&mut block);
    [block[0], block[1], block[2]]
}

/// Imports the wrapping key of a key ceremony, of known `value`, on every token in `hsms` (each
/// opened as its security officer when `spec.trusted`), and checks that every token reports the
/// check value computed here from `value`. A token where the check fails keeps nothing.
///
/// Returns what each token reports, in the order of `hsms`.
pub fn install_ceremony_key(
    hsms: &[Hsm],
    spec: &WrappingKeySpec,
    value: &SecretBox<[u8; 32]>,
) -> Result<Vec<KeyInfo>, RunbookError> {
    let expected = check_value(value);
    let mut infos = Vec::with_capacity(hsms.len());
    for hsm in hsms {
        let info = hsm.import_wrapping_key(spec, value)?;
        if let Some(found) = &info.check_value {
            if found.as_slice() != expected {
                let _ = hsm.delete_key(&KeySelector::Id(info.id.clone()));
                return Err(RunbookError::WrappingKeyValueMismatch {
                    label: spec.label.clone(),
                    token: hsm.token_label().to_string(),
                    given: hex::encode(expected),
                    on_token: check_value_text(Some(found)),
                });
            }
        }
        infos.push(info);
    }
    Ok(infos)
}

/// Which keys of the source token to replicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelection {
    /// The key with this label.
    Label(String),
    /// Every key whose label starts with this (non-empty) prefix.
    Prefix(String),
}

impl KeySelection {
    fn matches(&self, label: &str) -> bool {
        match self {
            Self::Label(l) => label == l,
            Self::Prefix(p) => label.starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for KeySelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(l) => write!(f, "labelled '{l}'"),
            Self::Prefix(p) => write!(f, "with a label starting with '{p}'"),
        }
    }
}

/// What happened to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicationStatus {
    /// Copied to the target token.
    Replicated,
    /// The target token already had this very key (same label, same public key).
    AlreadyPresent,
    /// Not copied; see the outcome's error.
    Failed,
}

/// One key's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationOutcome {
    /// Its label.
    pub label: String,
    /// Its address on the source token, when it could be read.
    pub address: Option<String>,
    /// What happened.
    pub status: ReplicationStatus,
    /// The error's kind ([`RunbookError::kind`]) when it failed.
    pub error_kind: Option<&'static str>,
    /// The error's message when it failed.
    pub error: Option<String>,
}

/// What a replication did, key by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationReport {
    /// Source token label.
    pub source: String,
    /// Target token label.
    pub target: String,
    /// Label of the wrapping key used.
    pub wrapping_key: String,
    /// One outcome per selected key, in label order.
    pub keys: Vec<ReplicationOutcome>,
}

impl ReplicationReport {
    /// True when every selected key is now on the target token.
    pub fn is_complete(&self) -> bool {
        self.keys
            .iter()
            .all(|k| k.status != ReplicationStatus::Failed)
    }
}

/// Copies the selected private keys from `source` to `target` under `wrapping_key`, which must
/// be the same key on both tokens (same label, same check value; checked first).
///
/// Each key keeps its label and id, stays backup-able, and is checked on the target with a test
/// signature. A key the target already has (same label and public key) is left alone; a
/// different key under the same label is a failure, never overwritten.
///
/// With [`KeySelection::Label`] a failure is returned as the error; with
/// [`KeySelection::Prefix`] every key is attempted and the report says which failed (check
/// [`ReplicationReport::is_complete`]). `progress` is called before each key.
///
/// ```no_run
/// use cryptoki_ops::{Hsm, HsmConfig, KeySelector};
/// use tezos_keys::runbook::{replicate, KeySelection};
/// # let (a, b): (Hsm, Hsm) = unimplemented!();
/// let report = replicate(&a, &b, &KeySelection::Prefix("baker-".into()), &"ceremony".parse()?, &mut |p| {
///     eprintln!("[{}/{}] {}", p.done + 1, p.total, p.item)
/// })?;
/// assert!(report.is_complete());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn replicate(
    source: &Hsm,
    target: &Hsm,
    selection: &KeySelection,
    wrapping_key: &KeySelector,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ReplicationReport, RunbookError> {
    let (KeySelection::Label(text) | KeySelection::Prefix(text)) = selection;
    if text.is_empty() {
        return Err(RunbookError::InvalidInput {
            what: "key selection",
            reason: "the label or prefix is empty; name the key, or a prefix of the labels to copy"
                .into(),
        });
    }
    let source_wrapper = source.find_wrapping_key(wrapping_key)?;
    let target_selector = KeySelector::Label(source_wrapper.label.clone());
    let target_wrapper = target.find_wrapping_key(&target_selector)?;
    if let (Some(s), Some(t)) = (&source_wrapper.check_value, &target_wrapper.check_value) {
        if s != t {
            return Err(RunbookError::WrappingKeyDiffers {
                label: source_wrapper.label,
                source_token: source.token_label().to_string(),
                source_check_value: check_value_text(Some(s)),
                target_token: target.token_label().to_string(),
                target_check_value: check_value_text(Some(t)),
            });
        }
    }
    let mut labels: Vec<String> = source
        .list_keys()?
        .into_iter()
        .filter(|k| k.class == KeyClass::Private && selection.matches(&k.label))
        .map(|k| k.label)
        .collect();
    labels.dedup(); // sorted by label already; a duplicated label fails once, by name
    if labels.is_empty() {
        return Err(RunbookError::NothingSelected {
            token: source.token_label().to_string(),
            selection: selection.to_string(),
        });
    }
    let source_selector = KeySelector::Label(source_wrapper.label.clone());
    let mut outcomes = Vec::with_capacity(labels.len());
    for (done, label) in labels.iter().enumerate() {
        progress(Progress {
            done,
            total: labels.len(),
            item: label,
        });
        let result = replicate_one(source, target, label, &source_selector, &target_selector);
        let outcome = match result {
            Ok((address, status)) => ReplicationOutcome {
                label: label.clone(),
                address: Some(address),
                status,
                error_kind: None,
                error: None,
            },
            Err(e) if matches!(selection, KeySelection::Label(_)) => return Err(e),
            Err(e) => ReplicationOutcome {
                label: label.clone(),
                address: source
                    .key_pair(&KeySelector::Label(label.clone()))
                    .ok()
                    .and_then(|p| tezos_public_key(&p.public_key).ok())
                    .map(|pk| pk.hash().to_string()),
                status: ReplicationStatus::Failed,
                error_kind: Some(e.kind()),
                error: Some(e.to_string()),
            },
        };
        outcomes.push(outcome);
    }
    Ok(ReplicationReport {
        source: source.token_label().to_string(),
        target: target.token_label().to_string(),
        wrapping_key: source_wrapper.label,
        keys: outcomes,
    })
}

fn replicate_one(
    source: &Hsm,
    target: &Hsm,
    label: &str,
    source_wrapper: &KeySelector,
    target_wrapper: &KeySelector,
) -> Result<(String, ReplicationStatus), RunbookError> {
    let selector = KeySelector::Label(label.to_string());
    let pair = source.key_pair(&selector)?;
    let address = tezos_public_key(&pair.public_key)?.hash().to_string();
    match target.key_pair(&selector) {
        Ok(existing) if existing.public_key == pair.public_key => {
            return Ok((address, ReplicationStatus::AlreadyPresent))
        }
        Ok(existing) => {
            return Err(RunbookError::LabelConflict {
                label: label.to_string(),
                token: target.token_label().to_string(),
                expected: address,
                found: tezos_public_key(&existing.public_key)?.hash().to_string(),
            })
        }
        Err(cryptoki_ops::Error::KeyNotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let backup = Backup::create(source, &selector, source_wrapper)?;
    let options = RestoreOptions {
        wrapping_key: Some(target_wrapper.clone()),
        ..RestoreOptions::default()
    };
    backup.restore(target, &options)?;
    Ok((address, ReplicationStatus::Replicated))
}
