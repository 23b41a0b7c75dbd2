//! The consistency check across N tokens: does every HSM hold what the others hold?
//!
//! [`check_consistency`] reads every private key and wrapping key on each token and reports, per
//! key label: present or missing on each token, same public key (address) or not, and which of
//! the attributes curve, id, extractable, sensitive and wrap-with-trusted differ; per wrapping
//! key label: the check value on each token. [`ConsistencyReport::is_consistent`] is the one
//! answer a runbook needs ("the second HSM lacks what the first has" is `false`).

use std::collections::BTreeMap;

use cryptoki_ops::{Hsm, KeyClass, KeyInfo, KeySelector};
use serde::Serialize;

use super::{Progress, RunbookError};
use crate::tezos_public_key;

/// One key label on one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyOnToken {
    /// Token label.
    pub token: String,
    /// Whether a private key with this label is on the token.
    pub present: bool,
    /// How many private keys carry the label (more than 1 is itself an inconsistency).
    pub count: usize,
    /// Curve (`secp256k1`, `p256`, `ed25519`).
    pub curve: Option<String>,
    /// `CKA_ID`, hex.
    pub id: Option<String>,
    /// Tezos public key.
    pub public_key: Option<String>,
    /// Tezos address.
    pub address: Option<String>,
    /// `CKA_EXTRACTABLE`.
    pub extractable: Option<bool>,
    /// `CKA_SENSITIVE`.
    pub sensitive: Option<bool>,
    /// `CKA_WRAP_WITH_TRUSTED`.
    pub wrap_with_trusted: Option<bool>,
    /// Why the public key could not be read, if it could not.
    pub error: Option<String>,
}

/// An attribute whose value is not the same on every token holding the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeDifference {
    /// `curve`, `id`, `extractable`, `sensitive` or `wrap_with_trusted`.
    pub attribute: &'static str,
    /// The value on each token, in the report's token order; `None` where the key is missing or
    /// the token does not say.
    pub values: Vec<Option<String>>,
}

/// One key label across all tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyCheck {
    /// The label.
    pub label: String,
    /// Per token, in the report's token order.
    pub tokens: Vec<KeyOnToken>,
    /// Whether every token holding the key has the same public key.
    pub same_public_key: bool,
    /// Attributes that differ between the tokens holding the key.
    pub differences: Vec<AttributeDifference>,
}

impl KeyCheck {
    /// Present exactly once on every token, one public key, no attribute differences.
    pub fn is_consistent(&self) -> bool {
        self.tokens
            .iter()
            .all(|t| t.present && t.count == 1 && t.error.is_none())
            && self.same_public_key
            && self.differences.is_empty()
    }

    /// The tokens that lack this key.
    pub fn missing_on(&self) -> Vec<&str> {
        self.tokens
            .iter()
            .filter(|t| !t.present)
            .map(|t| t.token.as_str())
            .collect()
    }
}

/// One wrapping key label on one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrappingKeyOnToken {
    /// Token label.
    pub token: String,
    /// Whether a secret key with this label is on the token.
    pub present: bool,
    /// `CKA_CHECK_VALUE`, hex.
    pub check_value: Option<String>,
    /// `CKA_TRUSTED`.
    pub trusted: Option<bool>,
}

/// One wrapping key label across all tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrappingKeyCheck {
    /// The label.
    pub label: String,
    /// Per token, in the report's token order.
    pub tokens: Vec<WrappingKeyOnToken>,
    /// Whether every token has it with one and the same check value.
    pub same_check_value: bool,
}

impl WrappingKeyCheck {
    /// Present on every token with the same check value.
    pub fn is_consistent(&self) -> bool {
        self.tokens.iter().all(|t| t.present) && self.same_check_value
    }
}

/// The consistency check's result.
///
/// ```no_run
/// use cryptoki_ops::Hsm;
/// use tezos_keys::runbook::check_consistency;
/// # let (a, b): (Hsm, Hsm) = unimplemented!();
/// let report = check_consistency(&[a, b], &mut |_| {})?;
/// for key in report.keys.iter().filter(|k| !k.is_consistent()) {
///     println!("{}: missing on {:?}, same public key: {}", key.label, key.missing_on(), key.same_public_key);
/// }
/// println!("{}", serde_json::to_string(&report)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyReport {
    /// The tokens checked, in order.
    pub tokens: Vec<String>,
    /// Every private-key label found on any token, sorted.
    pub keys: Vec<KeyCheck>,
    /// Every wrapping (secret) key label found on any token, sorted.
    pub wrapping_keys: Vec<WrappingKeyCheck>,
    /// Whether everything is present everywhere and the same (see [`Self::is_consistent`]).
    pub consistent: bool,
}

impl ConsistencyReport {
    /// Every key and wrapping key present on every token, the same everywhere.
    pub fn is_consistent(&self) -> bool {
        self.keys.iter().all(KeyCheck::is_consistent)
            && self
                .wrapping_keys
                .iter()
                .all(WrappingKeyCheck::is_consistent)
    }

    /// The keys that are not consistent.
    pub fn problems(&self) -> impl Iterator<Item = &KeyCheck> {
        self.keys.iter().filter(|k| !k.is_consistent())
    }
}

/// Reads every token in `hsms` and compares them (module docs). `progress` is called before
/// each token is read.
pub fn check_consistency(
    hsms: &[Hsm],
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ConsistencyReport, RunbookError> {
    if hsms.len() < 2 {
        return Err(RunbookError::InvalidInput {
            what: "token list",
            reason: format!(
                "a consistency check compares at least 2 tokens, got {}",
                hsms.len()
            ),
        });
    }
    let tokens: Vec<String> = hsms.iter().map(|h| h.token_label().to_string()).collect();
    // label -> per token index -> what is there
    let mut keys: BTreeMap<String, Vec<Option<KeyOnToken>>> = BTreeMap::new();
    let mut wrappers: BTreeMap<String, Vec<Option<WrappingKeyOnToken>>> = BTreeMap::new();
    for (index, hsm) in hsms.iter().enumerate() {
        progress(Progress {
            done: index,
            total: hsms.len(),
            item: hsm.token_label(),
        });
        for info in hsm.list_keys()? {
            match info.class {
                KeyClass::Private => {
                    let slot = &mut keys
                        .entry(info.label.clone())
                        .or_insert_with(|| vec![None; hsms.len()])[index];
                    match slot {
                        Some(seen) => seen.count += 1,
                        None => *slot = Some(read_key(hsm, &info)),
                    }
                }
                KeyClass::Secret => {
                    wrappers
                        .entry(info.label.clone())
                        .or_insert_with(|| vec![None; hsms.len()])[index] =
                        Some(WrappingKeyOnToken {
                            token: hsm.token_label().to_string(),
                            present: true,
                            check_value: info.check_value.as_deref().map(hex::encode),
                            trusted: info.trusted,
                        });
                }
                KeyClass::Public => {}
            }
        }
    }
    let keys: Vec<KeyCheck> = keys
        .into_iter()
        .map(|(label, per_token)| key_check(label, per_token, &tokens))
        .collect();
    let wrapping_keys: Vec<WrappingKeyCheck> = wrappers
        .into_iter()
        .map(|(label, per_token)| {
            let values: Vec<Option<String>> = per_token
                .iter()
                .map(|t| t.as_ref().and_then(|t| t.check_value.clone()))
                .collect();
            let same_check_value =
                values.iter().all(Option::is_some) && values.windows(2).all(|w| w[0] == w[1]);
            let tokens = per_token
                .into_iter()
                .zip(&tokens)
                .map(|(t, token)| {
                    t.unwrap_or_else(|| WrappingKeyOnToken {
                        token: token.clone(),
                        present: false,
                        check_value: None,
                        trusted: None,
                    })
                })
                .collect();
            WrappingKeyCheck {
                label,
                tokens,
                same_check_value,
            }
        })
        .collect();
    let mut report = ConsistencyReport {
        tokens,
        keys,
        wrapping_keys,
        consistent: false,
    };
    report.consistent = report.is_consistent();
    Ok(report)
}

fn read_key(hsm: &Hsm, info: &KeyInfo) -> KeyOnToken {
    let public = hsm
        .key_pair(&KeySelector::Id(info.id.clone()))
        .map_err(RunbookError::from)
        .and_then(|pair| Ok(tezos_public_key(&pair.public_key)?));
    let (public_key, address, error) = match public {
        Ok(pk) => (Some(pk.to_string()), Some(pk.hash().to_string()), None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    KeyOnToken {
        token: hsm.token_label().to_string(),
        present: true,
        count: 1,
        curve: info.curve.map(|c| c.name().to_string()),
        id: Some(info.id_hex()),
        public_key,
        address,
        extractable: info.extractable,
        sensitive: info.sensitive,
        wrap_with_trusted: info.wrap_with_trusted,
        error,
    }
}

/// Reads one compared attribute of a key on a token, as text.
type Getter = fn(&KeyOnToken) -> Option<String>;

fn key_check(label: String, per_token: Vec<Option<KeyOnToken>>, tokens: &[String]) -> KeyCheck {
    let present: Vec<&KeyOnToken> = per_token.iter().flatten().collect();
    let same_public_key = present
        .windows(2)
        .all(|w| w[0].public_key == w[1].public_key)
        && present.iter().all(|t| t.public_key.is_some());
    let attributes: [(&'static str, Getter); 5] = [
        ("curve", |t| t.curve.clone()),
        ("id", |t| t.id.clone()),
        ("extractable", |t| t.extractable.map(|b| b.to_string())),
        ("sensitive", |t| t.sensitive.map(|b| b.to_string())),
        ("wrap_with_trusted", |t| {
            t.wrap_with_trusted.map(|b| b.to_string())
        }),
    ];
    let differences = attributes
        .into_iter()
        .filter(|(_, get)| present.windows(2).any(|w| get(w[0]) != get(w[1])))
        .map(|(attribute, get)| AttributeDifference {
            attribute,
            values: per_token.iter().map(|t| t.as_ref().and_then(get)).collect(),
        })
        .collect();
    let tokens = per_token
        .into_iter()
        .zip(tokens)
        .map(|(t, token)| {
            t.unwrap_or_else(|| KeyOnToken {
                token: token.clone(),
                present: false,
                count: 0,
                curve: None,
                id: None,
                public_key: None,
                address: None,
                extractable: None,
                sensitive: None,
                wrap_with_trusted: None,
                error: None,
            })
        })
        .collect();
    KeyCheck {
        label,
        tokens,
        same_public_key,
        differences,
    }
}
