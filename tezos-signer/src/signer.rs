//! [`Signer`]: the served keys, their rules and the double-signing guard, and the one path
//! every signing request takes through them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tezos_keys::high_watermark::WatermarkStore;
use tezos_keys::payload;
use tezos_keys::{HighWatermark, Signature};

use crate::api_key::ApiKey;
use crate::auth::AuthorizedKeys;
use crate::error::SignerError;
use crate::health::{HealthProbe, DEFAULT_MAX_AGE, DEFAULT_TIMEOUT};
use crate::keys::{KeySet, ServedKey};
use crate::metrics::{Metrics, TimedSigner, TimedStore};
use crate::protocol::{self, SignQuery};

/// How long one request may take, from its first body byte to its answer, by default: well
/// inside the 6 s block time of Tallinn (`minimal_block_delay`, Octez
/// `docs/protocols/024_tallinn.rst`), so a baker that gets a 503 still has time to retry or
/// to fail over to another signer within the round.
pub const DEFAULT_REQUEST_DEADLINE: Duration = Duration::from_secs(3);

/// The signing service: served keys with their rules, and the high-watermark guard over a
/// watermark store. Cheap to clone (shared state); `Send + Sync`.
///
/// ```
/// use std::sync::Arc;
/// use tezos_keys::high_watermark::MemoryStore;
/// use tezos_signer::{KeySet, Signer};
///
/// // In production: KeySet::load(&hsm, &labels, rules) and a FileStore or PostgreSQL store.
/// let signer = Signer::new(KeySet::new(), Arc::new(MemoryStore::new()));
/// let app: axum::Router = tezos_signer::router(signer);
/// # drop(app);
/// ```
#[derive(Clone, Debug)]
pub struct Signer {
    keys: KeySet,
    guard: Arc<HighWatermark>,
    auth: Arc<AuthorizedKeys>,
    api_key: Option<Arc<ApiKey>>,
    metrics: Arc<Metrics>,
    health: Arc<HealthProbe>,
    log_payloads: bool,
    deadline: Duration,
}

impl Signer {
    /// A signer serving `keys`, every request through the guard over `store` (a
    /// `FileStore`, or any other [`WatermarkStore`], e.g. a PostgreSQL one). Its
    /// [`Metrics`] time the store and the HSM; its [`HealthProbe`] signs with the first served
    /// key (none served: never ready).
    pub fn new(keys: KeySet, store: Arc<dyn WatermarkStore>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let store = TimedStore::new(store, Arc::clone(&metrics));
        let probe = match keys.iter().next() {
            Some(served) => {
                HealthProbe::for_key(served.key.clone(), DEFAULT_MAX_AGE, DEFAULT_TIMEOUT)
            }
            None => HealthProbe::new(
                || Err("no key is served".to_owned()),
                DEFAULT_MAX_AGE,
                DEFAULT_TIMEOUT,
            ),
        };
        Self {
            keys,
            guard: Arc::new(HighWatermark::new(store)),
            auth: Arc::new(AuthorizedKeys::none()),
            api_key: None,
            health: Arc::new(probe.with_metrics(Arc::clone(&metrics))),
            metrics,
            log_payloads: false,
            deadline: DEFAULT_REQUEST_DEADLINE,
        }
    }

    /// The same signer with a per-request deadline other than [`DEFAULT_REQUEST_DEADLINE`].
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same signer checking `authentication` signatures (for the keys that require it)
    /// against `keys`, and answering `GET /authorized_keys` with them.
    #[must_use]
    pub fn with_authorized_keys(mut self, keys: AuthorizedKeys) -> Self {
        self.auth = Arc::new(keys);
        self
    }

    /// The same signer requiring `api_key` on every Octez service (not `/metrics`, `/healthz`).
    #[must_use]
    pub fn with_api_key(mut self, api_key: ApiKey) -> Self {
        self.api_key = Some(Arc::new(api_key));
        self
    }

    /// The same signer logging each request's payload (hex) in its log line.
    #[must_use]
    pub fn with_log_payloads(mut self, on: bool) -> Self {
        self.log_payloads = on;
        self
    }

    /// The served keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The per-request deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The guard (e.g. to read a key's record).
    pub fn guard(&self) -> &HighWatermark {
        &self.guard
    }

    /// The keys whose `authentication` signatures are accepted, and the `GET
    /// /authorized_keys` answer.
    pub fn authorized_keys(&self) -> &AuthorizedKeys {
        &self.auth
    }

    /// The API key every Octez service requires, if any.
    pub fn api_key(&self) -> Option<&Arc<ApiKey>> {
        self.api_key.as_ref()
    }

    /// The metrics (`GET /metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The health probe (`GET /healthz`).
    pub fn health(&self) -> &Arc<HealthProbe> {
        &self.health
    }

    /// The served key of the address in a request's path.
    ///
    /// # Errors
    /// As [`protocol::parse_address`]; [`SignerError::UnknownKey`].
    pub fn key(&self, address: &str) -> Result<Arc<ServedKey>, SignerError> {
        let pkh = protocol::parse_address(address)?;
        self.keys
            .get(&pkh)
            .cloned()
            .ok_or_else(|| SignerError::UnknownKey {
                address: address.chars().take(40).collect(),
            })
    }

    /// Signs `payload` with the key of `address`: the key's rules, then the high-watermark
    /// guard (which returns the recorded signature for the very same bytes), then the HSM.
    /// Blocking: call it off the async threads (the router does, with `spawn_blocking`).
    ///
    /// # Errors
    /// Any [`SignerError`]; after an error no signature has left the signer.
    pub fn sign_blocking(
        &self,
        address: &str,
        query: &SignQuery,
        payload: &[u8],
    ) -> Result<Signature, SignerError> {
        query.check()?;
        let served = self.key(address)?;
        if served.rules.require_authentication {
            // Over the bytes to sign, watermark included (Octez `handler.ml`,
            // `check_authorization`). With no authorized key, nothing passes.
            self.auth.check(
                served.key.address(),
                payload,
                query.authentication.as_deref(),
            )?;
        }
        served.rules.check(payload)?;
        Ok(self.guard.sign(
            served.key.address(),
            &served.rules.kinds,
            &TimedSigner::new(&served.key, &self.metrics.hsm_sign),
            payload,
        )?)
    }

    /// [`Signer::sign_blocking`] on a blocking thread, within the per-request deadline.
    ///
    /// # Errors
    /// As [`Signer::sign_blocking`]; [`SignerError::DeadlineExceeded`] when it takes longer
    /// (the signing thread is not interrupted: a signature it makes is recorded by the guard
    /// and returned to the same request when retried).
    pub async fn sign(
        &self,
        address: String,
        query: SignQuery,
        payload: Vec<u8>,
    ) -> Result<Signature, SignerError> {
        let start = Instant::now();
        let label = self.key(&address).ok().map(|served| served.label.clone());
        let info = payload::classify(&payload).ok();
        let payload_hex = self.log_payloads.then(|| hex::encode(&payload));
        let shown_address: String = address.chars().take(40).collect();
        let result = self.sign_in_time(address, query, payload).await;
        let latency = start.elapsed();
        self.metrics.request.observe(latency);
        let kind = info.map(|i| i.watermark.name());
        let outcome = match &result {
            Ok(_) => {
                self.metrics
                    .signature(label.as_deref().unwrap_or("-"), kind.unwrap_or("-"));
                "signed"
            }
            Err(e) => {
                self.metrics.refusal(e.kind());
                e.kind()
            }
        };
        // One line per request; the address as sent is shown escaped (`?`), so it cannot forge
        // a line; never a PIN or key byte, the payload only when asked.
        tracing::info!(
            key = label.as_deref(),
            address = ?shown_address,
            kind,
            level = info.and_then(|i| i.level),
            round = info.and_then(|i| i.round),
            outcome,
            status = result.as_ref().err().map_or(200, |e| e.status().as_u16()),
            latency_ms = latency.as_secs_f64() * 1000.0,
            payload = payload_hex.as_deref(),
            "sign"
        );
        result
    }

    async fn sign_in_time(
        &self,
        address: String,
        query: SignQuery,
        payload: Vec<u8>,
    ) -> Result<Signature, SignerError> {
        let signer = self.clone();
        let deadline = self.deadline;
        let started = std::time::Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            // Queued behind other blocking work past the deadline: the client has had its
            // 503 already, so the HSM and the store are not asked for a signature nobody takes.
            if started.elapsed() >= deadline {
                return Err(SignerError::DeadlineExceeded { deadline });
            }
            signer.sign_blocking(&address, &query, &payload)
        });
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(SignerError::Internal(format!(
                "the signing task failed: {join}"
            ))),
            Err(_) => Err(SignerError::DeadlineExceeded {
                deadline: self.deadline,
            }),
        }
    }
}
