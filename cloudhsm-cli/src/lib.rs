//! AWS CloudHSM user management and key sharing, through the CloudHSM CLI.
//!
//! On AWS CloudHSM, creating users and sharing a key with another crypto user are not PKCS#11
//! operations: they go through the CloudHSM CLI, `/opt/cloudhsm/bin/cloudhsm-cli` (AWS docs
//! `manage-keys-cloudhsm-cli-share`, `cloudhsm_cli-key-share`). [`CloudHsmCli`] runs it in
//! *single-command mode* (AWS docs `cloudhsm_cli-modes`): one process per command, credentials in
//! the environment variables `CLOUDHSM_ROLE` and `CLOUDHSM_PIN=<user>:<password>`, answer as JSON
//! `{"error_code": 0, "data": ...}` on standard output.
//!
//! * The credentials come from the same [`PinSource`]s as the PKCS#11 login (on CloudHSM the PKCS#11
//!   PIN is also `<crypto user>:<password>`). They are resolved when a command runs, passed only in
//!   the child's environment — never on its command line — and never put into an error.
//! * Who runs what: a key is shared, unshared and inspected by its **owner**, a crypto user
//!   ([`CliRole::CryptoUser`]); users are created by an **admin** ([`CliRole::Admin`]). A command
//!   run with the wrong role is refused before the CLI is started ([`CloudHsmError::WrongRole`]).
//! * With any module other than CloudHSM, [`CloudHsmCli::for_module`] answers
//!   [`CloudHsmError::NotSupportedByModule`].
//!
//! Failures are one enum, [`CloudHsmError`], with a stable [`CloudHsmError::kind`]. AWS documents
//! the failure answer only by example — `{"error_code": 1, "data": "<message>"}` (AWS docs
//! `manage-keys-cloudhsm-cli-filtering`, `quorum-auth-chsm-cli-admin`) — and not the message
//! texts, so the variants for a missing user, a missing key, a missing or refused login are
//! recognised from the message's wording; anything else is [`CloudHsmError::CliFailed`] with the
//! CLI's own message.
//!
//! * Beyond users and sharing: an admin marks a key trusted ([`CloudHsmCli::set_trusted`], `key
//!   set-attribute`), the whole trusted-wrapping-key procedure is [`create_trusted_wrapping_key`],
//!   keys come with their owner, shared users and coverage ([`CloudHsmCli::list_keys`],
//!   [`KeyListing`]), [`CloudHsmCli::require_owner`] checks ownership before a wrap,
//!   [`CloudHsmCli::with_cluster_id`] names the cluster, and credentials naming AWS KMS's
//!   `kmsuser` are refused unless [`CloudHsmCli::allow_kmsuser`].
//!
//! The modules: [`client`] (the API), [`error`], [`types`] (roles, users, key references),
//! [`keys`] (keys with owners and coverage), [`trusted`] (the trusted-wrapping-key procedure), and,
//! private, `input` (checks of names and passwords), `wire` (the CLI's JSON), `classify` (failure
//! messages to variants), `redact` (secrets out of everything the CLI prints) and `runner` (the
//! child process).
//!
//! [`PinSource`]: cryptoki_ops::PinSource

use std::ops::RangeInclusive;
use std::time::Duration;

mod classify;
pub mod client;
pub mod error;
mod input;
pub mod keys;
mod redact;
mod runner;
pub mod trusted;
pub mod types;
mod wire;

pub use client::{is_kms_user, CloudHsmCli, KMS_USER};
pub use error::CloudHsmError;
pub use keys::{KeyListing, KeyUser, FULL_COVERAGE};
pub use trusted::{create_trusted_wrapping_key, TrustedWrappingKey};
pub use types::{CliRole, HsmUser, KeyRef, MfaStrategy, UserRole};

/// Where AWS installs the CloudHSM CLI (AWS docs `cloudhsm_cli-modes`).
pub const DEFAULT_PROGRAM: &str = "/opt/cloudhsm/bin/cloudhsm-cli";
/// Environment variable giving the CLI the role to log in with, in single-command mode.
pub const ROLE_ENV: &str = "CLOUDHSM_ROLE";
/// Environment variable giving the CLI `<user>:<password>`, in single-command mode.
pub const PIN_ENV: &str = "CLOUDHSM_PIN";
/// Longest user name CloudHSM accepts (AWS docs `cloudhsm_cli-user-create`, `limits`).
pub const MAX_USERNAME_LEN: usize = 31;
/// Password lengths CloudHSM accepts (AWS docs `limits`).
pub const PASSWORD_LEN: RangeInclusive<usize> = 8..=32;

/// How long one CLI command may run, unless [`CloudHsmCli::with_timeout`] says otherwise: past
/// it the CLI is killed and the call fails with [`CloudHsmError::CliTimeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many bytes the CLI may print on each of its standard output and error, unless
/// [`CloudHsmCli::with_output_limit`] says otherwise (4 MiB; a `key list --verbose` of one key is
/// about 2 KiB): past it the CLI is killed and the call fails with
/// [`CloudHsmError::CliOutputTooLarge`].
pub const DEFAULT_OUTPUT_LIMIT: usize = 4 << 20;

/// Result alias of this crate.
pub type Result<T, E = CloudHsmError> = std::result::Result<T, E>;
