//! The crate's single error type.
//!
//! Every message says what was wrong and, where there is one, how to fix it.
//! No message ever contains secret-key text or bytes: for secret keys only
//! the kind (`edsk`, `spsk`, `p2sk`) is named.

use crate::Curve;

/// Result alias using this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in `tezos-keys`.
///
/// ```
/// use tezos_keys::base58::{self, Prefix};
/// use tezos_keys::{Error, PublicKeyHash};
/// let tz4 = base58::encode(Prefix::Tz4, &[7; 20])?;
/// let err = tz4.parse::<PublicKeyHash>().unwrap_err();
/// assert!(matches!(err, Error::Unsupported { .. }));
/// assert!(err.to_string().contains("tz4 (BLS) address is not supported"));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is empty.
    #[error("expected {expected}, got an empty string")]
    EmptyText {
        /// What the caller asked for, e.g. "a tz1/tz2/tz3 address".
        expected: String,
    },

    /// The text contains a character outside the base58 alphabet.
    #[error(
        "expected {expected}, but character {position} is not base58 \
         (base58 has no 0, O, I or l, and no spaces or quotes): check for typos or stray characters"
    )]
    InvalidBase58 {
        /// What the caller asked for.
        expected: String,
        /// Zero-based position of the first bad character.
        position: usize,
    },

    /// The text is longer than any Tezos base58check string this crate knows.
    #[error(
        "expected {expected}, got {actual} characters, longer than any supported \
         Tezos encoding ({max}): check that only one value was pasted"
    )]
    TextTooLong {
        /// What the caller asked for.
        expected: String,
        /// Length of the input in characters.
        actual: usize,
        /// The largest accepted length.
        max: usize,
    },

    /// The base58check checksum does not match.
    #[error(
        "expected {expected}, but the base58check checksum does not match: \
         the value is mistyped or truncated; copy it again in full"
    )]
    BadChecksum {
        /// What the caller asked for.
        expected: String,
    },

    /// The decoded prefix is not one this crate knows.
    #[error(
        "expected {expected}, got something starting with '{starts_with}' \
         that is not a known Tezos encoding"
    )]
    UnknownPrefix {
        /// What the caller asked for.
        expected: String,
        /// The first few characters of the input (never more than 4).
        starts_with: String,
    },

    /// The value is a valid Tezos encoding, but of another kind.
    #[error("expected {expected}, got something starting with '{found}'")]
    WrongPrefix {
        /// What the caller asked for.
        expected: String,
        /// The text prefix that was found, e.g. `edpk`.
        found: &'static str,
    },

    /// The prefix is right but the payload has the wrong number of bytes.
    #[error(
        "'{prefix}' value has {actual} payload bytes, expected {expected}: \
         the value is truncated or is not a '{prefix}' value"
    )]
    WrongLength {
        /// The text prefix, e.g. `sppk`.
        prefix: &'static str,
        /// Expected payload length in bytes.
        expected: usize,
        /// Actual payload length in bytes.
        actual: usize,
    },

    /// A recognised Tezos value of a kind this crate does not handle.
    #[error(
        "{what} is not supported: only tz1 (Ed25519), tz2 (secp256k1) and tz3 (P-256) keys are"
    )]
    Unsupported {
        /// What was found, e.g. "tz4 (BLS) address".
        what: &'static str,
    },

    /// A byte string has the wrong length for what it should hold.
    #[error("{what} must be {expected} bytes, got {actual}")]
    InvalidLength {
        /// What was being read.
        what: &'static str,
        /// Expected length (or a description of the accepted lengths).
        expected: String,
        /// Actual length.
        actual: usize,
    },

    /// A forged (binary) value starts with a tag byte this crate does not know.
    #[error(
        "{what} starts with tag byte 0x{tag:02x}; expected 0x00 (Ed25519), \
         0x01 (secp256k1) or 0x02 (P-256){hint}"
    )]
    UnknownTag {
        /// What was being read.
        what: &'static str,
        /// The tag byte found.
        tag: u8,
        /// Extra explanation (empty or starting with "; ").
        hint: &'static str,
    },

    /// The bytes are not a valid public key on the curve.
    #[error("invalid {curve} public key: {reason}")]
    InvalidPublicKey {
        /// The curve the key was checked against.
        curve: Curve,
        /// What was wrong.
        reason: &'static str,
    },

    /// The bytes are not a valid secret key (never includes the bytes).
    #[error("invalid {curve} secret key: {reason}")]
    InvalidSecretKey {
        /// The curve.
        curve: Curve,
        /// What was wrong.
        reason: &'static str,
    },

    /// The signature bytes are malformed (not a verification failure).
    #[error("malformed {curve} signature: {reason}")]
    MalformedSignature {
        /// The curve.
        curve: Curve,
        /// What was wrong.
        reason: &'static str,
    },

    /// Two values that must be on the same curve are not.
    #[error("{what} is {actual}, expected {expected}: use a key and signature of the same curve")]
    CurveMismatch {
        /// What had the wrong curve.
        what: &'static str,
        /// The expected curve.
        expected: Curve,
        /// The curve found.
        actual: Curve,
    },

    /// A generic `sig…` signature was parsed without saying which curve it is for.
    #[error(
        "a generic 'sig' signature does not say its curve: parse it together with \
         the public key (Signature::from_base58_for) or give it in edsig/spsig1/p2sig form"
    )]
    GenericSignatureNeedsCurve,

    /// A secp256k1 signature has a high `s`, which Octez rejects.
    #[error(
        "secp256k1 signature has a high s value, which Octez (libsecp256k1) rejects: \
         normalise it to low-S (s := n - s) before use"
    )]
    HighS,

    /// The signature does not verify for this key and message.
    #[error("the {curve} signature does not verify for this public key and message")]
    VerificationFailed {
        /// The curve of the key.
        curve: Curve,
    },

    /// The payload to sign is empty.
    #[error("empty payload: a signing request must start with a watermark byte (0x01..0x13)")]
    EmptyPayload,

    /// The first byte of the payload is not a known watermark.
    #[error(
        "unknown watermark byte 0x{byte:02x}: known are 0x01 legacy block, 0x02 legacy endorsement, \
         0x03 generic operation, 0x05 Michelson data, 0x11 block, 0x12 preattestation, 0x13 attestation"
    )]
    UnknownWatermark {
        /// The first byte of the payload.
        byte: u8,
    },

    /// The payload is too short for its watermark.
    #[error(
        "truncated {name} payload (watermark 0x{byte:02x}): needs at least {min} bytes, got {actual}"
    )]
    TruncatedPayload {
        /// The watermark byte.
        byte: u8,
        /// The watermark's name.
        name: &'static str,
        /// Minimum length needed to read the fields.
        min: usize,
        /// Actual payload length.
        actual: usize,
    },

    /// A field inside a payload has an impossible value.
    #[error("invalid {name} payload (watermark 0x{byte:02x}): {reason}")]
    InvalidPayload {
        /// The watermark byte.
        byte: u8,
        /// The watermark's name.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// A watermark given by name or number (e.g. in `--allow`) is not known.
    #[error(
        "unknown watermark '{input}': use 0x01, 0x02, 0x03, 0x05, 0x11, 0x12, 0x13 or a name \
         (legacy_block, legacy_endorsement, generic, michelson, block, preattestation, attestation)"
    )]
    InvalidWatermarkName {
        /// The text that was not understood.
        input: String,
    },
}

impl Error {
    /// A stable snake_case name of the error's kind, for machine-readable output (the
    /// `tezos-hsm` tool prints it as `{"error": {"kind"}}`). Kinds are categories; match the
    /// variant for the detail. They never change for a variant:
    ///
    /// | Kind | Variants |
    /// |---|---|
    /// | `verify_failed` | [`Error::VerificationFailed`], [`Error::HighS`]: a signature that the Octez node would reject |
    /// | `invalid_input` | every other variant: text, bytes or a payload that is not a valid (supported) Tezos value |
    ///
    /// ```
    /// use tezos_keys::{Curve, Error};
    /// assert_eq!(Error::EmptyPayload.kind(), "invalid_input");
    /// assert_eq!(Error::VerificationFailed { curve: Curve::P256 }.kind(), "verify_failed");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::VerificationFailed { .. } | Self::HighS => "verify_failed",
            Self::EmptyText { .. }
            | Self::InvalidBase58 { .. }
            | Self::TextTooLong { .. }
            | Self::BadChecksum { .. }
            | Self::UnknownPrefix { .. }
            | Self::WrongPrefix { .. }
            | Self::WrongLength { .. }
            | Self::Unsupported { .. }
            | Self::InvalidLength { .. }
            | Self::UnknownTag { .. }
            | Self::InvalidPublicKey { .. }
            | Self::InvalidSecretKey { .. }
            | Self::MalformedSignature { .. }
            | Self::CurveMismatch { .. }
            | Self::GenericSignatureNeedsCurve
            | Self::EmptyPayload
            | Self::UnknownWatermark { .. }
            | Self::TruncatedPayload { .. }
            | Self::InvalidPayload { .. }
            | Self::InvalidWatermarkName { .. } => "invalid_input",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant and its kind: a kind is part of the tool's JSON output and must not change.
    #[test]
    fn kinds_are_stable() {
        let s = String::new;
        let table = [
            (Error::EmptyText { expected: s() }, "invalid_input"),
            (
                Error::InvalidBase58 {
                    expected: s(),
                    position: 0,
                },
                "invalid_input",
            ),
            (
                Error::TextTooLong {
                    expected: s(),
                    actual: 0,
                    max: 0,
                },
                "invalid_input",
            ),
            (Error::BadChecksum { expected: s() }, "invalid_input"),
            (
                Error::UnknownPrefix {
                    expected: s(),
                    starts_with: s(),
                },
                "invalid_input",
            ),
            (
                Error::WrongPrefix {
                    expected: s(),
                    found: "edpk",
                },
                "invalid_input",
            ),
            (
                Error::WrongLength {
                    prefix: "sppk",
                    expected: 33,
                    actual: 0,
                },
                "invalid_input",
            ),
            (Error::Unsupported { what: "tz4" }, "invalid_input"),
            (
                Error::InvalidLength {
                    what: "x",
                    expected: s(),
                    actual: 0,
                },
                "invalid_input",
            ),
            (
                Error::UnknownTag {
                    what: "x",
                    tag: 9,
                    hint: "",
                },
                "invalid_input",
            ),
            (
                Error::InvalidPublicKey {
                    curve: Curve::P256,
                    reason: "x",
                },
                "invalid_input",
            ),
            (
                Error::InvalidSecretKey {
                    curve: Curve::P256,
                    reason: "x",
                },
                "invalid_input",
            ),
            (
                Error::MalformedSignature {
                    curve: Curve::P256,
                    reason: "x",
                },
                "invalid_input",
            ),
            (
                Error::CurveMismatch {
                    what: "x",
                    expected: Curve::P256,
                    actual: Curve::Ed25519,
                },
                "invalid_input",
            ),
            (Error::GenericSignatureNeedsCurve, "invalid_input"),
            (Error::HighS, "verify_failed"),
            (
                Error::VerificationFailed {
                    curve: Curve::Secp256k1,
                },
                "verify_failed",
            ),
            (Error::EmptyPayload, "invalid_input"),
            (Error::UnknownWatermark { byte: 0 }, "invalid_input"),
            (
                Error::TruncatedPayload {
                    byte: 0x11,
                    name: "block",
                    min: 2,
                    actual: 1,
                },
                "invalid_input",
            ),
            (
                Error::InvalidPayload {
                    byte: 0x11,
                    name: "block",
                    reason: s(),
                },
                "invalid_input",
            ),
            (Error::InvalidWatermarkName { input: s() }, "invalid_input"),
        ];
        for (error, kind) in table {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}
