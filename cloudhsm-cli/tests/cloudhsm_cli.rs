//! CloudHSM user management and key sharing through `cloudhsm-cli`, against a stand-in executable
//! (`fixtures/cloudhsm-cli-standin`, driven by `common::StandIn`) that answers with the JSON AWS
//! documents and records the arguments and environment it was given. No HSM and no SoftHSM2 token are needed
//! (one test loads the SoftHSM2 module, without opening a session, in a child process of its own).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use cloudhsm_cli::{CliRole, CloudHsmCli, CloudHsmError, HsmUser, KeyRef, UserRole};
use common::{
    pin_value, set_mode, spawn_lock, Record, StandIn, ADMIN_PIN, NEW_PASSWORD, OWNER_PIN,
};
use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{Module, ModuleSource, PinSource};

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn record(role: &str, pin: &str, items: &[&str]) -> Option<Record> {
    Some(Record {
        role: role.to_string(),
        pin: pin.to_string(),
        args: args(items),
    })
}

fn baker() -> KeyRef {
    KeyRef::Label("baker".into())
}

/// Neither the error's message nor its `Debug` form holds a test secret.
fn assert_no_secrets(err: &CloudHsmError) {
    common::assert_no_secrets(err, &[]);
}

// --- user list -----------------------------------------------------------------------------

#[test]
fn list_users_runs_without_credentials_and_parses_the_documented_json() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let users = standin.owner().list_users().unwrap();
    // `user list` needs no login (AWS docs cloudhsm_cli-user-list): no credentials are passed.
    assert_eq!(
        standin.record(),
        record("<unset>", "<unset>", &["user", "list"])
    );
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin",
            "second_admin",
            "app_user",
            "baker_owner",
            "old_signer"
        ]
    );
    assert_eq!(
        users[0],
        HsmUser {
            username: "admin".into(),
            role: UserRole::Admin,
            locked: false,
            mfa: vec![],
            cluster_coverage: Some("full".into()),
        }
    );
    assert_eq!(users[1].mfa.len(), 1);
    assert_eq!(users[1].mfa[0].strategy, "token-sign");
    assert_eq!(users[1].mfa[0].status, "enabled");
    assert_eq!(
        users[2].role,
        UserRole::Other("internal(APPLIANCE_USER)".into())
    );
    assert_eq!(users[3].role, UserRole::CryptoUser);
    assert!(!users[3].locked);
    assert!(users[4].locked, "\"locked\": \"true\" is a locked user");
}

#[test]
fn list_users_works_even_when_the_credentials_are_unavailable() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let cli = CloudHsmCli::with_program(
        &standin.program,
        PinSource::Env("CLOUDHSM_TEST_VARIABLE_THAT_IS_NEVER_SET".into()),
        CliRole::CryptoUser,
    );
    let names: Vec<String> = cli
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(
        names,
        [
            "admin",
            "second_admin",
            "app_user",
            "baker_owner",
            "old_signer"
        ],
        "user-list.json"
    );
}

// --- user create ---------------------------------------------------------------------------

#[test]
fn create_crypto_user_passes_exact_arguments_and_admin_credentials() {
    let _lock = spawn_lock();
    let standin = StandIn::new(ADMIN_PIN, &[]);
    let user = standin
        .admin()
        .create_crypto_user("Standby_Signer", &SecretString::from(NEW_PASSWORD))
        .unwrap();
    assert_eq!(
        standin.record(),
        record(
            "admin",
            "expected",
            &[
                "user",
                "create",
                "--username",
                "standby_signer", // lower-cased, as CloudHSM shows user names
                "--role",
                "crypto-user",
                "--password",
                NEW_PASSWORD,
            ]
        )
    );
    assert_eq!(
        user,
        HsmUser {
            username: "standby_signer".into(),
            role: UserRole::CryptoUser,
            locked: false,
            mfa: vec![],
            cluster_coverage: None,
        }
    );
}

#[test]
fn create_crypto_user_checks_name_and_password_before_running() {
    let _lock = spawn_lock();
    let standin = StandIn::new(ADMIN_PIN, &[]);
    let admin = standin.admin();
    let good = SecretString::from(NEW_PASSWORD);
    for name in [
        "",
        "bob-1",
        "bob smith",
        "bob.smith",
        &"a".repeat(32), // 31 at most (AWS docs cloudhsm_cli-user-create)
    ] {
        let err = admin.create_crypto_user(name, &good).unwrap_err();
        assert!(
            matches!(
                err,
                CloudHsmError::InvalidInput {
                    what: "HSM user name",
                    ..
                }
            ),
            "{name:?}: {err}"
        );
    }
    for password in ["1234567", &"x".repeat(33)] {
        let err = admin
            .create_crypto_user("alice", &SecretString::from(password))
            .unwrap_err();
        assert!(
            matches!(
                err,
                CloudHsmError::InvalidInput {
                    what: "password",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains(password));
    }
    assert_eq!(standin.record(), None, "the CLI must not run");
    admin
        .create_crypto_user(&"a".repeat(31), &SecretString::from("12345678"))
        .unwrap();
}

#[test]
fn create_crypto_user_needs_the_admin_role() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let err = standin
        .owner()
        .create_crypto_user("alice", &SecretString::from(NEW_PASSWORD))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CloudHsmError::WrongRole {
                needed: CliRole::Admin,
                current: CliRole::CryptoUser,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("must be run as admin"), "{err}");
    assert_eq!(standin.record(), None);
}

#[test]
fn create_user_refused_in_undocumented_words_keeps_the_cli_text() {
    let _lock = spawn_lock();
    let standin = undocumented_failure(ADMIN_PIN);
    let err = standin
        .admin()
        .create_crypto_user("baker_owner", &SecretString::from(NEW_PASSWORD))
        .unwrap_err();
    assert_generic_failure(
        &err,
        "cloudhsm-cli user create --username baker_owner --role crypto-user --password [REDACTED]",
    );
    assert_no_secrets(&err);
}

#[test]
fn the_new_password_never_appears_in_errors() {
    let _lock = spawn_lock();
    // The stand-in crashes and echoes its arguments, password included, on stderr.
    let standin = StandIn::new(ADMIN_PIN, &[("STANDIN_ERROR", "crash")]);
    let err = standin
        .admin()
        .create_crypto_user("alice", &SecretString::from(NEW_PASSWORD))
        .unwrap_err();
    let CloudHsmError::CliFailed { command, message } = &err else {
        panic!("expected CliFailed, got {err:?}");
    };
    assert_eq!(
        command,
        "cloudhsm-cli user create --username alice --role crypto-user --password [REDACTED]"
    );
    assert!(message.contains("exit status: 2"), "{message}");
    assert!(message.contains("[REDACTED]"), "{message}");
    assert_no_secrets(&err);
}

// --- key share / unshare -------------------------------------------------------------------

#[test]
fn share_key_by_label_passes_exact_arguments_and_owner_credentials() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    standin
        .owner()
        .share_key(&baker(), "Standby_Signer")
        .unwrap();
    assert_eq!(
        standin.record(),
        record(
            "crypto-user",
            "expected",
            &[
                "key",
                "share",
                "--filter",
                "attr.label=baker",
                "attr.class=private-key",
                "--username",
                "standby_signer",
                "--role",
                "crypto-user",
            ]
        )
    );
}

#[test]
fn unshare_key_by_reference_passes_exact_arguments() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    standin
        .owner()
        .unshare_key(&KeyRef::Reference("0x00000000001C0686".into()), "backup_cu")
        .unwrap();
    assert_eq!(
        standin.record(),
        record(
            "crypto-user",
            "expected",
            &[
                "key",
                "unshare",
                "--filter",
                "key-reference=0x00000000001c0686",
                "--username",
                "backup_cu",
                "--role",
                "crypto-user",
            ]
        )
    );
}

#[test]
fn sharing_needs_the_crypto_user_role_and_valid_input() {
    let _lock = spawn_lock();
    let standin = StandIn::new(ADMIN_PIN, &[]);
    let err = standin.admin().share_key(&baker(), "alice").unwrap_err();
    assert!(
        matches!(
            err,
            CloudHsmError::WrongRole {
                needed: CliRole::CryptoUser,
                ..
            }
        ),
        "{err}"
    );
    let owner = standin.cli(ADMIN_PIN, CliRole::CryptoUser);
    for (key, user) in [
        (KeyRef::Reference("1c0686".into()), "alice"),
        (KeyRef::Reference("0xnothex".into()), "alice"),
        (KeyRef::Label(String::new()), "alice"),
        (baker(), "alice-2"),
    ] {
        let err = owner.share_key(&key, user).unwrap_err();
        assert!(
            matches!(err, CloudHsmError::InvalidInput { .. }),
            "{key:?} {user}: {err}"
        );
    }
    assert_eq!(standin.record(), None, "the CLI must not run");
}

// --- key list: shared users ----------------------------------------------------------------

#[test]
fn key_shared_users_reads_shared_users_from_key_list_verbose() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let users = standin.owner().key_shared_users(&baker()).unwrap();
    assert_eq!(users, ["standby_signer", "backup_cu"]);
    assert_eq!(
        standin.record(),
        record(
            "crypto-user",
            "expected",
            &[
                "key",
                "list",
                "--filter",
                "attr.label=baker",
                "attr.class=private-key",
                "--verbose",
            ]
        )
    );
}

#[test]
fn key_shared_users_with_no_match_is_key_not_found() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_KEYS", "0")]);
    let err = standin.owner().key_shared_users(&baker()).unwrap_err();
    assert!(
        matches!(&err, CloudHsmError::KeyNotFound { key, .. } if key == "private key labelled 'baker'"),
        "{err}"
    );
}

#[test]
fn key_shared_users_with_two_matches_is_ambiguous() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_KEYS", "2")]);
    let err = standin.owner().key_shared_users(&baker()).unwrap_err();
    assert!(matches!(err, CloudHsmError::AmbiguousKey { .. }), "{err}");
    assert!(err.to_string().contains("KeyRef::Reference"), "{err}");
}

// --- errors parsed from {"error_code": 1, "data": "..."} ------------------------------------
//
// AWS documents the failure shape and only a few messages (fixtures/README.md): a specific error
// kind is asserted only for those. Any other wording, however plausible, must end up as the
// generic `cloudhsm_cli` error that keeps the CLI's text, so nothing here depends on a guess.

/// A wording AWS does not document, made up so that no rule of the adapter can recognise it.
const UNDOCUMENTED: &str = "Operation 0x2f refused by the appliance (wording made up for a test)";

fn undocumented_failure(pin: &str) -> StandIn {
    StandIn::new(
        pin,
        &[
            ("STANDIN_ERROR", "message"),
            ("STANDIN_MESSAGE", UNDOCUMENTED),
        ],
    )
}

/// The generic error: the exact command and the CLI's exact text, in the message too.
fn assert_generic_failure(err: &CloudHsmError, expected_command: &str) {
    assert_eq!(err.kind(), "cloudhsm_cli", "{err:?}");
    let CloudHsmError::CliFailed { command, message } = err else {
        panic!("expected CliFailed, got {err:?}");
    };
    assert_eq!(command, expected_command);
    assert_eq!(message, &format!("error_code 1: {UNDOCUMENTED}"));
    assert!(err.to_string().contains(UNDOCUMENTED), "{err}");
}

#[test]
fn share_refused_in_undocumented_words_keeps_the_cli_text() {
    let _lock = spawn_lock();
    let standin = undocumented_failure(OWNER_PIN);
    let err = standin.owner().share_key(&baker(), "ghost").unwrap_err();
    assert_generic_failure(
        &err,
        "cloudhsm-cli key share --filter attr.label=baker attr.class=private-key \
         --username ghost --role crypto-user",
    );
}

#[test]
fn key_list_refused_in_undocumented_words_keeps_the_cli_text() {
    let _lock = spawn_lock();
    let standin = undocumented_failure(OWNER_PIN);
    let err = standin.owner().key_shared_users(&baker()).unwrap_err();
    assert_generic_failure(
        &err,
        "cloudhsm-cli key list --filter attr.label=baker attr.class=private-key --verbose",
    );
}

#[test]
fn unshare_refused_in_undocumented_words_keeps_the_cli_text() {
    let _lock = spawn_lock();
    let standin = undocumented_failure(OWNER_PIN);
    let key = KeyRef::Reference("0x0000000000abcdef".into());
    let err = standin.owner().unshare_key(&key, "alice").unwrap_err();
    assert_generic_failure(
        &err,
        "cloudhsm-cli key unshare --filter key-reference=0x0000000000abcdef \
         --username alice --role crypto-user",
    );
    assert_no_secrets(&err);
}

#[test]
fn share_of_unknown_key_is_key_not_found() {
    let _lock = spawn_lock();
    // AWS's documented "Key selection criteria matched N keys" with N = 0.
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "none-matched")]);
    let key = KeyRef::Reference("0x0000000000abcdef".into());
    let err = standin.owner().share_key(&key, "alice").unwrap_err();
    assert!(
        matches!(&err, CloudHsmError::KeyNotFound { key, .. } if key == "key 0x0000000000abcdef"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "key_not_found");
    assert!(err.to_string().contains("owner"), "{err}");
}

#[test]
fn documented_too_many_keys_error_is_ambiguous_key() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "ambiguous")]);
    let err = standin.owner().unshare_key(&baker(), "alice").unwrap_err();
    assert!(
        matches!(&err, CloudHsmError::AmbiguousKey { message, .. }
            if message == "Key selection criteria matched 48 keys. Refine selection criteria \
                           to select a single key."),
        "{err:?}"
    );
    assert_eq!(err.kind(), "duplicate_label");
}

#[test]
fn other_failures_keep_the_cli_message() {
    let _lock = spawn_lock();
    let standin = StandIn::new(ADMIN_PIN, &[("STANDIN_ERROR", "quorum")]);
    let err = standin
        .admin()
        .create_crypto_user("alice", &SecretString::from(NEW_PASSWORD))
        .unwrap_err();
    assert!(
        matches!(&err, CloudHsmError::CliFailed { message, .. }
            if message == "error_code 1: Quorum approval is required for this operation"),
        "{err:?}"
    );
    assert_no_secrets(&err);
}

#[test]
fn an_error_answer_is_parsed_even_with_exit_status_zero() {
    let _lock = spawn_lock();
    let standin = StandIn::new(
        OWNER_PIN,
        &[("STANDIN_ERROR", "ambiguous"), ("STANDIN_EXIT", "0")],
    );
    let err = standin.owner().share_key(&baker(), "ghost").unwrap_err();
    assert!(matches!(err, CloudHsmError::AmbiguousKey { .. }), "{err:?}");
}

#[test]
fn credentials_echoed_by_the_cli_are_redacted() {
    let _lock = spawn_lock();
    // The wording is not AWS's: what is tested is the redaction, whatever the kind.
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "echo-credentials")]);
    let err = standin.owner().share_key(&baker(), "alice").unwrap_err();
    assert!(
        err.to_string().contains("Login failed for [REDACTED]"),
        "{err}"
    );
    assert_no_secrets(&err);
}

#[test]
fn output_that_is_not_json_is_bad_response() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "garbage")]);
    let err = standin.owner().key_shared_users(&baker()).unwrap_err();
    assert!(matches!(err, CloudHsmError::BadResponse { .. }), "{err:?}");
}

#[test]
fn a_non_zero_exit_after_success_json_is_a_failure() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "exit-after-success")]);
    let err = standin.owner().share_key(&baker(), "alice").unwrap_err();
    assert!(
        matches!(&err, CloudHsmError::CliFailed { message, .. } if message.contains("exit status: 3")),
        "{err:?}"
    );
}

// --- program and credentials ---------------------------------------------------------------

#[test]
fn missing_cli_is_cli_not_found() {
    let _lock = spawn_lock();
    let cli = CloudHsmCli::with_program(
        "/nonexistent/cloudhsm-cli",
        pin_value(OWNER_PIN),
        CliRole::CryptoUser,
    );
    let err = cli.share_key(&baker(), "alice").unwrap_err();
    assert!(matches!(err, CloudHsmError::CliNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/cloudhsm-cli"),
        "{err}"
    );
    assert_no_secrets(&err);
}

#[test]
fn credentials_come_from_a_pin_file_like_the_pkcs11_login() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let pin_file = standin.dir.path().join("owner.pin");
    std::fs::write(&pin_file, format!("{OWNER_PIN}\n")).unwrap();
    set_mode(&pin_file, 0o600);
    let cli = CloudHsmCli::with_program(
        &standin.program,
        format!("file:{}", pin_file.display()).parse().unwrap(),
        CliRole::CryptoUser,
    );
    cli.share_key(&baker(), "alice").unwrap();
    let record = standin.record().unwrap();
    assert_eq!(
        (record.role.as_str(), record.pin.as_str()),
        ("crypto-user", "expected")
    );
    assert!(
        !record.args.iter().any(|a| a.contains("Owner-Passw0rd")),
        "the PIN must not be on the command line: {:?}",
        record.args
    );
}

#[test]
fn unavailable_credentials_stop_before_running() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let cli = CloudHsmCli::with_program(
        &standin.program,
        PinSource::Env("CLOUDHSM_TEST_VARIABLE_THAT_IS_NEVER_SET".into()),
        CliRole::CryptoUser,
    );
    let err = cli.share_key(&baker(), "alice").unwrap_err();
    assert!(matches!(err, CloudHsmError::Credentials(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("CLOUDHSM_TEST_VARIABLE_THAT_IS_NEVER_SET"),
        "{err}"
    );
    assert_eq!(standin.record(), None);
}

#[test]
fn credentials_without_user_name_are_refused_without_showing_them() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let cli = standin.cli("Owner-Passw0rd", CliRole::CryptoUser);
    let err = cli.key_shared_users(&baker()).unwrap_err();
    assert!(
        matches!(
            err,
            CloudHsmError::InvalidInput {
                what: "CloudHSM credentials",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("<user>:<password>"), "{err}");
    assert_no_secrets(&err);
    assert_eq!(standin.record(), None);
}

// --- other modules -------------------------------------------------------------------------

/// Set in the child process `other_modules_are_not_supported` runs its body in.
const MODULE_CHILD_ENV: &str = "CLOUDHSM_CLI_TEST_MODULE_CHILD";

#[test]
fn other_modules_are_not_supported() {
    if std::env::var_os(MODULE_CHILD_ENV).is_some() {
        // In the child: SOFTHSM2_CONF was set for this process alone, at its start.
        let module = Module::load(&ModuleSource::softhsm2().unwrap().into()).unwrap();
        assert!(!module.is_cloudhsm());
        let err = CloudHsmCli::for_module(&module, pin_value(OWNER_PIN), CliRole::CryptoUser)
            .unwrap_err();
        assert!(
            matches!(&err, CloudHsmError::NotSupportedByModule { module: path, .. } if path == module.path()),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("not supported by this module"),
            "{err}"
        );
    } else {
        // SoftHSM2 reads SOFTHSM2_CONF once per process, and setting a variable in this
        // multi-threaded test process would race with the other tests: the body runs in a
        // child process of this test binary, given an empty token directory of its own.
        let _lock = spawn_lock();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "other_modules_are_not_supported",
                "--test-threads",
                "1",
            ])
            .env(MODULE_CHILD_ENV, "1")
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "the child failed or ran nothing:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
