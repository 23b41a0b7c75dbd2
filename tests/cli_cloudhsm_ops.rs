//! The `tezos-hsm` tool on "CloudHSM": the CloudHSM profile module (`cloudhsm-profile/`, SoftHSM2
//! behind the SDK 5 rules) and the stand-in `cloudhsm-cli`, whose `key list` and `key
//! set-attribute` act on the test's token (`common/standin_token.rs`). The PIN is
//! `<crypto user>:<password>`, as on CloudHSM: each test initialises a token with such a PIN.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;
use common::{profile_module, standin_token};

use std::path::Path;
use std::process::Command;

use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{Module, ModuleSource};
use serde_json::Value;

const OWNER: &str = "key_owner:Owner-Passw0rd";
const SIGNER: &str = "standby_signer:Signer-Passw0rd";
const KMS: &str = "kmsuser:Kms-Passw0rd-1";
const ADMIN: &str = "admin:Admin-Passw0rd";
const STANDIN: &str = common::ceremony::STANDIN;

/// Not a test: the stand-in's token helper (see `standin_token`), when asked.
#[test]
fn token_helper() {
    standin_token::answer_if_asked();
}

/// A token `label` of the test's SoftHSM2 store whose user PIN is `pin` (`user:password`).
fn cluster(token: &common::TestToken, label: &str, pin: &str) {
    let module = Module::load(&ModuleSource::Path(token.module.clone())).unwrap();
    module
        .init_token(
            label,
            &SecretString::from(common::SO_PIN),
            &SecretString::from(pin),
        )
        .unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        serde_json::from_str(&self.stdout).unwrap()
    }
    fn error(&self) -> Value {
        assert_ne!(self.code, 0, "expected a failure: {}", self.stdout);
        let line = self.stderr.lines().last().unwrap_or_default();
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {}", self.stderr))
            ["error"]
            .clone()
    }
}

/// Runs the tool on the profile module, token `label`, credentials `pin`, with `envs`.
fn tool(
    token: &common::TestToken,
    home: &Path,
    label: &str,
    pin: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tezos-hsm"))
        .args([
            "--json",
            "--module",
            profile_module().to_str().unwrap(),
            "--token",
            label,
            "--pin",
            "env:CU_PIN",
            "--cloudhsm-cli",
            STANDIN,
        ])
        .args(args)
        .env("CU_PIN", pin)
        .env("STANDIN_OWNER_PIN", pin)
        .env("ADMIN_PIN", ADMIN)
        .env("SO_PIN", common::SO_PIN)
        .env("TEZOS_HSM_HOME", home)
        .env("CLOUDHSM_PROFILE_SOFTHSM2", &token.module)
        .env(standin_token::TOKEN_ENV, label)
        .env(
            "STANDIN_TOKEN_HELPER",
            standin_token::helper_program(home, "token_helper"),
        )
        .env("STANDIN_RECORD", home.join("record"))
        .envs(envs.iter().copied())
        .env_remove("PKCS11_MODULE")
        .env_remove("TEZOS_HSM_TOKEN")
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

softhsm_test!(fn wrapkey_trusted_on_cloudhsm_is_made_by_the_crypto_user_and_marked_by_the_admin(token) {
    let home = tempfile::tempdir().unwrap();
    cluster(token, "cu", OWNER);
    let run = |args: &[&str], envs: &[(&str, &str)]| tool(token, home.path(), "cu", OWNER, args, envs);

    // CloudHSM has no PKCS#11 security officer: the admin's credentials are needed.
    let err = run(&["wrapkey", "generate", "--label", "old", "--trusted"], &[]).error();
    assert_eq!(err["kind"], "config", "{err}");
    assert!(err["message"].as_str().unwrap().contains("--admin-pin"), "{err}");

    // Crypto user creates, admin (--admin-pin) marks trusted, owner shares; --cluster-id on every CLI command.
    let made = run(&["--admin-pin", "env:ADMIN_PIN", "--cluster-id", "cluster-abc123", "wrapkey", "generate", "--label", "wrap", "--trusted", "--share-with", "signer"], &[]).json();
    assert_eq!(made["trusted"], true, "{made}");
    assert_eq!(made["shared_with"], serde_json::json!(["signer"]), "{made}");
    let record = std::fs::read_to_string(home.path().join("record")).unwrap();
    assert!(record.contains("arg=share\n") && record.ends_with("arg=--cluster-id\narg=cluster-abc123\n"), "{record}");
    // The key is private (CloudHSM's only value) and trusted, read back through PKCS#11.
    let backupable = run(&["key", "generate", "--curve", "secp256k1", "--label", "baker", "--backupable"], &[]).json();
    let out = home.path().join("baker.backup.json");
    let backed = run(&["key", "backup", "baker", "--wrap-key", "wrap", "--out", out.to_str().unwrap()], &[]).json();
    assert_eq!(backed["address"], backupable["address"], "{backed}");

    // --so-pin serves as the admin's credentials when --admin-pin is not given.
    let made = run(&["--so-pin", "env:ADMIN_PIN", "wrapkey", "generate", "--label", "wrap-2", "--trusted"], &[]).json();
    assert_eq!(made["trusted"], true, "{made}");
});

softhsm_test!(fn cluster_check_on_cloudhsm_fails_on_partial_coverage_naming_it(token) {
    let home = tempfile::tempdir().unwrap();
    cluster(token, "cu", OWNER);
    let run = |args: &[&str], envs: &[(&str, &str)]| tool(token, home.path(), "cu", OWNER, args, envs);
    run(&["key", "generate", "--curve", "p256", "--label", "baker"], &[]).json();

    let users = run(&["user", "list"], &[]).json();
    assert!(users.as_array().unwrap().iter().all(|u| u["cluster_coverage"] == "full"), "{users}");

    let checked = run(&["cluster", "check", "--tokens", "cu"], &[]).json();
    assert_eq!(checked["consistent"], true, "{checked}");
    assert_eq!(checked["coverage"]["complete"], true, "{checked}");

    let partial = tool(token, home.path(), "cu", OWNER, &["cluster", "check", "--tokens", "cu"], &[("STANDIN_PARTIAL_KEY", "baker")]);
    assert_eq!(partial.code, 1, "{}", partial.stderr);
    let value: Value = serde_json::from_str(&partial.stdout).unwrap();
    assert_eq!(value["consistent"], false);
    // The stand-in's answer for `baker`: its owner and the cluster coverage partial, on both halves.
    assert_eq!(value["coverage"]["complete"], false, "{value}");
    let keys: Vec<(&str, &str, &Value)> = value["coverage"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["label"].as_str().unwrap(), k["class"].as_str().unwrap(), &k["incomplete"]))
        .collect();
    let incomplete = serde_json::json!(["key-owner key_owner: partial", "cluster-coverage: partial"]);
    assert_eq!(keys, [("baker", "private-key", &incomplete), ("baker", "public-key", &incomplete)], "{value}");

    let users = tool(token, home.path(), "cu", OWNER, &["cluster", "check", "--tokens", "cu"], &[("STANDIN_USERS", "partial")]);
    assert_eq!(users.code, 1);
    let value: Value = serde_json::from_str(&users.stdout).unwrap();
    // user-list-partial.json: kmsuser is the one user not on every HSM.
    assert_eq!(
        value["coverage"]["users"],
        serde_json::json!([{"username": "kmsuser", "cluster_coverage": "partial"}]),
        "{value}"
    );
    // For people: the uncovered key is named.
    let text = Command::new(env!("CARGO_BIN_EXE_tezos-hsm"))
        .args(["--module", profile_module().to_str().unwrap(), "--token", "cu", "--pin", "env:CU_PIN", "--cloudhsm-cli", STANDIN, "cluster", "check", "--tokens", "cu"])
        .env("CU_PIN", OWNER)
        .env("TEZOS_HSM_HOME", home.path())
        .env("CLOUDHSM_PROFILE_SOFTHSM2", &token.module)
        .env(standin_token::TOKEN_ENV, "cu")
        .env("STANDIN_TOKEN_HELPER", standin_token::helper_program(home.path(), "token_helper"))
        .env("STANDIN_PARTIAL_KEY", "baker")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    // Both halves of `baker` named, with what is partial, and the verdict.
    let named: Vec<&str> = stdout.lines().filter(|l| l.contains("NOT on every HSM (")).collect();
    assert_eq!(named.len(), 2, "{stdout}");
    for (line, class) in named.iter().zip(["private-key 'baker' 0x", "public-key 'baker' 0x"]) {
        assert!(line.starts_with(class), "{stdout}");
        assert!(line.ends_with(": NOT on every HSM (key-owner key_owner: partial; cluster-coverage: partial)"), "{stdout}");
    }
    assert!(stdout.contains("coverage NOT full: see above"), "{stdout}");
});

softhsm_test!(fn wrapping_as_a_user_the_key_is_only_shared_with_says_run_as_the_owner(token) {
    // The stand-in's fixture key `baker` is owned by baker_owner and shared with standby_signer.
    let home = tempfile::tempdir().unwrap();
    cluster(token, "signer", SIGNER);
    let run = |args: &[&str]| tool(token, home.path(), "signer", SIGNER, args, &[("STANDIN_TOKEN_HELPER", "")]);
    run(&["key", "generate", "--curve", "secp256k1", "--label", "baker", "--backupable"]).json();
    let out = home.path().join("b.json");
    let value = home.path().join("wrap.hex");
    std::fs::write(&value, "42".repeat(32)).unwrap();
    for args in [
        vec!["key", "backup", "baker", "--wrap-key", "wrap", "--out", out.to_str().unwrap()],
        vec!["key", "replicate", "--to", "cu", "--label", "baker", "--wrap-key", "wrap"],
        vec!["key", "export-hot-wallet", "baker", "--wrap-key", "wrap", "--wrap-key-value-file", value.to_str().unwrap(), "--out", out.to_str().unwrap(), "--i-understand-this-defeats-the-hsm"],
    ] {
        let err = run(&args).error();
        assert_eq!(err["kind"], "not_key_owner", "{args:?}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("run as the key's owner (the crypto user that generated it") && message.contains("baker_owner"), "{message}");
        assert!(!message.contains("Signer-Passw0rd"), "{message}");
    }
});

softhsm_test!(fn kmsuser_is_refused_unless_allowed(token) {
    let home = tempfile::tempdir().unwrap();
    cluster(token, "kms", KMS);
    let err = tool(token, home.path(), "kms", KMS, &["key", "list"], &[]).error();
    assert_eq!(err["kind"], "kmsuser_refused", "{err}");
    assert!(!err["message"].as_str().unwrap().contains("Kms-Passw0rd"), "{err}");
    let err = tool(token, home.path(), "kms", KMS, &["key", "share", "baker", "--user", "signer"], &[]).error();
    assert_eq!(err["kind"], "kmsuser_refused", "{err}");
    tool(token, home.path(), "kms", KMS, &["--allow-kmsuser", "key", "list"], &[]).json();
});
