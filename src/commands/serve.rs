//! `serve`: the keys of the token as an Octez remote signer over HTTP (`tezos_signer`).
//!
//! Startup, in this order: the watermark store (it must exist: `watermark init`), the token
//! and its keys, the signal handlers, the listener; then one line on stderr,
//! `tezos-hsm serve: listening on http://IP:PORT`, which scripts and tests wait for. SIGTERM or
//! SIGINT stop it: no new connection is accepted, requests in flight are answered, and the
//! store is dropped once every signing thread is done.
//!
//! On the local store, the store's lock is held only while the token is opened and its keys
//! read ([`crate::context::Session::release_store`]): a signer runs for days, and holding the
//! lock would make every other command (`key list`, `sign`, a backup) wait and fail.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tezos_keys::high_watermark::{FileStore, WatermarkStore};
use tezos_signer::config::ConfigSummary;
use tezos_signer::metrics::PoolGauges;
use tezos_signer::tls::TlsAccept;
use tezos_signer::{KeySet, ServeOptions, Signer};

use super::serve_config::{self, Plan};
use super::Output;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::context::Context;
use crate::error::CliError;

/// How long a request waits for a key's watermark record held by another signer (another
/// request, or another process on the same directory): inside the request's deadline. (The
/// PostgreSQL store of `--watermark-db` has its own.)
const STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a request waits for a free session of the HSM's pool: inside the request's
/// deadline (the pool's default, 10 s, is for commands that run once).
const SESSION_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);

/// What `serve` prints when it has stopped.
#[derive(Serialize)]
pub struct Stopped {
    /// The address it listened on.
    address: String,
    /// How many keys it served.
    keys: usize,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stopped serving {} keys on {}", self.keys, self.address)
    }
}

/// What `serve` prints: what `--check-config` found, or, once stopped, what it served.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ServeOutput {
    /// `--check-config FILE`: what the file would serve.
    Checked(Box<ConfigSummary>),
    /// The server stopped.
    Stopped(Stopped),
}

impl fmt::Display for ServeOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checked(summary) => summary.fmt(f),
            Self::Stopped(stopped) => stopped.fmt(f),
        }
    }
}

impl Output for ServeOutput {}

/// `serve --listen ADDR [--key LABEL]... [--allow KINDS] [--config FILE]`, or
/// `serve --check-config FILE`.
pub fn run(globals: &GlobalArgs, args: ServeArgs) -> Result<ServeOutput, CliError> {
    if let Some(path) = &args.check_config {
        return serve_config::check_config(path)
            .map(|summary| ServeOutput::Checked(Box::new(summary)));
    }
    serve_config::init_logging(args.log_json);
    let plan = Plan::new(globals, &args)?;
    let globals = &plan.globals;
    let ctx = Context::new(globals)?;
    let store: Arc<dyn WatermarkStore> = match &globals.watermark_db {
        Some(_) => ctx.watermark_store()?,
        None => {
            Arc::new(FileStore::open(&ctx.watermark_dir)?.with_lock_timeout(STORE_LOCK_TIMEOUT))
        }
    };
    // A request waits for a free HSM session no longer than its deadline lets it.
    let session = ctx.open_with(|config| config.with_checkout_timeout(SESSION_CHECKOUT_TIMEOUT))?;
    let keys = KeySet::load(&session, &plan.labels, |label| plan.rules_for(label))?
        .with_verify_after_sign(!args.no_verify);
    let served = keys.len();
    drop(ctx);
    let hsm = session.release_store();
    let (listen, scheme) = (plan.listen, plan.scheme());
    let tls = plan.tls.clone();
    let mut signer = Signer::new(keys, store)
        .with_authorized_keys(plan.authorized)
        .with_log_payloads(plan.log_payloads);
    if let Some(api_key) = plan.api_key {
        signer = signer.with_api_key(api_key);
    }
    let pool = hsm.clone();
    signer.metrics().set_pool_reader(move || {
        let stats = pool.pool_stats();
        PoolGauges {
            in_use: stats.in_use as u64,
            idle: stats.idle as u64,
            replaced: stats.replaced,
        }
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new("io", format!("cannot start the server's runtime: {e}")))?;
    let options = ServeOptions::default();
    let grace = options.shutdown_grace;
    let address = runtime.block_on(async {
        // Signal handlers before the line: a SIGTERM sent as soon as it is read must stop the
        // server gracefully, not kill it.
        let shutdown = tezos_signer::shutdown_signal()
            .map_err(|e| CliError::new("io", format!("cannot handle SIGTERM/SIGINT: {e}")))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::new("io", format!("cannot listen on {listen}: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::new("io", format!("cannot read the listening address: {e}")))?;
        crate::print::stderr_line(&format!(
            "tezos-hsm serve: listening on {scheme}://{address}"
        ));
        let router = tezos_signer::router(signer);
        match tls {
            Some(tls) => {
                let tls = TlsAccept::new(tls);
                tezos_signer::serve_with(listener, router, shutdown, options, tls).await
            }
            None => {
                let plain = tezos_signer::PlainTcp;
                tezos_signer::serve_with(listener, router, shutdown, options, plain).await
            }
        }
        .map_err(|e| CliError::new("io", format!("the server failed: {e}")))?;
        Ok::<_, CliError>(address)
    })?;
    // Signing threads still running (a request past its deadline) finish and record what they
    // signed before the store and the token go.
    runtime.shutdown_timeout(grace);
    drop(hsm);
    Ok(ServeOutput::Stopped(Stopped {
        address: address.to_string(),
        keys: served,
    }))
}
