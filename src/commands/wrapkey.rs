//! `wrapkey generate` / `wrapkey import`: AES-256 wrapping keys, for backups and a second HSM.

use std::fmt;

use cryptoki_ops::WrappingKeySpec;
use serde::Serialize;

use super::key::read_key_value;
use super::Output;
use crate::cli::{GlobalArgs, WrapkeyCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::text::Escaped;

/// A wrapping key: `{"label","id","check_value","trusted"}`.
#[derive(Serialize)]
pub struct WrappingKey {
    label: String,
    id: String,
    check_value: String,
    trusted: bool,
}

impl fmt::Display for WrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrapping key '{}' id {} check value {}{}",
            Escaped(&self.label),
            self.id,
            self.check_value,
            if self.trusted { " (trusted)" } else { "" }
        )
    }
}

impl Output for WrappingKey {}

/// Runs `wrapkey ...`.
pub fn run(globals: &GlobalArgs, command: WrapkeyCommand) -> Result<WrappingKey, CliError> {
    let ctx = Context::new(globals)?;
    let (info, trusted) = match command {
        WrapkeyCommand::Generate { label, trusted } => {
            let mut spec = WrappingKeySpec::new(label);
            spec.trusted = trusted;
            (ctx.open_as(trusted)?.generate_wrapping_key(&spec)?, trusted)
        }
        WrapkeyCommand::Import {
            label,
            value_file,
            trusted,
        } => {
            let value = read_key_value(&value_file)?;
            let mut spec = WrappingKeySpec::new(label);
            spec.trusted = trusted;
            (
                ctx.open_as(trusted)?.import_wrapping_key(&spec, &value)?,
                trusted,
            )
        }
    };
    Ok(WrappingKey {
        id: info.id_hex(),
        check_value: info
            .check_value
            .as_deref()
            .map(hex::encode)
            .unwrap_or_default(),
        label: info.label,
        trusted,
    })
}
