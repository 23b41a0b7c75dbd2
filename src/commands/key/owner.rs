//! On AWS CloudHSM only a key's owner, the crypto user that generated it, may wrap it: a user the
//! key is shared with may use it but not wrap or export it (AWS docs `cloudhsm_cli-key-share`,
//! `manage-keys-cloudhsm-cli-share`). Backups, replication and hot-wallet exports wrap the key,
//! so before them the owner is checked through cloudhsm-cli, and a user who is not the owner gets
//! `not_key_owner`, naming the owner, instead of the HSM's unexplained refusal.

use cloudhsm_cli::{CliRole, CloudHsmError, KeyRef};
use cryptoki_ops::{Hsm, KeyClass, KeySelector};

use crate::cli::GlobalArgs;
use crate::commands::user::Users;
use crate::error::CliError;

/// The label of the private key `selector` names.
pub fn labels_of(hsm: &Hsm, selector: &KeySelector) -> Result<Vec<String>, CliError> {
    Ok(vec![hsm.find_private_key(selector)?.label])
}

/// The labels of the private keys a replication of `label` or `prefix` copies.
pub fn labels_matching(
    hsm: &Hsm,
    label: Option<&str>,
    prefix: Option<&str>,
) -> Result<Vec<String>, CliError> {
    if !hsm.module().is_cloudhsm() {
        return Ok(Vec::new());
    }
    let mut labels: Vec<String> = hsm
        .list_keys()?
        .into_iter()
        .filter(|k| k.class == KeyClass::Private)
        .map(|k| k.label)
        .filter(|l| label.is_some_and(|x| x == l) || prefix.is_some_and(|p| l.starts_with(p)))
        .collect();
    labels.dedup();
    Ok(labels)
}

/// On CloudHSM, fails with `not_key_owner` when the crypto user of --pin does not own one of the
/// keys `labels`. Elsewhere, and when cloudhsm-cli cannot answer, nothing is checked: the HSM
/// itself still refuses a wrap by a user who is not the owner.
pub fn require(
    globals: &GlobalArgs,
    hsm: &Hsm,
    labels: &[String],
    operation: &'static str,
) -> Result<(), CliError> {
    if !hsm.module().is_cloudhsm() {
        return Ok(());
    }
    let Ok(cli) = Users::new(globals).cli(CliRole::CryptoUser) else {
        return Ok(());
    };
    for label in labels {
        if let Err(e @ (CloudHsmError::NotKeyOwner { .. } | CloudHsmError::KmsUserRefused { .. })) =
            cli.require_owner(&KeyRef::Label(label.clone()), operation)
        {
            return Err(e.into());
        }
    }
    Ok(())
}
