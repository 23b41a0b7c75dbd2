//! What a served key may sign: [`KeyRules`], checked by [`KeyRules::check`] before the HSM (and
//! before the high-watermark guard) is called.
//!
//! The checks, in order, each refusing with its own [`PolicyError`]:
//!
//! 1. **Classify** the request by its watermark byte ([`payload::classify`]); bytes that are
//!    not a signing request are [`PolicyError::Payload`].
//! 2. **Kind**: the watermark must be one of the key's [`KeyRules::kinds`] (like
//!    `octez-signer --magic-bytes`).
//! 3. **Chain**: a request carrying a chain id (blocks, preattestations, attestations and
//!    their legacy forms) must name one of [`KeyRules::chains`], when set (Signatory's
//!    `allowed_chains`).
//! 4. **Generic operations** (`0x03`): every content of the batch is decoded
//!    ([`tezos_keys::operation::decode`]) and must be allowed: by the allow-list
//!    [`KeyRules::generic_operations`] when set; without one, every kind but the dangerous ones.
//!    `drain_delegate` and `update_consensus_key` are refused unless the allow-list names
//!    them: a consensus key can drain the baker's spendable balance with `drain_delegate`, and
//!    `update_consensus_key` hands that power to another key (Octez
//!    `docs/user/key-management.rst`; remote-signer reference §3, "Key roles"). A request that
//!    cannot be decoded is refused ([`PolicyError::Operation`]) even without an allow-list,
//!    since it could hide one of those two.
//!
//! Michelson data (`0x05`) is checked by kind only.
//!
//! ```
//! use tezos_keys::operation::OperationKind;
//! use tezos_keys::KeyPolicy;
//! use tezos_signer::policy::KeyRules;
//! let mut rules = KeyRules::new(KeyPolicy::custody());
//! // A drain_delegate forged by Taquito: refused until listed.
//! let drain = hex::decode(concat!(
//!     "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b09",
//!     "012ffebbf1560632ca767bc960ccdb84669d284c2c", // consensus key
//!     "00aa28d5f811c6ab1cab6d03864481d0c0cdf7be23", // delegate
//!     "0203ba8658b6e5c7f5bc18df8b192f8733d511c6b5", // destination
//! ))?;
//! assert_eq!(rules.check(&drain).unwrap_err().kind(), "policy_operation_not_listed");
//! rules.generic_operations = Some([OperationKind::DrainDelegate].into());
//! assert!(rules.check(&drain).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;

use tezos_keys::operation::{self, OperationError, OperationKind};
use tezos_keys::payload::{self, Watermark};
use tezos_keys::{ChainId, KeyPolicy};

/// The rules for one served key.
#[derive(Clone, Debug)]
pub struct KeyRules {
    /// The request kinds (watermarks) the key may sign.
    pub kinds: KeyPolicy,
    /// The chains the key may sign for; `None` allows every chain.
    pub chains: Option<BTreeSet<ChainId>>,
    /// For `generic` requests, the operation kinds every content of a batch must be one of;
    /// `None` allows any decodable generic operation except the dangerous kinds
    /// (`drain_delegate`, `update_consensus_key`), which must be listed to be allowed.
    pub generic_operations: Option<BTreeSet<OperationKind>>,
    /// Whether every signing request must carry a valid `authentication` signature by a key on
    /// the authorized list.
    pub require_authentication: bool,
}

impl KeyRules {
    /// Rules allowing the watermarks of `kinds`, on every chain, any generic operation but the
    /// dangerous ones, without authentication.
    pub fn new(kinds: KeyPolicy) -> Self {
        Self {
            kinds,
            chains: None,
            generic_operations: None,
            require_authentication: false,
        }
    }

    /// Whether a generic operation of `kind` may be signed under these rules.
    pub fn allows_operation(&self, kind: OperationKind) -> bool {
        match &self.generic_operations {
            Some(listed) => listed.contains(&kind),
            None => !kind.is_dangerous(),
        }
    }

    /// Checks a signing request (watermark byte included) against the rules, before the HSM
    /// and the high-watermark guard see it (see the module documentation for the order).
    ///
    /// # Errors
    /// [`PolicyError::Payload`] or [`PolicyError::Operation`] for bytes that cannot be
    /// decoded; [`PolicyError::KindNotAllowed`], [`PolicyError::ChainNotAllowed`],
    /// [`PolicyError::OperationNotAllowed`] and [`PolicyError::OperationNotListed`] for a
    /// refusal.
    pub fn check(&self, request: &[u8]) -> Result<(), PolicyError> {
        let info = payload::classify(request).map_err(PolicyError::Payload)?;
        if !self.kinds.allows(info.watermark) {
            return Err(PolicyError::KindNotAllowed {
                watermark: info.watermark,
                allowed: self.kinds.allowed.clone(),
            });
        }
        if let (Some(chains), Some(chain)) = (&self.chains, info.chain_id) {
            if !chains.contains(&chain) {
                return Err(PolicyError::ChainNotAllowed {
                    watermark: info.watermark,
                    chain,
                    allowed: chains.iter().copied().collect(),
                });
            }
        }
        if info.watermark == Watermark::Generic {
            let decoded = operation::decode(request).map_err(PolicyError::Operation)?;
            for (index, &kind) in decoded.kinds.iter().enumerate() {
                if self.allows_operation(kind) {
                    continue;
                }
                return Err(match &self.generic_operations {
                    None => PolicyError::OperationNotListed { kind, index },
                    Some(listed) => PolicyError::OperationNotAllowed {
                        kind,
                        index,
                        allowed: listed.iter().copied().collect(),
                    },
                });
            }
        }
        Ok(())
    }
}

/// Why [`KeyRules::check`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The bytes are not a signing request this signer understands (empty, unknown watermark,
    /// truncated).
    #[error("cannot read the signing request: {0}")]
    Payload(tezos_keys::Error),

    /// A generic operation that cannot be decoded to the kind of every content: refused,
    /// since its contents cannot be checked.
    #[error("{0}")]
    Operation(OperationError),

    /// The key may not sign this kind of request.
    #[error(
        "this key may not sign {watermark} (0x{byte:02x}) requests; it may sign: {list}",
        byte = watermark.byte(),
        list = list(allowed.iter().map(|w| format!("{w} (0x{:02x})", w.byte())))
    )]
    KindNotAllowed {
        /// The request's kind.
        watermark: Watermark,
        /// The kinds the key may sign.
        allowed: Vec<Watermark>,
    },

    /// The request is for a chain the key may not sign for.
    #[error(
        "this key may not sign for chain {chain} ({watermark} request); its chains: {list}",
        list = list(allowed.iter().map(ToString::to_string))
    )]
    ChainNotAllowed {
        /// The request's kind.
        watermark: Watermark,
        /// The request's chain.
        chain: ChainId,
        /// The chains the key may sign for.
        allowed: Vec<ChainId>,
    },

    /// A content of the operation is not on the key's allow-list.
    #[error(
        "content {index} of the operation is {kind}, which this key may not sign; its \
         operation allow-list: {list}",
        list = list(allowed.iter().map(ToString::to_string))
    )]
    OperationNotAllowed {
        /// The content's kind.
        kind: OperationKind,
        /// Its position in the batch, from 0.
        index: usize,
        /// The allow-list.
        allowed: Vec<OperationKind>,
    },

    /// A `drain_delegate` or `update_consensus_key` the key's rules do not name.
    #[error(
        "content {index} of the operation is {kind}, refused unless the key's generic \
         operation allow-list names it: a consensus key can drain the baker's spendable \
         balance (drain_delegate), and update_consensus_key hands that power to another key"
    )]
    OperationNotListed {
        /// The content's kind.
        kind: OperationKind,
        /// Its position in the batch, from 0.
        index: usize,
    },
}

impl PolicyError {
    /// A stable snake_case identifier: `policy_kind_not_allowed`, `policy_chain_not_allowed`,
    /// `policy_operation_not_allowed`, `policy_operation_not_listed`; for bytes that cannot be
    /// decoded, the inner error's kind (`invalid_input` from [`tezos_keys::Error::kind`], or
    /// `operation_*` from [`OperationError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Payload(e) => e.kind(),
            Self::Operation(e) => e.kind(),
            Self::KindNotAllowed { .. } => "policy_kind_not_allowed",
            Self::ChainNotAllowed { .. } => "policy_chain_not_allowed",
            Self::OperationNotAllowed { .. } => "policy_operation_not_allowed",
            Self::OperationNotListed { .. } => "policy_operation_not_listed",
        }
    }

    /// Whether this is a refusal by the rules (HTTP 403) rather than bytes that cannot be
    /// decoded (HTTP 400).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Payload(_) | Self::Operation(_))
    }
}

/// `a, b, c`, or `nothing`.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<_> = items.collect();
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
