//! The library against the CloudHSM profile (`cloudhsm-profile/`): SoftHSM2 behind the
//! documented rules of AWS CloudHSM SDK 5, with deterministic fault injection.
//!
//! Each test runs in its own process (the `softhsm_test!` harness): the token is initialised on
//! SoftHSM2 directly (CloudHSM tokens come initialised), then the test opens it through the
//! profile, which shares SoftHSM2's state in the process. Faults are set in the environment
//! before the profile is loaded.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;
use common::profile_module;

use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki_ops::secrecy::SecretBox;
use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{
    Curve, EcKeySpec, Error, Hsm, HsmConfig, KeySelector, ModuleSource, PinSource, Role,
    WrappingKeySpec,
};
use tezos_keys::runbook::{install_ceremony_key, RunbookError};

/// The test token through the profile, with the fault variables `faults` set for this process.
fn through_profile(token: &common::TestToken, faults: &[(&str, &str)]) -> HsmConfig {
    std::env::set_var("CLOUDHSM_PROFILE_SOFTHSM2", &token.module);
    for (name, value) in faults {
        std::env::set_var(name, value);
    }
    token
        .config()
        .with_module(ModuleSource::Path(profile_module()))
}

fn rv_of(result: Result<impl std::fmt::Debug, cryptoki::error::Error>) -> RvError {
    match result {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

softhsm_test!(fn the_documented_cloudhsm_rules_are_enforced(token) {
    let config = through_profile(token, &[]);
    let hsm = Hsm::open(&config).unwrap();
    assert!(hsm.module().is_cloudhsm(), "the profile's file name marks it as CloudHSM");

    // No CKU_SO login ("PKCS #11 library PIN": crypto users only).
    let mut so = config.clone().with_role(Role::SecurityOfficer);
    so.pin = PinSource::Value(SecretString::from(common::SO_PIN));
    let err = Hsm::open(&so).unwrap_err();
    assert!(matches!(err, Error::Pkcs11 { rv: RvError::UserTypeInvalid, .. }), "{err}");
    assert!(err.to_string().contains("crypto users only"), "{err}");

    // No read-only session ("Known issues for the PKCS #11 library").
    let pkcs11 = hsm.module().pkcs11();
    let slot = pkcs11.get_slots_with_token().unwrap()[0];
    assert_eq!(rv_of(pkcs11.open_ro_session(slot)), RvError::FunctionFailed);

    let oid = Curve::P256.ec_params().to_vec();
    hsm.with_session(|s| {
        // CKA_PRIVATE=false on an EC public key is refused ("PKCS #11 attributes", footnote 1).
        let public = [Attribute::Token(true), Attribute::Private(false), Attribute::EcParams(oid.clone())];
        let private = [Attribute::Token(true), Attribute::Sign(true)];
        assert_eq!(rv_of(s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)), RvError::AttributeValueInvalid);
        // CKA_TRUSTED is not settable through PKCS#11 ("Modify attributes").
        let aes = |extra: Option<Attribute>| {
            let mut t = vec![Attribute::Token(true), Attribute::ValueLen(32.into()), Attribute::Label(b"aes".to_vec())];
            t.extend(extra);
            s.generate_key(&Mechanism::AesKeyGen, &t)
        };
        assert_eq!(rv_of(aes(Some(Attribute::Trusted(true)))), RvError::AttributeReadOnly);
        // CKA_EXTRACTABLE is true when the template leaves it out (SoftHSM2's default is false).
        let key = aes(None)?;
        assert_eq!(s.get_attributes(key, &[AttributeType::Extractable])?, [Attribute::Extractable(true)]);
        assert_eq!(rv_of(s.update_attributes(key, &[Attribute::Trusted(true)])), RvError::AttributeReadOnly);
        s.destroy_object(key)
    })
    .unwrap();

    // Only the vendor AES key wraps, and no EdDSA ("Supported mechanisms"). cryptoki drops
    // vendor-defined values from C_GetMechanismList, so they are asked for one by one.
    let listed = pkcs11.get_mechanism_list(slot).unwrap();
    let vendor = |v| MechanismType::new_vendor_defined(v).unwrap();
    for present in [vendor(0x8000_216F), vendor(0x8000_2109), MechanismType::ECDSA, MechanismType::ECC_KEY_PAIR_GEN] {
        pkcs11.get_mechanism_info(slot, present).unwrap();
    }
    for absent in [MechanismType::AES_KEY_WRAP, MechanismType::AES_KEY_WRAP_PAD, MechanismType::EDDSA, MechanismType::ECC_EDWARDS_KEY_PAIR_GEN] {
        assert!(!listed.contains(&absent), "{absent} listed: {listed:?}");
        assert_eq!(rv_of(pkcs11.get_mechanism_info(slot, absent)), RvError::MechanismInvalid);
    }
    let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::Ed25519, "tz1")).unwrap_err();
    assert!(matches!(err, Error::MechanismNotSupported { .. }), "{err}");
    assert!(hsm.list_keys().unwrap().is_empty());
});

/// Signs a digest with `key` and checks the signature with the key's public key.
fn sign_and_verify(hsm: &Hsm, label: &str) {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let key = hsm.signing_key(&KeySelector::Label(label.into())).unwrap();
    let digest = [0x5a; 32];
    let signature = key.sign(&digest).unwrap();
    let point = hsm.public_key(&KeySelector::Label(label.into())).unwrap();
    match key.curve() {
        Curve::Secp256k1 => k256::ecdsa::VerifyingKey::from_sec1_bytes(point.uncompressed())
            .unwrap()
            .verify_prehash(
                &digest,
                &k256::ecdsa::Signature::from_slice(&signature)
                    .unwrap()
                    .normalize_s(),
            )
            .unwrap(),
        _ => p256::ecdsa::VerifyingKey::from_sec1_bytes(point.uncompressed())
            .unwrap()
            .verify_prehash(
                &digest,
                &p256::ecdsa::Signature::from_slice(&signature).unwrap(),
            )
            .unwrap(),
    }
}

softhsm_test!(fn keys_are_generated_and_sign_through_the_profile(token) {
    let hsm = Hsm::open(&through_profile(token, &[])).unwrap();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("baker-{curve}");
        let pair = hsm.generate_ec_key(&EcKeySpec::new(curve, &label)).unwrap();
        assert_eq!(pair.private.extractable, Some(false), "set explicitly, not CloudHSM's default");
        sign_and_verify(&hsm, &label);
    }
    let backupable = hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "backup").backupable()).unwrap();
    assert_eq!(backupable.private.wrap_with_trusted, Some(true));

    // The command-line tool, as an operator would run it against the CloudHSM library.
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tezos-hsm"))
            .args(["--module", profile_module().to_str().unwrap(), "--token", &token.label, "--pin", "env:PROFILE_TEST_PIN"])
            .args(args)
            .env("PROFILE_TEST_PIN", common::USER_PIN)
            .env("TEZOS_HSM_HOME", home.path())
            .env("CLOUDHSM_PROFILE_SOFTHSM2", &token.module)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "tezos-hsm {args:?}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let generated = cli(&["--json", "key", "generate", "--curve", "secp256k1", "--label", "cli-baker"]);
    let generated: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let public_key = generated["public_key"].as_str().unwrap().to_owned();
    let address: tezos_keys::PublicKeyHash = generated["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(public_key.parse::<tezos_keys::PublicKey>().unwrap().hash(), address, "{generated}");
    assert!(public_key.starts_with("sppk"), "{generated}");
    let signed = cli(&["--json", "sign", "cli-baker", "03aabbcc"]);
    let signed: serde_json::Value = serde_json::from_str(&signed).unwrap();
    assert_eq!(signed["address"], address.to_string());
    // The signature made through the profile verifies, for the payload signed only.
    tezos_keys::verify_encoded(&public_key, &[0x03, 0xaa, 0xbb, 0xcc], signed["signature"].as_str().unwrap()).unwrap();
    let err = tezos_keys::verify_encoded(&public_key, &[0x03, 0xaa, 0xbb, 0xcd], signed["signature"].as_str().unwrap()).unwrap_err();
    assert_eq!(err.kind(), "verify_failed", "{err}");
});

softhsm_test!(fn a_module_that_refuses_wrap_with_trusted_gets_an_error_not_a_weaker_key(token) {
    // A module that does not know CKA_WRAP_WITH_TRUSTED answers CKR_TEMPLATE_INCONSISTENT ("Attribute
    // errors"). The old code regenerated the key without it: extractable under any wrapping key.
    let hsm = Hsm::open(&through_profile(token, &[("CLOUDHSM_PROFILE_UNKNOWN_ATTRIBUTES", "0x210")])).unwrap();
    let before = common::objects::token_objects(token);
    let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "backup").backupable()).unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), "not_supported_by_module", "{message}");
    assert!(message.contains("libcloudhsm_profile.so") && message.contains("CKA_WRAP_WITH_TRUSTED") && message.contains("without --backupable"), "{message}");
    assert_eq!(common::objects::token_objects(token), before, "no key may be left, weaker or not (a fresh reader)");
    hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "plain")).unwrap();
});

/// Signs from 8 threads, `per_thread` times each, as a signer does (the key looked up once,
/// every fourth signature with a fresh lookup), and returns the errors callers got.
fn signing_load(hsm: &Hsm, per_thread: usize) -> Vec<String> {
    let digest = [0x11; 32];
    let signed = AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    let key = hsm.signing_key(&"load".parse().unwrap()).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for i in 0..per_thread {
                    let result = if i % 4 == 3 {
                        hsm.signing_key(&"load".parse().unwrap())
                            .and_then(|k| k.sign(&digest))
                    } else {
                        key.sign(&digest)
                    };
                    match result {
                        Ok(_) => {
                            signed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => errors.lock().unwrap().push(format!("{}: {e}", e.kind())),
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    assert_eq!(
        signed.load(Ordering::Relaxed) + errors.len(),
        8 * per_thread
    );
    errors
}

/// A token with the key `load`, opened through the profile with `faults`, pool of 4 sessions.
fn loaded(token: &common::TestToken, faults: &[(&str, &str)]) -> Hsm {
    let hsm = Hsm::open(&through_profile(token, faults).with_max_sessions(4)).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "load"))
        .unwrap();
    hsm
}

softhsm_test!(fn the_pool_absorbs_throttling_under_8_threads(token) {
    // Every 5th signature of a session is throttled (CKR_FUNCTION_FAILED, "HSM throttling"), and
    // every 40th attribute read (CKR_DEVICE_ERROR, "Known issues for the PKCS #11 library").
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_THROTTLE_EVERY", "5"), ("CLOUDHSM_PROFILE_THROTTLE_READS_EVERY", "40")]);
    let errors = signing_load(&hsm, 25);
    assert!(errors.is_empty(), "{} errors reached callers: {errors:?}", errors.len());
});

softhsm_test!(fn the_pool_replaces_dead_sessions_under_8_threads(token) {
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_DEAD_SESSION_EVERY", "11")]);
    let errors = signing_load(&hsm, 25);
    assert!(errors.is_empty(), "{} errors reached callers: {errors:?}", errors.len());
});

softhsm_test!(fn the_pool_logs_in_again_after_a_logout_behind_its_back(token) {
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_LOGOUT_EVERY", "10")]);
    let errors = signing_load(&hsm, 25);
    assert!(errors.is_empty(), "{} errors reached callers: {errors:?}", errors.len());
});

softhsm_test!(fn all_faults_at_once_under_8_threads(token) {
    let hsm = loaded(token, &[
        ("CLOUDHSM_PROFILE_THROTTLE_EVERY", "7"),
        ("CLOUDHSM_PROFILE_DEAD_SESSION_EVERY", "11"),
        ("CLOUDHSM_PROFILE_LOGOUT_EVERY", "13"),
    ]);
    let errors = signing_load(&hsm, 25);
    assert!(errors.is_empty(), "{} errors reached callers: {errors:?}", errors.len());
});

softhsm_test!(fn a_removed_device_is_a_clear_error_not_a_hang(token) {
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_REMOVE_AFTER", "40")]);
    let started = std::time::Instant::now();
    let errors = signing_load(&hsm, 10);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(!errors.is_empty(), "the device went away after 40 calls");
    assert!(errors.iter().all(|e| e.starts_with("pkcs11:") && e.contains("the HSM or its connection failed")), "{errors:?}");
});

softhsm_test!(fn a_backup_moves_between_tokens_with_the_vendor_zero_pad_wrap(token) {
    // The admin marks the wrapping key trusted outside PKCS#11 (CloudHSM CLI `key set-attribute`);
    // here SoftHSM2's security officer plays that part, on SoftHSM2 directly.
    use cryptoki_ops::secrecy::SecretBox;
    use cryptoki_ops::{UnwrapTarget, WrapMechanism, WrappingKeySpec};
    let second = token.another("second-hsm");
    for t in [token, &second] {
        let so = Hsm::open(&t.so_config()).unwrap();
        so.import_wrapping_key(&WrappingKeySpec::new("ceremony").trusted(), &SecretBox::new(Box::new([0x42; 32]))).unwrap();
    }
    let a = Hsm::open(&through_profile(token, &[])).unwrap();
    let b = Hsm::open(&through_profile(&second, &[])).unwrap();
    let pair = a.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker").backupable()).unwrap();
    let wrapped = a.wrap_private_key(&"baker".parse().unwrap(), &"ceremony".parse().unwrap(), None).unwrap();
    assert_eq!(wrapped.mechanism, WrapMechanism::CloudHsmZeroPad, "the only AES key wrap with padding CloudHSM lists");
    let target = UnwrapTarget { label: "baker".into(), id: pair.private.id.clone(), public_key: pair.public_key.clone(), backupable: true };
    let restored = b.unwrap_private_key(&wrapped, &"ceremony".parse().unwrap(), &target).unwrap();
    assert_eq!(restored.public_key, pair.public_key);
    sign_and_verify(&b, "baker");
});

softhsm_test!(fn a_ceremony_key_imported_with_another_check_value_is_deleted_again(token) {
    // The key value damaged on its way to the token: the token holds another key, and shows
    // another check value than the custodians' value has. The ceremony must refuse, saying both
    // check values, and delete what it imported.
    let config = through_profile(token, &[("CLOUDHSM_PROFILE_DAMAGE_SECRET_VALUES", "1")]);
    let hsm = Hsm::open(&config).unwrap();
    let before = common::objects::token_objects(token);
    let value = SecretBox::new(Box::new([0x42; 32]));
    let err = install_ceremony_key(&[hsm], &WrappingKeySpec::new("ceremony"), &value).unwrap_err();
    assert!(matches!(err, RunbookError::WrappingKeyValueMismatch { .. }), "{err}");
    assert_eq!(err.kind(), "wrong_wrapping_key");
    // bfb6d8: AES-256 of a zero block under 32 x 0x42, first 3 bytes, computed outside this
    // project (`openssl enc -aes-256-ecb -nopad`, Python `cryptography`).
    assert!(err.to_string().contains("bfb6d8"), "{err}");
    assert_eq!(common::objects::token_objects(token), before, "the imported key is gone (a fresh reader)");
});

softhsm_test!(fn a_malformed_fault_variable_fails_the_module_load_not_the_test_silently(token) {
    let err = Hsm::open(&through_profile(token, &[("CLOUDHSM_PROFILE_THROTTLE_EVERY", "often")])).unwrap_err();
    assert_eq!(err.kind(), "module_load", "{err}");
});

softhsm_test!(fn capability_probes_tell_the_modules_apart(token) {
    // The harness decides what a test may do by these probes (test-support/src/capabilities.rs):
    // SoftHSM2 has every capability, the profile none, whatever the modules are called.
    use common::capabilities::{has, Capability};
    let all = [
        Capability::SecurityOfficerLogin,
        Capability::EdDsa,
        Capability::StandardAesKeyWrap,
        Capability::ReadOnlySessions,
    ];
    std::env::remove_var(common::VIA_PROFILE_ENV);
    for capability in all {
        assert!(has(token, capability), "SoftHSM2 has {}", capability.name());
    }
    std::env::set_var(common::VIA_PROFILE_ENV, "1");
    for capability in all {
        assert!(!has(token, capability), "the CloudHSM profile has no {}", capability.name());
    }
});

softhsm_test!(fn persistent_throttling_gets_a_bounded_back_off_then_a_clear_error(token) {
    // Every signature throttled ("HSM throttling"): the pool waits 5-10, 10-20, 20-40, 40-80 and
    // 80-160 ms between tries, then returns the error, neither at once nor never.
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_THROTTLE_EVERY", "1")]);
    let key = hsm.signing_key(&"load".parse().unwrap()).unwrap();
    let started = std::time::Instant::now();
    let err = key.sign(&[0x11; 32]).unwrap_err();
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(155), "gave up without backing off: {took:?}");
    assert!(took < std::time::Duration::from_secs(5), "back-off not bounded: {took:?}");
    assert_eq!(err.kind(), "pkcs11", "{err}");
    assert!(matches!(err, Error::Pkcs11 { rv: RvError::FunctionFailed, .. }), "{err}");
    // A busy HSM is not a dead session: the session was kept, not replaced.
    assert_eq!(hsm.open_sessions(), 1, "the throttled session went back to the pool");
    let stats = hsm.pool_stats();
    assert_eq!((stats.throttled, stats.limit), (6, 1), "every busy answer counted, the limit lowered: {stats:?}");
});

softhsm_test!(fn throttled_attribute_reads_are_retried_for_lookups_and_listings(token) {
    // Every 20th attribute read of a session answers CKR_DEVICE_ERROR ("Known issues for the
    // PKCS #11 library"): lookups and listings are idempotent and retried after a back-off. (A
    // listing reads each object twice, size then values: the period must exceed one listing, or
    // every try would meet a throttled read; real throttling is by rate, not by count.)
    // The keys are made on SoftHSM2 directly: generation is not repeated on a busy answer.
    let mut labels = Vec::new();
    let direct = token.open();
    for i in 0..3 {
        let label = format!("key-{i}");
        direct.generate_ec_key(&EcKeySpec::new(Curve::P256, &label)).unwrap();
        labels.push(label);
    }
    let hsm = Hsm::open(&through_profile(token, &[("CLOUDHSM_PROFILE_THROTTLE_READS_EVERY", "20")])).unwrap();
    for _ in 0..5 {
        for label in &labels {
            hsm.public_key(&KeySelector::Label(label.clone())).unwrap();
        }
        let mut listed: Vec<String> = hsm.list_keys().unwrap().into_iter().map(|k| k.label).collect();
        listed.sort();
        listed.dedup();
        assert_eq!(listed, labels);
    }
});

softhsm_test!(fn key_generation_survives_dead_sessions_and_makes_each_key_once(token) {
    // Key generation is never repeated behind the caller's back, except when the session was
    // dead before anything was done (CKR_SESSION_HANDLE_INVALID): then it reruns on a live one.
    let hsm = Hsm::open(&through_profile(token, &[("CLOUDHSM_PROFILE_DEAD_SESSION_EVERY", "5")])).unwrap();
    let mut made = Vec::new();
    for i in 0..6 {
        let label = format!("baker-{i}");
        match hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, &label)) {
            Ok(_) => made.push(label),
            Err(e) => panic!("generating {label}: {e}"),
        }
    }
    let keys = hsm.list_keys().unwrap();
    for label in &made {
        let count = keys.iter().filter(|k| &k.label == label && k.class == cryptoki_ops::KeyClass::Private).count();
        assert_eq!(count, 1, "{label} made {count} times: {keys:?}");
    }
    for label in &made {
        sign_and_verify(&hsm, label);
    }
});

softhsm_test!(fn a_throttled_read_during_key_generation_fails_it_cleanly(token) {
    // Key generation is never repeated behind the caller's back, also when the HSM is busy: a
    // throttled read of the new key's attributes (every 4th read here) fails the generation, and
    // no half-made key is left under the label, so the operator's retry works.
    let hsm = Hsm::open(&through_profile(token, &[("CLOUDHSM_PROFILE_THROTTLE_READS_EVERY", "4")])).unwrap();
    let before = common::objects::token_objects(token);
    let err = hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker")).unwrap_err();
    assert!(matches!(err, Error::Pkcs11 { rv: RvError::DeviceError, .. }), "{err}");
    assert!(err.to_string().contains("'baker'"), "names the key: {err}");
    assert_eq!(common::objects::token_objects(token), before, "a half-made key was left (a fresh reader)");
    let direct = token.open();
    direct.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker")).unwrap();
});

/// The private-key handle of `label`, found on a raw session.
fn private_handle(
    session: &cryptoki::session::Session,
    label: &str,
) -> cryptoki::object::ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    found[0]
}

/// CPU time this thread has used so far (`/proc/thread-self/schedstat`, first field, ns).
fn thread_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    std::time::Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

softhsm_test!(fn the_simulated_round_trips_sleep_for_their_latency(token) {
    // CLOUDHSM_PROFILE_SIGN_LATENCY_US / READ_LATENCY_US: a signature and a read each take at
    // least their round trip, spent asleep, not on the CPU.
    use std::time::{Duration, Instant};
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_SIGN_LATENCY_US", "150000"), ("CLOUDHSM_PROFILE_READ_LATENCY_US", "60000")]);
    hsm.with_session(|s| {
        let started = Instant::now();
        let key = private_handle(s, "load");
        assert!(started.elapsed() >= Duration::from_millis(60), "C_FindObjects took {:?}", started.elapsed());
        let started = Instant::now();
        s.get_attributes(key, &[AttributeType::Sign])?;
        assert!(started.elapsed() >= Duration::from_millis(60), "C_GetAttributeValue took {:?}", started.elapsed());
        let (started, cpu) = (Instant::now(), thread_cpu());
        let signature = s.sign(&Mechanism::Ecdsa, key, &[0x11; 32])?;
        let (took, on_cpu) = (started.elapsed(), thread_cpu() - cpu);
        assert_eq!(signature.len(), 64);
        assert!(took >= Duration::from_millis(150), "C_Sign took {took:?}");
        assert!(on_cpu < Duration::from_millis(75), "the delay burned {on_cpu:?} of CPU in {took:?}");
        Ok(())
    })
    .unwrap();
});

softhsm_test!(fn the_module_throttles_signatures_above_its_capacity(token) {
    // CLOUDHSM_PROFILE_SIGN_CAPACITY=1: while one signature is in flight (1 s round trip), a
    // second one is refused with CKR_FUNCTION_FAILED ("HSM throttling"); once the first is done,
    // signing works again on the same session.
    let hsm = loaded(token, &[("CLOUDHSM_PROFILE_SIGN_CAPACITY", "1"), ("CLOUDHSM_PROFILE_SIGN_LATENCY_US", "1000000")]);
    let raw_sign = |hsm: &Hsm| {
        hsm.with_session(|s| Ok(s.sign(&Mechanism::Ecdsa, private_handle(s, "load"), &[0x22; 32]))).unwrap()
    };
    std::thread::scope(|scope| {
        let first = scope.spawn(|| raw_sign(&hsm));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let second = raw_sign(&hsm);
        assert_eq!(rv_of(second), RvError::FunctionFailed, "over capacity");
        assert_eq!(first.join().unwrap().unwrap().len(), 64, "the signature in flight is served");
    });
    assert_eq!(raw_sign(&hsm).unwrap().len(), 64, "below capacity again");
});

softhsm_test!(fn the_pool_keeps_32_threads_under_a_capacity_limit_free_of_errors(token) {
    // 32 threads on a pool of 32 sessions against a simulated cluster that serves 4 signatures at
    // once (2 ms each): the HSM throttles, the pool lowers its sessions in use and backs off,
    // and no caller sees an error.
    let hsm = Hsm::open(&through_profile(token, &[("CLOUDHSM_PROFILE_SIGN_CAPACITY", "4"), ("CLOUDHSM_PROFILE_SIGN_LATENCY_US", "2000")]).with_max_sessions(32)).unwrap();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "load")).unwrap();
    let key = hsm.signing_key(&"load".parse().unwrap()).unwrap();
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..32 {
            scope.spawn(|| {
                for _ in 0..25 {
                    if let Err(e) = key.sign(&[0x33; 32]) {
                        errors.lock().unwrap().push(format!("{}: {e}", e.kind()));
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "{} of 800 signatures failed, the first: {:?}", errors.len(), errors.first());
    let stats = hsm.pool_stats();
    assert!(stats.throttled > 0, "the capacity was never exceeded, nothing was tested: {stats:?}");
    assert!(stats.limit < 32, "the pool did not lower its sessions in use: {stats:?}");
});
