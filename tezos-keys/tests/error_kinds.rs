//! Every public error enum's `kind()` in this crate, variant by variant: kinds are part of the
//! `tezos-hsm` tool's JSON output (`{"error": {"kind"}}`) and must never change for a variant.

use std::path::PathBuf;

use tezos_keys::high_watermark::{Height, MarkKind};
use tezos_keys::payload::Watermark;
#[cfg(feature = "hsm")]
use tezos_keys::runbook::RunbookError;
#[cfg(feature = "hsm")]
use tezos_keys::SignError;
use tezos_keys::{ChainId, Curve, GuardError, PublicKeyHash};

#[cfg(feature = "hsm")]
fn hsm_error() -> cryptoki_ops::Error {
    cryptoki_ops::Error::PinIncorrect { token: "t".into() }
}

fn key() -> PublicKeyHash {
    PublicKeyHash::new(Curve::Secp256k1, [0; 20])
}

/// A signer's failure as the guard reports it.
fn signer(source: Option<Box<dyn std::error::Error + Send + Sync>>) -> GuardError {
    GuardError::Signer(match source {
        Some(source) => signature::Error::from_source(source),
        None => signature::Error::new(),
    })
}

#[cfg(feature = "hsm")]
#[test]
fn sign_error_kinds_are_stable() {
    let table = [
        (SignError::Hsm(hsm_error()), "pin_incorrect"),
        (
            SignError::Tezos(tezos_keys::Error::EmptyPayload),
            "invalid_input",
        ),
        (SignError::Tezos(tezos_keys::Error::HighS), "verify_failed"),
        (
            SignError::PolicyRefused {
                key: key(),
                watermark: Watermark::Block,
                allowed: vec![Watermark::Generic],
            },
            "watermark_not_allowed",
        ),
        (
            SignError::VerifyAfterSignFailed {
                key: "tz2".into(),
                reason: "x".into(),
            },
            "verify_failed",
        ),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error:?}");
    }
}

#[test]
fn guard_error_kinds_are_stable() {
    let table = [
        (
            GuardError::DoubleSign {
                key: key(),
                chain: ChainId::MAINNET,
                kind: MarkKind::Block,
                requested: Height::new(1, 0),
                recorded: Height::new(2, 0),
            },
            "double_sign",
        ),
        (
            GuardError::PolicyRefused {
                key: key(),
                watermark: Watermark::Block,
                allowed: vec![Watermark::Generic],
            },
            "watermark_not_allowed",
        ),
        (
            GuardError::Payload(tezos_keys::Error::EmptyPayload),
            "invalid_input",
        ),
        (
            GuardError::StoreCorrupt {
                path: PathBuf::new(),
                reason: "x".into(),
            },
            "watermark_store_corrupt",
        ),
        (
            GuardError::StoreMissing {
                dir: PathBuf::new(),
            },
            "watermark_store_missing",
        ),
        (
            GuardError::StoreUnsafe {
                dir: PathBuf::new(),
                problem: "x".into(),
                fix: "x".into(),
            },
            "watermark_store_unsafe",
        ),
        (
            GuardError::StoreBusy {
                path: PathBuf::new(),
                waited: std::time::Duration::ZERO,
            },
            "watermark_store_busy",
        ),
        (
            GuardError::StoreIo {
                path: PathBuf::new(),
                action: "read",
                source: std::io::Error::other("x"),
            },
            "io",
        ),
        // The signer's own error keeps its kind (HSM errors: below)...
        (
            signer(Some(Box::new(tezos_keys::Error::EmptyPayload))),
            "invalid_input",
        ),
        // ...and an error this crate does not know is `sign_failed`.
        (
            signer(Some(Box::new(std::io::Error::other("x")))),
            "sign_failed",
        ),
        (signer(None), "sign_failed"),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error:?}");
    }
}

#[cfg(feature = "hsm")]
#[test]
fn guard_keeps_the_kinds_of_hsm_signer_errors() {
    let table = [
        // The signer's own error keeps its kind, whichever layer it comes from.
        (
            signer(Some(Box::new(SignError::Hsm(hsm_error())))),
            "pin_incorrect",
        ),
        (
            signer(Some(Box::new(SignError::VerifyAfterSignFailed {
                key: "tz2".into(),
                reason: "x".into(),
            }))),
            "verify_failed",
        ),
        (signer(Some(Box::new(hsm_error()))), "pin_incorrect"),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error:?}");
    }
}

#[cfg(feature = "hsm")]
#[test]
fn runbook_error_kinds_are_stable() {
    let s = String::new;
    let table = [
        (RunbookError::Hsm(hsm_error()), "pin_incorrect"),
        (
            RunbookError::Tezos(tezos_keys::Error::EmptyPayload),
            "invalid_input",
        ),
        (
            RunbookError::Io {
                action: "read",
                path: PathBuf::new(),
                source: std::io::Error::other("x"),
            },
            "io",
        ),
        (
            RunbookError::FileExists {
                path: PathBuf::new(),
            },
            "file_exists",
        ),
        (
            RunbookError::CorruptBackup { reason: s() },
            "corrupt_backup",
        ),
        (
            RunbookError::UnknownVersion {
                found: 9,
                supported: 1,
            },
            "unknown_version",
        ),
        (
            RunbookError::WrongWrappingKey {
                label: s(),
                token: s(),
                expected: s(),
                found: s(),
            },
            "wrong_wrapping_key",
        ),
        (
            RunbookError::KeyMismatch {
                label: s(),
                token: s(),
                public_key: s(),
            },
            "key_mismatch",
        ),
        (
            RunbookError::WrappingKeyDiffers {
                label: s(),
                source_token: s(),
                source_check_value: s(),
                target_token: s(),
                target_check_value: s(),
            },
            "wrapping_key_differs",
        ),
        (
            RunbookError::LabelConflict {
                label: s(),
                token: s(),
                expected: s(),
                found: s(),
            },
            "label_conflict",
        ),
        (
            RunbookError::NothingSelected {
                token: s(),
                selection: s(),
            },
            "key_not_found",
        ),
        (
            RunbookError::InvalidInput {
                what: "label",
                reason: s(),
            },
            "invalid_input",
        ),
        (
            RunbookError::NotExtractable {
                label: s(),
                token: s(),
            },
            "not_extractable",
        ),
        (
            RunbookError::WrappingKeyValueMismatch {
                label: s(),
                token: s(),
                given: s(),
                on_token: s(),
            },
            "wrong_wrapping_key",
        ),
        (
            RunbookError::ExportUnsupported {
                what: s(),
                reason: "x",
            },
            "unsupported",
        ),
        (
            RunbookError::SoftwareUnwrap { reason: "x" },
            "unwrap_failed",
        ),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error:?}");
    }
}

#[test]
fn durable_error_kinds_are_stable() {
    use tezos_keys::durable::DurableError;
    let path = PathBuf::new;
    let table = [
        (DurableError::Exists { path: path() }, "file_exists"),
        (
            DurableError::Io {
                action: "write",
                path: path(),
                source: std::io::Error::other("x"),
            },
            "io",
        ),
        (
            DurableError::NotRegular {
                path: path(),
                found: "symbolic link",
            },
            "not_regular_file",
        ),
        (
            DurableError::TooLarge {
                path: path(),
                limit: 1,
            },
            "file_too_large",
        ),
        (
            DurableError::NotADirectory { path: path() },
            "not_a_directory",
        ),
        (
            DurableError::MissingDir { path: path() },
            "directory_missing",
        ),
        (
            DurableError::UnsafeDir {
                path: path(),
                problem: "x".into(),
                fix: "x".into(),
            },
            "directory_unsafe",
        ),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind, "{error:?}");
    }
}
