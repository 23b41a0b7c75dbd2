//! Deleting keys: both halves of a key pair, never another key's half, or a secret key.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::lookup::existing_labels;
use super::{find_one, read_info, KeyClass, KeyInfo, KeySelector};
use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::pool::{ck, Fail, Retry};

/// The public keys that pair with a private key: those with its `CKA_ID` and, where the private
/// key holds its point (`CKA_EC_POINT`, as on CloudHSM), the same point. Where several remain
/// (another key pair made with the same id, by another tool or by an older restore), only those
/// that also carry the private key's label: deleting one key must never delete another's half.
fn paired_public_keys(
    session: &Session,
    private: ObjectHandle,
    info: &KeyInfo,
) -> Result<Vec<ObjectHandle>, Fail> {
    let point_of = |handle| -> Result<Option<Vec<u8>>, Fail> {
        Ok(session
            .get_attributes(handle, &[AttributeType::EcPoint])
            .map_err(ck("C_GetAttributeValue"))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            }))
    };
    let mut candidates = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(info.id.clone()),
        ])
        .map_err(ck("C_FindObjects"))?;
    if candidates.len() > 1 {
        if let Some(point) = point_of(private)? {
            let mut same_point = Vec::with_capacity(candidates.len());
            for handle in candidates {
                if point_of(handle)?.as_ref() == Some(&point) {
                    same_point.push(handle);
                }
            }
            candidates = same_point;
        }
    }
    if candidates.len() > 1 {
        let mut same_label = Vec::with_capacity(candidates.len());
        for handle in candidates {
            if read_info(session, handle)?.label == info.label {
                same_label.push(handle);
            }
        }
        candidates = same_label;
    }
    Ok(candidates)
}

impl Hsm {
    /// Deletes the key `selector` names: both halves of a key pair (found by the private key's
    /// `CKA_ID`), or a secret key. Returns how many objects were destroyed.
    ///
    /// A label shared by two private keys is refused ([`Error::DuplicateLabel`]): delete by id.
    pub fn delete_key(&self, selector: &KeySelector) -> Result<usize> {
        let result = self
            .inner
            .run(Retry::Never, Some(&selector.to_string()), |pooled| {
                let session = &pooled.session;
                let targets =
                    match find_one(session, self.token_label(), KeyClass::Private, selector) {
                        Ok(private) => {
                            let info = read_info(session, private)?;
                            let mut pair = paired_public_keys(session, private, &info)?;
                            pair.push(private);
                            pair
                        }
                        Err(Fail::Final(Error::KeyNotFound { .. })) => {
                            vec![
                                find_one(session, self.token_label(), KeyClass::Secret, selector)
                                    .map_err(|f| match f {
                                    Fail::Final(Error::KeyNotFound { token, .. }) => {
                                        match existing_labels(session, KeyClass::Private) {
                                            Ok(existing) => Fail::Final(Error::KeyNotFound {
                                                class: "key",
                                                wanted: selector.to_string(),
                                                token,
                                                existing,
                                            }),
                                            Err(f) => f,
                                        }
                                    }
                                    other => other,
                                })?,
                            ]
                        }
                        Err(other) => return Err(other),
                    };
                for handle in &targets {
                    session
                        .destroy_object(*handle)
                        .map_err(ck("C_DestroyObject"))?;
                }
                Ok(targets.len())
            });
        self.inner.invalidate_handles();
        result
    }
}
