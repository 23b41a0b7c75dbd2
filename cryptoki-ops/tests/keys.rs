//! Key generation, the attribute policy, finding, listing, deleting, and keys made by other tools.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use common::objects::{count, token_objects};
use test_support::{self as common, softhsm_test};

use common::capabilities::{require, Capability};

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki_ops::{Curve, EcKeySpec, Error, KeyClass, KeySelector, WrappingKeySpec};

softhsm_test!(fn private_keys_are_sensitive_and_non_extractable_by_default(token) {
    let hsm = token.open();
    for curve in Curve::ALL {
        if curve == Curve::Ed25519 && !require(token, Capability::EdDsa) {
            continue;
        }
        let pair = hsm.generate_ec_key(&EcKeySpec::new(curve, format!("k-{curve}"))).unwrap();
        let key = &pair.private;
        assert_eq!(key.class, KeyClass::Private);
        assert_eq!(key.curve, Some(curve));
        assert_eq!(key.extractable, Some(false), "{curve}");
        assert_eq!(key.sensitive, Some(true), "{curve}");
        assert_eq!(key.id.len(), 8);
    }
    // The raw attributes as any PKCS#11 tool sees them.
    let attributes = hsm
        .with_session(|s| {
            let handle = s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"k-secp256k1".to_vec())])?[0];
            s.get_attributes(handle, &[AttributeType::Token, AttributeType::Private, AttributeType::Sign, AttributeType::Decrypt, AttributeType::Derive, AttributeType::EcParams])
        })
        .unwrap();
    assert!(attributes.contains(&Attribute::Token(true)));
    assert!(attributes.contains(&Attribute::Private(true)));
    assert!(attributes.contains(&Attribute::Sign(true)));
    assert!(attributes.contains(&Attribute::Decrypt(false)));
    assert!(attributes.contains(&Attribute::Derive(false)));
    assert!(attributes.contains(&Attribute::EcParams(vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a])));
});

softhsm_test!(fn reading_the_value_of_a_sensitive_key_is_refused(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "secret")).unwrap();
    let value = hsm
        .with_session(|s| {
            let handle = s.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])?[0];
            s.get_attributes(handle, &[AttributeType::Value])
        })
        .unwrap();
    assert!(value.is_empty(), "CKA_VALUE of a sensitive key must not be readable: {value:?}");
});

softhsm_test!(fn backupable_keys_are_extractable_only_under_trusted_wrapping_keys(token) {
    let hsm = token.open();
    let pair = hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "backup-me").backupable()).unwrap();
    assert_eq!(pair.private.extractable, Some(true));
    assert_eq!(pair.private.wrap_with_trusted, Some(true));
    assert_eq!(pair.private.sensitive, Some(true));
});

softhsm_test!(fn both_halves_share_label_and_id_and_the_public_key_is_exported(token) {
    let hsm = token.open();
    let pair = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "pair")).unwrap();
    let keys = hsm.list_keys().unwrap();
    let halves: Vec<_> = keys.iter().filter(|k| k.label == "pair").collect();
    assert_eq!(halves.len(), 2);
    assert!(halves.iter().all(|k| k.id == pair.private.id && k.curve == Some(Curve::P256)));
    let public = hsm.public_key(&KeySelector::Id(pair.private.id.clone())).unwrap();
    assert_eq!(public, pair.public_key);
    assert_eq!(public.uncompressed().len(), 65);
    assert_eq!(public.compressed().len(), 33);
    p256::PublicKey::from_sec1_bytes(&public.compressed()).unwrap();
});

softhsm_test!(fn a_missing_key_lists_the_labels_that_exist(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "alpha")).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "beta")).unwrap();
    let err = hsm.signing_key(&"gamma".parse().unwrap()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::KeyNotFound { .. }), "{message}");
    assert!(message.contains("'gamma'") && message.contains("'alpha'") && message.contains("'beta'"), "{message}");
});

softhsm_test!(fn a_label_taken_twice_is_an_error_naming_both_ids(token) {
    let hsm = token.open();
    let first = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "twin")).unwrap();
    // Our API refuses a taken label...
    let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "twin")).unwrap_err();
    assert!(matches!(err, Error::KeyExists { .. }), "{err}");
    // ...but another tool may make one: import a second private key with the same label.
    let second = hsm.with_session(|s| {
        let (_, private) = s.generate_key_pair(
            &cryptoki::mechanism::Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(Curve::P256.ec_params().to_vec()), Attribute::Token(true)],
            &[Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true), Attribute::Label(b"twin".to_vec()), Attribute::Id(vec![0xee; 4])],
        )?;
        Ok(private)
    });
    second.unwrap();
    let err = hsm.signing_key(&"twin".parse().unwrap()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::DuplicateLabel { count: 2, .. }), "{message}");
    assert!(message.contains(&first.private.id_hex()) && message.contains("eeeeeeee"), "{message}");
    // Selecting by id still works.
    hsm.signing_key(&KeySelector::Id(first.private.id.clone())).unwrap();
});

softhsm_test!(fn keys_are_listed_and_deleted(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "a")).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "b")).unwrap();
    let wrap = hsm.generate_wrapping_key(&WrappingKeySpec::new("w")).unwrap();
    assert_eq!(wrap.class, KeyClass::Secret);
    assert_eq!(wrap.extractable, Some(false));
    assert_eq!(wrap.check_value.as_ref().map(Vec::len), Some(3), "SoftHSM2 computes a KCV");
    let keys = hsm.list_keys().unwrap();
    let summary: Vec<_> = keys.iter().map(|k| (k.label.as_str(), k.class.name())).collect();
    assert_eq!(summary, [("a", "private"), ("a", "public"), ("b", "private"), ("b", "public"), ("w", "secret")]);
    assert_eq!(hsm.delete_key(&"a".parse().unwrap()).unwrap(), 2);
    assert_eq!(hsm.delete_key(&"w".parse().unwrap()).unwrap(), 1);
    let left: Vec<_> = hsm.list_keys().unwrap().into_iter().map(|k| k.label).collect();
    assert_eq!(left, ["b", "b"]);
    // And on the token itself, for a fresh reader of every object class.
    let objects = token_objects(token);
    assert_eq!(objects.len(), 2, "{objects:#?}");
    assert_eq!((count(&objects, "Private Key Object", "b"), count(&objects, "Public Key Object", "b")), (1, 1), "{objects:#?}");
    let err = hsm.delete_key(&"a".parse().unwrap()).unwrap_err();
    assert!(matches!(err, Error::KeyNotFound { .. }), "{err}");
});

softhsm_test!(fn a_deleted_then_recreated_key_signs_with_the_new_key(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "rotating").with_id(vec![1, 2, 3])).unwrap();
    let old = hsm.signing_key(&"rotating".parse().unwrap()).unwrap();
    old.sign(&[1; 32]).unwrap(); // caches the handle in a session
    hsm.delete_key(&"rotating".parse().unwrap()).unwrap();
    let pair = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "rotating").with_id(vec![1, 2, 3])).unwrap();
    let new = hsm.signing_key(&"rotating".parse().unwrap()).unwrap();
    let signature = new.sign(&[2; 32]).unwrap();
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(pair.public_key.uncompressed()).unwrap();
    verifying.verify_prehash(&[2; 32], &p256::ecdsa::Signature::from_slice(&signature).unwrap()).unwrap();
});

softhsm_test!(fn unsupported_curves_are_refused_clearly(token) {
    let err = "secp384r1".parse::<Curve>().unwrap_err();
    assert!(matches!(err, Error::UnsupportedCurve { .. }), "{err}");
    assert!(err.to_string().contains("secp256k1, P-256"), "{err}");
    // A P-384 key made by another tool is listed but cannot be used as a signing key here.
    let hsm = token.open();
    hsm.with_session(|s| {
        s.generate_key_pair(
            &cryptoki::mechanism::Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]), Attribute::Token(true), Attribute::Label(b"p384".to_vec()), Attribute::Id(vec![9])],
            &[Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true), Attribute::Label(b"p384".to_vec()), Attribute::Id(vec![9])],
        )
    })
    .unwrap();
    let listed = hsm.list_keys().unwrap();
    assert!(listed.iter().any(|k| k.label == "p384" && k.curve.is_none()));
    let err = hsm.signing_key(&"p384".parse().unwrap()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedCurve { .. }), "{err}");
});

softhsm_test!(fn keys_made_by_pkcs11_tool_are_usable_and_ours_are_visible_to_it(token) {
    // OpenSC's pkcs11-tool is an independent PKCS#11 client: it must see our keys, and we must
    // use its keys.
    let run = |args: &[&str]| {
        let output = std::process::Command::new("pkcs11-tool")
            .args(["--module", token.module.to_str().unwrap(), "--token-label", &token.label, "--pin", common::USER_PIN])
            .args(args)
            .output()
            .expect("pkcs11-tool (Debian package opensc) must be installed: the test command installs it");
        assert!(output.status.success(), "pkcs11-tool {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&["--keypairgen", "--key-type", "EC:secp256k1", "--label", "from-opensc", "--id", "0102"]);
    let hsm = token.open();
    let key = hsm.signing_key(&"from-opensc".parse().unwrap()).unwrap();
    assert_eq!(key.curve(), Curve::Secp256k1);
    key.sign(&[7; 32]).unwrap();

    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "from-us")).unwrap();
    let listing = run(&["--list-objects", "--type", "pubkey"]);
    assert!(listing.contains("from-us") && listing.contains("from-opensc"), "{listing}");
    // pkcs11-tool reads our CKA_EC_PARAMS as the P-256 OID and CKA_EC_POINT as a DER OCTET
    // STRING around an uncompressed point (04 41 04 ...).
    let ours = listing.split("label:      from-us").next().unwrap().rsplit("Public Key Object").next().unwrap();
    assert!(ours.contains("EC_PARAMS:  06082a8648ce3d030107"), "{listing}");
    assert!(ours.contains("EC_POINT:   044104"), "{listing}");
});

/// The labels of the public-key objects an independent client (OpenSC's `pkcs11-tool`) sees on
/// `token` without logging in.
fn public_labels_seen_without_login(token: &common::TestToken) -> String {
    let output = std::process::Command::new("pkcs11-tool")
        .args([
            "--module",
            token.module.to_str().unwrap(),
            "--token-label",
            &token.label,
        ])
        .args(["--list-objects", "--type", "pubkey"])
        .output()
        .expect(
            "pkcs11-tool (Debian package opensc) must be installed: the test command installs it",
        );
    assert!(
        output.status.success(),
        "pkcs11-tool: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

softhsm_test!(fn public_halves_are_private_objects_visible_only_after_login(token) {
    // CloudHSM accepts CKA_PRIVATE on EC public keys only at its default, true (AWS CloudHSM
    // user guide, "PKCS #11 attributes", footnote 1), so public halves are private everywhere.
    let hsm = token.open();
    let pair = hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "hidden")).unwrap();
    let unauthenticated = public_labels_seen_without_login(token);
    assert!(!unauthenticated.contains("hidden"), "a session that is not logged in sees the public half:\n{unauthenticated}");
    // Logged in, the library finds and reads it.
    let attributes = hsm
        .with_session(|s| {
            let handle = s.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Label(b"hidden".to_vec())])?[0];
            s.get_attributes(handle, &[AttributeType::Private, AttributeType::EcPoint])
        })
        .unwrap();
    assert!(attributes.contains(&Attribute::Private(true)), "{attributes:?}");
    assert!(attributes.contains(&Attribute::EcPoint(pair.public_key.to_ec_point())), "{attributes:?}");
    assert_eq!(hsm.public_key(&"hidden".parse().unwrap()).unwrap(), pair.public_key);
    assert!(hsm.list_keys().unwrap().iter().any(|k| k.label == "hidden" && k.class == KeyClass::Public));
});

softhsm_test!(fn delete_removes_only_the_public_key_that_pairs_with_the_private_key(token) {
    // Issue 12 item 3: another key pair with the same CKA_ID (made by another tool, or by a
    // restore before ids were checked) must survive the deletion of this one.
    let hsm = token.open();
    let baker = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker")).unwrap();
    let id = baker.private.id.clone();
    hsm.with_session(|s| {
        s.generate_key_pair(
            &cryptoki::mechanism::Mechanism::EccKeyPairGen,
            &[Attribute::EcParams(Curve::P256.ec_params().to_vec()), Attribute::Token(true), Attribute::Label(b"other".to_vec()), Attribute::Id(id.clone())],
            &[Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true), Attribute::Label(b"other".to_vec()), Attribute::Id(id.clone())],
        )
    })
    .unwrap();
    assert_eq!(hsm.delete_key(&"other".parse().unwrap()).unwrap(), 2, "the private key and its own public key");
    let left: Vec<_> = hsm.list_keys().unwrap().into_iter().map(|k| (k.label, k.class.name())).collect();
    assert_eq!(left, [("baker".to_string(), "private"), ("baker".to_string(), "public")]);
    let objects = token_objects(token);
    assert_eq!(objects.len(), 2, "only baker's two halves, for a fresh reader: {objects:#?}");
    assert_eq!((count(&objects, "Private Key Object", "baker"), count(&objects, "Public Key Object", "baker")), (1, 1), "{objects:#?}");
    assert_eq!(hsm.public_key(&"baker".parse().unwrap()).unwrap(), baker.public_key);
    hsm.signing_key(&"baker".parse().unwrap()).unwrap().sign(&[1; 32]).unwrap();
});

softhsm_test!(fn labels_and_ids_of_new_keys_are_checked(token) {
    let hsm = token.open();
    let before = token_objects(token);
    let long = "x".repeat(65);
    for label in ["", long.as_str(), "two\nlines", "red \u{1b}[31m", "tab\there", "del\u{7f}", "rtl\u{202e}"] {
        let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, label)).unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{label:?}: {err}");
        assert!(err.to_string().contains("1 to 64 bytes of printable UTF-8"), "{label:?}: {err}");
        let err = hsm.generate_wrapping_key(&WrappingKeySpec::new(label)).unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{label:?}: {err}");
    }
    for id in [vec![], vec![7; 33], vec![7; 1_000_000]] {
        let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "k").with_id(id.clone())).unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{}: {err}", id.len());
        assert!(err.to_string().contains("1 to 32 bytes"), "{err}");
    }
    assert_eq!(token_objects(token), before, "nothing was made (a fresh reader)");
    // The limits themselves, and printable non-ASCII text, are fine.
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "x".repeat(64)).with_id(vec![9; 32])).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "clé de l'été")).unwrap();
    // An explicit id another key already has is refused too, naming that key.
    let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "again").with_id(vec![9; 32])).unwrap_err();
    assert_eq!(err.kind(), "id_exists", "{err}");
    assert!(err.to_string().contains(&"x".repeat(64)) && err.to_string().contains("'again'"), "{err}");
});
