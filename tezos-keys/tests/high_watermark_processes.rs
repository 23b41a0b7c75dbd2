//! The guard across processes: several processes, one key, one `FileStore` directory.
//!
//! Every CLI signature is a process of its own, and a baker's preattestation, attestation and
//! block requests overlap all the time. The workers are this test binary again, run with
//! `TEZOS_KEYS_HWM_WORKER` set (test `process_worker`), signing with a real secp256k1 key behind
//! a signer that takes 2 ms per signature, like an HSM round trip. Each worker logs every
//! signature the guard returned to it (`level variant signature`); the parent then checks:
//!
//! - no level got signatures for two different payloads (a double signature);
//! - every returned signature verifies for the bytes *that worker* asked to sign (so nobody got
//!   back a signature recorded for other bytes);
//! - the record on disk is the highest level anybody got a signature for (no roll-back).
//!
//! Workers meet at file barriers, so every level is contested at the same moment.
#![allow(clippy::unwrap_used)]

mod high_watermark_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use high_watermark_support::{attestation, key, TZ2_KEY};
use tezos_keys::high_watermark::{FileStore, HighWatermark, KeyPolicy, MarkKind, WatermarkStore};
use tezos_keys::{ChainId, SecretKey, Signature};

const WORKER_ENV: &str = "TEZOS_KEYS_HWM_WORKER";
const WORKERS: usize = 4;
const LEVELS: u32 = 25;

/// A software key that takes `delay` per signature and, with `fail_every` > 0, fails every
/// `fail_every`-th call (an HSM that drops a request now and then).
struct SlowKey {
    key: SecretKey,
    delay: Duration,
    fail_every: u64,
    calls: AtomicU64,
}

impl signature::Signer<Signature> for SlowKey {
    fn try_sign(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        std::thread::sleep(self.delay);
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_every > 0 && n % self.fail_every == self.fail_every - 1 {
            return Err(signature::Error::from_source("the HSM dropped the request"));
        }
        signature::Signer::try_sign(&self.key, msg)
    }
}

/// What a worker is told: `mode|store dir|work dir|worker index|seed`.
struct Spec {
    mode: String,
    store: PathBuf,
    work: PathBuf,
    worker: usize,
    seed: u64,
}

impl Spec {
    fn parse(text: &str) -> Self {
        let f: Vec<&str> = text.split('|').collect();
        Self {
            mode: f[0].to_owned(),
            store: f[1].into(),
            work: f[2].into(),
            worker: f[3].parse().unwrap(),
            seed: f[4].parse().unwrap(),
        }
    }

    fn log(&self) -> PathBuf {
        log_path(&self.work, self.worker)
    }

    /// Waits until every worker has reached barrier `name`.
    fn barrier(&self, name: &str) {
        let dir = self.work.join("barriers");
        fs::write(dir.join(format!("{name}-{}", self.worker)), b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(0..WORKERS).all(|w| dir.join(format!("{name}-{w}")).exists()) {
            assert!(Instant::now() < deadline, "barrier {name}: timed out");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn log_path(work: &Path, worker: usize) -> PathBuf {
    work.join(format!("signed-{worker}.log"))
}

/// The worker: signs according to its mode, logs what the guard returned, exits 0.
#[test]
fn process_worker() {
    let Ok(text) = std::env::var(WORKER_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let spec = Spec::parse(&text);
    let fail_every = if spec.mode == "flaky" { 3 } else { 0 };
    let signer = SlowKey {
        key: key(TZ2_KEY),
        delay: Duration::from_millis(2),
        fail_every,
        calls: AtomicU64::new(spec.seed % 3),
    };
    let pkh = signer.key.public_key().hash();
    let guard = HighWatermark::new(FileStore::open(&spec.store).unwrap());
    let policy = KeyPolicy::baking();

    // Drop a line cut by a kill of this worker's predecessor, then append.
    let text = fs::read_to_string(spec.log()).unwrap_or_default();
    let keep = text.rfind('\n').map_or(0, |i| i + 1);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.log())
        .unwrap();
    log.set_len(u64::try_from(keep).unwrap()).unwrap();

    let mut errors = OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.work.join(format!("errors-{}.log", spec.worker)))
        .unwrap();
    // Returns whether a signature was returned. A refusal is expected; a signer failure in
    // "flaky" mode is retried, as a baker retries a failed request; any other error is logged
    // (the parent fails on it, after counting double signatures).
    let mut sign = |level: u32, variant: u8| -> bool {
        let payload = attestation(level, 0, variant);
        for _ in 0..20 {
            match guard.sign(&pkh, &policy, &signer, &payload) {
                Ok(signature) => {
                    log.write_all(format!("{level} {variant} {signature}\n").as_bytes())
                        .unwrap();
                    log.sync_data().unwrap();
                    return true;
                }
                Err(e) if e.is_double_sign() => return false,
                Err(e) if fail_every > 0 && e.to_string().contains("dropped the request") => {}
                Err(e) => {
                    writeln!(errors, "worker {} level {level}: {e}", spec.worker).unwrap();
                    return false;
                }
            }
        }
        writeln!(
            errors,
            "worker {} level {level}: too many failures",
            spec.worker
        )
        .unwrap();
        false
    };
    let own = u8::try_from(spec.worker + 1).unwrap();
    match spec.mode.as_str() {
        // Every worker signs its own bytes at every level, all at the same moment.
        "contest" | "flaky" => {
            for level in 1..=LEVELS {
                spec.barrier(&format!("level{level}"));
                sign(level, own);
                if spec.mode == "flaky" && level > 1 {
                    // A retry of the previous level's request: refused or the same signature.
                    sign(level - 1, own);
                }
            }
        }
        // Half the workers sign L, half L+1, at the same moment; then everybody tries other
        // bytes at L+1, which must be refused: L+1 was signed, and the record never moves back.
        "adjacent" => {
            for round in 0..LEVELS / 2 {
                let level = 100 + 2 * round;
                spec.barrier(&format!("round{round}a"));
                sign(level + u32::from(spec.worker % 2 == 1), own);
                spec.barrier(&format!("round{round}b"));
                sign(level + 1, 100 + own);
            }
        }
        // Sign increasing levels until killed, starting where the store is.
        "kill" => {
            let start = guard
                .store()
                .load(&pkh)
                .unwrap()
                .get(&(ChainId::MAINNET, MarkKind::Attestation))
                .map_or(1, |m| m.height.level);
            for level in start.. {
                sign(level, own);
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

/// `level → variant → signatures returned for it`, from every worker's log.
type Signed = BTreeMap<u32, BTreeMap<u8, BTreeSet<String>>>;

fn read_logs(work: &Path) -> Signed {
    let mut signed = Signed::new();
    for worker in 0..WORKERS {
        let errors = fs::read_to_string(work.join(format!("errors-{worker}.log")));
        if let Ok(errors) = errors {
            eprint!("{errors}");
        }
        let text = fs::read_to_string(log_path(work, worker)).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        for line in complete.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 3, "bad log line {line:?}");
            signed
                .entry(f[0].parse().unwrap())
                .or_default()
                .entry(f[1].parse().unwrap())
                .or_default()
                .insert(f[2].to_owned());
        }
    }
    signed
}

/// Checks every signature against the bytes it was returned for; returns the levels that got
/// signatures for two different payloads.
fn double_signed(signed: &Signed) -> Vec<u32> {
    let pk = key(TZ2_KEY).public_key();
    for (level, variants) in signed {
        for (variant, signatures) in variants {
            for s in signatures {
                let signature: Signature = s.parse().unwrap();
                tezos_keys::verify(&pk, &attestation(*level, 0, *variant), &signature)
                    .unwrap_or_else(|e| {
                        panic!("level {level}: a signature returned for other bytes: {e}")
                    });
            }
        }
    }
    signed
        .iter()
        .filter(|(_, variants)| variants.len() > 1)
        .map(|(level, _)| *level)
        .collect()
}

/// The errors the workers met (other than refusals and retried signer failures).
fn worker_errors(work: &Path) -> String {
    (0..WORKERS)
        .map(|w| fs::read_to_string(work.join(format!("errors-{w}.log"))).unwrap_or_default())
        .collect()
}

struct Run {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    work: PathBuf,
}

impl Run {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("watermarks");
        fs::create_dir(&store).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&store, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let work = tmp.path().join("work");
        fs::create_dir_all(work.join("barriers")).unwrap();
        Self {
            store,
            work,
            _tmp: tmp,
        }
    }

    fn spawn(&self, mode: &str, worker: usize, seed: u64) -> Child {
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
                    "{mode}|{}|{}|{worker}|{seed}",
                    self.store.display(),
                    self.work.display()
                ),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `WORKERS` workers in `mode` to the end; returns what they were given.
    fn run_all(&self, mode: &str) -> Signed {
        let children: Vec<Child> = (0..WORKERS)
            .map(|w| self.spawn(mode, w, w as u64))
            .collect();
        for (w, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "worker {w} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        read_logs(&self.work)
    }

    fn record_level(&self) -> Option<u32> {
        let pkh = key(TZ2_KEY).public_key().hash();
        FileStore::open(&self.store)
            .unwrap()
            .load(&pkh)
            .unwrap()
            .get(&(ChainId::MAINNET, MarkKind::Attestation))
            .map(|m| m.height.level)
    }
}

#[test]
fn four_processes_on_25_contested_levels_never_double_sign() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let started = Instant::now();
    let run = Run::new();
    let signed = run.run_all("contest");
    let doubles = double_signed(&signed);
    eprintln!(
        "{WORKERS} processes × {LEVELS} levels: {} levels signed, {} double-signed, {:?}",
        signed.len(),
        doubles.len(),
        started.elapsed()
    );
    assert_eq!(doubles, [] as [u32; 0], "levels signed twice");
    assert_eq!(worker_errors(&run.work), "");
    assert_eq!(signed.len(), LEVELS as usize, "every level signed once");
    assert_eq!(run.record_level(), Some(LEVELS));
}

#[test]
fn racing_l_against_l_plus_1_never_rolls_the_record_back() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let run = Run::new();
    let signed = run.run_all("adjacent");
    let doubles = double_signed(&signed);
    eprintln!(
        "L against L+1: {} levels signed, roll-backs (other bytes signed at L+1): {doubles:?}",
        signed.len()
    );
    assert_eq!(
        doubles,
        [] as [u32; 0],
        "a level signed again after a roll-back"
    );
    assert_eq!(worker_errors(&run.work), "");
    let top = 100 + 2 * (LEVELS / 2 - 1) + 1;
    assert!(signed.contains_key(&top), "L+1 is always signed");
    assert_eq!(run.record_level(), Some(top));
}

#[test]
fn retried_failed_requests_only_get_their_own_signature() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let run = Run::new();
    let signed = run.run_all("flaky");
    let doubles = double_signed(&signed); // also verifies each signature for its own bytes
    assert_eq!(doubles, [] as [u32; 0], "levels signed twice");
    assert_eq!(worker_errors(&run.work), "");
    assert_eq!(signed.len(), LEVELS as usize, "every level signed once");
    assert_eq!(run.record_level(), Some(LEVELS));
}

fn random(state: &mut u64) -> u64 {
    // xorshift64*
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Workers sign increasing levels; one at random is SIGKILLed every few tens of milliseconds
/// and restarted. After every kill the record parses and is not behind anything a worker was
/// given; at the end no level was signed twice.
#[test]
fn sigkill_during_concurrent_signing_never_corrupts_or_rolls_back() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    const KILLS: usize = 16;
    let started = Instant::now();
    let run = Run::new();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test seed {seed}");
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|w| run.spawn("kill", w, w as u64))
        .collect();
    for kill in 0..KILLS {
        std::thread::sleep(Duration::from_millis(20 + random(&mut seed) % 60));
        let w = (random(&mut seed) % WORKERS as u64) as usize;
        if let Some(status) = workers[w].try_wait().unwrap() {
            let out = fs::read_to_string(log_path(&run.work, w)).unwrap_or_default();
            panic!("kill {kill}: worker {w} stopped by itself ({status}); log: {out}");
        }
        workers[w].kill().unwrap(); // SIGKILL
        workers[w].wait().unwrap();
        // The record parses and is not behind what any worker was given.
        let signed = read_logs(&run.work);
        let record = run.record_level();
        if let Some((&top, _)) = signed.last_key_value() {
            assert!(
                record >= Some(top),
                "kill {kill}: record {record:?} behind {top}"
            );
        }
        workers[w] = run.spawn("kill", w, (kill * WORKERS + w) as u64);
    }
    for mut child in workers {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let signed = read_logs(&run.work);
    let doubles = double_signed(&signed);
    eprintln!(
        "{KILLS} SIGKILLs among {WORKERS} signing processes: {} levels signed, double-signed: \
         {doubles:?}, {:?}",
        signed.len(),
        started.elapsed()
    );
    assert_eq!(doubles, [] as [u32; 0], "levels signed twice");
    assert_eq!(worker_errors(&run.work), "");
    assert!(signed.len() >= 10, "the workers made too little progress");
    let (&top, _) = signed.last_key_value().unwrap();
    assert!(run.record_level() >= Some(top));
}
