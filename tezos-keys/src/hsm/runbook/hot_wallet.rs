//! The hot-wallet export: a backup-able HSM key as a software Tezos secret key (`spsk`/`p2sk`).
//!
//! **This defeats the HSM.** An HSM key is worth having because its private half cannot be
//! copied: whoever wants to sign must ask the HSM, which can log, rate-limit and refuse. Once
//! the key is an `spsk`/`p2sk` string it is an ordinary secret: it can be copied from memory,
//! the clipboard, a file, a backup or a shell history, and every copy signs anything, anywhere,
//! forever. Nothing can call it back; the only remedy is to move the funds and the baking rights
//! to a new key. Use it only for a key that must become a hot wallet, after deciding that this
//! is acceptable; never for a baker's consensus key.
//!
//! How: the HSM wraps the key under a wrapping key whose value the caller holds (a key-ceremony
//! key: imported, trusted, so it may wrap a backup-able key); the value is checked against the
//! token's key check value first; the wrapped bytes are unwrapped in software (AES key wrap,
//! RFC 5649 or RFC 3394), the PKCS#8 structure is parsed, and every intermediate buffer is
//! zeroized. Non-extractable keys are refused before anything is asked of the HSM: they were
//! made never to leave it. Ed25519 keys are refused (SoftHSM2 cannot wrap them, and this export
//! handles the ECDSA curves' PKCS#8 only).

use cryptoki_ops::secrecy::{ExposeSecret, SecretBox};
use cryptoki_ops::{Hsm, KeySelector, WrapMechanism};
use zeroize::{Zeroize, Zeroizing};

use super::error::check_value_text;
use super::replicate::check_value;
use super::RunbookError;
use crate::{tezos_curve, tezos_public_key, Curve, SecretKey};

/// The explicit opt-in to [`export_hot_wallet`]: there is one value, and its name says what
/// the caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotWalletConsent {
    /// The key will exist outside the HSM, where nothing protects it (module docs).
    IUnderstandThisDefeatsTheHsm,
}

/// Exports the backup-able private key `key` of `hsm` as a software [`SecretKey`] (its
/// [`SecretKey::to_base58`] is the `spsk…`/`p2sk…` text, a `SecretString`), by wrapping it
/// under `wrapping_key`, whose value `wrapping_key_value` the caller holds, and unwrapping in
/// software. The returned key is zeroized when dropped.
///
/// Refused with [`RunbookError::NotExtractable`] for a key that is not extractable,
/// [`RunbookError::WrappingKeyValueMismatch`] when the value is not that wrapping key's,
/// [`RunbookError::ExportUnsupported`] for Ed25519 keys, and [`RunbookError::KeyMismatch`] if
/// the exported key is not the one whose public key the token shows.
///
/// ```no_run
/// use cryptoki_ops::secrecy::{ExposeSecret, SecretBox};
/// use tezos_keys::runbook::{export_hot_wallet, HotWalletConsent};
/// # let hsm: cryptoki_ops::Hsm = unimplemented!();
/// let ceremony_value = SecretBox::new(Box::new([0u8; 32])); // from the key ceremony, never hard-coded
/// let secret = export_hot_wallet(&hsm, &"hot".parse()?, &"ceremony".parse()?, &ceremony_value,
///     HotWalletConsent::IUnderstandThisDefeatsTheHsm)?;
/// let text = secret.to_base58(); // spsk... — now an ordinary secret, no longer protected by the HSM
/// # let _ = text.expose_secret();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn export_hot_wallet(
    hsm: &Hsm,
    key: &KeySelector,
    wrapping_key: &KeySelector,
    wrapping_key_value: &SecretBox<[u8; 32]>,
    consent: HotWalletConsent,
) -> Result<SecretKey, RunbookError> {
    let HotWalletConsent::IUnderstandThisDefeatsTheHsm = consent;
    let pair = hsm.key_pair(key)?;
    if pair.private.extractable != Some(true) {
        return Err(RunbookError::NotExtractable {
            label: pair.private.label,
            token: hsm.token_label().to_string(),
        });
    }
    let curve = tezos_curve(pair.public_key.curve());
    if curve == Curve::Ed25519 {
        return Err(RunbookError::ExportUnsupported {
            what: "an Ed25519 key".into(),
            reason: "only secp256k1 (spsk) and P-256 (p2sk) keys can be exported",
        });
    }
    let wrapper = hsm.find_wrapping_key(wrapping_key)?;
    let given = check_value(wrapping_key_value);
    if wrapper.check_value.as_deref() != Some(given.as_slice()) {
        return Err(RunbookError::WrappingKeyValueMismatch {
            label: wrapper.label,
            token: hsm.token_label().to_string(),
            given: hex::encode(given),
            on_token: check_value_text(wrapper.check_value.as_deref()),
        });
    }
    let mechanism = hsm.default_wrap_mechanism()?;
    let wrapped = hsm.wrap_private_key(key, wrapping_key, Some(mechanism))?;
    let pkcs8 = unwrap_in_software(mechanism, &wrapped.bytes, wrapping_key_value)?;
    let secret = secret_from_pkcs8(curve, &pkcs8)?;
    let public_key = tezos_public_key(&pair.public_key)?;
    if secret.public_key() != public_key {
        return Err(RunbookError::KeyMismatch {
            label: pair.private.label,
            token: hsm.token_label().to_string(),
            public_key: public_key.to_string(),
        });
    }
    Ok(secret)
}

/// AES key unwrap (RFC 5649 or RFC 3394) of `wrapped` under `value`, into a zeroized buffer.
fn unwrap_in_software(
    mechanism: WrapMechanism,
    wrapped: &[u8],
    value: &SecretBox<[u8; 32]>,
) -> Result<Zeroizing<Vec<u8>>, RunbookError> {
    use aes_kw::KeyInit;
    let mut buf = Zeroizing::new(vec![0u8; wrapped.len().saturating_sub(8)]);
    let integrity = |_| {
        RunbookError::SoftwareUnwrap {
        reason: "the integrity check failed (the value is not the key the HSM wrapped with, or the bytes are damaged)",
    }
    };
    let key = (*value.expose_secret()).into();
    let len = match mechanism {
        WrapMechanism::AesKeyWrapPad | WrapMechanism::CloudHsmZeroPad => {
            aes_kw::KwpAes256::new(&key)
                .unwrap_key(wrapped, &mut buf)
                .map_err(integrity)?
                .len()
        }
        WrapMechanism::AesKeyWrap | WrapMechanism::CloudHsmNoPad => aes_kw::KwAes256::new(&key)
            .unwrap_key(wrapped, &mut buf)
            .map_err(integrity)?
            .len(),
        WrapMechanism::CloudHsmPkcs5Pad => {
            return Err(RunbookError::ExportUnsupported {
                what: format!("a key wrapped with {mechanism}"),
                reason: "CloudHSM's PKCS#5-padded key wrap is not a standard; use the zero-pad (RFC 5649) mechanism",
            })
        }
    };
    buf.truncate(len);
    Ok(buf)
}

/// The secret scalar of a PKCS#8 EC private key. SoftHSM2 zero-pads key data to a multiple of
/// 8 before wrapping, so the DER is followed by zeros: its length is read from its header.
fn secret_from_pkcs8(curve: Curve, data: &[u8]) -> Result<SecretKey, RunbookError> {
    let der = der_prefix(data)?;
    let mut scalar = match curve {
        Curve::Secp256k1 => {
            use k256::pkcs8::DecodePrivateKey;
            k256::SecretKey::from_pkcs8_der(der)
                .map_err(|_| not_pkcs8("not a secp256k1 PKCS#8 private key"))?
                .to_bytes()
        }
        Curve::P256 => {
            use p256::pkcs8::DecodePrivateKey;
            p256::SecretKey::from_pkcs8_der(der)
                .map_err(|_| not_pkcs8("not a P-256 PKCS#8 private key"))?
                .to_bytes()
        }
        Curve::Ed25519 => {
            return Err(RunbookError::ExportUnsupported {
                what: "an Ed25519 key".into(),
                reason: "only secp256k1 (spsk) and P-256 (p2sk) keys can be exported",
            })
        }
    };
    let secret = SecretKey::from_bytes(curve, scalar.as_slice());
    scalar.as_mut_slice().zeroize();
    Ok(secret?)
}

fn not_pkcs8(reason: &'static str) -> RunbookError {
    RunbookError::SoftwareUnwrap { reason }
}

/// The DER SEQUENCE at the start of `data`, checking that only zero padding follows.
fn der_prefix(data: &[u8]) -> Result<&[u8], RunbookError> {
    let bad = || not_pkcs8("the unwrapped bytes are not a DER SEQUENCE (PKCS#8)");
    let (header, len) = match data {
        [0x30, n, ..] if *n < 0x80 => (2, usize::from(*n)),
        [0x30, 0x81, n, ..] => (3, usize::from(*n)),
        [0x30, 0x82, hi, lo, ..] => (4, usize::from(*hi) << 8 | usize::from(*lo)),
        _ => return Err(bad()),
    };
    let end = header + len;
    let (der, rest) = (data.get(..end).ok_or_else(bad)?, &data[end..]);
    if rest.iter().any(|b| *b != 0) {
        return Err(not_pkcs8(
            "the unwrapped bytes have data after the PKCS#8 structure",
        ));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn der_length_is_read_and_zero_padding_skipped() {
        let mut data = vec![0x30, 0x03, 1, 2, 3];
        assert_eq!(der_prefix(&data).unwrap(), &data[..5]);
        data.extend([0, 0, 0]);
        assert_eq!(der_prefix(&data).unwrap().len(), 5);
        data.push(1);
        assert!(der_prefix(&data).is_err());
        assert!(der_prefix(&[0x30, 0x05, 1]).is_err());
        assert!(der_prefix(&[0x04, 0x01, 1]).is_err());
    }

    #[test]
    fn software_unwrap_of_a_software_wrap_round_trips_and_a_wrong_value_is_refused() {
        use aes_kw::KeyInit;
        use secrecy::ExposeSecret as _;
        // Taquito test key (tezos.md §9) — TEST KEY ONLY.
        let sk = SecretKey::from_base58("p2sk2obfVMEuPUnadAConLWk7Tf4Dt3n4svSgJwrgpamRqJXvaYcg1")
            .unwrap();
        use p256::pkcs8::EncodePrivateKey;
        let der = p256::SecretKey::from_slice(sk.expose_secret())
            .unwrap()
            .to_pkcs8_der()
            .unwrap();
        let mut padded = der.as_bytes().to_vec();
        padded.resize(padded.len().div_ceil(8) * 8, 0); // as SoftHSM2 pads before wrapping
        let value = SecretBox::new(Box::new([0x42u8; 32]));
        let mut wrapped = vec![0u8; padded.len() + 16];
        let n = aes_kw::KwpAes256::new(&[0x42u8; 32].into())
            .wrap_key(&padded, &mut wrapped)
            .unwrap()
            .len();
        wrapped.truncate(n);
        let pkcs8 = unwrap_in_software(WrapMechanism::AesKeyWrapPad, &wrapped, &value).unwrap();
        let back = secret_from_pkcs8(Curve::P256, &pkcs8).unwrap();
        assert_eq!(
            back.to_base58().expose_secret(),
            sk.to_base58().expose_secret()
        );
        let wrong = SecretBox::new(Box::new([0x43u8; 32]));
        let err = unwrap_in_software(WrapMechanism::AesKeyWrapPad, &wrapped, &wrong).unwrap_err();
        assert!(err.to_string().contains("integrity check failed"), "{err}");
        assert!(
            secret_from_pkcs8(Curve::Secp256k1, &pkcs8).is_err(),
            "curve is checked"
        );
    }
}
