//! Module loading, token selection, token information and login, against real SoftHSM2 tokens.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use test_support::{self as common, softhsm_test};

use common::capabilities::{require, Capability};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{Error, Hsm, HsmConfig, Module, ModuleSource, PinSource, TokenSelector};

#[test]
fn a_missing_module_names_every_path_tried() {
    let err = Module::load(&ModuleSource::Path("/nonexistent/libpkcs11.so".into())).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::ModuleNotFound { .. }), "{message}");
    assert!(message.contains("/nonexistent/libpkcs11.so"), "{message}");
    assert!(message.contains("apt-get install softhsm2"), "{message}");
    assert!(message.contains("PKCS11_MODULE"), "{message}");
}

#[test]
fn a_file_that_is_not_a_module_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not a shared library").unwrap();
    let err = Module::load(&ModuleSource::Path(fake.clone())).unwrap_err();
    assert!(matches!(err, Error::ModuleLoad { .. }), "{err}");
    assert!(err.to_string().contains("libfake.so"), "{err}");
}

softhsm_test!(fn a_module_initialised_by_someone_else_is_used_as_is(token) {
    // Another part of the process initialised the module first, with its own context.
    let other = Pkcs11::new(&token.module).unwrap();
    let _ = other.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let hsm = token.open();
    assert_eq!(hsm.token_label(), common::TOKEN_LABEL);
    assert!(hsm.list_keys().unwrap().is_empty());
});

softhsm_test!(fn tokens_are_selected_by_label_serial_or_slot(token) {
    let second = token.another("second-token");
    let module = Module::load(&ModuleSource::Path(token.module.clone())).unwrap();
    let tokens = module.tokens().unwrap();
    let first = tokens.iter().find(|t| t.label == token.label).unwrap().clone();
    for selector in [
        TokenSelector::Label(token.label.clone()),
        TokenSelector::Serial(first.serial.clone()),
        TokenSelector::SlotId(first.slot_id),
        format!("serial:{}", first.serial).parse().unwrap(),
    ] {
        let mut config = token.config();
        config.token = selector.clone();
        let hsm = Hsm::open(&config).unwrap();
        assert_eq!(hsm.token_label(), token.label, "{selector:?}");
    }
    let hsm = second.open();
    assert_eq!(hsm.token_label(), "second-token");
});

softhsm_test!(fn an_unknown_token_lists_the_tokens_present(token) {
    let mut config = token.config();
    config.token = TokenSelector::Label("no-such-token".into());
    let err = Hsm::open(&config).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::TokenNotFound { .. }), "{message}");
    assert!(message.contains("no-such-token") && message.contains(&token.label), "{message}");
});

softhsm_test!(fn token_info_reports_identity_sessions_and_mechanisms(token) {
    let hsm = token.open();
    let info = hsm.token_info().unwrap();
    assert_eq!(info.label, token.label);
    assert_eq!(info.model, "SoftHSM v2");
    assert!(!info.serial.is_empty());
    // SoftHSM2 2.6 answers CK_UNAVAILABLE_INFORMATION for session counts; the pool counts its own.
    assert_eq!(info.session_count, None);
    assert_eq!(hsm.open_sessions(), 1, "the pool opened one session to log in");
    let mut expected = vec!["CKM_ECDSA", "CKM_EC_KEY_PAIR_GEN"];
    if require(token, Capability::StandardAesKeyWrap) {
        expected.push("CKM_AES_KEY_WRAP_PAD");
    }
    for mechanism in expected {
        assert!(info.mechanisms.iter().any(|m| m == mechanism), "{mechanism} missing from {:?}", info.mechanisms);
    }
});

softhsm_test!(fn a_wrong_pin_is_reported_without_the_pin(token) {
    let mut config = token.config();
    config.pin = PinSource::Value(SecretString::from("wrong-pin-9999"));
    let err = Hsm::open(&config).unwrap_err();
    assert!(matches!(err, Error::PinIncorrect { .. }), "{err}");
    let text = format!("{err} {err:?} {:?}", config.pin);
    assert!(!text.contains("wrong-pin-9999"), "the PIN leaked: {text}");
    assert!(text.contains(&token.label), "{text}");
});

softhsm_test!(fn the_pin_comes_from_env_file_or_command(token) {
    let dir = tempfile::tempdir().unwrap();
    // File: only the owner may read it.
    let file = dir.path().join("pin");
    std::fs::write(&file, format!("{}\n", common::USER_PIN)).unwrap();
    set_mode(&file, 0o600);
    let command = format!("cat {}", file.display());
    std::env::set_var("TEST_TOKEN_PIN", common::USER_PIN);
    for source in [
        PinSource::Env("TEST_TOKEN_PIN".into()),
        PinSource::File(file.clone()),
        PinSource::Command(command),
    ] {
        let mut config = token.config();
        config.pin = source.clone();
        Hsm::open(&config).unwrap_or_else(|e| panic!("{source:?}: {e}"));
    }
    // A PIN file others can read is refused, with the fix.
    set_mode(&file, 0o644);
    let err = PinSource::File(file.clone()).resolve().unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    // A missing variable and a failing command are clear errors.
    let err = PinSource::Env("TEST_NO_SUCH_PIN_VAR".into()).resolve().unwrap_err();
    assert!(err.to_string().contains("TEST_NO_SUCH_PIN_VAR is not set"), "{err}");
    let err = PinSource::Command("echo nope >&2; exit 3".into()).resolve().unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
});

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_bare_pin_is_not_accepted_as_a_pin_source() {
    let err =
        HsmConfig::from_lookup(|name| (name == "PKCS11_PIN_SOURCE").then(|| "1234".to_string()))
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("env:VAR, file:PATH or cmd:COMMAND"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("1234"),
        "the would-be PIN must not be echoed: {err}"
    );
}
