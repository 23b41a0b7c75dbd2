//! The double-signing guard itself: [`HighWatermark`].

use core::fmt;

use super::decision::{decide, Decision};
#[cfg(doc)]
use super::{FileStore, MemoryStore};
use super::{GuardError, Height, KeyPolicy, Mark, MarkKind, WatermarkStore};
use crate::payload;
use crate::{PublicKey, PublicKeyHash, Signature};

/// The double-signing guard. `Send + Sync` (share it in an [`std::sync::Arc`]); any number of
/// guards, in any number of processes on one host, may share one [`FileStore`] directory.
///
/// ```
/// use tezos_keys::high_watermark::{HighWatermark, KeyPolicy, MemoryStore};
/// use tezos_keys::{ChainId, SecretKey};
///
/// // Taquito test key (tezos.md §9) — TEST KEY ONLY. In production: an HsmKey and a FileStore.
/// let key = SecretKey::from_base58("spsk2rBDDeUqakQ42nBHDGQTtP3GErb6AahHPwF9bhca3Q5KA5HESE")?;
/// let address = key.public_key().hash();
/// let guard = HighWatermark::new(MemoryStore::new());
///
/// let attestation = |level: u32, branch: u8| {
///     let mut p = vec![0x13];
///     p.extend_from_slice(ChainId::MAINNET.as_bytes());
///     p.extend_from_slice(&[branch; 32]); // branch
///     p.extend_from_slice(&[0x15, 0, 0]); // operation kind, slot
///     p.extend_from_slice(&level.to_be_bytes());
///     p.extend_from_slice(&0u32.to_be_bytes()); // round
///     p.extend_from_slice(&[0; 32]); // block payload hash
///     p
/// };
/// let first = guard.sign(&address, &KeyPolicy::baking(), &key, &attestation(100, 1))?;
/// // A retry gets the recorded signature back…
/// assert_eq!(guard.sign(&address, &KeyPolicy::baking(), &key, &attestation(100, 1))?, first);
/// // …other bytes at the same level are refused…
/// let err = guard.sign(&address, &KeyPolicy::baking(), &key, &attestation(100, 2)).unwrap_err();
/// assert!(err.is_double_sign());
/// // …and a custody key may not attest at all.
/// assert!(guard.sign(&address, &KeyPolicy::custody(), &key, &attestation(101, 1)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HighWatermark {
    store: Box<dyn WatermarkStore>,
}

impl fmt::Debug for HighWatermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HighWatermark").finish_non_exhaustive()
    }
}

impl HighWatermark {
    /// A guard over `store` ([`FileStore`] in production, [`MemoryStore`] in tests).
    pub fn new(store: impl WatermarkStore + 'static) -> Self {
        Self {
            store: Box::new(store),
        }
    }

    /// The store, e.g. to read a key's record.
    pub fn store(&self) -> &dyn WatermarkStore {
        self.store.as_ref()
    }

    /// Signs `payload` (watermark byte included) with `signer`, the key whose address is
    /// `key`, if `policy` allows its watermark and, for consensus payloads, the high-watermark
    /// allows its height (see the [module documentation](super) for the rules and the order).
    ///
    /// `key` names the record: it must be the address of `signer`'s key;
    /// [`HighWatermark::sign_keypair`] derives it from the signer instead.
    ///
    /// # Errors
    /// [`GuardError::Payload`], [`GuardError::PolicyRefused`], [`GuardError::DoubleSign`],
    /// [`GuardError::StoreCorrupt`], [`GuardError::StoreIo`], [`GuardError::Signer`]. After any
    /// error no signature has left the guard.
    pub fn sign<S>(
        &self,
        key: &PublicKeyHash,
        policy: &KeyPolicy,
        signer: &S,
        payload: &[u8],
    ) -> Result<Signature, GuardError>
    where
        S: signature::Signer<Signature> + ?Sized,
    {
        let info = payload::classify(payload)?;
        if !policy.allows(info.watermark) {
            return Err(GuardError::PolicyRefused {
                key: *key,
                watermark: info.watermark,
                allowed: policy.allowed.clone(),
            });
        }
        let Some(kind) = MarkKind::of(info.watermark) else {
            return signer.try_sign(payload).map_err(GuardError::Signer);
        };
        let (Some(chain), Some(level)) = (info.chain_id, info.level) else {
            // classify always reads both for consensus kinds; refuse rather than guess.
            return Err(GuardError::Payload(crate::Error::InvalidPayload {
                byte: info.watermark.byte(),
                name: info.watermark.name(),
                reason: "no chain id or level found".to_owned(),
            }));
        };
        let requested = Height {
            level,
            round: info.round,
        };
        let digest = payload::digest(payload);

        let refused = |recorded| GuardError::DoubleSign {
            key: *key,
            chain,
            kind,
            requested,
            recorded,
        };

        // Held from the load through signing to the durable save; released when dropped.
        let mut record = self.store.lock(key)?;
        match decide(record.load()?.get(&(chain, kind)), requested, &digest) {
            Decision::Sign => {}
            Decision::Replay(signature) => return Ok(signature),
            Decision::Refuse(recorded) => return Err(refused(recorded)),
        }
        let signature = signer.try_sign(payload).map_err(GuardError::Signer)?;
        // Read again and decide again: under the lock nothing changed; if the lock did not
        // hold, the newer record wins and this signature never leaves the guard.
        let mut marks = record.load()?;
        match decide(marks.get(&(chain, kind)), requested, &digest) {
            Decision::Sign => {}
            Decision::Replay(recorded) => return Ok(recorded),
            Decision::Refuse(recorded) => return Err(refused(recorded)),
        }
        marks.insert((chain, kind), Mark::signed(requested, digest, signature));
        record.save(&marks)?;
        Ok(signature)
    }

    /// [`HighWatermark::sign`] with the record named by the signer's own public key, so a
    /// wrong address cannot be passed ([`crate::HsmKey`] and [`crate::SecretKey`] qualify).
    ///
    /// # Errors
    /// As [`HighWatermark::sign`].
    pub fn sign_keypair<S>(
        &self,
        policy: &KeyPolicy,
        signer: &S,
        payload: &[u8],
    ) -> Result<Signature, GuardError>
    where
        S: signature::Signer<Signature> + signature::Keypair<VerifyingKey = PublicKey> + ?Sized,
    {
        let key = signer.verifying_key().hash();
        self.sign(&key, policy, signer, payload)
    }
}
