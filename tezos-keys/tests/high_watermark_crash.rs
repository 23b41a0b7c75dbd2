//! Crash test: a child process signs increasing levels through a `FileStore` and is killed with
//! SIGKILL at random moments, then restarted. After every kill the store must parse, must not
//! be behind anything the child reported signed, and no (kind, level, round) may ever have been
//! signed for two different payloads, or returned two different signatures.
//!
//! The child is this test binary again, run with `TEZOS_KEYS_HWM_CHILD` set (test `crash_child`).
//! It signs with a signer that, like randomised ECDSA on an HSM, never gives the same signature
//! twice (seeded with the run number), so "same signature after a restart" proves the guard
//! returned the recorded one. Each signature the guard returns is appended to a log and fsynced
//! *after* the guard returned; a signature returned but not yet logged at the kill is invisible
//! to the log checks, which is why the store is also checked against the log.
//!
//! The kill moments come from a seed: `TEZOS_KEYS_CRASH_SEED=N` replays the delays of a run
//! (the seed is printed, and shown with the output of a failing run); without it a new seed is
//! taken from the clock. The thresholds at the end do not depend on how loaded the machine is:
//! every odd run waits until the child has logged `MIN_PROGRESS` signatures before its random
//! delay, which by itself guarantees them (see `sigkill_at_random_moments_never_double_signs`).
#![allow(clippy::unwrap_used)]

mod high_watermark_support;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use high_watermark_support::{block, consensus, key, TZ2_KEY};
use tezos_keys::high_watermark::{FileStore, HighWatermark, KeyPolicy, MarkKind, WatermarkStore};
use tezos_keys::payload::digest;
use tezos_keys::{ChainId, Curve, Signature};

const CHILD_ENV: &str = "TEZOS_KEYS_HWM_CHILD";
/// Set to replay the kill moments of an earlier run.
const SEED_ENV: &str = "TEZOS_KEYS_CRASH_SEED";
const RUNS: u64 = 15;
/// Signatures an odd run waits for before its random delay: more than the at most 9 a restart
/// logs before it signs new levels (3 retries, 3 other payloads at the last level, 3 at the next),
/// so every odd run ends with the log's highest level signed by the plain loop.
const MIN_PROGRESS: usize = 12;
/// How long an odd run waits for that progress: a guard against a hung child, not a threshold.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(120);
const KINDS: [MarkKind; 3] = [
    MarkKind::Preattestation,
    MarkKind::Attestation,
    MarkKind::Block,
];

fn payload(kind: MarkKind, level: u32, variant: u8) -> Vec<u8> {
    match kind {
        MarkKind::Block => block(ChainId::MAINNET, level, 0, variant),
        MarkKind::Preattestation => consensus(0x12, ChainId::MAINNET, level, 0, variant),
        MarkKind::Attestation => consensus(0x13, ChainId::MAINNET, level, 0, variant),
    }
}

/// Never the same signature twice: (run, counter). Not a valid signature; the guard does not
/// verify, it records and replays.
struct Randomised {
    run: u64,
    calls: AtomicU64,
}

impl signature::Signer<Signature> for Randomised {
    fn try_sign(&self, _msg: &[u8]) -> Result<Signature, signature::Error> {
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&self.run.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.calls.fetch_add(1, Ordering::SeqCst).to_be_bytes());
        Ok(Signature::new(Curve::Secp256k1, bytes))
    }
}

/// One log line: what the guard returned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    kind: String,
    level: u32,
    digest: String,
    signature: String,
}

/// The complete lines of the log (a line cut by the kill is ignored).
fn read_log(path: &Path) -> Vec<Entry> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 4, "bad log line {line:?}");
            Entry {
                kind: f[0].to_owned(),
                level: f[1].parse().unwrap(),
                digest: f[2].to_owned(),
                signature: f[3].to_owned(),
            }
        })
        .collect()
}

/// The child: `<store dir>|<log>|<run>`. Signs until killed.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (dir, log, run) = (
        parts[0],
        Path::new(parts[1]),
        parts[2].parse::<u64>().unwrap(),
    );
    let pkh = key(TZ2_KEY).public_key().hash();
    let guard = HighWatermark::new(FileStore::open(dir).unwrap());
    let signer = Randomised {
        run,
        calls: AtomicU64::new(0),
    };
    let policy = KeyPolicy::baking();

    // Drop a line cut by the previous kill, so appends start on a fresh line.
    let text = fs::read_to_string(log).unwrap_or_default();
    let keep = text.rfind('\n').map_or(0, |i| i + 1);
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    out.set_len(u64::try_from(keep).unwrap()).unwrap();
    let last = read_log(log).iter().map(|e| e.level).max().unwrap_or(0);

    let mut record = |kind: MarkKind, level: u32, payload: &[u8], signature: Signature| {
        let line = format!(
            "{kind} {level} {} {signature}\n",
            hex::encode(digest(payload))
        );
        out.write_all(line.as_bytes()).unwrap();
        out.sync_data().unwrap();
    };
    let other = u8::try_from(run % 200 + 1).unwrap();
    let mut sign = |kind: MarkKind, level: u32, variant: u8, may_refuse: bool| {
        let p = payload(kind, level, variant);
        match guard.sign(&pkh, &policy, &signer, &p) {
            Ok(signature) => record(kind, level, &p, signature),
            Err(e) if e.is_double_sign() && may_refuse => {}
            Err(e) => panic!("{kind} level {level} variant {variant}: {e}"),
        }
    };
    if last > 0 {
        for kind in KINDS {
            // The retried request: must get the logged signature again (checked by the parent).
            sign(kind, last, 0, true);
            // Other bytes at the last logged level: must be refused (a signature here is logged
            // and makes the parent fail).
            sign(kind, last, other, true);
        }
    }
    // The next level may or may not have been signed before the kill: try other bytes first.
    for kind in KINDS {
        sign(kind, last + 1, other, true);
    }
    for level in last + 1.. {
        for kind in KINDS {
            sign(kind, level, 0, level == last + 1);
        }
    }
}

fn random(state: &mut u64) -> u64 {
    // xorshift64*
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn sigkill_at_random_moments_never_double_signs() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let log = tmp.path().join("signed.log");
    let store = FileStore::create(&dir).unwrap();
    let pkh = key(TZ2_KEY).public_key().hash();
    let exe = std::env::current_exe().unwrap();
    let initial_seed = match std::env::var(SEED_ENV) {
        Ok(text) => text
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("{SEED_ENV}={text:?}: not a number ({e})")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    } | 1;
    let mut seed = initial_seed;
    eprintln!("crash test seed {initial_seed} (replay: {SEED_ENV}={initial_seed})");

    let mut kills_after_progress = 0;
    for run in 1..=RUNS {
        let before = read_log(&log).len();
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(
                CHILD_ENV,
                format!("{}|{}|{run}", dir.display(), log.display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Odd runs: kill at a random moment once the child has logged MIN_PROGRESS signatures (so
        // every other run makes progress, however loaded the machine). Even runs: at a random
        // moment after the start, which may be before it has signed anything.
        if run % 2 == 1 {
            let deadline = Instant::now() + PROGRESS_DEADLINE;
            while read_log(&log).len() < before + MIN_PROGRESS {
                if let Some(status) = child.try_wait().unwrap() {
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "run {run} (seed {initial_seed}): the child stopped by itself ({status}): {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "run {run} (seed {initial_seed}): the child logged fewer than {MIN_PROGRESS} \
                     signatures in {PROGRESS_DEADLINE:?}: it hangs"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(random(&mut seed) % 100));
        } else {
            std::thread::sleep(Duration::from_millis(random(&mut seed) % 250));
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "run {run} (seed {initial_seed}): the child stopped by itself ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        // After every kill: the store parses, and is not behind the log.
        let marks = store.load(&pkh).unwrap();
        let entries = read_log(&log);
        if entries.len() > before {
            kills_after_progress += 1;
        }
        check(&entries);
        for kind in KINDS {
            let Some(last) = entries
                .iter()
                .filter(|e| e.kind == kind.name())
                .max_by_key(|e| e.level)
            else {
                continue;
            };
            let mark = marks.get(&(ChainId::MAINNET, kind)).unwrap_or_else(|| {
                panic!("run {run}: no {kind} mark, log has level {}", last.level)
            });
            assert!(
                mark.height.level >= last.level,
                "run {run}: store behind log"
            );
            if mark.height.level == last.level {
                assert_eq!(
                    mark.digest.map(hex::encode),
                    Some(last.digest.clone()),
                    "run {run} {kind}"
                );
                assert_eq!(
                    mark.signature.map(|s| s.to_string()),
                    Some(last.signature.clone()),
                    "run {run} {kind}"
                );
            }
        }
    }

    let entries = read_log(&log);
    let per_height = check(&entries);
    let levels = entries.iter().map(|e| e.level).max().unwrap_or(0);
    let repeats = entries.len() - per_height;
    eprintln!(
        "crash test: {RUNS} SIGKILLs ({kills_after_progress} after new signatures), {} signatures \
         logged, {per_height} distinct (kind, level), {repeats} of them returned again after a \
         restart, up to level {levels}, in {:?}",
        entries.len(),
        started.elapsed()
    );
    // Guaranteed whatever the timing: the 8 odd runs each logged MIN_PROGRESS signatures.
    assert!(
        kills_after_progress >= RUNS.div_ceil(2),
        "seed {initial_seed}: only {kills_after_progress} runs made progress"
    );
    // Guaranteed too, once per pair of runs (2, 3) .. (14, 15): the odd run before the pair ended
    // with its highest logged level signed by the plain loop, so one of the three retries at that
    // level is the very same payload and gets the recorded signature back; it is the first
    // signature the next run logs, either the even run or, when that one logged nothing and
    // changed nothing, the odd run after it, which logs MIN_PROGRESS.
    assert!(
        repeats >= usize::try_from(RUNS / 2).unwrap(),
        "seed {initial_seed}: only {repeats} logged levels were retried after a restart"
    );
}

/// No (kind, level) with two payloads or two signatures; returns how many distinct ones.
fn check(entries: &[Entry]) -> usize {
    let mut seen: BTreeMap<(&str, u32), &Entry> = BTreeMap::new();
    for e in entries {
        if let Some(first) = seen.insert((&e.kind, e.level), e) {
            assert_eq!(
                (&first.digest, &first.signature),
                (&e.digest, &e.signature),
                "{} level {} round 0 signed twice differently",
                e.kind,
                e.level
            );
        }
    }
    seen.len()
}
