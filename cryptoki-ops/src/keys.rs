//! Key pairs, wrapping keys, and finding, listing and deleting keys.
//!
//! # Attribute policy
//!
//! Every attribute is set explicitly, because modules differ in their defaults (AWS CloudHSM
//! makes a key **extractable** when `CKA_EXTRACTABLE` is left out). Only standard PKCS#11
//! attributes are used, so other tools (`pkcs11-tool`, `cloudhsm-cli`) see and use the keys.
//!
//! EC private key ([`EcKeySpec`]):
//!
//! | Attribute | Value | Why |
//! |---|---|---|
//! | `CKA_TOKEN` | true | survives the session: it is a long-term key |
//! | `CKA_PRIVATE` | true | visible only after login (CloudHSM requires it) |
//! | `CKA_SENSITIVE` | true | its value can never be read in clear |
//! | `CKA_EXTRACTABLE` | **false**; true only with [`EcKeySpec::backupable`] | cannot leave the HSM, not even wrapped, unless a backup is wanted |
//! | `CKA_WRAP_WITH_TRUSTED` | true when backupable | a backup-able key can only be wrapped by a wrapping key the security officer marked trusted; a module that refuses the attribute gets an error, never a key without it |
//! | `CKA_SIGN` | true | its one job |
//! | `CKA_DECRYPT`, `CKA_UNWRAP`, `CKA_DERIVE` | false | no other use: a signing key is never a decryption or key-agreement key |
//! | `CKA_LABEL`, `CKA_ID` | same on both halves | find the pair by either; the id is 8 random bytes from the token |
//!
//! EC public key: `CKA_TOKEN` true, `CKA_PRIVATE` **true** (visible only after login),
//! `CKA_VERIFY` true, `CKA_ENCRYPT`/`CKA_WRAP`/`CKA_DERIVE` false, `CKA_EC_PARAMS` = the curve's
//! DER OID, same label and id. `CKA_PRIVATE` is true on every module, also when the public half
//! is created from a known point (restore, replication): AWS CloudHSM accepts `CKA_PRIVATE` on
//! EC public keys only at its default, true (AWS CloudHSM user guide, "PKCS #11 attributes",
//! <https://docs.aws.amazon.com/cloudhsm/latest/userguide/pkcs11-attributes-interpreting.html>,
//! footnote 1; OpenSC issue 2747). Every session of this crate is logged in, so nothing is lost;
//! a public key is exported with [`Hsm::public_key`].
//!
//! AES wrapping key ([`WrappingKeySpec`]): `CKA_TOKEN` true, `CKA_SENSITIVE` true,
//! `CKA_EXTRACTABLE` false, `CKA_WRAP`/`CKA_UNWRAP` true, `CKA_ENCRYPT`/`CKA_DECRYPT`/`CKA_SIGN`/
//! `CKA_VERIFY`/`CKA_DERIVE` false (it only wraps keys), `CKA_VALUE_LEN` 32 (AES-256).
//! `CKA_PRIVATE` is true, except for a trusted key made by the security officer: PKCS#11 lets
//! only the SO set `CKA_TRUSTED`, and the SO cannot create private objects, so a trusted wrapping
//! key is a public object (its value stays sensitive and non-extractable).

use std::fmt;

/// Why Ed25519 is refused on AWS CloudHSM, in one line.
const CLOUDHSM_NO_EDDSA: &str = "AWS CloudHSM's PKCS#11 library has no EdDSA, so tz1 (Ed25519) keys cannot be made or used there (AWS docs pkcs11-mechanisms); use secp256k1 (tz2) or P-256 (tz3)";
use std::str::FromStr;

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use secrecy::{ExposeSecret, SecretBox};

use crate::curve::{Curve, PublicKey};
use crate::error::{Error, Result, RvError};
use crate::hsm::Hsm;
use crate::pool::{ck, Fail, Retry};

/// The longest `CKA_LABEL` a new key may get, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// The longest `CKA_ID` a new key may get, in bytes.
pub const MAX_ID_BYTES: usize = 32;

/// Checks the label of a key about to be made (generated, imported or restored): 1 to
/// [`MAX_LABEL_BYTES`] bytes of printable UTF-8, without control characters or the invisible
/// characters that reorder text. Labels are printed (`key list`, errors), where a newline or an
/// escape sequence could forge output. Keys made by other tools are still found by any label.
///
/// ```
/// use cryptoki_ops::keys::check_label;
/// assert!(check_label("baker-1").is_ok());
/// assert!(check_label("clé").is_ok());
/// assert!(check_label("").is_err());
/// assert!(check_label("two\nlines").is_err());
/// assert_eq!(check_label(&"x".repeat(65)).unwrap_err().kind(), "invalid_input");
/// ```
pub fn check_label(label: &str) -> Result<()> {
    const RULE: &str = "a key label is 1 to 64 bytes of printable UTF-8 without control characters";
    let refuse = |why: String| {
        Err(Error::InvalidInput {
            what: "key label",
            reason: format!("{RULE}; {why}"),
        })
    };
    if label.is_empty() {
        return refuse("this one is empty".into());
    }
    if label.len() > MAX_LABEL_BYTES {
        return refuse(format!("this one is {} bytes long", label.len()));
    }
    let invisible = |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    if let Some((at, c)) = label
        .char_indices()
        .find(|(_, c)| c.is_control() || invisible(*c))
    {
        return refuse(format!(
            "this one has the character U+{:04X} at byte {at}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks the `CKA_ID` of a key about to be made: 1 to [`MAX_ID_BYTES`] bytes. An empty id
/// cannot be used to find the key's other half or to cache its handle.
///
/// ```
/// use cryptoki_ops::keys::check_id;
/// assert!(check_id(&[1, 2, 3]).is_ok());
/// assert!(check_id(&[]).is_err());
/// assert!(check_id(&[0; 33]).is_err());
/// ```
pub fn check_id(id: &[u8]) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidInput {
            what: "key id",
            reason: format!(
                "a CKA_ID is 1 to 32 bytes; this one is {} bytes long",
                id.len()
            ),
        });
    }
    Ok(())
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

/// Which key: by label or by `CKA_ID`.
///
/// Parsed from text as `id:HEX` or otherwise a label:
/// ```
/// use cryptoki_ops::KeySelector;
/// assert_eq!("baker".parse::<KeySelector>()?, KeySelector::Label("baker".into()));
/// assert_eq!("id:0a0b".parse::<KeySelector>()?, KeySelector::Id(vec![0x0a, 0x0b]));
/// assert!("id:xyz".parse::<KeySelector>().is_err());
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySelector {
    /// `CKA_LABEL`.
    Label(String),
    /// `CKA_ID`.
    Id(Vec<u8>),
}

impl FromStr for KeySelector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.strip_prefix("id:") {
            Some(id) => hex::decode(id)
                .map(Self::Id)
                .map_err(|e| Error::InvalidInput {
                    what: "key id",
                    reason: format!("'{id}' is not hex ({e}); write the CKA_ID as id:0a1b2c..."),
                }),
            None if s.is_empty() => Err(Error::InvalidInput {
                what: "key label",
                reason: "the label is empty".into(),
            }),
            None => Ok(Self::Label(s.to_string())),
        }
    }
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(l) => write!(f, "'{l}'"),
            Self::Id(id) => write!(f, "with id {}", hex::encode(id)),
        }
    }
}

impl KeySelector {
    fn attribute(&self) -> Attribute {
        match self {
            Self::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
            Self::Id(id) => Attribute::Id(id.clone()),
        }
    }
}

/// What to generate: an EC key pair.
///
/// ```
/// use cryptoki_ops::{Curve, EcKeySpec};
/// let spec = EcKeySpec::new(Curve::P256, "baker");
/// assert!(!spec.backupable); // non-extractable unless asked
/// let spec = spec.backupable();
/// assert!(spec.backupable);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcKeySpec {
    /// The curve.
    pub curve: Curve,
    /// `CKA_LABEL` of both halves; must not be taken yet.
    pub label: String,
    /// `CKA_ID` of both halves; 8 random bytes from the token when `None`.
    pub id: Option<Vec<u8>>,
    /// Extractable, but only wrapped under a trusted wrapping key (`CKA_WRAP_WITH_TRUSTED`;
    /// generation fails on a module that refuses it). Off by default.
    pub backupable: bool,
}

impl EcKeySpec {
    /// A non-extractable key pair on `curve` labelled `label`.
    pub fn new(curve: Curve, label: impl Into<String>) -> Self {
        Self {
            curve,
            label: label.into(),
            id: None,
            backupable: false,
        }
    }

    /// Makes the private key backup-able (see the module's attribute table).
    pub fn backupable(mut self) -> Self {
        self.backupable = true;
        self
    }

    /// Sets the `CKA_ID`.
    pub fn with_id(mut self, id: Vec<u8>) -> Self {
        self.id = Some(id);
        self
    }
}

/// What to generate or import: an AES-256 wrapping key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappingKeySpec {
    /// `CKA_LABEL`; must not be taken yet.
    pub label: String,
    /// `CKA_ID`; 8 random bytes from the token when `None`.
    pub id: Option<Vec<u8>>,
    /// `CKA_TRUSTED`: may wrap keys marked `CKA_WRAP_WITH_TRUSTED`. Needs an [`Hsm`] opened as
    /// [`crate::Role::SecurityOfficer`].
    pub trusted: bool,
}

impl WrappingKeySpec {
    /// An untrusted AES-256 wrapping key labelled `label`.
    ///
    /// ```
    /// let spec = cryptoki_ops::WrappingKeySpec::new("backup-wrap").trusted();
    /// assert!(spec.trusted);
    /// ```
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            id: None,
            trusted: false,
        }
    }

    /// Marks it trusted (SO only).
    pub fn trusted(mut self) -> Self {
        self.trusted = true;
        self
    }
}

/// The kind of object a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    /// `CKO_PRIVATE_KEY`.
    Private,
    /// `CKO_PUBLIC_KEY`.
    Public,
    /// `CKO_SECRET_KEY` (AES wrapping keys).
    Secret,
}

impl KeyClass {
    fn object_class(self) -> ObjectClass {
        match self {
            Self::Private => ObjectClass::PRIVATE_KEY,
            Self::Public => ObjectClass::PUBLIC_KEY,
            Self::Secret => ObjectClass::SECRET_KEY,
        }
    }

    fn from_object_class(class: ObjectClass) -> Option<Self> {
        match class {
            ObjectClass::PRIVATE_KEY => Some(Self::Private),
            ObjectClass::PUBLIC_KEY => Some(Self::Public),
            ObjectClass::SECRET_KEY => Some(Self::Secret),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Private => "private key",
            Self::Public => "public key",
            Self::Secret => "secret key",
        }
    }

    /// Stable lower-case name: `private`, `public`, `secret`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
            Self::Secret => "secret",
        }
    }
}

/// What a token says about one key object. Attributes the token does not reveal are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `CKA_LABEL` (lossy UTF-8).
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// Object class.
    pub class: KeyClass,
    /// `CKA_KEY_TYPE`, e.g. `CKK_EC`, `CKK_AES`.
    pub key_type: String,
    /// Curve, for EC keys on a supported curve.
    pub curve: Option<Curve>,
    /// `CKA_EXTRACTABLE` (private and secret keys).
    pub extractable: Option<bool>,
    /// `CKA_SENSITIVE` (private and secret keys).
    pub sensitive: Option<bool>,
    /// `CKA_WRAP_WITH_TRUSTED`.
    pub wrap_with_trusted: Option<bool>,
    /// `CKA_TRUSTED`.
    pub trusted: Option<bool>,
    /// `CKA_CHECK_VALUE` (secret keys: first 3 bytes of AES-ECB of a zero block), identifies a
    /// wrapping key without revealing it.
    pub check_value: Option<Vec<u8>>,
}

impl KeyInfo {
    /// The id as lower-case hex.
    pub fn id_hex(&self) -> String {
        hex::encode(&self.id)
    }
}

/// A generated or found EC key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairInfo {
    /// The private half's metadata.
    pub private: KeyInfo,
    /// The public key, checked on the curve.
    pub public_key: PublicKey,
}

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

fn existing_labels(session: &Session, class: KeyClass) -> Result<String, Fail> {
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

/// The private half's template: the policy of the module docs, in one place.
pub(crate) fn private_key_template(
    curve: Curve,
    label: &str,
    id: &[u8],
    backupable: bool,
) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(curve.key_type()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Extractable(backupable),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    if backupable {
        template.push(Attribute::WrapWithTrusted(true));
    }
    template
}

/// The public half's template; `ec_point` is given when the object is created from a known
/// point (restore, replication) rather than generated.
pub(crate) fn public_key_template(
    curve: Curve,
    label: &str,
    id: &[u8],
    ec_point: Option<Vec<u8>>,
) -> Vec<Attribute> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(curve.key_type()),
        Attribute::Token(true),
        // CloudHSM refuses anything but its default, true (AWS CloudHSM user guide, "PKCS #11
        // attributes", footnote 1): see the module docs.
        Attribute::Private(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::EcParams(curve.ec_params().to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    template.extend(ec_point.map(Attribute::EcPoint));
    template
}

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
