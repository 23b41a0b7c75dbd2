//! No secret (the PIN `<user>:<password>`, its password, a new user's password) reaches an
//! error's message or `Debug` output, whatever the CLI prints: secrets are redacted before a
//! message is cut, in every spelling the output may use (as is, JSON-escaped, JSON-escaped to
//! ASCII, escaped by `{:?}`), and in every error built from the output, including errors from
//! reading the answer's `data`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use cloudhsm_cli::{CliRole, CloudHsmError, KeyRef};
use common::{
    assert_no_secret_in, assert_no_secrets, json_escaped, json_escaped_ascii, spawn_lock, StandIn,
    OWNER_PIN,
};
use cryptoki_ops::secrecy::SecretString;

/// A PIN whose password needs escaping in JSON: a quote, a backslash, a letter outside ASCII.
const TRICKY_PIN: &str = "baker_owner:Pa\"ss\\wörd-1";
const TRICKY_PASSWORD: &str = "Pa\"ss\\wörd-1";
/// A new user's password that needs escaping too.
const TRICKY_NEW_PASSWORD: &str = "N\"ew\\Pässword";

fn baker() -> KeyRef {
    KeyRef::Label("baker".into())
}

fn tricky_owner(standin: &StandIn) -> cloudhsm_cli::CloudHsmCli {
    standin.cli(TRICKY_PIN, CliRole::CryptoUser)
}

#[test]
fn a_secret_at_the_cut_of_a_long_message_is_redacted_whole() {
    let _lock = spawn_lock();
    // The message is cut at 300 characters; the PIN straddles the cut.
    // A wording AWS does not document: the generic error, which keeps the (redacted) text.
    let message = format!("{} Refused for {OWNER_PIN}", "x".repeat(263));
    let answer = serde_json::json!({"error_code": 1, "data": message}).to_string();
    let standin = StandIn::answering(OWNER_PIN, &answer, 1, 1);
    let err = standin.owner().share_key(&baker(), "alice").unwrap_err();
    assert_eq!(err.kind(), "cloudhsm_cli", "{err:?}");
    assert_no_secrets(&err, &[]);
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("Owner-Pa"),
        "part of the password in: {text}"
    );
    assert!(!text.contains("baker_owner:"), "part of the PIN in: {text}");
}

#[test]
fn json_escaped_credentials_in_a_failure_object_are_redacted() {
    let _lock = spawn_lock();
    // `data` is an object, not the documented string: the message is its JSON, re-escaped.
    let answer = format!(
        r#"{{"error_code": 1, "data": {{"message": "Refused for {}"}}}}"#,
        json_escaped(TRICKY_PIN)
    );
    let standin = StandIn::answering(TRICKY_PIN, &answer, 1, 1);
    let err = tricky_owner(&standin)
        .share_key(&baker(), "alice")
        .unwrap_err();
    assert_eq!(err.kind(), "cloudhsm_cli", "{err:?}");
    assert!(err.to_string().contains("Refused for [REDACTED]"), "{err}");
    assert_no_secrets(&err, &[TRICKY_PIN, TRICKY_PASSWORD]);
}

#[test]
fn escaped_credentials_in_output_that_is_not_json_are_redacted() {
    let _lock = spawn_lock();
    for (escaped, fd, exit) in [
        (json_escaped(TRICKY_PIN), 1, 1),
        (json_escaped_ascii(TRICKY_PIN, false), 1, 1),
        (json_escaped_ascii(TRICKY_PIN, true), 2, 1),
        (json_escaped(TRICKY_PASSWORD), 2, 3),
        (json_escaped_ascii(TRICKY_PASSWORD, false), 1, 0),
    ] {
        let answer = format!("error: login failed for \"{escaped}\"\n");
        let standin = StandIn::answering(TRICKY_PIN, &answer, fd, exit);
        let err = tricky_owner(&standin)
            .key_shared_users(&baker())
            .unwrap_err();
        assert!(
            matches!(
                err,
                CloudHsmError::CliFailed { .. } | CloudHsmError::BadResponse { .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("[REDACTED]"), "{err}");
        assert_no_secrets(&err, &[TRICKY_PIN, TRICKY_PASSWORD]);
    }
}

#[test]
fn errors_from_reading_the_data_are_redacted() {
    let _lock = spawn_lock();
    for pin in [OWNER_PIN, TRICKY_PIN] {
        // A `total_key_count` that is not a number: serde's message quotes the value.
        let answer = format!(
            r#"{{"error_code": 0, "data": {{"matched_keys": [], "total_key_count": "{}"}}}}"#,
            json_escaped(pin)
        );
        let standin = StandIn::answering(pin, &answer, 1, 0);
        let err = standin
            .cli(pin, CliRole::CryptoUser)
            .key_shared_users(&baker())
            .unwrap_err();
        assert!(matches!(err, CloudHsmError::BadResponse { .. }), "{err:?}");
        assert!(err.to_string().contains("[REDACTED]"), "{err}");
        assert_no_secrets(&err, &[pin, TRICKY_PASSWORD]);
    }
}

#[test]
fn a_new_password_echoed_in_the_answer_is_redacted() {
    let _lock = spawn_lock();
    for password in [common::NEW_PASSWORD, TRICKY_NEW_PASSWORD] {
        // The CLI reports creating a user named like the password (a mixed-up answer).
        let answer = format!(
            r#"{{"error_code": 0, "data": {{"username": "{}", "role": "crypto-user"}}}}"#,
            json_escaped(password)
        );
        let standin = StandIn::answering(common::ADMIN_PIN, &answer, 1, 0);
        let err = standin
            .admin()
            .create_crypto_user("alice", &SecretString::from(password))
            .unwrap_err();
        assert!(matches!(err, CloudHsmError::BadResponse { .. }), "{err:?}");
        assert!(err.to_string().contains("[REDACTED]"), "{err}");
        assert_no_secrets(&err, &[password]);
    }
}

#[test]
fn a_new_password_echoed_escaped_on_a_crash_is_redacted() {
    let _lock = spawn_lock();
    let answer = format!(
        "panic: bad argument --password \"{}\"\n",
        json_escaped(TRICKY_NEW_PASSWORD)
    );
    let standin = StandIn::answering(common::ADMIN_PIN, &answer, 2, 101);
    let err = standin
        .admin()
        .create_crypto_user("alice", &SecretString::from(TRICKY_NEW_PASSWORD))
        .unwrap_err();
    assert!(
        matches!(&err, CloudHsmError::CliFailed { message, .. } if message.contains("[REDACTED]")),
        "{err:?}"
    );
    assert_no_secrets(&err, &[TRICKY_NEW_PASSWORD]);
}

#[test]
fn the_client_itself_shows_no_secret() {
    let standin = StandIn::new(TRICKY_PIN, &[]);
    let cli = tricky_owner(&standin);
    assert_no_secret_in(&format!("{cli:?}"), &[TRICKY_PIN, TRICKY_PASSWORD]);
}
