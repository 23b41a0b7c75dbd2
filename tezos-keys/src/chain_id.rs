//! Tezos chain ids (`Net…`).

use core::fmt;
use core::str::FromStr;

use crate::base58::{self, Prefix};
use crate::error::{Error, Result};

/// A 4-byte Tezos chain id, written `Net…` in base58check.
///
/// ```
/// use tezos_keys::ChainId;
/// let mainnet: ChainId = "NetXdQprcVkpaWU".parse()?;
/// assert_eq!(mainnet.as_bytes(), &[0x7a, 0x06, 0xa7, 0x70]);
/// assert_eq!(mainnet.to_string(), "NetXdQprcVkpaWU");
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId([u8; 4]);

impl ChainId {
    /// Tezos mainnet, `NetXdQprcVkpaWU`.
    pub const MAINNET: Self = Self([0x7a, 0x06, 0xa7, 0x70]);

    /// Wrap raw chain id bytes.
    pub const fn from_bytes(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// Read a chain id from a slice that must be exactly 4 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        <[u8; 4]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidLength {
                what: "a chain id",
                expected: "4".to_owned(),
                actual: bytes.len(),
            })
    }

    /// The `Net…` text form.
    pub fn to_base58(&self) -> String {
        // The payload length is right by construction; fall back to hex
        // rather than panic if that ever changes.
        base58::encode(Prefix::Net, &self.0).unwrap_or_else(|_| hex::encode(self.0))
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl FromStr for ChainId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (_, bytes) = base58::decode(s, &[Prefix::Net])?;
        Self::from_slice(&bytes)
    }
}
