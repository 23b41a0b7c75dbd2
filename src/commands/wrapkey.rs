//! `wrapkey generate` / `wrapkey import`: AES-256 wrapping keys, for backups and a second HSM.
//!
//! A trusted wrapping key (`--trusted`) is made the module's way. On AWS CloudHSM the PKCS#11
//! library logs in crypto users only (AWS docs `pkcs11-pin`) and only an admin sets
//! `CKA_TRUSTED`, through cloudhsm-cli (`modify-attr`, `key_attribute_background`): the crypto
//! user of --pin creates the key, the admin of --admin-pin (else --so-pin) marks it trusted, and
//! the owner shares it with `--share-with` users (`cloudhsm_cli::create_trusted_wrapping_key`).
//! Elsewhere (SoftHSM2) the security officer creates it trusted through PKCS#11.

use std::fmt;

use cloudhsm_cli::{create_trusted_wrapping_key, CliRole};
use cryptoki_ops::{KeyInfo, Module, ModuleSource, WrappingKeySpec};
use serde::Serialize;

use super::key::read_key_value;
use super::user::Users;
use super::Output;
use crate::cli::{GlobalArgs, WrapkeyCommand};
use crate::context::{Context, Target};
use crate::error::CliError;
use crate::text::Escaped;

/// A wrapping key: `{"label","id","check_value","trusted"}`, plus on CloudHSM `"reference"` and,
/// when shared, `"shared_with"`.
#[derive(Serialize)]
pub struct WrappingKey {
    label: String,
    id: String,
    check_value: String,
    trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    shared_with: Vec<String>,
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
        )?;
        if let Some(reference) = &self.reference {
            write!(f, ", key reference {reference}")?;
        }
        if !self.shared_with.is_empty() {
            write!(f, ", shared with {}", self.shared_with.join(", "))?;
        }
        Ok(())
    }
}

impl Output for WrappingKey {}

impl WrappingKey {
    fn new(info: KeyInfo, trusted: bool) -> Self {
        Self {
            id: info.id_hex(),
            check_value: info
                .check_value
                .as_deref()
                .map(hex::encode)
                .unwrap_or_default(),
            label: info.label,
            trusted,
            reference: None,
            shared_with: Vec::new(),
        }
    }
}

/// Runs `wrapkey ...`.
pub fn run(globals: &GlobalArgs, command: WrapkeyCommand) -> Result<WrappingKey, CliError> {
    let ctx = Context::new(globals)?;
    let (label, value, trusted, share_with) = match command {
        WrapkeyCommand::Generate {
            label,
            trusted,
            share_with,
        } => (label, None, trusted, share_with),
        WrapkeyCommand::Import {
            label,
            value_file,
            trusted,
            share_with,
        } => (
            label,
            Some(read_key_value(&value_file)?),
            trusted,
            share_with,
        ),
    };
    let mut spec = WrappingKeySpec::new(label);
    if trusted && is_cloudhsm(&ctx)? {
        let users = Users::new(globals);
        let admin = users.admin()?;
        let owner = users.cli(CliRole::CryptoUser)?;
        let hsm = ctx.open()?;
        let made =
            create_trusted_wrapping_key(&hsm, &spec, value.as_ref(), &owner, &admin, &share_with)?;
        let mut key = WrappingKey::new(made.info, true);
        key.reference = Some(made.reference);
        key.shared_with = made.shared_with;
        return Ok(key);
    }
    if !share_with.is_empty() {
        return Err(CliError::new(
            "not_supported_by_module",
            "--share-with shares a key with other CloudHSM crypto users; on this module every \
             user of the token already sees every key: leave it out",
        ));
    }
    spec.trusted = trusted;
    let hsm = ctx.open_as(trusted)?;
    let info = match &value {
        Some(value) => hsm.import_wrapping_key(&spec, value)?,
        None => hsm.generate_wrapping_key(&spec)?,
    };
    Ok(WrappingKey::new(info, trusted))
}

/// Whether the configured module is AWS CloudHSM (the local store never is).
fn is_cloudhsm(ctx: &Context) -> Result<bool, CliError> {
    match &ctx.target {
        Target::Local { .. } => Ok(false),
        Target::Module { path } => {
            Ok(Module::load(&ModuleSource::Path(path.clone()))?.is_cloudhsm())
        }
    }
}
