//! `tezos-hsm serve`, the Octez remote signer, as a process on a real SoftHSM2 token: the
//! protocol octez-client and Taquito speak, the double-signing guard behind it, bad input, and
//! the server staying up.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::cli::CliHome;
use common::payloads;
use common::serve::{Answer, Served};

/// A home with keys `labels` (curve, label) generated, and their addresses.
fn home_with(keys: &[(&str, &str)]) -> (CliHome, Vec<String>) {
    let home = CliHome::new();
    let addresses = keys
        .iter()
        .map(|(curve, label)| {
            let key = home.json(&["key", "generate", "--curve", curve, "--label", label]);
            key["address"].as_str().unwrap().to_string()
        })
        .collect();
    (home, addresses)
}

fn serve(home: &CliHome, args: &[&str]) -> Served {
    Served::start(home.path(), args, &[]).unwrap_or_else(|stderr| panic!("serve failed:\n{stderr}"))
}

fn assert_error(answer: &Answer, status: u16, kind: &str) {
    assert_eq!(
        (answer.status, answer.kind().as_str()),
        (status, kind),
        "{}",
        answer.body
    );
    assert!(!answer.message().is_empty(), "{}", answer.body);
}

#[test]
fn public_keys_match_key_show_and_signatures_verify() {
    let (home, addresses) = home_with(&[
        ("secp256k1", "tz2-key"),
        ("p256", "tz3-key"),
        ("ed25519", "tz1-key"),
    ]);
    let served = serve(&home, &["--allow", "generic,michelson"]);
    for (label, address) in ["tz2-key", "tz3-key", "tz1-key"].iter().zip(&addresses) {
        let shown = home.json(&["key", "show", label]);
        let answer = served.get(&format!("/keys/{address}"));
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["public_key"], shown["public_key"]);

        for (version, payload) in [
            ("0", payloads::transaction(1)),
            ("1", vec![0x05, 0x01, 0x00]),
            ("2", payloads::transaction(2)),
            ("3", payloads::transaction(3)),
        ] {
            let body = format!("\"{}\"", hex::encode(&payload));
            let answer = served.request(
                "POST",
                &format!("/keys/{address}?version={version}"),
                Some(body.as_bytes()),
            );
            assert_eq!(answer.status, 200, "{}", answer.body);
            let signature = answer.json()["signature"].as_str().unwrap().to_string();
            tezos_keys::verify_encoded(shown["public_key"].as_str().unwrap(), &payload, &signature)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
        }
    }
    // Authentication is off: octez-client then signs without an authentication signature.
    let answer = served.get("/authorized_keys");
    assert_eq!((answer.status, answer.json()), (200, serde_json::json!({})));
}

#[test]
fn bad_requests_get_clear_errors_and_the_server_stays_up() {
    let (home, addresses) = home_with(&[("secp256k1", "baker"), ("p256", "other")]);
    let served = serve(&home, &["--key", "baker"]);
    let key = &addresses[0];
    let keys = format!("/keys/{key}");
    let post = |path: &str, body: &[u8]| served.request("POST", path, Some(body));
    let tz4 = "tz4HVR6aty9KwsQFHh81C1G7gBdhxT8kuytm";
    let cases: Vec<(Answer, u16, &str)> = vec![
        (post(&keys, b"03abcd"), 400, "invalid_request"), // not JSON
        (post(&keys, b"{\"x\":1}"), 400, "invalid_request"),
        (post(&keys, b"\"03abc\""), 400, "invalid_request"), // odd hex
        (post(&keys, b"\"03zz\""), 400, "invalid_request"),
        (post(&keys, b"\"\""), 400, "invalid_input"), // empty payload
        (post(&keys, b"\"ff00\""), 400, "invalid_input"), // unknown watermark
        (post(&keys, b"\"0300\""), 400, "operation_truncated"), // cannot be checked
        (
            served.sign(key, &payloads::attestation(1, 0, 1)),
            403,
            "policy_kind_not_allowed",
        ), // generic only
        (
            post(&format!("{keys}?version=7"), b"\"0300\""),
            400,
            "invalid_request",
        ),
        (
            post(&format!("/keys/{}", addresses[1]), b"\"0300\""),
            404,
            "unknown_key",
        ), // on the token, not served
        (
            served.get(&format!("/keys/{}", addresses[1])),
            404,
            "unknown_key",
        ),
        (
            post("/keys/tz2nothing", b"\"0300\""),
            400,
            "invalid_request",
        ),
        (
            post(&format!("/keys/{tz4}"), b"\"0300\""),
            404,
            "unsupported_key_type",
        ),
        (
            served.get(&format!("/keys/{tz4}")),
            404,
            "unsupported_key_type",
        ),
        (served.get("/known_keys"), 403, "not_allowed"),
        (
            served.get(&format!("/bls_prove_possession/{tz4}")),
            404,
            "unsupported_key_type",
        ),
        (
            served.get(&format!("/bls_prove_possession/{key}")),
            403,
            "not_allowed",
        ),
        (served.get("/nothing/here"), 400, "invalid_request"),
        (
            served.request("DELETE", &keys, None),
            400,
            "invalid_request",
        ),
        (
            post(&keys, format!("\"{}\"", "03".repeat(40_000)).as_bytes()),
            413,
            "body_too_large",
        ),
    ];
    for (answer, status, kind) in &cases {
        assert_error(answer, *status, kind);
        // Up after every bad request.
        assert_eq!(served.get(&keys).status, 200);
    }
    assert_eq!(
        cases[14].0.message(),
        "List known keys request not allowed.",
        "octez-signer's message"
    );
    assert!(cases[2].0.message().contains("Odd number of digits"));
    assert!(cases[12].0.message().contains("not supported"));
    assert_eq!(served.sign(key, &payloads::transaction(1)).status, 200);
}

#[test]
fn consensus_requests_go_through_the_watermark_guard() {
    let (home, addresses) = home_with(&[("p256", "baker")]);
    let key = &addresses[0];
    let served = serve(&home, &["--allow", "block,preattestation,attestation"]);

    let first = served.sign(key, &payloads::attestation(10, 0, 1));
    assert_eq!(first.status, 200, "{}", first.body);
    // The very same bytes: the recorded signature, byte for byte (ECDSA on the HSM is
    // randomised, so a second signature would differ).
    let again = served.sign(key, &payloads::attestation(10, 0, 1));
    assert_eq!((again.status, again.json()), (200, first.json()));
    // Other bytes at the same level, and a lower level: refused.
    assert_error(
        &served.sign(key, &payloads::attestation(10, 0, 2)),
        409,
        "double_sign",
    );
    assert_error(
        &served.sign(key, &payloads::attestation(9, 5, 1)),
        409,
        "double_sign",
    );
    assert_eq!(
        served.sign(key, &payloads::attestation(11, 0, 2)).status,
        200
    );
    // Generic operations are not allowed by this --allow.
    assert_error(
        &served.sign(key, &payloads::transaction(1)),
        403,
        "policy_kind_not_allowed",
    );

    // The record is the file store `sign` uses: the CLI, in another process, is refused too.
    let run = home.run(&[
        "sign",
        "baker",
        &hex::encode(payloads::attestation(11, 0, 3)),
        "--json",
    ]);
    assert_eq!(run.error()["kind"], "double_sign", "{}", run.stderr);
    // And what the CLI signs higher up binds the server.
    home.json(&[
        "sign",
        "baker",
        &hex::encode(payloads::attestation(20, 0, 1)),
    ]);
    assert_error(
        &served.sign(key, &payloads::attestation(15, 0, 1)),
        409,
        "double_sign",
    );
}

#[test]
fn a_broken_watermark_store_is_a_503_and_never_an_unguarded_signature() {
    let (home, addresses) = home_with(&[("secp256k1", "baker")]);
    let key = &addresses[0];
    let served = serve(&home, &["--allow", "attestation,generic"]);
    assert_eq!(
        served.sign(key, &payloads::attestation(5, 0, 1)).status,
        200
    );

    let record = home.path().join("watermarks").join(format!("{key}.json"));
    assert!(record.is_file());
    std::fs::write(&record, b"{ not a record").unwrap();
    let answer = served.sign(key, &payloads::attestation(6, 0, 1));
    assert_error(&answer, 503, "watermark_store_corrupt");
    // Generic operations carry no level: they do not need the store.
    assert_eq!(served.sign(key, &payloads::transaction(2)).status, 200);

    std::fs::remove_dir_all(home.path().join("watermarks")).unwrap();
    let answer = served.sign(key, &payloads::attestation(7, 0, 1));
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.kind().starts_with("watermark_store_"),
        "{}",
        answer.body
    );
}

#[test]
fn startup_errors_say_what_is_wrong_before_listening() {
    let (home, _) = home_with(&[("secp256k1", "baker")]);
    let missing = home.path().join("elsewhere");
    let stderr = Served::start(
        home.path(),
        &["--watermark-dir", missing.to_str().unwrap()],
        &[],
    )
    .err()
    .expect("no watermark directory: no server");
    assert!(stderr.contains("watermark init"), "{stderr}");
    assert!(!missing.exists());

    let stderr = Served::start(home.path(), &["--key", "nope"], &[])
        .err()
        .expect("unknown key: no server");
    assert!(stderr.contains("nope"), "{stderr}");

    let stderr = Served::start(home.path(), &["--key", "baker", "--key", "baker"], &[])
        .err()
        .expect("one key twice: no server");
    assert!(
        stderr.contains("duplicate_key") || stderr.contains("same key"),
        "{stderr}"
    );

    let stderr = Served::start(home.path(), &["--allow", "block,bogus"], &[])
        .err()
        .expect("unknown kind: no server");
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[test]
fn other_commands_use_the_store_while_serving() {
    // The local store's lock is let go once the keys are read: a signer runs for days.
    let (home, addresses) = home_with(&[("secp256k1", "baker")]);
    let served = serve(&home, &[]);
    let started = std::time::Instant::now();
    let listed = home.json(&["key", "list"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let new = home.json(&["key", "generate", "--curve", "p256", "--label", "later"]);
    // Served keys were chosen at startup.
    assert_eq!(served.get(&format!("/keys/{}", addresses[0])).status, 200);
    assert_eq!(
        served
            .get(&format!("/keys/{}", new["address"].as_str().unwrap()))
            .status,
        404
    );
    assert_eq!(
        served.sign(&addresses[0], &payloads::transaction(7)).status,
        200
    );
}

#[test]
fn sigterm_stops_it_cleanly() {
    let (home, addresses) = home_with(&[("secp256k1", "baker")]);
    let mut served = serve(&home, &[]);
    assert_eq!(
        served.sign(&addresses[0], &payloads::transaction(7)).status,
        200
    );
    let (status, stdout) = served.terminate();
    assert!(status.success(), "{status:?}");
    assert!(stdout.contains("stopped"), "{stdout}");
}
