//! Which watermarks a key may sign: [`KeyPolicy`].

use crate::payload::{self, Watermark};

/// Which watermarks a key may sign, configured per key.
///
/// ```
/// use tezos_keys::high_watermark::KeyPolicy;
/// use tezos_keys::payload::Watermark;
/// assert!(KeyPolicy::baking().allows(Watermark::Attestation));
/// assert!(!KeyPolicy::custody().allows(Watermark::Block));
/// let policy = KeyPolicy::from_allow_list("0x11,0x12,0x13")?; // like octez-signer --magic-bytes
/// assert!(!policy.allows(Watermark::Generic));
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The watermarks this key may sign.
    pub allowed: Vec<Watermark>,
}

impl KeyPolicy {
    /// A policy allowing exactly `allowed`.
    pub fn new(allowed: impl IntoIterator<Item = Watermark>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }

    /// A baking key: blocks, preattestations, attestations (`0x11`–`0x13`) and generic
    /// operations (`0x03`: reveal, stake, delegation, ballots…). Not the legacy `0x01`/`0x02`,
    /// which no current protocol uses: add them with [`KeyPolicy::new`] if needed.
    pub fn baking() -> Self {
        Self::new([
            Watermark::Block,
            Watermark::Preattestation,
            Watermark::Attestation,
            Watermark::Generic,
        ])
    }

    /// A custody key: generic operations (`0x03`) and Michelson data (`0x05`), never consensus.
    pub fn custody() -> Self {
        Self::new([Watermark::Generic, Watermark::Michelson])
    }

    /// Every known watermark (tests, or a key the operator vouches for).
    pub fn all() -> Self {
        Self::new(Watermark::ALL)
    }

    /// A policy from a comma-separated list such as `0x11,0x12,0x13` or `generic,michelson`
    /// ([`payload::parse_allow_list`]).
    ///
    /// # Errors
    /// [`crate::Error::InvalidWatermarkName`] for an entry not understood.
    pub fn from_allow_list(list: &str) -> crate::Result<Self> {
        payload::parse_allow_list(list).map(Self::new)
    }

    /// Whether `watermark` may be signed.
    pub fn allows(&self, watermark: Watermark) -> bool {
        self.allowed.contains(&watermark)
    }
}
