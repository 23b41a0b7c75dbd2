//! The tool's error: a stable kind and a message saying what was wrong and how to fix it,
//! printed as one or two plain lines on stderr, or `{"error": {"kind", "message"}}` under
//! `--json`.
//!
//! This is the one place where the libraries' errors become kinds: [`CliError::from`] for each
//! library error type below. Errors that have a `kind()` keep it; the others are mapped here,
//! variant by variant, until their crate gives them one.

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

impl From<cryptoki_ops::Error> for CliError {
    fn from(e: cryptoki_ops::Error) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

impl From<RunbookError> for CliError {
    fn from(e: RunbookError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

impl From<tezos_keys::Error> for CliError {
    fn from(e: tezos_keys::Error) -> Self {
        Self::new("invalid_input", e.to_string())
    }
}

impl From<SignError> for CliError {
    fn from(e: SignError) -> Self {
        match e {
            SignError::Hsm(e) => e.into(),
            SignError::Tezos(e) => e.into(),
            SignError::WatermarkNotAllowed { .. } => Self::new(
                "watermark_not_allowed",
                format!("{e}\n  pass --allow with the watermarks this key may sign"),
            ),
            other => Self::new("verify_failed", other.to_string()),
        }
    }
}

impl From<GuardError> for CliError {
    fn from(e: GuardError) -> Self {
        match e {
            GuardError::DoubleSign { .. } => Self::new(
                "double_sign",
                format!(
                    "{e}\n  a baker must never sign two different payloads at one level and round"
                ),
            ),
            GuardError::PolicyRefused { .. } => Self::new(
                "watermark_not_allowed",
                format!("{e}\n  pass --allow with the watermarks this key may sign"),
            ),
            GuardError::Payload(inner) => inner.into(),
            // The signer's own error (HSM, PIN, key...) keeps its kind.
            GuardError::Signer(ref inner) => {
                match std::error::Error::source(inner).and_then(|s| s.downcast_ref::<SignError>()) {
                    Some(SignError::Hsm(hsm)) => Self::new(hsm.kind(), hsm.to_string()),
                    _ => Self::new("sign_failed", e.to_string()),
                }
            }
            // Store errors: watermark_store_missing, _unsafe, _busy, _corrupt, io.
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

impl From<CloudHsmError> for CliError {
    fn from(e: CloudHsmError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}
