//! Generic operations forged by two implementations that share no code with this crate —
//! PyTezos (`fixtures/operations/pytezos.json`, by `forge_pytezos.py`) and Taquito's
//! `@taquito/local-forging` (`taquito.json`, by `forge_taquito.js`) — decode to the kinds the
//! forger was asked for, content by content; and every strict prefix of each is refused or
//! decodes to fewer contents (no content is ever read past its end).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use tezos_keys::operation::{self, OperationKind};

fn vectors(file: &str) -> Vec<(String, Vec<OperationKind>, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/operations")
        .join(file);
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let kinds = v["kinds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| OperationKind::from_name(k.as_str().unwrap()).unwrap())
                .collect();
            (
                v["name"].as_str().unwrap().to_owned(),
                kinds,
                hex::decode(v["hex"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// Decodes every vector of `file`; returns (vectors, contents) checked and the kinds seen.
fn check(file: &str) -> (usize, usize, BTreeSet<OperationKind>) {
    let (mut count, mut contents, mut seen) = (0, 0, BTreeSet::new());
    for (name, expected, bytes) in vectors(file) {
        let decoded = operation::decode(&bytes).unwrap_or_else(|e| panic!("{file} {name}: {e}"));
        assert_eq!(decoded.kinds, expected, "{file} {name}");
        for cut in 1..bytes.len() {
            if let Ok(prefix) = operation::decode(&bytes[..cut]) {
                assert!(
                    prefix.kinds.len() < expected.len(),
                    "{file} {name} cut at {cut}"
                );
                assert_eq!(
                    prefix.kinds,
                    expected[..prefix.kinds.len()],
                    "{file} {name}"
                );
            }
        }
        count += 1;
        contents += expected.len();
        seen.extend(expected);
    }
    (count, contents, seen)
}

#[test]
fn pytezos_forged_operations_decode_to_their_kinds() {
    let (count, contents, seen) = check("pytezos.json");
    assert_eq!((count, contents), (26, 38));
    assert_eq!(seen.len(), 15, "{seen:?}");
}

#[test]
fn taquito_forged_operations_decode_to_their_kinds() {
    let (count, contents, seen) = check("taquito.json");
    assert_eq!((count, contents), (18, 22));
    assert!(seen.contains(&OperationKind::DrainDelegate));
    assert!(seen.contains(&OperationKind::UpdateConsensusKey));
    assert_eq!(seen.len(), 13, "{seen:?}");
}
