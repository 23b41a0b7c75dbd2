//! The database stopped mid-run (`pg_ctl stop -m immediate`, a crash) and started again: while
//! it is down consensus requests fail fast with a store error and nothing is signed; a
//! transaction cut by the crash recorded nothing; what was committed survived; signing
//! resumes by itself after the restart. And the database frozen (SIGSTOP: it accepts TCP
//! connections and acknowledges what is sent, but never answers): an error within the
//! client-side deadlines, not a hang.
//!
//! The tests of this binary stop or freeze the shared test cluster (scripts/pg-cluster.sh, its
//! directory in `TEST_PG_DIR`), so they take turns (`EXCLUSIVE`); cargo runs test binaries one
//! after the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{attestation, fresh_key, store, Counting};
use tezos_keys::high_watermark::{HighWatermark, KeyPolicy};
use watermark_postgres::{Options, PostgresStore};

/// Held by each test for its whole run.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

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
    let _turn = EXCLUSIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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

/// The cluster's processes: the postmaster (first line of `postmaster.pid`) and its children.
fn cluster_pids() -> Vec<String> {
    let pidfile =
        std::fs::read_to_string(format!("{}/data/postmaster.pid", cluster_dir())).unwrap();
    let postmaster = pidfile.lines().next().unwrap().trim().to_owned();
    let children = Command::new("pgrep")
        .args(["-P", &postmaster])
        .output()
        .unwrap();
    let mut pids = vec![postmaster];
    pids.extend(
        String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(str::to_owned),
    );
    pids
}

fn signal(signal: &str, pids: &[String]) {
    let status = Command::new("kill")
        .arg(signal)
        .args(pids)
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pids:?}");
}

/// Lets the frozen cluster run again if the test fails while it is frozen.
struct Thaw(Vec<String>);

impl Drop for Thaw {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            signal("-CONT", &self.0);
        }
    }
}

#[test]
fn a_frozen_database_is_an_error_within_the_deadlines_not_a_hang() {
    let _turn = EXCLUSIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let policy = KeyPolicy::baking();
    let mut options = Options::default();
    options.connect_timeout = Duration::from_secs(1);
    options.lock_timeout = Duration::from_secs(1);
    options.statement_timeout = Duration::from_secs(1);
    let guard =
        HighWatermark::new(PostgresStore::open_with(&common::database_url(), options).unwrap());
    let signer = Counting::new(&key);
    guard
        .sign(&pkh, &policy, &signer, &attestation(1, 0, 1))
        .unwrap();

    let mut frozen = Thaw(cluster_pids());
    signal("-STOP", &frozen.0);
    let asked = Instant::now();
    let err = guard
        .sign(&pkh, &policy, &signer, &attestation(2, 0, 1))
        .unwrap_err();
    let waited = asked.elapsed();
    eprintln!("database frozen: {} after {waited:?}: {err}", err.kind());
    assert_eq!(err.kind(), "io", "{err}");
    // The idle connection's deadline (statement_timeout + 1 s), then a new connection's
    // connect timeout: about 3 s here.
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    assert_eq!(
        signer.calls(),
        1,
        "nothing signed while the store does not answer"
    );

    signal("-CONT", &frozen.0);
    frozen.0.clear();
    guard
        .sign(&pkh, &policy, &signer, &attestation(2, 0, 1))
        .unwrap();
}
