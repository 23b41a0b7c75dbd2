//! The CLI's CloudHSM commands under a deadline: `--cloudhsm-cli-timeout SECONDS` (or
//! `TEZOS_HSM_CLOUDHSM_CLI_TIMEOUT`) stops a `cloudhsm-cli` that hangs, with the error kind
//! `cli_timeout`, and refuses a value that is not a number of seconds from 1 to 3600.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cli::CliHome;

#[test]
fn a_hanging_cloudhsm_cli_is_stopped_at_the_given_timeout() {
    // A module that is CloudHSM by name (a copy of SoftHSM2's library, never opened here) and
    // AWS's CLI played by the stand-in, told to hang.
    let home = CliHome::new();
    let module = home.path().join("libcloudhsm_pkcs11.so");
    std::fs::copy(cryptoki_ops::ModuleSource::softhsm2().unwrap(), &module).unwrap();
    let standin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("cloudhsm-cli/fixtures/cloudhsm-cli-standin");
    let base = [
        "--module",
        module.to_str().unwrap(),
        "--cloudhsm-cli",
        standin.to_str().unwrap(),
        "--json",
    ];
    let envs = [
        ("STANDIN_ERROR", "hang"),
        ("TEZOS_HSM_PIN", "owner:Passw0rd!"),
    ];

    let start = Instant::now();
    let args = [
        &base[..],
        &[
            "--cloudhsm-cli-timeout",
            "1",
            "key",
            "share",
            "baker",
            "--user",
            "signer",
        ],
    ]
    .concat();
    let out = home.run_with(&args, &envs);
    let elapsed = start.elapsed();
    let error = out.error();
    assert_eq!(error["kind"], "cli_timeout", "{}", out.stderr);
    assert!(
        error["message"].as_str().unwrap().contains("within 1s"),
        "{error}"
    );
    assert!(!out.stderr.contains("Passw0rd"), "{}", out.stderr);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // The same from the environment.
    let mut with_env = envs.to_vec();
    with_env.push(("TEZOS_HSM_CLOUDHSM_CLI_TIMEOUT", "1"));
    let out = home.run_with(&[&base[..], &["user", "list"]].concat(), &with_env);
    assert_eq!(out.error()["kind"], "cli_timeout", "{}", out.stderr);
}

#[test]
fn a_timeout_that_is_not_1_to_3600_seconds_is_refused() {
    let home = CliHome::new();
    for bad in ["0", "abc", "3601", "-1"] {
        let out = home.run(&[&format!("--cloudhsm-cli-timeout={bad}"), "user", "list"]);
        assert_ne!(out.code, 0, "{bad}");
        assert!(
            out.stderr.contains("--cloudhsm-cli-timeout"),
            "{bad}: {}",
            out.stderr
        );
    }
}
