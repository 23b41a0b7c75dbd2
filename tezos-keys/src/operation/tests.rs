//! Hand-built contents for the kinds the independent forgers (fixtures/operations) cannot make,
//! the staking pseudo-operations' edge cases, every refusal, and the no-panic property.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use OperationKind as K;

const SOURCE: [u8; 21] = [0; 21]; // tz1 with hash 00..00
const OTHER: [u8; 21] = [1; 21]; // tz2 with hash 01..01

fn request(contents: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(&[0xbb; 32]);
    for c in contents {
        p.extend_from_slice(c);
    }
    p
}

/// Tag, source, fee 1, counter 2, gas 3, storage 4.
fn manager(tag: u8, source: &[u8; 21]) -> Vec<u8> {
    let mut c = vec![tag];
    c.extend_from_slice(source);
    c.extend_from_slice(&[1, 2, 3, 4]);
    c
}

fn dynamic(bytes: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A transaction of 5 mutez from SOURCE to `dest` (implicit) with an entrypoint.
fn call(dest: &[u8; 21], entrypoint: &[u8]) -> Vec<u8> {
    let mut c = manager(108, &SOURCE);
    c.push(5); // amount
    c.push(0); // implicit contract
    c.extend_from_slice(dest);
    c.push(0xff); // parameters present
    c.extend_from_slice(entrypoint);
    c.extend_from_slice(&dynamic(&[0x03, 0x0b])); // Unit
    c
}

fn kinds(payload: &[u8]) -> Vec<OperationKind> {
    decode(payload).unwrap().kinds
}

#[test]
fn staking_pseudo_operations_need_the_source_as_destination() {
    assert_eq!(kinds(&request(&[&call(&SOURCE, &[6])])), [K::Stake]);
    assert_eq!(kinds(&request(&[&call(&SOURCE, &[7])])), [K::Unstake]);
    assert_eq!(
        kinds(&request(&[&call(&SOURCE, &[8])])),
        [K::FinalizeUnstake]
    );
    assert_eq!(
        kinds(&request(&[&call(&SOURCE, &[9])])),
        [K::SetDelegateParameters]
    );
    // To another account it is no staking operation (the protocol refuses it): a transaction.
    assert_eq!(kinds(&request(&[&call(&OTHER, &[6])])), [K::Transaction]);
    // A named entrypoint spelled "stake" is the stake entrypoint to the protocol.
    let mut named = vec![0xff, 5];
    named.extend_from_slice(b"stake");
    assert_eq!(kinds(&request(&[&call(&SOURCE, &named)])), [K::Stake]);
    let mut named = vec![0xff, 4];
    named.extend_from_slice(b"mint");
    assert_eq!(kinds(&request(&[&call(&SOURCE, &named)])), [K::Transaction]);
    // Builtin "do", "deposit": plain transactions.
    assert_eq!(kinds(&request(&[&call(&SOURCE, &[2])])), [K::Transaction]);
}

#[test]
fn rollup_and_anonymous_kinds_decode() {
    let mut cement = manager(202, &SOURCE);
    cement.extend_from_slice(&[9; 20]);
    let mut publish = manager(203, &SOURCE);
    publish.extend_from_slice(&[9; 20 + 76]);
    let mut timeout = manager(205, &SOURCE);
    timeout.extend_from_slice(&[9; 20]);
    timeout.extend_from_slice(&SOURCE);
    timeout.extend_from_slice(&OTHER);
    let mut recover = manager(207, &SOURCE);
    recover.extend_from_slice(&[9; 20]);
    recover.extend_from_slice(&OTHER);
    assert_eq!(
        kinds(&request(&[&cement, &publish, &timeout, &recover])),
        [
            K::SmartRollupCement,
            K::SmartRollupPublish,
            K::SmartRollupTimeout,
            K::SmartRollupRecoverBond
        ]
    );
    let mut nonce = vec![1];
    nonce.extend_from_slice(&[0; 36]);
    assert_eq!(kinds(&request(&[&nonce])), [K::SeedNonceRevelation]);
    let mut double = vec![2, 0, 1];
    double.extend_from_slice(&dynamic(&[1; 50]));
    double.extend_from_slice(&dynamic(&[2; 50]));
    assert_eq!(
        kinds(&request(&[&double])),
        [K::DoubleConsensusOperationEvidence]
    );
    let mut baking = vec![3];
    baking.extend_from_slice(&dynamic(&[1; 90]));
    baking.extend_from_slice(&dynamic(&[2; 90]));
    assert_eq!(kinds(&request(&[&baking])), [K::DoubleBakingEvidence]);
    let mut pre = vec![20];
    pre.extend_from_slice(&[0; 42]);
    assert_eq!(kinds(&request(&[&pre])), [K::Preattestation]);
    let mut agg = vec![31];
    agg.extend_from_slice(&[0; 40]);
    agg.extend_from_slice(&dynamic(&[0, 1, 0, 0, 2, 0]));
    assert_eq!(kinds(&request(&[&agg])), [K::AttestationsAggregate]);
}

#[test]
fn refusals_name_the_tag_field_and_offset() {
    assert_eq!(decode(&[]), Err(OperationError::Empty));
    assert_eq!(
        decode(&[0x11, 0]),
        Err(OperationError::NotGeneric { byte: 0x11 })
    );
    assert_eq!(decode(&request(&[])), Err(OperationError::NoContents));
    let err = decode(&[0x03, 1, 2]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "truncated operation: field branch at byte 1 needs 32 bytes, 2 left"
    );
    // Unknown tag after a valid content: its offset is after the first content.
    let reveal = {
        let mut c = manager(107, &SOURCE);
        c.push(0);
        c.extend_from_slice(&[7; 32]);
        c.push(0); // no proof
        c
    };
    let unknown_at = 33 + reveal.len();
    assert_eq!(
        decode(&request(&[&reveal, &[0xfe, 0, 0]])),
        Err(OperationError::UnknownTag {
            tag: 0xfe,
            offset: unknown_at
        })
    );
    // The signature prefix (0xff) never belongs in a signing request.
    assert!(matches!(
        decode(&request(&[&[0xff, 3]])),
        Err(OperationError::UnknownTag {
            tag: 0xff,
            offset: 33
        })
    ));
    // Known, not decoded: refused, not skipped.
    let refute = manager(204, &SOURCE);
    let err = decode(&request(&[&refute])).unwrap_err();
    assert_eq!(
        err,
        OperationError::NotDecoded {
            kind: K::SmartRollupRefute,
            tag: 204,
            offset: 33
        }
    );
    assert!(err
        .to_string()
        .contains("smart_rollup_refute (tag 204) at byte 33"));
    // A bad presence flag.
    let mut bad_flag = manager(110, &SOURCE);
    bad_flag.push(0x01);
    let err = decode(&request(&[&bad_flag])).unwrap_err();
    assert_eq!(err.kind(), "operation_invalid_field");
    assert!(
        err.to_string()
            .contains("invalid delegation: field delegate"),
        "{err}"
    );
    // A truncated batch tail.
    let mut truncated = request(&[&reveal]);
    truncated.extend_from_slice(&manager(108, &SOURCE)[..10]);
    let err = decode(&truncated).unwrap_err();
    assert_eq!(err.kind(), "operation_truncated");
    assert!(
        err.to_string()
            .starts_with("truncated transaction: field source"),
        "{err}"
    );
    // Non-manager contents are never batched.
    let mut ballot = vec![6];
    ballot.extend_from_slice(&SOURCE);
    ballot.extend_from_slice(&[0; 36]);
    ballot.push(0);
    assert_eq!(kinds(&request(&[&ballot])), [K::Ballot]);
    assert_eq!(
        decode(&request(&[&reveal, &ballot])),
        Err(OperationError::NotBatchable {
            kind: K::Ballot,
            offset: 33 + reveal.len()
        })
    );
    let mut bad_ballot = ballot.clone();
    *bad_ballot.last_mut().unwrap() = 3;
    assert_eq!(
        decode(&request(&[&bad_ballot])).unwrap_err().kind(),
        "operation_invalid_field"
    );
}

#[test]
fn error_kinds_are_stable() {
    let table = [
        (
            OperationError::NotGeneric { byte: 1 },
            "operation_not_generic",
        ),
        (OperationError::Empty, "operation_empty"),
        (OperationError::NoContents, "operation_no_contents"),
        (
            OperationError::UnknownTag { tag: 7, offset: 33 },
            "operation_unknown_tag",
        ),
        (
            OperationError::NotDecoded {
                kind: K::ZkRollupUpdate,
                tag: 252,
                offset: 33,
            },
            "operation_not_decoded",
        ),
        (
            OperationError::Truncated {
                kind: "reveal",
                field: "source",
                offset: 34,
                needed: 21,
                left: 2,
            },
            "operation_truncated",
        ),
        (
            OperationError::InvalidField {
                kind: "ballot",
                field: "ballot",
                offset: 90,
                reason: String::new(),
            },
            "operation_invalid_field",
        ),
        (
            OperationError::NotBatchable {
                kind: K::Ballot,
                offset: 40,
            },
            "operation_not_batchable",
        ),
        (
            OperationError::UnknownKindName { name: "x".into() },
            "unknown_operation_kind",
        ),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error}");
    }
}

proptest! {
    /// Random bytes after a generic watermark never panic, and an accepted request has one
    /// kind per content at most.
    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut payload = vec![0x03];
        payload.extend_from_slice(&body);
        if let Ok(op) = decode(&payload) {
            prop_assert!(!op.kinds.is_empty());
            prop_assert!(op.kinds.len() <= body.len());
        }
        let _ = decode(&body);
    }

    /// Every strict prefix of a valid batch is refused (contents carry no length, so a cut
    /// inside one is truncated, and a cut between two leaves fewer kinds) and never panics;
    /// a mutated byte never panics.
    #[test]
    fn truncated_and_mutated_batches_never_panic(cut in 0usize..200, at in 0usize..200, byte in any::<u8>()) {
        let mut reveal = manager(107, &SOURCE);
        reveal.push(0);
        reveal.extend_from_slice(&[7; 32]);
        reveal.push(0);
        let full = request(&[&reveal, &call(&SOURCE, &[6]), &call(&OTHER, &[0xff, 2, b'h', b'i'])]);
        prop_assert_eq!(decode(&full).unwrap().kinds, vec![K::Reveal, K::Stake, K::Transaction]);
        let cut = cut % full.len();
        match decode(&full[..cut]) {
            Ok(op) => prop_assert!(op.kinds.len() < 3),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let mut mutated = full.clone();
        let at = at % mutated.len();
        mutated[at] = byte;
        let _ = decode(&mutated);
    }
}
