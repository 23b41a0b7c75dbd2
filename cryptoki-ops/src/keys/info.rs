//! What a token says about a key: [`KeyClass`], [`KeyInfo`], [`KeyPairInfo`].

use cryptoki::object::ObjectClass;

use crate::curve::{Curve, PublicKey};

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
    pub(super) fn object_class(self) -> ObjectClass {
        match self {
            Self::Private => ObjectClass::PRIVATE_KEY,
            Self::Public => ObjectClass::PUBLIC_KEY,
            Self::Secret => ObjectClass::SECRET_KEY,
        }
    }

    pub(super) fn from_object_class(class: ObjectClass) -> Option<Self> {
        match class {
            ObjectClass::PRIVATE_KEY => Some(Self::Private),
            ObjectClass::PUBLIC_KEY => Some(Self::Public),
            ObjectClass::SECRET_KEY => Some(Self::Secret),
            _ => None,
        }
    }

    pub(super) fn noun(self) -> &'static str {
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
