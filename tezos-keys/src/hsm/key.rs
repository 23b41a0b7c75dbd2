//! Tezos keys held in a PKCS#11 HSM: an address, and signatures exactly as Tezos expects them.
//!
//! [`HsmKey`] wraps a [`cryptoki_ops::SigningKey`]. Signing a payload:
//! 1. classifies it by its watermark byte ([`crate::payload::classify`]): empty, unknown and
//!    truncated payloads are refused before the HSM is asked;
//! 2. hashes the whole payload, watermark included, with BLAKE2b-256;
//! 3. signs the digest on the HSM (raw `CKM_ECDSA`, or `CKM_EDDSA` with the digest as message);
//! 4. normalises ECDSA signatures to low-S (secp256k1: Octez rejects high-S; P-256: harmless,
//!    and it removes the malleable twin — see [`crate::Signature::normalize_s`]);
//! 5. verifies the result in software with the Octez node's rules, unless turned off with
//!    [`HsmKey::with_verify_after_sign`]: a signature that would be rejected on chain never
//!    leaves the signer.
//!
//! It also implements the RustCrypto `signature` traits, so code written for a software key can
//! use an HSM key: [`signature::Signer`] (Tezos signature of a payload),
//! [`signature::hazmat::PrehashSigner`] for `k256`/`p256` ECDSA signatures of a 32-byte digest,
//! and [`signature::Keypair`] with the Tezos [`PublicKey`] as verifying key.

use std::fmt;

use cryptoki_ops::{Hsm, KeySelector, SigningKey};

use crate::high_watermark::{self, KeyPolicy};
use crate::payload::{self, PayloadInfo, Watermark};
use crate::{Curve, PublicKey, PublicKeyHash, Signature, Verifier};

/// Why an HSM-backed signature could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The HSM (PKCS#11) side failed: module, login, key, policy...
    #[error(transparent)]
    Hsm(#[from] cryptoki_ops::Error),
    /// The Tezos side refused the input (payload, encoding...).
    #[error(transparent)]
    Tezos(#[from] crate::Error),
    /// The key's [`KeyPolicy`] does not allow the payload's watermark (the same refusal, with
    /// the same message, as [`crate::GuardError::PolicyRefused`]).
    #[error(
        "key {key} may not sign {watermark} (0x{:02x}) payloads; its policy allows: {}",
        watermark.byte(),
        high_watermark::list(allowed)
    )]
    PolicyRefused {
        /// The key.
        key: PublicKeyHash,
        /// The payload's watermark.
        watermark: Watermark,
        /// What the policy allows.
        allowed: Vec<Watermark>,
    },
    /// The HSM returned a signature that does not verify: the key on the token is not the key
    /// whose public half was read, or the HSM is faulty. Nothing was returned to the caller.
    #[error(
        "the HSM's signature for {key} does not verify ({reason}); check the key pair on the token"
    )]
    VerifyAfterSignFailed {
        /// The key's address.
        key: String,
        /// What the verifier said.
        reason: String,
    },
}

impl SignError {
    /// A stable snake_case name of the error's kind, for machine-readable output:
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | [`cryptoki_ops::Error::kind`] | [`SignError::Hsm`] (e.g. `key_not_found`, `pin_incorrect`, `pkcs11`) |
    /// | [`crate::Error::kind`] | [`SignError::Tezos`] (`invalid_input`, `verify_failed`) |
    /// | `watermark_not_allowed` | [`SignError::PolicyRefused`] |
    /// | `verify_failed` | [`SignError::VerifyAfterSignFailed`] |
    ///
    /// ```
    /// use tezos_keys::SignError;
    /// let err = SignError::Hsm(cryptoki_ops::Error::PinIncorrect { token: "t".into() });
    /// assert_eq!(err.kind(), "pin_incorrect");
    /// assert_eq!(SignError::Tezos(tezos_keys::Error::EmptyPayload).kind(), "invalid_input");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hsm(e) => e.kind(),
            Self::Tezos(e) => e.kind(),
            Self::PolicyRefused { .. } => "watermark_not_allowed",
            Self::VerifyAfterSignFailed { .. } => "verify_failed",
        }
    }
}

/// A Tezos key whose private half lives in an HSM. Cheap to clone; `Send + Sync`.
///
/// ```no_run
/// use cryptoki_ops::{Curve, EcKeySpec, Hsm, HsmConfig};
/// use tezos_keys::HsmKey;
///
/// let hsm = Hsm::open(&HsmConfig::from_env()?)?;
/// hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker"))?;
/// let key = HsmKey::open(&hsm, &"baker".parse()?)?;
/// println!("{} {}", key.address(), key.public_key());
/// let signature = key.sign(&[0x03, 0x12, 0x34])?; // a generic operation
/// println!("{signature}"); // spsig1...
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HsmKey {
    key: SigningKey,
    public_key: PublicKey,
    address: PublicKeyHash,
    /// The public key parsed once for verify-after-sign.
    verifier: Verifier,
    verify_after_sign: bool,
}

impl fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmKey")
            .field("address", &self.address.to_string())
            .field("key", &self.key)
            .field("verify_after_sign", &self.verify_after_sign)
            .finish()
    }
}

/// The Tezos curve of a PKCS#11 curve.
pub fn tezos_curve(curve: cryptoki_ops::Curve) -> Curve {
    match curve {
        cryptoki_ops::Curve::Secp256k1 => Curve::Secp256k1,
        cryptoki_ops::Curve::P256 => Curve::P256,
        cryptoki_ops::Curve::Ed25519 => Curve::Ed25519,
    }
}

/// The Tezos public key of a public key read from a token.
pub fn tezos_public_key(public_key: &cryptoki_ops::PublicKey) -> crate::Result<PublicKey> {
    PublicKey::from_bytes(tezos_curve(public_key.curve()), &public_key.compressed())
}

impl HsmKey {
    /// Wraps an HSM signing key; verification after signing is on.
    pub fn new(key: SigningKey) -> Result<Self, SignError> {
        let public_key = tezos_public_key(key.public_key())?;
        Ok(Self {
            address: public_key.hash(),
            verifier: Verifier::new(&public_key)?,
            public_key,
            key,
            verify_after_sign: true,
        })
    }

    /// The key `selector` names on `hsm`.
    pub fn open(hsm: &Hsm, selector: &KeySelector) -> Result<Self, SignError> {
        Self::new(hsm.signing_key(selector)?)
    }

    /// Turns verification after signing on (the default) or off. Off saves a software verify
    /// per signature (libsecp256k1 and OpenSSL through [`crate::Verifier`], with the key parsed
    /// once: about 30 µs for secp256k1 and 45 µs for P-256 on the benchmark machine; see
    /// BENCHMARKS.md) at the price of returning a signature nobody checked. On CloudHSM a
    /// signature is a network round trip of milliseconds, so keep it on unless the client's CPU
    /// is the bottleneck (beyond roughly 20,000 P-256 signatures per second per core).
    pub fn with_verify_after_sign(mut self, on: bool) -> Self {
        self.verify_after_sign = on;
        self
    }

    /// The Tezos public key (`sppk`/`p2pk`/`edpk`).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The address (`tz2`/`tz3`/`tz1`).
    pub fn address(&self) -> &PublicKeyHash {
        &self.address
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.public_key.curve()
    }

    /// The underlying HSM key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a Tezos payload (watermark byte included), after checking it is well formed. Any
    /// watermark is signed: restrict a key with [`HsmKey::sign_allowed`], and put consensus
    /// signing behind the double-signing guard ([`crate::HighWatermark::sign_keypair`]).
    pub fn sign(&self, payload: &[u8]) -> Result<Signature, SignError> {
        self.sign_checked(payload, None)
            .map(|(signature, _)| signature)
    }

    /// Signs a payload only if `policy` allows its watermark (the same [`KeyPolicy`] the
    /// double-signing guard takes), and returns what the payload is (kind, chain, level, round)
    /// with the signature.
    ///
    /// **No double-signing protection:** `HsmKey` records nothing. Blocks, preattestations and
    /// attestations must go through [`HighWatermark`](crate::high_watermark::HighWatermark)
    /// (`sign_keypair`), which refuses a second signature at one level and round; a policy
    /// here only says which kinds of payload the key may sign at all.
    ///
    /// # Errors
    /// [`SignError::PolicyRefused`] before the HSM is asked; otherwise as [`HsmKey::sign`].
    pub fn sign_allowed(
        &self,
        payload: &[u8],
        policy: &KeyPolicy,
    ) -> Result<(Signature, PayloadInfo), SignError> {
        self.sign_checked(payload, Some(policy))
    }

    fn sign_checked(
        &self,
        payload: &[u8],
        policy: Option<&KeyPolicy>,
    ) -> Result<(Signature, PayloadInfo), SignError> {
        let info = payload::classify(payload)?;
        if let Some(policy) = policy.filter(|p| !p.allows(info.watermark)) {
            return Err(SignError::PolicyRefused {
                key: self.address,
                watermark: info.watermark,
                allowed: policy.allowed.clone(),
            });
        }
        let signature = self.sign_digest(&payload::digest(payload))?;
        Ok((signature, info))
    }

    /// Signs a BLAKE2b-256 digest of a payload the caller has already checked and hashed.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature, SignError> {
        let raw = self.key.sign(digest)?;
        let signature = Signature::new(self.curve(), raw);
        let signature = match self.curve() {
            Curve::Ed25519 => signature,
            Curve::Secp256k1 | Curve::P256 => signature.normalize_s()?,
        };
        if self.verify_after_sign {
            self.verifier
                .verify_digest(digest, &signature)
                .map_err(|e| SignError::VerifyAfterSignFailed {
                    key: self.address.to_string(),
                    reason: e.to_string(),
                })?;
        }
        Ok(signature)
    }
}

impl signature::Keypair for HsmKey {
    type VerifyingKey = PublicKey;

    fn verifying_key(&self) -> PublicKey {
        self.public_key
    }
}

/// Signs a Tezos payload (`msg` = watermark ‖ bytes), like [`HsmKey::sign`].
impl signature::Signer<Signature> for HsmKey {
    fn try_sign(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        self.sign(msg).map_err(signature::Error::from_source)
    }
}

/// Signs a 32-byte prehash with a secp256k1 key; the result is low-S, as `k256` requires.
impl signature::hazmat::PrehashSigner<k256::ecdsa::Signature> for HsmKey {
    fn sign_prehash(&self, prehash: &[u8]) -> Result<k256::ecdsa::Signature, signature::Error> {
        let signature = self.sign_prehash_for(Curve::Secp256k1, prehash)?;
        k256::ecdsa::Signature::from_slice(signature.as_bytes())
    }
}

/// Signs a 32-byte prehash with a P-256 key (low-S).
impl signature::hazmat::PrehashSigner<p256::ecdsa::Signature> for HsmKey {
    fn sign_prehash(&self, prehash: &[u8]) -> Result<p256::ecdsa::Signature, signature::Error> {
        let signature = self.sign_prehash_for(Curve::P256, prehash)?;
        p256::ecdsa::Signature::from_slice(signature.as_bytes())
    }
}

impl HsmKey {
    fn sign_prehash_for(
        &self,
        curve: Curve,
        prehash: &[u8],
    ) -> Result<Signature, signature::Error> {
        if self.curve() != curve {
            return Err(signature::Error::from_source(crate::Error::CurveMismatch {
                what: "the requested signature type",
                actual: curve,
                expected: self.curve(),
            }));
        }
        let digest = <[u8; 32]>::try_from(prehash).map_err(|_| signature::Error::new())?;
        self.sign_digest(&digest)
            .map_err(signature::Error::from_source)
    }
}
