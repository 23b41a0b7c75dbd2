//! End to end against an independent Tezos implementation (issue 4): keys generated on SoftHSM2
//! by the `tezos-hsm` binary, on all three curves, give addresses and signatures that PyTezos
//! accepts. PyTezos verifies tz2 with libsecp256k1 (which, like the Octez node, rejects high-S),
//! tz3 with fastecdsa and tz1 with libsodium; it shares no code with this project.
//!
//! The checker is `tests/independent/verify.py`, run with the virtualenv that
//! `scripts/ensure-deps.sh --with-interop` creates in `target/interop/venv` (or the Python in
//! `TEZOS_HSM_INTEROP_PYTHON`). Without it these tests fail, saying how to install it.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const INSTALL_HINT: &str =
    "the PyTezos checker is not installed: run scripts/ensure-deps.sh --with-interop";

/// The Python of the checker's virtualenv; panics with [`INSTALL_HINT`] when it is missing.
fn checker_python() -> PathBuf {
    let python = std::env::var_os("TEZOS_HSM_INTEROP_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop/venv/bin/python"),
        PathBuf::from,
    );
    assert!(python.is_file(), "{INSTALL_HINT}");
    python
}

/// Feeds JSON lines to the checker; returns whether it exited 0, and its output lines.
fn run_checker(records: &[Value]) -> (bool, Vec<String>) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/independent/verify.py");
    let mut child = Command::new(checker_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = String::new();
    for record in records {
        input.push_str(&record.to_string());
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "{INSTALL_HINT}\n{stderr}"
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(
        lines.len(),
        records.len(),
        "one result line per input expected; stdout: {lines:#?}\nstderr: {stderr}"
    );
    (out.status.success(), lines)
}

/// The checker's input records, made with the CLI on a store of its own.
struct Home(common::cli::CliHome);

impl Home {
    fn new() -> Self {
        Self(common::cli::CliHome::new())
    }

    fn json(&self, args: &[&str]) -> Value {
        self.0.json(args)
    }

    fn generate(&self, curve: &str, label: &str) -> Value {
        let key = self.json(&["key", "generate", "--curve", curve, "--label", label]);
        assert_eq!(key["curve"], curve, "{key}");
        key
    }

    /// Signs `payload` with the key and returns the checker's input record.
    fn signed(&self, key: &Value, payload: &[u8]) -> Value {
        let label = key["label"].as_str().unwrap();
        let signed = self.json(&["sign", label, &hex::encode(payload)]);
        assert_eq!(signed["address"], key["address"], "{signed}");
        json!({
            "public_key": key["public_key"],
            "address": key["address"],
            "message_hex": hex::encode(payload),
            "signature": signed["signature"],
        })
    }
}

/// A generic operation (watermark 0x03): branch, then a transaction-like body.
fn generic_operation(n: u8) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(&[0xa5; 32]); // branch
    p.extend_from_slice(&[0x6c, 0x00, n, 0x02, 0x03, 0x04]);
    p
}

/// Michelson data (watermark 0x05): the packed string "tezos-hsm".
fn michelson_data() -> Vec<u8> {
    let text = b"tezos-hsm";
    let mut p = vec![0x05, 0x01];
    p.extend_from_slice(&u32::try_from(text.len()).unwrap().to_be_bytes());
    p.extend_from_slice(text);
    p
}

fn attestation(level: u32) -> Vec<u8> {
    common::payloads::attestation(level, 0, 0x22)
}

#[test]
fn pytezos_accepts_addresses_and_signatures_of_hsm_keys_on_all_curves() {
    checker_python();
    let home = Home::new();
    let mut records = Vec::new();
    for (curve, prefix) in [("secp256k1", "tz2"), ("p256", "tz3"), ("ed25519", "tz1")] {
        let key = home.generate(curve, curve);
        assert!(
            key["address"].as_str().unwrap().starts_with(prefix),
            "{key}"
        );
        for payload in [generic_operation(0), michelson_data(), attestation(1_000)] {
            records.push(home.signed(&key, &payload));
        }
    }
    // SoftHSM2 returns a high-S secp256k1 signature about half the time; the tool normalises
    // them, and libsecp256k1 (through PyTezos) accepts only low-S: 20 chances to catch a miss.
    let key = home.generate("secp256k1", "many");
    for n in 1..=20 {
        records.push(home.signed(&key, &generic_operation(n)));
    }

    let (success, lines) = run_checker(&records);
    let rejected = lines
        .iter()
        .filter(|line| !line.starts_with("ok "))
        .collect::<Vec<_>>();
    assert!(
        success && rejected.is_empty(),
        "PyTezos rejected {} of {}: {rejected:#?}",
        rejected.len(),
        records.len()
    );
    assert_eq!(lines.len(), 29);
}

#[test]
fn pytezos_rejects_a_signature_over_other_bytes_and_a_wrong_address() {
    checker_python();
    let home = Home::new();
    let tz2 = home.generate("secp256k1", "k1");
    let tz3 = home.generate("p256", "p2");
    let tz1 = home.generate("ed25519", "ed");

    let mut records = Vec::new();
    for key in [&tz2, &tz3, &tz1] {
        // Signed 03 ...00, presented as 03 ...01.
        let mut record = home.signed(key, &generic_operation(0));
        record["message_hex"] = hex::encode(generic_operation(1)).into();
        records.push(record);
    }
    // A good signature, but the address of another key.
    let mut record = home.signed(&tz2, &michelson_data());
    record["address"] = tz3["address"].clone();
    records.push(record);

    // The same checker accepts the unaltered records, so the rejections are about the alteration.
    let good = [
        home.signed(&tz2, &generic_operation(0)),
        home.signed(&tz1, &generic_operation(0)),
    ];
    let (success, lines) = run_checker(&good);
    assert!(success, "{lines:#?}");

    let (success, lines) = run_checker(&records);
    assert!(!success, "the checker must exit non-zero: {lines:#?}");
    for line in &lines {
        assert!(line.starts_with("FAIL "), "accepted: {line}");
    }
    assert!(lines[0].contains("signature rejected"), "{}", lines[0]);
    assert!(lines[3].contains("differs"), "{}", lines[3]);
}

#[test]
fn pytezos_accepts_published_taquito_signatures_and_rejects_a_flipped_byte() {
    checker_python();
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tezos/vectors.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let address_of = |public_key: &Value| {
        vectors["key_encodings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["public_key"] == *public_key)
            .map(|k| k["address"].clone())
    };
    // Taquito's tz2 and tz3 signatures of 03 12 34 (its signer tests).
    let published = vectors["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["message_hex"] == "031234" && s["curve"] != "ed25519")
        .map(|s| {
            json!({
                "public_key": s["public_key"],
                "address": address_of(&s["public_key"]).unwrap(),
                "message_hex": s["message_hex"],
                "signature": s["signature"],
            })
        })
        .collect::<Vec<_>>();
    assert_eq!(published.len(), 4, "two tz2 and two tz3 vectors expected");
    let (success, lines) = run_checker(&published);
    assert!(success, "{lines:#?}");

    let flipped = published
        .iter()
        .map(|record| {
            let mut record = record.clone();
            record["message_hex"] = "031235".into();
            record
        })
        .collect::<Vec<_>>();
    let (success, lines) = run_checker(&flipped);
    assert!(!success, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("FAIL ")), "{lines:#?}");
}
