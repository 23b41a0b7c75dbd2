//! `cloudhsm-cli` runs under a deadline and an output cap: a stand-in that hangs or floods is
//! killed, and the caller gets `cli_timeout` or `cli_output_too_large` in about the time given.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cloudhsm_cli::{CloudHsmCli, CloudHsmError, KeyRef, DEFAULT_OUTPUT_LIMIT, DEFAULT_TIMEOUT};
use common::{assert_no_secrets, spawn_lock, StandIn, OWNER_PIN};

const SHORT: Duration = Duration::from_millis(500);

fn baker() -> KeyRef {
    KeyRef::Label("baker".into())
}

/// The stand-in's process is gone (killed and reaped, not left running or as a zombie).
fn assert_gone(standin: &StandIn) {
    let pid = standin.pid().expect("the stand-in wrote its pid");
    let proc = format!("/proc/{pid}");
    assert!(!Path::new(&proc).exists(), "process {pid} still exists");
}

#[test]
fn defaults_are_30_seconds_and_4_mib() {
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(30));
    assert_eq!(DEFAULT_OUTPUT_LIMIT, 4 << 20);
    let cli = CloudHsmCli::with_program(
        "/nonexistent",
        common::pin_value(OWNER_PIN),
        cloudhsm_cli::CliRole::CryptoUser,
    );
    assert_eq!(cli.timeout(), DEFAULT_TIMEOUT);
    assert_eq!(cli.output_limit(), DEFAULT_OUTPUT_LIMIT);
    let cli = cli.with_timeout(SHORT).with_output_limit(1000);
    assert_eq!((cli.timeout(), cli.output_limit()), (SHORT, 1000));
}

#[test]
fn a_hanging_cli_is_killed_at_the_deadline() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "hang")]);
    let start = Instant::now();
    let err = standin
        .owner()
        .with_timeout(SHORT)
        .share_key(&baker(), "alice")
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, CloudHsmError::CliTimeout { timeout, .. } if timeout == SHORT),
        "{err:?}"
    );
    assert_eq!(err.kind(), "cli_timeout");
    assert!(
        elapsed >= SHORT && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let text = err.to_string();
    assert!(text.contains("cloudhsm-cli key share"), "{text}");
    assert!(text.contains("--cloudhsm-cli-timeout"), "{text}");
    assert_gone(&standin);
    assert_no_secrets(&err, &[]);
}

#[test]
fn a_cli_that_answers_but_does_not_exit_is_killed_too() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "answer-then-hang")]);
    let start = Instant::now();
    let err = standin
        .owner()
        .with_timeout(SHORT)
        .list_users()
        .unwrap_err();
    assert_eq!(err.kind(), "cli_timeout", "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_gone(&standin);
}

#[test]
fn a_flood_on_stdout_is_killed_at_the_cap() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "flood")]);
    let start = Instant::now();
    // The default cap (4 MiB), and a deadline long enough that only the cap can stop it.
    let err = standin
        .owner()
        .with_timeout(Duration::from_secs(60))
        .key_shared_users(&baker())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CloudHsmError::CliOutputTooLarge { stream: "stdout", limit, .. }
                if *limit == DEFAULT_OUTPUT_LIMIT
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "cli_output_too_large");
    assert!(err.to_string().contains("4194304 bytes"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_gone(&standin);
    assert_no_secrets(&err, &[]);
}

#[test]
fn a_flood_on_stderr_is_killed_at_the_cap() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_ERROR", "flood-stderr")]);
    let err = standin
        .owner()
        .with_output_limit(64 << 10)
        .list_users()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CloudHsmError::CliOutputTooLarge {
                stream: "stderr",
                limit: 65536,
                ..
            }
        ),
        "{err:?}"
    );
    assert_gone(&standin);
}

#[test]
fn the_cap_counts_bytes_of_the_answer() {
    let _lock = spawn_lock();
    let size = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/user-list.json"
    ))
    .unwrap()
    .len();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let users = standin
        .owner()
        .with_output_limit(size)
        .list_users()
        .unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin",
            "second_admin",
            "app_user",
            "baker_owner",
            "old_signer"
        ],
        "user-list.json, whole",
    );
    let err = standin
        .owner()
        .with_output_limit(size - 1)
        .list_users()
        .unwrap_err();
    assert_eq!(err.kind(), "cli_output_too_large", "{err:?}");
}
