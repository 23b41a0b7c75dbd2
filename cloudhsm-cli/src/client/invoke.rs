//! Running one `cloudhsm-cli` command for [`CloudHsmCli`]: the command line shown in
//! messages, the login PIN given in the environment, the deadline and output cap, and reading
//! (and redacting) its answer.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::classify::classify;
use crate::error::{invalid, CloudHsmError};
use crate::redact::{Redactor, REDACTED};
use crate::runner::{self, Limits, RunError};
use crate::types::KeyRef;
use crate::wire::{message_text, parse_envelope};
use crate::Result;

use super::{is_kms_user, CloudHsmCli};

/// One CLI command to run.
pub(crate) struct Invocation<'a> {
    /// What the caller asked for, for messages ("sharing a key").
    pub(crate) operation: &'static str,
    pub(crate) args: Vec<String>,
    /// Index in `args` of a value never to show (the new user's password).
    pub(crate) secret_arg: Option<usize>,
    /// Another secret to redact from the CLI's output (the new user's password).
    pub(crate) secret: Option<&'a SecretString>,
    /// Whether the command needs a login (credentials in the environment).
    pub(crate) login: bool,
    /// The user the command is about, if any.
    pub(crate) user: Option<&'a str>,
    /// The key the command is about, if any.
    pub(crate) key: Option<&'a KeyRef>,
}

impl CloudHsmCli {
    /// The command line as shown in messages: program name and arguments, secret redacted.
    pub(super) fn describe(&self, inv: &Invocation<'_>) -> String {
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
        for arg in self.cluster_args() {
            text.push(' ');
            text.push_str(&arg);
        }
        text
    }

    /// `--cluster-id ID`, when a cluster is set.
    pub(super) fn cluster_args(&self) -> Vec<String> {
        match &self.cluster_id {
            Some(id) => vec!["--cluster-id".to_string(), id.clone()],
            None => Vec::new(),
        }
    }

    /// Runs the command and reads its answer's `data` with `read`. Every error from running it
    /// or reading its answer is redacted of the credentials and the command's own secret, in
    /// every spelling (see `redact`).
    pub(super) fn call<T>(
        &self,
        inv: &Invocation<'_>,
        read: impl FnOnce(&str, Value) -> Result<T>,
    ) -> Result<T> {
        let pin = if inv.login {
            Some(self.login_pin()?)
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
        let redactor = Redactor::new(&secrets);
        self.run(inv, pin.as_ref(), &redactor)
            .and_then(|(command, data)| read(&command, data))
            .map_err(|e| e.redacted(&redactor))
    }

    /// The credentials, checked to be `<user>:<password>`.
    pub(super) fn login_pin(&self) -> Result<SecretString> {
        let pin = self
            .credentials
            .resolve()
            .map_err(CloudHsmError::Credentials)?;
        match pin.expose_secret().split_once(':') {
            Some((user, _)) if !self.allow_kmsuser && is_kms_user(user) => {
                Err(CloudHsmError::KmsUserRefused {
                    user: user.to_ascii_lowercase(),
                })
            }
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(pin),
            _ => Err(invalid(
                "CloudHSM credentials",
                format!(
                    "{} must give `<user>:<password>` (the user name, a colon, then the \
                     password)",
                    self.credentials
                ),
            )),
        }
    }

    /// Runs the command; on success returns its description and the answer's `data`.
    pub(super) fn run(
        &self,
        inv: &Invocation<'_>,
        pin: Option<&SecretString>,
        redactor: &Redactor,
    ) -> Result<(String, Value)> {
        let command = self.describe(inv);
        let limits = Limits {
            timeout: self.timeout,
            output_limit: self.output_limit,
        };
        let login = pin.map(|pin| (self.role, pin));
        let mut argv = inv.args.clone();
        argv.extend(self.cluster_args());
        let output = runner::run(&self.program, &argv, login, limits).map_err(|e| match e {
            RunError::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => {
                CloudHsmError::CliNotFound {
                    program: self.program.clone(),
                }
            }
            RunError::Spawn(e) => CloudHsmError::CliFailed {
                command: command.clone(),
                message: format!("cannot start it while {}: {e}", inv.operation),
            },
            RunError::Wait(e) => CloudHsmError::CliFailed {
                command: command.clone(),
                message: format!("lost track of it while {}: {e}", inv.operation),
            },
            RunError::TimedOut => CloudHsmError::CliTimeout {
                command: command.clone(),
                timeout: self.timeout,
            },
            RunError::OutputTooLarge { stream } => CloudHsmError::CliOutputTooLarge {
                command: command.clone(),
                stream,
                limit: self.output_limit,
            },
        })?;

        // Copies that may hold an echoed secret: wiped when dropped.
        let stdout = Zeroizing::new(String::from_utf8_lossy(&output.stdout).into_owned());
        let stderr = Zeroizing::new(String::from_utf8_lossy(&output.stderr).into_owned());
        let status = output.status;
        let said = |text: &str| {
            redactor
                .first_line(text)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        };
        match parse_envelope(&stdout) {
            Ok(Some(envelope)) if envelope.error_code == 0 => {
                if status.success() {
                    Ok((command, envelope.data))
                } else {
                    Err(CloudHsmError::CliFailed {
                        message: format!(
                            "it reported success but exited with {status}{}",
                            said(&stderr)
                        ),
                        command,
                    })
                }
            }
            Ok(Some(envelope)) => {
                let message = redactor.message(&message_text(&envelope.data));
                Err(classify(
                    self.role,
                    inv,
                    command,
                    envelope.error_code,
                    message,
                ))
            }
            Ok(None) | Err(_) if !status.success() => {
                let said = if stderr.trim().is_empty() {
                    said(&stdout)
                } else {
                    said(&stderr)
                };
                Err(CloudHsmError::CliFailed {
                    command,
                    message: format!("it exited with {status}{said}"),
                })
            }
            Ok(None) => Err(CloudHsmError::BadResponse {
                command,
                reason: match redactor.first_line(&stdout) {
                    Some(line) => format!("no JSON object in its output (it printed: {line})"),
                    None => "it printed nothing".to_string(),
                },
            }),
            Err(reason) => Err(CloudHsmError::BadResponse {
                command,
                reason: redactor.redact(&reason),
            }),
        }
    }
}
