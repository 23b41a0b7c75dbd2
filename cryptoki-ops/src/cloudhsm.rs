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
//! Failures are one enum, [`CloudHsmError`]. AWS documents the failure answer only by example —
//! `{"error_code": 1, "data": "<message>"}` (AWS docs `manage-keys-cloudhsm-cli-filtering`,
//! `quorum-auth-chsm-cli-admin`) — and not the message texts, so the variants for a missing user,
//! a missing key, a missing or refused login are recognised from the message's wording; anything
//! else is [`CloudHsmError::CliFailed`] with the CLI's own message.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::module::Module;
use crate::pin::PinSource;

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

/// Result alias of this module.
pub type Result<T, E = CloudHsmError> = std::result::Result<T, E>;

/// The role the CLI logs in with (`CLOUDHSM_ROLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliRole {
    /// `admin`: manages users (create, delete, change passwords).
    Admin,
    /// `crypto-user`: owns and uses keys; shares and unshares the keys it owns.
    CryptoUser,
}

impl CliRole {
    /// The value the CLI expects: `admin` or `crypto-user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::CryptoUser => "crypto-user",
        }
    }
}

impl fmt::Display for CliRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of an HSM user, as `user list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRole {
    /// `admin`.
    Admin,
    /// `crypto-user`.
    CryptoUser,
    /// Anything else, as reported, e.g. `internal(APPLIANCE_USER)` for the appliance user.
    Other(String),
}

impl UserRole {
    fn parse(role: &str) -> Self {
        match role {
            "admin" => Self::Admin,
            "crypto-user" => Self::CryptoUser,
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::CryptoUser => f.write_str("crypto-user"),
            Self::Other(role) => f.write_str(role),
        }
    }
}

/// One multi-factor authentication strategy of a user, e.g. `token-sign`, `enabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaStrategy {
    /// The strategy, e.g. `token-sign`.
    pub strategy: String,
    /// Its status, e.g. `enabled`.
    pub status: String,
}

/// An HSM user of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmUser {
    /// User name (CloudHSM always reports it lower-cased).
    pub username: String,
    /// Role.
    pub role: UserRole,
    /// Whether the account is locked (after too many wrong passwords; an admin unlocks it by
    /// changing its password).
    pub locked: bool,
    /// Multi-factor authentication strategies.
    pub mfa: Vec<MfaStrategy>,
    /// On how many HSMs of the cluster the user exists (`full`, or a partial value when the
    /// cluster is out of sync); `None` when the CLI did not say (a user just created).
    pub cluster_coverage: Option<String>,
}

/// Selects one key for the CLI's `--filter`.
///
/// ```
/// use cryptoki_ops::cloudhsm::KeyRef;
/// assert_eq!(KeyRef::Label("baker".into()).to_string(), "private key labelled 'baker'");
/// assert_eq!(KeyRef::Reference("0x1C0686".into()).to_string(), "key 0x1C0686");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// The private key with this label: `--filter attr.label=LABEL attr.class=private-key`.
    Label(String),
    /// A key reference as `key list` prints it (`0x` and up to 16 hex digits), for any key class:
    /// `--filter key-reference=0x...`.
    Reference(String),
}

impl KeyRef {
    /// The `--filter` values selecting this key, after checking them.
    fn filter(&self) -> Result<Vec<String>> {
        match self {
            Self::Label(label) => {
                if label.is_empty() {
                    return Err(invalid("key label", "the label is empty".into()));
                }
                if label.chars().any(char::is_control) {
                    return Err(invalid(
                        "key label",
                        "the label contains control characters".into(),
                    ));
                }
                Ok(vec![
                    format!("attr.label={label}"),
                    "attr.class=private-key".to_string(),
                ])
            }
            Self::Reference(reference) => {
                let digits = reference
                    .strip_prefix("0x")
                    .or_else(|| reference.strip_prefix("0X"))
                    .unwrap_or("");
                if digits.is_empty()
                    || digits.len() > 16
                    || !digits.chars().all(|c| c.is_ascii_hexdigit())
                {
                    return Err(invalid(
                        "key reference",
                        format!(
                            "'{reference}' is not 0x followed by 1 to 16 hex digits, as \
                             `cloudhsm-cli key list` prints it (e.g. 0x00000000001c0686)"
                        ),
                    ));
                }
                Ok(vec![format!(
                    "key-reference=0x{}",
                    digits.to_ascii_lowercase()
                )])
            }
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Label(label) => write!(f, "private key labelled '{label}'"),
            Self::Reference(reference) => write!(f, "key {reference}"),
        }
    }
}

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

    /// The credentials could not be read from their [`PinSource`].
    #[error("cannot get the CloudHSM CLI credentials: {0}")]
    Credentials(#[source] crate::Error),

    /// Input given by the caller is malformed; nothing was run.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What input.
        what: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// The command needs another role than the one this [`CloudHsmCli`] logs in with; nothing
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

    /// The CLI failed for another reason (its message says which).
    #[error("`{command}` failed: {message}")]
    CliFailed {
        /// The command (password arguments redacted).
        command: String,
        /// What the CLI said, or how it ended.
        message: String,
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

fn invalid(what: &'static str, reason: String) -> CloudHsmError {
    CloudHsmError::InvalidInput { what, reason }
}

/// AWS CloudHSM user management and key sharing, through `cloudhsm-cli` in single-command mode.
///
/// Each method runs one CLI command with the standard input closed and the output captured; the
/// credentials (`<user>:<password>`) are read from the [`PinSource`] at that moment and given to
/// the CLI only in `CLOUDHSM_PIN`. `user list` needs no login and runs without credentials.
///
/// ```no_run
/// use cryptoki_ops::cloudhsm::{CliRole, CloudHsmCli, KeyRef};
/// use cryptoki_ops::secrecy::SecretString;
/// use cryptoki_ops::{Module, ModuleSource, PinSource};
///
/// let module = Module::load(&ModuleSource::Auto)?; // /opt/cloudhsm/lib/libcloudhsm_pkcs11.so
///
/// // An admin creates a second crypto user for a standby signer.
/// let admin = CloudHsmCli::for_module(&module, "env:CLOUDHSM_ADMIN_PIN".parse()?, CliRole::Admin)?;
/// let password = SecretString::from(std::env::var("NEW_SIGNER_PASSWORD")?);
/// admin.create_crypto_user("standby_signer", &password)?;
///
/// // The key's owner (the crypto user that generated it) shares it with that user.
/// let owner = CloudHsmCli::for_module(&module, "file:/etc/tezos-hsm/owner.pin".parse()?, CliRole::CryptoUser)?;
/// let baker = KeyRef::Label("baker".into());
/// owner.share_key(&baker, "standby_signer")?;
/// println!("shared with {:?}", owner.key_shared_users(&baker)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CloudHsmCli {
    program: PathBuf,
    credentials: PinSource,
    role: CliRole,
}

/// One CLI command to run.
struct Invocation<'a> {
    /// What the caller asked for, for messages ("sharing a key").
    operation: &'static str,
    args: Vec<String>,
    /// Index in `args` of a value never to show (the new user's password).
    secret_arg: Option<usize>,
    /// Another secret to redact from the CLI's output (the new user's password).
    secret: Option<&'a SecretString>,
    /// Whether the command needs a login (credentials in the environment).
    login: bool,
    /// The user the command is about, if any.
    user: Option<&'a str>,
    /// The key the command is about, if any.
    key: Option<&'a KeyRef>,
}

impl CloudHsmCli {
    /// The CLI at [`DEFAULT_PROGRAM`] for `module`, or [`CloudHsmError::NotSupportedByModule`]
    /// when `module` is not AWS CloudHSM.
    pub fn for_module(module: &Module, credentials: PinSource, role: CliRole) -> Result<Self> {
        if !module.is_cloudhsm() {
            return Err(CloudHsmError::NotSupportedByModule {
                operation: "user management and key sharing",
                module: module.path().to_path_buf(),
            });
        }
        Ok(Self::with_program(DEFAULT_PROGRAM, credentials, role))
    }

    /// The CLI at `program` (another install path, or a stand-in in tests), whatever the module.
    pub fn with_program(
        program: impl Into<PathBuf>,
        credentials: PinSource,
        role: CliRole,
    ) -> Self {
        Self {
            program: program.into(),
            credentials,
            role,
        }
    }

    /// Path of the CLI executable.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The role the CLI logs in with.
    pub fn role(&self) -> CliRole {
        self.role
    }

    /// The users of the cluster (`user list`; no login needed).
    pub fn list_users(&self) -> Result<Vec<HsmUser>> {
        let inv = Invocation {
            operation: "listing users",
            args: args(&["user", "list"]),
            secret_arg: None,
            secret: None,
            login: false,
            user: None,
            key: None,
        };
        let (command, data) = self.run(&inv)?;
        let data: WireUserList = from_data(&command, data)?;
        data.users
            .into_iter()
            .map(|u| {
                let locked = parse_flag(&u.locked).ok_or_else(|| CloudHsmError::BadResponse {
                    command: command.clone(),
                    reason: format!("user '{}' has locked = {}", u.username, u.locked),
                })?;
                Ok(HsmUser {
                    role: UserRole::parse(&u.role),
                    locked,
                    mfa: u
                        .mfa
                        .into_iter()
                        .map(|m| MfaStrategy {
                            strategy: m.strategy,
                            status: m.status,
                        })
                        .collect(),
                    cluster_coverage: u.cluster_coverage,
                    username: u.username,
                })
            })
            .collect()
    }

    /// Creates a crypto user (`user create --role crypto-user`); needs [`CliRole::Admin`].
    ///
    /// The name is lower-cased (CloudHSM user names are not case-sensitive and always shown in
    /// lower case) and must be 1 to 31 letters, digits or underscores; the password must be 8 to
    /// 32 characters. Both are checked before the CLI runs.
    ///
    /// The CLI takes the new password only as `--password` (or from a terminal prompt, which a
    /// program cannot answer), so it is visible in the process list while the command runs; it is
    /// never logged and never put into an error. Change it interactively
    /// (`cloudhsm-cli user change-password`) if that exposure matters.
    pub fn create_crypto_user(&self, username: &str, password: &SecretString) -> Result<HsmUser> {
        self.require_role("creating a crypto user", CliRole::Admin)?;
        let username = check_username(username)?;
        check_password(password)?;
        let mut argv = args(&["user", "create", "--username"]);
        argv.push(username.clone());
        argv.extend(args(&["--role", "crypto-user", "--password"]));
        argv.push(password.expose_secret().to_string());
        let inv = Invocation {
            operation: "creating a crypto user",
            secret_arg: Some(argv.len() - 1),
            args: argv,
            secret: Some(password),
            login: true,
            user: Some(&username),
            key: None,
        };
        let (command, data) = self.run(&inv)?;
        let created: WireCreatedUser = from_data(&command, data)?;
        if created.username != username {
            return Err(CloudHsmError::BadResponse {
                command,
                reason: format!(
                    "it reports creating user '{}' instead of '{username}'",
                    created.username
                ),
            });
        }
        Ok(HsmUser {
            username: created.username,
            role: UserRole::parse(&created.role),
            locked: false,
            mfa: Vec::new(),
            cluster_coverage: None,
        })
    }

    /// Shares `key` with the crypto user `username` (`key share`); needs [`CliRole::CryptoUser`]
    /// with the credentials of the key's owner. The user can then use the key but not delete,
    /// export, share, unshare, derive from or wrap it.
    pub fn share_key(&self, key: &KeyRef, username: &str) -> Result<()> {
        self.share_or_unshare("share", "sharing a key", key, username)
    }

    /// Stops sharing `key` with the crypto user `username` (`key unshare`); needs
    /// [`CliRole::CryptoUser`] with the credentials of the key's owner.
    pub fn unshare_key(&self, key: &KeyRef, username: &str) -> Result<()> {
        self.share_or_unshare("unshare", "unsharing a key", key, username)
    }

    /// The users `key` is shared with (`key list --filter ... --verbose`, `shared-users`); needs
    /// [`CliRole::CryptoUser`] (the owner, or a user the key is shared with).
    pub fn key_shared_users(&self, key: &KeyRef) -> Result<Vec<String>> {
        const OPERATION: &str = "listing the users a key is shared with";
        self.require_role(OPERATION, CliRole::CryptoUser)?;
        let mut argv = args(&["key", "list", "--filter"]);
        argv.extend(key.filter()?);
        argv.push("--verbose".to_string());
        let inv = Invocation {
            operation: OPERATION,
            args: argv,
            secret_arg: None,
            secret: None,
            login: true,
            user: None,
            key: Some(key),
        };
        let (command, data) = self.run(&inv)?;
        let list: WireKeyList = from_data(&command, data)?;
        let matched = list.matched_keys.len() as u64;
        let total = list.total_key_count.unwrap_or(matched).max(matched);
        let mut keys = list.matched_keys.into_iter();
        let found = match (keys.next(), total) {
            (Some(found), 1) => found,
            (None, _) | (_, 0) => {
                return Err(CloudHsmError::KeyNotFound {
                    key: key.to_string(),
                    message: "`key list` matched no key".to_string(),
                })
            }
            (Some(_), _) => {
                return Err(CloudHsmError::AmbiguousKey {
                    key: key.to_string(),
                    message: format!("`key list` matched {total} keys"),
                })
            }
        };
        let info = found.key_info.ok_or_else(|| CloudHsmError::BadResponse {
            command: command.clone(),
            reason: format!("key {} has no key-info", found.key_reference),
        })?;
        Ok(info.shared_users.into_iter().map(|u| u.username).collect())
    }

    fn share_or_unshare(
        &self,
        verb: &'static str,
        operation: &'static str,
        key: &KeyRef,
        username: &str,
    ) -> Result<()> {
        self.require_role(operation, CliRole::CryptoUser)?;
        let username = check_username(username)?;
        let mut argv = args(&["key", verb, "--filter"]);
        argv.extend(key.filter()?);
        argv.push("--username".to_string());
        argv.push(username.clone());
        argv.extend(args(&["--role", "crypto-user"]));
        let inv = Invocation {
            operation,
            args: argv,
            secret_arg: None,
            secret: None,
            login: true,
            user: Some(&username),
            key: Some(key),
        };
        // Success is `{"error_code": 0, "data": {"message": "Key shared successfully"}}` (AWS docs
        // `cloudhsm_cli-key-share`; "Key unshared successfully", `cloudhsm_cli-key-unshare`);
        // error_code 0 is what counts, the wording is not checked.
        self.run(&inv).map(|_| ())
    }

    fn require_role(&self, operation: &'static str, needed: CliRole) -> Result<()> {
        if self.role == needed {
            Ok(())
        } else {
            Err(CloudHsmError::WrongRole {
                operation,
                needed,
                current: self.role,
            })
        }
    }

    /// The command line as shown in messages: program name and arguments, secret redacted.
    fn describe(&self, inv: &Invocation<'_>) -> String {
        let program = self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut text = program;
        for (i, arg) in inv.args.iter().enumerate() {
            text.push(' ');
            if inv.secret_arg == Some(i) {
                text.push_str(REDACTED);
            } else {
                text.push_str(arg);
            }
        }
        text
    }

    /// Runs the command; on success returns its description and the answer's `data`.
    fn run(&self, inv: &Invocation<'_>) -> Result<(String, Value)> {
        let command = self.describe(inv);
        let pin = if inv.login {
            let pin = self
                .credentials
                .resolve()
                .map_err(CloudHsmError::Credentials)?;
            match pin.expose_secret().split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => {}
                _ => {
                    return Err(invalid(
                        "CloudHSM credentials",
                        format!(
                            "{} must give `<user>:<password>` (the user name, a colon, then the \
                             password)",
                            self.credentials
                        ),
                    ))
                }
            }
            Some(pin)
        } else {
            None
        };
        let mut secrets: Vec<&str> = Vec::new();
        if let Some(pin) = &pin {
            let pin = pin.expose_secret();
            secrets.push(pin);
            if let Some((_, password)) = pin.split_once(':') {
                secrets.push(password);
            }
        }
        if let Some(secret) = inv.secret {
            secrets.push(secret.expose_secret());
        }

        let mut cmd = Command::new(&self.program);
        cmd.args(&inv.args)
            .env_remove(ROLE_ENV)
            .env_remove(PIN_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(pin) = &pin {
            cmd.env(ROLE_ENV, self.role.as_str())
                .env(PIN_ENV, pin.expose_secret());
        }
        let output = cmd.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CloudHsmError::CliNotFound {
                    program: self.program.clone(),
                }
            } else {
                CloudHsmError::CliFailed {
                    command: command.clone(),
                    message: format!("cannot start it while {}: {e}", inv.operation),
                }
            }
        })?;
        drop(cmd); // holds a copy of the PIN in its environment

        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match parse_envelope(&stdout) {
            Ok(Some(envelope)) if envelope.error_code == 0 => {
                if output.status.success() {
                    Ok((command, envelope.data))
                } else {
                    Err(CloudHsmError::CliFailed {
                        message: format!(
                            "it reported success but exited with {}{}",
                            output.status,
                            first_line(&stderr, &secrets)
                                .map(|l| format!(": {l}"))
                                .unwrap_or_default()
                        ),
                        command,
                    })
                }
            }
            Ok(Some(envelope)) => {
                let message = redact(&message_text(&envelope.data), &secrets);
                Err(self.classify(inv, command, envelope.error_code, message))
            }
            Ok(None) | Err(_) if !output.status.success() => {
                let said = first_line(&stderr, &secrets)
                    .or_else(|| first_line(&stdout, &secrets))
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                Err(CloudHsmError::CliFailed {
                    command,
                    message: format!("it exited with {}{said}", output.status),
                })
            }
            Ok(None) => Err(CloudHsmError::BadResponse {
                command,
                reason: match first_line(&stdout, &secrets) {
                    Some(line) => format!("no JSON object in its output (it printed: {line})"),
                    None => "it printed nothing".to_string(),
                },
            }),
            Err(reason) => Err(CloudHsmError::BadResponse {
                command,
                reason: redact(&reason, &secrets),
            }),
        }
    }

    /// Turns a failure answer (`error_code` ≠ 0) into a typed error, from the message's wording
    /// (AWS does not document error codes or messages beyond a few examples).
    fn classify(
        &self,
        inv: &Invocation<'_>,
        command: String,
        error_code: i64,
        message: String,
    ) -> CloudHsmError {
        let lower = message.to_ascii_lowercase();
        let not_found = [
            "not found",
            "does not exist",
            "doesn't exist",
            "unable to find",
            "could not find",
            "cannot find",
            "no such",
        ]
        .iter()
        .any(|p| lower.contains(p));
        let matched = matched_key_count(&lower);
        if let Some(key) = inv.key {
            // "Key selection criteria matched 48 keys. Refine selection criteria to select a
            // single key." (AWS docs `manage-keys-cloudhsm-cli-filtering`)
            if matched.is_some_and(|n| n > 1) {
                return CloudHsmError::AmbiguousKey {
                    key: key.to_string(),
                    message,
                };
            }
            if matched == Some(0)
                || (lower.contains("key") && not_found)
                || lower.contains("no matching key")
                || lower.contains("no keys matched")
            {
                return CloudHsmError::KeyNotFound {
                    key: key.to_string(),
                    message,
                };
            }
        }
        if let Some(user) = inv.user {
            if lower.contains("already exists") {
                return CloudHsmError::UserExists {
                    username: user.to_string(),
                    message,
                };
            }
            if lower.contains("user") && not_found {
                return CloudHsmError::UserNotFound {
                    username: user.to_string(),
                    message,
                };
            }
        }
        if [
            "not logged in",
            "no user logged in",
            "no user is logged in",
            "login required",
            "must be logged in",
            "must log in",
            "not authenticated",
        ]
        .iter()
        .any(|p| lower.contains(p))
        {
            return CloudHsmError::NotLoggedIn { command, message };
        }
        if [
            "incorrect credentials",
            "incorrect password",
            "invalid credentials",
            "authentication failed",
            "authentication failure",
            "login failed",
            "failed to login",
            "failed to log in",
            "unauthorized",
            "locked",
        ]
        .iter()
        .any(|p| lower.contains(p))
        {
            return CloudHsmError::AuthenticationFailed {
                command,
                role: self.role,
                message,
            };
        }
        CloudHsmError::CliFailed {
            command,
            message: format!("error_code {error_code}: {message}"),
        }
    }
}

const REDACTED: &str = "[REDACTED]";

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// Checks a user name as CloudHSM defines it and lower-cases it (AWS docs
/// `cloudhsm_cli-user-create`: at most 31 characters, `_` the only special character, not
/// case-sensitive, always displayed in lower case).
fn check_username(username: &str) -> Result<String> {
    let bad = |reason: String| invalid("HSM user name", reason);
    if username.is_empty() {
        return Err(bad("the name is empty".into()));
    }
    if username.chars().count() > MAX_USERNAME_LEN {
        return Err(bad(format!(
            "'{username}' is longer than {MAX_USERNAME_LEN} characters"
        )));
    }
    if let Some(c) = username
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(bad(format!(
            "'{username}' contains {c:?}; only letters, digits and '_' are allowed"
        )));
    }
    Ok(username.to_ascii_lowercase())
}

/// Checks a new user's password length (AWS docs `limits`: 8 to 32 characters).
fn check_password(password: &SecretString) -> Result<()> {
    let password = password.expose_secret();
    let len = password.chars().count();
    if !PASSWORD_LEN.contains(&len) {
        return Err(invalid(
            "password",
            format!(
                "it has {len} characters; CloudHSM passwords have {} to {}",
                PASSWORD_LEN.start(),
                PASSWORD_LEN.end()
            ),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(invalid(
            "password",
            "it contains control characters (a newline?)".into(),
        ));
    }
    Ok(())
}

/// The answer envelope: `{"error_code": 0, "data": ...}` on success (every `cloudhsm_cli-*` page),
/// `{"error_code": 1, "data": "<message>"}` on failure (AWS docs
/// `manage-keys-cloudhsm-cli-filtering`, `quorum-auth-chsm-cli-admin`).
#[derive(Deserialize)]
struct Envelope {
    error_code: i64,
    #[serde(default)]
    data: Value,
}

/// `user list` (AWS docs `cloudhsm_cli-user-list`):
///
/// ```json
/// {"error_code": 0, "data": {"users": [
///   {"username": "admin", "role": "admin", "locked": "false", "mfa": [], "cluster-coverage": "full"},
///   {"username": "app_user", "role": "internal(APPLIANCE_USER)", "locked": "false",
///    "mfa": [{"strategy": "token-sign", "status": "enabled"}], "cluster-coverage": "full"}]}}
/// ```
#[derive(Deserialize)]
struct WireUserList {
    users: Vec<WireUser>,
}

#[derive(Deserialize)]
struct WireUser {
    username: String,
    role: String,
    /// A string, `"false"`, in the documented sample; a JSON boolean is accepted too.
    #[serde(default)]
    locked: Value,
    #[serde(default)]
    mfa: Vec<WireMfa>,
    #[serde(rename = "cluster-coverage", default)]
    cluster_coverage: Option<String>,
}

#[derive(Deserialize)]
struct WireMfa {
    strategy: String,
    status: String,
}

/// `user create` (AWS docs `cloudhsm_cli-user-create`):
/// `{"error_code": 0, "data": {"username": "alice", "role": "crypto-user"}}`.
#[derive(Deserialize)]
struct WireCreatedUser {
    username: String,
    role: String,
}

/// `key list --verbose` (AWS docs `cloudhsm_cli-key-list`, `manage-keys-cloudhsm-cli-filtering`):
///
/// ```json
/// {"error_code": 0, "data": {"matched_keys": [{"key-reference": "0x00000000001c0686",
///   "key-info": {"key-owners": [{"username": "cu1", "key-coverage": "full"}],
///                "shared-users": [{"username": "alice", "key-coverage": "full"}], ...},
///   "attributes": {"label": "...", "class": "private-key", ...}}],
///  "total_key_count": 1, "returned_key_count": 1}}
/// ```
#[derive(Deserialize)]
struct WireKeyList {
    matched_keys: Vec<WireKey>,
    #[serde(default)]
    total_key_count: Option<u64>,
}

#[derive(Deserialize)]
struct WireKey {
    #[serde(rename = "key-reference", default)]
    key_reference: String,
    #[serde(rename = "key-info", default)]
    key_info: Option<WireKeyInfo>,
}

#[derive(Deserialize)]
struct WireKeyInfo {
    #[serde(rename = "shared-users", default)]
    shared_users: Vec<WireKeyUser>,
}

#[derive(Deserialize)]
struct WireKeyUser {
    username: String,
}

fn from_data<T: for<'de> Deserialize<'de>>(command: &str, data: Value) -> Result<T> {
    serde_json::from_value(data).map_err(|e| CloudHsmError::BadResponse {
        command: command.to_string(),
        reason: format!("unexpected data: {e}"),
    })
}

/// The first JSON object in `stdout` (the CLI may print prompts before it), as an envelope.
fn parse_envelope(stdout: &str) -> std::result::Result<Option<Envelope>, String> {
    let Some(start) = stdout.find('{') else {
        return Ok(None);
    };
    match serde_json::Deserializer::from_str(&stdout[start..])
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(value)) => serde_json::from_value::<Envelope>(value)
            .map(Some)
            .map_err(|e| format!("its JSON is not {{\"error_code\": N, \"data\": ...}}: {e}")),
        Some(Err(e)) => Err(format!("its output is not valid JSON: {e}")),
        None => Ok(None),
    }
}

/// A failure's `data`: a message string as documented, else the JSON itself.
fn message_text(data: &Value) -> String {
    let text = match data {
        Value::String(s) => s.clone(),
        Value::Null => "no message".to_string(),
        other => other.to_string(),
    };
    truncate(text.trim())
}

/// `locked`: `"false"`/`"true"` as documented, or a JSON boolean.
fn parse_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Null => Some(false),
        _ => None,
    }
}

/// N in "... matched N keys ..." (lower-cased text).
fn matched_key_count(lower: &str) -> Option<u64> {
    let rest = &lower[lower.find("matched ")? + "matched ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].trim_start();
    if digits.is_empty() || !after.starts_with("key") {
        return None;
    }
    digits.parse().ok()
}

/// The first non-empty line, redacted and shortened.
fn first_line(text: &str, secrets: &[&str]) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| truncate(&redact(l, secrets)))
}

/// Replaces every secret (PIN, password) in `text` by `[REDACTED]`.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    // Longest first, so the whole PIN is replaced before its password part.
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_aws_rules() {
        assert_eq!(check_username("Signer_2").unwrap(), "signer_2");
        assert_eq!(check_username(&"a".repeat(31)).unwrap(), "a".repeat(31));
        assert!(check_username(&"a".repeat(32)).is_err());
        assert!(check_username("").is_err());
        assert!(check_username("bob-1").is_err());
        assert!(check_username("bob smith").is_err());
        assert!(check_username("émile").is_err());
    }

    #[test]
    fn passwords_are_8_to_32_characters() {
        assert!(check_password(&SecretString::from("1234567")).is_err());
        assert!(check_password(&SecretString::from("12345678")).is_ok());
        assert!(check_password(&SecretString::from("x".repeat(32))).is_ok());
        assert!(check_password(&SecretString::from("x".repeat(33))).is_err());
        assert!(check_password(&SecretString::from("pass\nword")).is_err());
        let err = check_password(&SecretString::from("short")).unwrap_err();
        assert!(!err.to_string().contains("short"));
    }

    #[test]
    fn key_filters() {
        assert_eq!(
            KeyRef::Label("baker key".into()).filter().unwrap(),
            ["attr.label=baker key", "attr.class=private-key"]
        );
        assert_eq!(
            KeyRef::Reference("0X00000000001C0686".into())
                .filter()
                .unwrap(),
            ["key-reference=0x00000000001c0686"]
        );
        for bad in ["", "0x", "1c0686", "0x12345678901234567", "0xzz"] {
            assert!(KeyRef::Reference(bad.into()).filter().is_err(), "{bad}");
        }
        assert!(KeyRef::Label(String::new()).filter().is_err());
        assert!(KeyRef::Label("a\nb".into()).filter().is_err());
    }

    #[test]
    fn envelope_parsing() {
        // AWS docs `manage-keys-cloudhsm-cli-filtering` ("Filtration Errors").
        let failure = r#"{
  "error_code": 1,
  "data": "Key selection criteria matched 48 keys. Refine selection criteria to select a single key."
}"#;
        let envelope = parse_envelope(failure).unwrap().unwrap();
        assert_eq!(envelope.error_code, 1);
        let message = message_text(&envelope.data);
        assert_eq!(matched_key_count(&message.to_ascii_lowercase()), Some(48));
        // A prompt before the JSON, as in AWS docs `cloudhsm_cli-user-create`.
        let prompted = "Enter password:\nConfirm password:\n{\"error_code\": 0, \"data\": {\"username\": \"alice\", \"role\": \"crypto-user\"}}";
        assert_eq!(parse_envelope(prompted).unwrap().unwrap().error_code, 0);
        assert!(parse_envelope("no json here").unwrap().is_none());
        assert!(parse_envelope("{\"data\": 1}").is_err());
        assert!(parse_envelope("{\"error_code\": 0,").is_err());
    }

    #[test]
    fn matched_counts() {
        assert_eq!(matched_key_count("criteria matched 0 keys."), Some(0));
        assert_eq!(matched_key_count("matched 1 key"), Some(1));
        assert_eq!(matched_key_count("matched the user"), None);
        assert_eq!(matched_key_count("nothing"), None);
    }

    #[test]
    fn redaction_replaces_whole_pin_then_password() {
        let secrets = ["cu1:Passw0rd!", "Passw0rd!"];
        assert_eq!(
            redact("bad cu1:Passw0rd! or Passw0rd!", &secrets),
            "bad [REDACTED] or [REDACTED]"
        );
        assert_eq!(redact("nothing secret", &secrets), "nothing secret");
    }

    #[test]
    fn locked_flag() {
        assert_eq!(parse_flag(&Value::String("false".into())), Some(false));
        assert_eq!(parse_flag(&Value::String("true".into())), Some(true));
        assert_eq!(parse_flag(&Value::Bool(true)), Some(true));
        assert_eq!(parse_flag(&Value::String("maybe".into())), None);
    }
}
