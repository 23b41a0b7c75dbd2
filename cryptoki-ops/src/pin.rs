//! Where a PIN comes from. PINs are held in [`SecretString`] and never logged.
//!
//! On AWS CloudHSM the PIN is the crypto user's name and password joined by a colon,
//! `<user>:<password>` (e.g. `signer:Passw0rd!`); on SoftHSM2 it is the token's user PIN.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// How long a `cmd:` PIN source may run before it is killed, unless configured otherwise
/// ([`crate::HsmConfig::pin_timeout`], [`PinSource::resolve_within`]).
pub const DEFAULT_PIN_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The most a PIN file or the output of a `cmd:` PIN source may hold, in bytes. A PIN (or
/// CloudHSM's `user:password`) is far shorter: anything longer is a mistake (the wrong file, a
/// command that prints a document or never stops) and is refused without reading further.
pub const MAX_PIN_SOURCE_BYTES: usize = 4096;

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
    /// The first line of a file. Refused when group or others have any access to it
    /// (`chmod 600` it), when it is not a regular file (a FIFO, a device, a directory) or when it
    /// is larger than [`MAX_PIN_SOURCE_BYTES`].
    File(PathBuf),
    /// The first line of the standard output of a command line run by `sh -c`, with no input.
    /// It runs in a process group of its own and is killed, with everything it started, when it
    /// runs longer than the PIN timeout ([`DEFAULT_PIN_COMMAND_TIMEOUT`] unless configured) or
    /// prints more than [`MAX_PIN_SOURCE_BYTES`].
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
                // The program's name only: never its arguments, nor leading `NAME=value`
                // assignments (`cmd:HSM_PASS=s3cret helper` must not show `s3cret`).
                let program = cmd
                    .split_whitespace()
                    .find(|word| !word.contains('='))
                    .unwrap_or("");
                write!(f, "command `{program} ...`")
            }
        }
    }
}

impl FromStr for PinSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        // The text is never put into an error: the usual mistake is a PIN (or CloudHSM's
        // `user:password`) where its source is expected.
        let bad = |reason: &str| Error::InvalidInput {
            what: "PIN source",
            reason: format!("{reason} (the text given is not repeated: it may be a PIN)"),
        };
        match s.split_once(':') {
            Some(("env", var)) if is_variable_name(var) => Ok(Self::Env(var.to_string())),
            Some(("env", _)) => Err(bad(
                "env: must be followed by the name of an environment variable (letters, digits \
                 and _, not starting with a digit), e.g. env:TEZOS_HSM_PIN",
            )),
            Some(("file", path)) if !path.is_empty() => Ok(Self::File(PathBuf::from(path))),
            Some(("file", _)) => Err(bad(
                "file: must be followed by the path of a 0600 file holding the PIN, e.g. \
                 file:/run/secrets/hsm-pin",
            )),
            Some(("cmd", cmd)) if !cmd.trim().is_empty() => Ok(Self::Command(cmd.to_string())),
            Some(("cmd", _)) => Err(bad(
                "cmd: must be followed by a command line that prints the PIN, e.g. \
                 cmd:cat /run/secrets/hsm-pin",
            )),
            _ => Err(bad(
                "expected env:VAR, file:PATH or cmd:COMMAND, e.g. env:TEZOS_HSM_PIN (a PIN itself is not \
                 accepted here; put it in an environment variable or a 0600 file)",
            )),
        }
    }
}

/// A POSIX environment variable name: letters, digits and `_`, not starting with a digit.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl From<SecretString> for PinSource {
    fn from(pin: SecretString) -> Self {
        Self::Value(pin)
    }
}

impl PinSource {
    /// Reads the PIN, running a `cmd:` source under [`DEFAULT_PIN_COMMAND_TIMEOUT`]. Empty PINs
    /// are refused.
    ///
    /// ```
    /// use cryptoki_ops::PinSource;
    /// use secrecy::{ExposeSecret, SecretString};
    /// let pin = PinSource::Value(SecretString::from("crypto_user:Passw0rd")).resolve()?;
    /// assert_eq!(pin.expose_secret(), "crypto_user:Passw0rd");
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn resolve(&self) -> Result<SecretString> {
        self.resolve_within(DEFAULT_PIN_COMMAND_TIMEOUT)
    }

    /// Reads the PIN; a `cmd:` source is killed (with everything it started) when it has not
    /// finished after `timeout`.
    ///
    /// ```
    /// use cryptoki_ops::PinSource;
    /// use std::time::Duration;
    /// let err = PinSource::Command("sleep 5".into()).resolve_within(Duration::from_millis(100)).unwrap_err();
    /// assert_eq!(err.kind(), "pin_source");
    /// ```
    pub fn resolve_within(&self, timeout: Duration) -> Result<SecretString> {
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
                let bytes = read_pin_file(path).map_err(fail)?;
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    fail("it is not UTF-8 text; write the PIN on its first line".into())
                })?;
                SecretString::from(first_line(text))
            }
            Self::Command(cmd) => {
                let stdout = run_pin_command(cmd, timeout).map_err(fail)?;
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

/// Reads at most [`MAX_PIN_SOURCE_BYTES`] + 1 bytes into a buffer that is zeroized when dropped
/// (it never grows, so no copy of a PIN is left in freed memory). Returns the bytes and whether
/// there was more.
fn read_capped(mut reader: impl Read) -> std::io::Result<(Zeroizing<Vec<u8>>, bool)> {
    let mut buffer = Zeroizing::new(vec![0u8; MAX_PIN_SOURCE_BYTES + 1]);
    let mut len = 0;
    while len < buffer.len() {
        match reader.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let more = len > MAX_PIN_SOURCE_BYTES;
    buffer.truncate(len.min(MAX_PIN_SOURCE_BYTES));
    Ok((buffer, more))
}

/// The contents of a PIN file: a regular file, private to its owner, of bounded size.
fn read_pin_file(path: &Path) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let file = open_without_blocking(path).map_err(|e| format!("cannot open it: {e}"))?;
    // Checked on the opened file, so it cannot be swapped between the check and the read.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "it is not a regular file (it is {}); a PIN file must be a regular file holding the \
             PIN on its first line",
            file_kind(&meta)
        ));
    }
    check_private(&meta, path)?;
    if meta.len() > MAX_PIN_SOURCE_BYTES as u64 {
        return Err(format!(
            "it is {} bytes long, more than the {MAX_PIN_SOURCE_BYTES} a PIN file may hold; check \
             that it is the right file (the PIN goes on its first line)",
            meta.len()
        ));
    }
    let (bytes, more) = read_capped(file).map_err(|e| format!("cannot read it: {e}"))?;
    if more {
        return Err(format!(
            "it grew past {MAX_PIN_SOURCE_BYTES} bytes while being read; check that it is the \
             right file"
        ));
    }
    Ok(bytes)
}

/// Opens for reading without waiting: opening a FIFO blocks until a writer comes, and this
/// must fail at the regular-file check instead.
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(unix)]
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Runs a PIN command: its standard output, at most [`MAX_PIN_SOURCE_BYTES`], or why not. It is
/// killed with its whole process group when it runs past `timeout` or prints too much.
fn run_pin_command(
    cmd: &str,
    timeout: Duration,
) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let deadline = Instant::now() + timeout;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        // Its own process group, so that a kill reaches what it started too (`sh -c` forks).
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `sh` to run it: {e}"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = out_tx.send(stdout.map(read_capped));
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The beginning for the error message; the rest is drained so the command never blocks
        // on a full pipe.
        let mut text = Vec::new();
        if let Some(mut stderr) = stderr {
            let _ = (&mut stderr).take(4096).read_to_end(&mut text);
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        }
        let _ = err_tx.send(text);
    });
    let too_slow = || {
        format!(
            "it did not finish within {timeout:?}, so it was stopped (with every process it \
             started); check that it does not wait for input, or raise the PIN timeout \
             (HsmConfig::pin_timeout, PKCS11_PIN_TIMEOUT)"
        )
    };
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let output = match out_rx.recv_timeout(remaining()) {
        Ok(Some(Ok((bytes, false)))) => bytes,
        Ok(Some(Ok((_, true)))) => {
            kill_group(&mut child);
            return Err(format!(
                "it printed more than {MAX_PIN_SOURCE_BYTES} bytes, so it was stopped; a PIN \
                 command prints the PIN on its first line and little else"
            ));
        }
        Ok(Some(Err(e))) => {
            kill_group(&mut child);
            return Err(format!("cannot read its output: {e}"));
        }
        Ok(None) | Err(_) => {
            kill_group(&mut child);
            return Err(too_slow());
        }
    };
    // Its output is closed; it must still exit before the deadline.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) => {
                kill_group(&mut child);
                return Err(too_slow());
            }
            Err(e) => {
                kill_group(&mut child);
                return Err(format!("cannot wait for it: {e}"));
            }
        }
    };
    if !status.success() {
        let stderr = err_rx
            .recv_timeout(remaining().min(Duration::from_millis(200)))
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        let first = stderr
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        return Err(format!("it exited with {status}: {first}"));
    }
    Ok(output)
}

/// Kills the command and every process of its group, and reaps it.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::KILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The first line, without its line ending (a PIN file written by `echo` ends in a newline).
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata, path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
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
fn check_private(_meta: &std::fs::Metadata, _path: &Path) -> std::result::Result<(), String> {
    Ok(())
}
