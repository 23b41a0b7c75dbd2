//! Backup and restore across two SoftHSM2 tokens, and every refusal of a restore.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
#![cfg(feature = "hsm")] // HSM keys and the runbook: the default feature `hsm`

use test_support::{self as common, softhsm_test};

/// Not a test: the stand-in `cloudhsm-cli`'s token helper, when the ceremony asks it
/// (`common/ceremony.rs`, on a module without a security-officer login).
#[test]
fn token_helper() {
    common::standin_token::answer_if_asked();
}

use common::objects::{count, token_objects};
use cryptoki_ops::{Curve, EcKeySpec, Hsm, KeySelector};
use tezos_keys::runbook::{Backup, RestoreOptions, RunbookError};
use tezos_keys::{verify, HsmKey};

/// The same AES-256 wrapping key on a token, as a key ceremony puts it there, trusted (by the
/// security officer, or on CloudHSM by its procedure: `common/ceremony.rs`).
fn ceremony_key(token: &common::TestToken, label: &str, value: [u8; 32]) {
    common::ceremony::ceremony_key(token, label, value);
}

/// A backup of a fresh backup-able key on `hsm`, written to `dir/name`.
fn backup_file(hsm: &Hsm, dir: &std::path::Path, name: &str, curve: Curve) -> std::path::PathBuf {
    hsm.generate_ec_key(&EcKeySpec::new(curve, name).backupable())
        .unwrap();
    let backup = Backup::create(
        hsm,
        &KeySelector::Label(name.into()),
        &"ceremony".parse().unwrap(),
    )
    .unwrap();
    let path = dir.join(format!("{name}.backup.json"));
    backup.write(&path).unwrap();
    path
}

softhsm_test!(fn restore_on_a_second_token_gives_the_same_address_and_signs(token) {
    let second = token.another("second-hsm");
    ceremony_key(token, "ceremony", [0x42; 32]);
    ceremony_key(&second, "ceremony", [0x42; 32]);
    let (a, b) = (token.open(), second.open());
    let dir = tempfile::tempdir().unwrap();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("baker-{curve}");
        let path = backup_file(&a, dir.path(), &label, curve);
        let original = HsmKey::open(&a, &label.parse().unwrap()).unwrap();

        // The file: mode 0600, self-describing, no temporary file beside it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["format"], "tezos-hsm-key-backup");
        assert_eq!(json["version"], 1);
        assert_eq!(json["curve"], curve.name());
        assert_eq!(json["label"], label.as_str());
        assert_eq!(json["address"], original.address().to_string().as_str());
        assert_eq!(json["public_key"], original.public_key().to_string().as_str());
        // The standard padded wrap where the module lists it, else CloudHSM's zero-pad one.
        let expected = if common::capabilities::has(token, common::capabilities::Capability::StandardAesKeyWrap) { "aes-key-wrap-pad" } else { "cloudhsm-aes-key-wrap-zero-pad" };
        assert_eq!(json["wrap_mechanism"], expected);
        assert_eq!(json["wrapping_key"]["label"], "ceremony");
        // The check value of 32 x 0x42, computed outside this project (`openssl enc
        // -aes-256-ecb -nopad`, Python `cryptography`: AES-256 of a zero block, 3 bytes).
        assert_eq!(json["wrapping_key"]["check_value"], "bfb6d8");
        assert!(json["checksum"].as_str().unwrap().starts_with("sha256:"));

        let restored = Backup::read(&path).unwrap().restore(&b, &RestoreOptions::default()).unwrap();
        assert_eq!(restored.address, *original.address(), "{curve}");
        assert_eq!(restored.pair.private.id, a.find_private_key(&label.parse().unwrap()).unwrap().id, "same CKA_ID");
        assert_eq!(restored.pair.private.extractable, Some(true), "still backup-able");
        assert_eq!(restored.pair.private.sensitive, Some(true));
        let copy = HsmKey::open(&b, &label.parse().unwrap()).unwrap();
        assert_eq!(copy.address(), original.address());
        let payload = [0x03, 0xca, 0xfe];
        let signature = copy.sign(&payload).unwrap();
        verify(original.public_key(), &payload, &signature).unwrap(); // B's signature, A's key
        // Restoring twice does not make a second key under the label.
        let err = Backup::read(&path).unwrap().restore(&b, &RestoreOptions::default()).unwrap_err();
        assert_eq!(err.kind(), "key_exists", "{err}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "only the two backups: {names:?}");
    // A restore under another label, not backup-able this time; the token already holds the
    // key under its recorded id, so the copy needs a new one.
    let path = dir.path().join(format!("baker-{}.backup.json", Curve::P256));
    let options = RestoreOptions { label: Some("cold-copy".into()), backupable: false, new_id: true, ..RestoreOptions::default() };
    let restored = Backup::read(&path).unwrap().restore(&b, &options).unwrap();
    assert_eq!(restored.pair.private.label, "cold-copy");
    assert_eq!(restored.pair.private.extractable, Some(false));
    // A backup is never written over an existing file.
    let backup = Backup::read(&path).unwrap();
    assert!(matches!(backup.write(&path).unwrap_err(), RunbookError::FileExists { .. }));
});

/// Flips one byte inside the value of `field` (the first occurrence of `"field": `).
fn flip_in_field(text: &str, field: &str) -> String {
    let key = format!("\"{field}\": ");
    let start = text
        .find(&key)
        .unwrap_or_else(|| panic!("no field {field}"))
        + key.len();
    let mut bytes = text.as_bytes().to_vec();
    // Inside the quotes for a string, the first digit for a number.
    let at = if bytes[start] == b'"' {
        start + 2
    } else {
        start
    };
    bytes[at] ^= 0x01;
    String::from_utf8(bytes).unwrap()
}

softhsm_test!(fn a_tampered_backup_is_refused_field_by_field_and_leaves_nothing(token) {
    let second = token.another("second-hsm");
    ceremony_key(token, "ceremony", [0x42; 32]);
    ceremony_key(&second, "ceremony", [0x42; 32]);
    let (a, b) = (token.open(), second.open());
    let dir = tempfile::tempdir().unwrap();
    let path = backup_file(&a, dir.path(), "baker", Curve::Secp256k1);
    let before = token_objects(&second);
    let text = std::fs::read_to_string(&path).unwrap();
    let fields = ["format", "version", "curve", "label", "id", "public_key", "address", "wrap_mechanism", "check_value", "wrapped_key", "checksum"];
    for field in fields {
        let tampered = flip_in_field(&text, field);
        assert_ne!(tampered, text);
        let bad = dir.path().join(format!("tampered-{field}.json"));
        std::fs::write(&bad, &tampered).unwrap();
        let err = Backup::read(&bad).and_then(|backup| backup.restore(&b, &RestoreOptions::default())).unwrap_err();
        let expected = if field == "version" { "unknown_version" } else { "corrupt_backup" };
        assert_eq!(err.kind(), expected, "field {field}: {err}");
        assert!(!err.to_string().contains(&text[text.find("wrapped_key").unwrap() + 15..][..16]), "no wrapped bytes in the message");
    }
    // The wrapping key's label: flipped, the checksum catches it too.
    let tampered = text.replacen("\"label\": \"ceremony\"", "\"label\": \"ceremonz\"", 1);
    let err = Backup::from_json(&tampered).unwrap_err();
    assert_eq!(err.kind(), "corrupt_backup", "{err}");
    // Truncated, empty, not JSON.
    for broken in [&text[..text.len() / 2], "", "not json"] {
        assert_eq!(Backup::from_json(broken).unwrap_err().kind(), "corrupt_backup");
    }
    // A file that parses (its checksum recomputed by `write`) whose wrapped key is damaged: the
    // token unwraps it, RFC 5649's integrity check fails there, and nothing may be left.
    let mut damaged = Backup::read(&path).unwrap();
    let middle = damaged.wrapped_key.len() / 2;
    damaged.wrapped_key[middle] ^= 0x01;
    let damaged_path = dir.path().join("damaged-wrapped-key.json");
    damaged.write(&damaged_path).unwrap();
    let err = Backup::read(&damaged_path).unwrap().restore(&b, &RestoreOptions::default()).unwrap_err();
    assert_eq!(err.kind(), "unwrap_failed", "{err}");
    assert_eq!(token_objects(&second), before, "nothing was made on the target (a fresh reader)");
});

softhsm_test!(fn an_unknown_version_is_refused_with_the_version_named(token) {
    ceremony_key(token, "ceremony", [0x42; 32]);
    let a = token.open();
    let dir = tempfile::tempdir().unwrap();
    let path = backup_file(&a, dir.path(), "baker", Curve::P256);
    let text = std::fs::read_to_string(&path).unwrap().replace("\"version\": 1", "\"version\": 7");
    let err = Backup::from_json(&text).unwrap_err();
    assert!(matches!(err, RunbookError::UnknownVersion { found: 7, supported: 1 }), "{err}");
    assert!(err.to_string().contains("version 7"), "{err}");
});

softhsm_test!(fn a_backup_under_another_wrapping_key_is_refused_before_unwrapping(token) {
    let second = token.another("second-hsm");
    ceremony_key(token, "ceremony", [0x11; 32]);
    ceremony_key(&second, "ceremony", [0x22; 32]); // same label, another key
    let (a, b) = (token.open(), second.open());
    let dir = tempfile::tempdir().unwrap();
    let path = backup_file(&a, dir.path(), "baker", Curve::Secp256k1);
    let before = token_objects(&second);
    let err = Backup::read(&path).unwrap().restore(&b, &RestoreOptions::default()).unwrap_err();
    assert!(matches!(err, RunbookError::WrongWrappingKey { .. }), "{err}");
    assert_eq!(err.kind(), "wrong_wrapping_key");
    let message = err.to_string();
    assert!(message.contains("check value") && message.contains("different key"), "{message}");
    assert_eq!(token_objects(&second), before, "nothing was made on the target (a fresh reader)");
    // The wrapping key named in the backup does not exist on the target at all.
    let third = token.another("third-hsm");
    let err = Backup::read(&path).unwrap().restore(&third.open(), &RestoreOptions::default()).unwrap_err();
    assert_eq!(err.kind(), "key_not_found", "{err}");
});

softhsm_test!(fn a_backup_whose_key_does_not_match_its_public_key_is_refused_and_removed(token) {
    let second = token.another("second-hsm");
    ceremony_key(token, "ceremony", [0x42; 32]);
    ceremony_key(&second, "ceremony", [0x42; 32]);
    let (a, b) = (token.open(), second.open());
    let dir = tempfile::tempdir().unwrap();
    let path = backup_file(&a, dir.path(), "baker", Curve::Secp256k1);
    let other = a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "other")).unwrap();
    // A well-formed file (valid checksum) that records another key's public key and address.
    let mut backup = Backup::read(&path).unwrap();
    backup.public_key = tezos_keys::tezos_public_key(&other.public_key).unwrap();
    backup.address = backup.public_key.hash();
    let lying = dir.path().join("lying.json");
    backup.write(&lying).unwrap();
    let before = token_objects(&second);
    let err = Backup::read(&lying).unwrap().restore(&b, &RestoreOptions::default()).unwrap_err();
    assert!(matches!(err, RunbookError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match the public key"), "{err}");
    assert_eq!(token_objects(&second), before, "no half-made object on the target (a fresh reader)");
});

softhsm_test!(fn a_non_extractable_key_cannot_be_backed_up(token) {
    ceremony_key(token, "ceremony", [0x42; 32]);
    let a = token.open();
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "locked")).unwrap();
    let err = Backup::create(&a, &"locked".parse().unwrap(), &"ceremony".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), "policy_refused", "{err}");
    assert!(err.to_string().contains("not extractable"), "{err}");
});

softhsm_test!(fn a_restore_onto_a_token_holding_its_id_is_refused_and_works_with_a_new_id(token) {
    // Issue 12 item 3: `key restore FILE --label copy` on the original's token.
    ceremony_key(token, "ceremony", [0x42; 32]);
    let hsm = token.open();
    let dir = tempfile::tempdir().unwrap();
    let path = backup_file(&hsm, dir.path(), "baker", Curve::Secp256k1);
    let original = hsm.find_private_key(&"baker".parse().unwrap()).unwrap();
    let before = token_objects(token);
    let backup = Backup::read(&path).unwrap();
    let copy = RestoreOptions { label: Some("copy".into()), ..RestoreOptions::default() };
    let err = backup.restore(&hsm, &copy).unwrap_err();
    assert_eq!(err.kind(), "id_exists", "{err}");
    let message = err.to_string();
    assert!(message.contains("'copy'") && message.contains("'baker'"), "names both keys: {message}");
    assert!(message.contains("--new-id"), "says how to go on: {message}");
    assert_eq!(token_objects(token), before, "nothing was left on the token (a fresh reader)");

    let restored = backup.restore(&hsm, &RestoreOptions { new_id: true, ..copy }).unwrap();
    assert_ne!(restored.pair.private.id, original.id, "a fresh CKA_ID");
    assert_eq!(restored.pair.private.id.len(), 8);
    let (a, b) = (HsmKey::open(&hsm, &"baker".parse().unwrap()).unwrap(), HsmKey::open(&hsm, &"copy".parse().unwrap()).unwrap());
    assert_eq!(a.address(), b.address(), "the same key under two labels");
    verify(a.public_key(), b"\x03\x01", &b.sign(b"\x03\x01").unwrap()).unwrap();
    // Deleting the copy leaves the original whole.
    assert_eq!(hsm.delete_key(&"copy".parse().unwrap()).unwrap(), 2);
    let a = HsmKey::open(&hsm, &"baker".parse().unwrap()).unwrap();
    a.sign(b"\x03\x02").unwrap();
    let objects = token_objects(token);
    assert_eq!(
        (count(&objects, "Private Key Object", "baker"), count(&objects, "Public Key Object", "baker")),
        (1, 1),
        "both halves of the original: {objects:#?}"
    );
    assert_eq!((count(&objects, "Private Key Object", "copy"), count(&objects, "Public Key Object", "copy")), (0, 0), "{objects:#?}");
});

softhsm_test!(fn a_backup_with_an_empty_or_oversized_id_restores_only_with_a_new_id(token) {
    let second = token.another("second-hsm");
    ceremony_key(token, "ceremony", [0x42; 32]);
    ceremony_key(&second, "ceremony", [0x42; 32]);
    let dir = tempfile::tempdir().unwrap();
    let path = backup_file(&token.open(), dir.path(), "baker", Curve::P256);
    let b = second.open();
    let before = token_objects(&second);
    for id in [vec![], vec![1; 33]] {
        let mut backup = Backup::read(&path).unwrap();
        backup.id = id.clone();
        let err = backup.restore(&b, &RestoreOptions::default()).unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{}: {err}", id.len());
        assert!(err.to_string().contains("1 to 32 bytes") && err.to_string().contains("--new-id"), "{err}");
        assert_eq!(token_objects(&second), before, "nothing was left on the token (a fresh reader)");
    }
    let mut backup = Backup::read(&path).unwrap();
    backup.id = Vec::new();
    let options = RestoreOptions { new_id: true, ..RestoreOptions::default() };
    let restored = backup.restore(&b, &options).unwrap();
    assert_eq!(restored.pair.private.id.len(), 8);
    HsmKey::open(&b, &"baker".parse().unwrap()).unwrap().sign(b"\x03\x05").unwrap();
});
