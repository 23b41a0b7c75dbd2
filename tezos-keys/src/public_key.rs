//! Public keys: `edpk`, `sppk`, `p2pk`, SEC1 and forged forms.

use core::fmt;
use core::str::FromStr;

use crate::base58::{self, Prefix};
use crate::error::{Error, Result};
use crate::hash::blake2b_160;
use crate::{Curve, PublicKeyHash};

/// A Tezos public key: the curve and the key in the form Tezos hashes and
/// encodes (32 bytes for Ed25519, 33-byte compressed SEC1 for the ECDSA
/// curves). Construction always checks that the key is a point on the curve.
///
/// ```
/// use tezos_keys::{Curve, PublicKey};
/// // Octez `src/lib_crypto/test/key_encoding_vectors.ml` (tezos.md §9).
/// let pk: PublicKey = "p2pk66Y3178eHvgWFA4CDsgGPhbkWtwrYCVUKJnsAi41eGP7MbHKv24".parse()?;
/// assert_eq!(pk.curve(), Curve::P256);
/// assert_eq!(pk.hash().to_string(), "tz3ZxowXGSjiVq227GQcwKdz87rKhq62rY4t");
/// let again = PublicKey::from_bytes(Curve::P256, pk.as_bytes())?;
/// assert_eq!(again, pk);
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    curve: Curve,
    /// Ed25519 uses the first 32 bytes; the last byte is then zero.
    bytes: [u8; 33],
}

const fn key_prefix(curve: Curve) -> Prefix {
    match curve {
        Curve::Ed25519 => Prefix::Edpk,
        Curve::Secp256k1 => Prefix::Sppk,
        Curve::P256 => Prefix::P2pk,
    }
}

impl PublicKey {
    /// Build a public key from raw bytes, checking it is on the curve.
    ///
    /// - Ed25519: the 32-byte encoded point.
    /// - secp256k1, P-256: SEC1, compressed (33 bytes, `02|03 ‖ X`) or
    ///   uncompressed (65 bytes, `04 ‖ X ‖ Y`); stored compressed.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for a wrong length,
    /// [`Error::InvalidPublicKey`] if the bytes are not a point on the curve.
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self> {
        let mut out = [0u8; 33];
        match curve {
            Curve::Ed25519 => {
                let raw = <[u8; 32]>::try_from(bytes).map_err(|_| Error::InvalidLength {
                    what: "an Ed25519 public key",
                    expected: "32".to_owned(),
                    actual: bytes.len(),
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(|_| {
                    Error::InvalidPublicKey {
                        curve,
                        reason: "the 32 bytes do not decode to a point on the curve",
                    }
                })?;
                for (o, b) in out.iter_mut().zip(raw) {
                    *o = b;
                }
            }
            Curve::Secp256k1 | Curve::P256 => {
                check_sec1_len(curve, bytes)?;
                let compressed = match curve {
                    Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                        .map(|k| k.to_sec1_point(true).as_bytes().to_vec()),
                    _ => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                        .map(|k| k.to_sec1_point(true).as_bytes().to_vec()),
                }
                .map_err(|_| Error::InvalidPublicKey {
                    curve,
                    reason: "the SEC1 bytes are not a point on the curve",
                })?;
                out = <[u8; 33]>::try_from(compressed.as_slice()).map_err(|_| {
                    Error::InvalidPublicKey {
                        curve,
                        reason:
                            "compression gave an unexpected length (internal error, please report)",
                    }
                })?;
            }
        }
        Ok(Self { curve, bytes: out })
    }

    /// Wrap bytes a curve library just produced (already on the curve).
    pub(crate) fn from_trusted(curve: Curve, key: &[u8]) -> Self {
        let mut bytes = [0u8; 33];
        for (o, b) in bytes.iter_mut().zip(key) {
            *o = *b;
        }
        Self { curve, bytes }
    }

    /// Build a public key from a PKCS#11 `CKA_EC_POINT` value: either a DER
    /// OCTET STRING wrapping SEC1 (`04 41 04‖X‖Y` or `04 21 02|03‖X`, the
    /// usual form) or bare SEC1 bytes (some modules). For Ed25519 the DER
    /// form is `04 20 ‖ 32 bytes`.
    ///
    /// # Errors
    /// As [`PublicKey::from_bytes`].
    pub fn from_ec_point(curve: Curve, bytes: &[u8]) -> Result<Self> {
        if let [0x04, len, inner @ ..] = bytes {
            let inner_ok = usize::from(*len) == inner.len()
                && match curve {
                    Curve::Ed25519 => inner.len() == 32,
                    _ => inner.len() == 33 || inner.len() == 65,
                };
            if inner_ok {
                return Self::from_bytes(curve, inner);
            }
        }
        Self::from_bytes(curve, bytes)
    }

    /// The curve.
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The key bytes Tezos uses: 32 (Ed25519) or 33 (compressed SEC1).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..self.curve.public_key_len())
            .unwrap_or(&self.bytes)
    }

    /// The uncompressed SEC1 form (`04 ‖ X ‖ Y`, 65 bytes) for the ECDSA
    /// curves; `None` for Ed25519.
    pub fn to_uncompressed(&self) -> Option<Vec<u8>> {
        match self.curve {
            Curve::Ed25519 => None,
            Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(self.as_bytes())
                .ok()
                .map(|k| k.to_sec1_point(false).as_bytes().to_vec()),
            Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(self.as_bytes())
                .ok()
                .map(|k| k.to_sec1_point(false).as_bytes().to_vec()),
        }
    }

    /// The address: BLAKE2b-160 of [`PublicKey::as_bytes`].
    pub fn hash(&self) -> PublicKeyHash {
        PublicKeyHash::new(self.curve, blake2b_160(self.as_bytes()))
    }

    /// The `edpk…`/`sppk…`/`p2pk…` text form.
    pub fn to_base58(&self) -> String {
        base58::encode(key_prefix(self.curve), self.as_bytes())
            .unwrap_or_else(|_| hex::encode(self.as_bytes()))
    }

    /// The forged (binary) form: curve tag ‖ key (33 or 34 bytes; Octez
    /// `signature_v1.ml`, tezos.md §3).
    pub fn to_forged(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.curve.public_key_len());
        out.push(self.curve.tag());
        out.extend_from_slice(self.as_bytes());
        out
    }

    /// Parse the forged form; the key must be the exact length for its tag
    /// and a point on the curve.
    ///
    /// # Errors
    /// [`Error::UnknownTag`], [`Error::InvalidLength`] or
    /// [`Error::InvalidPublicKey`].
    pub fn from_forged(bytes: &[u8]) -> Result<Self> {
        let Some((&tag, key)) = bytes.split_first() else {
            return Err(Error::InvalidLength {
                what: "a forged public key",
                expected: "33 (Ed25519) or 34 (secp256k1, P-256)".to_owned(),
                actual: 0,
            });
        };
        let curve = Curve::from_tag(tag).ok_or(Error::UnknownTag {
            what: "a forged public key",
            tag,
            hint: if tag == 3 {
                "; 0x03 is BLS, which is not supported"
            } else {
                ""
            },
        })?;
        if key.len() != curve.public_key_len() {
            return Err(Error::InvalidLength {
                what: "a forged public key",
                expected: (1 + curve.public_key_len()).to_string(),
                actual: bytes.len(),
            });
        }
        Self::from_bytes(curve, key)
    }

    /// Parse a public key, accepting only the given curves.
    ///
    /// # Errors
    /// Any base58 [`Error`] ([`Error::Unsupported`] for `BLpk`), or
    /// [`Error::InvalidPublicKey`] if the key is not on its curve.
    pub fn parse_for_curves(text: &str, curves: &[Curve]) -> Result<Self> {
        let expected: Vec<Prefix> = curves.iter().map(|&c| key_prefix(c)).collect();
        let (prefix, bytes) = base58::decode(text, &expected)?;
        let curve = match prefix {
            Prefix::Edpk => Curve::Ed25519,
            Prefix::Sppk => Curve::Secp256k1,
            _ => Curve::P256,
        };
        Self::from_bytes(curve, &bytes)
    }
}

fn check_sec1_len(curve: Curve, bytes: &[u8]) -> Result<()> {
    match (bytes.len(), bytes.first()) {
        (33, Some(0x02 | 0x03)) | (65, Some(0x04)) => Ok(()),
        (33 | 65, _) => Err(Error::InvalidPublicKey {
            curve,
            reason: "a SEC1 key starts with 02 or 03 (compressed, 33 bytes) \
                     or 04 (uncompressed, 65 bytes)",
        }),
        (actual, _) => Err(Error::InvalidLength {
            what: match curve {
                Curve::Secp256k1 => "a secp256k1 SEC1 public key",
                _ => "a P-256 SEC1 public key",
            },
            expected: "33 (02|03 ‖ X) or 65 (04 ‖ X ‖ Y)".to_owned(),
            actual,
        }),
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base58())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    /// Parse an `edpk`, `sppk` or `p2pk` public key.
    fn from_str(s: &str) -> Result<Self> {
        Self::parse_for_curves(s, &Curve::ALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_point_not_on_curve_is_rejected() {
        // y = 2 has no x on edwards25519 (found by trying small y values).
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert_eq!(
            PublicKey::from_bytes(Curve::Ed25519, &bytes),
            Err(Error::InvalidPublicKey {
                curve: Curve::Ed25519,
                reason: "the 32 bytes do not decode to a point on the curve",
            })
        );
        bytes[0] = 3; // y = 3 is on the curve
        assert!(PublicKey::from_bytes(Curve::Ed25519, &bytes).is_ok());
    }

    #[test]
    fn ec_point_der_wrapping_is_unwrapped() {
        // Octez key_encoding_vectors.ml secp256k1 key (tezos.md §9).
        let compressed =
            hex::decode("027d4fb1bd6eb3ee2a2e65fe4dd2fbc987a38a391ec23fbfbc878e95b2c8386003")
                .expect("hex");
        let pk = PublicKey::from_bytes(Curve::Secp256k1, &compressed).expect("valid");
        let uncompressed = pk.to_uncompressed().expect("ECDSA");
        let mut der = vec![0x04, 0x41];
        der.extend_from_slice(&uncompressed);
        assert_eq!(PublicKey::from_ec_point(Curve::Secp256k1, &der), Ok(pk));
        assert_eq!(
            PublicKey::from_ec_point(Curve::Secp256k1, &uncompressed),
            Ok(pk)
        );
        let mut der = vec![0x04, 0x21];
        der.extend_from_slice(&compressed);
        assert_eq!(PublicKey::from_ec_point(Curve::Secp256k1, &der), Ok(pk));
    }

    #[test]
    fn sec1_errors_are_specific() {
        let mut bad = [0x05u8; 33];
        bad[1] = 1;
        assert!(matches!(
            PublicKey::from_bytes(Curve::P256, &bad),
            Err(Error::InvalidPublicKey { .. })
        ));
        assert!(matches!(
            PublicKey::from_bytes(Curve::P256, &[2; 32]),
            Err(Error::InvalidLength { actual: 32, .. })
        ));
        assert!(matches!(
            PublicKey::from_forged(&[3; 49]),
            Err(Error::UnknownTag { tag: 3, .. })
        ));
    }
}
