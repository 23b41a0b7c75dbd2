//! Scaling (issue 18): throughput and latency of Tezos signing as the session pool and its
//! callers grow, against a simulated CloudHSM cluster; the figures of BENCHMARKS.md §8.
//!
//! Every signature goes through the CloudHSM profile (`cloudhsm-profile/`), which forwards to a
//! throw-away SoftHSM2 token and makes each signing `C_Sign` a round trip of
//! `SCALING_LATENCY_US` (2,000 µs) spent asleep, as on a network, and each search or attribute
//! read one of `SCALING_READ_LATENCY_US` (500 µs). With a capacity it also refuses the
//! signatures beyond that many in flight with `CKR_FUNCTION_FAILED`, as a busy HSM does (AWS
//! user guide, "HSM throttling"). For each capacity (`SCALING_CAPACITIES`, default `0,14`; `0`
//! = none; 14 at 2 ms is 7,000 signatures/s, the published figure of six `hsm2m.medium`) a child
//! process loads the profile with it (the profile reads its environment once). For each pool
//! size N (`SCALING_SIZES`, default 1, 2, 4, 8, 16, 32, 64) the child opens a pool of N sessions
//! and runs N threads, each signing a 128-byte Tezos operation with
//! `tezos_keys::HsmKey::sign_allowed` (verify-after-sign off, P-256) for `SCALING_SECONDS` (3)
//! after a warm-up (`SigningKey::warm_up`: every session opened, the key's handle cached in
//! each; then 0.5 s of signing). Pool size
//! 1 with 1 thread is Signatory's design (one session under a mutex); `1 x 16` is that one
//! session shared by 16 callers.
//!
//! ```text
//! cargo build --release -p cloudhsm-profile && cargo bench --bench scaling
//! SCALING_SECONDS=2 SCALING_SIZES=1,16 SCALING_CAPACITIES=0,6 cargo bench --bench scaling
//! cargo test --bench scaling                  # smoke test: two tiny points, no figures
//! ```
//!
//! Prints a Markdown table and writes the points as CSV to `target/scaling.csv` (read by
//! `benches/scaling_plot.py`). Columns: signatures/s; p50, p99 and max latency of one signature
//! as its caller sees it (pool wait, retries and back-off included); the process's CPU time per
//! signature (SoftHSM2's own signing included, about 55 µs here: on CloudHSM that part runs on
//! the HSM); errors returned to callers; throttled answers the pool absorbed.

mod support;

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{Curve, Hsm, HsmConfig, KeySelector, ModuleSource, PinSource, TokenSelector};
use tezos_keys::payload::Watermark;
use tezos_keys::{HsmKey, KeyPolicy};

use support::Store;

/// The benchmark key (P-256: SoftHSM2 signs it in about 55 µs of CPU, secp256k1 in 290 µs).
const KEY: &str = "scaling-p256";
/// Set for the child processes: the token's label.
const CHILD_ENV: &str = "SCALING_CHILD_TOKEN";
/// CSV header, one line per point.
const CSV_HEADER: &str =
    "capacity,sessions,threads,signatures,seconds,per_second,p50_us,p99_us,max_us,cpu_us,errors,throttled";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU time of this process so far: user + system, from `/proc/self/stat` (10 ms ticks).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> u64 {
        rest.split_whitespace()
            .nth(n)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15 of the line, 12th and 13th after the name.
    Duration::from_millis((field(11) + field(12)) * 10)
}

/// The profile module built next to this benchmark: target/<profile>/libcloudhsm_profile.so.
fn profile_module() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the benchmark's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join("libcloudhsm_profile.so");
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --release -p cloudhsm-profile`)",
        path.display()
    );
    path
}

/// A generic Tezos operation (watermark 0x03): 128 bytes, as in benches/ratios.rs.
fn tezos_payload() -> Vec<u8> {
    let mut payload = vec![0x03];
    payload.extend((0u8..127).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    payload
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

/// What the threads of one run did: each thread's latencies (µs) and errors.
type Results = Vec<(Vec<u64>, u64)>;

/// `threads` callers sign with `key` until `until`; latencies are kept if `record`.
fn sign_until(key: &HsmKey, threads: usize, until: Instant, record: bool) -> Results {
    let policy = KeyPolicy::new([Watermark::Generic]);
    let payload = tezos_payload();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (policy, payload) = (&policy, &payload);
                scope.spawn(move || {
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    while Instant::now() < until {
                        let started = Instant::now();
                        match key.sign_allowed(payload, policy) {
                            Ok(_) if record => latencies.push(started.elapsed().as_micros() as u64),
                            Ok(_) => {}
                            Err(_) => errors += 1,
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a signing thread"))
            .collect()
    })
}

/// One point, measured in this (child) process: one CSV line.
fn measure(
    token: &str,
    capacity: usize,
    sessions: usize,
    threads: usize,
    warm: Duration,
    run: Duration,
) -> String {
    let config = HsmConfig::new(
        TokenSelector::Label(token.into()),
        PinSource::Value(SecretString::from(support::USER_PIN)),
    )
    .with_module(ModuleSource::Path(profile_module()))
    .with_max_sessions(sessions)
    .with_checkout_timeout(Duration::from_secs(30));
    let hsm = Hsm::open(&config).expect("open the token through the profile");
    let key = hsm
        .signing_key(&KeySelector::Label(KEY.into()))
        .expect("the benchmark key");
    key.warm_up().expect("every session looks the key up");
    let key = HsmKey::new(key)
        .expect("a Tezos key")
        .with_verify_after_sign(false);
    sign_until(&key, threads, Instant::now() + warm, false);
    let throttled = hsm.pool_stats().throttled;
    let (started, cpu) = (Instant::now(), process_cpu());
    let results = sign_until(&key, threads, started + run, true);
    let (seconds, cpu) = (started.elapsed().as_secs_f64(), process_cpu() - cpu);
    let throttled = hsm.pool_stats().throttled - throttled;
    let mut latencies: Vec<u64> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    latencies.sort_unstable();
    let signatures = latencies.len();
    let errors: u64 = results.iter().map(|(_, e)| e).sum();
    format!(
        "{capacity},{sessions},{threads},{signatures},{seconds:.3},{:.0},{},{},{},{:.0},{errors},{throttled}",
        signatures as f64 / seconds,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        cpu.as_micros() as f64 / signatures.max(1) as f64,
    )
}

/// The points of one capacity: pool size = threads for each size, then one session shared by
/// 16 threads.
fn points(sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut points: Vec<(usize, usize)> = sizes.iter().map(|&n| (n, n)).collect();
    if sizes.contains(&16) {
        points.push((1, 16));
    }
    points
}

/// The child: every point of one capacity, one CSV line each on stdout.
fn child(token: &str, smoke: bool) {
    let capacity = env_or("CLOUDHSM_PROFILE_SIGN_CAPACITY", 0usize);
    let (warm, run) = if smoke {
        (Duration::from_millis(20), Duration::from_millis(50))
    } else {
        (
            Duration::from_millis(500),
            Duration::from_secs_f64(env_or("SCALING_SECONDS", 3.0)),
        )
    };
    let sizes = if smoke {
        vec![1, 4]
    } else {
        env_list("SCALING_SIZES", &[1, 2, 4, 8, 16, 32, 64])
    };
    for (sessions, threads) in points(&sizes) {
        println!("{}", measure(token, capacity, sessions, threads, warm, run));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    if let Ok(token) = std::env::var(CHILD_ENV) {
        return child(&token, smoke);
    }
    // First, before any thread and before SoftHSM2 is loaded: the store's configuration.
    let store = Store::create("scaling").expect("a SoftHSM2 token for the benchmark");
    {
        let hsm = store.open(1).expect("open the bench token");
        store
            .generate(&hsm, Curve::P256, KEY)
            .expect("generate the bench key");
    }
    let latency: u64 = env_or("SCALING_LATENCY_US", 2000);
    let read_latency: u64 = env_or("SCALING_READ_LATENCY_US", 500);
    let capacities = if smoke {
        vec![0, 2]
    } else {
        env_list("SCALING_CAPACITIES", &[0, 14])
    };
    let load_before = load_average();
    let mut csv = String::from(CSV_HEADER);
    csv.push('\n');
    for capacity in capacities {
        let output = Command::new(std::env::current_exe().expect("the benchmark's path"))
            .args(std::env::args().skip(1))
            .env(CHILD_ENV, &store.label)
            .env("SOFTHSM2_CONF", store.conf())
            .env("CLOUDHSM_PROFILE_SOFTHSM2", store.module.path())
            .env("CLOUDHSM_PROFILE_SIGN_LATENCY_US", latency.to_string())
            .env("CLOUDHSM_PROFILE_READ_LATENCY_US", read_latency.to_string())
            .env("CLOUDHSM_PROFILE_SIGN_CAPACITY", capacity.to_string())
            .output()
            .expect("run the benchmark's child process");
        assert!(
            output.status.success(),
            "the run with capacity {capacity} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        csv.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    let load_after = load_average();
    if smoke {
        // The smoke test checks what the table is for: no caller gets an error.
        let failed: Vec<&str> = csv
            .lines()
            .skip(1)
            .filter(|l| l.split(',').nth(10) != Some("0"))
            .collect();
        assert!(failed.is_empty(), "errors reached callers: {failed:?}");
    }
    let mut table = String::from(
        "| capacity | sessions x threads | signatures/s | p50 ms | p99 ms | max ms | CPU µs/signature | errors | throttled |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let ms = |us: &str| us.parse::<f64>().unwrap_or(0.0) / 1000.0;
        let capacity = if f[0] == "0" {
            "none".to_string()
        } else {
            f[0].to_string()
        };
        let _ = writeln!(
            table,
            "| {capacity} | {} x {} | {} | {:.2} | {:.2} | {:.1} | {} | {} | {} |",
            f[1],
            f[2],
            f[5],
            ms(f[6]),
            ms(f[7]),
            ms(f[8]),
            f[9],
            f[10],
            f[11]
        );
    }
    println!(
        "scaling: signing latency {latency} µs, reads {read_latency} µs; load average {load_before} before, {load_after} after{}",
        if smoke { " (smoke test, no figures)" } else { "" }
    );
    println!("{table}");
    if !smoke {
        let path = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("scaling.csv")))
            .expect("the target directory");
        std::fs::write(&path, &csv).expect("write scaling.csv");
        println!("points written to {}", path.display());
    }
}
