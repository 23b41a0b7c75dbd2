//! The CloudHSM procedure for a trusted wrapping key: a crypto user creates it, an admin marks it
//! trusted through the CLI, the owner shares it.
//!
//! A trusted wrapping key is the only key that can wrap (back up, replicate, export) keys marked
//! `CKA_WRAP_WITH_TRUSTED`. On AWS CloudHSM its `CKA_TRUSTED` cannot be set through PKCS#11:
//!
//! * the PKCS#11 library logs in crypto users only, never a security officer (AWS docs
//!   `pkcs11-pin`);
//! * "Only an admin or CO can set CKA_TRUSTED. The crypto user (CU) owns the key, but only a CO
//!   can set its CKA_TRUSTED attribute" (AWS docs `key_attribute_background`), with CloudHSM
//!   CLI's `key set-attribute --name trusted --value true` (AWS docs `modify-attr`,
//!   `cloudhsm_cli-key-set-attribute`);
//! * then the owner shares it with the crypto users that must use it (AWS docs
//!   `cloudhsm_cli-key-share`; the archived guide's `cloudhsm_using_trusted_keys_control_key_wrap`
//!   gives the whole procedure).
//!
//! [`create_trusted_wrapping_key`] runs those steps. On SoftHSM2 and other modules a trusted key is
//! made by a PKCS#11 security-officer login instead ([`cryptoki_ops::WrappingKeySpec::trusted`]).

use cryptoki_ops::secrecy::SecretBox;
use cryptoki_ops::{Hsm, KeyInfo, KeySelector, WrappingKeySpec};

use crate::error::CloudHsmError;
use crate::types::{CliRole, KeyRef};
use crate::{CloudHsmCli, Result};

/// A wrapping key made trusted by the CloudHSM procedure.
#[derive(Debug, Clone)]
pub struct TrustedWrappingKey {
    /// The key as PKCS#11 reads it after the procedure (`trusted` is `Some(true)`).
    pub info: KeyInfo,
    /// Its CloudHSM key reference (`0x...`), as `key list` shows it.
    pub reference: String,
    /// The crypto users it was shared with.
    pub shared_with: Vec<String>,
}

/// Creates the AES-256 wrapping key `spec` on `hsm` (logged in as a crypto user, who becomes its
/// owner) — generated, or imported from `value` (a key ceremony) — then has the admin of `admin`
/// mark it trusted and the owner (`owner`, the same crypto user's CLI credentials) share it with
/// each of `share_with`.
///
/// `spec.trusted` is ignored: the key is created untrusted and made trusted by the admin. If a
/// CLI step fails, the key is deleted again (nothing half-made stays under the label) and the
/// error says which step failed.
///
/// ```no_run
/// use cloudhsm_cli::{create_trusted_wrapping_key, CliRole, CloudHsmCli};
/// use cryptoki_ops::{Hsm, HsmConfig, WrappingKeySpec};
///
/// let hsm = Hsm::open(&HsmConfig::from_env()?)?; // the key-management crypto user
/// let owner = CloudHsmCli::for_module(hsm.module(), "env:OWNER_PIN".parse()?, CliRole::CryptoUser)?;
/// let admin = CloudHsmCli::for_module(hsm.module(), "env:ADMIN_PIN".parse()?, CliRole::Admin)?;
/// let key = create_trusted_wrapping_key(&hsm, &WrappingKeySpec::new("backup-wrap"), None, &owner, &admin, &[])?;
/// println!("{} is trusted ({})", key.info.label, key.reference);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_trusted_wrapping_key(
    hsm: &Hsm,
    spec: &WrappingKeySpec,
    value: Option<&SecretBox<[u8; 32]>>,
    owner: &CloudHsmCli,
    admin: &CloudHsmCli,
    share_with: &[String],
) -> Result<TrustedWrappingKey> {
    // Roles first: nothing is created when a step could not run.
    for (cli, needed, operation) in [
        (
            owner,
            CliRole::CryptoUser,
            "finding and sharing the new wrapping key",
        ),
        (admin, CliRole::Admin, "marking a key trusted"),
    ] {
        if cli.role() != needed {
            return Err(CloudHsmError::WrongRole {
                operation,
                needed,
                current: cli.role(),
            });
        }
    }
    let mut untrusted = spec.clone();
    untrusted.trusted = false;
    let created = match value {
        Some(value) => hsm.import_wrapping_key(&untrusted, value),
        None => hsm.generate_wrapping_key(&untrusted),
    }
    .map_err(CloudHsmError::Hsm)?;
    match mark_and_share(hsm, &created, owner, admin, share_with) {
        Ok(key) => Ok(key),
        Err(e) => {
            // Undo: the label must be free for the next attempt. A failed delete changes
            // nothing for the caller, who gets the first error.
            let _ = hsm.delete_key(&KeySelector::Id(created.id.clone()));
            Err(e)
        }
    }
}

fn mark_and_share(
    hsm: &Hsm,
    created: &KeyInfo,
    owner: &CloudHsmCli,
    admin: &CloudHsmCli,
    share_with: &[String],
) -> Result<TrustedWrappingKey> {
    // The admin does not own the key and selects it by reference, which the owner looks up.
    let listing = owner.key_listing(&KeyRef::SecretKey(created.label.clone()))?;
    let reference = KeyRef::Reference(listing.reference.clone());
    admin.set_trusted(&reference, true)?;
    for user in share_with {
        owner.share_key(&reference, user)?;
    }
    let info = hsm
        .find_wrapping_key(&KeySelector::Id(created.id.clone()))
        .map_err(CloudHsmError::Hsm)?;
    if info.trusted != Some(true) {
        return Err(CloudHsmError::CliFailed {
            command: format!("key set-attribute --filter key-reference={}", listing.reference),
            message: format!(
                "it reported success, but PKCS#11 still reads CKA_TRUSTED={:?} on wrapping key '{}'",
                info.trusted, info.label
            ),
        });
    }
    Ok(TrustedWrappingKey {
        info,
        reference: listing.reference,
        shared_with: share_with.to_vec(),
    })
}
