//! Writing what a command printed: every write checked, so a full disk or a closed file is an
//! error instead of a panic or a silent success, and a closed pipe (`tezos-hsm key list | head`)
//! ends the command quietly with the conventional exit code 141 (128 + SIGPIPE).

use std::io::{self, Write};
use std::process::ExitCode;

use crate::commands::Rendered;
use crate::error::CliError;

/// Exit code of a command whose reader went away (128 + SIGPIPE), as a shell reports it.
const CLOSED_PIPE: u8 = 141;

/// Prints `output` (stdout, then its note on stderr) and returns the exit code; a failed write
/// to stdout is reported as an error on stderr.
pub fn output(output: &Rendered, json: bool) -> ExitCode {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(output.stdout.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::from(CLOSED_PIPE),
        Err(e) => {
            return CliError::new(
                "io",
                format!("cannot write the output to stdout: {e}; check where stdout goes (a full disk, a closed file)"),
            )
            .report(json)
        }
    }
    if output.success {
        ExitCode::SUCCESS
    } else {
        if let Some(note) = &output.note {
            stderr_line(note);
        }
        ExitCode::FAILURE
    }
}

/// Writes `line` on stderr; a stderr that cannot be written to is ignored (there is nowhere
/// left to say so).
pub fn stderr_line(line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
