//! Curves, their PKCS#11 parameters, and public keys read from a token.

use std::fmt;
use std::str::FromStr;

use cryptoki::object::KeyType;

use crate::error::{Error, Result};

/// DER OID of secp256k1 (1.3.132.0.10), the `CKA_EC_PARAMS` of tz2 keys.
const SECP256K1_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER OID of P-256 / prime256v1 / secp256r1 (1.2.840.10045.3.1.7), tz3 keys.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER OID of Ed25519 (1.3.101.112, RFC 8410), tz1 keys.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// PKCS#11 3.0 also allows the curve name as a PrintableString.
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// A curve this crate can generate keys on and sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// secp256k1 (Tezos tz2), signed with CKM_ECDSA.
    Secp256k1,
    /// NIST P-256 (Tezos tz3), signed with CKM_ECDSA.
    P256,
    /// Ed25519 (Tezos tz1), signed with CKM_EDDSA, where the token supports it.
    Ed25519,
}

impl Curve {
    /// All supported curves.
    pub const ALL: [Self; 3] = [Self::Secp256k1, Self::P256, Self::Ed25519];

    /// The `CKA_EC_PARAMS` value: the curve's DER-encoded OID.
    pub fn ec_params(self) -> &'static [u8] {
        match self {
            Self::Secp256k1 => SECP256K1_OID,
            Self::P256 => P256_OID,
            Self::Ed25519 => ED25519_OID,
        }
    }

    /// The curve named by a `CKA_EC_PARAMS` value.
    ///
    /// ```
    /// use cryptoki_ops::Curve;
    /// assert_eq!(Curve::from_ec_params(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a])?, Curve::Secp256k1);
    /// assert!(Curve::from_ec_params(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]).is_err()); // P-384
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn from_ec_params(params: &[u8]) -> Result<Self> {
        match params {
            SECP256K1_OID => Ok(Self::Secp256k1),
            P256_OID => Ok(Self::P256),
            ED25519_OID | ED25519_NAME => Ok(Self::Ed25519),
            other => Err(Error::UnsupportedCurve {
                what: format!("CKA_EC_PARAMS {}", hex::encode(other)),
            }),
        }
    }

    /// The PKCS#11 key type of keys on this curve.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::Secp256k1 | Self::P256 => KeyType::EC,
            Self::Ed25519 => KeyType::EC_EDWARDS,
        }
    }

    /// Stable lower-case name: `secp256k1`, `p256`, `ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::P256 => "p256",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Curve {
    type Err = Error;

    /// Accepts the usual names: `secp256k1`; `p256`, `p-256`, `prime256v1`, `secp256r1`;
    /// `ed25519`, `edwards25519`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "secp256k1" | "tz2" => Ok(Self::Secp256k1),
            "p256" | "p-256" | "prime256v1" | "secp256r1" | "tz3" => Ok(Self::P256),
            "ed25519" | "edwards25519" | "tz1" => Ok(Self::Ed25519),
            _ => Err(Error::UnsupportedCurve {
                what: format!("'{s}'"),
            }),
        }
    }
}

/// A public key read from a token, checked to be a valid point of its curve.
///
/// Holds the SEC1 uncompressed point for secp256k1 and P-256, and the 32-byte key for Ed25519.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    curve: Curve,
    /// Uncompressed SEC1 (65 bytes) for ECDSA curves; 32 bytes for Ed25519.
    point: Vec<u8>,
}

impl PublicKey {
    /// Parses a `CKA_EC_POINT` value, DER OCTET STRING-wrapped (as PKCS#11 specifies) or raw (as
    /// some modules return it), compressed or uncompressed, and checks the point is on the curve.
    ///
    /// ```
    /// use cryptoki_ops::{Curve, PublicKey};
    /// // The secp256k1 generator, compressed, DER-wrapped as SoftHSM2 would return it.
    /// let g = hex::decode("04210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap();
    /// let pk = PublicKey::from_ec_point(Curve::Secp256k1, &g)?;
    /// assert_eq!(pk.compressed().len(), 33);
    /// assert_eq!(pk.uncompressed().len(), 65);
    /// // The same X on P-256 is not a point of that curve with this parity, or has another Y:
    /// assert!(PublicKey::from_ec_point(Curve::Secp256k1, &[0x04, 0x01, 0x05]).is_err());
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn from_ec_point(curve: Curve, ec_point: &[u8]) -> Result<Self> {
        let raw = unwrap_octet_string(curve, ec_point).unwrap_or(ec_point);
        Self::from_sec1(curve, raw)
    }

    /// Parses SEC1 bytes (compressed or uncompressed; 32 raw bytes for Ed25519).
    pub fn from_sec1(curve: Curve, bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidPublicKey {
            key: format!("on {curve}"),
            reason,
        };
        let point = match curve {
            Curve::Secp256k1 => {
                use k256::elliptic_curve::sec1::ToSec1Point;
                k256::PublicKey::from_sec1_bytes(bytes)
                    .map_err(|_| {
                        invalid(format!("{} bytes are not a secp256k1 point", bytes.len()))
                    })?
                    .to_sec1_point(false)
                    .as_bytes()
                    .to_vec()
            }
            Curve::P256 => {
                use p256::elliptic_curve::sec1::ToSec1Point;
                p256::PublicKey::from_sec1_bytes(bytes)
                    .map_err(|_| invalid(format!("{} bytes are not a P-256 point", bytes.len())))?
                    .to_sec1_point(false)
                    .as_bytes()
                    .to_vec()
            }
            Curve::Ed25519 => {
                if bytes.len() != 32 {
                    return Err(invalid(format!(
                        "an Ed25519 key is 32 bytes, got {}",
                        bytes.len()
                    )));
                }
                bytes.to_vec()
            }
        };
        Ok(Self { curve, point })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// SEC1 compressed point (33 bytes), or the 32-byte key for Ed25519. This is what Tezos
    /// hashes into an address.
    pub fn compressed(&self) -> Vec<u8> {
        match self.curve {
            Curve::Ed25519 => self.point.clone(),
            _ => {
                let mut out = Vec::with_capacity(33);
                let y_odd = self.point.last().is_some_and(|b| b & 1 == 1);
                out.push(if y_odd { 0x03 } else { 0x02 });
                out.extend_from_slice(self.point.get(1..33).unwrap_or_default());
                out
            }
        }
    }

    /// SEC1 uncompressed point (65 bytes), or the 32-byte key for Ed25519.
    pub fn uncompressed(&self) -> &[u8] {
        &self.point
    }

    /// The `CKA_EC_POINT` value to store on a token: a DER OCTET STRING around the uncompressed
    /// point (around the 32-byte key for Ed25519).
    pub fn to_ec_point(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.point.len() + 2);
        out.push(0x04);
        out.push(self.point.len() as u8); // 65 or 32: short-form length
        out.extend_from_slice(&self.point);
        out
    }
}

/// If `bytes` is a DER OCTET STRING whose content has a plausible point length for the curve,
/// returns the content. A raw uncompressed point also starts with 0x04, so the length decides.
fn unwrap_octet_string(curve: Curve, bytes: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = bytes.split_first()?;
    let (&len, content) = rest.split_first()?;
    let plausible = match curve {
        Curve::Ed25519 => len == 32,
        _ => len == 33 || len == 65,
    };
    (tag == 0x04 && plausible && content.len() == usize::from(len)).then_some(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G_UNCOMPRESSED: &str = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";

    #[test]
    fn raw_and_wrapped_points_agree() {
        let raw = hex::decode(G_UNCOMPRESSED).unwrap();
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&raw);
        let a = PublicKey::from_ec_point(Curve::Secp256k1, &raw).unwrap();
        let b = PublicKey::from_ec_point(Curve::Secp256k1, &wrapped).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_ec_point(), wrapped);
        assert_eq!(
            hex::encode(a.compressed()),
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
    }

    #[test]
    fn off_curve_point_is_refused() {
        let mut raw = hex::decode(G_UNCOMPRESSED).unwrap();
        raw[64] ^= 1;
        let err = PublicKey::from_ec_point(Curve::Secp256k1, &raw).unwrap_err();
        assert!(matches!(err, Error::InvalidPublicKey { .. }), "{err}");
        // The secp256k1 generator is not a P-256 point.
        assert!(
            PublicKey::from_ec_point(Curve::P256, &hex::decode(G_UNCOMPRESSED).unwrap()).is_err()
        );
    }

    #[test]
    fn curve_names_and_params_round_trip() {
        for curve in Curve::ALL {
            assert_eq!(Curve::from_ec_params(curve.ec_params()).unwrap(), curve);
            assert_eq!(curve.name().parse::<Curve>().unwrap(), curve);
        }
        assert!("p384".parse::<Curve>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_points_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            for curve in Curve::ALL {
                let _ = PublicKey::from_ec_point(curve, &bytes);
            }
        }
    }
}
