//! `GET /healthz`: whether an HSM session can sign, from a cached probe: [`HealthProbe`].
//!
//! The probe signs a fixed digest with a served key ([`HsmKey::sign_digest`], outside the
//! double-signing guard) on the session pool, at most once per `max_age`; calls in between get
//! the cached answer, so a load balancer polling every second costs one HSM signature per
//! `max_age`, not one per poll. The answer is `{"ready": true}` with 200, or `{"ready": false}`
//! with 503 (the shape of Signatory's `/healthz`, `pkg/server/utility.go`; remote-signer.md §1.1).
//!
//! The digest is BLAKE2b-256 of [`PROBE_MESSAGE`], a text whose first byte (`t`, 0x74) is no
//! Tezos watermark, so the probe's signature (which is never sent anywhere) is not a signature
//! of any operation, block or Michelson value.
//!
//! A probe that does not answer within `timeout` (an HSM that hangs) counts as not ready; no
//! second probe starts while one is still running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tezos_keys::HsmKey;

use crate::metrics::Metrics;

/// What the probe signs (its BLAKE2b-256 digest): not a Tezos payload.
pub const PROBE_MESSAGE: &[u8] = b"tezos-hsm health probe: not a Tezos operation";

/// How long an answer is reused by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5);

/// How long a probe may take by default before it counts as failed: inside the request
/// deadline (3 s, `crate::DEFAULT_REQUEST_DEADLINE`), so `/healthz` answers `{"ready": false}`
/// rather than a deadline error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

type Probe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The cached health probe. Share it in an `Arc`.
pub struct HealthProbe {
    probe: Probe,
    max_age: Duration,
    timeout: Duration,
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
    running: Arc<AtomicBool>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for HealthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthProbe")
            .field("max_age", &self.max_age)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HealthProbe {
    /// A probe running `probe` (blocking; run on tokio's blocking threads) at most once per
    /// `max_age`, failing after `timeout`.
    pub fn new(
        probe: impl Fn() -> Result<(), String> + Send + Sync + 'static,
        max_age: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            probe: Arc::new(probe),
            max_age,
            timeout,
            last: tokio::sync::Mutex::new(None),
            running: Arc::new(AtomicBool::new(false)),
            metrics: None,
        }
    }

    /// A probe signing [`PROBE_MESSAGE`]'s digest with `key`.
    pub fn for_key(key: HsmKey, max_age: Duration, timeout: Duration) -> Self {
        let digest = tezos_keys::payload::digest(PROBE_MESSAGE);
        Self::new(
            move || {
                key.sign_digest(&digest)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
            max_age,
            timeout,
        )
    }

    /// Also report each answer in `metrics` (`tezos_signer_ready`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Whether an HSM session could sign, at most `max_age` ago.
    pub async fn ready(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last {
            if at.elapsed() < self.max_age {
                return ready;
            }
        }
        let ready = self.run().await;
        *last = Some((Instant::now(), ready));
        if let Some(metrics) = &self.metrics {
            metrics.set_ready(ready);
        }
        ready
    }

    async fn run(&self) -> bool {
        if self.running.swap(true, Ordering::AcqRel) {
            tracing::warn!("health probe: the previous probe is still running (the HSM hangs?)");
            return false;
        }
        let probe = Arc::clone(&self.probe);
        let running = Arc::clone(&self.running);
        let task = tokio::task::spawn_blocking(move || {
            let result = probe();
            running.store(false, Ordering::Release);
            result
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(reason))) => {
                tracing::warn!(%reason, "health probe: the HSM could not sign");
                false
            }
            Ok(Err(join)) => {
                tracing::error!(error = %join, "health probe: the probe panicked");
                self.running.store(false, Ordering::Release);
                false
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "health probe: no answer in time");
                false
            }
        }
    }

    /// The `GET /healthz` handler: 200 `{"ready": true}` or 503 `{"ready": false}`.
    pub async fn handler(State(probe): State<Arc<HealthProbe>>) -> Response {
        let ready = probe.ready().await;
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(serde_json::json!({ "ready": ready }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A probe counting its runs, answering what `healthy` says.
    fn counting(
        healthy: Arc<AtomicBool>,
        delay: Duration,
    ) -> (
        impl Fn() -> Result<(), String> + Send + Sync,
        Arc<AtomicUsize>,
    ) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let probe = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(delay);
            if healthy.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("CKR_DEVICE_REMOVED".to_owned())
            }
        };
        (probe, runs)
    }

    #[tokio::test]
    async fn answers_are_cached_for_max_age_then_probed_again() {
        let healthy = Arc::new(AtomicBool::new(true));
        let (probe, runs) = counting(Arc::clone(&healthy), Duration::ZERO);
        let metrics = Arc::new(Metrics::new());
        let health = HealthProbe::new(probe, Duration::from_millis(300), DEFAULT_TIMEOUT)
            .with_metrics(Arc::clone(&metrics));
        for _ in 0..10 {
            assert!(health.ready().await);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(metrics.render().contains("tezos_signer_ready 1\n"));
        healthy.store(false, Ordering::SeqCst);
        assert!(health.ready().await, "still the cached answer");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(!health.ready().await);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(metrics.render().contains("tezos_signer_ready 0\n"));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_probe() {
        let (probe, runs) = counting(Arc::new(AtomicBool::new(true)), Duration::from_millis(100));
        let health = Arc::new(HealthProbe::new(
            probe,
            Duration::from_secs(60),
            DEFAULT_TIMEOUT,
        ));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let health = Arc::clone(&health);
                tokio::spawn(async move { health.ready().await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_hanging_probe_is_not_ready_and_is_not_run_twice() {
        let (probe, runs) = counting(Arc::new(AtomicBool::new(true)), Duration::from_millis(600));
        let health = HealthProbe::new(probe, Duration::ZERO, Duration::from_millis(100));
        assert!(!health.ready().await, "timed out");
        assert!(!health.ready().await, "still running: not started again");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let health_after = health.ready().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(
            !health_after,
            "the second run also exceeds the 100 ms timeout"
        );
    }

    #[tokio::test]
    async fn the_handler_answers_200_or_503_with_ready() {
        let healthy = Arc::new(AtomicBool::new(true));
        let (probe, _) = counting(Arc::clone(&healthy), Duration::ZERO);
        let health = Arc::new(HealthProbe::new(probe, Duration::ZERO, DEFAULT_TIMEOUT));
        let response = HealthProbe::handler(State(Arc::clone(&health))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"ready":true}"#);
        healthy.store(false, Ordering::SeqCst);
        let response = HealthProbe::handler(State(health)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"ready":false}"#);
    }

    #[test]
    fn the_probe_message_is_no_tezos_payload() {
        assert!(tezos_keys::payload::Watermark::from_byte(PROBE_MESSAGE[0]).is_none());
    }
}
