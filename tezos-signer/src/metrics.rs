//! `GET /metrics` in the Prometheus text format (version 0.0.4): [`Metrics`].
//!
//! A small hand-written encoder (counters, gauges, histograms with fixed buckets) rather than a
//! metrics crate: the signer exports a dozen series, and the format is plain text
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>). Recording is a relaxed atomic
//! add, or a short mutex for the labelled counters, so it costs nothing next to an HSM call.
//!
//! | Series | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `tezos_signer_signatures_total` | counter | `key`, `kind` | signatures returned (a recorded signature given back again counts too) |
//! | `tezos_signer_refusals_total` | counter | `reason` | requests refused, by error kind (`double_sign`, `policy_refused`, `authentication_refused`, …) |
//! | `tezos_signer_hsm_sign_seconds` | histogram | | time of one HSM signature (`C_Sign` through the session pool) |
//! | `tezos_signer_watermark_store_seconds` | histogram | | time in the double-signing store per guarded request: waiting for the key's record, reading, writing and releasing it (not the HSM call in between; [`TimedStore`]) |
//! | `tezos_signer_request_seconds` | histogram | | time of one signing request, from its bytes read to its answer |
//! | `tezos_signer_pool_sessions` | gauge | `state` = `in_use`, `idle` | PKCS#11 sessions of the pool |
//! | `tezos_signer_pool_sessions_replaced_total` | counter | | dead sessions the pool replaced |
//! | `tezos_signer_ready` | gauge | | the last health probe's answer (1 ready, 0 not) |

mod timed;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

pub use timed::{TimedSigner, TimedStore};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of the latency histograms, in seconds: 0.5 ms (a local SoftHSM2 signature) to
/// 5 s (beyond Tallinn's 6-second block time, a request is useless anyway).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0,
];

/// A latency histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; the last one is +Inf).
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            match LATENCY_BUCKETS.get(i) {
                Some(bound) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        // Nanoseconds to seconds, exactly enough for a sum.
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// The session pool's state, read at each scrape (see `cryptoki_ops::Hsm::open_sessions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolGauges {
    /// Sessions checked out.
    pub in_use: u64,
    /// Sessions idle in the pool.
    pub idle: u64,
    /// Dead sessions replaced since the pool opened.
    pub replaced: u64,
}

type PoolReader = Box<dyn Fn() -> PoolGauges + Send + Sync>;

/// The signer's metrics. Share it in an `Arc`; every method takes `&self`.
///
/// ```
/// use std::time::Duration;
/// use tezos_signer::metrics::Metrics;
/// let metrics = Metrics::new();
/// metrics.signature("baker", "attestation");
/// metrics.refusal("double_sign");
/// metrics.hsm_sign.observe(Duration::from_millis(3));
/// let text = metrics.render();
/// assert!(text.contains("tezos_signer_signatures_total{key=\"baker\",kind=\"attestation\"} 1\n"));
/// assert!(text.contains("tezos_signer_refusals_total{reason=\"double_sign\"} 1\n"));
/// assert!(text.contains("tezos_signer_hsm_sign_seconds_bucket{le=\"0.005\"} 1\n"));
/// ```
#[derive(Default)]
pub struct Metrics {
    signatures: Mutex<BTreeMap<(String, &'static str), u64>>,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// HSM signature latency.
    pub hsm_sign: Histogram,
    /// Double-signing store latency.
    pub watermark_store: Histogram,
    /// Whole signing request latency.
    pub request: Histogram,
    ready: AtomicU64,
    pool: Mutex<Option<PoolReader>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a signature returned by `key` (its label) of request kind `kind` (`block`, …).
    pub fn signature(&self, key: &str, kind: &'static str) {
        let mut map = self.signatures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&(key.to_owned(), kind)) {
            Some(n) => *n += 1,
            None => {
                map.insert((key.to_owned(), kind), 1);
            }
        }
    }

    /// Counts a refused request, by its error kind (a fixed, small set of strings: never a
    /// value from the request, so the series cannot be multiplied by a client).
    pub fn refusal(&self, reason: &'static str) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_insert(0) += 1;
    }

    /// Records the health probe's answer.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(u64::from(ready), Ordering::Relaxed);
    }

    /// Registers where the pool gauges are read from at each scrape.
    pub fn set_pool_reader(&self, reader: impl Fn() -> PoolGauges + Send + Sync + 'static) {
        *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(reader));
    }

    /// The number of signatures counted for `key` and `kind`.
    pub fn signatures(&self, key: &str, kind: &'static str) -> u64 {
        let map = self.signatures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(key.to_owned(), kind)).copied().unwrap_or(0)
    }

    /// The number of refusals counted for `reason`.
    pub fn refusals(&self, reason: &str) -> u64 {
        let map = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        map.get(reason).copied().unwrap_or(0)
    }

    /// Every series, in the text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "tezos_signer_signatures_total",
            "Signatures returned, by key label and request kind.",
            "counter",
        );
        for ((key, kind), n) in self
            .signatures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "tezos_signer_signatures_total{{key=\"{}\",kind=\"{}\"}} {n}",
                escape(key),
                escape(kind)
            );
        }
        header(
            &mut out,
            "tezos_signer_refusals_total",
            "Requests refused, by reason (the error kind).",
            "counter",
        );
        for (reason, n) in self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "tezos_signer_refusals_total{{reason=\"{}\"}} {n}",
                escape(reason)
            );
        }
        self.hsm_sign.render(
            &mut out,
            "tezos_signer_hsm_sign_seconds",
            "Time of one HSM signature, in seconds.",
        );
        self.watermark_store.render(
            &mut out,
            "tezos_signer_watermark_store_seconds",
            "Time in the double-signing store per guarded request (lock, read, write, release), in seconds.",
        );
        self.request.render(
            &mut out,
            "tezos_signer_request_seconds",
            "Time of one signing request, in seconds.",
        );
        let pool = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|read| read());
        if let Some(pool) = pool {
            header(
                &mut out,
                "tezos_signer_pool_sessions",
                "PKCS#11 sessions of the pool, in use and idle.",
                "gauge",
            );
            let _ = writeln!(
                out,
                "tezos_signer_pool_sessions{{state=\"in_use\"}} {}",
                pool.in_use
            );
            let _ = writeln!(
                out,
                "tezos_signer_pool_sessions{{state=\"idle\"}} {}",
                pool.idle
            );
            header(
                &mut out,
                "tezos_signer_pool_sessions_replaced_total",
                "Dead PKCS#11 sessions the pool replaced.",
                "counter",
            );
            let _ = writeln!(
                out,
                "tezos_signer_pool_sessions_replaced_total {}",
                pool.replaced
            );
        }
        header(
            &mut out,
            "tezos_signer_ready",
            "The last health probe: 1 when an HSM session could sign.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "tezos_signer_ready {}",
            self.ready.load(Ordering::Relaxed)
        );
        out
    }

    /// The `GET /metrics` handler: `.route("/metrics", get(Metrics::handler)).with_state(metrics)`
    /// (or with a state that gives an `Arc<Metrics>` through `FromRef`).
    pub async fn handler(State(metrics): State<Arc<Metrics>>) -> Response {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format: `\`, `"` and newlines.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    /// The value of the sample `series` (name and labels, exactly) in `text`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_move_per_key_kind_and_reason() {
        let metrics = Metrics::new();
        for _ in 0..3 {
            metrics.signature("baker", "block");
        }
        metrics.signature("baker", "attestation");
        metrics.signature("payout", "generic");
        metrics.refusal("double_sign");
        metrics.refusal("double_sign");
        metrics.refusal("policy_refused");
        let text = metrics.render();
        let signatures = |key: &str, kind: &str| {
            sample(
                &text,
                &format!("tezos_signer_signatures_total{{key=\"{key}\",kind=\"{kind}\"}}"),
            )
        };
        assert_eq!(signatures("baker", "block"), Some(3.0));
        assert_eq!(signatures("baker", "attestation"), Some(1.0));
        assert_eq!(signatures("payout", "generic"), Some(1.0));
        assert_eq!(signatures("payout", "block"), None);
        assert_eq!(
            sample(&text, "tezos_signer_refusals_total{reason=\"double_sign\"}"),
            Some(2.0)
        );
        assert_eq!(metrics.signatures("baker", "block"), 3);
        assert_eq!(metrics.refusals("policy_refused"), 1);
        assert_eq!(metrics.refusals("other"), 0);
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let metrics = Metrics::new();
        metrics.hsm_sign.observe(Duration::from_micros(300)); // 0.0005 bucket
        metrics.hsm_sign.observe(Duration::from_millis(4)); // 0.005
        metrics.hsm_sign.observe(Duration::from_secs(9)); // +Inf only
        let text = metrics.render();
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("tezos_signer_hsm_sign_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.0005"), Some(1.0));
        assert_eq!(bucket("0.002"), Some(1.0));
        assert_eq!(bucket("0.005"), Some(2.0));
        assert_eq!(bucket("5"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
        assert_eq!(
            sample(&text, "tezos_signer_hsm_sign_seconds_count"),
            Some(3.0)
        );
        let sum = sample(&text, "tezos_signer_hsm_sign_seconds_sum").unwrap();
        assert!((sum - 9.0043).abs() < 1e-9, "{sum}");
        assert_eq!(
            sample(&text, "tezos_signer_watermark_store_seconds_count"),
            Some(0.0)
        );
        assert_eq!(metrics.hsm_sign.count(), 3);
    }

    #[test]
    fn pool_gauges_are_read_at_each_scrape_and_ready_follows_the_probe() {
        let metrics = Metrics::new();
        assert!(!metrics.render().contains("tezos_signer_pool_sessions"));
        let calls = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&calls);
        metrics.set_pool_reader(move || PoolGauges {
            in_use: seen.fetch_add(1, Ordering::Relaxed) + 1,
            idle: 4,
            replaced: 2,
        });
        metrics.render();
        let text = metrics.render();
        assert_eq!(
            sample(&text, "tezos_signer_pool_sessions{state=\"in_use\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "tezos_signer_pool_sessions{state=\"idle\"}"),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, "tezos_signer_pool_sessions_replaced_total"),
            Some(2.0)
        );
        assert_eq!(sample(&text, "tezos_signer_ready"), Some(0.0));
        metrics.set_ready(true);
        assert_eq!(sample(&metrics.render(), "tezos_signer_ready"), Some(1.0));
    }

    #[test]
    fn label_values_are_escaped_and_every_line_is_well_formed() {
        let metrics = Metrics::new();
        metrics.signature("we\"ird\\la\nbel", "generic");
        let text = metrics.render();
        assert!(text.contains(r#"key="we\"ird\\la\nbel""#), "{text}");
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP tezos_signer_")
                    || line.starts_with("# TYPE tezos_signer_")
                    || (line.starts_with("tezos_signer_")
                        && line
                            .rsplit_once(' ')
                            .is_some_and(|(_, v)| v.parse::<f64>().is_ok())),
                "{line:?}"
            );
        }
    }
}
