//! Why the guard did not return a signature: [`GuardError`] and its stable `kind()`.

use core::cmp::Ordering;
use std::path::PathBuf;
use std::time::Duration;

use super::{Height, MarkKind};
use crate::payload::Watermark;
use crate::{ChainId, PublicKeyHash};

/// Why the guard did not return a signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Signing would break the high-watermark: the payload is not above the last one signed
    /// for this key, chain and kind, or is at the same height with different bytes.
    #[error(
        "refusing to double-sign: {kind} for {key} on chain {chain} at {requested} {}",
        refusal(requested, recorded)
    )]
    DoubleSign {
        /// The key.
        key: PublicKeyHash,
        /// The chain id.
        chain: ChainId,
        /// The kind whose record refused it.
        kind: MarkKind,
        /// The payload's height.
        requested: Height,
        /// The last height signed.
        recorded: Height,
    },
    /// The key's policy does not allow this watermark.
    #[error(
        "key {key} may not sign {watermark} (0x{:02x}) payloads; its policy allows: {}",
        watermark.byte(),
        list(allowed)
    )]
    PolicyRefused {
        /// The key.
        key: PublicKeyHash,
        /// The payload's watermark.
        watermark: Watermark,
        /// What the policy allows.
        allowed: Vec<Watermark>,
    },
    /// The payload is malformed (empty, unknown watermark, truncated, negative level…).
    #[error(transparent)]
    Payload(#[from] crate::Error),
    /// The key's watermark record exists but is not a valid record. Signing consensus payloads
    /// for this key stops until an operator repairs or restores it.
    #[error(
        "the high-watermark record {} is unreadable ({reason}); consensus signing for this key is \
         stopped: restore the file from a backup or fix it by hand (never delete it unless you \
         know the highest level and round this key signed)",
        path.display()
    )]
    StoreCorrupt {
        /// The file (or, for another store, its location).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's directory does not exist. It is never created when opened to sign: a
    /// missing directory may be an unmounted volume, a typo or another `HOME`, and signing
    /// from an empty store could double-sign.
    #[error(
        "the high-watermark directory {} does not exist, so nothing is known about what this key \
         signed; if this is a new signer, create it with `tezos-hsm --watermark-dir {} watermark \
         init` (it is also created by `key generate` and `key restore`); if it existed before, \
         check the path and that its volume is mounted, and never sign from an empty directory \
         with a key that has signed before",
        dir.display(),
        dir.display()
    )]
    StoreMissing {
        /// The directory.
        dir: PathBuf,
    },
    /// The store's directory is owned by another user or writable by group or others, so
    /// somebody else could replace a record or plant a symbolic link in it.
    #[error(
        "refusing the high-watermark directory {}: it {problem}, so another user could replace \
         its records and make this key double-sign; fix: {fix}",
        dir.display()
    )]
    StoreUnsafe {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to fix it (a command).
        fix: String,
    },
    /// Another thread or process held the key's record lock for longer than the store waits.
    #[error(
        "the high-watermark record lock {} was held by another signer for {waited:.1?}: a \
         signing process may be stuck (a hung HSM call, a stopped process); find it with `lsof \
         {}` and retry",
        path.display(),
        path.display()
    )]
    StoreBusy {
        /// The lock file.
        path: PathBuf,
        /// How long this request waited.
        waited: Duration,
    },
    /// Reading or writing the watermark store failed.
    #[error("cannot {action} the high-watermark record {}: {source}", path.display())]
    StoreIo {
        /// The file or directory.
        path: PathBuf,
        /// What was being done: `read`, `write`, `fsync`, `rename`…
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The signer failed; nothing was recorded.
    #[error("the signer failed: {}", signer_reason(.0))]
    Signer(signature::Error),
}

impl GuardError {
    /// Whether this is a [`GuardError::DoubleSign`] refusal.
    pub fn is_double_sign(&self) -> bool {
        matches!(self, Self::DoubleSign { .. })
    }

    /// A stable snake_case name of the error's kind, for machine-readable output:
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | `double_sign` | [`GuardError::DoubleSign`] |
    /// | `watermark_not_allowed` | [`GuardError::PolicyRefused`] |
    /// | [`crate::Error::kind`] | [`GuardError::Payload`] (`invalid_input`) |
    /// | `watermark_store_corrupt` | [`GuardError::StoreCorrupt`] |
    /// | `watermark_store_missing` | [`GuardError::StoreMissing`] |
    /// | `watermark_store_unsafe` | [`GuardError::StoreUnsafe`] |
    /// | `watermark_store_busy` | [`GuardError::StoreBusy`] |
    /// | `io` | [`GuardError::StoreIo`] |
    /// | the signer's own kind, else `sign_failed` | [`GuardError::Signer`] |
    ///
    /// The signer's own kind is that of the error inside the [`signature::Error`], when it is
    /// a [`crate::SignError`] (e.g. `pin_incorrect`, `key_not_found` from the HSM), a
    /// [`cryptoki_ops::Error`] or a [`crate::Error`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DoubleSign { .. } => "double_sign",
            Self::PolicyRefused { .. } => "watermark_not_allowed",
            Self::Payload(e) => e.kind(),
            Self::StoreCorrupt { .. } => "watermark_store_corrupt",
            Self::StoreMissing { .. } => "watermark_store_missing",
            Self::StoreUnsafe { .. } => "watermark_store_unsafe",
            Self::StoreBusy { .. } => "watermark_store_busy",
            Self::StoreIo { .. } => "io",
            Self::Signer(e) => signer_kind(e),
        }
    }
}

fn refusal(requested: &Height, recorded: &Height) -> String {
    if requested.compare(recorded) == Ordering::Equal {
        format!("which was already signed with different bytes (recorded: {recorded})")
    } else {
        format!("which is not above the last one signed, at {recorded}")
    }
}

/// `block (0x11), attestation (0x13)`, or `nothing`.
pub(crate) fn list(allowed: &[Watermark]) -> String {
    if allowed.is_empty() {
        return "nothing".to_owned();
    }
    allowed
        .iter()
        .map(|w| format!("{w} (0x{:02x})", w.byte()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind of the error a signer put inside its [`signature::Error`], if this crate knows it.
fn signer_kind(error: &signature::Error) -> &'static str {
    let Some(source) = std::error::Error::source(error) else {
        return "sign_failed";
    };
    #[cfg(feature = "hsm")]
    {
        if let Some(e) = source.downcast_ref::<crate::SignError>() {
            return e.kind();
        }
        if let Some(e) = source.downcast_ref::<cryptoki_ops::Error>() {
            return e.kind();
        }
    }
    source
        .downcast_ref::<crate::Error>()
        .map_or("sign_failed", crate::Error::kind)
}

fn signer_reason(error: &signature::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => source.to_string(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::high_watermark::KeyPolicy;
    use crate::Curve;

    fn h(level: u32, round: Option<u32>) -> Height {
        Height { level, round }
    }

    #[test]
    fn messages_name_everything() {
        let err = GuardError::DoubleSign {
            key: PublicKeyHash::new(Curve::Secp256k1, [0; 20]),
            chain: ChainId::MAINNET,
            kind: MarkKind::Attestation,
            requested: h(5, Some(0)),
            recorded: h(7, Some(1)),
        };
        let text = err.to_string();
        assert!(text.contains("attestation for tz2"), "{text}");
        assert!(
            text.contains("on chain NetXdQprcVkpaWU at level 5 round 0"),
            "{text}"
        );
        assert!(
            text.contains("not above the last one signed, at level 7 round 1"),
            "{text}"
        );
        let err = GuardError::PolicyRefused {
            key: PublicKeyHash::new(Curve::Ed25519, [0; 20]),
            watermark: Watermark::Block,
            allowed: KeyPolicy::custody().allowed,
        };
        assert!(err
            .to_string()
            .ends_with("may not sign block (0x11) payloads; its policy allows: generic (0x03), michelson (0x05)"));
    }
}
