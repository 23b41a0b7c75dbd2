//! `tezos-hsm`: the HSM key-management runbook for Tezos signers, one command per step.
//!
//! With no module configured it works on a local SoftHSM2 development token (see [`home`]);
//! with `--module` (or `PKCS11_MODULE`) it drives that module, e.g. AWS CloudHSM's
//! `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so` with the PIN `<crypto user>:<password>`.
//!
//! Layout: [`cli`] (the arguments), [`context`] (opening the HSM), [`commands`] (one module per
//! command group, each returning a value printed as JSON or text), [`print`](mod@print) (writing it),
//! [`error`] (error kinds).

mod cli;
mod commands;
mod context;
mod error;
mod home;
mod print;
mod progress;
mod text;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return error::usage(&e, cli::json_requested()),
    };
    let json = cli.globals.json;
    match commands::run(cli) {
        Ok(output) => print::output(&output, json),
        Err(e) => e.report(json),
    }
}
