//! The child process: one `cloudhsm-cli` command, its standard input closed, its output captured,
//! under a deadline and an output cap.
//!
//! The CLI connects to the cluster over the network; an unreachable HSM, a prompt it waits on, or
//! a bug must not hang the caller or fill its memory. When the deadline passes, or either stream
//! gives more than the cap, the child is killed (SIGKILL) and reaped. A process the CLI started
//! itself and that keeps the output open is not waited for past the deadline (it is not killed:
//! it is not our child).

use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::types::CliRole;
use crate::{PIN_ENV, ROLE_ENV};

/// How long a command may run and how much it may print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// From start to the end of its output and its exit.
    pub(crate) timeout: Duration,
    /// Bytes on each of standard output and standard error.
    pub(crate) output_limit: usize,
}

/// Why a command gave no output to read.
#[derive(Debug)]
pub(crate) enum RunError {
    /// It could not be started.
    Spawn(io::Error),
    /// Its state could not be read.
    Wait(io::Error),
    /// It was still running (or its output still open) at the deadline; it was killed.
    TimedOut,
    /// It printed more than the cap on `stream`; it was killed.
    OutputTooLarge {
        /// `stdout` or `stderr`.
        stream: &'static str,
    },
}

/// A command that ended by itself, with everything it printed.
pub(crate) struct Finished {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Its standard output (may hold an echoed secret: wiped when dropped).
    pub(crate) stdout: Zeroizing<Vec<u8>>,
    /// Its standard error (likewise).
    pub(crate) stderr: Zeroizing<Vec<u8>>,
}

/// What a reader thread reports: which stream, and its bytes or `None` past the cap.
type Report = (&'static str, io::Result<Option<Zeroizing<Vec<u8>>>>);

/// Runs `program` with `args`; with `login`, the role and `<user>:<password>` go in
/// `CLOUDHSM_ROLE` and `CLOUDHSM_PIN` (AWS docs `cloudhsm_cli-modes`), never on the command line.
/// Those variables are removed from the environment it inherits otherwise.
pub(crate) fn run(
    program: &Path,
    args: &[String],
    login: Option<(CliRole, &SecretString)>,
    limits: Limits,
) -> Result<Finished, RunError> {
    let deadline = Instant::now() + limits.timeout;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove(ROLE_ENV)
        .env_remove(PIN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((role, pin)) = login {
        cmd.env(ROLE_ENV, role.as_str())
            .env(PIN_ENV, pin.expose_secret());
    }
    let spawned = cmd.spawn();
    drop(cmd); // holds a copy of the PIN in its environment
    let mut child = spawned.map_err(RunError::Spawn)?;

    let (sender, reports) = mpsc::channel::<Report>();
    let mut readers = 0;
    if let Some(stdout) = child.stdout.take() {
        spawn_reader("stdout", stdout, limits.output_limit, sender.clone())
            .map_err(|e| stop(&mut child, RunError::Spawn(e)))?;
        readers += 1;
    }
    if let Some(stderr) = child.stderr.take() {
        spawn_reader("stderr", stderr, limits.output_limit, sender.clone())
            .map_err(|e| stop(&mut child, RunError::Spawn(e)))?;
        readers += 1;
    }
    drop(sender);

    let mut stdout = Zeroizing::new(Vec::new());
    let mut stderr = Zeroizing::new(Vec::new());
    let mut status = None;
    let mut pause = Duration::from_millis(1);
    loop {
        if status.is_none() {
            status = child
                .try_wait()
                .map_err(|e| stop(&mut child, RunError::Wait(e)))?;
        }
        if let (Some(status), 0) = (status, readers) {
            return Ok(Finished {
                status,
                stdout,
                stderr,
            });
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(stop(&mut child, RunError::TimedOut));
        };
        let wait = pause.min(left);
        pause = (pause * 2).min(Duration::from_millis(20));
        if readers == 0 {
            // Output complete; waiting for the exit only.
            thread::sleep(wait);
            continue;
        }
        match reports.recv_timeout(wait) {
            Ok((stream, Ok(Some(bytes)))) => {
                readers -= 1;
                if stream == "stdout" {
                    stdout = bytes;
                } else {
                    stderr = bytes;
                }
            }
            Ok((stream, Ok(None))) => {
                return Err(stop(&mut child, RunError::OutputTooLarge { stream }))
            }
            Ok((_, Err(e))) => return Err(stop(&mut child, RunError::Wait(e))),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => readers = 0,
        }
    }
}

/// Kills and reaps the child (if it has not ended already), then gives back `err`.
fn stop(child: &mut Child, err: RunError) -> RunError {
    // Errors here mean it has ended already; `wait` reaps it either way.
    let _ = child.kill();
    let _ = child.wait();
    err
}

/// Reads `stream` to its end on a thread of its own, stopping past `limit` bytes.
fn spawn_reader(
    name: &'static str,
    mut stream: impl Read + Send + 'static,
    limit: usize,
    reports: mpsc::Sender<Report>,
) -> io::Result<()> {
    let reader = thread::Builder::new().name(format!("cloudhsm-cli {name}"));
    reader.spawn(move || {
        let mut bytes = Zeroizing::new(Vec::new());
        let mut chunk = Zeroizing::new([0u8; 8192]);
        let result = loop {
            match stream.read(&mut chunk[..]) {
                Ok(0) => break Ok(Some(bytes)),
                Ok(n) if bytes.len() + n > limit => break Ok(None),
                Ok(n) => {
                    // Grow by hand so no copy of the bytes is left behind un-wiped.
                    if bytes.len() + n > bytes.capacity() {
                        let mut bigger = Zeroizing::new(Vec::with_capacity(
                            (bytes.capacity() * 2).max(bytes.len() + n).max(8192),
                        ));
                        bigger.extend_from_slice(&bytes);
                        bytes = bigger;
                    }
                    bytes.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        // The caller may have stopped listening (deadline, the other stream too large).
        let _ = reports.send((name, result));
    })?;
    Ok(())
}
