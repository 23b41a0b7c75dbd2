//! The kinds of the adapter's errors (a table), and their redaction.

use super::*;

/// Every variant and its kind: a kind is part of the tool's JSON output and must not change.
#[test]
fn kinds_are_stable() {
    let s = String::new;
    let roles = (CliRole::Admin, CliRole::CryptoUser);
    let table = [
        (
            CloudHsmError::NotSupportedByModule {
                operation: "",
                module: PathBuf::new(),
            },
            "not_supported_by_module",
        ),
        (
            CloudHsmError::CliNotFound {
                program: PathBuf::new(),
            },
            "cli_not_found",
        ),
        (
            CloudHsmError::Credentials(
                cryptoki_ops::PinSource::Env("CLOUDHSM_TEST_VARIABLE_THAT_IS_NEVER_SET".into())
                    .resolve()
                    .unwrap_err(),
            ),
            "pin_source",
        ),
        (
            CloudHsmError::KmsUserRefused { user: s() },
            "kmsuser_refused",
        ),
        (
            CloudHsmError::NotKeyOwner {
                operation: "backup",
                key: s(),
                user: s(),
                owners: s(),
            },
            "not_key_owner",
        ),
        (
            CloudHsmError::Hsm(cryptoki_ops::Error::InvalidInput {
                what: "x",
                reason: s(),
            }),
            "invalid_input",
        ),
        (invalid("", s()), "invalid_input"),
        (
            CloudHsmError::WrongRole {
                operation: "",
                needed: roles.0,
                current: roles.1,
            },
            "wrong_role",
        ),
        (
            CloudHsmError::NotLoggedIn {
                command: s(),
                message: s(),
            },
            "not_logged_in",
        ),
        (
            CloudHsmError::AuthenticationFailed {
                command: s(),
                role: roles.1,
                message: s(),
            },
            "pin_incorrect",
        ),
        (
            CloudHsmError::UserNotFound {
                username: s(),
                message: s(),
            },
            "user_not_found",
        ),
        (
            CloudHsmError::UserExists {
                username: s(),
                message: s(),
            },
            "user_exists",
        ),
        (
            CloudHsmError::KeyNotFound {
                key: s(),
                message: s(),
            },
            "key_not_found",
        ),
        (
            CloudHsmError::AmbiguousKey {
                key: s(),
                message: s(),
            },
            "duplicate_label",
        ),
        (
            CloudHsmError::CliFailed {
                command: s(),
                message: s(),
            },
            "cloudhsm_cli",
        ),
        (
            CloudHsmError::CliTimeout {
                command: s(),
                timeout: Duration::ZERO,
            },
            "cli_timeout",
        ),
        (
            CloudHsmError::CliOutputTooLarge {
                command: s(),
                stream: "stdout",
                limit: 0,
            },
            "cli_output_too_large",
        ),
        (
            CloudHsmError::BadResponse {
                command: s(),
                reason: s(),
            },
            "cloudhsm_cli",
        ),
    ];
    for (err, kind) in table {
        assert_eq!(err.kind(), kind, "{err:?}");
    }
}

/// Redaction reaches every text field of every variant built from the CLI's output.
#[test]
fn redacted_covers_every_text_field() {
    let redactor = Redactor::new(&["s3cret-pass"]);
    let t = || "x s3cret-pass y".to_string();
    for err in [
        CloudHsmError::NotLoggedIn {
            command: t(),
            message: t(),
        },
        CloudHsmError::AuthenticationFailed {
            command: t(),
            role: CliRole::Admin,
            message: t(),
        },
        CloudHsmError::UserNotFound {
            username: t(),
            message: t(),
        },
        CloudHsmError::UserExists {
            username: t(),
            message: t(),
        },
        CloudHsmError::KeyNotFound {
            key: t(),
            message: t(),
        },
        CloudHsmError::AmbiguousKey {
            key: t(),
            message: t(),
        },
        CloudHsmError::CliFailed {
            command: t(),
            message: t(),
        },
        CloudHsmError::BadResponse {
            command: t(),
            reason: t(),
        },
        CloudHsmError::CliTimeout {
            command: t(),
            timeout: Duration::ZERO,
        },
        CloudHsmError::CliOutputTooLarge {
            command: t(),
            stream: "stderr",
            limit: 1,
        },
        invalid("", t()),
    ] {
        let err = err.redacted(&redactor);
        let text = format!("{err} {err:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("[REDACTED]"), "{text}");
    }
}
