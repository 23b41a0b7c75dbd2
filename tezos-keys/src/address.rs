//! Public key hashes: `tz1`, `tz2`, `tz3` addresses.

use core::fmt;
use core::str::FromStr;

use crate::base58::{self, Prefix};
use crate::error::{Error, Result};
use crate::Curve;

/// A Tezos implicit account address: BLAKE2b-160 of the public key
/// (tezos.md §2), tagged with its curve.
///
/// ```
/// use tezos_keys::{Curve, PublicKeyHash};
/// // Octez `src/lib_crypto/test/key_encoding_vectors.ml` (tezos.md §9).
/// let pkh: PublicKeyHash = "tz2SSuN7FRcAurZPSAQS1swNWE8xxf71MTjt".parse()?;
/// assert_eq!(pkh.curve(), Curve::Secp256k1);
/// assert_eq!(hex::encode(pkh.as_bytes()), "c6e57bc37f3f1f36da594339e171ed31ce8b8530");
/// assert_eq!(PublicKeyHash::from_forged(&pkh.to_forged())?, pkh);
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKeyHash {
    curve: Curve,
    hash: [u8; 20],
}

/// Length of a forged public key hash: tag byte ‖ 20-byte hash.
pub const FORGED_PKH_LEN: usize = 21;

const fn address_prefix(curve: Curve) -> Prefix {
    match curve {
        Curve::Ed25519 => Prefix::Tz1,
        Curve::Secp256k1 => Prefix::Tz2,
        Curve::P256 => Prefix::Tz3,
    }
}

impl PublicKeyHash {
    /// Wrap a 20-byte hash for `curve`.
    pub const fn new(curve: Curve, hash: [u8; 20]) -> Self {
        Self { curve, hash }
    }

    /// The curve of the key this address belongs to.
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The 20-byte BLAKE2b-160 hash.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.hash
    }

    /// The `tz1…`/`tz2…`/`tz3…` text form.
    pub fn to_base58(&self) -> String {
        base58::encode(address_prefix(self.curve), &self.hash)
            .unwrap_or_else(|_| hex::encode(self.hash))
    }

    /// Parse an address, accepting only the given curves. Use this when the
    /// caller can only handle some curves (an HSM without Ed25519, say): the
    /// error then says "expected a tz2/tz3 address, got …".
    ///
    /// # Errors
    /// Any base58 [`Error`]; [`Error::Unsupported`] for `tz4` and `KT1`.
    pub fn parse_for_curves(text: &str, curves: &[Curve]) -> Result<Self> {
        let expected: Vec<Prefix> = curves.iter().map(|&c| address_prefix(c)).collect();
        let (prefix, bytes) = base58::decode(text, &expected)?;
        let curve = match prefix {
            Prefix::Tz1 => Curve::Ed25519,
            Prefix::Tz2 => Curve::Secp256k1,
            _ => Curve::P256,
        };
        let hash = <[u8; 20]>::try_from(bytes.as_slice()).map_err(|_| Error::WrongLength {
            prefix: prefix.text(),
            expected: 20,
            actual: bytes.len(),
        })?;
        Ok(Self { curve, hash })
    }

    /// The forged (binary) form: curve tag ‖ 20-byte hash (Octez
    /// `signature_v1.ml`; tezos.md §3).
    pub fn to_forged(&self) -> [u8; FORGED_PKH_LEN] {
        let mut out = [0u8; FORGED_PKH_LEN];
        out[0] = self.curve.tag();
        for (o, b) in out.iter_mut().skip(1).zip(self.hash) {
            *o = b;
        }
        out
    }

    /// Parse the forged form (exactly 21 bytes).
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for any other length, [`Error::UnknownTag`]
    /// for a tag other than 0, 1, 2 (tag 3 is BLS, not supported).
    pub fn from_forged(bytes: &[u8]) -> Result<Self> {
        let Some((&tag, rest)) = bytes.split_first() else {
            return Err(forged_len_error(0));
        };
        let hash = <[u8; 20]>::try_from(rest).map_err(|_| forged_len_error(bytes.len()))?;
        let curve = Curve::from_tag(tag).ok_or(Error::UnknownTag {
            what: "a forged public key hash",
            tag,
            hint: if tag == 3 {
                "; 0x03 is BLS (tz4), which is not supported"
            } else {
                ""
            },
        })?;
        Ok(Self { curve, hash })
    }
}

fn forged_len_error(actual: usize) -> Error {
    Error::InvalidLength {
        what: "a forged public key hash (tag + 20-byte hash)",
        expected: FORGED_PKH_LEN.to_string(),
        actual,
    }
}

impl fmt::Display for PublicKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl FromStr for PublicKeyHash {
    type Err = Error;

    /// Parse a `tz1`, `tz2` or `tz3` address.
    fn from_str(s: &str) -> Result<Self> {
        Self::parse_for_curves(s, &Curve::ALL)
    }
}
