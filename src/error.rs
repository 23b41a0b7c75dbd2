//! The tool's error: a stable kind and a message saying what was wrong and how to fix it,
//! printed as one or two plain lines on stderr, or `{"error": {"kind", "message"}}` under
//! `--json`.
//!
//! This is the one place where the libraries' errors become the tool's: every library error
//! keeps its stable `kind()` (documented with each `kind()` method), see `from_library`.

use std::process::ExitCode;

use cloudhsm_cli::CloudHsmError;
use serde_json::json;

use crate::print;
use crate::text::escape_keeping_lines;
use tezos_keys::runbook::RunbookError;
use tezos_keys::{GuardError, SignError};

/// An error as the tool reports it: a stable kind and a message saying what and how to fix it.
#[derive(Debug)]
pub struct CliError {
    /// Stable snake_case kind (documented in the README).
    pub kind: &'static str,
    /// One or two lines, no secret.
    pub message: String,
}

impl CliError {
    /// An error of `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Prints the error on stderr (as JSON when `json`) and returns the exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        self.print(json);
        ExitCode::FAILURE
    }

    fn print(&self, json: bool) {
        if json {
            let value = json!({"error": {"kind": self.kind, "message": self.message}});
            print::stderr_line(&value.to_string());
        } else {
            print::stderr_line(&format!("error: {}", escape_keeping_lines(&self.message)));
        }
    }
}

/// Handles what the argument parser refused or was asked for: `--help` and `--version` print as
/// usual; an argument error is the kind `usage` (exit code 2), as JSON under `--json`.
pub fn usage(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    let code = ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return code;
    }
    let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a command is missing; run with --help to see the commands".to_string()
    } else {
        // The error itself, without the usage and "try --help" lines that follow a blank line.
        let text = e.render().to_string();
        let text = text.split("\n\n").next().unwrap_or_default().trim();
        text.strip_prefix("error: ").unwrap_or(text).to_string()
    };
    CliError::new("usage", message).print(true);
    code
}

/// The one mapping from a library error to the tool's: the library's stable `kind()`, its
/// message, and for some kinds a line saying what to do.
fn from_library(kind: &'static str, message: String) -> CliError {
    let hint = match kind {
        "watermark_not_allowed" => Some("pass --allow with the watermarks this key may sign"),
        "double_sign" => {
            Some("a baker must never sign two different payloads at one level and round")
        }
        _ => None,
    };
    match hint {
        Some(hint) => CliError::new(kind, format!("{message}\n  {hint}")),
        None => CliError::new(kind, message),
    }
}

/// `From` every library error type, each through [`from_library`].
macro_rules! from_library_errors {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                from_library(e.kind(), e.to_string())
            }
        }
    )*};
}

from_library_errors!(
    cryptoki_ops::Error,
    RunbookError,
    tezos_keys::Error,
    SignError,
    GuardError,
    CloudHsmError,
    watermark_postgres::PgStoreError,
    tezos_signer::KeysError,
    tezos_signer::config::ConfigError,
    tezos_signer::tls::TlsError,
    tezos_signer::api_key::ApiKeyFileError,
);

#[cfg(test)]
mod tests {
    use super::*;
    use tezos_keys::payload::Watermark;
    use tezos_keys::{Curve, PublicKeyHash};

    #[test]
    fn library_kinds_pass_through_with_the_cli_hint() {
        let refused = GuardError::PolicyRefused {
            key: PublicKeyHash::new(Curve::P256, [0; 20]),
            watermark: Watermark::Block,
            allowed: vec![Watermark::Generic],
        };
        let e = CliError::from(refused);
        assert_eq!(e.kind, "watermark_not_allowed");
        assert!(e
            .message
            .ends_with("pass --allow with the watermarks this key may sign"));

        // The signer's own kind survives the guard and the signature::Error in between.
        let pin = SignError::Hsm(cryptoki_ops::Error::PinIncorrect { token: "t".into() });
        let e = CliError::from(GuardError::Signer(signature::Error::from_source(pin)));
        assert_eq!(e.kind, "pin_incorrect");
        assert!(
            e.message.contains("PIN for token 't' is wrong"),
            "{}",
            e.message
        );

        let e = CliError::from(tezos_keys::Error::EmptyPayload);
        assert_eq!((e.kind, e.message.contains('\n')), ("invalid_input", false));
    }
}
