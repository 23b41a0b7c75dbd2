//! The rules of one `[keys.LABEL]` table: [`key_rules`].

use std::collections::BTreeSet;

use tezos_keys::operation::OperationKind;
use tezos_keys::payload::Watermark;
use tezos_keys::{ChainId, KeyPolicy};
use toml::Spanned;

use super::raw::{RawKey, Source};
use super::{ConfigError, KINDS};
use crate::policy::KeyRules;

/// The rules of `[keys.LABEL]`.
pub(super) fn key_rules(
    source: &Source<'_>,
    label: &str,
    entry: &Spanned<RawKey>,
    have_authorized_keys: bool,
) -> Result<KeyRules, ConfigError> {
    let raw = entry.get_ref();
    let field = |name: &str| format!("keys.{}.{name}", toml_key(label));
    if label.is_empty() {
        return Err(source.invalid(&entry.span(), "keys", "a key label cannot be empty"));
    }
    let mut kinds = Vec::new();
    for kind in &raw.allow {
        let name = kind.get_ref().trim();
        let watermark = KINDS
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| {
                source.invalid(
                    &kind.span(),
                    &field("allow"),
                    format!(
                        "unknown kind {name:?}: expected one of {}",
                        KINDS.map(Watermark::name).join(", ")
                    ),
                )
            })?;
        if !kinds.contains(&watermark) {
            kinds.push(watermark);
        }
    }
    if kinds.is_empty() {
        return Err(source.invalid(
            &entry.span(),
            &field("allow"),
            "allow = [] lets the key sign nothing: list its kinds, or remove the key",
        ));
    }
    let generic_operations = match &raw.generic_operations {
        None => None,
        Some(ops) => {
            if !kinds.contains(&Watermark::Generic) {
                let span = ops.first().map_or_else(|| entry.span(), Spanned::span);
                return Err(source.invalid(
                    &span,
                    &field("generic_operations"),
                    "given, but \"generic\" is not in allow: add it to allow, or remove generic_operations",
                ));
            }
            let mut set = BTreeSet::new();
            for op in ops {
                let name = op.get_ref().trim();
                let kind = OperationKind::from_name(name).ok_or_else(|| {
                    source.invalid(
                        &op.span(),
                        &field("generic_operations"),
                        format!(
                            "unknown operation kind {:?}: expected one of {}",
                            name.chars().take(48).collect::<String>(),
                            OperationKind::ALL.map(OperationKind::name).join(", ")
                        ),
                    )
                })?;
                set.insert(kind);
            }
            Some(set)
        }
    };
    let chains = match &raw.chains {
        None => None,
        Some(list) => {
            if list.is_empty() {
                return Err(source.invalid(
                    &entry.span(),
                    &field("chains"),
                    "chains = [] allows no chain: list chain ids (e.g. \"NetXdQprcVkpaWU\" for mainnet), or remove the field to allow every chain",
                ));
            }
            let mut set = BTreeSet::new();
            for chain in list {
                let id = chain.get_ref().trim().parse::<ChainId>().map_err(|e| {
                    source.invalid(
                        &chain.span(),
                        &field("chains"),
                        format!("{e}: expected a chain id such as \"NetXdQprcVkpaWU\" (mainnet; `octez-client rpc get /chains/main/chain_id`)"),
                    )
                })?;
                set.insert(id);
            }
            Some(set)
        }
    };
    if raw.require_authentication && !have_authorized_keys {
        return Err(source.invalid(
            &entry.span(),
            &field("require_authentication"),
            "true, but authorized_keys is empty: add the public keys of the clients (octez-client's authentication key) to authorized_keys",
        ));
    }
    Ok(KeyRules {
        kinds: KeyPolicy::new(kinds),
        chains,
        generic_operations,
        require_authentication: raw.require_authentication,
    })
}

/// A label as it appears in a TOML path: bare when it can be, quoted otherwise.
pub(super) fn toml_key(label: &str) -> String {
    if !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        label.to_owned()
    } else {
        format!("{label:?}")
    }
}
