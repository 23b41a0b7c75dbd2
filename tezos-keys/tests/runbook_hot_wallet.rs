//! The opt-in hot-wallet export, against a real SoftHSM2 token.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
#![cfg(feature = "hsm")] // HSM keys and the runbook: the default feature `hsm`

use test_support::{self as common, softhsm_test};

/// Not a test: the stand-in `cloudhsm-cli`'s token helper, when the ceremony asks it
/// (`common/ceremony.rs`, on a module without a security-officer login).
#[test]
fn token_helper() {
    common::standin_token::answer_if_asked();
}

use cryptoki_ops::secrecy::{ExposeSecret, SecretBox};
use cryptoki_ops::{Curve, EcKeySpec, Hsm};
use tezos_keys::runbook::{export_hot_wallet, HotWalletConsent, RunbookError};
use tezos_keys::{verify, HsmKey, SecretKey};

const VALUE: [u8; 32] = [0x5c; 32];

/// The trusted ceremony wrapping key (`common/ceremony.rs`).
fn ceremony_key(token: &common::TestToken) {
    common::ceremony::ceremony_key(token, "ceremony", VALUE);
}

fn export(hsm: &Hsm, label: &str, value: [u8; 32]) -> Result<SecretKey, RunbookError> {
    export_hot_wallet(
        hsm,
        &label.parse().unwrap(),
        &"ceremony".parse().unwrap(),
        &SecretBox::new(Box::new(value)),
        HotWalletConsent::IUnderstandThisDefeatsTheHsm,
    )
}

softhsm_test!(fn a_backupable_key_exports_as_the_same_tezos_key(token) {
    ceremony_key(token);
    let hsm = token.open();
    for (curve, prefix) in [(Curve::Secp256k1, "spsk"), (Curve::P256, "p2sk")] {
        let label = format!("hot-{curve}");
        hsm.generate_ec_key(&EcKeySpec::new(curve, &label).backupable()).unwrap();
        let key = HsmKey::open(&hsm, &label.parse().unwrap()).unwrap();
        let secret = export(&hsm, &label, VALUE).unwrap();
        let text = secret.to_base58();
        assert!(text.expose_secret().starts_with(prefix), "{curve}");
        let parsed = SecretKey::from_base58(text.expose_secret()).unwrap();
        assert_eq!(parsed.public_key(), *key.public_key(), "{curve}");
        assert_eq!(parsed.public_key().hash(), *key.address());
        // The software key signs for the HSM key's address.
        let payload = [0x03, 0x44];
        verify(key.public_key(), &payload, &parsed.sign(&payload).unwrap()).unwrap();
        assert!(!format!("{secret:?}").contains(prefix), "Debug never shows the key");
    }
});

softhsm_test!(fn a_non_extractable_key_is_refused(token) {
    ceremony_key(token);
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "cold")).unwrap();
    let err = export(&hsm, "cold", VALUE).unwrap_err();
    assert!(matches!(err, RunbookError::NotExtractable { .. }), "{err}");
    assert_eq!(err.kind(), "not_extractable");
    assert!(err.to_string().contains("not extractable"), "{err}");
});

softhsm_test!(fn a_wrong_wrapping_key_value_is_refused_before_wrapping(token) {
    ceremony_key(token);
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "hot").backupable()).unwrap();
    let err = export(&hsm, "hot", [0x5d; 32]).unwrap_err();
    assert!(matches!(err, RunbookError::WrappingKeyValueMismatch { .. }), "{err}");
    assert!(err.to_string().contains("check value"), "{err}");
});
