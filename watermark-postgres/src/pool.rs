//! A small pool of connections shared by the threads of one store: at most
//! [`crate::Options::max_connections`] open at once, idle ones kept for the next request, a
//! broken one never handed out again.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::conn::{Conn, DbError};
use crate::{Options, Target};

/// Why no connection was handed out.
pub(crate) enum Checkout {
    /// Every connection was in use until the deadline.
    Busy,
    /// Connecting failed.
    Connect(DbError),
}

pub(crate) struct Pool {
    target: Target,
    options: Options,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Conn>,
    /// Connections handed out and not yet returned.
    out: usize,
}

impl Pool {
    pub(crate) fn new(target: Target, options: Options) -> Self {
        Self {
            target,
            options,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, else a new one if fewer than the maximum are open, else waits for
    /// one to be returned, until `deadline`.
    pub(crate) fn checkout(&self, deadline: Instant) -> Result<Conn, Checkout> {
        let mut state = self.state();
        loop {
            if let Some(conn) = state.idle.pop() {
                state.out += 1;
                return Ok(conn);
            }
            if state.out + state.idle.len() < self.options.max_connections.max(1) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Checkout::Busy);
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.out += 1;
        drop(state);
        self.connect().map_err(|e| {
            self.checkin_slot();
            Checkout::Connect(e)
        })
    }

    /// A new connection, its session set up: bounded waits, durable commits.
    fn connect(&self) -> Result<Conn, DbError> {
        let o = &self.options;
        // The client-side deadline of each call: past the server's own timeouts, so that
        // those, more precise, come first when the server runs at all.
        let deadline = o.statement_timeout.max(o.lock_timeout) + Duration::from_secs(1);
        let mut conn = Conn::connect(
            &self.target.config(o.connect_timeout, o.io_timeout),
            o.connect_timeout,
            deadline,
        )?;
        // Session settings, once per connection (the server enforces them):
        // - lock_timeout: a key's lock held elsewhere for longer is StoreBusy, not a hang;
        // - statement_timeout: a stuck statement is cancelled;
        // - idle_in_transaction_session_timeout: a holder stuck between statements (a hung
        //   HSM call, a stopped process) loses its session, so its lock, and its signature
        //   is never returned because its save cannot commit;
        // - synchronous_commit on: COMMIT returns once the record is durable (on the
        //   synchronous standbys too, where they are configured), whatever the defaults.
        conn.batch(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {}; \
             SET idle_in_transaction_session_timeout = {}; SET synchronous_commit = on",
            o.lock_timeout.as_millis().max(1),
            o.statement_timeout.as_millis().max(1),
            o.idle_in_transaction_timeout.as_millis().max(1),
        ))?;
        Ok(conn)
    }

    /// Returns `conn`: kept for the next request if `healthy` (its transaction ended cleanly)
    /// and still open, else closed.
    pub(crate) fn checkin(&self, mut conn: Conn, healthy: bool) {
        if healthy && !conn.is_closed() {
            conn.fresh = false;
            let mut state = self.state();
            state.out = state.out.saturating_sub(1);
            state.idle.push(conn);
            drop(state);
            self.freed.notify_one();
        } else {
            drop(conn);
            self.checkin_slot();
        }
    }

    fn checkin_slot(&self) {
        let mut state = self.state();
        state.out = state.out.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }

    /// Closes every idle connection: one was found broken, so the others (opened to the same
    /// server) probably are too, e.g. after a database restart.
    pub(crate) fn discard_idle(&self) {
        let idle = std::mem::take(&mut self.state().idle);
        drop(idle);
        self.freed.notify_all();
    }
}

impl Drop for Pool {
    /// Closes the idle connections on a thread of their own: each connection is driven by a
    /// small runtime of its own, which must not be dropped on a thread that runs async tasks,
    /// and a server may well drop its store there when it shuts down.
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let idle = std::mem::take(&mut state.idle);
        if idle.is_empty() {
            return;
        }
        let closer = std::thread::Builder::new()
            .name("watermark-postgres-close".to_owned())
            .spawn(move || drop(idle));
        if let Ok(closer) = closer {
            let _ = closer.join();
        }
    }
}
