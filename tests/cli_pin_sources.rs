//! PIN sources through the `tezos-hsm` binary: a hanging `cmd:` PIN source is stopped at
//! `--pin-timeout` (issue 12 item 4).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::cli::CliHome as Home;

#[test]
fn a_hanging_pin_command_is_stopped_at_the_pin_timeout() {
    let home = Home::new();
    home.run(&["key", "list"]); // creates the local store and its token
    let started = Instant::now();
    let out = home.run(&[
        "--json",
        "--pin",
        "cmd:sleep 600",
        "--pin-timeout",
        "1",
        "key",
        "list",
    ]);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(15), "it waited {elapsed:?}");
    let error = out.error();
    assert_eq!(error["kind"], "pin_source", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("did not finish within 1s"), "{message}");
    // The same from the environment; out-of-range values are refused by the parser.
    let out = common::cli::run_in(
        home.path(),
        &["--json", "--pin", "cmd:sleep 600", "key", "list"],
        &[("TEZOS_HSM_PIN_TIMEOUT", "1")],
    );
    assert_eq!(out.error()["kind"], "pin_source");
    let out = home.run(&["--json", "--pin-timeout", "0", "key", "list"]);
    assert_ne!(out.code, 0);
}
