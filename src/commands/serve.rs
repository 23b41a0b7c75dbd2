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
use tezos_keys::KeyPolicy;
use tezos_signer::policy::KeyRules;
use tezos_signer::{KeySet, ServeOptions, Signer};

use super::Output;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::context::Context;
use crate::error::CliError;

/// How long a request waits for a key's watermark record held by another signer (another
/// request, or another process on the same directory): inside the request's deadline. (The
/// PostgreSQL store of `--watermark-db` has its own.)
const STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

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

impl Output for Stopped {}

/// `serve --listen ADDR [--key LABEL]... [--allow KINDS]`.
pub fn run(globals: &GlobalArgs, args: ServeArgs) -> Result<Stopped, CliError> {
    let kinds = KeyPolicy::from_allow_list(&args.allow)?;
    let ctx = Context::new(globals)?;
    let store: Arc<dyn WatermarkStore> = match &globals.watermark_db {
        Some(_) => ctx.watermark_store()?,
        None => {
            Arc::new(FileStore::open(&ctx.watermark_dir)?.with_lock_timeout(STORE_LOCK_TIMEOUT))
        }
    };
    let session = ctx.open()?;
    let keys = KeySet::load(&session, &args.keys, |_| KeyRules::new(kinds.clone()))?;
    let served = keys.len();
    drop(ctx);
    let hsm = session.release_store();
    let signer = Signer::new(keys, store);

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
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::new("io", format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::new("io", format!("cannot read the listening address: {e}")))?;
        crate::print::stderr_line(&format!("tezos-hsm serve: listening on http://{address}"));
        let router = tezos_signer::router(signer);
        tezos_signer::serve_with(listener, router, shutdown, options, tezos_signer::PlainTcp)
            .await
            .map_err(|e| CliError::new("io", format!("the server failed: {e}")))?;
        Ok::<_, CliError>(address)
    })?;
    // Signing threads still running (a request past its deadline) finish and record what they
    // signed before the store and the token go.
    runtime.shutdown_timeout(grace);
    drop(hsm);
    Ok(Stopped {
        address: address.to_string(),
        keys: served,
    })
}
