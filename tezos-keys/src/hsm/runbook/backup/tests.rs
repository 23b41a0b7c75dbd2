//! Backup files without a token: a round trip, every flipped byte refused, refusals named.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::SecretKey;

fn sample() -> Backup {
    // Taquito test key (tezos.md §9) — TEST KEY ONLY.
    let sk =
        SecretKey::from_base58("spsk2rBDDeUqakQ42nBHDGQTtP3GErb6AahHPwF9bhca3Q5KA5HESE").unwrap();
    let public_key = sk.public_key();
    Backup {
        curve: cryptoki_ops::Curve::Secp256k1,
        label: "baker".into(),
        id: vec![0x3f, 0x9a, 0x0c, 0x1d],
        address: public_key.hash(),
        public_key,
        mechanism: WrapMechanism::AesKeyWrapPad,
        wrapping_key: WrappingKeyRef {
            label: "ceremony".into(),
            check_value: vec![0xa1, 0xb2, 0xc3],
        },
        wrapped_key: (0u8..72).collect(),
    }
}

#[test]
fn round_trips() {
    let backup = sample();
    let text = backup.to_json();
    assert_eq!(Backup::from_json(&text).unwrap(), backup);
    assert!(text.contains("\"version\": 1"));
    assert!(text.contains("\"checksum\": \"sha256:"));
    assert!(
        !format!("{backup:?}").contains("000102"),
        "Debug hides the wrapped bytes"
    );
}

#[test]
fn every_flipped_byte_is_refused() {
    let text = sample().to_json().into_bytes();
    for i in 0..text.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut bad = text.clone();
            bad[i] ^= mask;
            let parsed = std::str::from_utf8(&bad).map(Backup::from_json);
            assert!(
                !matches!(parsed, Ok(Ok(_))),
                "flipping byte {i} ({:?}) with {mask:#x} was accepted",
                text[i] as char
            );
        }
    }
}

#[test]
fn refusals_name_the_problem() {
    let text = sample().to_json();
    let err = Backup::from_json(&text.replace("\"version\": 1", "\"version\": 2")).unwrap_err();
    assert!(
        matches!(err, RunbookError::UnknownVersion { found: 2, .. }),
        "{err}"
    );
    let err = Backup::from_json("{").unwrap_err();
    assert_eq!(err.kind(), "corrupt_backup");
    let err = Backup::from_json(&text.replace("\"label\": \"baker\"", "\"label\": \"bakes\""))
        .unwrap_err();
    assert!(err.to_string().contains("checksum does not match"), "{err}");
    // A consistent checksum over an address that is not the public key's.
    let mut other = sample();
    other.address = crate::PublicKeyHash::new(crate::Curve::Secp256k1, [7; 20]);
    let err = Backup::from_json(&other.to_json()).unwrap_err();
    assert!(err.to_string().contains("\"address\""), "{err}");
    // No message repeats the wrapped bytes.
    assert!(!err.to_string().contains("000102"));
}
