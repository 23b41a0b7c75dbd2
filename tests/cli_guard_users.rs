//! The CLI's `sign` through the double-signing guard, and the CloudHSM user and sharing commands.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn run(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tezos-hsm"));
    command.args(args).env("TEZOS_HSM_HOME", home);
    for var in [
        "PKCS11_MODULE",
        "TEZOS_HSM_TOKEN",
        "TEZOS_HSM_PIN",
        "TEZOS_HSM_WATERMARK_DIR",
    ] {
        command.env_remove(var);
    }
    command.envs(envs.iter().copied()).output().unwrap()
}

fn ok_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn error_kind(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let value: Value =
        serde_json::from_str(stderr.lines().last().unwrap()).unwrap_or_else(|_| panic!("{stderr}"));
    value["error"]["kind"].as_str().unwrap().to_string()
}

/// A Tenderbake attestation at `level`/`round`, with `tag` making payloads differ.
fn attestation(level: u32, round: u32, tag: u8) -> String {
    let mut p = vec![0x13, 0x7a, 0x06, 0xa7, 0x70];
    p.extend([0xab; 32]);
    p.extend([0x15, 0x00, 0x01]);
    p.extend(level.to_be_bytes());
    p.extend(round.to_be_bytes());
    p.extend([tag; 32]);
    hex::encode(p)
}

#[test]
fn sign_refuses_to_double_sign_and_repeats_the_same_request() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok_json(run(
        h,
        &[
            "key", "generate", "--curve", "p256", "--label", "baker", "--json",
        ],
        &[],
    ));
    let allow = ["--allow", "0x11,0x12,0x13"];
    let sign = |payload: &str| {
        run(
            h,
            &[&["sign", "baker", payload, "--json"][..], &allow[..]].concat(),
            &[],
        )
    };

    let first = ok_json(sign(&attestation(10, 0, 1)));
    // The very same request again: the recorded signature, byte for byte (P-256 on the HSM is
    // randomised, so a fresh signature would differ).
    let again = ok_json(sign(&attestation(10, 0, 1)));
    assert_eq!(first["signature"], again["signature"]);
    // Different bytes at the same level and round: refused, naming what was recorded.
    let refused = sign(&attestation(10, 0, 2));
    assert_eq!(error_kind(&refused), "double_sign");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("10"), "{message}");
    // Lower level: refused; higher round or level: signed.
    assert_eq!(error_kind(&sign(&attestation(9, 5, 3))), "double_sign");
    ok_json(sign(&attestation(10, 1, 4)));
    ok_json(sign(&attestation(11, 0, 5)));
    // A generic operation is not a consensus payload, and this key's policy refuses it.
    assert_eq!(error_kind(&sign("031234")), "watermark_not_allowed");
    // The records live under TEZOS_HSM_HOME/watermarks; a corrupt record stops signing.
    let records: Vec<PathBuf> = std::fs::read_dir(h.join("watermarks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    std::fs::write(&records[0], b"{ not json").unwrap();
    assert_eq!(
        error_kind(&sign(&attestation(12, 0, 6))),
        "watermark_store_corrupt"
    );
    // --watermark-dir puts the records elsewhere.
    let other = h.join("other-watermarks");
    ok_json(run(
        h,
        &[
            "sign",
            "baker",
            &attestation(12, 0, 6),
            "--json",
            "--watermark-dir",
            other.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(other.read_dir().unwrap().next().is_some());
}

#[test]
fn user_commands_need_cloudhsm() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["user", "list", "--json"], &[]);
    assert_eq!(error_kind(&out), "not_supported_by_module");
    let out = run(
        home.path(),
        &["key", "share", "baker", "--user", "signer", "--json"],
        &[],
    );
    assert_eq!(error_kind(&out), "not_supported_by_module");
    let softhsm = cryptoki_ops::ModuleSource::softhsm2().unwrap();
    let out = run(
        home.path(),
        &[
            "--module",
            softhsm.to_str().unwrap(),
            "user",
            "list",
            "--json",
        ],
        &[],
    );
    assert_eq!(error_kind(&out), "not_supported_by_module");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cloudhsm"));
}

#[test]
fn user_and_sharing_commands_drive_cloudhsm_cli() {
    // A module that is CloudHSM by name (a copy of SoftHSM2's library, never opened here) and
    // AWS's CLI played by the stand-in that answers with the JSON AWS documents.
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("libcloudhsm_pkcs11.so");
    std::fs::copy(cryptoki_ops::ModuleSource::softhsm2().unwrap(), &module).unwrap();
    let standin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cloudhsm-cli/cloudhsm-cli-standin");
    let record = dir.path().join("record");
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

    let users = ok_json(run(
        dir.path(),
        &[&base[..], &["user", "list"]].concat(),
        &envs,
    ));
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["role"] == "admin"),
        "{users}"
    );

    let shared = ok_json(run(
        dir.path(),
        &[&base[..], &["key", "share", "baker", "--user", "signer"]].concat(),
        &envs,
    ));
    assert!(shared["shared_with"].is_array(), "{shared}");
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert!(
        recorded.contains("role=crypto-user") && recorded.contains("pin=expected"),
        "{recorded}"
    );
    assert!(
        !recorded.contains("Passw0rd"),
        "the PIN is never on the command line"
    );

    let password = dir.path().join("password");
    std::fs::write(&password, "NewPassw0rd!").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let created = run(
        dir.path(),
        &[
            &base[..],
            &[
                "user",
                "create",
                "--username",
                "signer",
                "--password-file",
                password.to_str().unwrap(),
            ],
        ]
        .concat(),
        &envs,
    );
    let created = ok_json(created);
    assert_eq!(created["username"], "signer");

    let mut failing = envs.to_vec();
    failing.push(("STANDIN_ERROR", "user-not-found"));
    let out = run(
        dir.path(),
        &[&base[..], &["key", "share", "baker", "--user", "nobody"]].concat(),
        &failing,
    );
    assert_eq!(error_kind(&out), "user_not_found");
}
