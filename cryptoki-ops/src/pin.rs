//! Where a PIN comes from. PINs are held in [`SecretString`] and never logged.
//!
//! On AWS CloudHSM the PIN is the crypto user's name and password joined by a colon,
//! `<user>:<password>` (e.g. `signer:Passw0rd!`); on SoftHSM2 it is the token's user PIN.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A source of a PIN (or, on CloudHSM, of `user:password`).
///
/// Parsed from text as `env:VAR`, `file:PATH` or `cmd:COMMAND LINE` (a PIN value itself is never
/// accepted as text, so it cannot land in shell history or `ps` output):
///
/// ```
/// use cryptoki_ops::PinSource;
/// let source: PinSource = "env:SIGNER_PIN".parse()?;
/// assert_eq!(source, PinSource::Env("SIGNER_PIN".into()));
/// // The signer user's PIN from AWS SSM Parameter Store, as the CloudHSM runbook does:
/// let ssm: PinSource = "cmd:aws ssm get-parameter --name /hsm/signer --with-decryption \
///     --query Parameter.Value --output text".parse()?;
/// assert!(matches!(ssm, PinSource::Command(_)));
/// assert!("1234".parse::<PinSource>().is_err());
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
#[derive(Clone)]
pub enum PinSource {
    /// The PIN itself (from code).
    Value(SecretString),
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file (trailing newline removed). Refused when group or others have any
    /// access to it: `chmod 600` it.
    File(PathBuf),
    /// The standard output of a command line run by `sh -c` (trailing newline removed).
    Command(String),
}

impl PartialEq for PinSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Value(a), Self::Value(b)) => a.expose_secret() == b.expose_secret(),
            (Self::Env(a), Self::Env(b)) | (Self::Command(a), Self::Command(b)) => a == b,
            (Self::File(a), Self::File(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinSource({self})")
    }
}

impl fmt::Display for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => write!(f, "a PIN given in code"),
            Self::Env(var) => write!(f, "environment variable {var}"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Command(cmd) => {
                let program = cmd.split_whitespace().next().unwrap_or("");
                write!(f, "command `{program} ...`")
            }
        }
    }
}

impl FromStr for PinSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidInput {
            what: "PIN source",
            reason: reason.to_string(),
        };
        match s.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(Self::Env(var.to_string())),
            Some(("file", path)) if !path.is_empty() => Ok(Self::File(PathBuf::from(path))),
            Some(("cmd", cmd)) if !cmd.trim().is_empty() => Ok(Self::Command(cmd.to_string())),
            _ => Err(bad(
                "expected env:VAR, file:PATH or cmd:COMMAND (a PIN itself is not accepted here; \
                 put it in an environment variable or a 0600 file)",
            )),
        }
    }
}

impl From<SecretString> for PinSource {
    fn from(pin: SecretString) -> Self {
        Self::Value(pin)
    }
}

impl PinSource {
    /// Reads the PIN. Empty PINs are refused.
    ///
    /// ```
    /// use cryptoki_ops::PinSource;
    /// use secrecy::{ExposeSecret, SecretString};
    /// let pin = PinSource::Value(SecretString::from("crypto_user:Passw0rd")).resolve()?;
    /// assert_eq!(pin.expose_secret(), "crypto_user:Passw0rd");
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn resolve(&self) -> Result<SecretString> {
        let fail = |reason: String| Error::PinSource {
            source_desc: self.to_string(),
            reason,
        };
        let pin: SecretString = match self {
            Self::Value(pin) => pin.clone(),
            Self::Env(var) => match std::env::var(var) {
                Ok(v) => SecretString::from(v),
                Err(std::env::VarError::NotPresent) => {
                    return Err(fail(format!(
                        "{var} is not set; export it or use another PIN source"
                    )))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(fail(format!("{var} is not valid UTF-8")))
                }
            },
            Self::File(path) => {
                check_private_file(path).map_err(fail)?;
                let text = Zeroizing::new(
                    std::fs::read_to_string(path)
                        .map_err(|e| fail(format!("cannot read it: {e}")))?,
                );
                SecretString::from(first_line(&text))
            }
            Self::Command(cmd) => {
                let output = Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| fail(format!("cannot run it: {e}")))?;
                let stdout = Zeroizing::new(output.stdout);
                if !output.status.success() {
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    let first = stderr
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect::<String>();
                    return Err(fail(format!("it exited with {}: {first}", output.status)));
                }
                let text = std::str::from_utf8(&stdout)
                    .map_err(|_| fail("its output is not UTF-8".into()))?;
                SecretString::from(first_line(text))
            }
        };
        if pin.expose_secret().is_empty() {
            return Err(fail("the PIN is empty".into()));
        }
        Ok(pin)
    }
}

/// The first line, without its line ending (a PIN file written by `echo` ends in a newline).
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

#[cfg(unix)]
fn check_private_file(path: &std::path::Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "it is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_file(_path: &std::path::Path) -> std::result::Result<(), String> {
    Ok(())
}
