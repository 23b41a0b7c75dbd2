//! The double-signing guard's high-watermarks in PostgreSQL: [`PostgresStore`], a
//! [`WatermarkStore`] that several signer instances, on several hosts, share safely.
//!
//! The pattern is Web3Signer's slashing protection for Ethereum (a transaction that takes
//! `pg_advisory_xact_lock`, checks, signs and records before it commits; docs.web3signer.consensys.io,
//! "configure-slashing-protection"), over the records and rules of [`tezos_keys::high_watermark`].
//!
//! # Per signature
//!
//! [`tezos_keys::HighWatermark::sign`] calls [`WatermarkStore::lock`], then through the
//! [`LockedRecord`] `load`, the HSM, `load` again and `save`. Here that is:
//!
//! 1. **lock**: a connection from the pool; `BEGIN ISOLATION LEVEL READ COMMITTED;
//!    SELECT pg_advisory_xact_lock(CLASS, ID)` with ([`PostgresStore::lock_id`]) the key's
//!    lock. The guard's trait locks per *key*, so a key's blocks and attestations are
//!    serialised too: stricter than a lock per (key, kind), which would let them proceed side
//!    by side, and it costs a few milliseconds at most per request of one key.
//! 2. **load**: the key's rows (one per chain and kind), strictly parsed: a row that cannot be
//!    read stops the key's consensus signing ([`GuardError::StoreCorrupt`]).
//! 3. **save**: an upsert per changed (chain, kind) whose `WHERE` writes only a height
//!    strictly above the row's: the database itself refuses a lower height and, stricter than
//!    [`LockedRecord::save`] asks, other bytes at the same height (the very same bytes are
//!    kept as recorded, with their signature); a trigger refuses a lower height from any other
//!    writer too. Then `COMMIT`
//!    with `synchronous_commit = on`: when `save` returns, the record is durable, and only
//!    then does the guard return the signature. The commit ends the transaction and so
//!    releases the lock.
//! 4. **drop** without a save (a refusal, an HSM error): `ROLLBACK`, which releases the lock.
//!
//! A holder that dies (SIGKILL, host lost) loses its connection and with it the lock, which
//! is transaction-scoped. A holder stuck between statements (a hung HSM call) is cut off by
//! the server after [`Options::idle_in_transaction_timeout`]: its lock goes, and its save
//! fails, so its signature is never returned.
//!
//! # When the database is down or slow
//!
//! Every wait is bounded ([`Options`]): connecting, a lock held elsewhere
//! ([`GuardError::StoreBusy`]), a statement, an unacknowledged write. A database that cannot
//! be reached or fails mid-request gives [`GuardError::StoreIo`]: consensus signatures are
//! refused (the server answers 503), never signed unguarded. Broken connections are closed
//! and the next request connects again, so signing resumes by itself once the database is
//! back. Non-consensus payloads never touch the store.
//!
//! # Schema
//!
//! Created at [`PostgresStore::open`] by versioned migrations (table
//! `tezos_watermarks_schema`), under an advisory lock, idempotent:
//!
//! ```sql
//! CREATE TABLE tezos_watermarks (
//!     key        text        NOT NULL,  -- tz1…/tz2…/tz3…
//!     chain      text        NOT NULL,  -- Net…
//!     kind       text        NOT NULL,  -- block | preattestation | attestation
//!     level      bigint      NOT NULL,
//!     round      bigint,                -- NULL for legacy payloads
//!     digest     bytea,                 -- BLAKE2b-256 of the signed payload
//!     signature  text,                  -- returned again for an identical request; NULL: a floor
//!     updated_at timestamptz NOT NULL DEFAULT now(),
//!     PRIMARY KEY (key, chain, kind)
//! );
//! ```
//!
//! The role needs `CREATE` on the database's schema for the first open (or an owner opens it
//! once); after that a signer's role needs only `SELECT` on `tezos_watermarks_schema` and
//! `SELECT, INSERT, UPDATE` on `tezos_watermarks`.
//!
//! # Threads
//!
//! The store is synchronous, like the guard: each connection (`tokio-postgres`) is driven by a
//! small runtime of its own while a call runs, each call with a client-side deadline as well as
//! the server's timeouts, so call the store (the guard) from threads that may block: in an
//! async server, inside `spawn_blocking`. Dropping the store is
//! safe anywhere, an async task included (its connections are closed on a thread of their
//! own).

mod conn;
mod error;
mod pool;
mod record;
mod schema;
mod target;

use std::fmt;
use std::time::{Duration, Instant};

use tezos_keys::high_watermark::{GuardError, LockedRecord, WatermarkStore};
use tezos_keys::PublicKeyHash;

pub use error::PgStoreError;
use pool::{Checkout, Pool};
use record::PgRecord;
use target::Target;

/// The bounded waits and the pool size of a [`PostgresStore`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Waiting for a key's lock held by another signer (`lock_timeout`), and for a free
    /// connection of the pool: then [`GuardError::StoreBusy`]. Default 3 s.
    pub lock_timeout: Duration,
    /// Any one statement (`statement_timeout`). Default 5 s.
    pub statement_timeout: Duration,
    /// A transaction left idle this long (a holder stuck in an HSM call, or stopped) is ended
    /// by the server, releasing the lock (`idle_in_transaction_session_timeout`). Default 10 s.
    pub idle_in_transaction_timeout: Duration,
    /// Each connection attempt. Default 3 s.
    pub connect_timeout: Duration,
    /// An unacknowledged write on an open connection (`TCP_USER_TIMEOUT`), so a database
    /// host that vanished is an error, not a hang. Default 5 s.
    pub io_timeout: Duration,
    /// At most this many connections at once. Default 8.
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            io_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }
}

/// High-watermarks in a PostgreSQL database, shared by any number of signer processes on any
/// number of hosts (see the [crate documentation](crate)). `Send + Sync`: one store serves
/// many threads through its small connection pool.
///
/// ```no_run
/// use tezos_keys::high_watermark::{HighWatermark, KeyPolicy};
/// use watermark_postgres::PostgresStore;
///
/// // The password from PGPASSWORD (or in the URL, passed through the environment).
/// let store = PostgresStore::open("postgres://signer@db.internal:5432/watermarks")?;
/// let guard = HighWatermark::new(store);
/// # Ok::<(), watermark_postgres::PgStoreError>(())
/// ```
pub struct PostgresStore {
    pool: Pool,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.database())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the store in the database at `url` with the default [`Options`]: connects, and
    /// creates or migrates the tables.
    ///
    /// `url`: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?options]` or libpq's
    /// `key=value` form. Without a password in it, the one in `PGPASSWORD` is used.
    ///
    /// # Errors
    /// [`PgStoreError`]: a bad URL, an unreachable database, a schema that cannot be
    /// prepared or is newer than this build.
    pub fn open(url: &str) -> Result<Self, PgStoreError> {
        Self::open_with(url, Options::default())
    }

    /// [`PostgresStore::open`] with `options`.
    ///
    /// # Errors
    /// As [`PostgresStore::open`].
    pub fn open_with(url: &str, options: Options) -> Result<Self, PgStoreError> {
        let target = Target::parse(url)?;
        let store = Self {
            pool: Pool::new(target, options),
        };
        let deadline = Instant::now() + store.pool.options().connect_timeout;
        let target = store.pool.target();
        let mut conn = match store.pool.checkout(deadline) {
            Ok(conn) => conn,
            Err(Checkout::Connect(e)) => {
                return Err(PgStoreError::Unavailable {
                    database: target.display().to_owned(),
                    reason: target.describe(&e),
                })
            }
            Err(Checkout::Busy) => {
                return Err(PgStoreError::Unavailable {
                    database: target.display().to_owned(),
                    reason: "no connection free".to_owned(),
                })
            }
        };
        let migrated = schema::migrate(&mut conn, target);
        store.pool.checkin(conn, migrated.is_ok());
        migrated?;
        Ok(store)
    }

    /// The database, as `postgres://USER@HOST:PORT/DATABASE` (never with the password).
    pub fn database(&self) -> &str {
        self.pool.target().display()
    }

    /// The advisory lock held while `key`'s record is used, as the two keys of
    /// `pg_advisory_xact_lock(int, int)`: a constant class (`'tzhw'`), and the first four
    /// bytes of the key's hash. In `pg_locks`: `locktype = 'advisory'`, `classid` and `objid`
    /// (as unsigned), `objsubid = 2`. Two keys sharing an id only wait for each other.
    pub fn lock_id(key: &PublicKeyHash) -> (i32, i32) {
        let hash = key.as_bytes();
        (
            schema::RECORD_LOCK_CLASS,
            i32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]),
        )
    }

    /// The statement that begins the transaction and takes `key`'s lock (one round trip).
    fn lock_sql(key: &PublicKeyHash) -> String {
        let (class, id) = Self::lock_id(key);
        format!("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({class}, {id})")
    }
}

impl WatermarkStore for PostgresStore {
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError> {
        let started = Instant::now();
        let deadline = started + self.pool.options().lock_timeout;
        let target = self.pool.target();
        let mut retried = false;
        loop {
            let conn = self.pool.checkout(deadline).map_err(|c| match c {
                Checkout::Busy => GuardError::StoreBusy {
                    path: error::record_path(target, &key.to_string()),
                    waited: started.elapsed(),
                },
                Checkout::Connect(e) => error::guard_error(
                    target,
                    &key.to_string(),
                    "connect to",
                    &e,
                    started.elapsed(),
                ),
            })?;
            let fresh = conn.fresh;
            let mut record = PgRecord {
                store: self,
                key: *key,
                conn: Some(conn),
                locked: false,
                loaded: None,
                broken: false,
            };
            match record.lock() {
                Ok(()) => return Ok(Box::new(record)),
                // A connection kept idle across a database restart fails on first use; so
                // do its idle siblings: close them and try once on a new connection.
                Err(_) if record.broken && !fresh && !retried => {
                    retried = true;
                    self.pool.discard_idle();
                }
                Err(e) => return Err(e),
            }
        }
    }
}
