//! A second (and third) HSM: the ceremony wrapping key, replication, and the consistency check.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
#![cfg(feature = "hsm")] // HSM keys and the runbook: the default feature `hsm`

use test_support::{self as common, softhsm_test};

use common::capabilities::{has, Capability};
use common::objects::{count, token_objects};

/// Not a test: the stand-in `cloudhsm-cli`'s token helper, when the ceremony asks it
/// (`common/ceremony.rs`, on a module without a security-officer login).
#[test]
fn token_helper() {
    common::standin_token::answer_if_asked();
}

use cryptoki_ops::secrecy::SecretBox;
use cryptoki_ops::{Curve, EcKeySpec, Hsm, KeySelector, WrappingKeySpec};
use tezos_keys::runbook::{
    check_consistency, check_value, install_ceremony_key, replicate, Backup, KeySelection,
    ReplicationStatus, RestoreOptions, RunbookError,
};
use tezos_keys::{verify, HsmKey};

const VALUE: [u8; 32] = [0x42; 32];

/// Puts the ceremony wrapping key on every token: each through its security officer with the
/// runbook's `install_ceremony_key`, or where the module has no security-officer login
/// (CloudHSM), by CloudHSM's procedure on each (`common/ceremony.rs`).
fn ceremony(tokens: &[&common::TestToken], value: [u8; 32]) {
    let infos = if has(tokens[0], Capability::SecurityOfficerLogin) {
        let officers: Vec<Hsm> = tokens
            .iter()
            .map(|t| Hsm::open(&t.so_config()).unwrap())
            .collect();
        install_ceremony_key(
            &officers,
            &WrappingKeySpec::new("ceremony").trusted(),
            &SecretBox::new(Box::new(value)),
        )
        .unwrap()
    } else {
        tokens
            .iter()
            .map(|t| common::ceremony::ceremony_key(t, "ceremony", value))
            .collect()
    };
    assert_eq!(infos.len(), tokens.len());
    for info in infos {
        assert_eq!(info.trusted, Some(true));
        assert_eq!(
            hex::encode(info.check_value.unwrap()),
            independent_check_value(value)
        );
    }
    assert_eq!(
        hex::encode(check_value(&SecretBox::new(Box::new(value)))),
        independent_check_value(value)
    );
}

/// The AES key check values of the ceremony values these tests use (every byte the same),
/// computed outside this project: the first 3 bytes of AES-256 of a zero block, with
/// `openssl enc -aes-256-ecb -nopad` and with Python `cryptography`, which agree.
fn independent_check_value(value: [u8; 32]) -> &'static str {
    assert!(
        value.iter().all(|b| *b == value[0]),
        "a value of one repeated byte"
    );
    match value[0] {
        0x01 => "7298ca",
        0x02 => "f435a1",
        0x42 => "bfb6d8",
        0x43 => "8af44c",
        other => panic!("no independent check value for 32 x {other:#04x}"),
    }
}

fn no_progress() -> impl FnMut(tezos_keys::runbook::Progress<'_>) {
    |_| {}
}

softhsm_test!(fn a_key_made_on_a_is_backed_up_restored_on_b_replicated_to_c_checked_and_signs_everywhere(token) {
    let b_token = token.another("hsm-b");
    let c_token = token.another("hsm-c");
    ceremony(&[token, &b_token, &c_token], VALUE);
    let (a, b, c) = (token.open(), b_token.open(), c_token.open());
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker").backupable()).unwrap();
    let address = HsmKey::open(&a, &"baker".parse().unwrap()).unwrap().address().to_string();

    // A -> B through a backup file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baker.json");
    Backup::create(&a, &"baker".parse().unwrap(), &"ceremony".parse().unwrap()).unwrap().write(&path).unwrap();
    Backup::read(&path).unwrap().restore(&b, &RestoreOptions::default()).unwrap();
    // B -> C by replication (the restored key is backup-able again).
    let mut seen = Vec::new();
    let report = replicate(&b, &c, &KeySelection::Label("baker".into()), &"ceremony".parse().unwrap(), &mut |p| seen.push((p.done, p.total, p.item.to_string()))).unwrap();
    assert_eq!(seen, [(0, 1, "baker".to_string())]);
    assert!(report.is_complete());
    assert_eq!(report.keys[0].status, ReplicationStatus::Replicated);
    assert_eq!(report.keys[0].address.as_deref(), Some(address.as_str()));

    let check = check_consistency(&[a.clone(), b.clone(), c.clone()], &mut no_progress()).unwrap();
    assert!(check.is_consistent(), "{check:#?}");
    assert!(check.consistent);
    assert_eq!(check.tokens, ["test-token", "hsm-b", "hsm-c"]);
    let baker = check.keys.iter().find(|k| k.label == "baker").unwrap();
    assert!(baker.same_public_key && baker.differences.is_empty());
    assert!(baker.tokens.iter().all(|t| t.address.as_deref() == Some(address.as_str())));
    assert_eq!(check.wrapping_keys.len(), 1);
    assert!(check.wrapping_keys[0].same_check_value);

    let payload = [0x03, 0x01, 0x02];
    for hsm in [&a, &b, &c] {
        let key = HsmKey::open(hsm, &"baker".parse().unwrap()).unwrap();
        assert_eq!(key.address().to_string(), address, "{}", hsm.token_label());
        verify(key.public_key(), &payload, &key.sign(&payload).unwrap()).unwrap();
    }
});

softhsm_test!(fn replication_by_prefix_copies_each_key_once_and_reports_failures(token) {
    let second = token.another("second-hsm");
    ceremony(&[token, &second], VALUE);
    let (a, b) = (token.open(), second.open());
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker-1").backupable()).unwrap();
    a.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker-2").backupable()).unwrap();
    a.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker-3-locked")).unwrap(); // not extractable
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "other").backupable()).unwrap();

    let mut calls = 0;
    let report = replicate(&a, &b, &KeySelection::Prefix("baker-".into()), &"ceremony".parse().unwrap(), &mut |p| {
        assert_eq!(p.total, 3);
        assert_eq!(p.done, calls);
        calls += 1;
    }).unwrap();
    assert_eq!(calls, 3);
    assert!(!report.is_complete());
    let status: Vec<_> = report.keys.iter().map(|k| (k.label.as_str(), k.status)).collect();
    assert_eq!(status, [
        ("baker-1", ReplicationStatus::Replicated),
        ("baker-2", ReplicationStatus::Replicated),
        ("baker-3-locked", ReplicationStatus::Failed),
    ]);
    assert_eq!(report.keys[2].error_kind, Some("policy_refused"));
    assert!(report.keys[2].error.as_deref().unwrap().contains("not extractable"));
    let err = b.find_private_key(&"other".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), "key_not_found", "outside the prefix: {err}");
    let objects = token_objects(&second);
    assert_eq!(
        (count(&objects, "Private Key Object", "baker-3-locked"), count(&objects, "Public Key Object", "baker-3-locked")),
        (0, 0),
        "nothing of the key that failed, for a fresh reader: {objects:#?}"
    );
    for label in ["baker-1", "baker-2"] {
        let (ka, kb) = (HsmKey::open(&a, &label.parse().unwrap()).unwrap(), HsmKey::open(&b, &label.parse().unwrap()).unwrap());
        assert_eq!(ka.address(), kb.address());
        verify(ka.public_key(), &[0x03, 7], &kb.sign(&[0x03, 7]).unwrap()).unwrap();
    }

    // Again: what is there is left alone.
    let again = replicate(&a, &b, &KeySelection::Prefix("baker-1".into()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap();
    assert_eq!(again.keys[0].status, ReplicationStatus::AlreadyPresent);

    // A different key under the same label on the target is a conflict, never overwritten.
    b.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "other").backupable()).unwrap();
    let err = replicate(&a, &b, &KeySelection::Label("other".into()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap_err();
    assert!(matches!(err, RunbookError::LabelConflict { .. }), "{err}");

    // One non-extractable key named alone: the error itself.
    let err = replicate(&a, &b, &KeySelection::Label("baker-3-locked".into()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap_err();
    assert_eq!(err.kind(), "policy_refused", "{err}");
    let err = replicate(&a, &b, &KeySelection::Prefix("nothing-".into()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap_err();
    assert!(matches!(err, RunbookError::NothingSelected { .. }), "{err}");
    let err = replicate(&a, &b, &KeySelection::Prefix(String::new()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap_err();
    assert_eq!(err.kind(), "invalid_input");
});

softhsm_test!(fn replication_is_refused_when_the_wrapping_keys_differ(token) {
    let second = token.another("second-hsm");
    ceremony(&[token], [1; 32]);
    ceremony(&[&second], [2; 32]);
    let (a, b) = (token.open(), second.open());
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker").backupable()).unwrap();
    let before = token_objects(&second);
    let err = replicate(&a, &b, &KeySelection::Label("baker".into()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap_err();
    assert!(matches!(err, RunbookError::WrappingKeyDiffers { .. }), "{err}");
    assert_eq!(token_objects(&second), before, "nothing made on the target (a fresh reader)");
});

softhsm_test!(fn the_consistency_check_reports_missing_keys_different_keys_and_attributes(token) {
    let second = token.another("second-hsm");
    let third = token.another("third-hsm");
    ceremony(&[token, &second], VALUE);
    ceremony(&[&third], [0x43; 32]); // the third HSM got another ceremony value
    // ...and later the right value under another label.
    common::ceremony::ceremony_key(&third, "ceremony-fix", VALUE);
    let (a, b, c) = (token.open(), second.open(), third.open());
    // On A only: the second HSM lacks what the first has.
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "only-on-a").backupable()).unwrap();
    // Same label, independently generated: different public keys (and ids).
    for hsm in [&a, &b, &c] {
        hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "twin")).unwrap();
    }
    // The same key everywhere, but non-extractable on C.
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "shared").backupable()).unwrap();
    replicate(&a, &b, &KeySelection::Label("shared".into()), &"ceremony".parse().unwrap(), &mut no_progress()).unwrap();
    let backup = Backup::create(&a, &"shared".parse().unwrap(), &"ceremony".parse().unwrap()).unwrap();
    // C cannot unwrap it under its own (different) "ceremony" key: use "ceremony-fix".
    let options = RestoreOptions { wrapping_key: Some(KeySelector::Label("ceremony-fix".into())), backupable: false, ..RestoreOptions::default() };
    backup.restore(&c, &options).unwrap();

    let mut seen = Vec::new();
    let report = check_consistency(&[a, b, c], &mut |p| seen.push(p.item.to_string())).unwrap();
    assert_eq!(seen, ["test-token", "second-hsm", "third-hsm"]);
    assert!(!report.is_consistent());
    assert!(!report.consistent);
    let find = |label: &str| report.keys.iter().find(|k| k.label == label).unwrap();

    let only = find("only-on-a");
    assert_eq!(only.missing_on(), ["second-hsm", "third-hsm"]);
    assert_eq!(only.tokens.iter().map(|t| t.present).collect::<Vec<_>>(), [true, false, false]);
    assert!(!only.is_consistent());

    let twin = find("twin");
    assert!(twin.missing_on().is_empty());
    assert!(!twin.same_public_key, "{twin:#?}");
    assert!(twin.differences.iter().any(|d| d.attribute == "id"));
    assert!(!twin.is_consistent());

    let shared = find("shared");
    assert!(shared.same_public_key, "{shared:#?}");
    let extractable = shared.differences.iter().find(|d| d.attribute == "extractable").unwrap();
    assert_eq!(extractable.values, [Some("true".into()), Some("true".into()), Some("false".into())]);
    assert!(!shared.differences.iter().any(|d| d.attribute == "id" || d.attribute == "curve"));

    let ceremony_check = report.wrapping_keys.iter().find(|w| w.label == "ceremony").unwrap();
    assert!(!ceremony_check.same_check_value, "the third HSM's ceremony key differs");
    let fix = report.wrapping_keys.iter().find(|w| w.label == "ceremony-fix").unwrap();
    assert_eq!(fix.tokens.iter().map(|t| t.present).collect::<Vec<_>>(), [false, false, true]);

    // The report is the CLI's JSON.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["consistent"], false);
    assert_eq!(json["keys"][0]["tokens"][0]["token"], "test-token");
    let err = check_consistency(&[token.open()], &mut no_progress()).unwrap_err();
    assert_eq!(err.kind(), "invalid_input", "needs 2 tokens: {err}");
    assert!(err.to_string().contains("at least 2 tokens"), "{err}");
});
