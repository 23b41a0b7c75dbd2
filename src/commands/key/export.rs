//! `key export-hot-wallet`: DANGEROUS, opt-in export of a backup-able key as a software secret
//! key, for a hot wallet.

use std::fmt;
use std::path::Path;

use cryptoki_ops::secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use cryptoki_ops::Hsm;
use serde::Serialize;
use tezos_keys::runbook::{export_hot_wallet, write_private_file, HotWalletConsent};

use crate::cli::ExportArgs;
use crate::commands::Output;
use crate::error::CliError;
use crate::text::Escaped;

/// `key export-hot-wallet`: `{"file","label","address"}` (the secret key is in the file only).
#[derive(Serialize)]
pub struct Exported {
    file: String,
    label: String,
    address: String,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote the secret key of {} to {}",
            self.address,
            Escaped(&self.file)
        )
    }
}

impl Output for Exported {}

/// `key export-hot-wallet LABEL --wrap-key W --wrap-key-value-file F --out FILE --i-understand...`.
pub fn run(hsm: &Hsm, args: ExportArgs) -> Result<Exported, CliError> {
    if !args.consent {
        return Err(CliError::new(
            "consent_required",
            "export-hot-wallet takes the key out of the HSM for good: anyone who ever reads the exported secret key can sign with it, and nothing can call it back. If that is what you want, pass --i-understand-this-defeats-the-hsm",
        ));
    }
    let value = read_key_value(&args.wrap_key_value_file)?;
    let secret = export_hot_wallet(
        hsm,
        &args.label,
        &args.wrap_key,
        &value,
        HotWalletConsent::IUnderstandThisDefeatsTheHsm,
    )?;
    let address = secret.public_key().hash().to_string();
    // Sized for the newline up front: growing the string would leave a copy of the secret key
    // in freed memory, out of reach of the zeroizing.
    let encoded = secret.to_base58();
    let mut text =
        zeroize::Zeroizing::new(String::with_capacity(encoded.expose_secret().len() + 1));
    text.push_str(encoded.expose_secret());
    text.push('\n');
    write_private_file(&args.out, text.as_bytes())?;
    crate::print::stderr_line(&format!(
        "warning: the secret key of {address} is now in {}; it is no longer protected by the HSM",
        args.out.display()
    ));
    Ok(Exported {
        file: args.out.display().to_string(),
        label: hsm.find_private_key(&args.label)?.label,
        address,
    })
}

/// Reads an AES-256 key value written as 64 hex characters in a file.
pub fn read_key_value(path: &Path) -> Result<SecretBox<[u8; 32]>, CliError> {
    // A regular file of at most 4 KiB, opened without blocking (a FIFO fails at once).
    let bytes = zeroize::Zeroizing::new(
        tezos_keys::durable::read_regular(path, 4096)
            .map_err(|e| CliError::new(e.kind(), e.to_string()))?
            .ok_or_else(|| {
                CliError::new(
                    "io",
                    format!("cannot read {}: no such file", path.display()),
                )
            })?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        CliError::new(
            "invalid_input",
            format!("{} must hold 64 hex characters", path.display()),
        )
    })?;
    let mut value = SecretBox::new(Box::new([0u8; 32]));
    hex::decode_to_slice(text.trim(), value.expose_secret_mut()).map_err(|_| {
        CliError::new(
            "invalid_input",
            format!(
                "{} must hold exactly 64 hex characters (an AES-256 key)",
                path.display()
            ),
        )
    })?;
    Ok(value)
}
