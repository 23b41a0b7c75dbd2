//! Floors: marks without a signature (`watermark set`, `watermark import`), in the guard and in
//! the file store, and records written before floors existed read exactly as before.
#![allow(clippy::unwrap_used)]

mod high_watermark_support;

use std::fs;

use high_watermark_support::*;
use tezos_keys::high_watermark::{
    FileStore, GuardError, Height, HighWatermark, KeyMarks, KeyPolicy, Mark, MarkKind,
    WatermarkStore,
};
use tezos_keys::{ChainId, Signature};

/// A record as `FileStore` wrote it before floors existed (digest and signature always
/// present), byte for byte: the tz2 test key with an attestation mark and a legacy one.
fn v1_record(pkh: &str, signature: &str) -> String {
    format!(
        r#"{{
  "format": "tezos-keys high-watermark v1",
  "key": "{pkh}",
  "marks": [
    {{
      "chain": "NetXdQprcVkpaWU",
      "kind": "attestation",
      "level": 1000000,
      "round": 2,
      "digest": "{digest}",
      "signature": "{signature}"
    }},
    {{
      "chain": "NetXdQprcVkpaWU",
      "kind": "block",
      "level": 77,
      "round": null,
      "digest": "{digest}",
      "signature": "{signature}"
    }}
  ]
}}
"#,
        digest = hex::encode(tezos_keys::payload::digest(&attestation(1_000_000, 2, 1))),
    )
}

#[test]
fn records_written_before_floors_read_and_replay_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let payload = attestation(1_000_000, 2, 1);
    let signature = sk.sign(&payload).unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let path = store.path_for(&pkh);
    fs::write(&path, v1_record(&pkh.to_string(), &signature.to_string())).unwrap();

    let marks = store.load(&pkh).unwrap();
    let digest = tezos_keys::payload::digest(&payload);
    assert_eq!(
        marks[&(ChainId::MAINNET, MarkKind::Attestation)],
        Mark::signed(Height::new(1_000_000, 2), digest, signature)
    );
    assert_eq!(
        marks[&(ChainId::MAINNET, MarkKind::Block)].height,
        Height {
            level: 77,
            round: None
        }
    );
    let guard = HighWatermark::new(store);
    let counting = Counting::new(&sk);
    let again = guard
        .sign(&pkh, &KeyPolicy::all(), &counting, &payload)
        .unwrap();
    assert_eq!((again, counting.calls()), (signature, 0));
}

#[test]
fn a_floor_is_saved_without_digest_or_signature_and_refuses_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let store = FileStore::open(dir.path()).unwrap();
    let floor = Mark::floor(Height::new(500, 1));
    {
        let mut record = store.lock(&pkh).unwrap();
        let mut marks = KeyMarks::new();
        marks.insert((ChainId::MAINNET, MarkKind::Attestation), floor);
        record.save(&marks).unwrap();
    }
    let text = fs::read_to_string(store.path_for(&pkh)).unwrap();
    assert!(
        !text.contains("digest") && !text.contains("signature"),
        "{text}"
    );
    assert_eq!(
        store.load(&pkh).unwrap()[&(ChainId::MAINNET, MarkKind::Attestation)],
        floor
    );

    let guard = HighWatermark::new(store);
    let counting = Counting::new(&sk);
    for refused in [
        attestation(500, 1, 1),
        attestation(500, 0, 1),
        attestation(499, 9, 1),
    ] {
        let err = guard
            .sign(&pkh, &KeyPolicy::all(), &counting, &refused)
            .unwrap_err();
        assert!(matches!(err, GuardError::DoubleSign { .. }), "{err}");
    }
    assert_eq!(counting.calls(), 0);
    let signed = guard
        .sign(&pkh, &KeyPolicy::all(), &counting, &attestation(500, 2, 1))
        .unwrap();
    // Signing above the floor records a full mark, which then replays.
    let again = guard
        .sign(&pkh, &KeyPolicy::all(), &counting, &attestation(500, 2, 1))
        .unwrap();
    assert_eq!((again, counting.calls()), (signed, 1));
    // Other kinds are not floored.
    guard
        .sign(&pkh, &KeyPolicy::all(), &counting, &preattestation(1, 0, 1))
        .unwrap();
}

#[test]
fn a_signature_without_its_digest_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let signature: Signature = sk.sign(&[0x03, 1]).unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let text = v1_record(&pkh.to_string(), &signature.to_string());
    let start = text.find("      \"digest\"").unwrap();
    let end = start + text[start..].find('\n').unwrap() + 1;
    let damaged = format!("{}{}", &text[..start], &text[end..]);
    fs::write(store.path_for(&pkh), &damaged).unwrap();
    let err = store.load(&pkh).unwrap_err();
    assert!(
        err.to_string()
            .contains("a signature without the digest it signed"),
        "{err}"
    );
}
