//! The one error type of this crate.
//!
//! Every message says what failed, where (module, token, key) and how to fix it. No message and no
//! `Debug` output ever contains a PIN, a password or key material: PINs live in
//! [`secrecy::SecretString`], which prints as `[REDACTED]`, and key bytes are never put into an
//! error.

use std::path::PathBuf;
use std::time::Duration;

pub use cryptoki::error::RvError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `cryptoki-ops`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No PKCS#11 module was configured and none was found in the usual places.
    #[error(
        "no PKCS#11 module found (tried: {tried}); install SoftHSM2 (`apt-get install softhsm2`) \
         or set PKCS11_MODULE to the module's path (AWS CloudHSM: /opt/cloudhsm/lib/libcloudhsm_pkcs11.so)"
    )]
    ModuleNotFound {
        /// The paths that were tried, comma-separated.
        tried: String,
    },

    /// The module file exists but could not be loaded or initialised.
    #[error(
        "cannot load PKCS#11 module {path}: {reason}; check that it is a PKCS#11 library built \
         for this machine (or fix PKCS11_MODULE)"
    )]
    ModuleLoad {
        /// Path of the module.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },

    /// No token matched the selector.
    #[error("no token {wanted} in module {module}; tokens present: {available}; select one of those (by label, serial: or slot:)")]
    TokenNotFound {
        /// The selector, as text.
        wanted: String,
        /// Path of the module.
        module: PathBuf,
        /// Tokens the module does have.
        available: String,
    },

    /// The token refused the PIN.
    #[error(
        "the PIN for token '{token}' is wrong (CKR_PIN_INCORRECT); check the PIN source (on AWS \
         CloudHSM the PIN is `<crypto user>:<password>`)"
    )]
    PinIncorrect {
        /// Token label.
        token: String,
    },

    /// The user PIN is locked after too many wrong attempts.
    #[error("the user PIN of token '{token}' is locked (CKR_PIN_LOCKED); the security officer must reset it (softhsm2-util / cloudhsm-cli user change-password)")]
    PinLocked {
        /// Token label.
        token: String,
    },

    /// A PIN could not be obtained from its source (environment, file or command).
    #[error("cannot get the PIN from {source_desc}: {reason}")]
    PinSource {
        /// The source, e.g. "environment variable TEZOS_HSM_PIN" (never the PIN).
        source_desc: String,
        /// What went wrong and how to fix it.
        reason: String,
    },

    /// No key matched the selector.
    #[error("no {class} {wanted} on token '{token}'; keys present: {existing}")]
    KeyNotFound {
        /// "key", "private key", "wrapping key"...
        class: &'static str,
        /// The selector, as text.
        wanted: String,
        /// Token label.
        token: String,
        /// The labels that do exist (or "none").
        existing: String,
    },

    /// Two or more keys share one label, so a label alone is ambiguous.
    #[error("{count} {class}s on token '{token}' are labelled '{label}' (CKA_ID {ids}); select the key by id, or rename or delete the extra one")]
    DuplicateLabel {
        /// "private key", "wrapping key"...
        class: &'static str,
        /// The duplicated label.
        label: String,
        /// Token label.
        token: String,
        /// How many objects carry the label.
        count: usize,
        /// Their CKA_IDs in hex, comma-separated.
        ids: String,
    },

    /// A key with that label already exists; generating another would make the label ambiguous.
    #[error("a key labelled '{label}' already exists on token '{token}'; choose another label or delete the existing key first")]
    KeyExists {
        /// The label.
        label: String,
        /// Token label.
        token: String,
    },

    /// Another key on the token already has the `CKA_ID` a new key was to get. Two key pairs
    /// sharing an id break each other: public keys and cached handles are found by id.
    #[error("CKA_ID {id} is already used on token '{token}' by key '{existing}', so '{label}' cannot get it (keys sharing an id break each other's public-key lookups and deletion); give '{label}' a new id (restore: RestoreOptions::new_id, `key restore --new-id`; generate: leave the id out for a random one) or delete '{existing}' first")]
    IdExists {
        /// The id, in hex.
        id: String,
        /// The label the new key was to get.
        label: String,
        /// The label of the key that has the id.
        existing: String,
        /// Token label.
        token: String,
    },

    /// The curve (or key type) is not one this crate handles.
    #[error("unsupported curve: {what}; supported curves are secp256k1, P-256 (prime256v1/secp256r1) and Ed25519")]
    UnsupportedCurve {
        /// Description of what was found (name or DER OID in hex).
        what: String,
    },

    /// The token does not offer a mechanism the operation needs.
    #[error("token '{token}' does not support {mechanism}; {hint}")]
    MechanismNotSupported {
        /// Token label.
        token: String,
        /// Mechanism name.
        mechanism: String,
        /// What to do instead.
        hint: &'static str,
    },

    /// Every session of the pool stayed busy for the whole checkout timeout.
    #[error("no free session on token '{token}' after {waited:?} (pool of {size} sessions); raise max_sessions or checkout_timeout, or reduce concurrency")]
    PoolExhausted {
        /// Token label.
        token: String,
        /// Pool size.
        size: usize,
        /// How long the caller waited.
        waited: Duration,
    },

    /// The token's key policy refused the operation (non-extractable, sensitive, not allowed to sign...).
    #[error("token '{token}' refused to {operation} key {key}: {reason}")]
    PolicyRefused {
        /// Token label.
        token: String,
        /// What was attempted ("wrap", "sign", "read the value of"...).
        operation: &'static str,
        /// The key, as text.
        key: String,
        /// Why, and what would be needed.
        reason: &'static str,
    },

    /// Unwrapping failed: the wrapped bytes do not decrypt under this wrapping key.
    #[error("cannot unwrap into token '{token}' with wrapping key {wrapping_key}: {reason}")]
    UnwrapFailed {
        /// Token label.
        token: String,
        /// The wrapping key, as text.
        wrapping_key: String,
        /// Why, and how to fix it.
        reason: String,
    },

    /// An unwrapped private key is not the private half of the public key it was restored with
    /// (another curve, or a test signature that does not verify). Nothing was kept.
    #[error("the key unwrapped on token '{token}' as '{label}' does not match the expected public key ({reason}); nothing was kept; the wrapped bytes come from another key")]
    KeyMismatch {
        /// Token label.
        token: String,
        /// The label the key was to get.
        label: String,
        /// What did not match.
        reason: &'static str,
    },

    /// A public key read from a token, or given by the caller, is not a valid point.
    #[error("invalid public key {key}: {reason}")]
    InvalidPublicKey {
        /// The key, as text.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Input given by the caller is malformed (hex, lengths, selectors...).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What input.
        what: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// The CloudHSM PIN names AWS KMS's crypto user `kmsuser`, and that was not allowed
    /// ([`crate::HsmConfig::with_allow_kmsuser`]).
    #[error(
        "refusing to log in to '{token}' as the crypto user kmsuser: AWS KMS logs in as kmsuser \
         for a custom key store on this cluster and rotates its password every time the store \
         connects (AWS KMS developer guide, connect-keystore), so a signer using it breaks at the \
         next connect. Use a crypto user of your own, or allow it explicitly (--allow-kmsuser, \
         HsmConfig::with_allow_kmsuser) if no key store uses this cluster"
    )]
    KmsUserRefused {
        /// Token label.
        token: String,
    },

    /// The operation needs a module feature that this module (e.g. not CloudHSM) does not have.
    #[error("{operation} is not supported by this module ({module}): {hint}")]
    NotSupportedByModule {
        /// What was attempted.
        operation: &'static str,
        /// Module path or name.
        module: String,
        /// Explanation.
        hint: &'static str,
    },

    /// Any other PKCS#11 failure, with the function and return value.
    #[error("{function} failed on token '{token}'{key}: {rv}; {hint}")]
    Pkcs11 {
        /// The PKCS#11 function, e.g. "C_Sign".
        function: String,
        /// Token label.
        token: String,
        /// " for key ..." or empty.
        key: String,
        /// The return value.
        rv: RvError,
        /// What usually causes this.
        hint: &'static str,
    },
}

impl Error {
    /// A stable snake_case name of the error's kind, for machine-readable output: the variant's
    /// name in snake_case (`Error::PinIncorrect` is `pin_incorrect`, `Error::Pkcs11` is
    /// `pkcs11`). A variant's kind never changes.
    ///
    /// ```
    /// let err = cryptoki_ops::Error::PinIncorrect { token: "t".into() };
    /// assert_eq!(err.kind(), "pin_incorrect");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ModuleNotFound { .. } => "module_not_found",
            Self::ModuleLoad { .. } => "module_load",
            Self::TokenNotFound { .. } => "token_not_found",
            Self::PinIncorrect { .. } => "pin_incorrect",
            Self::PinLocked { .. } => "pin_locked",
            Self::PinSource { .. } => "pin_source",
            Self::KeyNotFound { .. } => "key_not_found",
            Self::DuplicateLabel { .. } => "duplicate_label",
            Self::KeyExists { .. } => "key_exists",
            Self::IdExists { .. } => "id_exists",
            Self::UnsupportedCurve { .. } => "unsupported_curve",
            Self::MechanismNotSupported { .. } => "mechanism_not_supported",
            Self::PoolExhausted { .. } => "pool_exhausted",
            Self::PolicyRefused { .. } => "policy_refused",
            Self::UnwrapFailed { .. } => "unwrap_failed",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::InvalidPublicKey { .. } => "invalid_public_key",
            Self::InvalidInput { .. } => "invalid_input",
            Self::NotSupportedByModule { .. } => "not_supported_by_module",
            Self::KmsUserRefused { .. } => "kmsuser_refused",
            Self::Pkcs11 { .. } => "pkcs11",
        }
    }
}

/// A short hint for a PKCS#11 return value that has no dedicated error variant.
pub(crate) fn hint_for(rv: RvError) -> &'static str {
    match rv {
        RvError::FunctionFailed | RvError::OperationActive => {
            "the HSM is busy or throttling; retry later or lower the request rate"
        }
        RvError::DeviceError | RvError::DeviceMemory | RvError::DeviceRemoved => {
            "the HSM or its connection failed; check the HSM and its client daemon"
        }
        RvError::TokenNotPresent | RvError::SessionHandleInvalid | RvError::SessionClosed => {
            "the token went away; check that it is still present and retry"
        }
        RvError::UserNotLoggedIn => "the session is not logged in; check the PIN source",
        // AWS CloudHSM user guide, "PKCS #11 library PIN" (pkcs11-pin): crypto users only.
        RvError::UserTypeInvalid => {
            "the module refused this kind of login; AWS CloudHSM's PKCS#11 library logs in crypto users only (PIN <user>:<password>): security-officer work, such as marking a wrapping key trusted, is done by an admin with cloudhsm-cli"
        }
        RvError::TemplateInconsistent
        | RvError::TemplateIncomplete
        | RvError::AttributeTypeInvalid
        | RvError::AttributeValueInvalid => {
            "the token rejected the key attributes; it may not support this key type or policy"
        }
        RvError::MechanismInvalid | RvError::MechanismParamInvalid => {
            "the token does not support this mechanism; list its mechanisms with token info"
        }
        RvError::CurveNotSupported | RvError::DomainParamsInvalid => {
            "the token does not support this curve"
        }
        RvError::TokenWriteProtected | RvError::SessionReadOnly => {
            "the token is read-only; use a writable token"
        }
        _ => "see the PKCS#11 return value",
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
            (Error::ModuleNotFound { tried: s() }, "module_not_found"),
            (
                Error::ModuleLoad {
                    path: PathBuf::new(),
                    reason: s(),
                },
                "module_load",
            ),
            (
                Error::TokenNotFound {
                    wanted: s(),
                    module: PathBuf::new(),
                    available: s(),
                },
                "token_not_found",
            ),
            (Error::PinIncorrect { token: s() }, "pin_incorrect"),
            (Error::PinLocked { token: s() }, "pin_locked"),
            (
                Error::PinSource {
                    source_desc: s(),
                    reason: s(),
                },
                "pin_source",
            ),
            (
                Error::KeyNotFound {
                    class: "private key",
                    wanted: s(),
                    token: s(),
                    existing: s(),
                },
                "key_not_found",
            ),
            (
                Error::DuplicateLabel {
                    class: "private key",
                    label: s(),
                    token: s(),
                    count: 2,
                    ids: s(),
                },
                "duplicate_label",
            ),
            (
                Error::KeyExists {
                    label: s(),
                    token: s(),
                },
                "key_exists",
            ),
            (
                Error::IdExists {
                    id: s(),
                    label: s(),
                    existing: s(),
                    token: s(),
                },
                "id_exists",
            ),
            (Error::UnsupportedCurve { what: s() }, "unsupported_curve"),
            (Error::KmsUserRefused { token: s() }, "kmsuser_refused"),
            (
                Error::MechanismNotSupported {
                    token: s(),
                    mechanism: s(),
                    hint: "",
                },
                "mechanism_not_supported",
            ),
            (
                Error::PoolExhausted {
                    token: s(),
                    size: 1,
                    waited: Duration::ZERO,
                },
                "pool_exhausted",
            ),
            (
                Error::PolicyRefused {
                    token: s(),
                    operation: "wrap",
                    key: s(),
                    reason: "",
                },
                "policy_refused",
            ),
            (
                Error::UnwrapFailed {
                    token: s(),
                    wrapping_key: s(),
                    reason: s(),
                },
                "unwrap_failed",
            ),
            (
                Error::KeyMismatch {
                    token: s(),
                    label: s(),
                    reason: "",
                },
                "key_mismatch",
            ),
            (
                Error::InvalidPublicKey {
                    key: s(),
                    reason: s(),
                },
                "invalid_public_key",
            ),
            (
                Error::InvalidInput {
                    what: "x",
                    reason: s(),
                },
                "invalid_input",
            ),
            (
                Error::NotSupportedByModule {
                    operation: "x",
                    module: s(),
                    hint: "",
                },
                "not_supported_by_module",
            ),
            (
                Error::Pkcs11 {
                    function: s(),
                    token: s(),
                    key: s(),
                    rv: RvError::GeneralError,
                    hint: "",
                },
                "pkcs11",
            ),
        ];
        for (error, kind) in table {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}
