//! Making keys: EC key pairs (generated) and AES-256 wrapping keys (generated or imported), with
//! the attribute policy of the [module docs](super).

use std::fmt;

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;
use secrecy::{ExposeSecret, SecretBox};

use super::{
    check_id, check_label, ensure_id_free, private_key_template, public_key_template, read_info,
    read_public_key, EcKeySpec, KeyInfo, KeyPairInfo, WrappingKeySpec,
};
use crate::curve::Curve;
use crate::error::{Error, Result, RvError};
use crate::hsm::Hsm;
use crate::pool::{ck, Fail, Retry};

/// Why Ed25519 is refused on AWS CloudHSM, in one line.
const CLOUDHSM_NO_EDDSA: &str = "AWS CloudHSM's PKCS#11 library has no EdDSA, so tz1 (Ed25519) keys cannot be made or used there (AWS docs pkcs11-mechanisms); use secp256k1 (tz2) or P-256 (tz3)";

/// What a failed `C_GenerateKeyPair` means for the caller.
///
/// A backup-able key's template carries `CKA_WRAP_WITH_TRUSTED=true`. A module that refuses an
/// attribute in a template answers `CKR_TEMPLATE_INCONSISTENT` (AWS CloudHSM user guide,
/// "Attribute errors",
/// <https://docs.aws.amazon.com/cloudhsm/latest/userguide/attr-errors.html>; some modules say
/// `CKR_ATTRIBUTE_TYPE_INVALID`). That is an error: the key is never generated without the
/// attribute, because an extractable key without it can be wrapped under *any* wrapping key, a
/// weaker key than the one asked for.
fn generation_refused(
    e: cryptoki::error::Error,
    spec: &EcKeySpec,
    module: &dyn fmt::Display,
    token: &str,
) -> Fail {
    match e {
        cryptoki::error::Error::Pkcs11(
            RvError::CurveNotSupported | RvError::DomainParamsInvalid,
            _,
        ) => Fail::Final(Error::UnsupportedCurve {
            what: format!("{} is not supported by token '{token}'", spec.curve),
        }),
        cryptoki::error::Error::Pkcs11(
            rv @ (RvError::TemplateInconsistent | RvError::AttributeTypeInvalid),
            _,
        ) if spec.backupable => Fail::Final(Error::NotSupportedByModule {
            operation: "generating a backup-able key (extractable only under trusted wrapping keys: CKA_WRAP_WITH_TRUSTED=true)",
            module: format!("{module}: token '{token}' refused the key template of '{}' with {rv}", spec.label),
            hint: "no key was created; a backup-able key is never made without CKA_WRAP_WITH_TRUSTED, since any wrapping key could then export it; generate the key without --backupable (non-extractable), or use a module that supports CKA_WRAP_WITH_TRUSTED (SoftHSM2, AWS CloudHSM)",
        }),
        e => Fail::Pkcs11("C_GenerateKeyPair", e),
    }
}

impl Hsm {
    fn ensure_label_free(&self, session: &Session, label: &str) -> Result<(), Fail> {
        if label.is_empty() {
            return Err(Fail::Final(Error::InvalidInput {
                what: "key label",
                reason: "the label is empty".into(),
            }));
        }
        let taken = session
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(ck("C_FindObjects"))?;
        if taken.is_empty() {
            Ok(())
        } else {
            Err(Fail::Final(Error::KeyExists {
                label: label.to_string(),
                token: self.token_label().to_string(),
            }))
        }
    }

    fn new_id(session: &Session, id: &Option<Vec<u8>>) -> Result<Vec<u8>, Fail> {
        match id {
            Some(id) => Ok(id.clone()),
            None => session
                .generate_random_vec(8)
                .map_err(ck("C_GenerateRandom")),
        }
    }

    /// Generates an EC key pair on the token, with the attribute policy of the module docs.
    ///
    /// On AWS CloudHSM, Ed25519 (tz1) is refused at once: its PKCS#11 library has no EdDSA.
    ///
    /// Errors: [`Error::KeyExists`] if the label is taken, [`Error::MechanismNotSupported`] if the
    /// token cannot generate keys on the curve.
    pub fn generate_ec_key(&self, spec: &EcKeySpec) -> Result<KeyPairInfo> {
        if spec.curve == Curve::Ed25519 && self.module().is_cloudhsm() {
            // AWS docs `pkcs11-mechanisms`, `pkcs11-key-types`: the SDK 5 PKCS#11 library has no
            // EdDSA; Ed25519 exists only in CloudHSM CLI on hsm2m.medium in non-FIPS mode
            // (`cloudhsm_cli-crypto-sign-ed25519`).
            return Err(Error::MechanismNotSupported {
                token: self.token_label().to_string(),
                mechanism: MechanismType::ECC_EDWARDS_KEY_PAIR_GEN.to_string(),
                hint: CLOUDHSM_NO_EDDSA,
            });
        }
        let (mechanism, mechanism_type) = match spec.curve {
            Curve::Ed25519 => (
                Mechanism::EccEdwardsKeyPairGen,
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            ),
            _ => (Mechanism::EccKeyPairGen, MechanismType::ECC_KEY_PAIR_GEN),
        };
        if !self.supports(mechanism_type) {
            return Err(Error::MechanismNotSupported {
                token: self.token_label().to_string(),
                mechanism: mechanism_type.to_string(),
                hint: "this token cannot generate keys on that curve; pick another curve or token",
            });
        }
        check_label(&spec.label)?;
        if let Some(id) = &spec.id {
            check_id(id)?;
        }
        let key_name = format!("'{}'", spec.label);
        self.inner.run(Retry::Never, Some(&key_name), |pooled| {
            let session = &pooled.session;
            self.ensure_label_free(session, &spec.label)?;
            if let Some(id) = &spec.id {
                ensure_id_free(session, self.token_label(), id, &spec.label)?;
            }
            let id = Self::new_id(session, &spec.id)?;
            let public = public_key_template(spec.curve, &spec.label, &id, None);
            let private = private_key_template(spec.curve, &spec.label, &id, spec.backupable);
            let (public_handle, private_handle) = session
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(|e| {
                    generation_refused(e, spec, &self.module().path().display(), self.token_label())
                })?;
            let checked = read_info(session, private_handle).and_then(|info| {
                let public_key = read_public_key(session, &info, private_handle)?;
                Ok(KeyPairInfo {
                    private: info,
                    public_key,
                })
            });
            if checked.is_err() {
                // Leave nothing half-made behind.
                let _ = session.destroy_object(private_handle);
                let _ = session.destroy_object(public_handle);
            }
            checked
        })
    }

    /// Generates an AES-256 wrapping key on the token.
    pub fn generate_wrapping_key(&self, spec: &WrappingKeySpec) -> Result<KeyInfo> {
        self.create_wrapping_key(spec, None)
    }

    /// Imports an AES-256 wrapping key of known value, e.g. from a key ceremony that puts the
    /// same wrapping key on two HSMs. The value is copied into the token and zeroized here.
    ///
    /// ```no_run
    /// # let hsm: cryptoki_ops::Hsm = unimplemented!();
    /// use secrecy::SecretBox;
    /// let value = SecretBox::new(Box::new([7u8; 32])); // from the ceremony, never hard-coded
    /// let key = hsm.import_wrapping_key(&cryptoki_ops::WrappingKeySpec::new("ceremony-2026"), &value)?;
    /// println!("check value {}", hex::encode(key.check_value.unwrap_or_default()));
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn import_wrapping_key(
        &self,
        spec: &WrappingKeySpec,
        value: &SecretBox<[u8; 32]>,
    ) -> Result<KeyInfo> {
        self.create_wrapping_key(spec, Some(value))
    }

    fn create_wrapping_key(
        &self,
        spec: &WrappingKeySpec,
        value: Option<&SecretBox<[u8; 32]>>,
    ) -> Result<KeyInfo> {
        check_label(&spec.label)?;
        if let Some(id) = &spec.id {
            check_id(id)?;
        }
        let key_name = format!("'{}'", spec.label);
        // Checked here rather than left to the token: SoftHSM2 2.6 refuses CKA_TRUSTED from a
        // user but leaves a half-made, unlabelled, non-sensitive AES object behind.
        if spec.trusted && !matches!(self.inner.token.user_type, cryptoki::session::UserType::So) {
            return Err(Self::trusted_needs_so(self.token_label(), &key_name));
        }
        self.inner.run(Retry::Never, Some(&key_name), |pooled| {
            let session = &pooled.session;
            self.ensure_label_free(session, &spec.label)?;
            if let Some(id) = &spec.id {
                ensure_id_free(session, self.token_label(), id, &spec.label)?;
            }
            let id = Self::new_id(session, &spec.id)?;
            let mut template = vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Private(!spec.trusted),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::Derive(false),
                Attribute::Label(spec.label.as_bytes().to_vec()),
                Attribute::Id(id),
            ];
            if spec.trusted {
                template.push(Attribute::Trusted(true));
            }
            let handle = match value {
                None => {
                    template.push(Attribute::ValueLen(32.into()));
                    session
                        .generate_key(&Mechanism::AesKeyGen, &template)
                        .map_err(ck("C_GenerateKey"))
                }
                Some(value) => {
                    // cryptoki takes the value as a Vec; it is zeroized as soon as the call returns.
                    let mut bytes = zeroize::Zeroizing::new(value.expose_secret().to_vec());
                    template.push(Attribute::Value(std::mem::take(&mut *bytes)));
                    let created = session
                        .create_object(&template)
                        .map_err(ck("C_CreateObject"));
                    if let Some(Attribute::Value(v)) = template.last_mut() {
                        zeroize::Zeroize::zeroize(v);
                    }
                    created
                }
            }
            .map_err(|f| match f {
                Fail::Pkcs11(
                    _,
                    cryptoki::error::Error::Pkcs11(
                        RvError::AttributeReadOnly | RvError::AttributeValueInvalid,
                        _,
                    ),
                ) if spec.trusted => {
                    Fail::Final(Self::trusted_needs_so(self.token_label(), &key_name))
                }
                other => other,
            })?;
            read_info(session, handle)
        })
    }

    fn trusted_needs_so(token: &str, key: &str) -> Error {
        Error::PolicyRefused {
            token: token.to_string(),
            operation: "create trusted",
            key: key.to_string(),
            reason: "only the security officer may set CKA_TRUSTED; open the Hsm with Role::SecurityOfficer (on CloudHSM an admin runs `key set-attribute --name trusted`)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn refused(rv: RvError, spec: &EcKeySpec) -> Fail {
        let e = cryptoki::error::Error::Pkcs11(rv, Function::GenerateKeyPair);
        generation_refused(e, spec, &"/opt/module.so", "signer")
    }

    #[test]
    fn a_refused_wrap_with_trusted_is_an_error_naming_module_token_and_remedy() {
        let spec = EcKeySpec::new(Curve::Secp256k1, "baker").backupable();
        for rv in [RvError::TemplateInconsistent, RvError::AttributeTypeInvalid] {
            let Fail::Final(err) = refused(rv, &spec) else {
                panic!("{rv}: not a final error");
            };
            let message = err.to_string();
            assert_eq!(err.kind(), "not_supported_by_module", "{message}");
            for part in [
                "/opt/module.so",
                "'signer'",
                "'baker'",
                "CKA_WRAP_WITH_TRUSTED",
                "without --backupable",
                &rv.to_string(),
            ] {
                assert!(message.contains(part), "{part} missing: {message}");
            }
        }
    }

    #[test]
    fn template_errors_of_non_backupable_keys_stay_pkcs11_errors() {
        let spec = EcKeySpec::new(Curve::P256, "plain");
        assert!(matches!(
            refused(RvError::TemplateInconsistent, &spec),
            Fail::Pkcs11("C_GenerateKeyPair", _)
        ));
        assert!(matches!(
            refused(RvError::CurveNotSupported, &spec),
            Fail::Final(Error::UnsupportedCurve { .. })
        ));
    }
}
