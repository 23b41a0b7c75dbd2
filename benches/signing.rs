//! The signing hot path against the raw PKCS#11 call it wraps (issue 7; see BENCHMARKS.md).
//!
//! One run, one throw-away SoftHSM2 token, one key per curve (secp256k1, P-256). For each curve:
//!
//! - `raw_c_sign`: the baseline, `cryptoki`'s `Session::sign` with `CKM_ECDSA` on one session
//!   opened directly (`C_SignInit` + `C_Sign` for the size + `C_Sign`), same token, same key;
//! - `pool_sign`: `cryptoki_ops::SigningKey::sign` of the same digest through the session pool;
//! - `tezos_verify_off` / `tezos_verify_on`: `tezos_keys::HsmKey::sign_allowed` of a Tezos
//!   payload end to end (watermark check, BLAKE2b-256, HSM sign, low-S, base58 encoding), with
//!   software verify-after-sign off and on;
//! - `software_verify_off` / `software_verify_on`: the same without the HSM call (a signature
//!   made beforehand), to show what the library adds;
//! - `{curve}-threads`: signatures per second with 1, 2 and 4 threads sharing one pool of 4
//!   sessions (`pool/N`), and with N threads each on its own raw session (`raw/N`), a batch of
//!   [`BATCH`] signatures per iteration.
//!
//! Criterion runs each bench to its end before the next, so two of its figures are taken seconds
//! apart on a machine whose speed drifts: use them for absolute times and their confidence
//! intervals, not for ratios. Every ratio of BENCHMARKS.md comes from `benches/ratios.rs`, which
//! interleaves the two sides round by round.
//!
//! `cargo bench --bench signing` (add `-- --quick` for a smoke run, or a filter such as `p256`).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use cryptoki::mechanism::Mechanism;
use cryptoki_ops::{Curve, KeySelector, SigningKey};
use tezos_keys::payload::{self, Watermark};
use tezos_keys::{verify_digest, HsmKey, KeyPolicy, Signature};

use support::Store;

/// Signatures per iteration of the multi-threaded benches (divisible by 1, 2 and 4).
const BATCH: u64 = 32;
/// Threads of the multi-threaded benches.
const THREADS: [usize; 3] = [1, 2, 4];
/// Sessions in the benchmarked pool (enough for the 4-thread bench: no thread ever waits).
const POOL_SESSIONS: usize = 4;

/// A generic Tezos operation (watermark 0x03, branch, one manager operation): 128 bytes.
fn tezos_payload() -> Vec<u8> {
    let mut payload = vec![0x03];
    payload.extend((0u8..127).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    payload
}

fn main() {
    // First, before any thread and before SoftHSM2 is loaded: the store's configuration.
    let store = Store::create("bench").expect("a SoftHSM2 token for the benchmarks");
    let hsm = store.open(POOL_SESSIONS).expect("open the bench token");
    // Short enough that a cold `cargo bench` (build included) stays under 3 minutes on 2 cores;
    // a signature takes 50 to 400 µs, so 3 s still gives thousands of them per bench.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .nresamples(20_000)
        .without_plots()
        .configure_from_args();
    for curve in [Curve::Secp256k1, Curve::P256] {
        let label = format!("bench-{}", curve.name());
        store
            .generate(&hsm, curve, &label)
            .expect("generate the bench key");
        let key = hsm
            .signing_key(&KeySelector::Label(label))
            .expect("the bench key");
        bench_curve(&mut criterion, &store, &key);
        bench_threads(&mut criterion, &store, &key);
    }
    criterion.final_summary();
}

/// Single-threaded: baseline, pool, Tezos end to end, software only.
fn bench_curve(c: &mut Criterion, store: &Store, key: &SigningKey) {
    let curve = key.curve();
    let digest = payload::digest(&tezos_payload());
    let (raw_session, raw_handle) = store
        .raw_session(&key.key_pair().private.id)
        .expect("raw session");
    let tezos = HsmKey::new(key.clone()).expect("Tezos key");
    let tezos_off = tezos.clone().with_verify_after_sign(false);
    let tezos_on = tezos.clone().with_verify_after_sign(true);
    let payload = tezos_payload();
    let policy = KeyPolicy::new([Watermark::Generic]);
    // One signature made on the token, for the software-only benches.
    let hsm_signature = key.sign(&digest).expect("sign once");

    let mut group = c.benchmark_group(curve.name());
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_c_sign", |b| {
        b.iter(|| {
            raw_session
                .sign(&Mechanism::Ecdsa, raw_handle, black_box(&digest))
                .expect("C_Sign")
        })
    });
    group.bench_function("pool_sign", |b| {
        b.iter(|| key.sign(black_box(&digest)).expect("pool sign"))
    });
    for (name, key) in [
        ("tezos_verify_off", &tezos_off),
        ("tezos_verify_on", &tezos_on),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let (signature, _) = key
                    .sign_allowed(black_box(&payload), &policy)
                    .expect("Tezos sign");
                signature.to_string()
            })
        });
    }
    for (name, verify) in [("software_verify_off", false), ("software_verify_on", true)] {
        group.bench_function(name, |b| {
            b.iter(|| software_only(&tezos, black_box(&payload), &hsm_signature, verify))
        });
    }
    group.finish();
    drop(raw_session);
}

/// What `HsmKey::sign_allowed` + encoding do around the HSM call, with the HSM's answer given.
fn software_only(key: &HsmKey, payload: &[u8], raw: &[u8; 64], verify: bool) -> String {
    let info = payload::classify(payload).expect("classify");
    assert_eq!(info.watermark, Watermark::Generic);
    let digest = payload::digest(payload);
    let signature = Signature::new(key.curve(), *raw)
        .normalize_s()
        .expect("low-S");
    if verify {
        verify_digest(key.public_key(), &digest, &signature).expect("verify");
    }
    signature.to_string()
}

/// Throughput with N threads: sharing the pool, or each on its own raw session.
fn bench_threads(c: &mut Criterion, store: &Store, key: &SigningKey) {
    let digest = payload::digest(&tezos_payload());
    let max_threads = THREADS.iter().copied().max().unwrap_or(1);
    let mut raw: Vec<_> = (0..max_threads)
        .map(|_| {
            store
                .raw_session(&key.key_pair().private.id)
                .expect("raw session")
        })
        .collect();

    let mut group = c.benchmark_group(format!("{}-threads", key.curve().name()));
    group.throughput(Throughput::Elements(BATCH));
    for threads in THREADS {
        let per_thread = BATCH / threads as u64;
        group.bench_with_input(BenchmarkId::new("raw", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                let sessions = &mut raw[..n];
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for (session, handle) in sessions.iter_mut() {
                        let handle = *handle;
                        scope.spawn(move || {
                            for _ in 0..iters * per_thread {
                                session
                                    .sign(&Mechanism::Ecdsa, handle, black_box(&digest))
                                    .expect("C_Sign");
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
        group.bench_with_input(BenchmarkId::new("pool", threads), &threads, |b, &n| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..n {
                        scope.spawn(|| {
                            for _ in 0..iters * per_thread {
                                key.sign(black_box(&digest)).expect("pool sign");
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}
