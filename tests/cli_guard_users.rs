//! The CLI's `sign` through the double-signing guard, and the CloudHSM user and sharing commands.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::cli::{CliHome, CliRun};
use common::payloads;

fn attestation(level: u32, round: u32, tag: u8) -> String {
    hex::encode(payloads::attestation(level, round, tag))
}

#[test]
fn sign_refuses_to_double_sign_and_repeats_the_same_request() {
    let home = CliHome::new();
    home.json(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    let sign = |payload: &str| {
        home.run(&[
            "sign",
            "baker",
            payload,
            "--json",
            "--allow",
            "0x11,0x12,0x13",
        ])
    };
    let ok = |run: CliRun| {
        assert!(run.success(), "{}", run.stderr);
        run.json()
    };
    let error_kind = |run: CliRun| run.error()["kind"].as_str().unwrap().to_string();

    let first = ok(sign(&attestation(10, 0, 1)));
    // The very same request again: the recorded signature, byte for byte (P-256 on the HSM is
    // randomised, so a fresh signature would differ).
    let again = ok(sign(&attestation(10, 0, 1)));
    assert_eq!(first["signature"], again["signature"]);
    // Different bytes at the same level and round: refused, naming what was recorded.
    let refused = sign(&attestation(10, 0, 2)).error();
    assert_eq!(refused["kind"], "double_sign", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(
            "attestation for tz3"
        ) && message.contains(
            "at level 10 round 0 which was already signed with different bytes (recorded: level 10 round 0)"
        ),
        "{message}"
    );
    // Lower level: refused, naming the record; higher round or level: signed.
    let lower = sign(&attestation(9, 5, 3)).error();
    assert_eq!(lower["kind"], "double_sign", "{lower}");
    assert!(
        lower["message"].as_str().unwrap().contains(
            "at level 9 round 5 which is not above the last one signed, at level 10 round 0"
        ),
        "{lower}"
    );
    ok(sign(&attestation(10, 1, 4)));
    ok(sign(&attestation(11, 0, 5)));
    // A generic operation is not a consensus payload, and this key's policy refuses it.
    assert_eq!(error_kind(sign("031234")), "watermark_not_allowed");
    // The records live under TEZOS_HSM_HOME/watermarks; a corrupt record stops signing.
    let records: Vec<PathBuf> = std::fs::read_dir(home.path().join("watermarks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json")) // not the `.lock` beside it
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    std::fs::write(&records[0], b"{ not json").unwrap();
    assert_eq!(
        error_kind(sign(&attestation(12, 0, 6))),
        "watermark_store_corrupt"
    );
    // --watermark-dir puts the records elsewhere, in a directory `sign` never creates.
    let other = home.path().join("other-watermarks");
    let args = ["--watermark-dir", other.to_str().unwrap()];
    let missing = sign_with(&home, &attestation(12, 0, 6), &args);
    assert_eq!(error_kind(missing), "watermark_store_missing");
    assert!(!other.exists());
    home.json(&["watermark", "init", args[0], args[1]]);
    home.json(&[
        "sign",
        "baker",
        &attestation(12, 0, 6),
        "--watermark-dir",
        other.to_str().unwrap(),
    ]);
    assert!(other.read_dir().unwrap().next().is_some());
}

fn sign_with(home: &CliHome, payload: &str, extra: &[&str]) -> CliRun {
    home.run(&[&["sign", "baker", payload, "--json"][..], extra].concat())
}

#[test]
fn user_commands_need_cloudhsm() {
    let home = CliHome::new();
    assert_eq!(home.error(&["user", "list"]).0, "not_supported_by_module");
    assert_eq!(
        home.error(&["key", "share", "baker", "--user", "signer"]).0,
        "not_supported_by_module"
    );
    let softhsm = cryptoki_ops::ModuleSource::softhsm2().unwrap();
    let (kind, message) = home.error(&["--module", softhsm.to_str().unwrap(), "user", "list"]);
    assert_eq!(kind, "not_supported_by_module");
    assert!(message.contains("cloudhsm"), "{message}");
}

#[test]
fn user_and_sharing_commands_drive_cloudhsm_cli() {
    // A module that is CloudHSM by name (a copy of SoftHSM2's library, never opened here) and
    // AWS's CLI played by the stand-in that answers with the JSON AWS documents.
    let home = CliHome::new();
    let module = home.path().join("libcloudhsm_pkcs11.so");
    std::fs::copy(cryptoki_ops::ModuleSource::softhsm2().unwrap(), &module).unwrap();
    let standin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("cloudhsm-cli/fixtures/cloudhsm-cli-standin");
    let record = home.path().join("record");
    let base = [
        "--module",
        module.to_str().unwrap(),
        "--cloudhsm-cli",
        standin.to_str().unwrap(),
        "--json",
    ];
    let envs = [
        ("STANDIN_RECORD", record.to_str().unwrap()),
        ("STANDIN_EXPECTED_PIN", "owner:Passw0rd!"),
        ("TEZOS_HSM_PIN", "owner:Passw0rd!"),
    ];
    let run =
        |args: &[&str], envs: &[(&str, &str)]| home.run_with(&[&base[..], args].concat(), envs);
    let ok = |args: &[&str]| {
        let out = run(args, &envs);
        assert!(out.success(), "{args:?}: {}", out.stderr);
        out.json()
    };

    let users = ok(&["user", "list"]);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["role"] == "admin"),
        "{users}"
    );

    let shared = ok(&["key", "share", "baker", "--user", "signer"]);
    // The users the stand-in's `key list --verbose` answer (key-list-verbose.json) names.
    assert_eq!(
        shared["shared_with"],
        serde_json::json!(["standby_signer", "backup_cu"]),
        "{shared}"
    );
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert!(
        recorded.contains("role=crypto-user") && recorded.contains("pin=expected"),
        "{recorded}"
    );
    assert!(
        !recorded.contains("Passw0rd"),
        "the PIN is never on the command line"
    );

    let password = home.path().join("password");
    std::fs::write(&password, "NewPassw0rd!").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let created = ok(&[
        "user",
        "create",
        "--username",
        "signer",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    assert_eq!(created["username"], "signer");

    // A failure in words AWS does not document: the generic kind, with the CLI's text kept.
    let mut failing = envs.to_vec();
    failing.push(("STANDIN_ERROR", "message"));
    failing.push((
        "STANDIN_MESSAGE",
        "Operation 0x2f refused (made-up wording)",
    ));
    let out = run(&["key", "share", "baker", "--user", "nobody"], &failing);
    assert_eq!(out.error()["kind"], "cloudhsm_cli");
    let message = out.error()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("Operation 0x2f refused (made-up wording)") && message.contains("nobody"),
        "{message}"
    );
}
