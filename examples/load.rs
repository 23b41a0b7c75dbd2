//! Load run (issue 7): many threads signing through one small session pool, then checks.
//!
//! ```sh
//! cargo run --release --example load              # 8 threads × 10,000 signatures, pool of 4
//! cargo run --release --example load -- 8 10000 4 # threads, signatures per thread, sessions
//! ```
//!
//! On a throw-away SoftHSM2 token (see `benches/support/mod.rs`) with one secp256k1 and one P-256
//! key, half the threads sign with each. Every payload is different (thread and counter in it),
//! every signature is made by `tezos_keys::HsmKey` (verify-after-sign off, so that the check
//! below is independent of it) and then verified in software against the payload. The run fails
//! (non-zero exit) unless:
//! - no signature failed and every one verified;
//! - the pool never had more sessions open than its size;
//! - the token's open session count is back to zero, where it was before the pool was opened,
//!   once the pool is dropped: no session leaked (`C_GetTokenInfo`'s count, or on SoftHSM2, which
//!   does not report it, whether the token is still logged in: see `Store::session_count`); and
//!   it was not zero while the pool was open, so the check can see a difference;
//! - the resident memory is flat: it grows by less than [`RSS_SLACK_KIB`] between the end of the
//!   first tenth of the run and the end.

#[path = "../benches/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use cryptoki_ops::{Curve, KeySelector};
use tezos_keys::HsmKey;

use support::{rss_kib, Store};

/// Allowed resident-memory growth after warm-up, in KiB.
const RSS_SLACK_KIB: u64 = 2048;

fn arg(n: usize, default: u64) -> Result<u64, String> {
    match std::env::args().nth(n) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("argument {n} must be a number, got '{text}'")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load run failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let threads = arg(1, 8)?;
    let per_thread = arg(2, 10_000)?;
    let sessions = usize::try_from(arg(3, 4)?)?;
    // First, before any thread: the SoftHSM2 store.
    let store = Store::create("load")?;
    let setup = store.open(1)?;
    for curve in [Curve::Secp256k1, Curve::P256] {
        store.generate(&setup, curve, &format!("load-{}", curve.name()))?;
    }
    drop(setup); // closes its session: the baseline is "no session open"
    let sessions_before = store.session_count()?;
    println!(
        "token '{}': {threads} threads × {per_thread} signatures through a pool of {sessions} sessions (token sessions before: {sessions_before})",
        store.label,
    );

    let hsm = store.open(sessions)?;
    let keys = [Curve::Secp256k1, Curve::P256]
        .map(|curve| {
            HsmKey::open(&hsm, &KeySelector::Label(format!("load-{}", curve.name())))
                .map(|key| key.with_verify_after_sign(false))
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let total = threads * per_thread;
    let done = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let unverified = AtomicU64::new(0);
    let max_open = AtomicU64::new(0);
    let first_error = Mutex::new(None::<String>);
    let rss_warm = Mutex::new(None::<u64>);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let key = &keys[usize::try_from(t % 2).unwrap_or(0)];
            let (done, failed, unverified, max_open) = (&done, &failed, &unverified, &max_open);
            let (first_error, rss_warm, hsm) = (&first_error, &rss_warm, &hsm);
            scope.spawn(move || {
                let mut payload = vec![0x03; 48];
                for i in 0..per_thread {
                    payload[1..9].copy_from_slice(&t.to_be_bytes());
                    payload[9..17].copy_from_slice(&i.to_be_bytes());
                    match key.sign(&payload) {
                        Ok(signature) => {
                            if tezos_keys::verify(key.public_key(), &payload, &signature).is_err() {
                                unverified.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            let mut first = first_error.lock().unwrap_or_else(|e| e.into_inner());
                            first.get_or_insert_with(|| e.to_string());
                        }
                    }
                    max_open.fetch_max(hsm.open_sessions() as u64, Ordering::Relaxed);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n == total / 10 {
                        *rss_warm.lock().unwrap_or_else(|e| e.into_inner()) = rss_kib();
                    }
                    if n % (total / 10).max(1) == 0 {
                        println!(
                            "  {n:>7} signatures, {:>6.1} s, RSS {} KiB",
                            start.elapsed().as_secs_f64(),
                            rss_kib().unwrap_or(0)
                        );
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let rss_end = rss_kib();
    let sessions_during = store.session_count()?;
    let pool_open = hsm.open_sessions();
    drop(keys);
    drop(hsm);
    let sessions_after = store.session_count()?;

    let failed = failed.into_inner();
    let unverified = unverified.into_inner();
    let max_open = max_open.into_inner();
    let rss_warm = rss_warm.into_inner().unwrap_or_else(|e| e.into_inner());
    let rate = total as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "{total} signatures in {:.1} s ({rate:.0}/s), {failed} failed, {unverified} did not verify",
        elapsed.as_secs_f64()
    );
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        println!("first error: {e}");
    }
    let show = |n: Option<u64>| n.map_or("unknown".into(), |n| n.to_string());
    println!(
        "sessions: pool max {max_open} (size {sessions}), pool open at the end {pool_open}; token before: {sessions_before}, with the pool open: {sessions_during}, after it was dropped: {sessions_after}",
    );
    println!(
        "resident memory: {} KiB after the first tenth, {} KiB at the end",
        show(rss_warm),
        show(rss_end)
    );

    let mut ok = true;
    let mut check = |pass: bool, what: &str| {
        println!("{} {what}", if pass { "ok:  " } else { "FAIL:" });
        ok &= pass;
    };
    check(failed == 0, "no signature failed");
    check(
        unverified == 0 && done.into_inner() == total,
        "every signature verifies",
    );
    check(
        max_open <= sessions as u64 && pool_open <= sessions,
        "the pool stayed within its size",
    );
    check(
        sessions_before.is_zero() && sessions_after.is_zero() && !sessions_during.is_zero(),
        "the token's session count is back where it was (no session leaked)",
    );
    check(
        matches!((rss_warm, rss_end), (Some(warm), Some(end)) if end <= warm + RSS_SLACK_KIB),
        "resident memory flat after warm-up",
    );
    Ok(ok)
}
