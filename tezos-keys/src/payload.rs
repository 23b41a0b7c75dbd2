//! Signing requests: what kind of payload, and for consensus payloads the
//! chain, level and round, read at fixed offsets.
//!
//! Offsets follow Octez `src/bin_signer/handler.ml` (identical in
//! `tacoinfra/remote-signer:tezos_signer/sigreq.py`); see tezos.md §4–§5.
//! Only fixed offsets are read, never a full decode of the operation, so new
//! protocol operation tags do not break classification.
//!
//! The (pre)attestation offsets are those for tz1/tz2/tz3 signers, whose
//! operations carry a 2-byte slot before the level; a tz4 (BLS) attestation
//! has no slot (Octez handler, `is_bls`), and tz4 is not supported here.
//! `tests/real_payloads.rs` checks the offsets on real baker requests.

use core::fmt;
use core::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::blake2b_256;
use crate::ChainId;

/// The kind of a signing request, from its first (watermark / magic) byte.
///
/// This is the Tezos "watermark" prepended to signed bytes, not a signer's
/// *high*-watermark (the last level/round signed), which builds on
/// [`PayloadInfo`].
///
/// ```
/// use tezos_keys::payload::{self, Watermark};
/// let allowed = payload::parse_allow_list("0x11,0x12,attestation")?;
/// assert_eq!(allowed, vec![Watermark::Block, Watermark::Preattestation, Watermark::Attestation]);
/// assert!(allowed.iter().all(|w| w.is_consensus()));
/// assert_eq!(Watermark::Michelson.name(), "michelson");
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Watermark {
    /// `0x01`: legacy (Emmy) block header.
    LegacyBlock,
    /// `0x02`: legacy endorsement.
    LegacyEndorsement,
    /// `0x03`: generic operation (transfers, reveals, delegations, ballots…).
    Generic,
    /// `0x05`: Michelson data (`PACK`), signed by wallets and dApps.
    Michelson,
    /// `0x11`: Tenderbake block header.
    Block,
    /// `0x12`: Tenderbake preattestation (preendorsement).
    Preattestation,
    /// `0x13`: Tenderbake attestation (endorsement, also DAL attestation).
    Attestation,
}

impl Watermark {
    /// All known watermarks, in byte order.
    pub const ALL: [Self; 7] = [
        Self::LegacyBlock,
        Self::LegacyEndorsement,
        Self::Generic,
        Self::Michelson,
        Self::Block,
        Self::Preattestation,
        Self::Attestation,
    ];

    /// The watermark byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::LegacyBlock => 0x01,
            Self::LegacyEndorsement => 0x02,
            Self::Generic => 0x03,
            Self::Michelson => 0x05,
            Self::Block => 0x11,
            Self::Preattestation => 0x12,
            Self::Attestation => 0x13,
        }
    }

    /// The watermark for a byte, if known.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::LegacyBlock),
            0x02 => Some(Self::LegacyEndorsement),
            0x03 => Some(Self::Generic),
            0x05 => Some(Self::Michelson),
            0x11 => Some(Self::Block),
            0x12 => Some(Self::Preattestation),
            0x13 => Some(Self::Attestation),
            _ => None,
        }
    }

    /// A stable lower-case name, for logs, files and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Self::LegacyBlock => "legacy_block",
            Self::LegacyEndorsement => "legacy_endorsement",
            Self::Generic => "generic",
            Self::Michelson => "michelson",
            Self::Block => "block",
            Self::Preattestation => "preattestation",
            Self::Attestation => "attestation",
        }
    }

    /// Whether this is a consensus message (block, preattestation,
    /// attestation, and their legacy forms): the kinds that carry a level and
    /// that a high-watermark must guard against double signing.
    pub const fn is_consensus(self) -> bool {
        !matches!(self, Self::Generic | Self::Michelson)
    }

    /// The minimum payload length (watermark included) needed to read the
    /// fields this module extracts.
    pub const fn min_len(self) -> usize {
        match self {
            Self::Generic | Self::Michelson => 1,
            // wm 1, chain 4, level 4
            Self::LegacyBlock => 9,
            // wm 1, chain 4, branch 32, tag 1, level 4
            Self::LegacyEndorsement => 42,
            // …, fitness length int32 at 83..87
            Self::Block => BLOCK_FITNESS_LEN_OFFSET + 4,
            // wm 1, chain 4, branch 32, kind 1, slot 2, level 4, round 4
            Self::Preattestation | Self::Attestation => 48,
        }
    }
}

impl TryFrom<u8> for Watermark {
    type Error = Error;

    /// The watermark for a byte; [`Error::UnknownWatermark`] otherwise.
    fn try_from(byte: u8) -> Result<Self> {
        Self::from_byte(byte).ok_or(Error::UnknownWatermark { byte })
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Watermark {
    type Err = Error;

    /// Accepts `0x11` / `0X11` (hex), `17` (decimal) or a name (`block`).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let byte = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            u8::from_str_radix(hex, 16).ok()
        } else if t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse::<u8>().ok()
        } else {
            None
        };
        byte.and_then(Self::from_byte)
            .or_else(|| {
                Self::ALL
                    .into_iter()
                    .find(|w| w.name().eq_ignore_ascii_case(t))
            })
            .ok_or_else(|| Error::InvalidWatermarkName {
                input: t.chars().take(40).collect(),
            })
    }
}

/// Parse a comma-separated list of watermarks, e.g. `0x11,0x12,0x13` for a
/// CLI `--allow` option (like `octez-signer --magic-bytes`). Duplicates are
/// removed; order is kept.
///
/// # Errors
/// [`Error::InvalidWatermarkName`] for the first entry not understood
/// (including an empty entry).
pub fn parse_allow_list(list: &str) -> Result<Vec<Watermark>> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let w: Watermark = item.parse()?;
        if !out.contains(&w) {
            out.push(w);
        }
    }
    Ok(out)
}

const BLOCK_FITNESS_LEN_OFFSET: usize = 1 + 4 + 4 + 1 + 32 + 8 + 1 + 32; // 83

/// What a payload is, and the consensus fields it carries.
///
/// ```
/// use tezos_keys::payload::{self, Watermark};
/// use tezos_keys::ChainId;
/// let mut att = vec![0x13];
/// att.extend_from_slice(ChainId::MAINNET.as_bytes());
/// att.extend_from_slice(&[0; 32]); // branch
/// att.extend_from_slice(&[0x15, 0, 0]); // kind, slot
/// att.extend_from_slice(&1_000_000u32.to_be_bytes()); // level
/// att.extend_from_slice(&2u32.to_be_bytes()); // round
/// att.extend_from_slice(&[0; 32]); // block payload hash
/// let info = payload::classify(&att)?;
/// assert_eq!(info.watermark, Watermark::Attestation);
/// assert_eq!(info.chain_id, Some(ChainId::MAINNET));
/// assert_eq!((info.level, info.round), (Some(1_000_000), Some(2)));
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PayloadInfo {
    /// The kind, from the first byte.
    pub watermark: Watermark,
    /// The chain id, for the kinds that carry one (all but 0x03 and 0x05).
    pub chain_id: Option<ChainId>,
    /// The level, for consensus kinds.
    pub level: Option<u32>,
    /// The round, for Tenderbake consensus kinds (0x11, 0x12, 0x13).
    pub round: Option<u32>,
}

impl fmt::Display for PayloadInfo {
    /// For logs: `attestation (0x13) on NetXdQprcVkpaWU level 5 round 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02x})", self.watermark, self.watermark.byte())?;
        if let Some(chain_id) = self.chain_id {
            write!(f, " on {chain_id}")?;
        }
        if let Some(level) = self.level {
            write!(f, " level {level}")?;
        }
        if let Some(round) = self.round {
            write!(f, " round {round}")?;
        }
        Ok(())
    }
}

/// Classify a payload (watermark byte included) and read its chain id,
/// level and round where the format carries them.
///
/// # Errors
/// [`Error::EmptyPayload`], [`Error::UnknownWatermark`],
/// [`Error::TruncatedPayload`] (saying the watermark, the minimum length and
/// the actual length), or [`Error::InvalidPayload`] for a negative level or
/// round, or a block whose fitness length is impossible.
pub fn classify(payload: &[u8]) -> Result<PayloadInfo> {
    let &byte = payload.first().ok_or(Error::EmptyPayload)?;
    let watermark = Watermark::from_byte(byte).ok_or(Error::UnknownWatermark { byte })?;
    let truncated = |min| Error::TruncatedPayload {
        byte,
        name: watermark.name(),
        min,
        actual: payload.len(),
    };
    let invalid = |reason: String| Error::InvalidPayload {
        byte,
        name: watermark.name(),
        reason,
    };
    if payload.len() < watermark.min_len() {
        return Err(truncated(watermark.min_len()));
    }
    let int32 = |offset: usize, field: &str| -> Result<u32> {
        let bytes = payload
            .get(offset..)
            .and_then(|rest| rest.first_chunk::<4>())
            .ok_or_else(|| truncated(offset.saturating_add(4)))?;
        let value = i32::from_be_bytes(*bytes);
        u32::try_from(value)
            .map_err(|_| invalid(format!("{field} at byte {offset} is negative ({value})")))
    };
    let chain = || -> Result<ChainId> {
        payload
            .get(1..5)
            .ok_or_else(|| truncated(5))
            .and_then(ChainId::from_slice)
    };
    let info = |chain_id, level, round| PayloadInfo {
        watermark,
        chain_id,
        level,
        round,
    };
    Ok(match watermark {
        Watermark::Generic | Watermark::Michelson => info(None, None, None),
        Watermark::LegacyBlock => info(Some(chain()?), Some(int32(5, "level")?), None),
        Watermark::LegacyEndorsement => {
            let offset = payload.len().saturating_sub(4);
            info(Some(chain()?), Some(int32(offset, "level")?), None)
        }
        Watermark::Block => {
            let fitness_len = int32(BLOCK_FITNESS_LEN_OFFSET, "fitness length")?;
            let fitness_len = usize::try_from(fitness_len)
                .map_err(|_| invalid(format!("fitness length {fitness_len} is too large")))?;
            if fitness_len < 4 {
                return Err(invalid(format!(
                    "fitness is {fitness_len} bytes, too short to hold a round (4 bytes)"
                )));
            }
            let round_offset = BLOCK_FITNESS_LEN_OFFSET.saturating_add(fitness_len);
            info(
                Some(chain()?),
                Some(int32(5, "level")?),
                Some(int32(round_offset, "round")?),
            )
        }
        Watermark::Preattestation | Watermark::Attestation => info(
            Some(chain()?),
            Some(int32(40, "level")?),
            Some(int32(44, "round")?),
        ),
    })
}

/// The digest every Tezos curve signs: BLAKE2b-256 of the whole payload,
/// watermark included (tezos.md §4).
///
/// ```
/// let d = tezos_keys::payload::digest(&[0x03, 0x12, 0x34]);
/// assert_eq!(d.len(), 32);
/// ```
pub fn digest(payload: &[u8]) -> [u8; 32] {
    blake2b_256(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(level: u32, fitness: &[u8]) -> Vec<u8> {
        let mut b = vec![0x11, 0x7a, 0x06, 0xa7, 0x70];
        b.extend_from_slice(&level.to_be_bytes());
        b.push(7); // proto
        b.extend_from_slice(&[0xaa; 32]); // predecessor
        b.extend_from_slice(&[0; 8]); // timestamp
        b.push(4); // validation passes
        b.extend_from_slice(&[0xbb; 32]); // operations hash
        assert_eq!(b.len(), BLOCK_FITNESS_LEN_OFFSET);
        b.extend_from_slice(&u32::try_from(fitness.len()).expect("small").to_be_bytes());
        b.extend_from_slice(fitness);
        b.extend_from_slice(&[0xcc; 40]); // rest of the header
        b
    }

    #[test]
    fn block_round_is_last_four_fitness_bytes() {
        // Tenderbake fitness: version, level, locked round, predecessor round, round.
        let mut fitness = vec![
            0, 0, 0, 1, 2, 0, 0, 0, 4, 0, 0, 0, 0, 4, 0, 0, 0, 0, 4, 0, 0, 0, 3,
        ];
        let info = classify(&block(42, &fitness)).expect("valid block");
        assert_eq!(info.watermark, Watermark::Block);
        assert_eq!(info.chain_id, Some(ChainId::MAINNET));
        assert_eq!((info.level, info.round), (Some(42), Some(3)));
        assert_eq!(
            info.to_string(),
            "block (0x11) on NetXdQprcVkpaWU level 42 round 3"
        );
        fitness.truncate(3);
        assert!(matches!(
            classify(&block(42, &fitness)),
            Err(Error::InvalidPayload { byte: 0x11, .. })
        ));
    }

    #[test]
    fn block_with_fitness_past_the_end_is_truncated() {
        let mut b = block(1, &[0, 0, 0, 1]);
        b.truncate(BLOCK_FITNESS_LEN_OFFSET + 4);
        b.splice(
            BLOCK_FITNESS_LEN_OFFSET..BLOCK_FITNESS_LEN_OFFSET + 4,
            100u32.to_be_bytes(),
        );
        let err = classify(&b).expect_err("must fail");
        assert!(
            matches!(
                err,
                Error::TruncatedPayload {
                    byte: 0x11,
                    min: 187,
                    actual: 87,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn distinct_errors() {
        assert_eq!(classify(&[]), Err(Error::EmptyPayload));
        assert_eq!(
            classify(&[0x04, 1, 2]),
            Err(Error::UnknownWatermark { byte: 0x04 })
        );
        let err = classify(&[0x12, 0, 0]).expect_err("truncated");
        assert_eq!(
            err.to_string(),
            "truncated preattestation payload (watermark 0x12): needs at least 48 bytes, got 3"
        );
    }

    #[test]
    fn negative_level_rejected() {
        let mut p = vec![0x13; 48];
        p.splice(40..44, (-1i32).to_be_bytes());
        assert!(matches!(classify(&p), Err(Error::InvalidPayload { .. })));
    }

    #[test]
    fn legacy_forms() {
        let mut p = vec![0x01, 1, 2, 3, 4];
        p.extend_from_slice(&9u32.to_be_bytes());
        let info = classify(&p).expect("legacy block");
        assert_eq!((info.level, info.round), (Some(9), None));
        let mut e = vec![0x02, 1, 2, 3, 4];
        e.extend_from_slice(&[0; 33]);
        e.extend_from_slice(&77u32.to_be_bytes());
        let info = classify(&e).expect("legacy endorsement");
        assert_eq!(info.chain_id, Some(ChainId::from_bytes([1, 2, 3, 4])));
        assert_eq!(info.level, Some(77));
    }

    #[test]
    fn generic_has_no_fields() {
        let info = classify(&[0x03, 0x12, 0x34]).expect("generic");
        assert_eq!(info.watermark, Watermark::Generic);
        assert!(!info.watermark.is_consensus());
        assert_eq!((info.chain_id, info.level, info.round), (None, None, None));
    }

    #[test]
    fn watermark_names_and_bytes_round_trip() {
        for w in Watermark::ALL {
            assert_eq!(Watermark::from_byte(w.byte()), Some(w));
            assert_eq!(w.name().parse::<Watermark>(), Ok(w));
            assert_eq!(format!("0x{:02x}", w.byte()).parse::<Watermark>(), Ok(w));
        }
        assert!("0x04".parse::<Watermark>().is_err());
        assert_eq!(Watermark::try_from(0x12), Ok(Watermark::Preattestation));
        assert_eq!(
            Watermark::try_from(0x04),
            Err(Error::UnknownWatermark { byte: 0x04 })
        );
        assert!(parse_allow_list("0x11,,0x12").is_err());
        assert_eq!(
            parse_allow_list(" 0x11 , 0x11,block").expect("valid"),
            vec![Watermark::Block]
        );
    }
}
