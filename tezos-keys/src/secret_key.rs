//! Software secret keys (`edsk`, `spsk`, `p2sk`): for tests, and for an
//! opt-in hot-wallet export. HSM keys never pass through here.

use core::fmt;

use ed25519_dalek::Signer as _;
use k256::ecdsa::signature::hazmat::PrehashSigner as _;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::base58::{self, Prefix};
use crate::error::{Error, Result};
use crate::payload::digest;
use crate::{Curve, PublicKey, Signature};

/// A secret key held in memory that is zeroed on drop.
///
/// The bytes are the Ed25519 32-byte seed, or the 32-byte big-endian ECDSA
/// secret scalar. `Debug` prints only the curve; the base58 form is returned
/// as a [`SecretString`]; parse errors never repeat the input.
///
/// ```
/// use secrecy::ExposeSecret;
/// use tezos_keys::{verify, SecretKey};
/// // Taquito test key (tezos.md §9) — TEST KEY ONLY.
/// let sk = SecretKey::from_base58("p2sk2obfVMEuPUnadAConLWk7Tf4Dt3n4svSgJwrgpamRqJXvaYcg1")?;
/// assert_eq!(sk.public_key().hash().to_string(), "tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At");
/// assert!(!format!("{sk:?}").contains("p2sk2"));
/// assert_eq!(sk.to_base58().expose_secret(), "p2sk2obfVMEuPUnadAConLWk7Tf4Dt3n4svSgJwrgpamRqJXvaYcg1");
/// let sig = sk.sign(&[0x03, 0x12, 0x34])?;
/// assert!(sig.is_low_s()?);
/// verify(&sk.public_key(), &[0x03, 0x12, 0x34], &sig)?;
/// # Ok::<(), tezos_keys::Error>(())
/// ```
pub struct SecretKey {
    curve: Curve,
    bytes: Zeroizing<[u8; 32]>,
}

impl SecretKey {
    /// Build from 32 raw bytes: an Ed25519 seed or an ECDSA scalar, which
    /// must be in `1..n`.
    ///
    /// # Errors
    /// [`Error::InvalidSecretKey`] (the message never includes the bytes).
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self> {
        let mut raw = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(Error::InvalidSecretKey {
                curve,
                reason: "must be 32 bytes",
            });
        }
        for (o, b) in raw.iter_mut().zip(bytes) {
            *o = *b;
        }
        let key = Self { curve, bytes: raw };
        key.check()?;
        Ok(key)
    }

    fn check(&self) -> Result<()> {
        let bad = Error::InvalidSecretKey {
            curve: self.curve,
            reason: "the scalar must be between 1 and the curve order n - 1",
        };
        match self.curve {
            Curve::Ed25519 => Ok(()),
            Curve::Secp256k1 => k256::ecdsa::SigningKey::from_slice(self.bytes.as_slice())
                .map(|_| ())
                .map_err(|_| bad),
            Curve::P256 => p256::ecdsa::SigningKey::from_slice(self.bytes.as_slice())
                .map(|_| ())
                .map_err(|_| bad),
        }
    }

    /// Parse `edsk…` (32-byte seed or 64-byte seed ‖ public key), `spsk…` or
    /// `p2sk…`. Encrypted forms (`edesk`, `spesk`, `p2esk`) are not read.
    ///
    /// # Errors
    /// A base58 [`Error`] that names only the kind found, or
    /// [`Error::InvalidSecretKey`]; for a 64-byte `edsk` whose public half
    /// does not match its seed, too.
    pub fn from_base58(text: &str) -> Result<Self> {
        let (prefix, bytes) = base58::decode(
            text.trim(),
            &[
                Prefix::EdskSeed,
                Prefix::EdskKeypair,
                Prefix::Spsk,
                Prefix::P2sk,
            ],
        )?;
        let curve = match prefix {
            Prefix::EdskSeed | Prefix::EdskKeypair => Curve::Ed25519,
            Prefix::Spsk => Curve::Secp256k1,
            _ => Curve::P256,
        };
        let seed = bytes.get(..32).unwrap_or_default();
        let key = Self::from_bytes(curve, seed)?;
        if prefix == Prefix::EdskKeypair && bytes.get(32..) != Some(key.public_key().as_bytes()) {
            return Err(Error::InvalidSecretKey {
                curve,
                reason: "the public half of this 64-byte edsk does not match its seed",
            });
        }
        Ok(key)
    }

    /// The curve.
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The raw secret bytes. Handle with care.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The text form `edsk…` (32-byte seed form), `spsk…` or `p2sk…`.
    pub fn to_base58(&self) -> SecretString {
        let prefix = match self.curve {
            Curve::Ed25519 => Prefix::EdskSeed,
            Curve::Secp256k1 => Prefix::Spsk,
            Curve::P256 => Prefix::P2sk,
        };
        SecretString::from(base58::encode(prefix, self.bytes.as_slice()).unwrap_or_default())
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        // Construction validated the scalar, so the ECDSA branches always
        // produce a 33-byte compressed point; the fallbacks only avoid a panic.
        let bytes: Vec<u8> = match self.curve {
            Curve::Ed25519 => ed25519_dalek::SigningKey::from_bytes(&self.bytes)
                .verifying_key()
                .to_bytes()
                .to_vec(),
            Curve::Secp256k1 => k256::ecdsa::SigningKey::from_slice(self.bytes.as_slice())
                .map(|k| k.verifying_key().to_sec1_point(true).as_bytes().to_vec())
                .unwrap_or_default(),
            Curve::P256 => p256::ecdsa::SigningKey::from_slice(self.bytes.as_slice())
                .map(|k| k.verifying_key().to_sec1_point(true).as_bytes().to_vec())
                .unwrap_or_default(),
        };
        PublicKey::from_trusted(self.curve, &bytes)
    }

    /// Sign `message` (watermark included): BLAKE2b-256, then
    /// [`SecretKey::sign_digest`].
    ///
    /// # Errors
    /// As [`SecretKey::sign_digest`].
    pub fn sign(&self, message: &[u8]) -> Result<Signature> {
        self.sign_digest(&digest(message))
    }

    /// Sign a 32-byte digest: Ed25519 PureEdDSA over the digest, or
    /// deterministic (RFC 6979) ECDSA over the digest without further hashing.
    /// ECDSA signatures are returned low-S normalised on both curves (see
    /// [`Signature`]).
    ///
    /// # Errors
    /// [`Error::InvalidSecretKey`] if the underlying library refuses the key.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature> {
        let refused = |_| Error::InvalidSecretKey {
            curve: self.curve,
            reason: "the signing library refused this key",
        };
        let sig = match self.curve {
            Curve::Ed25519 => {
                let key = ed25519_dalek::SigningKey::from_bytes(&self.bytes);
                Signature::new(self.curve, key.sign(digest).to_bytes())
            }
            Curve::Secp256k1 => {
                let key =
                    k256::ecdsa::SigningKey::from_slice(self.bytes.as_slice()).map_err(refused)?;
                let sig: k256::ecdsa::Signature = key.sign_prehash(digest).map_err(refused)?;
                Signature::from_slice(self.curve, &sig.to_bytes())?
            }
            Curve::P256 => {
                let key =
                    p256::ecdsa::SigningKey::from_slice(self.bytes.as_slice()).map_err(refused)?;
                let sig: p256::ecdsa::Signature = key.sign_prehash(digest).map_err(refused)?;
                Signature::from_slice(self.curve, &sig.to_bytes())?
            }
        };
        sig.normalize_s()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("curve", &self.curve)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

/// Signs a Tezos payload (watermark included), like [`SecretKey::sign`]; lets a software key
/// stand in for an HSM key, e.g. behind [`crate::high_watermark::HighWatermark`] in tests.
impl signature::Signer<Signature> for SecretKey {
    fn try_sign(&self, msg: &[u8]) -> core::result::Result<Signature, signature::Error> {
        self.sign(msg).map_err(signature::Error::from_source)
    }
}

/// The Tezos [`PublicKey`] as verifying key, as for [`crate::HsmKey`].
impl signature::Keypair for SecretKey {
    type VerifyingKey = PublicKey;

    fn verifying_key(&self) -> PublicKey {
        self.public_key()
    }
}
