//! Signing through the pool, checked by independent software verifiers (RustCrypto k256/p256).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use test_support::{self as common, softhsm_test};

use common::capabilities::{require, Capability};

use cryptoki_ops::{Curve, EcKeySpec, Error, KeySelector};
use k256::ecdsa::signature::hazmat::PrehashVerifier;

fn verify(curve: Curve, public_sec1: &[u8], digest: &[u8; 32], raw: &[u8; 64]) -> bool {
    match curve {
        Curve::Secp256k1 => {
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_sec1).unwrap();
            // k256 accepts only low-S; SoftHSM2 does not normalise, so normalise here.
            let sig = k256::ecdsa::Signature::from_slice(raw).unwrap();
            let sig = sig.normalize_s();
            key.verify_prehash(digest, &sig).is_ok()
        }
        Curve::P256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_sec1).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(raw).unwrap();
            key.verify_prehash(digest, &sig).is_ok()
        }
        Curve::Ed25519 => unreachable!("verified in tezos-keys"),
    }
}

softhsm_test!(fn ecdsa_signatures_verify_in_software_on_both_curves(token) {
    let hsm = token.open();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("sign-{curve}");
        let generated = hsm.generate_ec_key(&EcKeySpec::new(curve, &label)).unwrap();
        let key = hsm.signing_key(&KeySelector::Label(label)).unwrap();
        assert_eq!(key.public_key(), &generated.public_key);
        for i in 0..20u8 {
            let digest = [i; 32];
            let signature = key.sign(&digest).unwrap();
            assert!(verify(curve, key.public_key().uncompressed(), &digest, &signature), "{curve} #{i}");
            // And the compressed form is the same key.
            assert!(verify(curve, &key.public_key().compressed(), &digest, &signature));
            let mut other = digest;
            other[0] ^= 1;
            assert!(!verify(curve, key.public_key().uncompressed(), &other, &signature), "a signature must not verify another digest");
        }
    }
});

softhsm_test!(fn ed25519_keys_sign_where_the_token_supports_eddsa(token) {
    if !require(token, Capability::EdDsa) {
        return;
    }
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Ed25519, "ed")).unwrap();
    let key = hsm.signing_key(&"ed".parse().unwrap()).unwrap();
    let message = b"any message length is fine for EdDSA";
    let a = key.sign(message).unwrap();
    let b = key.sign(message).unwrap();
    assert_eq!(a, b, "Ed25519 is deterministic");
    // Verified in software (ed25519-dalek, strict RFC 8032 checks) with the public key the
    // token gave: the signature is over this message and no other.
    let public: [u8; 32] = key.public_key().compressed().try_into().unwrap();
    let verifier = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let signature = ed25519_dalek::Signature::from_bytes(&a);
    verifier.verify_strict(message, &signature).unwrap();
    assert!(verifier.verify_strict(b"another message", &signature).is_err(), "a signature must not verify another message");
});

softhsm_test!(fn a_digest_of_the_wrong_length_is_refused(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "k")).unwrap();
    let key = hsm.signing_key(&"k".parse().unwrap()).unwrap();
    let err = key.sign(&[0u8; 31]).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(err.to_string().contains("32-byte digest"), "{err}");
});

softhsm_test!(fn many_threads_sign_through_one_pool(token) {
    let hsm = std::sync::Arc::new(token.open());
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "shared")).unwrap();
    let key = hsm.signing_key(&"shared".parse().unwrap()).unwrap();
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    let digest = [t ^ i; 32];
                    let signature = key.sign(&digest).unwrap();
                    assert!(verify(Curve::Secp256k1, key.public_key().uncompressed(), &digest, &signature));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(hsm.open_sessions() <= 4, "the pool is bounded: {}", hsm.open_sessions());
});
