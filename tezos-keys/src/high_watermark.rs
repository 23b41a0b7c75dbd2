//! Double-signing protection: a high-watermark guard in front of a signer.
//!
//! A baker whose key signs two different blocks, preattestations or attestations at the same
//! level and round is slashed. [`HighWatermark`] sits between a service and its signer (an
//! [`crate::HsmKey`], or anything implementing [`signature::Signer<Signature>`]) and refuses
//! any consensus payload that is not above the last one signed for that key, chain and kind.
//!
//! # Rules
//!
//! For every payload, in this order:
//!
//! 1. **Classify** it ([`payload::classify`]): empty, unknown and truncated payloads are refused.
//! 2. **Policy**: the watermark must be in the key's [`KeyPolicy`], else
//!    [`GuardError::PolicyRefused`]. Non-consensus payloads (`0x03` generic, `0x05` Michelson)
//!    then go straight to the signer: they carry no level, so there is nothing to compare.
//! 3. **Lock** the key's record in the [`WatermarkStore`] ([`WatermarkStore::lock`]; for a
//!    [`FileStore`], an OS file lock that excludes every other thread and process on the
//!    host). Requests for one key are serialised from here to the end, whichever process they
//!    come from; requests for different keys never wait on each other.
//! 4. **Load** the key's record (every time: the store, not memory, is the truth, so a record
//!    edited or damaged on disk, or written by another process, is seen at once). No record:
//!    first use, signing is allowed. A record that exists but cannot be read or parsed stops
//!    signing with [`GuardError::StoreCorrupt`] / [`GuardError::StoreIo`]; it is never taken
//!    as zero.
//! 5. **Compare** the payload's (level, round) with the record for its (chain id, [`MarkKind`]):
//!    - above it (level higher, or same level and round higher): sign;
//!    - equal, and the payload's BLAKE2b-256 digest is the recorded one (a retried request):
//!      return the **recorded signature**, without asking the signer;
//!    - anything else: [`GuardError::DoubleSign`], naming key, chain, kind, both heights.
//!
//!    A height without a round (legacy `0x01`/`0x02`) is compared by level alone, as Octez
//!    does for legacy entries.
//! 6. **Sign**, then **persist** (level, round, digest, signature) durably
//!    ([`FileStore`]: temporary file, fsync, rename, fsync of the directory), then **return**,
//!    then unlock. Before saving, the record is read once more and the comparison of step 5
//!    made again: under a working lock nothing changed, and if the lock did not hold (a
//!    network file system ignoring `flock`) the record still never moves backwards and the
//!    new signature is dropped rather than returned beside another one.
//!
//! # Why return the recorded signature for a retried request
//!
//! Octez (`src/bin_signer/handler.ml`, `High_watermark`) does so; Signatory re-signs. With
//! ECDSA on an HSM the nonce is random, so signing the same bytes again gives a *different*
//! signature, hence a different block or operation hash for the same content — two valid
//! signed objects at one level, which is what double-baking evidence looks like (tezos.md §6–§7:
//! the P-256 malleability case). Returning the stored signature makes a retry idempotent: the
//! caller gets byte-for-byte the signature it may already have published. This is why the
//! signature is stored with the watermark.
//!
//! # Why sign first, persist second, return last
//!
//! tmkms and Signatory persist *before* signing; Octez and russignol sign first. We sign first
//! because the record must hold the signature (above), and that is only known after signing.
//! It is safe because a signature is harmful only once it has left the process, and it leaves
//! only after the record is durable:
//!
//! - crash before or during signing, or during the write: the old record is intact (the
//!   rename is atomic), the signature was never returned, so signing another payload at that
//!   height after a restart produces the only signature anybody ever sees;
//! - crash after the rename: the new record is on disk; a retry gets the same signature back,
//!   a different payload is refused;
//! - the store fails (disk full, I/O error): the signature is dropped and the error returned.
//!   If the rename happened but the directory fsync failed, the next request reads whichever
//!   record is on disk; both are safe, because the dropped signature was never seen.
//!
//! Persisting first would also be safe but would lose the recorded signature, and a crash
//! between persist and sign would leave a level the baker can no longer sign at all.
//!
//! # Kinds and chains
//!
//! Records are per key, per chain id, per [`MarkKind`]: block, preattestation, attestation.
//! Legacy `0x01` blocks share the block record and legacy `0x02` endorsements the attestation
//! record (our reasoning: sharing can only refuse more, never less; a legacy and a Tenderbake
//! payload at one level are two different signed objects).
//!
//! # Limits
//!
//! Any number of threads and processes on one host may sign with one key through one
//! [`FileStore`] directory, each with its own [`HighWatermark`]. Several hosts are not
//! excluded from each other, even on a shared file system: a key signs on one host, or
//! through a shared store (not built yet). Non-consensus payloads never touch the store, so
//! they are still signed when a record is damaged or the store is missing.

use core::cmp::Ordering;
use core::fmt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::payload::{self, Watermark};
use crate::{ChainId, PublicKey, PublicKeyHash, Signature};

mod store;

pub use store::{FileStore, LockedRecord, MemoryStore, WatermarkStore};

/// The consensus kinds a watermark is kept for, one record each per key and chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkKind {
    /// Blocks: `0x11`, and legacy `0x01`.
    Block,
    /// Preattestations: `0x12`.
    Preattestation,
    /// Attestations: `0x13`, and legacy `0x02` endorsements.
    Attestation,
}

impl MarkKind {
    /// All kinds.
    pub const ALL: [Self; 3] = [Self::Block, Self::Preattestation, Self::Attestation];

    /// The kind whose record guards `watermark`; `None` for non-consensus payloads.
    pub const fn of(watermark: Watermark) -> Option<Self> {
        match watermark {
            Watermark::Block | Watermark::LegacyBlock => Some(Self::Block),
            Watermark::Preattestation => Some(Self::Preattestation),
            Watermark::Attestation | Watermark::LegacyEndorsement => Some(Self::Attestation),
            Watermark::Generic | Watermark::Michelson => None,
        }
    }

    /// A stable lower-case name, used in files and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Preattestation => "preattestation",
            Self::Attestation => "attestation",
        }
    }

    /// The kind with this [`MarkKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for MarkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A level and, for Tenderbake payloads, a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Height {
    /// The block level.
    pub level: u32,
    /// The round; `None` for legacy payloads, which have none.
    pub round: Option<u32>,
}

impl Height {
    /// A Tenderbake height.
    pub const fn new(level: u32, round: u32) -> Self {
        Self {
            level,
            round: Some(round),
        }
    }

    /// How `self` compares with `other`: by (level, round), or by level alone when either
    /// has no round (Octez, for legacy entries).
    pub fn compare(&self, other: &Self) -> Ordering {
        match (self.round, other.round) {
            (Some(a), Some(b)) => (self.level, a).cmp(&(other.level, b)),
            _ => self.level.cmp(&other.level),
        }
    }
}

impl fmt::Display for Height {
    /// `level 5 round 0`, or `level 5` without a round.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.level)?;
        if let Some(round) = self.round {
            write!(f, " round {round}")?;
        }
        Ok(())
    }
}

/// What was last signed for one key, chain and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Its level and round.
    pub height: Height,
    /// BLAKE2b-256 of the signed payload, watermark included ([`payload::digest`]).
    pub digest: [u8; 32],
    /// The signature returned for it, returned again for an identical request.
    pub signature: Signature,
}

/// Everything recorded for one key: a [`Mark`] per (chain id, kind).
pub type KeyMarks = BTreeMap<(ChainId, MarkKind), Mark>;

/// Which watermarks a key may sign, configured per key.
///
/// ```
/// use tezos_keys::high_watermark::KeyPolicy;
/// use tezos_keys::payload::Watermark;
/// assert!(KeyPolicy::baking().allows(Watermark::Attestation));
/// assert!(!KeyPolicy::custody().allows(Watermark::Block));
/// let policy = KeyPolicy::from_allow_list("0x11,0x12,0x13")?; // like octez-signer --magic-bytes
/// assert!(!policy.allows(Watermark::Generic));
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The watermarks this key may sign.
    pub allowed: Vec<Watermark>,
}

impl KeyPolicy {
    /// A policy allowing exactly `allowed`.
    pub fn new(allowed: impl IntoIterator<Item = Watermark>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }

    /// A baking key: blocks, preattestations, attestations (`0x11`–`0x13`) and generic
    /// operations (`0x03`: reveal, stake, delegation, ballots…). Not the legacy `0x01`/`0x02`,
    /// which no current protocol uses: add them with [`KeyPolicy::new`] if needed.
    pub fn baking() -> Self {
        Self::new([
            Watermark::Block,
            Watermark::Preattestation,
            Watermark::Attestation,
            Watermark::Generic,
        ])
    }

    /// A custody key: generic operations (`0x03`) and Michelson data (`0x05`), never consensus.
    pub fn custody() -> Self {
        Self::new([Watermark::Generic, Watermark::Michelson])
    }

    /// Every known watermark (tests, or a key the operator vouches for).
    pub fn all() -> Self {
        Self::new(Watermark::ALL)
    }

    /// A policy from a comma-separated list such as `0x11,0x12,0x13` or `generic,michelson`
    /// ([`payload::parse_allow_list`]).
    ///
    /// # Errors
    /// [`crate::Error::InvalidWatermarkName`] for an entry not understood.
    pub fn from_allow_list(list: &str) -> crate::Result<Self> {
        payload::parse_allow_list(list).map(Self::new)
    }

    /// Whether `watermark` may be signed.
    pub fn allows(&self, watermark: Watermark) -> bool {
        self.allowed.contains(&watermark)
    }
}

/// Why the guard did not return a signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Signing would break the high-watermark: the payload is not above the last one signed
    /// for this key, chain and kind, or is at the same height with different bytes.
    #[error(
        "refusing to double-sign: {kind} for {key} on chain {chain} at {requested} {}",
        refusal(requested, recorded)
    )]
    DoubleSign {
        /// The key.
        key: PublicKeyHash,
        /// The chain id.
        chain: ChainId,
        /// The kind whose record refused it.
        kind: MarkKind,
        /// The payload's height.
        requested: Height,
        /// The last height signed.
        recorded: Height,
    },
    /// The key's policy does not allow this watermark.
    #[error(
        "key {key} may not sign {watermark} (0x{:02x}) payloads; its policy allows: {}",
        watermark.byte(),
        list(allowed)
    )]
    PolicyRefused {
        /// The key.
        key: PublicKeyHash,
        /// The payload's watermark.
        watermark: Watermark,
        /// What the policy allows.
        allowed: Vec<Watermark>,
    },
    /// The payload is malformed (empty, unknown watermark, truncated, negative level…).
    #[error(transparent)]
    Payload(#[from] crate::Error),
    /// The key's watermark record exists but is not a valid record. Signing consensus payloads
    /// for this key stops until an operator repairs or restores it.
    #[error(
        "the high-watermark record {} is unreadable ({reason}); consensus signing for this key is \
         stopped: restore the file from a backup or fix it by hand (never delete it unless you \
         know the highest level and round this key signed)",
        path.display()
    )]
    StoreCorrupt {
        /// The file (or, for another store, its location).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's directory does not exist. It is never created when opened to sign: a
    /// missing directory may be an unmounted volume, a typo or another `HOME`, and signing
    /// from an empty store could double-sign.
    #[error(
        "the high-watermark directory {} does not exist, so nothing is known about what this key \
         signed; if this is a new signer, create it with `tezos-hsm watermark init` (it is also \
         created by `key generate` and `key restore`); if it existed before, check the path and \
         that its volume is mounted, and never sign from an empty directory with a key that has \
         signed before",
        dir.display()
    )]
    StoreMissing {
        /// The directory.
        dir: PathBuf,
    },
    /// The store's directory is owned by another user or writable by group or others, so
    /// somebody else could replace a record or plant a symbolic link in it.
    #[error(
        "refusing the high-watermark directory {}: it {problem}, so another user could replace \
         its records and make this key double-sign; fix: {fix}",
        dir.display()
    )]
    StoreUnsafe {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to fix it (a command).
        fix: String,
    },
    /// Another thread or process held the key's record lock for longer than the store waits.
    #[error(
        "the high-watermark record lock {} was held by another signer for {waited:.1?}: a \
         signing process may be stuck (a hung HSM call, a stopped process); find it with `lsof \
         {}` and retry",
        path.display(),
        path.display()
    )]
    StoreBusy {
        /// The lock file.
        path: PathBuf,
        /// How long this request waited.
        waited: Duration,
    },
    /// Reading or writing the watermark store failed.
    #[error("cannot {action} the high-watermark record {}: {source}", path.display())]
    StoreIo {
        /// The file or directory.
        path: PathBuf,
        /// What was being done: `read`, `write`, `fsync`, `rename`…
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The signer failed; nothing was recorded.
    #[error("the signer failed: {}", signer_reason(.0))]
    Signer(signature::Error),
}

impl GuardError {
    /// Whether this is a [`GuardError::DoubleSign`] refusal.
    pub fn is_double_sign(&self) -> bool {
        matches!(self, Self::DoubleSign { .. })
    }

    /// A stable snake_case name of the error's kind, for machine-readable output:
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | `double_sign` | [`GuardError::DoubleSign`] |
    /// | `watermark_not_allowed` | [`GuardError::PolicyRefused`] |
    /// | [`crate::Error::kind`] | [`GuardError::Payload`] (`invalid_input`) |
    /// | `watermark_store_corrupt` | [`GuardError::StoreCorrupt`] |
    /// | `watermark_store_missing` | [`GuardError::StoreMissing`] |
    /// | `watermark_store_unsafe` | [`GuardError::StoreUnsafe`] |
    /// | `watermark_store_busy` | [`GuardError::StoreBusy`] |
    /// | `io` | [`GuardError::StoreIo`] |
    /// | the signer's own kind, else `sign_failed` | [`GuardError::Signer`] |
    ///
    /// The signer's own kind is that of the error inside the [`signature::Error`], when it is
    /// a [`crate::SignError`] (e.g. `pin_incorrect`, `key_not_found` from the HSM), a
    /// [`cryptoki_ops::Error`] or a [`crate::Error`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DoubleSign { .. } => "double_sign",
            Self::PolicyRefused { .. } => "watermark_not_allowed",
            Self::Payload(e) => e.kind(),
            Self::StoreCorrupt { .. } => "watermark_store_corrupt",
            Self::StoreMissing { .. } => "watermark_store_missing",
            Self::StoreUnsafe { .. } => "watermark_store_unsafe",
            Self::StoreBusy { .. } => "watermark_store_busy",
            Self::StoreIo { .. } => "io",
            Self::Signer(e) => signer_kind(e),
        }
    }
}

fn refusal(requested: &Height, recorded: &Height) -> String {
    if requested.compare(recorded) == Ordering::Equal {
        format!("which was already signed with different bytes (recorded: {recorded})")
    } else {
        format!("which is not above the last one signed, at {recorded}")
    }
}

/// `block (0x11), attestation (0x13)`, or `nothing`.
pub(crate) fn list(allowed: &[Watermark]) -> String {
    if allowed.is_empty() {
        return "nothing".to_owned();
    }
    allowed
        .iter()
        .map(|w| format!("{w} (0x{:02x})", w.byte()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind of the error a signer put inside its [`signature::Error`], if this crate knows it.
fn signer_kind(error: &signature::Error) -> &'static str {
    let Some(source) = std::error::Error::source(error) else {
        return "sign_failed";
    };
    #[cfg(feature = "hsm")]
    {
        if let Some(e) = source.downcast_ref::<crate::SignError>() {
            return e.kind();
        }
        if let Some(e) = source.downcast_ref::<cryptoki_ops::Error>() {
            return e.kind();
        }
    }
    source
        .downcast_ref::<crate::Error>()
        .map_or("sign_failed", crate::Error::kind)
}

fn signer_reason(error: &signature::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => error.to_string(),
    }
}

/// What the guard does with a consensus payload, given the record.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Above the record (or no record): sign and record.
    Sign,
    /// The very same payload as recorded: return this signature again.
    Replay(Signature),
    /// Refuse, citing the recorded height.
    Refuse(Height),
}

fn decide(recorded: Option<&Mark>, requested: Height, digest: &[u8; 32]) -> Decision {
    let Some(mark) = recorded else {
        return Decision::Sign;
    };
    match requested.compare(&mark.height) {
        Ordering::Greater => Decision::Sign,
        Ordering::Equal if mark.digest == *digest => Decision::Replay(mark.signature),
        _ => Decision::Refuse(mark.height),
    }
}

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
    /// allows its height (see the [module documentation](self) for the rules and the order).
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
        marks.insert(
            (chain, kind),
            Mark {
                height: requested,
                digest,
                signature,
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Curve;

    const MINE: [u8; 32] = [1; 32];
    const OTHER: [u8; 32] = [2; 32];
    const SIG: Signature = Signature::new(Curve::Ed25519, [7; 64]);

    fn h(level: u32, round: Option<u32>) -> Height {
        Height { level, round }
    }

    /// One row: recorded height (or none), requested height, same bytes?, expected decision.
    macro_rules! row {
        ($name:ident: none, $req:expr, $same:expr => $expected:ident) => {
            #[test]
            fn $name() {
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(None, $req, &digest), Decision::$expected);
            }
        };
        ($name:ident: $rec:expr, $req:expr, $same:expr => Refuse) => {
            #[test]
            fn $name() {
                let mark = Mark {
                    height: $rec,
                    digest: MINE,
                    signature: SIG,
                };
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(Some(&mark), $req, &digest), Decision::Refuse($rec));
            }
        };
        ($name:ident: $rec:expr, $req:expr, $same:expr => Replay) => {
            #[test]
            fn $name() {
                let mark = Mark {
                    height: $rec,
                    digest: MINE,
                    signature: SIG,
                };
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(Some(&mark), $req, &digest), Decision::Replay(SIG));
            }
        };
        ($name:ident: $rec:expr, $req:expr, $same:expr => Sign) => {
            #[test]
            fn $name() {
                let mark = Mark {
                    height: $rec,
                    digest: MINE,
                    signature: SIG,
                };
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(Some(&mark), $req, &digest), Decision::Sign);
            }
        };
    }

    row!(first_use_signs: none, h(5, Some(0)), false => Sign);
    row!(higher_level_signs: h(5, Some(3)), h(6, Some(0)), false => Sign);
    row!(higher_round_signs: h(5, Some(0)), h(5, Some(1)), false => Sign);
    row!(same_height_same_bytes_replays: h(5, Some(1)), h(5, Some(1)), true => Replay);
    row!(same_height_other_bytes_refused: h(5, Some(1)), h(5, Some(1)), false => Refuse);
    row!(lower_round_refused: h(5, Some(1)), h(5, Some(0)), false => Refuse);
    row!(lower_round_same_bytes_refused: h(5, Some(1)), h(5, Some(0)), true => Refuse);
    row!(lower_level_refused: h(5, Some(0)), h(4, Some(9)), false => Refuse);
    row!(lower_level_same_bytes_refused: h(5, Some(0)), h(4, Some(0)), true => Refuse);
    row!(legacy_higher_level_signs: h(5, None), h(6, None), false => Sign);
    row!(legacy_same_level_replays: h(5, None), h(5, None), true => Replay);
    row!(legacy_same_level_refused: h(5, None), h(5, None), false => Refuse);
    row!(legacy_lower_level_refused: h(5, None), h(4, None), true => Refuse);
    row!(mixed_same_level_refused: h(5, Some(0)), h(5, None), false => Refuse);
    row!(mixed_round_ignored_refused: h(5, None), h(5, Some(9)), false => Refuse);
    row!(mixed_higher_level_signs: h(5, Some(9)), h(6, None), false => Sign);

    #[test]
    fn messages_name_everything() {
        let err = GuardError::DoubleSign {
            key: PublicKeyHash::new(Curve::Secp256k1, [0; 20]),
            chain: ChainId::MAINNET,
            kind: MarkKind::Attestation,
            requested: h(5, Some(0)),
            recorded: h(7, Some(1)),
        };
        let text = err.to_string();
        assert!(text.contains("attestation for tz2"), "{text}");
        assert!(
            text.contains("on chain NetXdQprcVkpaWU at level 5 round 0"),
            "{text}"
        );
        assert!(
            text.contains("not above the last one signed, at level 7 round 1"),
            "{text}"
        );
        let err = GuardError::PolicyRefused {
            key: PublicKeyHash::new(Curve::Ed25519, [0; 20]),
            watermark: Watermark::Block,
            allowed: KeyPolicy::custody().allowed,
        };
        assert!(err
            .to_string()
            .ends_with("may not sign block (0x11) payloads; its policy allows: generic (0x03), michelson (0x05)"));
    }

    #[test]
    fn kinds_cover_consensus_watermarks_only() {
        for w in Watermark::ALL {
            assert_eq!(MarkKind::of(w).is_some(), w.is_consensus(), "{w}");
        }
        for k in MarkKind::ALL {
            assert_eq!(MarkKind::from_name(k.name()), Some(k));
        }
    }
}
