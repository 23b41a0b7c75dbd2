//! One content of a generic operation, read to its last byte so the next one can be found.
//!
//! Layouts: Octez `src/proto_alpha/lib_protocol/operation_repr.ml`@d26a8bef (module
//! `Encoding`: `Manager_operations.*_case`, `make_manager_case`, the non-manager `*_case`s),
//! with the field encodings of `contract_repr.ml`, `entrypoint_repr.ml` (`smart_encoding`),
//! `script_repr.ml`, `tez_repr.ml`, `manager_counter_repr.ml`, `sc_rollups.ml`,
//! `sc_rollup_commitment_repr.ml`, `sc_rollup_game_repr.ml`, `dal_operations_repr.ml` (same
//! commit) and `src/lib_crypto/signature_v3.ml`. The same tags and layouts are in protocols 024
//! (Tallinn) and 025 (Ushuaia).

use super::reader::{Reader, ZARITH_CHECKED};
use super::{OperationError, OperationKind};

/// Reads one content at the reader's position; returns its kind.
///
/// # Errors
/// [`OperationError::UnknownTag`], [`OperationError::NotDecoded`], and the reader's
/// [`OperationError::Truncated`] / [`OperationError::InvalidField`].
pub(super) fn read(r: &mut Reader<'_>) -> Result<OperationKind, OperationError> {
    let offset = r.offset();
    let tag = r.u8("tag")?;
    let kind = OperationKind::of_tag(tag).ok_or(OperationError::UnknownTag { tag, offset })?;
    r.set_kind(kind);
    let not_decoded = || OperationError::NotDecoded { kind, tag, offset };
    if kind.is_manager() {
        return manager(r, kind).map_err(|e| match e {
            ManagerError::NotDecoded => not_decoded(),
            ManagerError::Decode(e) => e,
        });
    }
    use OperationKind as K;
    match kind {
        K::SeedNonceRevelation => {
            r.take(4, "level")?;
            r.take(32, "nonce")?;
        }
        K::DoubleConsensusOperationEvidence => {
            r.take(2, "slot")?;
            r.dynamic("op1")?;
            r.dynamic("op2")?;
        }
        K::DoubleBakingEvidence => {
            r.dynamic("bh1")?;
            r.dynamic("bh2")?;
        }
        K::ActivateAccount => {
            r.take(20, "pkh")?;
            r.take(20, "secret")?;
        }
        K::Proposals => {
            r.pkh("source")?;
            r.take(4, "period")?;
            let at = r.offset();
            let list = r.dynamic("proposals")?;
            // list ~max_length:max_proposals_per_delegate (20) of 32-byte protocol hashes.
            if list.len() % 32 != 0 || list.len() > 20 * 32 {
                return Err(r.invalid(
                    "proposals",
                    at,
                    format!(
                        "{} bytes is not a list of at most 20 protocol hashes",
                        list.len()
                    ),
                ));
            }
        }
        K::Ballot => {
            r.pkh("source")?;
            r.take(4, "period")?;
            r.take(32, "proposal")?;
            let at = r.offset();
            let ballot = r.u8("ballot")?;
            if ballot > 2 {
                // Vote_repr.ballot_encoding: 0 yay, 1 nay, 2 pass.
                return Err(r.invalid(
                    "ballot",
                    at,
                    format!("{ballot} is not yay (0), nay (1) or pass (2)"),
                ));
            }
        }
        K::DrainDelegate => {
            r.pkh("consensus_key")?;
            r.pkh("delegate")?;
            r.pkh("destination")?;
        }
        K::FailingNoop => {
            r.dynamic("arbitrary")?;
        }
        K::Preattestation | K::Attestation => {
            // consensus_content_encoding: slot uint16, level int32, round int32, payload hash.
            r.take(2 + 4 + 4 + 32, "consensus_content")?;
        }
        K::PreattestationsAggregate | K::AttestationsAggregate => {
            // consensus_aggregate_content_encoding (level, round, payload hash), then the
            // committee as a list with a 4-byte size.
            r.take(4 + 4 + 32, "consensus_content")?;
            r.dynamic("committee")?;
        }
        // Recognised, but their layouts are not decoded here (Shard_with_proof, the DAL
        // attestation bitset of protocol 025, the VDF class-group sizes): refused rather than
        // guessed.
        _ => return Err(not_decoded()),
    }
    Ok(kind)
}

enum ManagerError {
    NotDecoded,
    Decode(OperationError),
}

impl From<OperationError> for ManagerError {
    fn from(e: OperationError) -> Self {
        Self::Decode(e)
    }
}

/// A manager operation after its tag: `manager_encoding` (source, fee, counter, gas limit,
/// storage limit), then the operation's own fields.
fn manager(r: &mut Reader<'_>, kind: OperationKind) -> Result<OperationKind, ManagerError> {
    let source = r.pkh("source")?;
    r.zarith("fee", ZARITH_CHECKED)?;
    r.zarith("counter", ZARITH_CHECKED)?;
    r.zarith("gas_limit", ZARITH_CHECKED)?;
    r.zarith("storage_limit", ZARITH_CHECKED)?;
    use OperationKind as K;
    match kind {
        K::Reveal | K::UpdateConsensusKey | K::UpdateCompanionKey => {
            r.public_key("public_key")?;
            bls_proof(r)?;
        }
        K::Transaction => return Ok(transaction(r, source)?),
        K::Origination => {
            r.zarith("balance", ZARITH_CHECKED)?;
            if r.option("delegate")? {
                r.pkh("delegate")?;
            }
            r.dynamic("code")?;
            r.dynamic("storage")?;
        }
        K::Delegation => {
            if r.option("delegate")? {
                r.pkh("delegate")?;
            }
        }
        K::RegisterGlobalConstant => {
            r.dynamic("value")?;
        }
        K::SetDepositsLimit => {
            if r.option("limit")? {
                r.zarith("limit", ZARITH_CHECKED)?;
            }
        }
        K::IncreasePaidStorage => {
            r.zarith("amount", usize::MAX)?;
            r.originated("destination")?;
        }
        K::TransferTicket => {
            r.dynamic("ticket_contents")?;
            r.dynamic("ticket_ty")?;
            r.contract("ticket_ticketer")?;
            r.zarith("ticket_amount", usize::MAX)?;
            r.contract("destination")?;
            r.dynamic("entrypoint")?;
        }
        K::SmartRollupOriginate => {
            let at = r.offset();
            let pvm = r.u8("pvm_kind")?;
            if pvm > 2 {
                // Sc_rollups.Kind.all = [Example_arith; Wasm_2_0_0; Riscv] (string_enum).
                return Err(r
                    .invalid("pvm_kind", at, format!("unknown PVM kind {pvm}"))
                    .into());
            }
            r.dynamic("kernel")?;
            r.dynamic("parameters_ty")?;
            if r.option("whitelist")? {
                let at = r.offset();
                let list = r.dynamic("whitelist")?;
                if list.len() % 21 != 0 {
                    return Err(r
                        .invalid(
                            "whitelist",
                            at,
                            format!("{} bytes is not a list of key hashes", list.len()),
                        )
                        .into());
                }
            }
        }
        K::SmartRollupAddMessages => {
            r.dynamic("message")?;
        }
        K::SmartRollupCement => {
            r.take(20, "rollup")?;
        }
        K::SmartRollupPublish => {
            r.take(20, "rollup")?;
            // compressed_state 32, inbox_level int32, predecessor 32, number_of_ticks int64.
            r.take(32 + 4 + 32 + 8, "commitment")?;
        }
        K::SmartRollupTimeout => {
            r.take(20, "rollup")?;
            r.pkh("alice")?;
            r.pkh("bob")?;
        }
        K::SmartRollupExecuteOutboxMessage => {
            r.take(20, "rollup")?;
            r.take(32, "cemented_commitment")?;
            r.dynamic("output_proof")?;
        }
        K::SmartRollupRecoverBond => {
            r.take(20, "rollup")?;
            r.pkh("staker")?;
        }
        K::DalPublishCommitment => {
            // slot_index uint8, commitment (G1, 48 bytes), commitment_proof (G2, 96 bytes).
            r.take(1 + 48 + 96, "slot_header")?;
        }
        // smart_rollup_refute (refutation games) and the zk rollup operations (Plonk
        // parameters): recognised, not decoded, refused.
        _ => return Err(ManagerError::NotDecoded),
    }
    Ok(kind)
}

/// `opt "proof" (dynamic_size Bls.encoding)`: a tz4 proof of possession.
fn bls_proof(r: &mut Reader<'_>) -> Result<(), OperationError> {
    if r.option("proof")? {
        r.dynamic("proof")?;
    }
    Ok(())
}

/// The entrypoints that make a transaction to oneself a staking pseudo-operation
/// (`entrypoint_repr.ml` `smart_encoding` builtin cases 6–9).
const PSEUDO: [(u8, &str, OperationKind); 4] = [
    (6, "stake", OperationKind::Stake),
    (7, "unstake", OperationKind::Unstake),
    (8, "finalize_unstake", OperationKind::FinalizeUnstake),
    (
        9,
        "set_delegate_parameters",
        OperationKind::SetDelegateParameters,
    ),
];

/// A transaction after the manager fields: amount, destination, optional (entrypoint, value).
/// A transaction to the source itself with a staking entrypoint is that pseudo-operation
/// (the protocol applies it as such only when destination = source); any other is a
/// transaction.
fn transaction(r: &mut Reader<'_>, source: &[u8]) -> Result<OperationKind, OperationError> {
    r.zarith("amount", ZARITH_CHECKED)?;
    let destination = r.contract("destination")?;
    if !r.option("parameters")? {
        return Ok(OperationKind::Transaction);
    }
    let at = r.offset();
    let pseudo = match r.u8("entrypoint")? {
        0..=5 => None,
        tag @ 6..=9 => PSEUDO.iter().find(|p| p.0 == tag).map(|p| p.2),
        255 => {
            // Named: a 1-byte length (Bounded.string 31) and the name. A named entrypoint
            // spelled like a builtin one is that entrypoint to the protocol.
            let len = usize::from(r.u8("entrypoint")?);
            if len > 31 {
                return Err(r.invalid(
                    "entrypoint",
                    at,
                    format!("name of {len} bytes is longer than 31"),
                ));
            }
            let name = r.take(len, "entrypoint")?;
            PSEUDO.iter().find(|p| p.1.as_bytes() == name).map(|p| p.2)
        }
        tag => return Err(r.invalid("entrypoint", at, format!("unknown entrypoint tag {tag}"))),
    };
    r.dynamic("parameters")?;
    Ok(match (pseudo, destination) {
        (Some(kind), Some(dest)) if dest == source => kind,
        _ => OperationKind::Transaction,
    })
}
