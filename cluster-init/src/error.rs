//! The errors of cluster bring-up, each with a stable [`Error::kind`].

use std::path::PathBuf;

/// Why a bring-up step failed. Messages say what was wrong and how to fix it; none holds a
/// passphrase, PIN or key byte.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input (certificate, CSR, key file, JSON, option) is malformed or unusable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was given: `CSR`, `certificate`, `cluster id`…
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A signature that must verify does not (a CSR's own signature, a certificate's issuer's).
    #[error("{what}: the signature does not verify ({reason}); it was altered or not made by the key it claims")]
    BadSignature {
        /// What was checked.
        what: String,
        /// What the verifier said.
        reason: String,
    },
    /// The CA's private key file could not be decrypted with the passphrase given.
    #[error("cannot decrypt the CA key {}: wrong passphrase, or the file is damaged; give the passphrase it was created with", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// An output file exists already; it is never overwritten.
    #[error("{} already exists and is never overwritten: choose another directory or move it away first", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Reading a file failed.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Write {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The trust anchor is not a CA certificate, or does not verify the cluster certificate.
    #[error("not a usable trust anchor: {0}")]
    NotTrustAnchor(String),
    /// The HSM's identity could not be verified: names the link of the chain that broke.
    #[error("the HSM's identity does not verify: {link}: {reason}")]
    Identity {
        /// The link, e.g. `AWS hardware certificate -> AWS root`.
        link: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The PKCS#11 token failed (CA key on a token).
    #[error(transparent)]
    Hsm(#[from] cryptoki_ops::Error),
}

impl Error {
    /// A stable snake_case name, for scripts and JSON output: `invalid_input`, `bad_signature`,
    /// `wrong_passphrase`, `file_exists`, `io`, `not_trust_anchor`, `identity_mismatch`, or the
    /// PKCS#11 error's own kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid_input",
            Self::BadSignature { .. } => "bad_signature",
            Self::WrongPassphrase { .. } => "wrong_passphrase",
            Self::Exists { .. } => "file_exists",
            Self::Read { .. } | Self::Write { .. } => "io",
            Self::NotTrustAnchor(_) => "not_trust_anchor",
            Self::Identity { .. } => "identity_mismatch",
            Self::Hsm(e) => e.kind(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
