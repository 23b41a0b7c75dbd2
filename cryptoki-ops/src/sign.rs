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
                to_raw_signature(&signature).map_err(Fail::Final)
            })
    }
}

/// `r || s` from what a module returned: 64 raw bytes, or an ASN.1 DER `ECDSA-Sig-Value`.
///
/// ```
/// use cryptoki_ops::to_raw_signature;
/// // SEQUENCE { INTEGER 1, INTEGER 0x80 (needs a leading zero in DER) }
/// let der = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
/// let raw = to_raw_signature(&der)?;
/// assert_eq!(raw[31], 1);
/// assert_eq!(raw[63], 0x80);
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
pub fn to_raw_signature(bytes: &[u8]) -> Result<RawSignature> {
    if let Ok(raw) = <[u8; 64]>::try_from(bytes) {
        return Ok(raw);
    }
    let bad = |reason: &str| Error::InvalidInput {
        what: "signature from the token",
        reason: format!(
            "{} bytes, neither 64-byte r||s nor DER: {reason}",
            bytes.len()
        ),
    };
    let body = match bytes {
        [0x30, len, body @ ..] if usize::from(*len) == body.len() && *len < 0x80 => body,
        _ => return Err(bad("not a short DER SEQUENCE")),
    };
    let (r, rest) = der_integer(body).ok_or_else(|| bad("bad r"))?;
    let (s, rest) = der_integer(rest).ok_or_else(|| bad("bad s"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let mut raw = [0u8; 64];
    raw[32 - r.len()..32].copy_from_slice(r);
    raw[64 - s.len()..].copy_from_slice(s);
    Ok(raw)
}

/// One DER INTEGER of at most 32 significant bytes: its magnitude without leading zeros, and
/// what follows it.
fn der_integer(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let [0x02, len, rest @ ..] = bytes else {
        return None;
    };
    let len = usize::from(*len);
    if len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (mut value, rest) = rest.split_at(len);
    while let [0, tail @ ..] = value {
        value = tail;
    }
    (value.len() <= 32).then_some((value, rest))
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
        fn der_and_raw_agree(r in any::<[u8; 32]>(), s in any::<[u8; 32]>()) {
            let raw = to_raw_signature(&der_of(&r, &s)).unwrap();
            prop_assert_eq!(&raw[..32], &r[..]);
            prop_assert_eq!(&raw[32..], &s[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = to_raw_signature(&bytes);
        }
    }

    #[test]
    fn malformed_der_is_refused() {
        assert!(to_raw_signature(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(to_raw_signature(&[]).is_err());
        // A 33-byte integer whose first byte is not a sign pad.
        let mut big = vec![0x30, 0x26, 0x02, 0x21, 0x01];
        big.extend([0xff; 32]);
        big.extend([0x02, 0x01, 0x01]);
        assert!(to_raw_signature(&big).is_err());
    }
}
