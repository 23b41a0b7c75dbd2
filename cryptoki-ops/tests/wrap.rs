//! Wrapping a private key under an AES key and unwrapping it on another token.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use common::objects::token_objects;
use test_support::{self as common, softhsm_test};

/// Not a test: the stand-in `cloudhsm-cli`'s token helper, when the ceremony asks it
/// (`common/ceremony.rs`, on a module without a security-officer login).
#[test]
fn token_helper() {
    common::standin_token::answer_if_asked();
}

use cryptoki_ops::{
    Curve, EcKeySpec, Error, KeySelector, UnwrapTarget, WrapMechanism, WrappingKeySpec,
};

/// The same AES-256 wrapping key on a token, as a key ceremony would put it there, trusted
/// (by the security officer, or on CloudHSM by its procedure: `common/ceremony.rs`).
fn ceremony_key(token: &common::TestToken, label: &str, value: [u8; 32]) {
    let key = common::ceremony::ceremony_key(token, label, value);
    assert_eq!(key.trusted, Some(true));
}

softhsm_test!(fn a_backupable_key_moves_to_a_second_token_and_signs_there(token) {
    let second = token.another("second-hsm");
    for t in [token, &second] {
        ceremony_key(t, "ceremony", [0x42; 32]);
    }
    let a = token.open();
    let b = second.open();
    assert_eq!(
        a.find_wrapping_key(&"ceremony".parse().unwrap()).unwrap().check_value,
        b.find_wrapping_key(&"ceremony".parse().unwrap()).unwrap().check_value,
        "the same wrapping key on both tokens has the same check value"
    );
    // As computed outside this project (`openssl enc -aes-256-ecb -nopad`, Python
    // `cryptography`): the first 3 bytes of AES-256 of a zero block under 32 x 0x42.
    let check_value = a.find_wrapping_key(&"ceremony".parse().unwrap()).unwrap().check_value.unwrap();
    assert_eq!(hex::encode(check_value), "bfb6d8");
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("baker-{curve}");
        let pair = a.generate_ec_key(&EcKeySpec::new(curve, &label).backupable()).unwrap();
        let wrapped = a.wrap_private_key(&KeySelector::Label(label.clone()), &"ceremony".parse().unwrap(), None).unwrap();
        // The standard padded wrap where the module lists it, else CloudHSM's zero-pad one.
        let expected = if common::capabilities::has(token, common::capabilities::Capability::StandardAesKeyWrap) { WrapMechanism::AesKeyWrapPad } else { WrapMechanism::CloudHsmZeroPad };
        assert_eq!(wrapped.mechanism, expected);
        assert_eq!(wrapped.bytes.len() % 8, 0);
        let target = UnwrapTarget { label: label.clone(), id: pair.private.id.clone(), public_key: pair.public_key.clone(), backupable: true };
        let restored = b.unwrap_private_key(&wrapped, &"ceremony".parse().unwrap(), &target).unwrap();
        assert_eq!(restored.public_key, pair.public_key, "{curve}");
        assert_eq!(restored.private.extractable, Some(true));
        assert_eq!(restored.private.sensitive, Some(true));
        let key_b = b.signing_key(&KeySelector::Label(label)).unwrap();
        let digest = [9u8; 32];
        let signature = key_b.sign(&digest).unwrap();
        // The signature made on token B verifies with the public key read on token A.
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        match curve {
            Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(pair.public_key.uncompressed()).unwrap()
                .verify_prehash(&digest, &k256::ecdsa::Signature::from_slice(&signature).unwrap().normalize_s()).unwrap(),
            _ => p256::ecdsa::VerifyingKey::from_sec1_bytes(pair.public_key.uncompressed()).unwrap()
                .verify_prehash(&digest, &p256::ecdsa::Signature::from_slice(&signature).unwrap()).unwrap(),
        }
    }
    // SoftHSM2 2.6 cannot wrap Ed25519 keys; the refusal says so instead of blaming trust.
    if !common::capabilities::require(token, common::capabilities::Capability::EdDsa) {
        return;
    }
    a.generate_ec_key(&EcKeySpec::new(Curve::Ed25519, "ed").backupable()).unwrap();
    let err = a.wrap_private_key(&"ed".parse().unwrap(), &"ceremony".parse().unwrap(), None).unwrap_err();
    assert!(err.to_string().contains("cannot wrap keys of this type"), "{err}");
});

softhsm_test!(fn a_non_extractable_key_cannot_be_wrapped(token) {
    ceremony_key(token, "ceremony", [1; 32]);
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "locked")).unwrap();
    let err = hsm.wrap_private_key(&"locked".parse().unwrap(), &"ceremony".parse().unwrap(), None).unwrap_err();
    assert!(matches!(err, Error::PolicyRefused { operation: "wrap", .. }), "{err}");
    assert!(err.to_string().contains("not extractable"), "{err}");
});

softhsm_test!(fn a_backupable_key_cannot_be_wrapped_by_an_untrusted_key(token) {
    let hsm = token.open();
    hsm.generate_wrapping_key(&WrappingKeySpec::new("untrusted")).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "k").backupable()).unwrap();
    let err = hsm.wrap_private_key(&"k".parse().unwrap(), &"untrusted".parse().unwrap(), None).unwrap_err();
    assert!(matches!(err, Error::PolicyRefused { .. }), "{err}");
    assert!(err.to_string().contains("trusted"), "{err}");
});

softhsm_test!(fn only_the_security_officer_creates_trusted_wrapping_keys(token) {
    let hsm = token.open();
    let before = token_objects(token);
    let err = hsm.generate_wrapping_key(&WrappingKeySpec::new("t").trusted()).unwrap_err();
    assert!(matches!(err, Error::PolicyRefused { .. }), "{err}");
    assert!(err.to_string().contains("security officer"), "{err}");
    assert_eq!(token_objects(token), before, "nothing made (a fresh reader)");
});

softhsm_test!(fn unwrapping_under_the_wrong_wrapping_key_fails_and_leaves_nothing(token) {
    let second = token.another("second-hsm");
    ceremony_key(token, "ceremony", [0x11; 32]);
    ceremony_key(&second, "ceremony", [0x22; 32]); // a different value under the same label
    let a = token.open();
    let b = second.open();
    let pair = a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "k").backupable()).unwrap();
    let wrapped = a.wrap_private_key(&"k".parse().unwrap(), &"ceremony".parse().unwrap(), None).unwrap();
    let target = UnwrapTarget { label: "k".into(), id: pair.private.id.clone(), public_key: pair.public_key.clone(), backupable: true };
    let before = token_objects(&second);
    let err = b.unwrap_private_key(&wrapped, &"ceremony".parse().unwrap(), &target).unwrap_err();
    assert!(matches!(err, Error::UnwrapFailed { .. }), "{err}");
    assert!(err.to_string().contains("not the key they were wrapped with"), "{err}");
    assert_eq!(token_objects(&second), before, "no half-made key on the target (a fresh reader)");
});

softhsm_test!(fn an_unwrapped_key_that_does_not_match_its_public_key_is_removed(token) {
    ceremony_key(token, "ceremony", [0x33; 32]);
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "real").backupable()).unwrap();
    let other = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "other")).unwrap();
    let wrapped = hsm.wrap_private_key(&"real".parse().unwrap(), &"ceremony".parse().unwrap(), None).unwrap();
    // Claim the wrapped key belongs to another public key.
    let target = UnwrapTarget { label: "copy".into(), id: vec![7], public_key: other.public_key.clone(), backupable: false };
    let before = token_objects(token);
    let err = hsm.unwrap_private_key(&wrapped, &"ceremony".parse().unwrap(), &target).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("'copy'") && err.to_string().contains(&token.label), "{err}");
    assert_eq!(token_objects(token), before, "nothing left behind (a fresh reader)");
});

softhsm_test!(fn a_restored_public_half_is_private_like_a_generated_one(token) {
    // The public half created on restore uses the generation template: CKA_PRIVATE=true, the
    // only value CloudHSM accepts on EC public keys (AWS CloudHSM user guide, "PKCS #11
    // attributes", footnote 1).
    let second = token.another("second-hsm");
    for t in [token, &second] {
        ceremony_key(t, "ceremony", [0x44; 32]);
    }
    let a = token.open();
    let b = second.open();
    let pair = a.generate_ec_key(&EcKeySpec::new(Curve::P256, "restored").backupable()).unwrap();
    let wrapped = a.wrap_private_key(&"restored".parse().unwrap(), &"ceremony".parse().unwrap(), None).unwrap();
    let target = UnwrapTarget { label: "restored".into(), id: pair.private.id.clone(), public_key: pair.public_key.clone(), backupable: true };
    b.unwrap_private_key(&wrapped, &"ceremony".parse().unwrap(), &target).unwrap();
    let output = std::process::Command::new("pkcs11-tool")
        .args(["--module", second.module.to_str().unwrap(), "--token-label", &second.label])
        .args(["--list-objects", "--type", "pubkey"])
        .output()
        .expect("pkcs11-tool (Debian package opensc) must be installed: the test command installs it");
    let unauthenticated = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && !unauthenticated.contains("restored"), "a session that is not logged in sees the restored public half:\n{unauthenticated}");
    let private = b
        .with_session(|s| {
            let handle = s.find_objects(&[cryptoki::object::Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY), cryptoki::object::Attribute::Label(b"restored".to_vec())])?[0];
            s.get_attributes(handle, &[cryptoki::object::AttributeType::Private])
        })
        .unwrap();
    assert_eq!(private, [cryptoki::object::Attribute::Private(true)]);
    assert_eq!(b.public_key(&"restored".parse().unwrap()).unwrap(), pair.public_key);
});
