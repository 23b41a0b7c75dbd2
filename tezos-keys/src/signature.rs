//! Signatures: raw 64 bytes, low-S normalisation, `edsig`/`spsig1`/`p2sig`/`sig`.

use core::fmt;
use core::str::FromStr;

use crate::base58::{self, Prefix};
use crate::error::{Error, Result};
use crate::Curve;

/// A Tezos signature: the curve and 64 raw bytes (tezos.md §3 and §4).
///
/// For the ECDSA curves the bytes are `r ‖ s`, each big-endian and
/// left-padded to 32 bytes; for Ed25519 they are the usual `R ‖ S`. Tezos
/// forges signatures without a curve tag, so the curve comes from the key.
///
/// # Low-S
///
/// ECDSA signatures come in pairs `(r, s)` and `(r, n − s)` that both
/// verify. [`Signature::normalize_s`] picks the one with `s ≤ n/2`:
///
/// - **secp256k1 (tz2)**: required. The Octez node verifies with
///   libsecp256k1 (`Sign.verify_exn` in `src/lib_crypto/secp256k1.ml`), which
///   accepts lower-S only (`bitcoin-core/secp256k1:include/secp256k1.h`);
///   `tezos_crypto_rs` rejects it as well (Octez `sdk/rust/crypto/src/hash.rs`,
///   test `test_secp256k1_high_s_signature_rejected`). HSMs and KMSs return
///   high-S about half of the time (Signatory issue #364), so a signer must
///   normalise.
/// - **P-256 (tz3)**: optional. Octez accepts high-S (HACL* `P256.verify`,
///   `src/lib_hacl/hacl.ml`) and emits it itself. We normalise anyway when
///   signing: it is harmless and removes the self-inflicted form of
///   signature malleability (a malleated tz3 block signature could once be
///   used as double-baking evidence, fixed in protocol 025; tezos.md §6).
///   Taquito and Polychain's `tezos-hsm-signer` do the same.
///
/// ```
/// use tezos_keys::{Curve, Signature};
/// // tezos_crypto_rs test vector (Octez `sdk/rust/crypto/src/hash.rs`, tezos.md §9).
/// let text = "spsig1QLf7cczTbt4UHFGQKUrB2pS3ZTu9wdXR29zKxVPQkhBaiLez6hRcM142ms7HagQa3vuPstvMtYq44y4x4RPcrLu76ZuQ7";
/// let sig: Signature = text.parse()?;
/// assert_eq!(sig.curve(), Curve::Secp256k1);
/// assert!(sig.is_low_s()?);
/// assert_eq!(sig.to_string(), text);
/// let generic = sig.to_generic_base58();
/// assert!(generic.starts_with("sig"));
/// assert_eq!(Signature::from_base58_for(&generic, Curve::Secp256k1)?, sig);
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    curve: Curve,
    bytes: [u8; 64],
}

/// Length of a raw Tezos signature.
pub const SIGNATURE_LEN: usize = 64;

const fn sig_prefix(curve: Curve) -> Prefix {
    match curve {
        Curve::Ed25519 => Prefix::Edsig,
        Curve::Secp256k1 => Prefix::Spsig1,
        Curve::P256 => Prefix::P2sig,
    }
}

impl Signature {
    /// Wrap 64 raw bytes. No check is made here; [`crate::verify()`] checks.
    pub const fn new(curve: Curve, bytes: [u8; 64]) -> Self {
        Self { curve, bytes }
    }

    /// Wrap a 64-byte slice.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for any other length.
    pub fn from_slice(curve: Curve, bytes: &[u8]) -> Result<Self> {
        let bytes = <[u8; 64]>::try_from(bytes).map_err(|_| Error::InvalidLength {
            what: "a raw signature (r ‖ s or R ‖ S)",
            expected: SIGNATURE_LEN.to_string(),
            actual: bytes.len(),
        })?;
        Ok(Self { curve, bytes })
    }

    /// Convert an ASN.1 DER ECDSA signature (`SEQUENCE { INTEGER r, INTEGER s }`,
    /// as returned by some KMSs and by `CKM_ECDSA` on a few modules) into the
    /// raw form. The result is **not** normalised; call
    /// [`Signature::normalize_s`].
    ///
    /// DER is decoded by RustCrypto's `ecdsa` crate, the one DER signature parser of this
    /// workspace (`cryptoki_ops::to_raw_signature` uses it too): minimal encodings only, no
    /// trailing bytes.
    ///
    /// # Errors
    /// [`Error::MalformedSignature`] if the DER is not well formed or `r`/`s`
    /// are not in `1..n`, or if `curve` is Ed25519.
    pub fn from_der(curve: Curve, der: &[u8]) -> Result<Self> {
        let raw = match curve {
            Curve::Ed25519 => {
                return Err(Error::MalformedSignature {
                    curve,
                    reason: "Ed25519 signatures have no DER form; pass the 64 raw bytes \
                             to Signature::from_slice",
                })
            }
            Curve::Secp256k1 => k256::ecdsa::Signature::from_der(der).map(|s| s.to_bytes()),
            Curve::P256 => p256::ecdsa::Signature::from_der(der).map(|s| s.to_bytes()),
        };
        raw.map_err(|_| Error::MalformedSignature {
            curve,
            reason: "not a DER ECDSA-Sig-Value (SEQUENCE of two minimally encoded INTEGERs, \
                     r and s between 1 and the curve order n - 1, nothing after it)",
        })
        .and_then(|raw| Self::from_slice(curve, &raw))
    }

    /// The curve.
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The 64 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }

    /// Return the low-S form (`s := n − s` when `s > n/2`) for the ECDSA
    /// curves; Ed25519 signatures are returned unchanged. See the type-level
    /// docs for why we normalise both curves.
    ///
    /// # Errors
    /// [`Error::MalformedSignature`] if `r` or `s` is zero or not below `n`.
    pub fn normalize_s(&self) -> Result<Self> {
        let normalised = match self.curve {
            Curve::Ed25519 => return Ok(*self),
            Curve::Secp256k1 => k256::ecdsa::Signature::from_slice(&self.bytes)
                .map(|s| s.normalize_s().to_bytes().to_vec()),
            Curve::P256 => p256::ecdsa::Signature::from_slice(&self.bytes)
                .map(|s| s.normalize_s().to_bytes().to_vec()),
        }
        .map_err(|_| self.scalar_error())?;
        Self::from_slice(self.curve, &normalised)
    }

    /// Whether `s ≤ n/2` (always true for Ed25519).
    ///
    /// # Errors
    /// As [`Signature::normalize_s`].
    pub fn is_low_s(&self) -> Result<bool> {
        Ok(self.normalize_s()? == *self)
    }

    fn scalar_error(&self) -> Error {
        Error::MalformedSignature {
            curve: self.curve,
            reason: "r and s must both be between 1 and the curve order n - 1",
        }
    }

    /// The curve-specific text form: `edsig…`, `spsig1…` or `p2sig…`.
    pub fn to_base58(&self) -> String {
        base58::encode(sig_prefix(self.curve), &self.bytes)
            .unwrap_or_else(|_| hex::encode(self.bytes))
    }

    /// The generic text form `sig…` (the curve is not recorded).
    pub fn to_generic_base58(&self) -> String {
        base58::encode(Prefix::Sig, &self.bytes).unwrap_or_else(|_| hex::encode(self.bytes))
    }

    /// Parse a signature for a key on `curve`: accepts that curve's own form
    /// (`edsig`/`spsig1`/`p2sig`) or the generic `sig…` form.
    ///
    /// # Errors
    /// A base58 [`Error`]; [`Error::WrongPrefix`] for another curve's form.
    pub fn from_base58_for(text: &str, curve: Curve) -> Result<Self> {
        let (_, bytes) = base58::decode(text, &[sig_prefix(curve), Prefix::Sig])?;
        Self::from_slice(curve, &bytes)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base58())
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl FromStr for Signature {
    type Err = Error;

    /// Parse `edsig…`, `spsig1…` or `p2sig…`. A generic `sig…` gives
    /// [`Error::GenericSignatureNeedsCurve`]: use
    /// [`Signature::from_base58_for`] with the key's curve.
    fn from_str(s: &str) -> Result<Self> {
        let (prefix, bytes) = base58::decode(
            s,
            &[Prefix::Edsig, Prefix::Spsig1, Prefix::P2sig, Prefix::Sig],
        )?;
        let curve = match prefix {
            Prefix::Edsig => Curve::Ed25519,
            Prefix::Spsig1 => Curve::Secp256k1,
            Prefix::P2sig => Curve::P256,
            _ => return Err(Error::GenericSignatureNeedsCurve),
        };
        Self::from_slice(curve, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_round_trip_small_values() {
        // r = 1, s = 0x80 (needs a leading zero in DER).
        let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
        let sig = Signature::from_der(Curve::P256, &der).expect("valid DER");
        assert_eq!(sig.as_bytes()[31], 1);
        assert_eq!(sig.as_bytes()[63], 0x80);
        assert!(sig.as_bytes()[..31].iter().all(|&b| b == 0));
    }

    #[test]
    fn der_rejects_malformed() {
        for der in [
            &[][..],
            &[0x30, 0x00],
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00], // s = 0
            &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01], // negative r
            &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01], // non-minimal
            &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00], // trailing
        ] {
            assert!(
                Signature::from_der(Curve::Secp256k1, der).is_err(),
                "{der:02x?}"
            );
        }
    }
}
