//! [`KeyRules::check`] on real payloads: generic operations forged by PyTezos and Taquito
//! (`tezos-keys/fixtures/operations/`), and consensus requests a real baker sent
//! (`tezos-keys/tests/real_payloads.rs`, from ecadlabs/signatory `docs/debugging.md`@33d1d51c).
#![allow(clippy::unwrap_used)]

use super::*;
use OperationKind as K;

/// PyTezos: 1 tez from tz1b9kV… to tz2Ch1ab….
const TRANSFER: &str = "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b6c00aa28d5f811c6ab1cab6d03864481d0c0cdf7be238c0b07e852ac02c0843d00012ffebbf1560632ca767bc960ccdb84669d284c2c00";
/// PyTezos: reveal, then stake (a transaction to oneself with entrypoint `stake`).
const REVEAL_STAKE: &str = "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b6b00aa28d5f811c6ab1cab6d03864481d0c0cdf7be238c0b07e852ac02008bc1ef0944928b7fe9d7b7db1d4f15a4547c37dc7080844975dd4f8bdd6c89ea006c00aa28d5f811c6ab1cab6d03864481d0c0cdf7be238c0b08e852ac02c0843d0000aa28d5f811c6ab1cab6d03864481d0c0cdf7be23ff0600000002030b";
/// Taquito: drain_delegate.
const DRAIN: &str = "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b09012ffebbf1560632ca767bc960ccdb84669d284c2c00aa28d5f811c6ab1cab6d03864481d0c0cdf7be230203ba8658b6e5c7f5bc18df8b192f8733d511c6b5";
/// Taquito: reveal, then update_consensus_key (the dangerous one second in the batch).
const REVEAL_UCK: &str = "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b6b00aa28d5f811c6ab1cab6d03864481d0c0cdf7be238c0b07e852ac02008bc1ef0944928b7fe9d7b7db1d4f15a4547c37dc7080844975dd4f8bdd6c89ea007200aa28d5f811c6ab1cab6d03864481d0c0cdf7be238c0b08e852ac02020330ef59d5da4547c684aa0d5b7d8c1527fceab462cfd8d4a3529319c469b0d4d700";
/// Taquito: ballot yay.
const BALLOT: &str = "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b0600aa28d5f811c6ab1cab6d03864481d0c0cdf7be2300000083e41ebc12f00bf04d89ed0b1b5e97e63680d431753705726df9dbf7e9e512e19b00";
/// A mainnet attestation sent by a real baker (chain NetXdQprcVkpaWU).
const ATTESTATION: &str = "137a06a7703e47ad79416e7bdceb65156abdbcfd4b1237caf488cbfc39d88c836840bf0bc81509b9002513b8000000008c41b04d3a8648732fb22507447214aa698a235862f30b956e36a37a7d36eb7c";
/// The same as a preattestation.
const PREATTESTATION: &str = "127a06a7703e47ad79416e7bdceb65156abdbcfd4b1237caf488cbfc39d88c836840bf0bc81409b9002513b8000000008c41b04d3a8648732fb22507447214aa698a235862f30b956e36a37a7d36eb7c";

fn bytes(h: &str) -> Vec<u8> {
    hex::decode(h).unwrap()
}

fn baking() -> KeyRules {
    KeyRules::new(KeyPolicy::baking())
}

#[test]
fn without_an_allow_list_everything_decodable_but_the_dangerous_kinds_is_signed() {
    let rules = baking();
    for ok in [TRANSFER, REVEAL_STAKE, BALLOT, ATTESTATION, PREATTESTATION] {
        rules.check(&bytes(ok)).unwrap();
    }
    assert_eq!(
        rules.check(&bytes(DRAIN)),
        Err(PolicyError::OperationNotListed {
            kind: K::DrainDelegate,
            index: 0
        })
    );
    // Found second in a batch: every content is checked.
    let err = rules.check(&bytes(REVEAL_UCK)).unwrap_err();
    assert_eq!(
        err,
        PolicyError::OperationNotListed {
            kind: K::UpdateConsensusKey,
            index: 1
        }
    );
    assert_eq!(err.kind(), "policy_operation_not_listed");
    assert!(err.is_refusal());
    assert!(err
        .to_string()
        .contains("content 1 of the operation is update_consensus_key"));
}

#[test]
fn the_allow_list_applies_to_every_content_of_the_batch() {
    let mut rules = baking();
    rules.generic_operations = Some([K::Reveal, K::Transaction].into());
    rules.check(&bytes(TRANSFER)).unwrap();
    // reveal is listed, stake is not: the batch is refused at content 1.
    let err = rules.check(&bytes(REVEAL_STAKE)).unwrap_err();
    assert_eq!(err.kind(), "policy_operation_not_allowed");
    assert_eq!(
        err.to_string(),
        "content 1 of the operation is stake, which this key may not sign; its operation \
         allow-list: reveal, transaction"
    );
    rules.generic_operations = Some([K::Reveal, K::Stake].into());
    rules.check(&bytes(REVEAL_STAKE)).unwrap();
    assert_eq!(
        rules.check(&bytes(TRANSFER)).unwrap_err().kind(),
        "policy_operation_not_allowed"
    );
    // Dangerous kinds are signed once listed, and only then.
    assert_eq!(
        rules.check(&bytes(REVEAL_UCK)).unwrap_err().kind(),
        "policy_operation_not_allowed"
    );
    rules.generic_operations = Some([K::Reveal, K::UpdateConsensusKey].into());
    rules.check(&bytes(REVEAL_UCK)).unwrap();
    rules.generic_operations = Some([K::DrainDelegate].into());
    rules.check(&bytes(DRAIN)).unwrap();
    // An empty list allows no generic operation at all.
    rules.generic_operations = Some(BTreeSet::new());
    assert!(rules.check(&bytes(BALLOT)).is_err());
    // Consensus requests do not go through the operation list.
    rules.check(&bytes(ATTESTATION)).unwrap();
}

#[test]
fn undecodable_generic_operations_are_refused_even_without_an_allow_list() {
    let rules = baking();
    let mut unknown = bytes(TRANSFER);
    unknown[33] = 0x07; // the transaction's tag becomes one no protocol uses
    let err = rules.check(&unknown).unwrap_err();
    assert_eq!(err.kind(), "operation_unknown_tag");
    assert!(!err.is_refusal());
    assert!(
        err.to_string()
            .contains("unknown operation tag 7 (0x07) at byte 33"),
        "{err}"
    );
    let full = bytes(TRANSFER);
    let err = rules.check(&full[..full.len() - 3]).unwrap_err();
    assert_eq!(err.kind(), "operation_truncated");
    // A valid operation followed by garbage: the garbage is read as a content and refused.
    let mut trailing = bytes(TRANSFER);
    trailing.extend_from_slice(&[0x09, 0x00]);
    assert_eq!(
        rules.check(&trailing).unwrap_err().kind(),
        "operation_truncated"
    );
}

#[test]
fn kinds_and_chains() {
    let custody = KeyRules::new(KeyPolicy::custody());
    let err = custody.check(&bytes(ATTESTATION)).unwrap_err();
    assert_eq!(err.kind(), "policy_kind_not_allowed");
    assert_eq!(
        err.to_string(),
        "this key may not sign attestation (0x13) requests; it may sign: generic (0x03), \
         michelson (0x05)"
    );
    custody.check(&[0x05, 0x01, 0x00]).unwrap();

    let mut rules = baking();
    rules.chains = Some([ChainId::MAINNET].into());
    rules.check(&bytes(ATTESTATION)).unwrap();
    rules.check(&bytes(TRANSFER)).unwrap(); // no chain id in a generic operation
    let ghostnet: ChainId = "NetXnHfVqm9iesp".parse().unwrap();
    rules.chains = Some([ghostnet].into());
    let err = rules.check(&bytes(PREATTESTATION)).unwrap_err();
    assert_eq!(err.kind(), "policy_chain_not_allowed");
    assert!(
        err.to_string()
            .contains("chain NetXdQprcVkpaWU (preattestation request)"),
        "{err}"
    );
    rules.chains = Some(BTreeSet::new());
    assert_eq!(
        rules.check(&bytes(ATTESTATION)).unwrap_err().kind(),
        "policy_chain_not_allowed"
    );
}

#[test]
fn unreadable_requests() {
    let rules = KeyRules::new(KeyPolicy::all());
    for (request, kind) in [
        (&[][..], "invalid_input"),
        (&[0x04, 1][..], "invalid_input"),
        (&[0x13, 0, 0][..], "invalid_input"),
        (&[0x03][..], "operation_truncated"),
    ] {
        let err = rules.check(request).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(!err.is_refusal());
    }
}

#[test]
fn error_kinds_are_stable() {
    let table = [
        (
            PolicyError::Payload(tezos_keys::Error::EmptyPayload),
            "invalid_input",
        ),
        (
            PolicyError::Operation(OperationError::NoContents),
            "operation_no_contents",
        ),
        (
            PolicyError::KindNotAllowed {
                watermark: Watermark::Block,
                allowed: vec![],
            },
            "policy_kind_not_allowed",
        ),
        (
            PolicyError::ChainNotAllowed {
                watermark: Watermark::Block,
                chain: ChainId::MAINNET,
                allowed: vec![],
            },
            "policy_chain_not_allowed",
        ),
        (
            PolicyError::OperationNotAllowed {
                kind: K::Stake,
                index: 0,
                allowed: vec![],
            },
            "policy_operation_not_allowed",
        ),
        (
            PolicyError::OperationNotListed {
                kind: K::DrainDelegate,
                index: 0,
            },
            "policy_operation_not_listed",
        ),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error}");
    }
}
