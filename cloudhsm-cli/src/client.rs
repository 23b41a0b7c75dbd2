//! [`CloudHsmCli`]: the API, one method per CLI command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cryptoki_ops::module::Module;
use cryptoki_ops::pin::PinSource;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::{invalid, CloudHsmError};
use crate::input::{check_password, check_username};
use crate::keys::KeyListing;
use crate::types::{CliRole, HsmUser, KeyRef};
use crate::wire::{read_created_user, read_key_page, read_one_key, read_shared_users, read_users};
use crate::{Result, DEFAULT_OUTPUT_LIMIT, DEFAULT_PROGRAM, DEFAULT_TIMEOUT};

/// AWS CloudHSM user management and key sharing, through `cloudhsm-cli` in single-command mode.
///
/// Each method runs one CLI command with the standard input closed and the output captured, under
/// a deadline ([`with_timeout`](Self::with_timeout), 30 s by default) and an output cap
/// ([`with_output_limit`](Self::with_output_limit), 4 MiB); the credentials
/// (`<user>:<password>`) are read from the [`PinSource`] at that moment and given to the CLI
/// only in `CLOUDHSM_PIN`. `user list` needs no login and runs without credentials.
///
/// ```no_run
/// use cloudhsm_cli::{CliRole, CloudHsmCli, KeyRef};
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
    timeout: Duration,
    output_limit: usize,
    cluster_id: Option<String>,
    allow_kmsuser: bool,
}

/// The crypto user AWS KMS logs in as for a custom key store; KMS rotates its password on every
/// connect (AWS KMS developer guide `connect-keystore`, `create-keystore`).
pub const KMS_USER: &str = "kmsuser";

mod invoke;
pub(crate) use invoke::Invocation;

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
            timeout: DEFAULT_TIMEOUT,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            cluster_id: None,
            allow_kmsuser: false,
        }
    }

    /// The same CLI, every command run against the cluster `cluster_id` (`--cluster-id`), which
    /// the CLI requires once it is configured for more than one cluster (AWS docs
    /// `cloudhsm_cli-user-list`, `cloudhsm_cli-key-share`: "Required: if multiple clusters have
    /// been configured"). The id is `cluster-` and lower-case letters and digits, as AWS shows
    /// it (`cluster-jxhlf7644ne`).
    pub fn with_cluster_id(mut self, cluster_id: &str) -> Result<Self> {
        let valid = cluster_id.strip_prefix("cluster-").is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 32
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
        if !valid {
            return Err(invalid(
                "cluster id",
                format!(
                    "'{cluster_id}' is not a CloudHSM cluster id: `cluster-` followed by lower-case \
                     letters and digits, as `aws cloudhsmv2 describe-clusters` shows it"
                ),
            ));
        }
        self.cluster_id = Some(cluster_id.to_string());
        Ok(self)
    }

    /// The cluster every command names with `--cluster-id`, if set.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The same CLI, allowed (`true`) or not (`false`, the default) to log in as the crypto user
    /// [`KMS_USER`]. AWS KMS logs in as `kmsuser` for a custom key store on the cluster and
    /// rotates its password every time the store connects (AWS KMS developer guide
    /// `connect-keystore`), so credentials naming it stop working at the next connect; they
    /// are refused ([`CloudHsmError::KmsUserRefused`]) unless allowed here.
    pub fn allow_kmsuser(mut self, allow: bool) -> Self {
        self.allow_kmsuser = allow;
        self
    }

    /// The same CLI, each command stopped (killed) when it has not finished within `timeout`
    /// ([`CloudHsmError::CliTimeout`]); the default is [`DEFAULT_TIMEOUT`], 30 s. The time counts
    /// from the start of the process to its exit and the end of its output.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same CLI, each command stopped (killed) when it prints more than `limit` bytes on its
    /// standard output or on its standard error ([`CloudHsmError::CliOutputTooLarge`]); the
    /// default is [`DEFAULT_OUTPUT_LIMIT`], 4 MiB.
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }

    /// How long a command may run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many bytes a command may print on each of its standard output and error.
    pub fn output_limit(&self) -> usize {
        self.output_limit
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
        self.call(&inv, read_users)
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
        self.call(&inv, |command, data| {
            read_created_user(command, data, &username)
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
        self.list_one_key(
            "listing the users a key is shared with",
            key,
            |command, data| read_shared_users(command, data, key),
        )
    }

    /// The one key `key` selects, with its reference, owner, shared users and coverage (`key list
    /// --filter ... --verbose`); needs [`CliRole::CryptoUser`] (the owner, or a user the key is
    /// shared with: AWS docs `cloudhsm_cli-key-list`).
    pub fn key_listing(&self, key: &KeyRef) -> Result<KeyListing> {
        self.list_one_key(
            "reading a key's owner, users and coverage",
            key,
            |command, data| read_one_key(command, data, key),
        )
    }

    /// Runs `key list --filter <key> --verbose` as a crypto user and reads its answer with
    /// `read`: the one command behind [`Self::key_shared_users`] and [`Self::key_listing`].
    fn list_one_key<T>(
        &self,
        operation: &'static str,
        key: &KeyRef,
        read: impl FnOnce(&str, Value) -> Result<T>,
    ) -> Result<T> {
        self.require_role(operation, CliRole::CryptoUser)?;
        let mut argv = args(&["key", "list", "--filter"]);
        argv.extend(key.filter()?);
        argv.push("--verbose".to_string());
        let inv = Invocation {
            operation,
            args: argv,
            secret_arg: None,
            secret: None,
            login: true,
            user: None,
            key: Some(key),
        };
        self.call(&inv, read)
    }

    /// Every key the logged-in user owns or shares, and every public key of the cluster (`key
    /// list --verbose`, read page by page: AWS docs `cloudhsm_cli-key-list`, at most
    /// `--max-items` per answer, the rest from `--starting-token`). What
    /// [`KeyListing::incomplete_coverage`] checks.
    pub fn list_keys(&self) -> Result<Vec<KeyListing>> {
        const OPERATION: &str = "listing keys";
        /// More pages than this means the CLI keeps answering a next token: stop.
        const MAX_PAGES: usize = 1000;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut argv = args(&["key", "list", "--verbose", "--max-items", "100"]);
            if let Some(token) = token.take() {
                argv.push("--starting-token".to_string());
                argv.push(token);
            }
            let inv = Invocation {
                operation: OPERATION,
                args: argv,
                secret_arg: None,
                secret: None,
                login: true,
                user: None,
                key: None,
            };
            let (page, next) = self.call(&inv, read_key_page)?;
            keys.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
        Err(CloudHsmError::BadResponse {
            command: "key list --verbose".to_string(),
            reason: format!("it still had more keys after {MAX_PAGES} pages"),
        })
    }

    /// Marks `key` trusted (`trusted = true`) or not (`key set-attribute --filter
    /// key-reference=0x... --name trusted --value true`); needs [`CliRole::Admin`]. On CloudHSM
    /// only an admin can set `CKA_TRUSTED`, and only through this CLI command, on a key a crypto
    /// user owns (AWS docs `modify-attr`, `key_attribute_background`, `cloudhsm_cli-key-set-attribute`).
    /// Select the key by [`KeyRef::Reference`]: the admin does not own it.
    pub fn set_trusted(&self, key: &KeyRef, trusted: bool) -> Result<()> {
        const OPERATION: &str = "marking a key trusted";
        self.require_role(OPERATION, CliRole::Admin)?;
        let mut argv = args(&["key", "set-attribute", "--filter"]);
        argv.extend(key.filter()?);
        argv.extend(args(&["--name", "trusted", "--value"]));
        argv.push(trusted.to_string());
        let inv = Invocation {
            operation: OPERATION,
            args: argv,
            secret_arg: None,
            secret: None,
            login: true,
            user: None,
            key: Some(key),
        };
        // Success: `{"error_code": 0, "data": {"message": "Attribute set successfully"}}` (AWS
        // docs `cloudhsm_cli-key-set-attribute`); error_code 0 is what counts.
        self.call(&inv, |_, _| Ok(()))
    }

    /// Checks that the logged-in crypto user owns `key`, before `operation` (a backup, a
    /// replication, an export) wraps it: on CloudHSM only the owner may wrap a key, a user it is
    /// shared with may not (AWS docs `cloudhsm_cli-key-share`, `manage-keys-cloudhsm-cli-share`).
    /// Fails with [`CloudHsmError::NotKeyOwner`], naming the owner, when the user is not.
    pub fn require_owner(&self, key: &KeyRef, operation: &'static str) -> Result<KeyListing> {
        let listing = self.key_listing(key)?;
        let user = self.username()?;
        if listing.is_owned_by(&user) {
            return Ok(listing);
        }
        let owners: Vec<&str> = listing.owners.iter().map(|o| o.username.as_str()).collect();
        Err(CloudHsmError::NotKeyOwner {
            operation,
            key: key.to_string(),
            user,
            owners: if owners.is_empty() {
                "not reported".to_string()
            } else {
                owners.join(", ")
            },
        })
    }

    /// The user name of the credentials (`<user>` of `<user>:<password>`), lower-cased.
    pub fn username(&self) -> Result<String> {
        let pin = self.login_pin()?;
        let user = pin
            .expose_secret()
            .split_once(':')
            .map(|(user, _)| user.to_ascii_lowercase())
            .unwrap_or_default();
        Ok(user)
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
        self.call(&inv, |_, _| Ok(()))
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
}

/// Whether a user name is AWS KMS's crypto user (CloudHSM user names are not case-sensitive).
pub fn is_kms_user(username: &str) -> bool {
    username.eq_ignore_ascii_case(KMS_USER)
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}
