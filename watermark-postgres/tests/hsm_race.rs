//! The HA race on the library: two processes, each signing with an `HsmKey` on a SoftHSM2
//! token of its own that holds the same key (restored from one backup), both guarded by a
//! `PostgresStore` on one database, take conflicting block and attestation requests at the
//! same levels at the same moment (file barriers). Over 100 contested levels: never two
//! signatures for different bytes at one (kind, level), and identical requests answered with
//! the identical signature (P-256 on SoftHSM2 signs with a random nonce, so only the recorded
//! signature returned again can match). The same race through `tezos-hsm serve` is
//! tests/cli_serve_ha.rs at the root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{attestation, block, store};
use cryptoki_ops::{Curve, EcKeySpec, KeySelector};
use test_support::{softhsm_test, TestToken};
use tezos_keys::high_watermark::{HighWatermark, KeyPolicy};
use tezos_keys::runbook::{Backup, RestoreOptions};
use tezos_keys::{HsmKey, Signature};

const WORKER_ENV: &str = "HWM_HSM_RACE_WORKER";
const LEVELS: u32 = 100;

/// Not a test: the stand-in `cloudhsm-cli`'s token helper, when the ceremony asks it.
#[test]
fn token_helper() {
    test_support::standin_token::answer_if_asked();
}

/// What each process sends at `level`: at odd levels its own bytes (a conflict), at even
/// levels the same bytes (identical requests).
fn variant(worker: usize, level: u32) -> u8 {
    if level % 2 == 1 {
        u8::try_from(worker + 1).unwrap()
    } else {
        0
    }
}

fn payload(kind: &str, level: u32, variant: u8) -> Vec<u8> {
    match kind {
        "block" => block(level, 0, variant),
        _ => attestation(level, 0, variant),
    }
}

fn barrier(work: &Path, worker: usize, name: &str) {
    let dir = work.join("barriers");
    fs::write(dir.join(format!("{name}-{worker}")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(0..2).all(|w| dir.join(format!("{name}-{w}")).exists()) {
        assert!(Instant::now() < deadline, "barrier {name}: timed out");
        std::thread::sleep(Duration::from_micros(300));
    }
}

/// The worker: `token label|work dir|worker index`. Signs a block and an attestation at every
/// level, logging `kind level variant signature|refused|error:kind`.
#[test]
fn hsm_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let f: Vec<&str> = spec.split('|').collect();
    let token = TestToken {
        module: test_support::softhsm_module(),
        label: f[0].to_owned(),
    };
    let work = PathBuf::from(f[1]);
    let worker: usize = f[2].parse().unwrap();
    let hsm = token.open();
    let key = HsmKey::open(&hsm, &KeySelector::Label("baker".into())).unwrap();
    let guard = HighWatermark::new(store());
    let policy = KeyPolicy::baking();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.join(format!("log-{worker}")))
        .unwrap();
    for level in 1..=LEVELS {
        barrier(&work, worker, &format!("level{level}"));
        for kind in ["block", "attestation"] {
            let v = variant(worker, level);
            let outcome = match guard.sign_keypair(&policy, &key, &payload(kind, level, v)) {
                Ok(signature) => signature.to_string(),
                Err(e) if e.is_double_sign() => "refused".to_owned(),
                Err(e) => format!("error:{}", e.kind()),
            };
            writeln!(log, "{kind} {level} {v} {outcome}").unwrap();
        }
    }
}

softhsm_test!(fn two_processes_on_two_tokens_with_one_key_never_double_sign(token) {
    let started = Instant::now();
    // One key on two tokens: generated on the first, backed up, restored on the second.
    let second = token.another("second-hsm");
    for t in [token, &second] {
        test_support::ceremony::ceremony_key(t, "ceremony", [0x42; 32]);
    }
    let (a, b) = (token.open(), second.open());
    a.generate_ec_key(&EcKeySpec::new(Curve::P256, "baker").backupable()).unwrap();
    let backup = Backup::create(
        &a,
        &KeySelector::Label("baker".into()),
        &"ceremony".parse().unwrap(),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("baker.backup.json");
    backup.write(&path).unwrap();
    Backup::read(&path).unwrap().restore(&b, &RestoreOptions::default()).unwrap();
    let selector = KeySelector::Label("baker".into());
    let public_key = *HsmKey::open(&a, &selector).unwrap().public_key();
    assert_eq!(HsmKey::open(&b, &selector).unwrap().public_key(), &public_key);
    drop((a, b));

    fs::create_dir(work.path().join("barriers")).unwrap();
    let workers: Vec<_> = [token, &second]
        .iter()
        .enumerate()
        .map(|(w, t)| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "hsm_worker", "--nocapture", "--test-threads", "1"])
                .env(
                    WORKER_ENV,
                    format!("{}|{}|{w}", t.label, work.path().display()),
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (w, worker) in workers.into_iter().enumerate() {
        let out = worker.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker {w} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // (kind, level) → (variant, signature) given.
    let mut signed: BTreeMap<(String, u32), Vec<(u8, String)>> = BTreeMap::new();
    let mut problems = Vec::new();
    for w in 0..2 {
        let text = fs::read_to_string(work.path().join(format!("log-{w}"))).unwrap();
        assert_eq!(text.lines().count(), 2 * LEVELS as usize, "worker {w}");
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let at = (f[0].to_owned(), f[1].parse::<u32>().unwrap());
            let entry = signed.entry(at).or_default();
            match f[3] {
                "refused" => {}
                e if e.starts_with("error:") => problems.push(line.to_owned()),
                signature => entry.push((f[2].parse().unwrap(), signature.to_owned())),
            }
        }
    }
    for ((kind, level), given) in &signed {
        for (v, s) in given {
            let signature: Signature = s.parse().unwrap();
            if tezos_keys::verify(&public_key, &payload(kind, *level, *v), &signature).is_err() {
                problems.push(format!("{kind} {level}: a signature for other bytes"));
            }
        }
        let mut signatures: Vec<&str> = given.iter().map(|(_, s)| s.as_str()).collect();
        signatures.sort_unstable();
        signatures.dedup();
        let expected = if level % 2 == 1 { 1 } else { 2 };
        if given.len() != expected || signatures.len() != 1 {
            problems.push(format!(
                "{kind} {level}: {} answers with {} distinct signatures",
                given.len(),
                signatures.len()
            ));
        }
    }
    eprintln!(
        "2 processes on 2 tokens × {LEVELS} levels × 2 kinds on one PostgreSQL: {} problems, {:?}",
        problems.len(),
        started.elapsed()
    );
    assert_eq!(problems, [] as [String; 0]);
    assert_eq!(signed.len(), 2 * LEVELS as usize);
});
