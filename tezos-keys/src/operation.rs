//! Generic operations (watermark `0x03`) decoded to the kind of every content, so a signer can
//! apply a per-key allow-list before the HSM is called.
//!
//! A generic signing request is `0x03 ‖ branch (32 bytes) ‖ content ‖ content …`, the unsigned
//! operation of Octez `src/proto_alpha/lib_protocol/operation_repr.ml`@d26a8bef
//! (`unsigned_operation_encoding`: the shell header, then the contents list with no size
//! prefix). Contents carry no length, so each one is read to its last byte to find the next:
//! [`decode`] reads them all, with the layouts of the current protocol (the same tags in 024
//! Tallinn and 025 Ushuaia), and **refuses** what it cannot read — an unknown tag, a kind whose
//! layout it does not decode ([`OperationError::NotDecoded`]), a truncated or invalid field —
//! naming the tag or field and its byte offset. It never guesses where a content ends.
//!
//! Bounded: every read is checked against the bytes left; nothing panics or allocates more
//! than one [`OperationKind`] per content on any input (a property test feeds it random and
//! truncated bytes).
//!
//! ```
//! use tezos_keys::operation::{self, OperationKind};
//! // A transfer of 1 tez, forged by PyTezos (fixtures/operations/pytezos.json).
//! let request = hex::decode(concat!(
//!     "038fcf233671b6a04fcf679d2a381c2544ea6c1ea29ba6157776ed8424c7ccd00b",
//!     "6c00aa28d5f811c6ab1cab6d03864481d0c0cdf7be238c0b07e852ac02c0843d00",
//!     "012ffebbf1560632ca767bc960ccdb84669d284c2c00",
//! ))?;
//! let op = operation::decode(&request)?;
//! assert_eq!(op.kinds, [OperationKind::Transaction]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod contents;
mod error;
mod kind;
mod reader;

pub use error::OperationError;
pub use kind::OperationKind;

use reader::Reader;

/// The watermark byte of a generic operation.
pub const GENERIC_WATERMARK: u8 = 0x03;

/// A decoded generic operation: its branch and the kind of each content, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenericOperation {
    /// The block hash the operation is anchored to (bytes 1–32).
    pub branch: [u8; 32],
    /// The kind of every content, in order (one for a single operation, more for a batch).
    pub kinds: Vec<OperationKind>,
}

/// Decodes a generic signing request (watermark byte included) to the kind of every content.
///
/// A batch of several contents must hold manager operations only, as the protocol requires.
///
/// # Errors
/// [`OperationError::Empty`], [`OperationError::NotGeneric`], [`OperationError::NoContents`],
/// [`OperationError::UnknownTag`], [`OperationError::NotDecoded`],
/// [`OperationError::Truncated`], [`OperationError::InvalidField`],
/// [`OperationError::NotBatchable`].
pub fn decode(payload: &[u8]) -> Result<GenericOperation, OperationError> {
    let &byte = payload.first().ok_or(OperationError::Empty)?;
    if byte != GENERIC_WATERMARK {
        return Err(OperationError::NotGeneric { byte });
    }
    let mut r = Reader::new(payload, 1);
    let mut branch = [0u8; 32];
    branch.copy_from_slice(r.take(32, "branch")?);
    if r.is_empty() {
        return Err(OperationError::NoContents);
    }
    let mut kinds = Vec::new();
    let mut first_non_manager = None;
    while !r.is_empty() {
        let offset = r.offset();
        let kind = contents::read(&mut r)?;
        if !kind.is_manager() && first_non_manager.is_none() {
            first_non_manager = Some((kind, offset));
        }
        kinds.push(kind);
    }
    if let (true, Some((kind, offset))) = (kinds.len() > 1, first_non_manager) {
        return Err(OperationError::NotBatchable { kind, offset });
    }
    Ok(GenericOperation { branch, kinds })
}

#[cfg(test)]
mod tests;
