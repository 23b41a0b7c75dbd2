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
        }
    }

    /// The CloudHSM CLI, run as `role`.
    pub fn cli(&self, role: CliRole) -> Result<CloudHsmCli, CliError> {
        let path = self.module.ok_or_else(|| {
            CliError::new(
                "not_supported_by_module",
                "HSM users and key sharing exist only on AWS CloudHSM; the local SoftHSM2 store has \
                 one user per token, who sees every key: pass --module /opt/cloudhsm/lib/libcloudhsm_pkcs11.so",
            )
        })?;
        let module = Module::load(&ModuleSource::Path(path.clone()))?;
        let cli = CloudHsmCli::for_module(&module, self.credentials.clone(), role)?;
        let cli = match self.program {
            Some(program) => CloudHsmCli::with_program(program, self.credentials.clone(), role),
            None => cli,
        };
        Ok(match self.timeout {
            Some(timeout) => cli.with_timeout(timeout),
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

/// One HSM user: `{"username","role","locked"}`.
#[derive(Serialize)]
pub struct User {
    username: String,
    role: String,
    locked: bool,
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
                    "{:<32} {}{}",
                    Escaped(&u.username),
                    Escaped(&u.role),
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
