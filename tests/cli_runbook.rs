//! The runbook commands of the `tezos-hsm` tool, each test with its own local SoftHSM2 store.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;

use serde_json::Value;

use common::cli::CliRun;
use common::objects::store_objects;

/// The ceremony wrapping key's value, as a key-ceremony file holds it.
const WRAP_HEX: &str = "4242424242424242424242424242424242424242424242424242424242424242";

fn run(home: &Path, args: &[&str]) -> CliRun {
    common::cli::run_in(home, args, &[])
}

fn ok(home: &Path, args: &[&str]) -> Value {
    let r = run(home, args);
    assert_eq!(r.code, 0, "{args:?} failed:\n{}\n{}", r.stdout, r.stderr);
    r.json()
}

/// The local store with its first token and a second one, the ceremony key on both.
fn two_tokens(home: &Path) {
    let value = home.join("wrap.hex");
    std::fs::write(&value, WRAP_HEX).unwrap();
    let value = value.to_str().unwrap();
    ok(home, &["--json", "token", "init", "--label", "second"]);
    for token in ["tezos-hsm", "second"] {
        let w = ok(
            home,
            &[
                "--json",
                "--token",
                token,
                "wrapkey",
                "import",
                "--label",
                "wrap",
                "--value-file",
                value,
                "--trusted",
            ],
        );
        assert_eq!(w["trusted"], true);
    }
}

#[test]
fn a_key_backed_up_restored_replicated_and_checked_signs_on_both_tokens_with_one_address() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    two_tokens(home);
    let key = ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "secp256k1",
            "--label",
            "baker",
            "--backupable",
        ],
    );
    let address = key["address"].as_str().unwrap().to_string();

    let file = home.join("baker.backup.json");
    let file_arg = file.to_str().unwrap();
    let backup = ok(
        home,
        &[
            "--json",
            "key",
            "backup",
            "baker",
            "--wrap-key",
            "wrap",
            "--out",
            file_arg,
        ],
    );
    assert_eq!(backup["file"], file_arg);
    assert_eq!(backup["label"], "baker");
    assert_eq!(backup["address"], address.as_str());
    let again = run(
        home,
        &[
            "--json",
            "key",
            "backup",
            "baker",
            "--wrap-key",
            "wrap",
            "--out",
            file_arg,
        ],
    );
    assert_eq!(again.error()["kind"], "file_exists");

    let restored = ok(
        home,
        &["--json", "--token", "second", "key", "restore", file_arg],
    );
    assert_eq!(restored["label"], "baker");
    assert_eq!(restored["address"], address.as_str());
    assert_eq!(restored["id"], key["id"]);
    assert_eq!(restored["extractable"], true);
    assert_eq!(restored["sensitive"], true);

    // Replicate two more by prefix; the restored one is already there.
    ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "p256",
            "--label",
            "baker-2",
            "--backupable",
        ],
    );
    ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "secp256k1",
            "--label",
            "baker-3",
            "--backupable",
        ],
    );
    let plain = run(
        home,
        &[
            "key",
            "replicate",
            "--to",
            "second",
            "--prefix",
            "baker-2",
            "--wrap-key",
            "wrap",
        ],
    );
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.stdout.contains("replicated"), "{}", plain.stdout);
    assert!(
        !plain.stderr.contains("[1/"),
        "no progress when stderr is not a terminal: {}",
        plain.stderr
    );
    let report = ok(
        home,
        &[
            "--json",
            "key",
            "replicate",
            "--to",
            "second",
            "--prefix",
            "baker",
            "--wrap-key",
            "wrap",
        ],
    );
    assert_eq!(report["source"], "tezos-hsm");
    assert_eq!(report["target"], "second");
    let status: Vec<(&str, &str)> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["label"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("baker", "already_present"),
            ("baker-2", "already_present"),
            ("baker-3", "replicated")
        ]
    );

    let check = run(
        home,
        &["--json", "cluster", "check", "--tokens", "tezos-hsm,second"],
    );
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert!(
        check.stderr.is_empty(),
        "quiet under --json: {}",
        check.stderr
    );
    let check = check.json();
    assert_eq!(check["consistent"], true);
    assert_eq!(check["tokens"], serde_json::json!(["tezos-hsm", "second"]));
    assert_eq!(check["keys"].as_array().unwrap().len(), 3);
    assert_eq!(check["wrapping_keys"][0]["same_check_value"], true);

    for token in ["tezos-hsm", "second"] {
        let signed = ok(
            home,
            &["--json", "--token", token, "sign", "baker", "03abcd"],
        );
        assert_eq!(signed["address"], address.as_str(), "{token}");
        let verified = ok(
            home,
            &[
                "--json",
                "verify",
                key["public_key"].as_str().unwrap(),
                "03abcd",
                signed["signature"].as_str().unwrap(),
            ],
        );
        assert_eq!(verified["valid"], true);
    }
}

#[test]
fn restore_and_cluster_check_refusals_are_reported_as_json_errors() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    two_tokens(home);
    ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "p256",
            "--label",
            "baker",
            "--backupable",
        ],
    );
    let file = home.join("baker.json");
    ok(
        home,
        &[
            "--json",
            "key",
            "backup",
            "baker",
            "--wrap-key",
            "wrap",
            "--out",
            file.to_str().unwrap(),
        ],
    );

    // What a fresh reader (pkcs11-tool, every object class) sees on the target before.
    let before = store_objects(home, "second");

    // One byte flipped in the public key.
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find("\"p2pk").unwrap() + 6;
    let mut bytes = text.into_bytes();
    bytes[at] ^= 0x01;
    let tampered = home.join("tampered.json");
    std::fs::write(&tampered, bytes).unwrap();
    let r = run(
        home,
        &[
            "--json",
            "--token",
            "second",
            "key",
            "restore",
            tampered.to_str().unwrap(),
        ],
    );
    let error = r.error();
    assert_eq!(error["kind"], "corrupt_backup", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("checksum"),
        "{error}"
    );
    let plain = run(
        home,
        &[
            "--token",
            "second",
            "key",
            "restore",
            tampered.to_str().unwrap(),
        ],
    );
    assert!(
        plain.stderr.starts_with("error: the backup is corrupt"),
        "{}",
        plain.stderr
    );
    assert_eq!(
        store_objects(home, "second"),
        before,
        "nothing made on the target"
    );

    // A well-formed file (valid checksum) recording another key's public key: the target
    // unwraps the key, finds it does not match, and must remove it again.
    let other = ok(
        home,
        &[
            "--json", "key", "generate", "--curve", "p256", "--label", "other",
        ],
    );
    let mut lying = tezos_keys::runbook::Backup::read(&file).unwrap();
    lying.public_key = other["public_key"].as_str().unwrap().parse().unwrap();
    lying.address = lying.public_key.hash();
    let lying_file = home.join("lying.json");
    lying.write(&lying_file).unwrap();
    let r = run(
        home,
        &[
            "--json",
            "--token",
            "second",
            "key",
            "restore",
            lying_file.to_str().unwrap(),
        ],
    );
    assert_eq!(r.error()["kind"], "key_mismatch", "{}", r.stderr);
    assert_eq!(
        store_objects(home, "second"),
        before,
        "no half-made key left on the target (a fresh reader)"
    );

    // The second HSM lacks what the first has.
    let check = run(
        home,
        &["--json", "cluster", "check", "--tokens", "tezos-hsm,second"],
    );
    assert_eq!(check.code, 1);
    let report = check.json();
    assert_eq!(report["consistent"], false);
    let baker = &report["keys"][0];
    assert_eq!(baker["label"], "baker");
    assert_eq!(baker["tokens"][0]["present"], true);
    assert_eq!(baker["tokens"][1]["present"], false);
    let text = run(home, &["cluster", "check", "--tokens", "tezos-hsm,second"]);
    assert!(text.stdout.contains("missing on second"), "{}", text.stdout);
    assert!(text.stdout.contains("NOT consistent"), "{}", text.stdout);

    let r = run(
        home,
        &["--json", "cluster", "check", "--tokens", "tezos-hsm,nope"],
    );
    assert_eq!(r.error()["kind"], "token_not_found");
    let r = run(
        home,
        &[
            "--json",
            "key",
            "replicate",
            "--to",
            "second",
            "--label",
            "nope",
            "--wrap-key",
            "wrap",
        ],
    );
    assert_eq!(r.error()["kind"], "key_not_found");
}

#[test]
fn the_hot_wallet_export_needs_consent_refuses_locked_keys_and_writes_a_0600_file() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    two_tokens(home);
    let value = home.join("wrap.hex");
    let value = value.to_str().unwrap();
    let hot = ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "secp256k1",
            "--label",
            "hot",
            "--backupable",
        ],
    );
    ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "secp256k1",
            "--label",
            "cold",
        ],
    );
    let out = home.join("hot.spsk");
    let out_arg = out.to_str().unwrap();

    let r = run(
        home,
        &[
            "--json",
            "key",
            "export-hot-wallet",
            "hot",
            "--wrap-key",
            "wrap",
            "--wrap-key-value-file",
            value,
            "--out",
            out_arg,
        ],
    );
    assert_eq!(r.error()["kind"], "consent_required");
    assert!(!out.exists());

    let r = run(
        home,
        &[
            "--json",
            "key",
            "export-hot-wallet",
            "cold",
            "--wrap-key",
            "wrap",
            "--wrap-key-value-file",
            value,
            "--out",
            out_arg,
            "--i-understand-this-defeats-the-hsm",
        ],
    );
    let error = r.error();
    assert_eq!(error["kind"], "not_extractable", "{error}");
    assert!(!out.exists());

    let exported = ok(
        home,
        &[
            "--json",
            "key",
            "export-hot-wallet",
            "hot",
            "--wrap-key",
            "wrap",
            "--wrap-key-value-file",
            value,
            "--out",
            out_arg,
            "--i-understand-this-defeats-the-hsm",
        ],
    );
    assert_eq!(exported["address"], hot["address"]);
    assert!(
        exported.get("secret_key").is_none(),
        "the secret goes to the file only"
    );
    let secret = std::fs::read_to_string(&out).unwrap();
    assert!(secret.starts_with("spsk"), "a secp256k1 secret key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let sk = tezos_keys::SecretKey::from_base58(secret.trim()).unwrap();
    assert_eq!(
        sk.public_key().hash().to_string(),
        hot["address"].as_str().unwrap()
    );
}

#[test]
fn a_copy_restored_on_the_originals_token_needs_new_id_and_deleting_it_spares_the_original() {
    // Issue 12 item 3, as a user meets it: `key restore FILE --label copy` on the token that
    // holds the original.
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    two_tokens(home);
    let key = ok(
        home,
        &[
            "--json",
            "key",
            "generate",
            "--curve",
            "p256",
            "--label",
            "baker",
            "--backupable",
        ],
    );
    let file = home.join("baker.backup.json");
    let file_arg = file.to_str().unwrap();
    ok(
        home,
        &[
            "--json",
            "key",
            "backup",
            "baker",
            "--wrap-key",
            "wrap",
            "--out",
            file_arg,
        ],
    );
    let refused = run(
        home,
        &["--json", "key", "restore", file_arg, "--label", "copy"],
    );
    let error = refused.error();
    assert_eq!(error["kind"], "id_exists");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("'copy'") && message.contains("'baker'") && message.contains("--new-id"),
        "{message}"
    );

    let copy = ok(
        home,
        &[
            "--json", "key", "restore", file_arg, "--label", "copy", "--new-id",
        ],
    );
    assert_eq!(copy["label"], "copy");
    assert_eq!(copy["address"], key["address"]);
    assert_ne!(copy["id"], key["id"], "a fresh CKA_ID");
    let listed = ok(home, &["--json", "key", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let deleted = ok(home, &["--json", "key", "delete", "copy"]);
    assert_eq!(deleted["deleted"], 2);
    let shown = ok(home, &["--json", "key", "show", "baker"]);
    assert_eq!(shown["public_key"], key["public_key"]);
}
