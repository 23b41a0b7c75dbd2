//! The served keys: each an [`HsmKey`] on the shared [`Hsm`] (its session pool) with its
//! [`KeyRules`], found by address.

use std::collections::BTreeMap;
use std::sync::Arc;

use cryptoki_ops::{Hsm, KeyClass, KeySelector};
use tezos_keys::{HsmKey, PublicKeyHash, SignError};

use crate::policy::KeyRules;

/// One served key.
#[derive(Clone, Debug)]
pub struct ServedKey {
    /// Its label on the token.
    pub label: String,
    /// The key (public half read once; signatures through the pool).
    pub key: HsmKey,
    /// What it may sign.
    pub rules: KeyRules,
}

/// The served keys, by address. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: BTreeMap<PublicKeyHash, Arc<ServedKey>>,
}

/// Why the served keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The HSM failed, or a key was not found or is not a Tezos key.
    #[error(transparent)]
    Hsm(#[from] SignError),
    /// Two labels name the same key.
    #[error(
        "labels '{first}' and '{second}' are the same key {address}; serve it once (give one --key)"
    )]
    SameKeyTwice {
        /// The first label.
        first: String,
        /// The second label.
        second: String,
        /// The address.
        address: PublicKeyHash,
    },
    /// Nothing to serve.
    #[error(
        "the token '{token}' has no EC key to serve; generate one with `tezos-hsm key generate`"
    )]
    NoKeys {
        /// The token's label.
        token: String,
    },
}

impl KeysError {
    /// A stable snake_case name of the error's kind:
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | [`SignError::kind`] (e.g. `key_not_found`, `pkcs11`) | [`KeysError::Hsm`] |
    /// | `duplicate_key` | [`KeysError::SameKeyTwice`] |
    /// | `no_keys` | [`KeysError::NoKeys`] |
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hsm(e) => e.kind(),
            Self::SameKeyTwice { .. } => "duplicate_key",
            Self::NoKeys { .. } => "no_keys",
        }
    }
}

impl From<cryptoki_ops::Error> for KeysError {
    fn from(e: cryptoki_ops::Error) -> Self {
        Self::Hsm(SignError::Hsm(e))
    }
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key`, refusing a second label for a key already in the set.
    ///
    /// # Errors
    /// [`KeysError::SameKeyTwice`].
    pub fn insert(&mut self, key: ServedKey) -> Result<(), KeysError> {
        let address = *key.key.address();
        if let Some(first) = self.keys.get(&address) {
            return Err(KeysError::SameKeyTwice {
                first: first.label.clone(),
                second: key.label,
                address,
            });
        }
        self.keys.insert(address, Arc::new(key));
        Ok(())
    }

    /// The keys labelled `labels` on `hsm`, or, when `labels` is empty, every EC private key
    /// of the token, each with the rules `rules_for(label)`.
    ///
    /// # Errors
    /// [`KeysError::Hsm`] for a label not found (or found twice) or an HSM failure,
    /// [`KeysError::SameKeyTwice`], [`KeysError::NoKeys`] for a token without EC keys.
    pub fn load(
        hsm: &Hsm,
        labels: &[String],
        rules_for: impl Fn(&str) -> KeyRules,
    ) -> Result<Self, KeysError> {
        let labels: Vec<String> = if labels.is_empty() {
            let mut all: Vec<String> = hsm
                .list_keys()?
                .into_iter()
                .filter(|k| k.class == KeyClass::Private && k.curve.is_some())
                .map(|k| k.label)
                .collect();
            all.dedup();
            all
        } else {
            labels.to_vec()
        };
        let mut set = Self::new();
        for label in labels {
            let key = HsmKey::open(hsm, &KeySelector::Label(label.clone()))?;
            let rules = rules_for(&label);
            set.insert(ServedKey { label, key, rules })?;
        }
        if set.keys.is_empty() {
            return Err(KeysError::NoKeys {
                token: hsm.token_label().to_string(),
            });
        }
        Ok(set)
    }

    /// The same keys with verify-after-sign on or off ([`HsmKey::with_verify_after_sign`]; on
    /// by default): off saves a software verification per signature, which octez-client and
    /// Taquito make themselves anyway.
    #[must_use]
    pub fn with_verify_after_sign(self, on: bool) -> Self {
        let keys = self
            .keys
            .into_iter()
            .map(|(address, served)| {
                let ServedKey { label, key, rules } = Arc::unwrap_or_clone(served);
                let key = key.with_verify_after_sign(on);
                (address, Arc::new(ServedKey { label, key, rules }))
            })
            .collect();
        Self { keys }
    }

    /// The key of `address`, if served.
    pub fn get(&self, address: &PublicKeyHash) -> Option<&Arc<ServedKey>> {
        self.keys.get(address)
    }

    /// Every served key, by address.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ServedKey>> {
        self.keys.values()
    }

    /// How many keys are served.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is served.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
