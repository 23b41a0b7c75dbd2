//! The remote signer's overheads, measured side by side (issue 16; BENCHMARKS.md "Remote
//! signer").
//!
//! One throw-away SoftHSM2 token, one P-256 key. A and B alternate round by round, in slices
//! (B first in every other round), as in `benches/ratios.rs`; each ratio is the median of the
//! rounds' ratios of B's time per signature over A's (A's throughput relative to B's), with the
//! spread (min–max). Pairs:
//!
//! - `HTTP, N clients / HsmKey, N threads`: `N` client threads, each with a keep-alive
//!   connection to `tezos-hsm serve` (a child process on the same token, generic operations,
//!   `--no-verify`: verify-after-sign off), against `N` threads calling
//!   `HsmKey::sign_allowed` (verify off) and encoding the signature, in this process on a pool of `N` sessions. Goal
//!   ≥ 0.9. Also the latency of one request (p50, p99) on both sides. Two ratios: by wall
//!   clock, and by the CPU time that did the signing (the server process's, against the
//!   signing threads'; the clients' own CPU time left out, as a baker runs elsewhere).
//! - `HTTP block, file store / HTTP generic`: one client signing blocks at increasing levels
//!   (every signature through the high-watermark guard of the file store, written to disk
//!   before the reply) against one client signing generic operations, on the same server:
//!   what the file store costs per consensus signature.
//! - `HTTP block, PostgreSQL store / HTTP block, file store`: a second server on the same token
//!   with `--watermark-db` (the PostgreSQL store: one transaction per signature, committed
//!   before the reply), one client each, blocks at increasing levels: what the PostgreSQL store
//!   costs per consensus signature against the file store. The database is `TEST_DATABASE_URL`
//!   (as `scripts/test.sh` exports it), else, under `cargo bench`, a private cluster this
//!   benchmark starts with `scripts/pg-cluster.sh` and stops at the end; without either the
//!   pair is left out.
//!
//! ```text
//! cargo bench --bench serve                        # 7 rounds x 1 s a side, slices of 100 ms
//! SERVE_CLIENTS=4 cargo bench --bench serve        # N (default: 2, the cores of this machine)
//! SERVE_ROUNDS=5 SERVE_SIDE_MS=500 SERVE_SLICE_MS=50 cargo bench --bench serve
//! cargo test --bench serve                         # one short round: a smoke test
//! ```

#[path = "serve/measure.rs"]
mod measure;
#[path = "serve/processes.rs"]
mod processes;
mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cryptoki_ops::{Curve, KeySelector};
use tezos_keys::payload::Watermark;
use tezos_keys::{HsmKey, KeyPolicy};

use measure::{process_cpu, thread_cpu, Run};
use processes::{PgCluster, Server};
use support::stats::{median, spread};
use support::Store;
use test_support::http::Client;
use test_support::payloads;

const KEY_LABEL: &str = "serve-bench-p256";
const PIN_VAR: &str = "SERVE_BENCH_PIN";

/// One side: runs for the given time, returns what it did.
type Side<'a> = Box<dyn FnMut(Duration) -> Run + 'a>;

/// Runs each of `ops` on a thread of its own until `duration` has passed; each op returns
/// whether it succeeded (a failure aborts the benchmark).
fn threaded<'a, F: FnMut() -> Result<(), String> + Send + 'a>(mut ops: Vec<F>) -> Side<'a> {
    Box::new(move |duration| {
        let start = Instant::now();
        let per_thread: Vec<(Vec<Duration>, Duration)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ops
                .iter_mut()
                .map(|op| {
                    scope.spawn(move || {
                        let cpu = thread_cpu();
                        let mut latencies = Vec::new();
                        while start.elapsed() < duration {
                            let t = Instant::now();
                            if let Err(e) = op() {
                                panic!("a request failed: {e}");
                            }
                            latencies.push(t.elapsed());
                        }
                        (latencies, thread_cpu().saturating_sub(cpu))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let wall = start.elapsed();
        let cpu = per_thread.iter().map(|(_, cpu)| *cpu).sum();
        let latencies: Vec<Duration> = per_thread.into_iter().flat_map(|(l, _)| l).collect();
        Run {
            ops: latencies.len() as u64,
            wall,
            latencies,
            cpu,
        }
    })
}

/// `side`, with the CPU time of process `pid` (the server) in place of its threads'.
fn on_server<'a>(pid: u32, mut side: Side<'a>) -> Side<'a> {
    Box::new(move |duration| {
        let before = process_cpu(pid);
        let mut run = side(duration);
        run.cpu = process_cpu(pid).saturating_sub(before);
        run
    })
}

/// A and B, `rounds` times, `side` each, in alternating slices (B first in odd rounds).
fn interleave(
    a: &mut Side<'_>,
    b: &mut Side<'_>,
    rounds: usize,
    side: Duration,
    slice: Duration,
) -> (Vec<Run>, Vec<Run>) {
    a(side / 5); // warm-up: connections, sessions, caches
    b(side / 5);
    let slices = (side.as_secs_f64() / slice.as_secs_f64()).ceil().max(1.0) as u32;
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
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
        ra.push(ta);
        rb.push(tb);
    }
    (ra, rb)
}

/// The `q` quantile of the latencies of all rounds, in µs.
fn quantile(runs: &[Run], q: f64) -> f64 {
    let mut all: Vec<Duration> = runs
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    all.sort();
    if all.is_empty() {
        return f64::NAN;
    }
    let index = ((all.len() - 1) as f64 * q).round() as usize;
    all[index].as_secs_f64() * 1e6
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

/// Prints one pair's line: the ratio (median, spread), both sides' µs per signature and
/// latencies, and the verdict against `target`.
fn report(name: &str, (a, b): &(Vec<Run>, Vec<Run>), target: Option<f64>) {
    let ratio =
        |f: fn(&Run) -> f64| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| f(b) / f(a)).collect() };
    let (wall, cpu) = (ratio(Run::per_op), ratio(Run::cpu_per_op));
    let per_op =
        |runs: &[Run], f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>()) * 1e6;
    let verdict = target.map_or(String::new(), |t| {
        let met = |r: &[f64]| if median(r) >= t { "met" } else { "missed" };
        format!("≥ {t:.2}: {} (wall), {} (CPU)", met(&wall), met(&cpu))
    });
    println!(
        "| {name} | {} | {} | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.0} / {:.0} | {:.0} / {:.0} | {verdict} |",
        spread(&wall),
        spread(&cpu),
        per_op(a, Run::per_op),
        per_op(a, Run::cpu_per_op),
        per_op(b, Run::per_op),
        per_op(b, Run::cpu_per_op),
        quantile(a, 0.5),
        quantile(a, 0.99),
        quantile(b, 0.5),
        quantile(b, 0.99),
    );
}

/// A client thread's request: POST `payload()` to the key, expecting a signature.
fn http_sign<'a>(
    mut client: Client,
    pkh: &'a str,
    mut payload: impl FnMut() -> Vec<u8> + Send + 'a,
) -> impl FnMut() -> Result<(), String> + Send + 'a {
    let path = format!("/keys/{pkh}?version=1");
    move || {
        let body = format!("\"{}\"", hex::encode(payload()));
        let reply = client.post(&path, &body).map_err(|e| e.to_string())?;
        if reply.status != 200 || !reply.body.contains("\"signature\"") {
            return Err(format!("{} {}", reply.status, reply.body));
        }
        black_box(reply.body);
        Ok(())
    }
}

/// A client thread's requests: blocks at the next level of `levels`.
fn blocks<'a>(
    addr: SocketAddr,
    pkh: &'a str,
    levels: &'a AtomicU32,
) -> impl FnMut() -> Result<(), String> + Send + 'a {
    http_sign(Client::new(addr), pkh, move || {
        payloads::block(levels.fetch_add(1, Ordering::Relaxed) + 1, 0, 1)
    })
}

fn main() {
    // First, before any thread and before SoftHSM2 is loaded: the store's configuration.
    let store = Store::create("serve-bench").expect("a SoftHSM2 token for the benchmark");
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then one short round.
    let bench = args.iter().any(|a| a == "--bench");
    let (rounds, side, slice) = if bench {
        (
            env_or("SERVE_ROUNDS", 7usize).max(1),
            Duration::from_millis(env_or("SERVE_SIDE_MS", 1000u64)),
            Duration::from_millis(env_or("SERVE_SLICE_MS", 100u64).max(1)),
        )
    } else {
        (1, Duration::from_millis(40), Duration::from_millis(20))
    };
    let clients = env_or("SERVE_CLIENTS", 2usize).max(1);
    let hsm = store.open(clients).expect("open the bench token");
    store
        .generate(&hsm, Curve::P256, KEY_LABEL)
        .expect("generate the bench key");
    let key = HsmKey::open(&hsm, &KeySelector::Label(KEY_LABEL.into()))
        .expect("the bench key")
        .with_verify_after_sign(false);
    let pkh = key.address().to_string();
    let forged = key.address().to_forged();
    let watermarks = tempfile::tempdir().expect("a watermark directory");
    let server = Server::start(
        &store,
        watermarks.path(),
        &["--allow", "generic,block", "--no-verify"],
        &[],
    );

    println!(
        "serve: {rounds} rounds x {} ms a side, A and B alternating every {} ms; N = {clients} clients/threads; {} CPUs; load average before: {}",
        side.as_millis(),
        slice.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    println!();
    println!("| A / B (P-256) | ratio, wall clock: median (min–max) | ratio, signing CPU time | A: µs/sig wall (CPU) | B: µs/sig wall (CPU) | A latency p50 / p99, µs | B latency p50 / p99, µs | goal |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");

    // HTTP with N clients against HsmKey with N threads.
    let http: Vec<_> = (0..clients)
        .map(|c| {
            let mut n = 0u64;
            http_sign(Client::new(server.addr), &pkh, move || {
                n += 1;
                payloads::transaction_from(&forged, n * 64 + c as u64)
            })
        })
        .collect();
    let direct: Vec<_> = (0..clients)
        .map(|c| {
            let key = key.clone();
            let policy = KeyPolicy::new([Watermark::Generic]);
            let mut n = 0u64;
            move || {
                n += 1;
                let payload = payloads::transaction_from(&forged, n * 64 + c as u64);
                let (signature, _) = key
                    .sign_allowed(black_box(&payload), &policy)
                    .map_err(|e| e.to_string())?;
                black_box(signature.to_string());
                Ok(())
            }
        })
        .collect();
    let pid = server.child.id();
    let measured = interleave(
        &mut on_server(pid, threaded(http)),
        &mut threaded(direct),
        rounds,
        side,
        slice,
    );
    report(
        &format!("HTTP, {clients} clients / HsmKey, {clients} threads"),
        &measured,
        bench.then_some(0.9),
    );

    // Where the server's time goes: the same HTTP exchange with no signature (GET /keys/<pkh>:
    // routing, JSON, the connection; no blocking thread, no HSM), against the same direct
    // signing: the server CPU per request of HTTP alone.
    let get: Vec<_> = (0..clients)
        .map(|_| {
            let mut client = Client::new(server.addr);
            let path = format!("/keys/{pkh}");
            move || {
                let reply = client.get(&path).map_err(|e| e.to_string())?;
                if reply.status != 200 {
                    return Err(format!("{} {}", reply.status, reply.body));
                }
                black_box(reply.body);
                Ok(())
            }
        })
        .collect();
    let direct: Vec<_> = (0..clients)
        .map(|c| {
            let key = key.clone();
            let policy = KeyPolicy::new([Watermark::Generic]);
            let mut n = 0u64;
            move || {
                n += 1;
                let payload = payloads::transaction_from(&forged, n * 64 + c as u64);
                let (signature, _) = key
                    .sign_allowed(black_box(&payload), &policy)
                    .map_err(|e| e.to_string())?;
                black_box(signature.to_string());
                Ok(())
            }
        })
        .collect();
    let measured = interleave(
        &mut on_server(pid, threaded(get)),
        &mut threaded(direct),
        rounds,
        side,
        slice,
    );
    report(
        &format!("HTTP GET /keys (no signing), {clients} clients / HsmKey, {clients} threads"),
        &measured,
        None,
    );

    // One client: blocks at increasing levels (file store) against generic operations.
    // Levels per watermark store, so each server's blocks keep rising across slices and pairs.
    let (file_levels, pg_levels) = (AtomicU32::new(0), AtomicU32::new(0));
    let generic = http_sign(Client::new(server.addr), &pkh, {
        let mut n = 0u64;
        move || {
            n += 1;
            payloads::transaction_from(&forged, n)
        }
    });
    let file = interleave(
        &mut on_server(pid, threaded(vec![blocks(server.addr, &pkh, &file_levels)])),
        &mut on_server(pid, threaded(vec![generic])),
        rounds,
        side,
        slice,
    );
    report(
        "HTTP block, file store / HTTP generic, 1 client",
        &file,
        None,
    );

    // The PostgreSQL store against the file store: a second server, blocks on both.
    let cluster = if bench { PgCluster::start() } else { None };
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .or_else(|| cluster.as_ref().map(|c| c.url.clone()));
    let pg = url.map(|url| {
        let pg_watermarks = tempfile::tempdir().expect("a watermark directory");
        let pg_server = Server::start(
            &store,
            pg_watermarks.path(),
            &["--allow", "block", "--no-verify"],
            &[("TEZOS_HSM_WATERMARK_DB", url.as_str())],
        );
        let measured = interleave(
            &mut on_server(
                pg_server.child.id(),
                threaded(vec![blocks(pg_server.addr, &pkh, &pg_levels)]),
            ),
            &mut on_server(pid, threaded(vec![blocks(server.addr, &pkh, &file_levels)])),
            rounds,
            side,
            slice,
        );
        report(
            "HTTP block, PostgreSQL store / HTTP block, file store, 1 client",
            &measured,
            None,
        );
        measured
    });
    drop(cluster);

    let per_op =
        |runs: &[Run], f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>()) * 1e6;
    let cost = |(a, b): &(Vec<Run>, Vec<Run>)| {
        format!(
            "{:+.1} µs wall, {:+.1} µs server CPU",
            per_op(a, Run::per_op) - per_op(b, Run::per_op),
            per_op(a, Run::cpu_per_op) - per_op(b, Run::cpu_per_op)
        )
    };
    println!();
    println!(
        "file store: {} per consensus signature (median block minus median generic)",
        cost(&file)
    );
    match &pg {
        Some(pg) => println!(
            "PostgreSQL store: {} per consensus signature (median PostgreSQL block minus median file-store block)",
            cost(pg)
        ),
        None => println!("PostgreSQL store: not measured (no TEST_DATABASE_URL, no cluster started)"),
    }
    println!("load average after: {}", load_average());
    drop(server);
}
