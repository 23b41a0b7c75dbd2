//! [`OperationKind`]: what one content of a generic operation is, with its stable name.

use core::fmt;
use core::str::FromStr;

use super::OperationError;

/// The kind of one content of a generic (`0x03`) operation.
///
/// Names are Octez's (`operation_repr.ml`, the `name` of each encoding case), which are also
/// Signatory's policy names (`signatory.yaml`, `allow: generic:`); the four staking
/// pseudo-operations are transactions of an account to itself with the entrypoint of that name
/// (`stake`, `unstake`, `finalize_unstake`, `set_delegate_parameters`), named as Signatory and
/// Octez's client name them.
///
/// ```
/// use tezos_keys::operation::OperationKind;
/// assert_eq!(OperationKind::DrainDelegate.name(), "drain_delegate");
/// assert_eq!(OperationKind::from_name("stake"), Some(OperationKind::Stake));
/// assert!(OperationKind::UpdateConsensusKey.is_dangerous());
/// assert!("endorsement".parse::<OperationKind>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum OperationKind {
    /// Manager operation, tag 107: reveal a public key.
    Reveal,
    /// Manager operation, tag 108: a transfer or a contract call.
    Transaction,
    /// A transaction to oneself with entrypoint `stake`.
    Stake,
    /// A transaction to oneself with entrypoint `unstake`.
    Unstake,
    /// A transaction to oneself with entrypoint `finalize_unstake`.
    FinalizeUnstake,
    /// A transaction to oneself with entrypoint `set_delegate_parameters`.
    SetDelegateParameters,
    /// Manager operation, tag 109: originate a contract.
    Origination,
    /// Manager operation, tag 110: set or withdraw the delegate.
    Delegation,
    /// Manager operation, tag 111.
    RegisterGlobalConstant,
    /// Manager operation, tag 112.
    SetDepositsLimit,
    /// Manager operation, tag 113.
    IncreasePaidStorage,
    /// Manager operation, tag 114: a new consensus key for a baker.
    UpdateConsensusKey,
    /// Manager operation, tag 115: a new companion (tz4) key for a baker.
    UpdateCompanionKey,
    /// Manager operation, tag 158.
    TransferTicket,
    /// Manager operation, tag 230.
    DalPublishCommitment,
    /// Manager operation, tag 200.
    SmartRollupOriginate,
    /// Manager operation, tag 201.
    SmartRollupAddMessages,
    /// Manager operation, tag 202.
    SmartRollupCement,
    /// Manager operation, tag 203.
    SmartRollupPublish,
    /// Manager operation, tag 204 (recognised, not decoded: refused).
    SmartRollupRefute,
    /// Manager operation, tag 205.
    SmartRollupTimeout,
    /// Manager operation, tag 206.
    SmartRollupExecuteOutboxMessage,
    /// Manager operation, tag 207.
    SmartRollupRecoverBond,
    /// Manager operation, tag 250 (recognised, not decoded: refused).
    ZkRollupOrigination,
    /// Manager operation, tag 251 (recognised, not decoded: refused).
    ZkRollupPublish,
    /// Manager operation, tag 252 (recognised, not decoded: refused).
    ZkRollupUpdate,
    /// Tag 9: signed by a consensus key, moves the baker's spendable balance.
    DrainDelegate,
    /// Tag 6: a vote.
    Ballot,
    /// Tag 5: protocol proposals.
    Proposals,
    /// Tag 4: activation of a fundraiser account.
    ActivateAccount,
    /// Tag 1.
    SeedNonceRevelation,
    /// Tag 8 (recognised, not decoded: refused).
    VdfRevelation,
    /// Tag 3.
    DoubleBakingEvidence,
    /// Tag 2.
    DoubleConsensusOperationEvidence,
    /// Tag 24 (recognised, not decoded: refused).
    DalEntrapmentEvidence,
    /// Tag 17: never valid on chain; used to sign off-chain messages.
    FailingNoop,
    /// Tag 20 (a consensus operation; its own watermark is `0x12`).
    Preattestation,
    /// Tag 21 (a consensus operation; its own watermark is `0x13`).
    Attestation,
    /// Tag 23 (recognised, not decoded: refused).
    AttestationWithDal,
    /// Tag 30.
    PreattestationsAggregate,
    /// Tag 31.
    AttestationsAggregate,
}

impl OperationKind {
    /// Every kind.
    pub const ALL: [Self; 41] = [
        Self::Reveal,
        Self::Transaction,
        Self::Stake,
        Self::Unstake,
        Self::FinalizeUnstake,
        Self::SetDelegateParameters,
        Self::Origination,
        Self::Delegation,
        Self::RegisterGlobalConstant,
        Self::SetDepositsLimit,
        Self::IncreasePaidStorage,
        Self::UpdateConsensusKey,
        Self::UpdateCompanionKey,
        Self::TransferTicket,
        Self::DalPublishCommitment,
        Self::SmartRollupOriginate,
        Self::SmartRollupAddMessages,
        Self::SmartRollupCement,
        Self::SmartRollupPublish,
        Self::SmartRollupRefute,
        Self::SmartRollupTimeout,
        Self::SmartRollupExecuteOutboxMessage,
        Self::SmartRollupRecoverBond,
        Self::ZkRollupOrigination,
        Self::ZkRollupPublish,
        Self::ZkRollupUpdate,
        Self::DrainDelegate,
        Self::Ballot,
        Self::Proposals,
        Self::ActivateAccount,
        Self::SeedNonceRevelation,
        Self::VdfRevelation,
        Self::DoubleBakingEvidence,
        Self::DoubleConsensusOperationEvidence,
        Self::DalEntrapmentEvidence,
        Self::FailingNoop,
        Self::Preattestation,
        Self::Attestation,
        Self::AttestationWithDal,
        Self::PreattestationsAggregate,
        Self::AttestationsAggregate,
    ];

    /// The stable name (Octez's and Signatory's), for policies, logs and errors.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reveal => "reveal",
            Self::Transaction => "transaction",
            Self::Stake => "stake",
            Self::Unstake => "unstake",
            Self::FinalizeUnstake => "finalize_unstake",
            Self::SetDelegateParameters => "set_delegate_parameters",
            Self::Origination => "origination",
            Self::Delegation => "delegation",
            Self::RegisterGlobalConstant => "register_global_constant",
            Self::SetDepositsLimit => "set_deposits_limit",
            Self::IncreasePaidStorage => "increase_paid_storage",
            Self::UpdateConsensusKey => "update_consensus_key",
            Self::UpdateCompanionKey => "update_companion_key",
            Self::TransferTicket => "transfer_ticket",
            Self::DalPublishCommitment => "dal_publish_commitment",
            Self::SmartRollupOriginate => "smart_rollup_originate",
            Self::SmartRollupAddMessages => "smart_rollup_add_messages",
            Self::SmartRollupCement => "smart_rollup_cement",
            Self::SmartRollupPublish => "smart_rollup_publish",
            Self::SmartRollupRefute => "smart_rollup_refute",
            Self::SmartRollupTimeout => "smart_rollup_timeout",
            Self::SmartRollupExecuteOutboxMessage => "smart_rollup_execute_outbox_message",
            Self::SmartRollupRecoverBond => "smart_rollup_recover_bond",
            Self::ZkRollupOrigination => "zk_rollup_origination",
            Self::ZkRollupPublish => "zk_rollup_publish",
            Self::ZkRollupUpdate => "zk_rollup_update",
            Self::DrainDelegate => "drain_delegate",
            Self::Ballot => "ballot",
            Self::Proposals => "proposals",
            Self::ActivateAccount => "activate_account",
            Self::SeedNonceRevelation => "seed_nonce_revelation",
            Self::VdfRevelation => "vdf_revelation",
            Self::DoubleBakingEvidence => "double_baking_evidence",
            Self::DoubleConsensusOperationEvidence => "double_consensus_operation_evidence",
            Self::DalEntrapmentEvidence => "dal_entrapment_evidence",
            Self::FailingNoop => "failing_noop",
            Self::Preattestation => "preattestation",
            Self::Attestation => "attestation",
            Self::AttestationWithDal => "attestation_with_dal",
            Self::PreattestationsAggregate => "preattestations_aggregate",
            Self::AttestationsAggregate => "attestations_aggregate",
        }
    }

    /// The kind with this [`OperationKind::name`] (exact, lower case); `None` otherwise.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind a content tag announces (Octez `operation_repr.ml`, `Encoding`), before the
    /// transaction entrypoint refines [`OperationKind::Transaction`]; `None` for a tag no
    /// current protocol uses.
    pub const fn of_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => Self::SeedNonceRevelation,
            2 => Self::DoubleConsensusOperationEvidence,
            3 => Self::DoubleBakingEvidence,
            4 => Self::ActivateAccount,
            5 => Self::Proposals,
            6 => Self::Ballot,
            8 => Self::VdfRevelation,
            9 => Self::DrainDelegate,
            17 => Self::FailingNoop,
            20 => Self::Preattestation,
            21 => Self::Attestation,
            23 => Self::AttestationWithDal,
            24 => Self::DalEntrapmentEvidence,
            30 => Self::PreattestationsAggregate,
            31 => Self::AttestationsAggregate,
            107 => Self::Reveal,
            108 => Self::Transaction,
            109 => Self::Origination,
            110 => Self::Delegation,
            111 => Self::RegisterGlobalConstant,
            112 => Self::SetDepositsLimit,
            113 => Self::IncreasePaidStorage,
            114 => Self::UpdateConsensusKey,
            115 => Self::UpdateCompanionKey,
            158 => Self::TransferTicket,
            200 => Self::SmartRollupOriginate,
            201 => Self::SmartRollupAddMessages,
            202 => Self::SmartRollupCement,
            203 => Self::SmartRollupPublish,
            204 => Self::SmartRollupRefute,
            205 => Self::SmartRollupTimeout,
            206 => Self::SmartRollupExecuteOutboxMessage,
            207 => Self::SmartRollupRecoverBond,
            230 => Self::DalPublishCommitment,
            250 => Self::ZkRollupOrigination,
            251 => Self::ZkRollupPublish,
            252 => Self::ZkRollupUpdate,
            _ => return None,
        })
    }

    /// Whether this is a manager operation (it has a source, fee and counter, and may be
    /// batched with other manager operations).
    pub const fn is_manager(self) -> bool {
        matches!(
            self,
            Self::Reveal
                | Self::Transaction
                | Self::Stake
                | Self::Unstake
                | Self::FinalizeUnstake
                | Self::SetDelegateParameters
                | Self::Origination
                | Self::Delegation
                | Self::RegisterGlobalConstant
                | Self::SetDepositsLimit
                | Self::IncreasePaidStorage
                | Self::UpdateConsensusKey
                | Self::UpdateCompanionKey
                | Self::TransferTicket
                | Self::DalPublishCommitment
                | Self::SmartRollupOriginate
                | Self::SmartRollupAddMessages
                | Self::SmartRollupCement
                | Self::SmartRollupPublish
                | Self::SmartRollupRefute
                | Self::SmartRollupTimeout
                | Self::SmartRollupExecuteOutboxMessage
                | Self::SmartRollupRecoverBond
                | Self::ZkRollupOrigination
                | Self::ZkRollupPublish
                | Self::ZkRollupUpdate
        )
    }

    /// The kinds a signer refuses unless a policy lists them by name, even when no allow-list
    /// is configured: `drain_delegate` (a consensus key moves the baker's whole spendable
    /// balance) and `update_consensus_key` (hands consensus, hence `drain_delegate`, to another
    /// key) — Octez `docs/user/key-management.rst`, remote-signer reference §3 "Key roles".
    pub const fn is_dangerous(self) -> bool {
        matches!(self, Self::DrainDelegate | Self::UpdateConsensusKey)
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OperationKind {
    type Err = OperationError;

    /// [`OperationKind::from_name`], after trimming; [`OperationError::UnknownKindName`]
    /// otherwise.
    fn from_str(s: &str) -> Result<Self, OperationError> {
        let t = s.trim();
        Self::from_name(t).ok_or_else(|| OperationError::UnknownKindName {
            name: t.chars().take(48).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut names: Vec<_> = OperationKind::ALL.iter().map(|k| k.name()).collect();
        for k in OperationKind::ALL {
            assert_eq!(OperationKind::from_name(k.name()), Some(k));
            assert_eq!(k.to_string().parse::<OperationKind>().ok(), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OperationKind::ALL.len());
    }

    #[test]
    fn tags_name_the_octez_kinds() {
        // Octez operation_repr.ml: make_manager_case 107..115, transfer_ticket_tag = 158,
        // sc_rollup_operation_tag_offset = 200, dal_offset = 230, zk_rollup offset = 250.
        assert_eq!(OperationKind::of_tag(107), Some(OperationKind::Reveal));
        assert_eq!(
            OperationKind::of_tag(114),
            Some(OperationKind::UpdateConsensusKey)
        );
        assert_eq!(OperationKind::of_tag(9), Some(OperationKind::DrainDelegate));
        assert_eq!(OperationKind::of_tag(7), None); // was double_preattestation_evidence
        assert_eq!(OperationKind::of_tag(0xff), None); // signature prefix, never in a request
        for tag in 0..=255u8 {
            if let Some(k) = OperationKind::of_tag(tag) {
                assert_eq!(k.is_manager(), tag >= 100, "{k}");
            }
        }
    }

    #[test]
    fn only_drain_and_consensus_key_are_dangerous() {
        let dangerous: Vec<_> = OperationKind::ALL
            .into_iter()
            .filter(|k| k.is_dangerous())
            .collect();
        assert_eq!(
            dangerous,
            [
                OperationKind::UpdateConsensusKey,
                OperationKind::DrainDelegate
            ]
        );
    }
}
