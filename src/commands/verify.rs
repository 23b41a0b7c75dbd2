//! `verify`: a Tezos signature checked in software; no token needed.

use std::fmt;

use serde::Serialize;

use super::{parse_hex, Output};
use crate::cli::VerifyArgs;
use crate::error::CliError;

/// `verify`: `{"valid": true|false}`; exit code 0 only when valid.
#[derive(Serialize)]
pub struct Verified {
    valid: bool,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.valid { "valid" } else { "INVALID" })
    }
}

impl Output for Verified {
    fn success(&self) -> bool {
        self.valid
    }
}

/// `verify PUBLIC_KEY PAYLOAD SIGNATURE`.
pub fn run(args: &VerifyArgs) -> Result<Verified, CliError> {
    let bytes = parse_hex("the payload", &args.payload)?;
    let valid = match tezos_keys::verify_encoded(&args.public_key, &bytes, &args.signature) {
        Ok(_) => true,
        Err(tezos_keys::Error::VerificationFailed { .. } | tezos_keys::Error::HighS) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(Verified { valid })
}
