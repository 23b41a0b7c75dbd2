//! What to make: [`EcKeySpec`] (an EC key pair) and [`WrappingKeySpec`] (an AES-256 wrapping
//! key).

use crate::curve::Curve;
#[cfg(doc)]
use crate::hsm::Hsm;

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
