//! The database stopped mid-run (`pg_ctl stop -m immediate`, a crash) and started again: while
//! it is down consensus requests fail fast with a store error and nothing is signed; a
//! transaction cut by the crash recorded nothing; what was committed survived; signing
//! resumes by itself after the restart.
//!
//! One test in this binary: it stops the shared test cluster (scripts/pg-cluster.sh, its
//! directory in `TEST_PG_DIR`), and cargo runs test binaries one after the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{attestation, fresh_key, store, Counting};
use tezos_keys::high_watermark::{HighWatermark, KeyPolicy};

fn cluster_dir() -> String {
    match std::env::var("TEST_PG_DIR") {
        Ok(dir) if !dir.is_empty() => dir,
        _ => panic!(
            "TEST_PG_DIR is not set: run scripts/test.sh, which starts a private PostgreSQL \
             (scripts/pg-cluster.sh) and names its directory there"
        ),
    }
}

fn pg_ctl(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-cluster.sh");
    let dir = cluster_dir();
    let out = Command::new(script)
        .arg("ctl")
        .arg(&dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn crash() {
    pg_ctl(&["-m", "immediate", "-w", "stop"]);
}

fn start() {
    let log = format!("{}/server.log", cluster_dir());
    pg_ctl(&["-l", &log, "-w", "-t", "60", "start"]);
}

/// Starts the database again if the test fails while it is down.
struct Restart(bool);

impl Drop for Restart {
    fn drop(&mut self) {
        if self.0 {
            start();
        }
    }
}

#[test]
fn a_crashed_database_refuses_signatures_and_signing_resumes_after_restart() {
    cluster_dir();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let policy = KeyPolicy::baking();
    let guard = HighWatermark::new(store());
    let signer = Counting::new(&key);
    let first = guard
        .sign(&pkh, &policy, &signer, &attestation(1, 0, 1))
        .unwrap();

    // Down: a fast error, the signer never called.
    crash();
    let mut down = Restart(true);
    let asked = Instant::now();
    let err = guard
        .sign(&pkh, &policy, &signer, &attestation(2, 0, 1))
        .unwrap_err();
    eprintln!(
        "database down: {} after {:?}: {err}",
        err.kind(),
        asked.elapsed()
    );
    assert_eq!(err.kind(), "io", "{err}");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(signer.calls(), 1, "nothing signed while the store is down");
    assert!(!err.to_string().contains(&common::database_url()), "{err}");

    // Up again: the broken connections are replaced, the first request succeeds.
    start();
    down.0 = false;
    let second = guard
        .sign(&pkh, &policy, &signer, &attestation(2, 0, 1))
        .unwrap();

    // A crash between the signature and the commit: the signature is never returned.
    let crashed = AtomicBool::new(false);
    let mut crashing = Counting::new(&key);
    let flag = &crashed;
    crashing.during = Box::new(move || {
        if !flag.swap(true, Ordering::SeqCst) {
            crash();
        }
    });
    down.0 = true;
    let err = guard
        .sign(&pkh, &policy, &crashing, &attestation(3, 0, 1))
        .unwrap_err();
    assert_eq!(crashing.calls(), 1);
    assert!(crashed.load(Ordering::SeqCst));
    assert_eq!(err.kind(), "io", "{err}");
    start();
    down.0 = false;

    // What was committed before the crash survived it: the identical request at level 2
    // gets the recorded signature back, without the signer. The cut transaction recorded
    // nothing: other bytes at level 3 are signed.
    let calls = signer.calls();
    let replayed = guard
        .sign(&pkh, &policy, &signer, &attestation(2, 0, 1))
        .unwrap();
    assert_eq!(replayed, second);
    assert_eq!(signer.calls(), calls);
    guard
        .sign(&pkh, &policy, &signer, &attestation(3, 0, 2))
        .unwrap();
    let marks = guard.store().load(&pkh).unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks.values().next().unwrap().height.level, 3);
    assert_ne!(first, second);
}
