//! Tezos signing with HSM keys on all three curves, checked by the software verifier with the
//! Octez node's rules and by RustCrypto's k256/p256 verifiers.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
#![cfg(feature = "hsm")] // HSM keys and the runbook: the default feature `hsm`

use test_support::{self as common, softhsm_test};

use common::capabilities::{require, Capability};

use cryptoki_ops::{Curve, EcKeySpec};
use signature::hazmat::{PrehashSigner, PrehashVerifier};
use signature::{Keypair, Signer};
use tezos_keys::payload::{self, Watermark};
use tezos_keys::{verify, verify_encoded, HsmKey, KeyPolicy, SignError};

fn attestation(level: u32, round: u32) -> Vec<u8> {
    common::payloads::attestation(level, round, 0xcd)
}

softhsm_test!(fn hsm_keys_sign_tezos_payloads_on_every_curve(token) {
    let hsm = token.open();
    for (curve, prefix, pk_prefix, sig_prefix) in [
        (Curve::Secp256k1, "tz2", "sppk", "spsig1"),
        (Curve::P256, "tz3", "p2pk", "p2sig"),
        (Curve::Ed25519, "tz1", "edpk", "edsig"),
    ] {
        if curve == Curve::Ed25519 && !require(token, Capability::EdDsa) {
            continue;
        }
        let label = format!("tezos-{curve}");
        hsm.generate_ec_key(&EcKeySpec::new(curve, &label)).unwrap();
        let key = HsmKey::open(&hsm, &label.parse().unwrap()).unwrap();
        assert!(key.address().to_string().starts_with(prefix));
        assert!(key.public_key().to_string().starts_with(pk_prefix));
        for payload in [vec![0x03, 0x12, 0x34], attestation(100, 0), vec![0x05, 0x00, 0x01]] {
            let signature = key.sign(&payload).unwrap();
            let text = signature.to_string();
            assert!(text.starts_with(sig_prefix), "{text}");
            verify(key.public_key(), &payload, &signature).unwrap();
            // The text forms verify too, generic `sig` included.
            verify_encoded(&key.public_key().to_string(), &payload, &text).unwrap();
            verify_encoded(&key.public_key().to_string(), &payload, &signature.to_generic_base58()).unwrap();
        }
    }
});

softhsm_test!(fn ecdsa_signatures_are_always_low_s(token) {
    // SoftHSM2 does not normalise: about half its raw signatures are high-S, so 64 signatures
    // per curve all being low-S shows the normalisation (a missing one fails with p = 2^-64).
    let hsm = token.open();
    for curve in [Curve::Secp256k1, Curve::P256] {
        hsm.generate_ec_key(&EcKeySpec::new(curve, curve.name())).unwrap();
        let key = HsmKey::open(&hsm, &curve.name().parse().unwrap()).unwrap();
        let mut raw_high = 0;
        for i in 0..64u8 {
            let payload = [0x03, i];
            let signature = key.sign(&payload).unwrap();
            assert!(signature.is_low_s().unwrap(), "{curve} #{i}");
            let raw = key.signing_key().sign(&payload::digest(&payload)).unwrap();
            if !tezos_keys::Signature::new(tezos_keys::tezos_curve(curve), raw).is_low_s().unwrap() {
                raw_high += 1;
            }
        }
        assert!(raw_high > 0, "{curve}: the token never produced a high-S signature, so this test proves nothing");
    }
});

softhsm_test!(fn bad_payloads_and_disallowed_watermarks_are_refused_before_the_hsm(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "k")).unwrap();
    let key = HsmKey::open(&hsm, &"k".parse().unwrap()).unwrap();
    for payload in [vec![], vec![0x42, 1, 2], vec![0x13, 0x7a]] {
        let err = key.sign(&payload).unwrap_err();
        assert!(matches!(err, SignError::Tezos(_)), "{payload:?}: {err}");
    }
    let policy = KeyPolicy::new([Watermark::Block, Watermark::Attestation]);
    let err = key.sign_allowed(&[0x03, 1], &policy).unwrap_err();
    assert!(matches!(err, SignError::PolicyRefused { .. }), "{err}");
    assert_eq!(err.kind(), "watermark_not_allowed");
    assert!(err.to_string().contains("generic (0x03)"), "{err}");
    assert!(err.to_string().ends_with("block (0x11), attestation (0x13)"), "{err}");
    let (_, info) = key.sign_allowed(&attestation(7, 2), &KeyPolicy::new([Watermark::Attestation])).unwrap();
    assert_eq!((info.level, info.round), (Some(7), Some(2)));
});

softhsm_test!(fn hsm_keys_work_where_rustcrypto_signers_are_expected(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "k1")).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "r1")).unwrap();
    let k1 = HsmKey::open(&hsm, &"k1".parse().unwrap()).unwrap();
    let r1 = HsmKey::open(&hsm, &"r1".parse().unwrap()).unwrap();

    // Generic code over `Signer` + `Keypair`.
    fn sign_generic<K: Signer<tezos_keys::Signature> + Keypair<VerifyingKey = tezos_keys::PublicKey>>(key: &K, msg: &[u8]) -> bool {
        let signature = key.try_sign(msg).unwrap();
        verify(&key.verifying_key(), msg, &signature).is_ok()
    }
    assert!(sign_generic(&k1, &[0x03, 9]));
    assert!(sign_generic(&r1, &[0x03, 9]));

    let digest = [0x77; 32];
    let sig: k256::ecdsa::Signature = k1.sign_prehash(&digest).unwrap();
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(k1.public_key().as_bytes()).unwrap();
    vk.verify_prehash(&digest, &sig).unwrap(); // k256 accepts only low-S
    let sig: p256::ecdsa::Signature = r1.sign_prehash(&digest).unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(r1.public_key().as_bytes()).unwrap();
    vk.verify_prehash(&digest, &sig).unwrap();
    // Asking a P-256 key for a secp256k1 signature is an error, not a wrong signature.
    let wrong: Result<k256::ecdsa::Signature, _> = r1.sign_prehash(&digest);
    let err = wrong.unwrap_err();
    let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<tezos_keys::Error>());
    assert!(matches!(source, Some(tezos_keys::Error::CurveMismatch { .. })), "{err:?}");
});

softhsm_test!(fn verify_after_sign_refuses_a_signature_of_the_wrong_key_pair(token) {
    // A token where a key's public object (same CKA_ID) is another key's: a mix-up in a key
    // ceremony, or a faulty HSM. The signature is made, but it does not verify against the
    // public key the signer publishes, and verify-after-sign (on by default) must not return it.
    use cryptoki::object::{Attribute, ObjectClass};
    let hsm = token.open();
    for curve in [Curve::Secp256k1, Curve::P256, Curve::Ed25519] {
        if curve == Curve::Ed25519 && !require(token, Capability::EdDsa) {
            continue;
        }
        let (a, b) = (format!("a-{curve}"), format!("b-{curve}"));
        let a_info = hsm.generate_ec_key(&EcKeySpec::new(curve, &a)).unwrap();
        let b_info = hsm.generate_ec_key(&EcKeySpec::new(curve, &b)).unwrap();
        hsm.with_session(|s| {
            let public = |id: &[u8]| {
                s.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id.to_vec())])
            };
            for handle in public(&a_info.private.id)? {
                s.destroy_object(handle)?;
            }
            for handle in public(&b_info.private.id)? {
                s.update_attributes(handle, &[Attribute::Id(a_info.private.id.clone())])?;
            }
            Ok(())
        })
        .unwrap();
        let key = HsmKey::open(&hsm, &a.parse().unwrap()).unwrap();
        assert_eq!(key.public_key(), &tezos_keys::tezos_public_key(&b_info.public_key).unwrap(), "{curve}");
        let payload = [0x03, 0x12, 0x34];
        let err = key.sign(&payload).unwrap_err();
        assert!(matches!(err, SignError::VerifyAfterSignFailed { .. }), "{curve}: {err}");
        // Without the check the same signature comes out, and the chain would refuse it.
        let unchecked = key.clone().with_verify_after_sign(false).sign(&payload).unwrap();
        assert_eq!(
            verify(key.public_key(), &payload, &unchecked),
            Err(tezos_keys::Error::VerificationFailed { curve: key.curve() }),
            "{curve}"
        );
    }
});
