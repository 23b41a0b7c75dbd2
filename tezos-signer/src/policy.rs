//! What a served key may sign: [`KeyRules`], checked before the HSM is called.

use std::collections::BTreeSet;

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
    pub generic_operations: Option<BTreeSet<String>>,
    /// Whether every signing request must carry a valid `authentication` signature by a key on
    /// the authorized list.
    pub require_authentication: bool,
}
