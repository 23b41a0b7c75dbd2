//! Tezos keys, addresses, encodings and signatures, and Tezos signing with HSM keys.
//!
//! Everything but the HSM seam ([`hsm`]: [`HsmKey`] and [`runbook`], behind the default cargo
//! feature `hsm`) is pure software; the seam reaches the HSM through `cryptoki-ops`. Build with
//! `default-features = false` for the codecs and the guard without any PKCS#11 dependency.
//!
//! - [`base58`]: base58check with every Tezos [`base58::Prefix`], strict decoding.
//! - [`Curve`], [`PublicKey`], [`PublicKeyHash`] (`tz1`/`tz2`/`tz3`), [`ChainId`].
//! - [`payload`]: classify signing requests by watermark byte and read the
//!   chain id, level and round of consensus operations; [`payload::digest`].
//! - [`operation`]: generic operations (`0x03`) decoded to the [`operation::OperationKind`] of
//!   every content, refusing what cannot be decoded.
//! - [`Signature`]: raw, DER, low-S normalisation, `edsig`/`spsig1`/`p2sig`/`sig`.
//! - [`verify()`], [`verify_digest`], [`verify_encoded`]: the Octez node's rules.
//! - [`SecretKey`]: software keys (`edsk`/`spsk`/`p2sk`) for tests and exports.
//! - [`high_watermark`]: [`HighWatermark`], the double-signing guard in front of a signer, with
//!   per-key [`KeyPolicy`] and a durable [`high_watermark::FileStore`].
//! - [`HsmKey`] (feature `hsm`): a Tezos key whose private half is in a PKCS#11 HSM (through
//!   `cryptoki-ops`): watermark check, BLAKE2b-256, HSM signature, low-S, verification,
//!   RustCrypto traits.
//! - [`durable`]: the one owner-only durable file writer: new files never over an existing one,
//!   atomic replacement, bounded reads that follow no symbolic link, private directories.
//! - [`runbook`] (feature `hsm`): backup and restore of wrapped keys, replication to a second HSM, the
//!   consistency check across tokens, and the opt-in hot-wallet export.
//!
//! BLS (`tz4`) and originated contracts (`KT1`) are recognised only to
//! report that they are not supported. Nothing here panics on any input.
//!
//! ```
//! use tezos_keys::{payload, verify, SecretKey};
//! // Taquito test key (tezos.md §9) — TEST KEY ONLY.
//! let sk = SecretKey::from_base58("spsk2rBDDeUqakQ42nBHDGQTtP3GErb6AahHPwF9bhca3Q5KA5HESE")?;
//! let pk = sk.public_key();
//! assert_eq!(pk.hash().to_string(), "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD");
//! let request = [0x03, 0x12, 0x34];
//! assert_eq!(payload::classify(&request)?.watermark, payload::Watermark::Generic);
//! let sig = sk.sign(&request)?;
//! verify(&pk, &request, &sig)?;
//! # Ok::<(), tezos_keys::Error>(())
//! ```

mod address;
pub mod base58;
mod chain_id;
mod curve;
pub mod durable;
mod error;
mod hash;
pub mod high_watermark;
#[cfg(feature = "hsm")]
pub mod hsm;
pub mod operation;
pub mod payload;
mod public_key;
mod secret_key;
mod signature;
mod verifier;
mod verify;

pub use address::{PublicKeyHash, FORGED_PKH_LEN};
pub use chain_id::ChainId;
pub use curve::Curve;
pub use error::{Error, Result};
pub use high_watermark::{GuardError, HighWatermark, KeyPolicy};
#[cfg(feature = "hsm")]
pub use hsm::{runbook, tezos_curve, tezos_public_key, HsmKey, SignError};
pub use public_key::PublicKey;
pub use secret_key::SecretKey;
pub use signature::{Signature, SIGNATURE_LEN};
pub use verifier::Verifier;
pub use verify::{verify, verify_digest, verify_encoded};

/// The README's Rust examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "hsm"))]
pub struct ReadmeDoctests;
