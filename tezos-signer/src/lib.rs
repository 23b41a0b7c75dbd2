//! An Octez remote signer over HTTP, built on `tezos-keys` and `cryptoki-ops`: the service
//! behind `tezos-hsm serve`, and a library another Rust service can link.
//!
//! Rooms, one concept each:
//! - [`protocol`]: the Octez HTTP protocol (paths, bodies, answers, limits).
//! - [`keys`]: the served keys ([`KeySet`]: HSM keys by address, each with its rules).
//! - [`policy`]: what a served key may sign ([`policy::KeyRules`]), checked before the HSM.
//! - [`signer`]: [`Signer`], the one path of every signing request: rules, then the
//!   high-watermark guard over an `Arc<dyn WatermarkStore>`, then the HSM.
//! - [`server`]: [`router`] and [`serve`]: limits, deadlines, graceful shutdown.
//! - [`error`]: [`SignerError`], its stable kinds, HTTP statuses and JSON bodies.
//! - [`config`]: the TOML configuration of `tezos-hsm serve --config` (and its summary).
//! - [`auth`]: Octez authenticated requests and the `GET /authorized_keys` answer;
//!   [`api_key`]: the optional `x-api-key`-style header.
//! - [`metrics`]: `GET /metrics` (Prometheus text), the HSM and the store timed;
//!   [`health`]: `GET /healthz`, a cached HSM signing probe; [`tls`]: HTTPS from PEM files.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cryptoki_ops::{Hsm, HsmConfig};
//! use tezos_keys::high_watermark::FileStore;
//! use tezos_keys::KeyPolicy;
//! use tezos_signer::{policy::KeyRules, KeySet, Signer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hsm = Hsm::open(&HsmConfig::from_env()?)?;
//! let keys = KeySet::load(&hsm, &["baker".to_string()], |_| KeyRules::new(KeyPolicy::baking()))?;
//! let signer = Signer::new(keys, Arc::new(FileStore::open("/var/lib/signer/watermarks")?));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6732").await?;
//! tezos_signer::serve(listener, tezos_signer::router(signer), tezos_signer::shutdown_signal()?).await?;
//! # Ok(())
//! # }
//! ```

pub mod api_key;
pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod protocol;
pub mod server;
pub mod signer;
pub mod tls;

pub use error::SignerError;
pub use keys::{KeySet, KeysError, ServedKey};
pub use server::{router, serve, serve_with, shutdown_signal, Accept, PlainTcp, ServeOptions};
pub use signer::{Signer, DEFAULT_REQUEST_DEADLINE};
