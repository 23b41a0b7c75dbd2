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
//!    - anything else: [`GuardError::DoubleSign`], naming key, chain, kind, both heights. A
//!      **floor** ([`Mark::floor`]: no signature, set by `tezos-hsm watermark set` or imported
//!      from another signer) refuses its own height too.
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

#[cfg(doc)]
use crate::payload;

mod decision;
mod error;
mod guard;
mod mark;
mod policy;
mod store;

#[cfg(feature = "hsm")]
pub(crate) use error::list;
pub use error::GuardError;
pub use guard::HighWatermark;
pub use mark::{Height, KeyMarks, Mark, MarkKind};
pub use policy::KeyPolicy;
pub use store::{refuse_regression, FileStore, LockedRecord, MemoryStore, WatermarkStore};
