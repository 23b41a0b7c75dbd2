//! Finding keys: reading a key's metadata and public key, finding one key by selector with
//! errors that list what exists, listing the token's keys.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::{KeyClass, KeyInfo, KeyPairInfo, KeySelector};
use crate::curve::{Curve, PublicKey};
use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::pool::{ck, Fail, Retry};

const INFO_ATTRIBUTES: &[AttributeType] = &[
    AttributeType::Class,
    AttributeType::Label,
    AttributeType::Id,
    AttributeType::KeyType,
    AttributeType::EcParams,
    AttributeType::Extractable,
    AttributeType::Sensitive,
    AttributeType::WrapWithTrusted,
    AttributeType::Trusted,
    AttributeType::CheckValue,
];

/// Reads a key's metadata in one `C_GetAttributeValue` round (cryptoki skips what is unavailable).
pub(crate) fn read_info(session: &Session, handle: ObjectHandle) -> Result<KeyInfo, Fail> {
    let attributes = session
        .get_attributes(handle, INFO_ATTRIBUTES)
        .map_err(ck("C_GetAttributeValue"))?;
    let mut info = KeyInfo {
        label: String::new(),
        id: Vec::new(),
        class: KeyClass::Secret,
        key_type: String::new(),
        curve: None,
        extractable: None,
        sensitive: None,
        wrap_with_trusted: None,
        trusted: None,
        check_value: None,
    };
    for attribute in attributes {
        match attribute {
            Attribute::Class(c) => {
                info.class = KeyClass::from_object_class(c).unwrap_or(KeyClass::Secret)
            }
            Attribute::Label(l) => info.label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(id) => info.id = id,
            Attribute::KeyType(t) => info.key_type = t.to_string(),
            Attribute::EcParams(p) => info.curve = Curve::from_ec_params(&p).ok(),
            Attribute::Extractable(b) => info.extractable = Some(b),
            Attribute::Sensitive(b) => info.sensitive = Some(b),
            Attribute::WrapWithTrusted(b) => info.wrap_with_trusted = Some(b),
            Attribute::Trusted(b) => info.trusted = Some(b),
            Attribute::CheckValue(v) if !v.is_empty() => info.check_value = Some(v),
            _ => {}
        }
    }
    Ok(info)
}

/// Finds exactly one object of `class` matching `selector`, with errors that list what exists.
pub(crate) fn find_one(
    session: &Session,
    token: &str,
    class: KeyClass,
    selector: &KeySelector,
) -> Result<ObjectHandle, Fail> {
    let found = session
        .find_objects(&[Attribute::Class(class.object_class()), selector.attribute()])
        .map_err(ck("C_FindObjects"))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Fail::Final(Error::KeyNotFound {
            class: class.noun(),
            wanted: selector.to_string(),
            token: token.to_string(),
            existing: existing_labels(session, class)?,
        })),
        many => {
            let mut ids = Vec::with_capacity(many.len());
            for handle in many {
                ids.push(read_info(session, *handle)?.id_hex());
            }
            Err(Fail::Final(Error::DuplicateLabel {
                class: class.noun(),
                label: match selector {
                    KeySelector::Label(l) => l.clone(),
                    KeySelector::Id(id) => format!("(id {})", hex::encode(id)),
                },
                token: token.to_string(),
                count: many.len(),
                ids: ids.join(", "),
            }))
        }
    }
}

pub(super) fn existing_labels(session: &Session, class: KeyClass) -> Result<String, Fail> {
    let handles = session
        .find_objects(&[Attribute::Class(class.object_class())])
        .map_err(ck("C_FindObjects"))?;
    let mut labels = Vec::with_capacity(handles.len());
    for handle in handles {
        labels.push(format!("'{}'", read_info(session, handle)?.label));
    }
    labels.sort();
    labels.dedup();
    Ok(if labels.is_empty() {
        "none".to_string()
    } else {
        labels.join(", ")
    })
}

/// Reads and checks the public key of an EC key pair: from the public object with the private
/// key's `CKA_ID`, else from `CKA_EC_POINT` on the private key itself (CloudHSM has it there).
pub(crate) fn read_public_key(
    session: &Session,
    private: &KeyInfo,
    private_handle: ObjectHandle,
) -> Result<PublicKey, Fail> {
    let key_name = || format!("'{}' (id {})", private.label, private.id_hex());
    let curve = private.curve.ok_or_else(|| {
        Fail::Final(Error::UnsupportedCurve {
            what: format!(
                "key {} has key type {} on a curve this crate does not handle",
                key_name(),
                private.key_type
            ),
        })
    })?;
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(private.id.clone()),
        ])
        .map_err(ck("C_FindObjects"))?;
    let source = public.first().copied().unwrap_or(private_handle);
    let point = session
        .get_attributes(source, &[AttributeType::EcPoint])
        .map_err(ck("C_GetAttributeValue"))?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| {
            Fail::Final(Error::InvalidPublicKey {
                key: key_name(),
                reason: "the token has no public key object with the same CKA_ID and no CKA_EC_POINT on the private key".into(),
            })
        })?;
    PublicKey::from_ec_point(curve, &point).map_err(|e| match e {
        Error::InvalidPublicKey { reason, .. } => Fail::Final(Error::InvalidPublicKey {
            key: key_name(),
            reason,
        }),
        other => Fail::Final(other),
    })
}

/// Refuses an id that another key on the token already has ([`Error::IdExists`]).
pub(crate) fn ensure_id_free(
    session: &Session,
    token: &str,
    id: &[u8],
    label: &str,
) -> Result<(), Fail> {
    let holders = session
        .find_objects(&[Attribute::Id(id.to_vec())])
        .map_err(ck("C_FindObjects"))?;
    match holders.first() {
        None => Ok(()),
        Some(holder) => Err(Fail::Final(Error::IdExists {
            id: hex::encode(id),
            label: label.to_string(),
            existing: read_info(session, *holder)?.label,
            token: token.to_string(),
        })),
    }
}

impl Hsm {
    /// Metadata of the private key `selector` names.
    pub fn find_private_key(&self, selector: &KeySelector) -> Result<KeyInfo> {
        self.find_key(KeyClass::Private, selector)
    }

    /// Metadata of the wrapping (AES secret) key `selector` names.
    pub fn find_wrapping_key(&self, selector: &KeySelector) -> Result<KeyInfo> {
        self.find_key(KeyClass::Secret, selector)
    }

    fn find_key(&self, class: KeyClass, selector: &KeySelector) -> Result<KeyInfo> {
        self.inner
            .run(Retry::Idempotent, Some(&selector.to_string()), |pooled| {
                let handle = find_one(&pooled.session, self.token_label(), class, selector)?;
                read_info(&pooled.session, handle)
            })
    }

    /// The public key of the EC key pair `selector` names, checked on its curve.
    pub fn public_key(&self, selector: &KeySelector) -> Result<PublicKey> {
        self.key_pair(selector).map(|pair| pair.public_key)
    }

    /// The private key's metadata and the public key of the pair `selector` names.
    pub fn key_pair(&self, selector: &KeySelector) -> Result<KeyPairInfo> {
        self.inner
            .run(Retry::Idempotent, Some(&selector.to_string()), |pooled| {
                let session = &pooled.session;
                let handle = find_one(session, self.token_label(), KeyClass::Private, selector)?;
                let private = read_info(session, handle)?;
                let public_key = read_public_key(session, &private, handle)?;
                Ok(KeyPairInfo {
                    private,
                    public_key,
                })
            })
    }

    /// Every key object on the token visible to this login (private, public and secret keys),
    /// sorted by label, then class.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.inner.run(Retry::Idempotent, None, |pooled| {
            let session = &pooled.session;
            let mut keys = Vec::new();
            for class in [KeyClass::Private, KeyClass::Public, KeyClass::Secret] {
                let handles = session
                    .find_objects(&[Attribute::Class(class.object_class())])
                    .map_err(ck("C_FindObjects"))?;
                for handle in handles {
                    keys.push(read_info(session, handle)?);
                }
            }
            keys.sort_by(|a, b| {
                a.label
                    .cmp(&b.label)
                    .then(a.class.name().cmp(b.class.name()))
            });
            Ok(keys)
        })
    }
}
