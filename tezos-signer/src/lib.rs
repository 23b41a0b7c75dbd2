//! An Octez remote signer over HTTP, built on `tezos-keys` and `cryptoki-ops`: the service
//! behind `tezos-hsm serve`, and a library another Rust service can link.
//!
//! Rooms, one concept each:
//! - [`policy`]: what a served key may sign ([`policy::KeyRules`]), checked before the HSM.
//! - `protocol`, `server`, `keys`, `error`: the Octez HTTP protocol, the server (limits,
//!   deadlines, graceful shutdown), the served keys, and errors mapped to status codes.
//! - `config`, `auth`, `metrics`, `health`, `tls`: the TOML configuration, authenticated
//!   requests, Prometheus metrics, the health probe, HTTPS.

pub mod api_key;
pub mod auth;
pub mod config;
pub mod health;
pub mod metrics;
pub mod policy;
pub mod tls;
