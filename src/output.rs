//! What the tool prints: human text, or one JSON value per command with `--json`; errors as one
//! or two plain lines on stderr, or `{"error": {"kind", "message"}}` under `--json`.

use std::io::{IsTerminal, Write};

use serde_json::{json, Value};

use cryptoki_ops::KeyPairInfo;
use tezos_keys::runbook::{ConsistencyReport, Progress, RunbookError};
use tezos_keys::{tezos_public_key, SignError};

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

    /// Prints the error and returns the exit code.
    pub fn report(&self, json: bool) -> i32 {
        if json {
            eprintln!(
                "{}",
                json!({"error": {"kind": self.kind, "message": self.message}})
            );
        } else {
            eprintln!("error: {}", self.message);
        }
        1
    }
}

impl From<cryptoki_ops::Error> for CliError {
    fn from(e: cryptoki_ops::Error) -> Self {
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

impl From<RunbookError> for CliError {
    fn from(e: RunbookError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// A one-line progress display on stderr for long operations (many keys, several tokens): shown
/// only when stderr is a terminal and the output is not JSON.
pub struct ProgressLine {
    enabled: bool,
    verb: &'static str,
    shown: bool,
}

impl ProgressLine {
    /// A display that says `verb` before each item ("replicating", "reading token").
    pub fn new(json: bool, verb: &'static str) -> Self {
        Self {
            enabled: !json && std::io::stderr().is_terminal(),
            verb,
            shown: false,
        }
    }

    /// Shows the item being worked on.
    pub fn show(&mut self, progress: Progress<'_>) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[{}/{}] {} {}",
                progress.done + 1,
                progress.total,
                self.verb,
                progress.item
            );
            let _ = err.flush();
            self.shown = true;
        }
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

/// The consistency report for people: one line per key and wrapping key, problems spelled out.
pub fn consistency_text(report: &ConsistencyReport) -> String {
    let mut lines = vec![format!("tokens: {}", report.tokens.join(", "))];
    for key in &report.keys {
        let mut problems = Vec::new();
        let missing = key.missing_on();
        if !missing.is_empty() {
            problems.push(format!("missing on {}", missing.join(", ")));
        }
        if !key.same_public_key {
            let addresses: Vec<String> = key
                .tokens
                .iter()
                .filter(|t| t.present)
                .map(|t| format!("{}={}", t.token, t.address.as_deref().unwrap_or("?")))
                .collect();
            problems.push(format!("DIFFERENT public keys ({})", addresses.join(", ")));
        }
        for d in &key.differences {
            let values: Vec<String> = d
                .values
                .iter()
                .zip(&report.tokens)
                .map(|(v, t)| format!("{t}={}", v.as_deref().unwrap_or("-")))
                .collect();
            problems.push(format!("{} differs ({})", d.attribute, values.join(", ")));
        }
        for t in key.tokens.iter().filter(|t| t.count > 1) {
            problems.push(format!("{} keys share the label on {}", t.count, t.token));
        }
        for t in &key.tokens {
            if let Some(e) = &t.error {
                problems.push(format!("on {}: {e}", t.token));
            }
        }
        let address = key
            .tokens
            .iter()
            .find_map(|t| t.address.as_deref())
            .unwrap_or("-");
        lines.push(format!(
            "key {:<20} {:<36} {}",
            key.label,
            address,
            if problems.is_empty() {
                "ok".to_string()
            } else {
                problems.join("; ")
            }
        ));
    }
    for w in &report.wrapping_keys {
        let values: Vec<String> = w
            .tokens
            .iter()
            .map(|t| {
                format!(
                    "{}={}",
                    t.token,
                    if t.present {
                        t.check_value.as_deref().unwrap_or("?")
                    } else {
                        "missing"
                    }
                )
            })
            .collect();
        lines.push(format!(
            "wrapping key {:<11} {} {}",
            w.label,
            if w.is_consistent() { "ok" } else { "DIFFERS" },
            values.join(", ")
        ));
    }
    lines.push(if report.is_consistent() {
        "consistent: every token holds the same keys".to_string()
    } else {
        "NOT consistent: see above".to_string()
    });
    lines.join("\n")
}

impl From<tezos_keys::GuardError> for CliError {
    fn from(e: tezos_keys::GuardError) -> Self {
        use tezos_keys::GuardError;
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
            GuardError::StoreCorrupt { .. } => Self::new("watermark_store_corrupt", e.to_string()),
            // The signer's own error (HSM, PIN, key...) keeps its kind.
            GuardError::Signer(ref inner) => {
                match std::error::Error::source(inner).and_then(|s| s.downcast_ref::<SignError>()) {
                    Some(SignError::Hsm(hsm)) => Self::new(hsm.kind(), hsm.to_string()),
                    _ => Self::new("sign_failed", e.to_string()),
                }
            }
            other => Self::new("io", other.to_string()),
        }
    }
}

/// Parses hex given on the command line, with an error that says what was expected.
pub fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, CliError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).map_err(|e| {
        CliError::new(
            "invalid_input",
            format!("{what} is not valid hex ({e}); give the bytes as hex, e.g. 031234"),
        )
    })
}

/// The JSON object of a key pair: `{"label","id","curve","public_key","address"}`, plus
/// `"extractable"` and `"sensitive"` when `details`.
pub fn key_json(pair: &KeyPairInfo, details: bool) -> Result<Value, CliError> {
    let public_key = tezos_public_key(&pair.public_key)?;
    let mut value = json!({
        "label": pair.private.label,
        "id": pair.private.id_hex(),
        "curve": pair.public_key.curve().name(),
        "public_key": public_key.to_string(),
        "address": public_key.hash().to_string(),
    });
    if details {
        value["extractable"] = json!(pair.private.extractable);
        value["sensitive"] = json!(pair.private.sensitive);
    }
    Ok(value)
}

/// One line of human output for a key pair.
pub fn key_line(pair: &KeyPairInfo) -> Result<String, CliError> {
    let public_key = tezos_public_key(&pair.public_key)?;
    Ok(format!(
        "{:<20} {:<9} {}  {}  id {}",
        pair.private.label,
        pair.public_key.curve().name(),
        public_key.hash(),
        public_key,
        pair.private.id_hex()
    ))
}
