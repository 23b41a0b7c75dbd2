//! `user list`, `user create` (and the CloudHSM CLI access `key share`/`key unshare` use): CloudHSM
//! users and key sharing, which are not PKCS#11 operations and go through `cloudhsm-cli` (see
//! the `cloudhsm-cli` crate). Any other module answers "not supported by this module".

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use cloudhsm_cli::{CliRole, CloudHsmCli};
use cryptoki_ops::{Module, ModuleSource, PinSource};
use serde::Serialize;

use super::{Output, Rendered};
use crate::cli::{GlobalArgs, UserCommand};
use crate::error::CliError;
use crate::text::Escaped;

/// Where the CloudHSM CLI runs and with which credentials.
pub struct Users<'a> {
    /// The configured module (`None`: the local SoftHSM2 store).
    pub module: Option<&'a PathBuf>,
    /// `--pin`, else `TEZOS_HSM_PIN`: `<user>:<password>` of the crypto user or admin.
    pub credentials: PinSource,
    /// `--cloudhsm-cli`, for a CLI installed elsewhere.
    pub program: Option<&'a PathBuf>,
    /// `--cloudhsm-cli-timeout`, else the crate's default (30 s).
    pub timeout: Option<Duration>,
    /// `--cluster-id`.
    pub cluster_id: Option<&'a str>,
    /// `--allow-kmsuser`.
    pub allow_kmsuser: bool,
    /// `--admin-pin`, else `--so-pin`: an admin's `<user>:<password>`.
    pub admin_credentials: Option<PinSource>,
}

impl<'a> Users<'a> {
    /// The CloudHSM CLI access the global arguments describe.
    pub fn new(globals: &'a GlobalArgs) -> Self {
        Self {
            module: globals.module.as_ref(),
            credentials: globals
                .pin
                .clone()
                .unwrap_or_else(|| PinSource::Env("TEZOS_HSM_PIN".into())),
            program: globals.cloudhsm_cli.as_ref(),
            timeout: globals.cloudhsm_cli_timeout.map(Duration::from_secs),
            cluster_id: globals.cluster_id.as_deref(),
            allow_kmsuser: globals.allow_kmsuser,
            admin_credentials: globals.admin_pin.clone().or_else(|| globals.so_pin.clone()),
        }
    }

    /// The CloudHSM CLI, run as `role` with the credentials of --pin.
    pub fn cli(&self, role: CliRole) -> Result<CloudHsmCli, CliError> {
        self.cli_as(self.credentials.clone(), role)
    }

    /// The CloudHSM CLI as the admin of --admin-pin (else --so-pin), to mark a key trusted.
    pub fn admin(&self) -> Result<CloudHsmCli, CliError> {
        let credentials = self.admin_credentials.clone().ok_or_else(|| {
            CliError::new(
                "config",
                "on AWS CloudHSM an admin marks a wrapping key trusted (cloudhsm-cli key \
                 set-attribute): pass the admin's <user>:<password> with --admin-pin env:VAR (or \
                 file:, cmd:; --so-pin is used when given)",
            )
        })?;
        self.cli_as(credentials, CliRole::Admin)
    }

    fn cli_as(&self, credentials: PinSource, role: CliRole) -> Result<CloudHsmCli, CliError> {
        let path = self.module.ok_or_else(|| {
            CliError::new(
                "not_supported_by_module",
                "HSM users and key sharing exist only on AWS CloudHSM; the local SoftHSM2 store has \
                 one user per token, who sees every key: pass --module /opt/cloudhsm/lib/libcloudhsm_pkcs11.so",
            )
        })?;
        let module = Module::load(&ModuleSource::Path(path.clone()))?;
        let cli = CloudHsmCli::for_module(&module, credentials.clone(), role)?;
        let cli = match self.program {
            Some(program) => CloudHsmCli::with_program(program, credentials.clone(), role),
            None => cli,
        };
        let cli = match self.timeout {
            Some(timeout) => cli.with_timeout(timeout),
            None => cli,
        }
        .allow_kmsuser(self.allow_kmsuser);
        Ok(match self.cluster_id {
            Some(id) => cli.with_cluster_id(id)?,
            None => cli,
        })
    }
}

/// Runs `user ...`.
pub fn run(globals: &GlobalArgs, command: UserCommand) -> Result<Rendered, CliError> {
    let users = Users::new(globals);
    match command {
        UserCommand::List => Rendered::new(&list(&users)?, globals.json),
        UserCommand::Create {
            username,
            password_file,
        } => Rendered::new(&create(&users, &username, password_file)?, globals.json),
    }
}

/// One HSM user: `{"username","role","locked","cluster_coverage"}`; `cluster_coverage` is
/// `full` when the user is on every HSM of the cluster (AWS docs `cloudhsm_cli-user-list`), null
/// when the CLI did not say.
#[derive(Serialize)]
pub struct User {
    username: String,
    role: String,
    locked: bool,
    cluster_coverage: Option<String>,
}

/// `user list`: the HSM's users.
#[derive(Serialize)]
#[serde(transparent)]
pub struct UserList(Vec<User>);

impl fmt::Display for UserList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|u| {
                format!(
                    "{:<32} {:<12} coverage {}{}",
                    Escaped(&u.username),
                    Escaped(&u.role),
                    Escaped(u.cluster_coverage.as_deref().unwrap_or("not reported")),
                    if u.locked { " (locked)" } else { "" }
                )
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

impl Output for UserList {}

/// `user list`.
fn list(users: &Users<'_>) -> Result<UserList, CliError> {
    let users = users.cli(CliRole::CryptoUser)?.list_users()?;
    Ok(UserList(
        users
            .iter()
            .map(|u| User {
                username: u.username.clone(),
                role: u.role.to_string(),
                locked: u.locked,
                cluster_coverage: u.cluster_coverage.clone(),
            })
            .collect(),
    ))
}

/// `user create`: `{"username","role"}`.
#[derive(Serialize)]
pub struct Created {
    username: String,
    role: String,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "created crypto user {}", Escaped(&self.username))
    }
}

impl Output for Created {}

/// `user create --username U --password-file F` (as an admin).
fn create(users: &Users<'_>, username: &str, password_file: PathBuf) -> Result<Created, CliError> {
    let password = PinSource::File(password_file).resolve()?;
    let user = users
        .cli(CliRole::Admin)?
        .create_crypto_user(username, &password)?;
    Ok(Created {
        username: user.username,
        role: user.role.to_string(),
    })
}
