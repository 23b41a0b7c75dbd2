//! Authenticated requests made by an independent implementation: PyTezos builds the bytes
//! octez-client signs (`0x04 ‖ 0x01 ‖ pkh ‖ data`, its own address forging) and signs them with
//! its own keys on all three curves; `AuthorizedKeys::check` must accept exactly those, in the
//! curve's and the generic `sig…` form, and refuse a PyTezos signature of the data alone.
//!
//! The signer is `tests/independent/authenticate.py`, run with the virtualenv of
//! `scripts/ensure-deps.sh --with-interop` (`target/interop/venv`, or the Python in
//! `TEZOS_HSM_INTEROP_PYTHON`). Without it this test fails, saying how to install it.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use tezos_keys::{PublicKey, PublicKeyHash};
use tezos_signer::auth::AuthorizedKeys;

fn python() -> PathBuf {
    let python = std::env::var_os("TEZOS_HSM_INTEROP_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/interop/venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        python.is_file(),
        "PyTezos is not installed: run scripts/ensure-deps.sh --with-interop"
    );
    python
}

fn pytezos_sign(records: &[Value]) -> Vec<Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/independent/authenticate.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = records.iter().map(|r| format!("{r}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyTezos failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), records.len());
    lines
}

#[test]
fn pytezos_authenticated_requests_are_accepted_and_plain_signatures_refused() {
    // Served keys on the three curves (their addresses go into the signed bytes).
    let signers: Vec<PublicKeyHash> = [
        "tz1VSUr8wwNhLAzempoch5d6hLRiTh8Cjcjb",
        "tz2J8kpqrRxWLk4T9sxkThvJrLmV5rSzWvLH",
        "tz3heyJNgEyu7skyGBJTKxFNCPwVRjuhk9KT",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let payloads = ["03aabbccdd", "11", &format!("13{}", "7a06a770".repeat(20))];
    let mut records = Vec::new();
    for (i, curve) in ["ed", "sp", "p2"].iter().enumerate() {
        for (j, signer) in signers.iter().enumerate() {
            for layout in ["octez", "plain"] {
                records.push(json!({
                    "secret_hex": format!("{:02x}", 0x21 + i).repeat(32),
                    "curve": curve,
                    "signer": signer.to_base58(),
                    "data_hex": payloads[j],
                    "layout": layout,
                }));
            }
        }
    }
    let answers = pytezos_sign(&records);

    // Every PyTezos client key is authorized.
    let mut clients: Vec<PublicKey> = answers
        .iter()
        .map(|a| a["public_key"].as_str().unwrap().parse().unwrap())
        .collect();
    clients.dedup();
    assert_eq!(clients.len(), 3);
    let auth = AuthorizedKeys::new(&clients, true).unwrap();

    for (record, answer) in records.iter().zip(&answers) {
        let signer: PublicKeyHash = record["signer"].as_str().unwrap().parse().unwrap();
        let data = hex::decode(record["data_hex"].as_str().unwrap()).unwrap();
        let client: PublicKeyHash = answer["address"].as_str().unwrap().parse().unwrap();
        for form in ["authentication", "generic"] {
            let text = answer[form].as_str().unwrap();
            let result = auth.check(&signer, &data, Some(text));
            if record["layout"] == "octez" {
                assert_eq!(result, Ok(client), "{record} {form}");
                // The same signature for another signer key or other bytes is refused.
                let other = signers.iter().find(|s| **s != signer).unwrap();
                assert!(auth.check(other, &data, Some(text)).is_err());
                assert!(auth.check(&signer, &[0x03], Some(text)).is_err());
            } else {
                assert_eq!(
                    result.unwrap_err().kind(),
                    "authentication_refused",
                    "{record} {form}"
                );
            }
        }
    }
}
