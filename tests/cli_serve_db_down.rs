//! `tezos-hsm serve --watermark-db` with the database crashed mid-run (`pg_ctl stop -m
//! immediate` on the private cluster of scripts/test.sh, `TEST_PG_DIR`) and started again: the
//! server stays up, consensus requests are answered 503 and nothing is signed unguarded, and
//! signing resumes by itself once the database is back; SIGTERM then stops it cleanly.
//!
//! One test in this binary: it stops the shared test cluster, and cargo runs test binaries one
//! after the other.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli::CliHome;
use common::payloads;
use common::serve::Served;

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: run scripts/test.sh, which starts a private PostgreSQL \
             (scripts/pg-cluster.sh)"
        ),
    }
}

fn pg_ctl(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-cluster.sh");
    let out = Command::new(script)
        .arg("ctl")
        .arg(env("TEST_PG_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_database() {
    let log = format!("{}/server.log", env("TEST_PG_DIR"));
    pg_ctl(&["-l", &log, "-w", "-t", "60", "start"]);
}

/// Starts the database again if the test fails while it is down.
struct Restart(bool);

impl Drop for Restart {
    fn drop(&mut self) {
        if self.0 {
            start_database();
        }
    }
}

#[test]
fn a_crashed_database_gets_503s_from_a_server_that_stays_up_and_recovers() {
    let url = env("TEST_DATABASE_URL");
    env("TEST_PG_DIR");
    let home = CliHome::new();
    let key = home.json(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    let address = key["address"].as_str().unwrap().to_owned();
    let served = Served::start(
        home.path(),
        &["--key", "baker", "--allow", "attestation"],
        &[("TEZOS_HSM_WATERMARK_DB", &url)],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let first = served.sign(&address, &payloads::attestation(1, 0, 1));
    assert_eq!(first.status, 200, "{}", first.body);

    pg_ctl(&["-m", "immediate", "-w", "stop"]);
    let mut down = Restart(true);
    for level in [2, 3] {
        let asked = Instant::now();
        let refused = served.sign(&address, &payloads::attestation(level, 0, 1));
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "{:?}",
            asked.elapsed()
        );
        assert!(!refused.body.contains(&url), "{}", refused.body);
    }
    // Up, and still serving what needs no record.
    assert_eq!(served.get(&format!("/keys/{address}")).status, 200);

    start_database();
    down.0 = false;
    // What was committed before the crash survived it: the identical request gets the same
    // signature back (P-256 on SoftHSM2 would sign it differently). Then signing resumes.
    let again = served.sign(&address, &payloads::attestation(1, 0, 1));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["signature"], first.json()["signature"]);
    let resumed = served.sign(&address, &payloads::attestation(2, 0, 2));
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert!(
        !served.stderr().contains(&url),
        "the log shows the password"
    );
    // SIGTERM: a clean stop, the store's connections closed off the async threads.
    let mut served = served;
    let (status, _) = served.terminate();
    assert!(status.success(), "{status:?}\n{}", served.stderr());
}
