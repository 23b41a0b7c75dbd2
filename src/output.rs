//! What the tool prints: human text, or one JSON value per command with `--json`; errors as one
//! or two plain lines on stderr, or `{"error": {"kind", "message"}}` under `--json`.

use serde_json::{json, Value};

use cryptoki_ops::KeyPairInfo;
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
