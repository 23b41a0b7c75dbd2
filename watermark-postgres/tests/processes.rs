//! Several processes on one PostgreSQL: contention on one key, and a holder killed with
//! SIGKILL in the middle of its transaction.
//!
//! The workers are this test binary again, run with `HWM_PG_WORKER` set (test
//! `process_worker`), each with its own [`PostgresStore`] and [`HighWatermark`] and the same
//! software key. They meet at file barriers, so every level is contested at the same moment,
//! and log every request: what the guard returned and whether their signer was called.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    attestation, block, fresh_key, key_from_hex, key_to_hex, store, store_with, Counting,
};
use tezos_keys::high_watermark::{HighWatermark, KeyPolicy, WatermarkStore};

const WORKER_ENV: &str = "HWM_PG_WORKER";
const WORKERS: usize = 3;
const LEVELS: u32 = 40;

/// What a worker is told: `mode|work dir|worker index|key hex`.
struct Spec {
    mode: String,
    work: PathBuf,
    worker: usize,
    key: String,
}

impl Spec {
    fn parse(text: &str) -> Self {
        let f: Vec<&str> = text.split('|').collect();
        Self {
            mode: f[0].to_owned(),
            work: f[1].into(),
            worker: f[2].parse().unwrap(),
            key: f[3].to_owned(),
        }
    }

    /// Waits until every worker has reached barrier `name`.
    fn barrier(&self, name: &str) {
        let dir = self.work.join("barriers");
        fs::write(dir.join(format!("{name}-{}", self.worker)), b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(0..WORKERS).all(|w| dir.join(format!("{name}-{w}")).exists()) {
            assert!(Instant::now() < deadline, "barrier {name}: timed out");
            std::thread::sleep(Duration::from_micros(300));
        }
    }
}

/// The variant of the bytes worker `worker` sends at `level`: at odd levels every worker sends
/// its own bytes (a conflict), at even levels the same bytes (identical requests).
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

/// The worker: signs according to its mode, logs every request, exits 0.
#[test]
fn process_worker() {
    let Ok(text) = std::env::var(WORKER_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let spec = Spec::parse(&text);
    let key = key_from_hex(&spec.key);
    let pkh = key.public_key().hash();
    let guard = HighWatermark::new(store());
    let policy = KeyPolicy::baking();
    match spec.mode.as_str() {
        // Every level: a block and an attestation, all workers at once.
        "contest" => {
            let signer = Counting::new(&key);
            let mut log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(spec.work.join(format!("log-{}", spec.worker)))
                .unwrap();
            for level in 1..=LEVELS {
                spec.barrier(&format!("level{level}"));
                for kind in ["block", "attestation"] {
                    let v = variant(spec.worker, level);
                    let before = signer.calls();
                    let outcome = match guard.sign(&pkh, &policy, &signer, &payload(kind, level, v))
                    {
                        Ok(signature) => signature.to_string(),
                        Err(e) if e.is_double_sign() => "refused".to_owned(),
                        Err(e) => format!("error:{}", e.kind()),
                    };
                    let called = signer.calls() - before;
                    writeln!(log, "{kind} {level} {v} {outcome} {called}").unwrap();
                }
            }
        }
        // Signs level 1 with a signer that announces itself and then hangs: the parent kills
        // this process while its transaction holds the key's lock.
        "hold" => {
            let mut signer = Counting::new(&key);
            let announce = spec.work.join("signing");
            signer.during = Box::new(move || {
                fs::write(&announce, b"").unwrap();
                std::thread::sleep(Duration::from_secs(60));
            });
            let result = guard.sign(&pkh, &policy, &signer, &attestation(1, 0, 1));
            panic!("the holder was not killed: {result:?}");
        }
        other => panic!("unknown mode {other}"),
    }
}

struct Run {
    tmp: tempfile::TempDir,
    key: tezos_keys::SecretKey,
}

impl Run {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("barriers")).unwrap();
        Self {
            tmp,
            key: fresh_key(),
        }
    }

    fn work(&self) -> &Path {
        self.tmp.path()
    }

    fn spawn(&self, mode: &str, worker: usize) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process_worker",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(
                WORKER_ENV,
                format!(
                    "{mode}|{}|{worker}|{}",
                    self.work().display(),
                    key_to_hex(&self.key)
                ),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// Kills the child if the test fails before it ends.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// (kind, level) → the variants given a signature, the (variant, signature) pairs given, the
/// signer calls made, over every worker.
type Signed = BTreeMap<(String, u32), (BTreeSet<u8>, BTreeSet<(u8, String)>, usize)>;

#[test]
fn three_processes_contending_on_one_key_never_double_sign() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let started = Instant::now();
    let run = Run::new();
    let children: Vec<Child> = (0..WORKERS).map(|w| run.spawn("contest", w)).collect();
    for (w, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker {w} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut signed = Signed::new();
    let mut errors = Vec::new();
    for w in 0..WORKERS {
        let text = fs::read_to_string(run.work().join(format!("log-{w}"))).unwrap();
        assert_eq!(text.lines().count(), 2 * LEVELS as usize, "worker {w}");
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let entry = signed
                .entry((f[0].to_owned(), f[1].parse().unwrap()))
                .or_default();
            entry.2 += f[4].parse::<usize>().unwrap();
            match f[3] {
                "refused" => {}
                e if e.starts_with("error:") => errors.push(line.to_owned()),
                signature => {
                    let variant = f[2].parse().unwrap();
                    entry.0.insert(variant);
                    entry.1.insert((variant, signature.to_owned()));
                }
            }
        }
    }
    let pk = run.key.public_key();
    let mut doubles = Vec::new();
    for ((kind, level), (variants, signatures, calls)) in &signed {
        if variants.len() != 1 || signatures.len() != 1 || *calls != 1 {
            doubles.push(format!(
                "{kind} {level}: variants {variants:?}, {} signatures, {calls} signer calls",
                signatures.len()
            ));
        }
        // Each signature is for the bytes it was returned for.
        for (variant, s) in signatures {
            let signature: tezos_keys::Signature = s.parse().unwrap();
            tezos_keys::verify(&pk, &payload(kind, *level, *variant), &signature).unwrap();
        }
    }
    eprintln!(
        "{WORKERS} processes × {LEVELS} levels × 2 kinds: {} (kind, level) signed, {} double, \
         {} errors, {:?}",
        signed.len(),
        doubles.len(),
        errors.len(),
        started.elapsed()
    );
    assert_eq!(errors, [] as [String; 0]);
    assert_eq!(doubles, [] as [String; 0], "double signatures");
    assert_eq!(signed.len(), 2 * LEVELS as usize);
}

#[test]
fn a_holder_killed_mid_transaction_releases_the_lock_and_records_nothing() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let run = Run::new();
    let pkh = run.key.public_key().hash();
    let mut holder = Reaper(Some(run.spawn("hold", 0)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !run.work().join("signing").exists() {
        assert!(
            Instant::now() < deadline,
            "the holder never reached its signer"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Held across processes: this process waits, then gives up.
    let store = store_with(Duration::from_millis(300));
    let err = store.lock(&pkh).map(drop).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_busy", "{err}");

    let mut child = holder.0.take().unwrap();
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    // The server sees the connection close, ends its transaction, and the lock is free.
    let killed = Instant::now();
    let store = store_with(Duration::from_secs(5));
    let guard = HighWatermark::new(store);
    let signer = Counting::new(&run.key);
    let signature = guard
        .sign(&pkh, &KeyPolicy::baking(), &signer, &attestation(1, 0, 2))
        .unwrap();
    eprintln!("lock free {:?} after the kill", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(5));
    // The killed holder's level-1 request recorded nothing: other bytes at level 1 were
    // signed, and they are the record now.
    assert_eq!(signer.calls(), 1);
    let marks = guard.store().load(&pkh).unwrap();
    assert_eq!(marks.values().next().unwrap().signature, Some(signature));
}
