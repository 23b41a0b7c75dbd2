//! `user list`, `user create`, `key share`, `key unshare`: CloudHSM users and key sharing, which
//! are not PKCS#11 operations and go through `cloudhsm-cli` (see the `cloudhsm-cli` crate).
//! Any other module answers "not supported by this module".

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cloudhsm_cli::{CliRole, CloudHsmCli, CloudHsmError, KeyRef};
use cryptoki_ops::{Module, ModuleSource, PinSource};
use serde_json::json;

use crate::output::CliError;

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
    /// `--json`.
    pub json: bool,
}

impl From<CloudHsmError> for CliError {
    fn from(e: CloudHsmError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// `0x...` selects a key by CloudHSM key reference, anything else by label.
fn key_ref(key: &str) -> KeyRef {
    if key.starts_with("0x") {
        KeyRef::Reference(key.to_string())
    } else {
        KeyRef::Label(key.to_string())
    }
}

impl Users<'_> {
    fn cli(&self, role: CliRole) -> Result<CloudHsmCli, CliError> {
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

    fn print(&self, value: serde_json::Value, text: String) -> Result<ExitCode, CliError> {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
        Ok(ExitCode::SUCCESS)
    }

    /// `user list`.
    pub fn list(&self) -> Result<ExitCode, CliError> {
        let users = self.cli(CliRole::CryptoUser)?.list_users()?;
        let value = json!(users
            .iter()
            .map(
                |u| json!({"username": u.username, "role": u.role.to_string(), "locked": u.locked})
            )
            .collect::<Vec<_>>());
        let text = users
            .iter()
            .map(|u| {
                format!(
                    "{:<32} {}{}",
                    u.username,
                    u.role,
                    if u.locked { " (locked)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        self.print(value, text)
    }

    /// `user create --username U --password-file F` (as an admin).
    pub fn create(&self, username: &str, password_file: PathBuf) -> Result<ExitCode, CliError> {
        let password = PinSource::File(password_file).resolve()?;
        let user = self
            .cli(CliRole::Admin)?
            .create_crypto_user(username, &password)?;
        self.print(
            json!({"username": user.username, "role": user.role.to_string()}),
            format!("created crypto user {}", user.username),
        )
    }

    /// `key share KEY --user U` / `key unshare KEY --user U` (as the key's owner).
    pub fn share(&self, key: &str, user: &str, share: bool) -> Result<ExitCode, CliError> {
        let cli = self.cli(CliRole::CryptoUser)?;
        let key = key_ref(key);
        if share {
            cli.share_key(&key, user)?;
        } else {
            cli.unshare_key(&key, user)?;
        }
        let shared_with = cli.key_shared_users(&key)?;
        self.print(
            json!({"key": key.to_string(), "shared_with": shared_with}),
            format!(
                "key {key} {} {user}; shared with: {}",
                if share {
                    "shared with"
                } else {
                    "no longer shared with"
                },
                if shared_with.is_empty() {
                    "nobody".to_string()
                } else {
                    shared_with.join(", ")
                }
            ),
        )
    }
}
