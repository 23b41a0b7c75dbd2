//! The `tezos-hsm` binary driven as a user would, each test on its own local SoftHSM2 store.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::cli::CliHome as Home;

#[test]
fn demo_prints_two_addresses_and_verified_signatures() {
    let home = Home::new();
    let out = home.run(&["demo"]);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(out.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("development token"),
        "the first use says it is a development token: {stderr}"
    );
    // What it prints holds together: each address is its public key's, and each signature
    // verifies for that key over the payload printed.
    let field = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .filter_map(|l| {
                l.split_once(&format!("{name} "))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .collect()
    };
    let payload = hex::decode(&field("signing payload")[0]).unwrap();
    let (keys, addresses, signatures) = (field("public key"), field("address"), field("signature"));
    assert_eq!(
        (keys.len(), addresses.len(), signatures.len()),
        (2, 2, 2),
        "{stdout}"
    );
    for ((key, address), signature) in keys.iter().zip(&addresses).zip(&signatures) {
        let public_key: tezos_keys::PublicKey = key.parse().unwrap();
        assert_eq!(public_key.hash().to_string(), *address, "{stdout}");
        tezos_keys::verify_encoded(key, &payload, signature).unwrap();
    }
    assert!(
        addresses[0].starts_with("tz2") && addresses[1].starts_with("tz3"),
        "{stdout}"
    );
    assert!(
        stdout.lines().last().unwrap().starts_with("all good"),
        "{stdout}"
    );
    // A second run works too, and no longer announces the token.
    let again = home.run(&["demo", "--json"]);
    assert!(again.success());
    assert!(!again.stderr.contains("development token"));
    let value = again.json();
    let curves: Vec<&str> = value["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["curve"].as_str().unwrap())
        .collect();
    assert_eq!(curves, ["secp256k1", "p256"], "{value}");
    // The generated PINs are private to the user.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(home.path().join("pins")).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn key_commands_round_trip_in_json() {
    let home = Home::new();
    let generated = home.json(&[
        "key",
        "generate",
        "--curve",
        "secp256k1",
        "--label",
        "baker",
    ]);
    for field in ["label", "id", "curve", "public_key", "address"] {
        assert!(generated[field].is_string(), "{field} in {generated}");
    }
    assert_eq!(generated["curve"], "secp256k1");
    assert!(generated["address"].as_str().unwrap().starts_with("tz2"));
    assert!(generated["public_key"]
        .as_str()
        .unwrap()
        .starts_with("sppk"));
    home.json(&[
        "key",
        "generate",
        "--curve",
        "p256",
        "--label",
        "tz3key",
        "--backupable",
    ]);
    home.json(&["key", "generate", "--curve", "ed25519", "--label", "edkey"]);

    let shown = home.json(&["key", "show", "baker"]);
    assert_eq!(shown["address"], generated["address"]);
    assert_eq!(shown["extractable"], false);
    assert_eq!(shown["sensitive"], true);
    assert_eq!(home.json(&["key", "show", "tz3key"])["extractable"], true);

    let list = home.json(&["key", "list"]);
    let labels: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["baker", "edkey", "tz3key"]);

    // Sign, then verify with the printed public key; a changed payload does not verify.
    let signed = home.json(&["sign", "baker", "031234"]);
    assert_eq!(signed["address"], generated["address"]);
    let signature = signed["signature"].as_str().unwrap();
    assert!(signature.starts_with("spsig1"));
    let pk = generated["public_key"].as_str().unwrap();
    assert_eq!(
        home.json(&["verify", pk, "031234", signature])["valid"],
        true
    );
    let out = home.run(&["verify", pk, "031235", signature, "--json"]);
    assert!(!out.success(), "an invalid signature exits non-zero");
    assert_eq!(out.json()["valid"], false);

    assert_eq!(home.json(&["key", "delete", "baker"])["deleted"], 2);
    assert_eq!(home.error(&["key", "show", "baker"]).0, "key_not_found");
}

#[test]
fn tokens_and_wrapping_keys() {
    let home = Home::new();
    let info = home.json(&["token", "info"]);
    assert_eq!(info["label"], "tezos-hsm");
    assert!(info["mechanisms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "CKM_ECDSA"));
    let second = home.json(&["token", "init", "--label", "second"]);
    assert_eq!(second["label"], "second");
    assert_eq!(
        home.json(&["--token", "second", "token", "info"])["label"],
        "second"
    );
    assert_eq!(
        home.error(&["token", "init", "--label", "second"]).0,
        "token_exists"
    );

    let generated = home.json(&["wrapkey", "generate", "--label", "w1", "--trusted"]);
    assert_eq!(generated["trusted"], true);
    assert_eq!(generated["check_value"].as_str().unwrap().len(), 6);
    // The same key value imported on two tokens has the same check value.
    let value_file = home.path().join("ceremony.hex");
    std::fs::write(&value_file, "42".repeat(32)).unwrap();
    let a = home.json(&[
        "wrapkey",
        "import",
        "--label",
        "ceremony",
        "--value-file",
        value_file.to_str().unwrap(),
    ]);
    let b = home.json(&[
        "--token",
        "second",
        "wrapkey",
        "import",
        "--label",
        "ceremony",
        "--value-file",
        value_file.to_str().unwrap(),
        "--trusted",
    ]);
    assert_eq!(a["check_value"], b["check_value"]);
    // The AES key check value of 32 x 0x42 (the first 3 bytes of AES-256 of a zero block),
    // computed outside this project: `openssl enc -aes-256-ecb -nopad` and Python `cryptography`.
    assert_eq!(a["check_value"], "bfb6d8");
    std::fs::write(&value_file, "zz").unwrap();
    let (kind, message) = home.error(&[
        "wrapkey",
        "import",
        "--label",
        "bad",
        "--value-file",
        value_file.to_str().unwrap(),
    ]);
    assert_eq!(kind, "invalid_input");
    assert!(message.contains("64 hex characters"), "{message}");
}

#[test]
fn the_errors_a_user_hits_first_are_clear() {
    let home = Home::new();
    home.json(&["key", "generate", "--curve", "p256", "--label", "k"]);

    let (kind, message) = home.error(&["sign", "nope", "031234"]);
    assert_eq!(kind, "key_not_found");
    assert!(
        message.contains("'nope'") && message.contains("'k'"),
        "{message}"
    );

    let (kind, message) = home.error(&["sign", "k", "03zz"]);
    assert_eq!(kind, "invalid_input");
    assert!(message.contains("not valid hex"), "{message}");

    let (kind, message) = home.error(&["sign", "k", "031234", "--allow", "0x11,0x12,0x13"]);
    assert_eq!(kind, "watermark_not_allowed");
    assert!(message.contains("0x03"), "{message}");

    let (kind, _) = home.error(&["sign", "k", ""]);
    assert_eq!(kind, "invalid_input", "an empty payload is refused");

    let wrong_pin = home.path().join("wrong-pin");
    std::fs::write(&wrong_pin, "not-the-pin").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong_pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (kind, message) = home.error(&[
        "--pin",
        &format!("file:{}", wrong_pin.display()),
        "key",
        "list",
    ]);
    assert_eq!(kind, "pin_incorrect");
    assert!(!message.contains("not-the-pin"), "{message}");

    let (kind, message) = home.error(&["--module", "/nonexistent/libpkcs11.so", "key", "list"]);
    assert_eq!(kind, "module_not_found");
    assert!(message.contains("/nonexistent/libpkcs11.so"), "{message}");

    let (kind, _) = home.error(&["key", "generate", "--curve", "p256", "--label", "k"]);
    assert_eq!(kind, "key_exists");

    // Plain-text errors are one or two lines on stderr, no backtrace.
    let out = home.run(&["key", "show", "missing"]);
    let stderr = &out.stderr;
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() <= 2,
        "{stderr}"
    );
    // A bad curve name is a usage error from the argument parser.
    let out = home.run(&["key", "generate", "--curve", "p384", "--label", "x"]);
    assert!(!out.success());
    assert!(out.stderr.contains("unsupported curve"));
}
