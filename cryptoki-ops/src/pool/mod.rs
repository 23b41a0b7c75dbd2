//! A bounded, thread-safe pool of logged-in read-write sessions on one token.
//!
//! Rules, and why:
//! - **Read-write sessions only**: CloudHSM SDK 5 refuses read-only ones.
//! - **One login covers the token**: PKCS#11 login state belongs to the application, not the
//!   session, so every new session calls `C_Login` and `CKR_USER_ALREADY_LOGGED_IN` is success.
//! - **One operation per checkout**: a `cryptoki::Session` is `Send` but not `Sync`; a checked-out
//!   session belongs to one thread until it comes back, so no two threads ever share one and no
//!   session is closed while another thread uses it (SoftHSM2 2.6 crashes when that happens).
//! - **Broken sessions are dropped and replaced**: when an operation reports the session or token
//!   gone (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`, `CKR_DEVICE_REMOVED`,
//!   `CKR_TOKEN_NOT_PRESENT`), that session is discarded, every idle session is probed with
//!   `C_GetSessionInfo` and the dead ones discarded too, and an idempotent operation is retried
//!   on a session that works (up to three times: under load, another session may die during the
//!   retry). Dead sessions are *forgotten*, not closed: their handle may
//!   already have been reused for a new session, which `C_CloseSession` would then close.
//! - **A lost login is repaired**: PKCS#11 login state is per application, so a `C_Logout` on
//!   any session (or a CloudHSM reconnection) logs every session out. A logged-out session makes
//!   cached key handles invalid (`CKR_KEY_HANDLE_INVALID`) and searches blind (the key looks
//!   missing); both are recognised, the pool logs in again, drops every session's cached handles
//!   and repeats the operation. A stale
//!   handle, a lost login and a dead session each have their own small retry budget in one
//!   request, so meeting one does not use up the retry of another.
//! - **A busy HSM gets fewer requests, and callers a wait rather than an error**: CloudHSM
//!   answers `CKR_FUNCTION_FAILED` or `CKR_OPERATION_ACTIVE` when throttling (AWS user guide,
//!   "HSM throttling": lower the load, or retry with back-off). The pool then lowers how many
//!   of its sessions may work at once ([`limit`]: AIMD, down to about what the HSM took, back
//!   up by about one per round of successes, then slowly probing), so callers above it wait in the
//!   checkout instead of sending requests the HSM would refuse. The throttled request is retried
//!   (idempotent operations only) after a back-off with jitter, so callers throttled together do
//!   not retry together: up to five times, after 5–10, 10–20, 20–40, 40–80 and 80–160 ms, then
//!   the error is returned. The session goes back to the pool during the back-off.
//! - **Key handles are cached per session**: handles are only valid in their session (CloudHSM)
//!   and each search is a network round trip there, so each session remembers the handles it has
//!   looked up. Deleting a key through the pool invalidates every session's cache.
//!   `SigningKey::warm_up` fills every session's cache ahead of the first signatures.
//! - **Checkout without needless wake-ups**: the pool's lock is held for a push or a pop, and a
//!   returning session wakes a waiter only when one waits, so 64 threads on 64 sessions do not
//!   queue behind one another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki::error::Error as CkError;
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use crate::error::{hint_for, Error, Result, RvError};
use crate::hsm::PoolStats;
use crate::module::Module;

mod guard;
mod limit;
mod retry;

pub(crate) use guard::{PooledSession, SessionGuard};

pub(crate) use retry::{ck, Fail, Retry};

/// Everything needed to open and log in a session on the token.
pub(crate) struct TokenContext {
    pub(crate) module: Module,
    /// The token's slot. Re-found by serial number when the module stops knowing it (a module
    /// restarted behind our back, a token moved): SoftHSM2 and CloudHSM slot ids can change.
    pub(crate) slot: Mutex<Slot>,
    pub(crate) serial: String,
    pub(crate) label: String,
    pub(crate) pin: SecretString,
    pub(crate) user_type: UserType,
}

struct PoolState {
    idle: Vec<PooledSession>,
    /// Sessions that exist: idle plus checked out.
    open: usize,
    /// How many may be checked out at once (lower than the pool's size while the HSM throttles).
    limit: limit::Limit,
    /// Threads waiting in `checkout`.
    waiting: usize,
}

/// What `PoolState::take` found for a checkout.
enum Take {
    /// An idle session.
    Idle(PooledSession),
    /// Room for a new session, already counted in `open`.
    Open,
}

impl PoolState {
    /// Sessions checked out now.
    fn in_use(&self) -> usize {
        self.open - self.idle.len()
    }

    /// Whether a checkout could have a session now (see `take`).
    fn can_take(&self, max: usize) -> bool {
        self.in_use() < self.limit.allowed() && (!self.idle.is_empty() || self.open < max)
    }

    /// A session for a checkout, if the limit allows one now: an idle one, else room to open one
    /// if the pool is below `max` sessions.
    fn take(&mut self, max: usize) -> Option<Take> {
        if self.in_use() >= self.limit.allowed() {
            return None;
        }
        if let Some(session) = self.idle.pop() {
            return Some(Take::Idle(session));
        }
        (self.open < max).then(|| {
            self.open += 1;
            Take::Open
        })
    }
}

/// The pool. See the module documentation for its rules.
pub(crate) struct SessionPool {
    pub(crate) token: TokenContext,
    max_sessions: usize,
    checkout_timeout: Duration,
    state: Mutex<PoolState>,
    returned: Condvar,
    key_epoch: AtomicU64,
    /// Counts the logins this pool made on a logged-out token. A search that ran while another
    /// thread's session repaired a lost login finds nothing although the session is logged in
    /// again by the time the failure is looked at; a changed count says so.
    login_epoch: AtomicU64,
    /// Logins under way (`C_Login` called, the count not yet bumped): a failure looked at in that
    /// window sees the session logged in again and the count unchanged.
    logins_under_way: AtomicU64,
    /// Sessions forgotten because they broke (each is replaced by a new one when needed).
    replaced: AtomicU64,
    /// Answers that said the HSM was busy (throttling), retried or not.
    throttled: AtomicU64,
}

impl SessionPool {
    /// Creates the pool and opens and logs in its first session, so a wrong PIN is reported now.
    pub(crate) fn new(
        token: TokenContext,
        max_sessions: usize,
        checkout_timeout: Duration,
    ) -> Result<Self> {
        token.module.pool_opened();
        let pool = Self {
            token,
            max_sessions: max_sessions.max(1),
            checkout_timeout,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                limit: limit::Limit::new(max_sessions),
                waiting: 0,
            }),
            returned: Condvar::new(),
            key_epoch: AtomicU64::new(0),
            login_epoch: AtomicU64::new(0),
            logins_under_way: AtomicU64::new(0),
            replaced: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        };
        let first = pool.open_session().map_err(|f| pool.to_error(f, None))?;
        let mut state = pool.lock();
        state.idle.push(first);
        state.open = 1;
        drop(state);
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token's current slot.
    pub(crate) fn slot(&self) -> Slot {
        *self.token.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_session(&self) -> Result<PooledSession, Fail> {
        let open = || {
            let _lifecycle = self.token.module.lifecycle_lock();
            self.token.module.pkcs11().open_rw_session(self.slot())
        };
        let session = match open() {
            Err(CkError::Pkcs11(
                RvError::SlotIdInvalid | RvError::TokenNotPresent | RvError::DeviceRemoved,
                _,
            )) => {
                self.refind_slot()?;
                open()
            }
            other => other,
        }
        .map_err(ck("C_OpenSession"))?;
        self.login(&session)?;
        Ok(PooledSession {
            session,
            key_epoch: self.key_epoch.load(Ordering::Acquire),
            handles: HashMap::new(),
        })
    }

    /// Finds the token again by serial number and remembers its slot.
    fn refind_slot(&self) -> Result<(), Fail> {
        let token = crate::token::TokenSelector::Serial(self.token.serial.clone())
            .select(&self.token.module)?;
        *self.token.slot.lock().unwrap_or_else(|e| e.into_inner()) = token.slot;
        Ok(())
    }

    /// Whether the session is logged in, as far as the module says: only a session the module
    /// reports in a public state counts as logged out (a throttled or failed
    /// `C_GetSessionInfo` is no evidence of a lost login). A logged-out session does not fail
    /// searches: it just stops seeing private objects, so a "missing" key may really be a lost
    /// login.
    fn logged_in(session: &Session) -> bool {
        session.get_session_info().map_or(true, |info| {
            !matches!(
                info.session_state(),
                SessionState::RoPublic | SessionState::RwPublic
            )
        })
    }

    /// Whether the login may have been lost since the count was `logins_before`: the session
    /// is logged out, or a login is under way or has happened since. Checked in this order: a
    /// login that repairs the session after the first check is either still under way at the
    /// second or has bumped the count (before leaving the under-way count) by the third.
    fn login_lost(&self, session: &Session, logins_before: u64) -> bool {
        !Self::logged_in(session)
            || self.logins_under_way.load(Ordering::SeqCst) > 0
            || self.login_epoch.load(Ordering::SeqCst) != logins_before
    }

    fn login(&self, session: &Session) -> Result<(), Fail> {
        self.logins_under_way.fetch_add(1, Ordering::SeqCst);
        let result = session.login(self.token.user_type, Some(&self.token.pin));
        if result.is_ok() {
            self.login_epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.logins_under_way.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok(()) => Ok(()),
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                Err(Fail::Final(Error::PinIncorrect {
                    token: self.token.label.clone(),
                }))
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Fail::Final(Error::PinLocked {
                token: self.token.label.clone(),
            })),
            Err(e) => Err(Fail::Pkcs11("C_Login", e)),
        }
    }

    /// Takes a session, opening one if the pool is below its size, or waits for one to come
    /// back until the checkout timeout.
    ///
    /// First come, first served: a caller that arrives while others wait queues behind them
    /// instead of taking the session that was just returned for the first of them (the
    /// condition variable wakes its waiters in the order they came, as Linux's futex does for
    /// threads of equal priority), so a caller's wait is bounded by the queue ahead of it.
    pub(crate) fn checkout(&self) -> Result<SessionGuard<'_>> {
        let deadline = Instant::now() + self.checkout_timeout;
        let mut state = self.lock();
        let mut queued = false;
        loop {
            if queued || state.waiting == 0 {
                if let Some(take) = state.take(self.max_sessions) {
                    // A wake-up meant for another waiter may have gone to this one: pass it on
                    // if there is still room.
                    if state.waiting > 0 && state.can_take(self.max_sessions) {
                        self.returned.notify_one();
                    }
                    drop(state);
                    return self.hand_out(take);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::PoolExhausted {
                    token: self.token.label.clone(),
                    size: self.max_sessions,
                    waited: self.checkout_timeout,
                });
            }
            state.waiting += 1;
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            state.waiting -= 1;
            queued = true;
        }
    }

    /// A session now if one is free within the limit (opening one if the pool is below its
    /// size), else `None`, without waiting.
    pub(crate) fn try_checkout(&self) -> Result<Option<SessionGuard<'_>>> {
        let take = self.lock().take(self.max_sessions);
        take.map(|take| self.hand_out(take)).transpose()
    }

    /// Makes a guard of what `PoolState::take` found: an idle session with its handle cache
    /// checked, or a new session opened and logged in.
    fn hand_out(&self, take: Take) -> Result<SessionGuard<'_>> {
        match take {
            Take::Idle(mut session) => {
                let epoch = self.key_epoch.load(Ordering::Acquire);
                if session.key_epoch != epoch {
                    session.handles.clear();
                    session.key_epoch = epoch;
                }
                Ok(SessionGuard::new(self, session))
            }
            Take::Open => match self.open_session() {
                Ok(session) => Ok(SessionGuard::new(self, session)),
                Err(fail) => {
                    let mut state = self.lock();
                    state.open -= 1;
                    self.wake(&state, 1);
                    drop(state);
                    Err(self.to_error(fail, None))
                }
            },
        }
    }

    /// Wakes up to `n` threads waiting in `checkout`, if any wait (a wake-up is a system call).
    fn wake(&self, state: &PoolState, n: usize) {
        for _ in 0..n.min(state.waiting) {
            self.returned.notify_one();
        }
    }

    /// Counts a busy answer to a request started at `started` and lowers the limit.
    fn note_busy(&self, started: Instant) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let in_use = state.in_use();
        state.limit.throttled(started, in_use);
    }

    /// Probes every idle session and forgets the dead ones.
    fn sweep_idle(&self) {
        let mut state = self.lock();
        let before = state.idle.len();
        let idle = std::mem::take(&mut state.idle);
        for session in idle {
            if session.session.get_session_info().is_ok() {
                state.idle.push(session);
            } else {
                std::mem::forget(session.session);
            }
        }
        let dead = before - state.idle.len();
        state.open -= dead;
        self.wake(&state, dead);
        drop(state);
        self.replaced.fetch_add(dead as u64, Ordering::Relaxed);
    }

    /// Makes every session forget its cached key handles (after a key was deleted).
    pub(crate) fn invalidate_handles(&self) {
        self.key_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Sessions open in this pool (idle and checked out).
    pub(crate) fn open_sessions(&self) -> usize {
        self.lock().open
    }

    /// A snapshot of the pool's counters (one lock, no PKCS#11 call).
    pub(crate) fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            max_sessions: self.max_sessions,
            in_use: state.in_use(),
            idle: state.idle.len(),
            waiting: state.waiting,
            limit: state.limit.allowed(),
            replaced: self.replaced.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }

    /// Maps a failure to an error naming the token and key.
    pub(crate) fn to_error(&self, fail: Fail, key: Option<&str>) -> Error {
        match fail {
            Fail::Final(e) => e,
            Fail::Pkcs11(function, CkError::Pkcs11(rv, _)) => Error::Pkcs11 {
                function: function.to_string(),
                token: self.token.label.clone(),
                key: key.map(|k| format!(" for key {k}")).unwrap_or_default(),
                rv,
                hint: hint_for(rv),
            },
            Fail::Pkcs11(function, other) => Error::InvalidInput {
                what: "PKCS#11 call",
                reason: format!(
                    "{function} on token '{}' returned something the cryptoki wrapper cannot \
                     convert ({other}); the module is non-conforming or this is a bug in \
                     cryptoki-ops: please report it with the module's name and version",
                    self.token.label
                ),
            },
        }
    }
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        // Only idle sessions remain: a guard borrows the pool, so none is checked out.
        let idle = std::mem::take(&mut self.lock().idle);
        let _lifecycle = self.token.module.lifecycle_lock();
        drop(idle);
        self.token.module.pool_closed();
    }
}
