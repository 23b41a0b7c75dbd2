//! [`CloudHsmError`], the one error type of this crate, and its stable [`CloudHsmError::kind`].

use std::path::PathBuf;
use std::time::Duration;

use crate::redact::Redactor;
use crate::types::CliRole;

/// Everything that can go wrong with the CloudHSM CLI.
///
/// No message and no `Debug` output contains a password or `CLOUDHSM_PIN`: the credentials and the
/// new user's password are replaced by `[REDACTED]` in whatever the CLI prints before it lands
/// in an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloudHsmError {
    /// The module is not AWS CloudHSM, which alone has the CLI and its users.
    #[error(
        "{operation} is not supported by this module ({}): HSM users and key sharing exist only on \
         AWS CloudHSM, through cloudhsm-cli; load /opt/cloudhsm/lib/libcloudhsm_pkcs11.so (on \
         SoftHSM2 every user of a token already sees every key)",
        module.display()
    )]
    NotSupportedByModule {
        /// What was attempted.
        operation: &'static str,
        /// Path of the module.
        module: PathBuf,
    },

    /// The CLI executable does not exist.
    #[error(
        "the CloudHSM CLI is not at {}; install the AWS CloudHSM CLI package (cloudhsm-cli) or \
         give its path with CloudHsmCli::with_program",
        program.display()
    )]
    CliNotFound {
        /// The path that was tried.
        program: PathBuf,
    },

    /// The credentials could not be read from their [`PinSource`](cryptoki_ops::PinSource).
    #[error("cannot get the CloudHSM CLI credentials: {0}")]
    Credentials(#[source] cryptoki_ops::Error),

    /// Input given by the caller is malformed; nothing was run.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What input.
        what: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// The command needs another role than the one this [`CloudHsmCli`](crate::CloudHsmCli) logs in with; nothing
    /// was run.
    #[error(
        "{operation} must be run as {needed}, but this CloudHsmCli logs in as {current}; create \
         one with role {needed} and the credentials of such a user"
    )]
    WrongRole {
        /// What was attempted.
        operation: &'static str,
        /// The role it needs.
        needed: CliRole,
        /// The role configured.
        current: CliRole,
    },

    /// The CLI says no user is logged in.
    #[error(
        "`{command}` needs a logged-in user, but cloudhsm-cli says: {message}; check that the \
         credentials (CLOUDHSM_PIN, from the PIN source) are given as `<user>:<password>`"
    )]
    NotLoggedIn {
        /// The command (password arguments redacted).
        command: String,
        /// What the CLI said.
        message: String,
    },

    /// The CLI refused the credentials.
    #[error(
        "cloudhsm-cli refused the {role} credentials for `{command}`: {message}; check the PIN \
         source (it must give `<user>:<password>` of a {role}); a user is locked after 5 wrong \
         passwords and an admin must then reset its password"
    )]
    AuthenticationFailed {
        /// The command (password arguments redacted).
        command: String,
        /// The role that tried to log in.
        role: CliRole,
        /// What the CLI said.
        message: String,
    },

    /// The user named in the command does not exist.
    #[error(
        "no HSM user '{username}' in the cluster (cloudhsm-cli: {message}); list the users with \
         CloudHsmCli::list_users (`cloudhsm-cli user list`) and check the name"
    )]
    UserNotFound {
        /// The user name.
        username: String,
        /// What the CLI said.
        message: String,
    },

    /// A user of that name already exists.
    #[error(
        "an HSM user '{username}' already exists (cloudhsm-cli: {message}); choose another name \
         or use the existing user"
    )]
    UserExists {
        /// The user name.
        username: String,
        /// What the CLI said.
        message: String,
    },

    /// No key visible to the logged-in user matches.
    #[error(
        "no {key} visible to the logged-in crypto user ({message}); a key is visible only to its \
         owner and the users it is shared with: log in as the owner and check the label or \
         reference with `cloudhsm-cli key list`"
    )]
    KeyNotFound {
        /// The key, as text.
        key: String,
        /// What the CLI said, or what was found.
        message: String,
    },

    /// More than one key matches; the command needs exactly one.
    #[error(
        "more than one key matches the {key} ({message}); select the key by its reference \
         (KeyRef::Reference, `key-reference=0x...` from `cloudhsm-cli key list`)"
    )]
    AmbiguousKey {
        /// The key, as text.
        key: String,
        /// What the CLI said, or what was found.
        message: String,
    },

    /// The credentials name AWS KMS's crypto user `kmsuser`, and that was not allowed.
    #[error(
        "refusing to log in as the crypto user '{user}': AWS KMS logs in as kmsuser for a custom \
         key store on this cluster and rotates its password every time the store connects (AWS \
         KMS developer guide, connect-keystore), so these credentials stop working at the next \
         connect. Use a crypto user of your own (create one with `tezos-hsm user create`), or pass \
         --allow-kmsuser (CloudHsmCli::allow_kmsuser) if no key store uses this cluster"
    )]
    KmsUserRefused {
        /// The user name, lower-cased.
        user: String,
    },

    /// The key is only shared with the logged-in user, who may use it but not wrap (back up,
    /// replicate, export) it.
    #[error(
        "{operation} of {key} must run as the key's owner (the crypto user that generated it: \
         {owners}), but the credentials are those of '{user}', a user the key is only shared \
         with; on CloudHSM a shared user can use a key but not wrap, export or share it (AWS docs \
         cloudhsm_cli-key-share). Run as the key's owner (the crypto user that generated it)"
    )]
    NotKeyOwner {
        /// What was attempted ("backup").
        operation: &'static str,
        /// The key, as text.
        key: String,
        /// The logged-in user.
        user: String,
        /// The key's owners, comma-separated.
        owners: String,
    },

    /// A PKCS#11 step of a procedure that also runs the CLI failed (e.g. creating the wrapping
    /// key before an admin marks it trusted).
    #[error("{0}")]
    Hsm(#[source] cryptoki_ops::Error),

    /// The CLI failed for another reason (its message says which).
    #[error("`{command}` failed: {message}")]
    CliFailed {
        /// The command (password arguments redacted).
        command: String,
        /// What the CLI said, or how it ended.
        message: String,
    },

    /// The CLI did not finish in time; it was killed.
    #[error(
        "`{command}` did not finish within {timeout:?}; it was stopped. Check that this host \
         reaches the CloudHSM cluster (`cloudhsm-cli` connects to it) and that the CLI does not \
         wait for input, or allow more time (CloudHsmCli::with_timeout; tezos-hsm \
         --cloudhsm-cli-timeout SECONDS)"
    )]
    CliTimeout {
        /// The command (password arguments redacted).
        command: String,
        /// The time it was given.
        timeout: Duration,
    },

    /// The CLI printed more than the cap on one stream; it was killed.
    #[error(
        "`{command}` printed more than {limit} bytes on its {stream}; it was stopped. The CLI's \
         answers are far smaller: check that `{command}` is the AWS CloudHSM CLI, or raise the \
         cap (CloudHsmCli::with_output_limit)"
    )]
    CliOutputTooLarge {
        /// The command (password arguments redacted).
        command: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The cap, in bytes.
        limit: usize,
    },

    /// The CLI answered something other than the JSON AWS documents.
    #[error(
        "`{command}` answered something other than the JSON cloudhsm-cli documents: {reason}; \
         check the CloudHSM CLI version (Client SDK 5)"
    )]
    BadResponse {
        /// The command (password arguments redacted).
        command: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

impl CloudHsmError {
    /// A stable, machine-readable name of the failure (snake_case), e.g. for the CLI's
    /// `{"error": {"kind", ...}}`:
    ///
    /// | Variant | Kind |
    /// |---|---|
    /// | `NotSupportedByModule` | `not_supported_by_module` |
    /// | `CliNotFound` | `cli_not_found` |
    /// | `Credentials` | the kind of the PIN-source error (`cryptoki_ops::Error::kind`), e.g. `pin_source` |
    /// | `InvalidInput` | `invalid_input` |
    /// | `WrongRole` | `wrong_role` |
    /// | `NotLoggedIn` | `not_logged_in` |
    /// | `AuthenticationFailed` | `pin_incorrect` (as a refused PKCS#11 login) |
    /// | `UserNotFound` | `user_not_found` |
    /// | `UserExists` | `user_exists` |
    /// | `KeyNotFound` | `key_not_found` |
    /// | `AmbiguousKey` | `duplicate_label` (as two PKCS#11 keys with one label) |
    /// | `CliTimeout` | `cli_timeout` |
    /// | `CliOutputTooLarge` | `cli_output_too_large` |
    /// | `KmsUserRefused` | `kmsuser_refused` |
    /// | `NotKeyOwner` | `not_key_owner` |
    /// | `Hsm` | the kind of the PKCS#11 error (`cryptoki_ops::Error::kind`) |
    /// | `CliFailed`, `BadResponse` | `cloudhsm_cli` |
    ///
    /// ```
    /// use cloudhsm_cli::CloudHsmError;
    /// let err = CloudHsmError::CliNotFound { program: "/opt/cloudhsm/bin/cloudhsm-cli".into() };
    /// assert_eq!(err.kind(), "cli_not_found");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotSupportedByModule { .. } => "not_supported_by_module",
            Self::CliNotFound { .. } => "cli_not_found",
            Self::Credentials(inner) => inner.kind(),
            Self::InvalidInput { .. } => "invalid_input",
            Self::WrongRole { .. } => "wrong_role",
            Self::NotLoggedIn { .. } => "not_logged_in",
            Self::AuthenticationFailed { .. } => "pin_incorrect",
            Self::UserNotFound { .. } => "user_not_found",
            Self::UserExists { .. } => "user_exists",
            Self::KeyNotFound { .. } => "key_not_found",
            Self::AmbiguousKey { .. } => "duplicate_label",
            Self::CliTimeout { .. } => "cli_timeout",
            Self::CliOutputTooLarge { .. } => "cli_output_too_large",
            Self::KmsUserRefused { .. } => "kmsuser_refused",
            Self::NotKeyOwner { .. } => "not_key_owner",
            Self::Hsm(inner) => inner.kind(),
            Self::CliFailed { .. } | Self::BadResponse { .. } => "cloudhsm_cli",
        }
    }

    /// The same error with every secret of `redactor` out of its text fields, and the text the
    /// CLI gave shortened. Every error of a command goes through it, so no error built from the
    /// CLI's output (its messages, its `data`, serde's messages about its `data`) can hold one.
    pub(crate) fn redacted(self, redactor: &Redactor) -> Self {
        let text = |s: String| redactor.redact(&s);
        let said = |s: String| redactor.field(&s);
        match self {
            Self::NotLoggedIn { command, message } => Self::NotLoggedIn {
                command: text(command),
                message: said(message),
            },
            Self::AuthenticationFailed {
                command,
                role,
                message,
            } => Self::AuthenticationFailed {
                command: text(command),
                role,
                message: said(message),
            },
            Self::UserNotFound { username, message } => Self::UserNotFound {
                username: text(username),
                message: said(message),
            },
            Self::UserExists { username, message } => Self::UserExists {
                username: text(username),
                message: said(message),
            },
            Self::KeyNotFound { key, message } => Self::KeyNotFound {
                key: text(key),
                message: said(message),
            },
            Self::AmbiguousKey { key, message } => Self::AmbiguousKey {
                key: text(key),
                message: said(message),
            },
            Self::CliFailed { command, message } => Self::CliFailed {
                command: text(command),
                message: said(message),
            },
            Self::BadResponse { command, reason } => Self::BadResponse {
                command: text(command),
                reason: said(reason),
            },
            Self::CliTimeout { command, timeout } => Self::CliTimeout {
                command: text(command),
                timeout,
            },
            Self::CliOutputTooLarge {
                command,
                stream,
                limit,
            } => Self::CliOutputTooLarge {
                command: text(command),
                stream,
                limit,
            },
            Self::InvalidInput { what, reason } => Self::InvalidInput {
                what,
                reason: text(reason),
            },
            other @ (Self::NotSupportedByModule { .. }
            | Self::CliNotFound { .. }
            | Self::Credentials(_)
            | Self::WrongRole { .. }
            | Self::KmsUserRefused { .. }
            | Self::NotKeyOwner { .. }
            | Self::Hsm(_)) => other,
        }
    }
}

pub(crate) fn invalid(what: &'static str, reason: String) -> CloudHsmError {
    CloudHsmError::InvalidInput { what, reason }
}

#[cfg(test)]
mod tests;
