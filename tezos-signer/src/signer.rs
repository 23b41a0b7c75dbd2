//! [`Signer`]: the served keys, their rules and the double-signing guard, and the one path
//! every signing request takes through them.

use std::sync::Arc;
use std::time::Duration;

use tezos_keys::high_watermark::WatermarkStore;
use tezos_keys::{HighWatermark, PublicKeyHash, Signature};

use crate::error::SignerError;
use crate::keys::{KeySet, ServedKey};
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
    authorized_keys: Option<Arc<[PublicKeyHash]>>,
    deadline: Duration,
}

impl Signer {
    /// A signer serving `keys`, every request through the guard over `store` (a
    /// `FileStore`, or any other [`WatermarkStore`], e.g. a PostgreSQL one).
    pub fn new(keys: KeySet, store: Arc<dyn WatermarkStore>) -> Self {
        Self {
            keys,
            guard: Arc::new(HighWatermark::new(store)),
            authorized_keys: None,
            deadline: DEFAULT_REQUEST_DEADLINE,
        }
    }

    /// The same signer with a per-request deadline other than [`DEFAULT_REQUEST_DEADLINE`].
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same signer answering `GET /authorized_keys` with `keys` (authentication on).
    #[must_use]
    pub fn with_authorized_keys(mut self, keys: Vec<PublicKeyHash>) -> Self {
        self.authorized_keys = Some(keys.into());
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

    /// The keys whose `authentication` signatures are accepted; `None` when authentication is
    /// off.
    pub fn authorized_keys(&self) -> Option<&[PublicKeyHash]> {
        self.authorized_keys.as_deref()
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
            // Never a silent fallback: a key that needs authentication is refused until the
            // authentication check is configured (`auth`).
            return Err(SignerError::NotAllowed(
                "this key requires authenticated requests, and authentication is not configured",
            ));
        }
        served.rules.check(payload)?;
        Ok(self.guard.sign(
            served.key.address(),
            &served.rules.kinds,
            &served.key,
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
        let signer = self.clone();
        let task =
            tokio::task::spawn_blocking(move || signer.sign_blocking(&address, &query, &payload));
        match tokio::time::timeout(self.deadline, task).await {
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
