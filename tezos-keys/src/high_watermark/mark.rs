//! What the guard records: the consensus [`MarkKind`]s, a [`Height`], and the [`Mark`] last
//! signed for one key, chain and kind.

use core::cmp::Ordering;
use core::fmt;
use std::collections::BTreeMap;

use crate::payload::Watermark;
use crate::{ChainId, Signature};

/// The consensus kinds a watermark is kept for, one record each per key and chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkKind {
    /// Blocks: `0x11`, and legacy `0x01`.
    Block,
    /// Preattestations: `0x12`.
    Preattestation,
    /// Attestations: `0x13`, and legacy `0x02` endorsements.
    Attestation,
}

impl MarkKind {
    /// All kinds.
    pub const ALL: [Self; 3] = [Self::Block, Self::Preattestation, Self::Attestation];

    /// The kind whose record guards `watermark`; `None` for non-consensus payloads.
    pub const fn of(watermark: Watermark) -> Option<Self> {
        match watermark {
            Watermark::Block | Watermark::LegacyBlock => Some(Self::Block),
            Watermark::Preattestation => Some(Self::Preattestation),
            Watermark::Attestation | Watermark::LegacyEndorsement => Some(Self::Attestation),
            Watermark::Generic | Watermark::Michelson => None,
        }
    }

    /// A stable lower-case name, used in files and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Preattestation => "preattestation",
            Self::Attestation => "attestation",
        }
    }

    /// The kind with this [`MarkKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for MarkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A level and, for Tenderbake payloads, a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Height {
    /// The block level.
    pub level: u32,
    /// The round; `None` for legacy payloads, which have none.
    pub round: Option<u32>,
}

impl Height {
    /// A Tenderbake height.
    pub const fn new(level: u32, round: u32) -> Self {
        Self {
            level,
            round: Some(round),
        }
    }

    /// How `self` compares with `other`: by (level, round), or by level alone when either
    /// has no round (Octez, for legacy entries).
    pub fn compare(&self, other: &Self) -> Ordering {
        match (self.round, other.round) {
            (Some(a), Some(b)) => (self.level, a).cmp(&(other.level, b)),
            _ => self.level.cmp(&other.level),
        }
    }
}

impl fmt::Display for Height {
    /// `level 5 round 0`, or `level 5` without a round.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.level)?;
        if let Some(round) = self.round {
            write!(f, " round {round}")?;
        }
        Ok(())
    }
}

/// What was last signed for one key, chain and kind, or a floor set by an operator.
///
/// A mark with a signature is what the guard recorded after signing: the very same payload
/// (same digest) at its height gets that signature back. A mark without a signature is a
/// **floor** — set with `tezos-hsm watermark set`, or imported from a signer that kept no
/// signature (`watermark import`): every payload at or below its height is refused, since
/// nothing recorded can be returned for it.
///
/// ```
/// use tezos_keys::high_watermark::{Height, Mark};
/// let floor = Mark::floor(Height::new(100, 0));
/// assert!(floor.is_floor());
/// assert_eq!((floor.digest, floor.signature), (None, None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Its level and round.
    pub height: Height,
    /// BLAKE2b-256 of the signed payload, watermark included
    /// ([`payload::digest`](crate::payload::digest)); `None` for a floor set by hand.
    pub digest: Option<[u8; 32]>,
    /// The signature returned for it, returned again for an identical request; `None` for a
    /// floor.
    pub signature: Option<Signature>,
}

impl Mark {
    /// What the guard records after signing `digest` at `height`.
    pub const fn signed(height: Height, digest: [u8; 32], signature: Signature) -> Self {
        Self {
            height,
            digest: Some(digest),
            signature: Some(signature),
        }
    }

    /// A floor: everything at or below `height` is refused.
    pub const fn floor(height: Height) -> Self {
        Self {
            height,
            digest: None,
            signature: None,
        }
    }

    /// Whether this mark has no signature to return, so it refuses its own height too.
    pub const fn is_floor(&self) -> bool {
        self.signature.is_none()
    }
}

/// Everything recorded for one key: a [`Mark`] per (chain id, kind).
pub type KeyMarks = BTreeMap<(ChainId, MarkKind), Mark>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_cover_consensus_watermarks_only() {
        for w in Watermark::ALL {
            assert_eq!(MarkKind::of(w).is_some(), w.is_consensus(), "{w}");
        }
        for k in MarkKind::ALL {
            assert_eq!(MarkKind::from_name(k.name()), Some(k));
        }
    }
}
