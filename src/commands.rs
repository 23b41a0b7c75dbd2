//! The commands, one module per command group. Each command returns an [`Output`]: one value
//! that is both `Serialize` (printed under `--json`) and `Display` (printed for people).

mod cluster;
pub mod cluster_init;
mod coverage;
mod demo;
mod key;
mod serve;
mod serve_config;
mod sign;
mod token;
mod user;
mod verify;
mod watermark;
mod wrapkey;

use std::fmt::Display;

use serde::Serialize;

use crate::cli::{Cli, ClusterCommand, Command};
use crate::error::CliError;

/// What a command prints on stdout: JSON under `--json`, its `Display` text otherwise.
pub trait Output: Serialize + Display {
    /// Whether the command did what was asked (exit code 0). A command that ran but found a
    /// problem (an invalid signature, an inconsistent cluster) still prints its output, then
    /// exits 1.
    fn success(&self) -> bool {
        true
    }

    /// A line for stderr, in text mode, when the command did not succeed.
    fn failure_note(&self) -> Option<String> {
        None
    }
}

/// A command's output, rendered for printing.
pub struct Rendered {
    /// What to print on stdout (without the final newline).
    pub stdout: String,
    /// Whether the command succeeded (exit code 0).
    pub success: bool,
    /// What to print on stderr after stdout, if anything.
    pub note: Option<String>,
}

impl Rendered {
    /// Renders `output` as JSON or as text.
    pub fn new(output: &impl Output, json: bool) -> Result<Self, CliError> {
        let stdout = if json {
            serde_json::to_string(output)
                .map_err(|e| CliError::new("internal", format!("cannot print the output: {e}")))?
        } else {
            output.to_string()
        };
        Ok(Self {
            stdout,
            success: output.success(),
            note: if json { None } else { output.failure_note() },
        })
    }
}

/// Runs the command of `cli`.
pub fn run(cli: Cli) -> Result<Rendered, CliError> {
    let globals = &cli.globals;
    let json = globals.json;
    match cli.command {
        Command::Token(command) => token::run(globals, command),
        Command::Key(command) => key::run(globals, command),
        Command::Wrapkey(command) => Rendered::new(&wrapkey::run(globals, command)?, json),
        Command::Sign(args) => Rendered::new(&sign::run(globals, args)?, json),
        Command::Verify(args) => Rendered::new(&verify::run(&args)?, json),
        Command::Demo => Rendered::new(&demo::run(globals)?, json),
        Command::Cluster(ClusterCommand::Check { tokens }) => {
            Rendered::new(&cluster::run(globals, tokens)?, json)
        }
        Command::Cluster(ClusterCommand::Ca(command)) => cluster_init::ca_create(globals, command),
        Command::Cluster(ClusterCommand::Csr(command)) => cluster_init::csr_sign(globals, command),
        Command::Cluster(ClusterCommand::TrustAnchor(command)) => {
            cluster_init::trust_anchor(globals, command)
        }
        Command::Cluster(ClusterCommand::VerifyIdentity(args)) => {
            cluster_init::verify_identity(globals, args)
        }
        Command::User(command) => user::run(globals, command),
        Command::Watermark(command) => watermark::run(globals, command),
        Command::Serve(args) => Rendered::new(&serve::run(globals, args)?, json),
    }
}

/// Parses hex given on the command line, with an error that says what was expected.
fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, CliError> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).map_err(|e| {
        CliError::new(
            "invalid_input",
            format!("{what} is not valid hex ({e}); give the bytes as hex, e.g. 031234"),
        )
    })
}
