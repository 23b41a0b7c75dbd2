//! Ratios measured side by side (issue 15; the figures of BENCHMARKS.md).
//!
//! A ratio of two benchmarks run one after the other compares figures taken seconds apart, on a
//! machine whose speed drifts with what else runs on it. Here A and B alternate round by round
//! on one throw-away SoftHSM2 token and one key per curve: each round gives each side a fixed
//! time (`RATIO_SIDE_MS`, 500 ms) in slices that alternate A, B, A, B... (`RATIO_SLICE_MS`,
//! 25 ms; B first in every other round, so that neither side always runs second), and takes the
//! ratio of the two sides' times per operation. The result is the median of the rounds' ratios
//! with their spread (min–max). A ratio is B's time per operation over A's, i.e. A's throughput
//! relative to B's: 1.0 means A is as fast as B, 0.5 half as fast. Each single-thread ratio is
//! given twice: by wall clock, and by the CPU time of the thread (SoftHSM2 runs in it), which
//! other processes on the machine disturb much less.
//!
//! Pairs, for secp256k1 and P-256:
//!
//! - `pool sign / raw C_Sign`: `cryptoki_ops::SigningKey::sign` of a 32-byte digest through the
//!   session pool, against `cryptoki`'s `Session::sign` with `CKM_ECDSA` on one session opened
//!   directly (`C_SignInit` + `C_Sign` for the size + `C_Sign`), same key;
//! - `Tezos sign, verify off / raw C_Sign` and `Tezos sign, verify on / raw C_Sign`:
//!   `tezos_keys::HsmKey::sign_allowed` of a 128-byte Tezos operation end to end (watermark
//!   check, BLAKE2b-256, HSM sign, low-S, verify-after-sign off/on, base58check `spsig1`/`p2sig`);
//! - `pool, 2 threads / raw, 2 threads`: two threads sharing one pool (of 4 sessions) against two
//!   threads each on its own raw session;
//! - `fast verify / pure-Rust verify` (software only): `tezos_keys::Verifier::verify_digest`
//!   (libsecp256k1, OpenSSL) against `k256`/`p256`'s `verify_prehash` of the same signature.
//!
//! ```text
//! cargo bench --bench ratios                  # all pairs: 7 rounds x 0.5 s a side (about 80 s)
//! cargo bench --bench ratios -- p256          # only the pairs whose name contains "p256"
//! cargo test --bench ratios                   # one 10 ms round of each pair: a smoke test
//! RATIO_ROUNDS=5 RATIO_SIDE_MS=300 RATIO_SLICE_MS=10 cargo bench --bench ratios
//! ```

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_ops::{Curve, KeySelector, SigningKey};
use signature::hazmat::PrehashVerifier as _;
use tezos_keys::payload::{self, Watermark};
use tezos_keys::{HsmKey, KeyPolicy, Verifier};

use support::stats::{median, spread};
use support::Store;

/// Sessions in the pool: more than the 2-thread pair needs, so no thread ever waits.
const POOL_SESSIONS: usize = 4;

/// A generic Tezos operation (watermark 0x03, branch, one manager operation): 128 bytes, the
/// same as benches/signing.rs.
fn tezos_payload() -> Vec<u8> {
    let mut payload = vec![0x03];
    payload.extend((0u8..127).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    payload
}

/// One side of a pair: runs for `duration` and returns how many operations it did, how long that
/// took, and (single-thread sides) how much CPU time this thread used for it.
type Side<'a> = Box<dyn FnMut(Duration) -> Run + 'a>;

/// What one slice of one side did.
#[derive(Clone, Copy, Default)]
struct Run {
    ops: u64,
    wall: Duration,
    cpu: Option<Duration>,
}

impl Run {
    fn add(&mut self, other: Run) {
        self.ops += other.ops;
        self.wall += other.wall;
        self.cpu = match (self.ops == other.ops, self.cpu, other.cpu) {
            (true, _, cpu) => cpu, // the first slice
            (false, Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }

    fn wall_per_op(&self) -> f64 {
        self.wall.as_secs_f64() / self.ops.max(1) as f64
    }

    fn cpu_per_op(&self) -> Option<f64> {
        Some(self.cpu?.as_secs_f64() / self.ops.max(1) as f64)
    }
}

/// The CPU time this thread has run so far: the first field of Linux's
/// `/proc/thread-self/schedstat` (nanoseconds on a CPU; SoftHSM2 runs in this thread, so its
/// work is included). Other processes on the machine change the wall clock of a signature, much
/// less its CPU time. `None` where the file is missing.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `op` one call at a time until `duration` has passed.
fn sequential<'a>(mut op: impl FnMut() + 'a) -> Side<'a> {
    Box::new(move |duration| {
        let cpu = thread_cpu();
        let start = Instant::now();
        let mut ops = 0;
        while start.elapsed() < duration {
            op();
            ops += 1;
        }
        let wall = start.elapsed();
        let cpu = thread_cpu()
            .zip(cpu)
            .map(|(end, start)| end.saturating_sub(start));
        Run { ops, wall, cpu }
    })
}

/// Runs one of `ops` on each of its own thread until `duration` has passed; the operations of
/// all threads over the wall time (no CPU time: it would hide the time threads wait for each
/// other, which is what this measures).
fn threaded<'a, F: FnMut() + Send + 'a>(mut ops: Vec<F>) -> Side<'a> {
    Box::new(move |duration| {
        let done = AtomicU64::new(0);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for op in ops.iter_mut() {
                let done = &done;
                scope.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < duration {
                        op();
                        n += 1;
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                });
            }
        });
        Run {
            ops: done.load(Ordering::Relaxed),
            wall: start.elapsed(),
            cpu: None,
        }
    })
}

/// What one pair measured: per round, what A and B did.
struct Measured {
    a: Vec<Run>,
    b: Vec<Run>,
}

impl Measured {
    /// Per round, B's wall time per operation over A's.
    fn wall_ratios(&self) -> Vec<f64> {
        let a = self.a.iter().map(Run::wall_per_op);
        a.zip(self.b.iter().map(Run::wall_per_op))
            .map(|(a, b)| b / a)
            .collect()
    }

    /// Per round, B's CPU time per operation over A's, if measured.
    fn cpu_ratios(&self) -> Option<Vec<f64>> {
        let a = self.a.iter().map(Run::cpu_per_op);
        a.zip(self.b.iter().map(Run::cpu_per_op))
            .map(|(a, b)| Some(b? / a?))
            .collect()
    }
}

/// A and B in turn, `rounds` times, each for `side` in all, in slices of `slice` taken
/// alternately (B first in odd rounds): fine slices make both sides see the same machine, even
/// when other processes come and go within a round.
fn interleave(
    a: &mut Side<'_>,
    b: &mut Side<'_>,
    rounds: usize,
    side: Duration,
    slice: Duration,
) -> Measured {
    // Warm-up: caches, the pool's sessions, lazily made state.
    a(side / 5);
    b(side / 5);
    let slices = (side.as_secs_f64() / slice.as_secs_f64()).ceil().max(1.0) as u32;
    let mut measured = Measured {
        a: Vec::new(),
        b: Vec::new(),
    };
    for round in 0..rounds {
        let (mut ta, mut tb) = (Run::default(), Run::default());
        for _ in 0..slices {
            if round % 2 == 0 {
                ta.add(a(slice));
                tb.add(b(slice));
            } else {
                tb.add(b(slice));
                ta.add(a(slice));
            }
        }
        measured.a.push(ta);
        measured.b.push(tb);
    }
    measured
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A pair to measure: its name, A, B, and the issue's target for the ratio, if any.
struct Pair<'a> {
    name: String,
    a: Side<'a>,
    b: Side<'a>,
    target: Option<f64>,
}

fn main() {
    // First, before any thread and before SoftHSM2 is loaded: the store's configuration.
    let store = Store::create("ratios").expect("a SoftHSM2 token for the benchmarks");
    let hsm = store.open(POOL_SESSIONS).expect("open the bench token");
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then one short round of
    // each pair, to check that the code runs, not to measure.
    let bench = args.iter().any(|a| a == "--bench");
    let (rounds, side, slice) = if bench {
        (
            env_or("RATIO_ROUNDS", 7usize).max(1),
            Duration::from_millis(env_or("RATIO_SIDE_MS", 500u64)),
            Duration::from_millis(env_or("RATIO_SLICE_MS", 25u64).max(1)),
        )
    } else {
        (1, Duration::from_millis(10), Duration::from_millis(5))
    };
    // Anything not starting with `-` filters the pairs by name.
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));

    let mut keys = Vec::new();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("ratios-{}", curve.name());
        store
            .generate(&hsm, curve, &label)
            .expect("generate the bench key");
        keys.push(
            hsm.signing_key(&KeySelector::Label(label))
                .expect("the bench key"),
        );
    }
    let mut raw: Vec<Vec<(Session, ObjectHandle)>> = keys
        .iter()
        .map(|key| {
            (0..2)
                .map(|_| {
                    store
                        .raw_session(&key.key_pair().private.id)
                        .expect("raw session")
                })
                .collect()
        })
        .collect();

    if !bench {
        println!("ratios: smoke test (`cargo bench --bench ratios` measures): no verdicts");
    }
    let before = load_average();
    println!(
        "ratios: {rounds} rounds x {} ms a side, A and B alternating every {} ms; {} CPUs; load average before: {before}",
        side.as_millis(),
        slice.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!("| curve | A / B | ratio, wall clock: median (min–max) | ratio, CPU time: median (min–max) | A: µs/op, wall (CPU) | B: µs/op, wall (CPU) | target |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for (key, sessions) in keys.iter().zip(raw.iter_mut()) {
        for mut pair in pairs(key, sessions) {
            if !wanted(&format!("{} {}", key.curve().name(), pair.name)) {
                continue;
            }
            let m = interleave(&mut pair.a, &mut pair.b, rounds, side, slice);
            let wall = m.wall_ratios();
            let cpu = m.cpu_ratios();
            let verdict = |ratios: &[f64], t: f64| {
                if median(ratios) >= t {
                    "met"
                } else {
                    "missed"
                }
            };
            let target = pair
                .target
                .filter(|_| bench)
                .map_or(String::new(), |t| match &cpu {
                    Some(cpu) => format!(
                        "≥ {t:.2}: {} (wall), {} (CPU)",
                        verdict(&wall, t),
                        verdict(cpu, t)
                    ),
                    None => format!("≥ {t:.2}: {}", verdict(&wall, t)),
                });
            let time = |runs: &[Run]| {
                let wall: Vec<f64> = runs.iter().map(Run::wall_per_op).collect();
                let cpu: Option<Vec<f64>> = runs.iter().map(Run::cpu_per_op).collect();
                match cpu {
                    Some(cpu) => format!("{:.1} ({:.1})", median(&wall) * 1e6, median(&cpu) * 1e6),
                    None => format!("{:.1}", median(&wall) * 1e6),
                }
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {target} |",
                key.curve().name(),
                pair.name,
                spread(&wall),
                cpu.as_deref().map_or("–".into(), spread),
                time(&m.a),
                time(&m.b),
            );
        }
    }
    println!();
    println!("load average after: {}", load_average());
}

/// The pairs of one curve's key. `sessions`: three raw sessions on the token, logged in, with
/// the key's private handle in each: the first for the single-thread baseline, the other two
/// for the threads.
fn pairs<'a>(key: &'a SigningKey, sessions: &'a mut [(Session, ObjectHandle)]) -> Vec<Pair<'a>> {
    let curve = key.curve();
    let payload = tezos_payload();
    let digest = payload::digest(&payload);
    let tezos = HsmKey::new(key.clone()).expect("Tezos key");
    let verify_on_target = match curve {
        Curve::P256 => 0.45,
        _ => 0.90,
    };
    // Raw C_Sign on the first session: the baseline of the single-thread pairs.
    let (first, rest) = sessions.split_at_mut(1);
    let (session, handle) = (&first[0].0, first[0].1);
    let raw_sign = move || {
        session
            .sign(&Mechanism::Ecdsa, handle, black_box(&digest))
            .expect("C_Sign");
    };
    // One thread on each of the other sessions.
    let raw_threads: Vec<_> = rest
        .iter_mut()
        .map(|(session, handle)| {
            let handle = *handle;
            move || {
                session
                    .sign(&Mechanism::Ecdsa, handle, black_box(&digest))
                    .expect("C_Sign");
            }
        })
        .collect();
    let tezos_sign = move |key: HsmKey| {
        let payload = payload.clone();
        let policy = KeyPolicy::new([Watermark::Generic]);
        move || {
            let (signature, _) = key
                .sign_allowed(black_box(&payload), &policy)
                .expect("Tezos sign");
            black_box(signature.to_string());
        }
    };
    // One signature for the software-only pair.
    let signature = tezos.sign_digest(&digest).expect("sign once");
    let verifier = Verifier::new(tezos.public_key()).expect("verifier");
    let public_key = *tezos.public_key();
    let pure_rust = move || match curve {
        Curve::Secp256k1 => {
            let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key.as_bytes())
                .expect("k256 key");
            let sig = k256::ecdsa::Signature::from_slice(signature.as_bytes()).expect("k256 sig");
            key.verify_prehash(black_box(&digest), &sig)
                .expect("k256 verify");
        }
        _ => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key.as_bytes())
                .expect("p256 key");
            let sig = p256::ecdsa::Signature::from_slice(signature.as_bytes()).expect("p256 sig");
            key.verify_prehash(black_box(&digest), &sig)
                .expect("p256 verify");
        }
    };
    let fast = move || {
        verifier
            .verify_digest(black_box(&digest), &signature)
            .expect("fast verify")
    };
    let pool_op = move || {
        key.sign(black_box(&digest)).expect("pool sign");
    };
    vec![
        Pair {
            name: "pool sign / raw C_Sign".into(),
            a: sequential(pool_op),
            b: sequential(raw_sign),
            target: Some(0.97),
        },
        Pair {
            name: "Tezos sign, verify off / raw C_Sign".into(),
            a: sequential(tezos_sign(tezos.clone().with_verify_after_sign(false))),
            b: sequential(raw_sign),
            target: Some(0.95),
        },
        Pair {
            name: "Tezos sign, verify on / raw C_Sign".into(),
            a: sequential(tezos_sign(tezos.clone().with_verify_after_sign(true))),
            b: sequential(raw_sign),
            target: Some(verify_on_target),
        },
        Pair {
            name: "pool, 2 threads / raw, 2 threads".into(),
            a: threaded(vec![pool_op, pool_op]),
            b: threaded(raw_threads),
            target: Some(0.95),
        },
        Pair {
            name: "fast verify / pure-Rust verify (software only)".into(),
            a: sequential(fast),
            b: sequential(pure_rust),
            target: None,
        },
    ]
}
