//! Which key: [`KeySelector`], by label or by `CKA_ID`.

use std::fmt;
use std::str::FromStr;

use cryptoki::object::Attribute;

use crate::error::{Error, Result};

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
    pub(super) fn attribute(&self) -> Attribute {
        match self {
            Self::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
            Self::Id(id) => Attribute::Id(id.clone()),
        }
    }
}
