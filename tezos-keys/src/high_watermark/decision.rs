//! The comparison at the heart of the guard: a requested height against the record.

use core::cmp::Ordering;

use super::{Height, Mark};
use crate::Signature;

/// What the guard does with a consensus payload, given the record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Above the record (or no record): sign and record.
    Sign,
    /// The very same payload as recorded: return this signature again.
    Replay(Signature),
    /// Refuse, citing the recorded height.
    Refuse(Height),
}

pub(super) fn decide(recorded: Option<&Mark>, requested: Height, digest: &[u8; 32]) -> Decision {
    let Some(mark) = recorded else {
        return Decision::Sign;
    };
    match requested.compare(&mark.height) {
        Ordering::Greater => Decision::Sign,
        Ordering::Equal => match (mark.digest, mark.signature) {
            (Some(recorded), Some(signature)) if recorded == *digest => Decision::Replay(signature),
            // Other bytes at a signed height, or anything at a floor's height.
            _ => Decision::Refuse(mark.height),
        },
        Ordering::Less => Decision::Refuse(mark.height),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Curve;

    const MINE: [u8; 32] = [1; 32];
    const OTHER: [u8; 32] = [2; 32];
    const SIG: Signature = Signature::new(Curve::Ed25519, [7; 64]);

    fn h(level: u32, round: Option<u32>) -> Height {
        Height { level, round }
    }

    /// One row: recorded height (or none), requested height, same bytes?, expected decision.
    macro_rules! row {
        ($name:ident: none, $req:expr, $same:expr => $expected:ident) => {
            #[test]
            fn $name() {
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(None, $req, &digest), Decision::$expected);
            }
        };
        ($name:ident: $rec:expr, $req:expr, $same:expr => Refuse) => {
            #[test]
            fn $name() {
                let mark = Mark::signed($rec, MINE, SIG);
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(Some(&mark), $req, &digest), Decision::Refuse($rec));
            }
        };
        ($name:ident: $rec:expr, $req:expr, $same:expr => Replay) => {
            #[test]
            fn $name() {
                let mark = Mark::signed($rec, MINE, SIG);
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(Some(&mark), $req, &digest), Decision::Replay(SIG));
            }
        };
        ($name:ident: $rec:expr, $req:expr, $same:expr => Sign) => {
            #[test]
            fn $name() {
                let mark = Mark::signed($rec, MINE, SIG);
                let digest = if $same { MINE } else { OTHER };
                assert_eq!(decide(Some(&mark), $req, &digest), Decision::Sign);
            }
        };
    }

    row!(first_use_signs: none, h(5, Some(0)), false => Sign);
    row!(higher_level_signs: h(5, Some(3)), h(6, Some(0)), false => Sign);
    row!(higher_round_signs: h(5, Some(0)), h(5, Some(1)), false => Sign);
    row!(same_height_same_bytes_replays: h(5, Some(1)), h(5, Some(1)), true => Replay);
    row!(same_height_other_bytes_refused: h(5, Some(1)), h(5, Some(1)), false => Refuse);
    row!(lower_round_refused: h(5, Some(1)), h(5, Some(0)), false => Refuse);
    row!(lower_round_same_bytes_refused: h(5, Some(1)), h(5, Some(0)), true => Refuse);
    row!(lower_level_refused: h(5, Some(0)), h(4, Some(9)), false => Refuse);
    row!(lower_level_same_bytes_refused: h(5, Some(0)), h(4, Some(0)), true => Refuse);
    row!(legacy_higher_level_signs: h(5, None), h(6, None), false => Sign);
    row!(legacy_same_level_replays: h(5, None), h(5, None), true => Replay);
    row!(legacy_same_level_refused: h(5, None), h(5, None), false => Refuse);
    row!(legacy_lower_level_refused: h(5, None), h(4, None), true => Refuse);
    row!(mixed_same_level_refused: h(5, Some(0)), h(5, None), false => Refuse);
    row!(mixed_round_ignored_refused: h(5, None), h(5, Some(9)), false => Refuse);
    row!(mixed_higher_level_signs: h(5, Some(9)), h(6, None), false => Sign);

    #[test]
    fn a_floor_refuses_its_height_and_below_even_for_the_same_bytes() {
        let floor = Mark::floor(h(5, Some(1)));
        for (requested, expected) in [
            (h(5, Some(1)), Decision::Refuse(h(5, Some(1)))),
            (h(5, Some(0)), Decision::Refuse(h(5, Some(1)))),
            (h(4, Some(9)), Decision::Refuse(h(5, Some(1)))),
            (h(5, Some(2)), Decision::Sign),
            (h(6, Some(0)), Decision::Sign),
        ] {
            assert_eq!(
                decide(Some(&floor), requested, &MINE),
                expected,
                "{requested}"
            );
        }
        // A digest without a signature (imported from a signer that kept none): a floor too.
        let hashed = Mark {
            digest: Some(MINE),
            ..floor
        };
        assert_eq!(
            decide(Some(&hashed), h(5, Some(1)), &MINE),
            Decision::Refuse(h(5, Some(1)))
        );
        // A legacy floor without a round refuses its whole level.
        let legacy = Mark::floor(h(5, None));
        assert_eq!(
            decide(Some(&legacy), h(5, Some(9)), &MINE),
            Decision::Refuse(h(5, None))
        );
        assert_eq!(decide(Some(&legacy), h(6, Some(0)), &MINE), Decision::Sign);
    }
}
