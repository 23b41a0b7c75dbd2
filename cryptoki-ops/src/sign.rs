//! Signing with a key on the token: raw CKM_ECDSA over a digest, or CKM_EDDSA.

use std::fmt;

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;

use crate::curve::{Curve, PublicKey};
use crate::error::{Error, Result, RvError};
use crate::hsm::Hsm;
use crate::keys::{find_one, KeyClass, KeyPairInfo, KeySelector};
use crate::pool::{Fail, Retry};

/// A 64-byte signature: `r || s` (each 32 bytes, big-endian) for ECDSA, `R || S` for Ed25519.
pub type RawSignature = [u8; 64];

/// A private key on the token, ready to sign from any thread. Cheap to clone.
///
/// The key is looked up once per pooled session and its handle cached there, so a signature
/// costs one `C_SignInit` + `C_Sign` pair, not a search.
///
/// ```no_run
/// # let hsm: cryptoki_ops::Hsm = unimplemented!();
/// let key = hsm.signing_key(&"baker".parse()?)?;
/// let digest = [0x42u8; 32];
/// let signature = key.sign(&digest)?;
/// assert_eq!(signature.len(), 64);
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    hsm: Hsm,
    pair: KeyPairInfo,
    name: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("token", &self.hsm.token_label())
            .field("key", &self.name)
            .field("curve", &self.curve())
            .finish()
    }
}

impl Hsm {
    /// The signing key `selector` names, with its public key read and checked.
    pub fn signing_key(&self, selector: &KeySelector) -> Result<SigningKey> {
        let pair = self.key_pair(selector)?;
        if pair.private.id.is_empty() {
            return Err(Error::InvalidInput {
                what: "key",
                reason: format!(
                    "key {selector} has an empty CKA_ID; set one (e.g. pkcs11-tool --id) so its handle can be cached"
                ),
            });
        }
        Ok(SigningKey {
            hsm: self.clone(),
            name: format!("'{}' (id {})", pair.private.label, pair.private.id_hex()),
            pair,
        })
    }
}

impl SigningKey {
    /// The key's curve.
    pub fn curve(&self) -> Curve {
        self.pair.public_key.curve()
    }

    /// The key's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.pair.public_key
    }

    /// The private key's metadata and the public key.
    pub fn key_pair(&self) -> &KeyPairInfo {
        &self.pair
    }

    /// The token this key lives on.
    pub fn hsm(&self) -> &Hsm {
        &self.hsm
    }

    /// Opens the pool's sessions up to its size and looks this key up in each session that has
    /// not yet, so that no later signature pays for a search (on CloudHSM each search is a
    /// network round trip). Sessions other threads are using are left alone. Returns how many
    /// sessions it went through, each now with the key's handle cached. A signer calls it once
    /// per key at start-up.
    ///
    /// ```no_run
    /// # let key: cryptoki_ops::SigningKey = unimplemented!();
    /// let ready = key.warm_up()?;
    /// println!("{ready} sessions ready to sign");
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn warm_up(&self) -> Result<usize> {
        let pool = &self.hsm.inner;
        let id = &self.pair.private.id;
        let token = self.hsm.token_label();
        // Held until the end, so each checkout gets another session.
        let mut held = Vec::new();
        while let Some(mut guard) = pool.try_checkout()? {
            guard
                .session_mut()
                .cached_handle(id, |session| {
                    find_one(
                        session,
                        token,
                        KeyClass::Private,
                        &KeySelector::Id(id.clone()),
                    )
                })
                .map_err(|fail| pool.to_error(fail, Some(&self.name)))?;
            held.push(guard);
        }
        Ok(held.len())
    }

    /// Signs on the token. For secp256k1 and P-256, `data` is the 32-byte digest, signed with raw
    /// CKM_ECDSA (no hashing on the token), and the result is `r || s` as the token made it (not
    /// low-S normalised). For Ed25519, `data` is the message (PureEdDSA).
    ///
    /// A module that returns a DER signature is converted to `r || s`.
    pub fn sign(&self, data: &[u8]) -> Result<RawSignature> {
        let curve = self.curve();
        if curve != Curve::Ed25519 && data.len() != 32 {
            return Err(Error::InvalidInput {
                what: "digest",
                reason: format!(
                    "CKM_ECDSA signs a 32-byte digest, got {} bytes; hash the message first",
                    data.len()
                ),
            });
        }
        let id = &self.pair.private.id;
        let token = self.hsm.token_label();
        self.hsm
            .inner
            .run(Retry::Idempotent, Some(&self.name), |pooled| {
                let handle = pooled.cached_handle(id, |session| {
                    find_one(
                        session,
                        token,
                        KeyClass::Private,
                        &KeySelector::Id(id.clone()),
                    )
                })?;
                let mechanism = match curve {
                    Curve::Ed25519 => {
                        Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                    }
                    _ => Mechanism::Ecdsa,
                };
                let signature =
                    pooled
                        .session
                        .sign(&mechanism, handle, data)
                        .map_err(|e| {
                            match e {
                        cryptoki::error::Error::Pkcs11(RvError::KeyFunctionNotPermitted, _) => {
                            Fail::Final(Error::PolicyRefused {
                                token: token.to_string(),
                                operation: "sign with",
                                key: self.name.clone(),
                                reason:
                                    "the key's CKA_SIGN is false; use a key generated for signing",
                            })
                        }
                        e => Fail::Pkcs11("C_Sign", e),
                    }
                        })?;
                to_raw_signature(curve, &signature).map_err(Fail::Final)
            })
    }
}

/// `r || s` from what a module returned for a key on `curve`: 64 raw bytes, or, for ECDSA, an
/// ASN.1 DER `ECDSA-Sig-Value` (`SEQUENCE { INTEGER r, INTEGER s }`), which a few modules
/// return for `CKM_ECDSA`.
///
/// DER is decoded by RustCrypto's `ecdsa` crate (`k256`/`p256` `Signature::from_der`), the one
/// DER signature parser of this workspace (`tezos_keys::Signature::from_der` uses it too), and
/// strictly: minimal encodings, no trailing bytes, `r` and `s` in `1..n`.
///
/// ```
/// use cryptoki_ops::{to_raw_signature, Curve};
/// // SEQUENCE { INTEGER 1, INTEGER 0x80 (needs a leading zero in DER) }
/// let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
/// let raw = to_raw_signature(Curve::P256, &der)?;
/// assert_eq!(raw[31], 1);
/// assert_eq!(raw[63], 0x80);
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
pub fn to_raw_signature(curve: Curve, bytes: &[u8]) -> Result<RawSignature> {
    if let Ok(raw) = <[u8; 64]>::try_from(bytes) {
        return Ok(raw);
    }
    let der = match curve {
        Curve::Secp256k1 => k256::ecdsa::Signature::from_der(bytes).map(|s| s.to_bytes()),
        Curve::P256 => p256::ecdsa::Signature::from_der(bytes).map(|s| s.to_bytes()),
        Curve::Ed25519 => {
            return Err(Error::InvalidInput {
                what: "signature from the token",
                reason: format!("{} bytes, not a 64-byte Ed25519 signature", bytes.len()),
            })
        }
    };
    der.ok()
        .and_then(|raw| <[u8; 64]>::try_from(raw.as_slice()).ok())
        .ok_or_else(|| Error::InvalidInput {
            what: "signature from the token",
            reason: format!(
                "{} bytes, neither a 64-byte r||s nor a DER ECDSA-Sig-Value with r and s in 1..n-1",
                bytes.len()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn der_of(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
        fn int(v: &[u8]) -> Vec<u8> {
            let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
            if v.first().is_none_or(|b| b & 0x80 != 0) {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        }
        let mut body = int(r);
        body.extend(int(s));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    proptest! {
        #[test]
        fn der_and_raw_agree(mut r in any::<[u8; 32]>(), mut s in any::<[u8; 32]>()) {
            // Below 2^255, hence below both curves' order n; never zero.
            for v in [&mut r, &mut s] {
                v[0] &= 0x7f;
                v[31] |= 1;
            }
            for curve in [Curve::Secp256k1, Curve::P256] {
                let raw = to_raw_signature(curve, &der_of(&r, &s)).unwrap();
                prop_assert_eq!(&raw[..32], &r[..]);
                prop_assert_eq!(&raw[32..], &s[..]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            for curve in Curve::ALL {
                let _ = to_raw_signature(curve, &bytes);
            }
        }
    }

    #[test]
    fn high_bit_values_need_and_get_their_sign_pad() {
        let r = [0x80; 32];
        let s = [0x81; 32];
        let raw = to_raw_signature(Curve::Secp256k1, &der_of(&r, &s)).unwrap();
        assert_eq!((&raw[..32], &raw[32..]), (&r[..], &s[..]));
    }

    #[test]
    fn malformed_der_is_refused() {
        let mut big = vec![0x30, 0x26, 0x02, 0x21, 0x01]; // a 33-byte integer, no sign pad
        big.extend([0xff; 32]);
        big.extend([0x02, 0x01, 0x01]);
        let too_big = der_of(&[0xff; 32], &[1; 32]); // r >= n
        for der in [
            &[][..],
            &[0x30, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x01],                   // no s
            &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00], // s = 0
            &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01], // negative r
            &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01], // non-minimal r
            &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00], // trailing byte
            &big,
            &too_big,
        ] {
            for curve in Curve::ALL {
                assert!(
                    to_raw_signature(curve, der).is_err(),
                    "{curve:?} {der:02x?}"
                );
            }
        }
    }
}
