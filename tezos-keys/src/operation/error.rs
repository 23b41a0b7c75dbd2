//! [`OperationError`]: why a generic operation could not be decoded.

use super::OperationKind;

/// Why the bytes of a generic operation could not be decoded. Offsets count from the
/// watermark byte (offset 0) of the signing request.
///
/// ```
/// use tezos_keys::operation::{self, OperationError};
/// let mut request = vec![0x03];
/// request.extend_from_slice(&[0; 32]); // branch
/// request.push(0x07); // a tag no protocol uses now
/// let err = operation::decode(&request).unwrap_err();
/// assert_eq!(err, OperationError::UnknownTag { tag: 7, offset: 33 });
/// assert_eq!(err.kind(), "operation_unknown_tag");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// The request is not a generic operation (watermark `0x03`).
    #[error(
        "not a generic operation: the request starts with 0x{byte:02x}, a generic operation \
         with 0x03"
    )]
    NotGeneric {
        /// The first byte.
        byte: u8,
    },

    /// The request is empty.
    #[error("the signing request is empty")]
    Empty,

    /// The operation has a branch and no content.
    #[error("the operation has no content after its branch (bytes 1-32): nothing to sign")]
    NoContents,

    /// A content tag no current protocol uses.
    #[error(
        "unknown operation tag {tag} (0x{tag:02x}) at byte {offset}: not an operation of the \
         current protocol, refused rather than guessed"
    )]
    UnknownTag {
        /// The tag.
        tag: u8,
        /// Where it is.
        offset: usize,
    },

    /// A known kind whose layout this decoder does not read, so the contents after it cannot
    /// be found: refused.
    #[error(
        "operation {kind} (tag {tag}) at byte {offset} is not decoded by this signer, so the \
         request is refused; sign it with another tool if it is intended"
    )]
    NotDecoded {
        /// The kind.
        kind: OperationKind,
        /// Its tag.
        tag: u8,
        /// Where it starts.
        offset: usize,
    },

    /// The bytes end inside a field.
    #[error("truncated {kind}: field {field} at byte {offset} needs {needed} bytes, {left} left")]
    Truncated {
        /// The content being read (`operation` for the branch).
        kind: &'static str,
        /// The field.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left in the request.
        left: usize,
    },

    /// A field holds a value its encoding does not allow.
    #[error("invalid {kind}: field {field} at byte {offset}: {reason}")]
    InvalidField {
        /// The content being read.
        kind: &'static str,
        /// The field.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },

    /// A batch of several contents holding one that is not a manager operation: the protocol
    /// accepts only manager operations in a batch (`operation_repr.ml`,
    /// `of_contents_and_signature_prefix`).
    #[error(
        "a batch of several contents holds {kind} at byte {offset}, which is not a manager \
         operation: the protocol batches manager operations only"
    )]
    NotBatchable {
        /// The offending kind.
        kind: OperationKind,
        /// Where it starts.
        offset: usize,
    },

    /// A name that is no [`OperationKind`] (in a policy).
    #[error(
        "unknown operation kind {name:?}: use Octez's names, e.g. transaction, reveal, \
         delegation, stake, ballot, update_consensus_key, drain_delegate"
    )]
    UnknownKindName {
        /// The name given (at most 48 characters).
        name: String,
    },
}

impl OperationError {
    /// A stable snake_case identifier of the variant: `operation_not_generic`,
    /// `operation_empty`, `operation_no_contents`, `operation_unknown_tag`,
    /// `operation_not_decoded`, `operation_truncated`, `operation_invalid_field`,
    /// `operation_not_batchable`, `unknown_operation_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotGeneric { .. } => "operation_not_generic",
            Self::Empty => "operation_empty",
            Self::NoContents => "operation_no_contents",
            Self::UnknownTag { .. } => "operation_unknown_tag",
            Self::NotDecoded { .. } => "operation_not_decoded",
            Self::Truncated { .. } => "operation_truncated",
            Self::InvalidField { .. } => "operation_invalid_field",
            Self::NotBatchable { .. } => "operation_not_batchable",
            Self::UnknownKindName { .. } => "unknown_operation_kind",
        }
    }
}
