//! Wrapping a private key under an AES wrapping key, and unwrapping it on this or another token.

use std::fmt;
use std::str::FromStr;

use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;

use crate::curve::{Curve, PublicKey};
use crate::error::{Error, Result, RvError};
use crate::hsm::Hsm;
use crate::keys::{
    check_id, check_label, ensure_id_free, find_one, private_key_template, public_key_template,
    read_info, read_public_key, KeyClass, KeyPairInfo, KeySelector,
};
use crate::pool::{ck, Fail, Retry};

/// AES key-wrap mechanisms. The standard ones are what SoftHSM2 (and most modules) offer; AWS
/// CloudHSM SDK 5 lists only its vendor-defined variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrapMechanism {
    /// `CKM_AES_KEY_WRAP_PAD` (RFC 5649): any key length. The default where offered.
    AesKeyWrapPad,
    /// `CKM_AES_KEY_WRAP` (RFC 3394): key data must be a multiple of 8 bytes (SoftHSM2 pads).
    AesKeyWrap,
    /// CloudHSM `CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD` (0x8000216F): RFC 5649-compatible.
    CloudHsmZeroPad,
    /// CloudHSM `CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD` (0x8000210A): PKCS#5 padding, CloudHSM only.
    CloudHsmPkcs5Pad,
    /// CloudHSM `CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD` (0x80002109): RFC 3394, block-aligned keys.
    CloudHsmNoPad,
}

impl WrapMechanism {
    /// All mechanisms, in order of preference.
    pub const ALL: [Self; 5] = [
        Self::AesKeyWrapPad,
        Self::CloudHsmZeroPad,
        Self::AesKeyWrap,
        Self::CloudHsmPkcs5Pad,
        Self::CloudHsmNoPad,
    ];

    /// The PKCS#11 mechanism type.
    pub fn mechanism_type(self) -> MechanismType {
        let vendor = |value| {
            // Values from AWS's vendor header; all are above CKM_VENDOR_DEFINED, so this is Ok.
            MechanismType::new_vendor_defined(value).unwrap_or(MechanismType::AES_KEY_WRAP_PAD)
        };
        match self {
            Self::AesKeyWrapPad => MechanismType::AES_KEY_WRAP_PAD,
            Self::AesKeyWrap => MechanismType::AES_KEY_WRAP,
            Self::CloudHsmZeroPad => vendor(0x8000_216F),
            Self::CloudHsmPkcs5Pad => vendor(0x8000_210A),
            Self::CloudHsmNoPad => vendor(0x8000_2109),
        }
    }

    fn mechanism(self) -> Mechanism<'static> {
        match self {
            Self::AesKeyWrapPad => Mechanism::AesKeyWrapPad,
            Self::AesKeyWrap => Mechanism::AesKeyWrap,
            // NULL IV: the module uses the RFC default.
            other => Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                other.mechanism_type(),
                None,
            )),
        }
    }

    /// Stable name, as used in backup files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesKeyWrapPad => "aes-key-wrap-pad",
            Self::AesKeyWrap => "aes-key-wrap",
            Self::CloudHsmZeroPad => "cloudhsm-aes-key-wrap-zero-pad",
            Self::CloudHsmPkcs5Pad => "cloudhsm-aes-key-wrap-pkcs5-pad",
            Self::CloudHsmNoPad => "cloudhsm-aes-key-wrap-no-pad",
        }
    }
}

impl fmt::Display for WrapMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WrapMechanism {
    type Err = Error;

    /// ```
    /// use cryptoki_ops::WrapMechanism;
    /// assert_eq!("aes-key-wrap-pad".parse::<WrapMechanism>()?, WrapMechanism::AesKeyWrapPad);
    /// assert!("aes-gcm".parse::<WrapMechanism>().is_err());
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidInput {
                what: "wrap mechanism",
                reason: format!(
                    "'{s}' is not one of {}",
                    Self::ALL
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

/// A private key wrapped under a wrapping key: opaque bytes plus the mechanism used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// How it was wrapped.
    pub mechanism: WrapMechanism,
    /// The wrapped key (PKCS#8, encrypted).
    pub bytes: Vec<u8>,
}

/// What to make of an unwrapped private key on the target token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwrapTarget {
    /// `CKA_LABEL` of both halves; must be free on the target token.
    pub label: String,
    /// `CKA_ID` of both halves (keep the source's, so both tokens agree); 1 to 32 bytes, and no
    /// other key on the target token may have it ([`Error::IdExists`]).
    pub id: Vec<u8>,
    /// The public key the unwrapped private key must match; also stored as the public half.
    pub public_key: PublicKey,
    /// Keep the restored key backup-able (same attributes as [`crate::EcKeySpec::backupable`]).
    pub backupable: bool,
}

impl Hsm {
    /// The wrap mechanism to use on this token: the first of [`WrapMechanism::ALL`] it lists.
    pub fn default_wrap_mechanism(&self) -> Result<WrapMechanism> {
        WrapMechanism::ALL
            .into_iter()
            .find(|m| self.supports(m.mechanism_type()))
            .ok_or_else(|| Error::MechanismNotSupported {
                token: self.token_label().to_string(),
                mechanism: "any AES key-wrap mechanism".into(),
                hint: "this token cannot wrap keys with AES; backups need CKM_AES_KEY_WRAP_PAD or CloudHSM's AES key wrap",
            })
    }

    /// Wraps the private key `key` under the wrapping key `wrapping_key`.
    ///
    /// Refused with [`Error::PolicyRefused`] when the key is not extractable, or is marked
    /// `CKA_WRAP_WITH_TRUSTED` and the wrapping key is not trusted.
    pub fn wrap_private_key(
        &self,
        key: &KeySelector,
        wrapping_key: &KeySelector,
        mechanism: Option<WrapMechanism>,
    ) -> Result<WrappedKey> {
        let mechanism = match mechanism {
            Some(m) => m,
            None => self.default_wrap_mechanism()?,
        };
        let token = self.token_label();
        let key_name = key.to_string();
        self.inner.run(Retry::Idempotent, Some(&key_name), |pooled| {
            let session = &pooled.session;
            let private = find_one(session, token, KeyClass::Private, key)?;
            let wrapping = find_one(session, token, KeyClass::Secret, wrapping_key)?;
            let refused = |reason| {
                Fail::Final(Error::PolicyRefused {
                    token: token.to_string(),
                    operation: "wrap",
                    key: key_name.clone(),
                    reason,
                })
            };
            let bytes = session.wrap_key(&mechanism.mechanism(), wrapping, private).map_err(|e| match e {
                cryptoki::error::Error::Pkcs11(RvError::KeyUnextractable, _) => refused(
                    "the key is not extractable (CKA_EXTRACTABLE=false): it was made without a backup and can never leave the HSM",
                ),
                cryptoki::error::Error::Pkcs11(RvError::KeyNotWrappable, _) => {
                    // Two causes share this code; the attributes tell which.
                    let needs_trusted = read_info(session, private).is_ok_and(|k| k.wrap_with_trusted == Some(true))
                        && read_info(session, wrapping).is_ok_and(|w| w.trusted != Some(true));
                    refused(if needs_trusted {
                        "the key may only be wrapped by a trusted wrapping key (CKA_WRAP_WITH_TRUSTED); use a wrapping key the security officer created as trusted"
                    } else {
                        "the token cannot wrap keys of this type (SoftHSM2 2.6 does not wrap Ed25519 keys)"
                    })
                }
                e => Fail::Pkcs11("C_WrapKey", e),
            })?;
            Ok(WrappedKey {
                mechanism,
                bytes: trim_wrapped(bytes),
            })
        })
    }

    /// Unwraps `wrapped` under `wrapping_key` into a new private key on this token, stores the
    /// public half, and checks with a test signature that the two match. On any failure,
    /// nothing is left on the token.
    pub fn unwrap_private_key(
        &self,
        wrapped: &WrappedKey,
        wrapping_key: &KeySelector,
        target: &UnwrapTarget,
    ) -> Result<KeyPairInfo> {
        let token = self.token_label();
        let key_name = format!("'{}'", target.label);
        let curve = target.public_key.curve();
        check_label(&target.label)?;
        check_id(&target.id)?;
        self.inner.run(Retry::Never, Some(&key_name), |pooled| {
            let session = &pooled.session;
            let wrapping = find_one(session, token, KeyClass::Secret, wrapping_key)?;
            let taken = session
                .find_objects(&[Attribute::Label(target.label.as_bytes().to_vec())])
                .map_err(ck("C_FindObjects"))?;
            if !taken.is_empty() {
                return Err(Fail::Final(Error::KeyExists {
                    label: target.label.clone(),
                    token: token.to_string(),
                }));
            }
            ensure_id_free(session, token, &target.id, &target.label)?;
            let private_template = private_key_template(curve, &target.label, &target.id, target.backupable);
            let private = session
                .unwrap_key(&wrapped.mechanism.mechanism(), wrapping, &wrapped.bytes, &private_template)
                .map_err(|e| match e {
                    cryptoki::error::Error::Pkcs11(
                        rv @ (RvError::WrappedKeyInvalid
                        | RvError::EncryptedDataInvalid
                        | RvError::WrappedKeyLenRange
                        | RvError::EncryptedDataLenRange
                        | RvError::DataInvalid
                        // SoftHSM2 2.6 reports a failed RFC 5649 integrity check this way.
                        | RvError::GeneralError),
                        _,
                    ) => Fail::Final(Error::UnwrapFailed {
                        token: token.to_string(),
                        wrapping_key: wrapping_key.to_string(),
                        reason: format!(
                            "{rv}: the bytes do not decrypt under this wrapping key; it is not the key they were wrapped with (compare check values), or the bytes are corrupt"
                        ),
                    }),
                    e => Fail::Pkcs11("C_UnwrapKey", e),
                })?;
            let public_template = public_key_template(curve, &target.label, &target.id, Some(target.public_key.to_ec_point()));
            let public = match session.create_object(&public_template) {
                Ok(handle) => handle,
                Err(e) => {
                    let _ = session.destroy_object(private);
                    return Err(Fail::Pkcs11("C_CreateObject", e));
                }
            };
            let checked = check_pair(session, private, public, curve).map_err(|f| match f {
                Fail::Final(Error::KeyMismatch { reason, .. }) => Fail::Final(Error::KeyMismatch {
                    token: token.to_string(),
                    label: target.label.clone(),
                    reason,
                }),
                other => other,
            });
            let checked = checked.and_then(|()| {
                let info = read_info(session, private)?;
                let public_key = read_public_key(session, &info, private)?;
                Ok(KeyPairInfo { private: info, public_key })
            });
            if checked.is_err() {
                let _ = session.destroy_object(private);
                let _ = session.destroy_object(public);
            }
            checked
        })
    }
}

/// Signs a fixed digest with the private key and verifies it with the public key on the token:
/// proves an unwrapped key is the one the public key belongs to.
fn check_pair(
    session: &Session,
    private: ObjectHandle,
    public: ObjectHandle,
    curve: Curve,
) -> Result<(), Fail> {
    let curve_of_private = session
        .get_attributes(private, &[AttributeType::EcParams])
        .map_err(ck("C_GetAttributeValue"))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcParams(p) => Curve::from_ec_params(&p).ok(),
            _ => None,
        });
    // The caller fills in the token and label.
    let mismatch = |reason| {
        Fail::Final(Error::KeyMismatch {
            token: String::new(),
            label: String::new(),
            reason,
        })
    };
    if curve_of_private.is_some_and(|c| c != curve) {
        return Err(mismatch("it is on another curve"));
    }
    let digest = [0x5a_u8; 32];
    let mechanism = match curve {
        Curve::Ed25519 => Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
            cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
        )),
        _ => Mechanism::Ecdsa,
    };
    let signature = session
        .sign(&mechanism, private, &digest)
        .map_err(ck("C_Sign"))?;
    session
        .verify(&mechanism, public, &digest, &signature)
        .map_err(|_| mismatch("a test signature does not verify with the public key"))
}

/// `cryptoki` 0.12's `wrap_key` returns the buffer sized by the length query, not by the second
/// call's length, and a module may over-report the first. AES key wrap output is a whole number
/// of 8-byte blocks; a real ciphertext block is all zeros with probability 2^-64, so trailing
/// zero blocks are padding the module did not fill.
fn trim_wrapped(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.len() > 16
        && bytes.len().is_multiple_of(8)
        && bytes[bytes.len() - 8..].iter().all(|b| *b == 0)
    {
        bytes.truncate(bytes.len() - 8);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_zero_blocks_are_trimmed() {
        let mut bytes = vec![1u8; 40];
        bytes.extend([0u8; 16]);
        assert_eq!(trim_wrapped(bytes).len(), 40);
        assert_eq!(trim_wrapped(vec![1u8; 24]).len(), 24);
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in WrapMechanism::ALL {
            assert_eq!(m.name().parse::<WrapMechanism>().unwrap(), m);
        }
        assert_eq!(
            *WrapMechanism::CloudHsmZeroPad.mechanism_type(),
            0x8000_216F
        );
    }
}
