//! Issue 14 through the CloudHSM profile (`cloudhsm-profile/`: SoftHSM2 behind the documented
//! SDK 5 rules) and the stand-in `cloudhsm-cli`, whose `key list` and `key set-attribute` act on
//! the test's SoftHSM2 token (`common/standin_token.rs`): the trusted-wrapping-key procedure
//! (crypto user creates, admin marks trusted, owner shares), then backup, restore, replication
//! and the coverage check with it; tz1 refused with its reason; `kmsuser` refused at login.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
#![cfg(feature = "hsm")] // HSM keys and the runbook: the default feature `hsm`

use common::{profile_module, standin_token};
use test_support::{self as common, softhsm_test};

use std::path::Path;

use cloudhsm_cli::{create_trusted_wrapping_key, CliRole, CloudHsmCli};
use cryptoki_ops::secrecy::{SecretBox, SecretString};
use cryptoki_ops::{
    Curve, EcKeySpec, Hsm, HsmConfig, KeySelector, ModuleSource, PinSource, WrappingKeySpec,
};
use tezos_keys::runbook::{replicate, Backup, KeySelection, ReplicationStatus, RestoreOptions};

const OWNER: &str = "key_owner:Owner-Passw0rd";
const ADMIN: &str = "admin:Admin-Passw0rd";
const STANDIN: &str = common::ceremony::STANDIN;

/// Not a test: the stand-in's token helper (see `standin_token`), when asked.
#[test]
fn token_helper() {
    standin_token::answer_if_asked();
}

fn through_profile(token: &common::TestToken) -> HsmConfig {
    std::env::set_var("CLOUDHSM_PROFILE_SOFTHSM2", &token.module);
    token
        .config()
        .with_module(ModuleSource::Path(profile_module()))
}

/// The stand-in CLI as the crypto user that owns the keys, and as the admin, acting on the
/// SoftHSM2 token `label` (this process is a test child: the environment is its own).
fn clis(dir: &Path, label: &str) -> (CloudHsmCli, CloudHsmCli) {
    let helper = standin_token::helper_program(dir, "token_helper");
    std::env::set_var("STANDIN_TOKEN_HELPER", helper);
    std::env::set_var(standin_token::TOKEN_ENV, label);
    let pin = |p: &str| PinSource::Value(SecretString::from(p));
    (
        CloudHsmCli::with_program(STANDIN, pin(OWNER), CliRole::CryptoUser),
        CloudHsmCli::with_program(STANDIN, pin(ADMIN), CliRole::Admin),
    )
}

fn ceremony_value() -> SecretBox<[u8; 32]> {
    SecretBox::new(Box::new([0x42; 32]))
}

softhsm_test!(fn the_cloudhsm_trusted_key_procedure_makes_backups_restores_and_replicas_work(token) {
    let dir = tempfile::tempdir().unwrap();
    let second = token.another("second-cluster");
    let a = Hsm::open(&through_profile(token)).unwrap();
    let b = Hsm::open(&through_profile(&second)).unwrap();

    // The old way, a trusted key in the template, is what CloudHSM refuses: no SO login, and a
    // crypto user cannot set CKA_TRUSTED.
    let err = a.import_wrapping_key(&WrappingKeySpec::new("wrap").trusted(), &ceremony_value()).unwrap_err();
    assert!(err.to_string().contains("key set-attribute"), "{err}");

    // Crypto user creates, admin marks trusted (cloudhsm-cli key set-attribute), owner shares.
    let (owner, admin) = clis(dir.path(), &token.label);
    let key = create_trusted_wrapping_key(&a, &WrappingKeySpec::new("wrap"), Some(&ceremony_value()), &owner, &admin, &["signer".to_string()]).unwrap();
    assert_eq!(key.info.trusted, Some(true));
    assert!(key.reference.starts_with("0x"), "{}", key.reference);
    let on_a = a.find_wrapping_key(&"wrap".parse().unwrap()).unwrap();
    assert_eq!((on_a.trusted, on_a.check_value.clone()), (Some(true), key.info.check_value.clone()));
    // The admin step must not run as a crypto user; nothing is created then.
    let err = create_trusted_wrapping_key(&a, &WrappingKeySpec::new("other"), None, &owner, &owner, &[]).unwrap_err();
    assert_eq!(err.kind(), "wrong_role");
    let err = a.find_wrapping_key(&"other".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), "key_not_found", "nothing was created: {err}");

    // The same ceremony key on the second cluster, by the same procedure.
    let (owner_b, admin_b) = clis(dir.path(), &second.label);
    create_trusted_wrapping_key(&b, &WrappingKeySpec::new("wrap"), Some(&ceremony_value()), &owner_b, &admin_b, &[]).unwrap();

    // A backup-able key: backed up, restored on the second cluster, replicated.
    let wrap: KeySelector = "wrap".parse().unwrap();
    a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker").backupable()).unwrap();
    a.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker-2").backupable()).unwrap();
    let backup = Backup::create(&a, &"baker".parse().unwrap(), &wrap).unwrap();
    let file = dir.path().join("baker.backup.json");
    backup.write(&file).unwrap();
    let restored = Backup::read(&file).unwrap().restore(&b, &RestoreOptions::default()).unwrap();
    assert_eq!(restored.pair.public_key, a.public_key(&"baker".parse().unwrap()).unwrap());
    let report = replicate(&a, &b, &KeySelection::Prefix("baker".into()), &wrap, &mut |_| {}).unwrap();
    let statuses: Vec<_> = report.keys.iter().map(|k| (k.label.as_str(), k.status)).collect();
    assert_eq!(statuses, [("baker", ReplicationStatus::AlreadyPresent), ("baker-2", ReplicationStatus::Replicated)], "{:?}", report.keys);

    // Coverage: every key on every HSM, until one is not.
    std::env::set_var(standin_token::TOKEN_ENV, &token.label);
    let keys = owner.list_keys().unwrap();
    assert!(keys.iter().any(|k| k.label.as_deref() == Some("baker")), "{keys:?}");
    assert!(keys.iter().all(|k| k.incomplete_coverage().is_empty()), "{keys:?}");
    std::env::set_var("STANDIN_PARTIAL_KEY", "baker-2");
    let keys = owner.list_keys().unwrap();
    let partial: Vec<String> = keys.iter().filter(|k| !k.incomplete_coverage().is_empty()).map(|k| k.label.clone().unwrap_or_default()).collect();
    assert_eq!(partial, ["baker-2", "baker-2"], "private and public half: {keys:?}");
});

softhsm_test!(fn tz1_is_refused_on_cloudhsm_with_the_reason(token) {
    let hsm = Hsm::open(&through_profile(token)).unwrap();
    let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::Ed25519, "tz1")).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("AWS CloudHSM's PKCS#11 library has no EdDSA") && message.contains("tz2"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
});

softhsm_test!(fn kmsuser_is_refused_at_login_on_cloudhsm_unless_allowed(token) {
    let mut config = through_profile(token);
    config.pin = PinSource::Value(SecretString::from("KmsUser:Kms-Passw0rd"));
    let err = Hsm::open(&config).unwrap_err();
    assert_eq!(err.kind(), "kmsuser_refused", "{err}");
    assert!(err.to_string().contains("rotates its password") && !err.to_string().contains("Kms-Passw0rd"), "{err}");
    // Allowed, the login is tried (and SoftHSM2 refuses this PIN).
    let err = Hsm::open(&config.clone().with_allow_kmsuser(true)).unwrap_err();
    assert_eq!(err.kind(), "pin_incorrect", "{err}");
    // On SoftHSM2 itself there is no KMS: nothing is refused for the name.
    let mut plain = token.config();
    plain.pin = config.pin.clone();
    assert_eq!(Hsm::open(&plain).unwrap_err().kind(), "pin_incorrect");
});
