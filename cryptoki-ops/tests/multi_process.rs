//! Several processes on one SoftHSM2 token directory (module mode, as a test set-up or a
//! development signer uses it), issue 12 item 6.
//!
//! SoftHSM2's file backend rewrites `token.object` in place on every `C_Login`; a process that
//! reads it at that moment sees a token or PIN briefly missing (`CKR_GENERAL_ERROR` from
//! `C_GetSlotList`, no token of that label, `CKR_PIN_INCORRECT`). Those answers must be retried,
//! not reported.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use test_support::{self as common, softhsm_test};

use std::process::Command;
use std::time::{Duration, Instant};

use cryptoki_ops::{Curve, EcKeySpec, Hsm, KeySelector};

/// Set in the worker processes: the label of the key they sign with.
const WORKER_ENV: &str = "CRYPTOKI_OPS_MULTI_PROCESS_WORKER";
/// How long each worker keeps logging in and signing.
const WORKER_RUN: Duration = Duration::from_secs(3);
const WORKERS: usize = 4;

/// A worker: opens the token (selecting it and logging in), signs, closes it (which logs out
/// when the last session goes), again and again for [`WORKER_RUN`]; prints what failed. Does
/// nothing outside a worker process.
#[test]
fn worker_logs_in_and_signs_in_a_loop() {
    let Ok(label) = std::env::var(WORKER_ENV) else {
        return;
    };
    let token = common::TestToken {
        module: common::softhsm_module(),
        label: common::TOKEN_LABEL.to_string(),
    };
    let started = Instant::now();
    let (mut rounds, mut errors) = (0usize, 0usize);
    while started.elapsed() < WORKER_RUN {
        rounds += 1;
        let result = Hsm::open(&token.config()).and_then(|hsm| {
            let key = hsm.signing_key(&KeySelector::Label(label.clone()))?;
            key.sign(&[rounds as u8; 32])
        });
        if let Err(e) = result {
            errors += 1;
            println!("worker error: {} {e}", e.kind());
        }
    }
    println!("worker rounds={rounds} errors={errors}");
}

softhsm_test!(fn several_processes_log_in_and_sign_on_one_token_directory_without_errors(token) {
    let hsm = token.open();
    hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "shared")).unwrap();
    drop(hsm);
    let exe = std::env::current_exe().unwrap();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            Command::new(&exe)
                .args(["worker_logs_in_and_signs_in_a_loop", "--exact", "--nocapture", "--test-threads=1"])
                .env(WORKER_ENV, "shared")
                .env_remove("CRYPTOKI_OPS_TEST_CHILD")
                .output_spawn()
        })
        .collect();
    let mut report = String::new();
    let (mut rounds, mut errors) = (0usize, 0usize);
    for worker in workers {
        let output = worker.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "worker failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        // libtest prints "test NAME ... " before the first line of output, on the same line.
        for line in stdout.lines() {
            if let Some(at) = line.find("worker rounds=") {
                let counts = &line[at + "worker rounds=".len()..];
                let (r, e) = counts.split_once(" errors=").unwrap();
                rounds += r.trim().parse::<usize>().unwrap();
                errors += e.trim().parse::<usize>().unwrap();
            } else if let Some(at) = line.find("worker error:") {
                report.push_str(&line[at..]);
                report.push('\n');
            }
        }
    }
    println!("{WORKERS} processes: {rounds} rounds, {errors} errors");
    assert!(rounds >= WORKERS * 5, "the workers did too little to show anything: {rounds} rounds");
    assert_eq!(errors, 0, "{errors} of {rounds} rounds failed:\n{report}");
});

trait SpawnPiped {
    fn output_spawn(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_spawn(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}
