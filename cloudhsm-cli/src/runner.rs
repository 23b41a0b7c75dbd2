//! The child process: one `cloudhsm-cli` command, its standard input closed, its output captured.

use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use secrecy::{ExposeSecret, SecretString};

use crate::types::CliRole;
use crate::{PIN_ENV, ROLE_ENV};

/// Runs `program` with `args`; with `login`, the role and `<user>:<password>` go in
/// `CLOUDHSM_ROLE` and `CLOUDHSM_PIN` (AWS docs `cloudhsm_cli-modes`), never on the command line.
/// Those variables are removed from the environment it inherits otherwise.
pub(crate) fn run(
    program: &Path,
    args: &[String],
    login: Option<(CliRole, &SecretString)>,
) -> io::Result<Output> {
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
    let output = cmd.output();
    drop(cmd); // holds a copy of the PIN in its environment
    output
}
