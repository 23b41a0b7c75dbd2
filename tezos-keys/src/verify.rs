//! Signature verification with the same acceptance rules as the Octez node.

use crate::error::{Error, Result};
use crate::payload::digest;
use crate::{PublicKey, Signature, Verifier};

/// Verify `signature` over `message`: the digest is BLAKE2b-256 of
/// `message` (watermark included, if any) and the rest is
/// [`verify_digest`].
///
/// ```
/// use tezos_keys::{verify, PublicKey, Signature};
/// // tezos_crypto_rs test vector (Octez `sdk/rust/crypto/src/hash.rs`, tezos.md §9).
/// let pk: PublicKey = "p2pk65p7HKSGvkMdeK5yckM2nmi59oGNw4ksqdcvwxxF3AV3hopkfGS".parse()?;
/// let sig: Signature = "p2sigefoF8vJvSshWmLL6NyX6QnQUyUhq76r3F3ST6mTNqeCFzosDQyaRanoZpm14eeakZhAJ3LdGHFE4z9cPv9yTWFqWM4j9A".parse()?;
/// verify(&pk, b"hello, message", &sig)?;
/// assert!(verify(&pk, b"hello, messagE", &sig).is_err());
/// # Ok::<(), tezos_keys::Error>(())
/// ```
///
/// # Errors
/// As [`verify_digest`].
pub fn verify(public_key: &PublicKey, message: &[u8], signature: &Signature) -> Result<()> {
    verify_digest(public_key, &digest(message), signature)
}

/// Verify `signature` over a ready 32-byte digest. The work is done by a [`Verifier`]
/// (libsecp256k1 for secp256k1, OpenSSL for P-256): build one yourself to verify many
/// signatures of one key.
///
/// - secp256k1: ECDSA over the digest with no further hashing; a **high-S
///   signature is rejected** ([`Error::HighS`]) as the Octez node
///   (libsecp256k1) rejects it.
/// - P-256: ECDSA over the digest; high-S is **accepted**, as Octez (HACL*)
///   accepts it.
/// - Ed25519: PureEdDSA with the 32-byte digest as the message. We use
///   ed25519-dalek's `verify`, not `verify_strict`: Octez verifies with
///   HACL*, which applies the cofactorless RFC 8032 equation and rejects a
///   non-canonical `S` (as `verify` does) but does not reject small-order
///   keys or `R` points (which `verify_strict` would). Matching the node
///   matters more here than the extra strictness; keys this project
///   generates are never of small order.
///
/// # Errors
/// [`Error::CurveMismatch`] if the key and signature curves differ,
/// [`Error::MalformedSignature`] if `r`/`s` are out of range,
/// [`Error::HighS`] (secp256k1 only), or [`Error::VerificationFailed`].
pub fn verify_digest(
    public_key: &PublicKey,
    digest: &[u8; 32],
    signature: &Signature,
) -> Result<()> {
    if signature.curve() != public_key.curve() {
        return Err(Error::CurveMismatch {
            what: "the signature",
            expected: public_key.curve(),
            actual: signature.curve(),
        });
    }
    Verifier::new(public_key)?.verify_digest(digest, signature)
}

/// Verify from Tezos text encodings, as a CLI `verify` command gets them:
/// the public key (`edpk`/`sppk`/`p2pk`), the signed bytes (watermark
/// included) and the signature (`edsig`/`spsig1`/`p2sig`, or generic `sig`,
/// read with the key's curve). Returns the parsed key on success.
///
/// ```
/// // Taquito test vector (`packages/taquito-signer/test/taquito-signer.spec.ts`, tezos.md §9).
/// let pk = "sppk7aqSksZan1AGXuKtCz9UBLZZ77e3ZWGpFxR7ig1Z17GneEhSSbH";
/// let sig = "sigREwM1SuRN5WzjH5xGJuyeZQ9kWi8XtbA4wRqGTumJwNY18PmF1XQMLCXEQBr4frnriKHWdPUynF1vGUvPcoWrNjb3s5xp";
/// let key = tezos_keys::verify_encoded(pk, &[0x03, 0x12, 0x34], sig)?;
/// assert_eq!(key.hash().to_string(), "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD");
/// # Ok::<(), tezos_keys::Error>(())
/// ```
///
/// # Errors
/// Any parse [`Error`], then as [`verify`].
pub fn verify_encoded(public_key: &str, message: &[u8], signature: &str) -> Result<PublicKey> {
    let key: PublicKey = public_key.trim().parse()?;
    let sig = Signature::from_base58_for(signature.trim(), key.curve())?;
    verify(&key, message, &sig)?;
    Ok(key)
}
