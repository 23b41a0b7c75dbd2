//! How a pooled operation survives trouble: what a PKCS#11 return value means for the session
//! it came from ([`Diagnosis`]), how many times one request may recover from each kind
//! ([`RetryBudget`]), and the retry loop itself ([`SessionPool::run`]). The rules are listed in
//! the [pool's documentation](super).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cryptoki::error::Error as CkError;

use super::{PooledSession, SessionPool};
use crate::error::{Error, Result, RvError};

/// Back-off before each retry on a busy HSM (idempotent operations only): the most it waits,
/// doubling, as the CloudHSM SDK's own retries back off exponentially (AWS user guide, "Retry
/// commands for PKCS #11 library", `pkcs11-library-configs-retry`). [`busy_backoff`] waits
/// between half of it and all of it.
const BUSY_BACKOFF: [Duration; 5] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
];

/// The wait before busy retry `attempt` (from 0): half of its [`BUSY_BACKOFF`] plus a random
/// part of the other half ("equal jitter", AWS Architecture Blog, "Exponential Backoff And
/// Jitter", <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>), so
/// callers throttled together do not retry together, and a caller always waits: 155 to 310 ms
/// over the five retries.
fn busy_backoff(attempt: usize) -> Duration {
    let most = BUSY_BACKOFF[attempt.min(BUSY_BACKOFF.len() - 1)];
    let half = most / 2;
    half + half.mul_f64(random_fraction())
}

/// A number in [0, 1), different at each call: from std's randomly keyed hasher (a new key
/// each time), so no random-number crate is needed. For spreading retries only, not secrets.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// How many times one request may recover from each kind of trouble before the error is
/// returned: a fixed budget per kind, so the retries are bounded and one kind cannot use up
/// another's.
#[derive(Debug, Default)]
struct RetryBudget {
    session: usize,
    login: usize,
    stale: usize,
    busy: usize,
}

impl RetryBudget {
    /// Dead sessions: three replacements. Sessions die one by one (each probe-passing idle one
    /// may still die on its next call), so one replacement is not enough under load; a token
    /// that is really gone fails sooner, when no new session opens.
    const SESSION: usize = 3;
    /// Lost logins: four (other threads' sessions may be logged out again meanwhile).
    const LOGIN: usize = 4;
    /// Stale key handles: one fresh lookup.
    const STALE: usize = 1;

    /// Uses one retry of the kind; false when its budget is spent.
    fn take(&mut self, kind: Diagnosis) -> bool {
        let (used, limit) = match kind {
            Diagnosis::SessionBroken => (&mut self.session, Self::SESSION),
            Diagnosis::NotLoggedIn => (&mut self.login, Self::LOGIN),
            Diagnosis::StaleHandle => (&mut self.stale, Self::STALE),
            Diagnosis::Busy => (&mut self.busy, BUSY_BACKOFF.len()),
            Diagnosis::Other => return false,
        };
        if *used < limit {
            *used += 1;
            true
        } else {
            false
        }
    }
}

/// Whether an operation may be repeated after a failure that may have happened half-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Signing, reading, searching: doing it twice is harmless.
    Idempotent,
    /// Creating or destroying objects: never repeated behind the caller's back.
    Never,
}

/// A failure inside a pooled operation: a PKCS#11 call (mapped to [`Error`] with the pool's
/// context once retries are exhausted), or an error already final.
#[derive(Debug)]
pub(crate) enum Fail {
    Pkcs11(&'static str, CkError),
    Final(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Final(e)
    }
}

/// `map_err` helper: `session.sign(..).map_err(ck("C_Sign"))?`.
pub(crate) fn ck(function: &'static str) -> impl FnOnce(CkError) -> Fail {
    move |e| Fail::Pkcs11(function, e)
}

/// Whether the module refused the call because the session handle is dead.
fn refused_unstarted(fail: &Fail) -> bool {
    matches!(
        fail,
        Fail::Pkcs11(
            _,
            CkError::Pkcs11(RvError::SessionHandleInvalid | RvError::SessionClosed, _)
        )
    )
}

/// What a PKCS#11 return value means for the session it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Diagnosis {
    SessionBroken,
    NotLoggedIn,
    StaleHandle,
    Busy,
    Other,
}

fn diagnose(fail: &Fail) -> Diagnosis {
    let Fail::Pkcs11(_, CkError::Pkcs11(rv, _)) = fail else {
        return Diagnosis::Other;
    };
    match rv {
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized => Diagnosis::SessionBroken,
        RvError::UserNotLoggedIn => Diagnosis::NotLoggedIn,
        RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid => Diagnosis::StaleHandle,
        RvError::FunctionFailed | RvError::OperationActive | RvError::DeviceError => {
            Diagnosis::Busy
        }
        _ => Diagnosis::Other,
    }
}

impl SessionPool {
    /// Runs `op` on a pooled session, with the retry rules of the module documentation.
    /// `key` names the key for error messages.
    ///
    /// Each kind of trouble has its own bounded budget, so one request can meet a dead session,
    /// a stale key handle and a lost login (a `C_Logout` behind the pool's back makes the cached
    /// handle stale *and* the lookup after it blind) and still succeed.
    pub(crate) fn run<T>(
        &self,
        retry: Retry,
        key: Option<&str>,
        mut op: impl FnMut(&mut PooledSession) -> Result<T, Fail>,
    ) -> Result<T> {
        let mut budget = RetryBudget::default();
        loop {
            let mut guard = self.checkout()?;
            let logins_before = self.login_epoch.load(Ordering::SeqCst);
            let started = Instant::now();
            let fail = match op(guard.session_mut()) {
                Ok(value) => {
                    guard.succeeded();
                    return Ok(value);
                }
                Err(fail) => fail,
            };
            // A failure may come from a lost login: the session is logged out now, or was while
            // it worked and another thread has logged in again since. A logged-out session
            // finds no private key, and SoftHSM2 answers CKR_GENERAL_ERROR (it cannot decrypt
            // a private object's attributes), CKR_FUNCTION_FAILED or CKR_OBJECT_HANDLE_INVALID
            // for one it had found (seen under 8 threads with the CloudHSM profile's injected
            // logouts). A lookup (nothing done yet) or an idempotent operation is then repaired
            // like any lost login.
            let diagnosis = match diagnose(&fail) {
                Diagnosis::Other | Diagnosis::StaleHandle | Diagnosis::Busy
                    if (retry == Retry::Idempotent
                        || matches!(fail, Fail::Final(Error::KeyNotFound { .. })))
                        && self.login_lost(&guard.session_mut().session, logins_before) =>
                {
                    Diagnosis::NotLoggedIn
                }
                other => other,
            };
            if diagnosis == Diagnosis::Busy {
                self.note_busy(started);
            }
            match diagnosis {
                Diagnosis::SessionBroken => {
                    guard.discard();
                    self.sweep_idle();
                    // A dead session handle means the module refused the call before doing
                    // anything, so even an operation that creates objects may run again (ours
                    // check for an existing label first, so a half-finished one cannot be
                    // doubled).
                    let may_retry = retry == Retry::Idempotent || refused_unstarted(&fail);
                    if !may_retry || !budget.take(Diagnosis::SessionBroken) {
                        return Err(self.to_error(fail, key));
                    }
                }
                Diagnosis::NotLoggedIn => {
                    // Someone logged the application out (or closed every session): log in
                    // again. Nothing was done, so even a non-idempotent operation may rerun.
                    // Every session's cached handles went with the login.
                    self.invalidate_handles();
                    self.login(&guard.session_mut().session)
                        .map_err(|f| self.to_error(f, key))?;
                    if !budget.take(Diagnosis::NotLoggedIn) {
                        return Err(self.to_error(fail, key));
                    }
                }
                Diagnosis::StaleHandle if budget.take(Diagnosis::StaleHandle) => {
                    let pooled = guard.session_mut();
                    pooled.handles.clear();
                    // A handle goes stale when its key was deleted, or when the login was lost
                    // (private objects vanish from a logged-out session): repair the login now,
                    // so the new lookup sees the key again.
                    if !Self::logged_in(&pooled.session) {
                        // Every session's cached handles are stale then, not only this one's:
                        // the retry may check out another session.
                        self.invalidate_handles();
                        self.login(&pooled.session)
                            .map_err(|f| self.to_error(f, key))?;
                    }
                }
                Diagnosis::Busy if retry == Retry::Idempotent && budget.take(Diagnosis::Busy) => {
                    // The limit, lowered above, keeps the load on the HSM down; the session goes
                    // back so a waiting caller can use the room under it, and this caller
                    // retries after its jittered back-off.
                    drop(guard);
                    std::thread::sleep(busy_backoff(budget.busy - 1));
                }
                _ => return Err(self.to_error(fail, key)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn fail(rv: RvError) -> Fail {
        Fail::Pkcs11("C_Sign", CkError::Pkcs11(rv, Function::Sign))
    }

    #[test]
    fn return_values_are_diagnosed_as_the_module_docs_say() {
        for (rv, expected) in [
            (RvError::SessionHandleInvalid, Diagnosis::SessionBroken),
            (RvError::SessionClosed, Diagnosis::SessionBroken),
            (RvError::DeviceRemoved, Diagnosis::SessionBroken),
            (RvError::TokenNotPresent, Diagnosis::SessionBroken),
            (RvError::UserNotLoggedIn, Diagnosis::NotLoggedIn),
            (RvError::KeyHandleInvalid, Diagnosis::StaleHandle),
            (RvError::ObjectHandleInvalid, Diagnosis::StaleHandle),
            // CloudHSM throttling.
            (RvError::FunctionFailed, Diagnosis::Busy),
            (RvError::OperationActive, Diagnosis::Busy),
            (RvError::DeviceError, Diagnosis::Busy),
            (RvError::PinIncorrect, Diagnosis::Other),
            (RvError::KeyFunctionNotPermitted, Diagnosis::Other),
        ] {
            assert_eq!(diagnose(&fail(rv)), expected, "{rv:?}");
        }
        assert_eq!(
            diagnose(&Fail::Final(Error::PinIncorrect { token: "t".into() })),
            Diagnosis::Other
        );
    }

    #[test]
    fn only_dead_handles_let_object_creation_retry() {
        assert!(refused_unstarted(&fail(RvError::SessionHandleInvalid)));
        assert!(refused_unstarted(&fail(RvError::SessionClosed)));
        assert!(!refused_unstarted(&fail(RvError::DeviceRemoved)));
        assert!(!refused_unstarted(&fail(RvError::FunctionFailed)));
    }

    #[test]
    fn each_kind_of_trouble_has_its_own_bounded_budget() {
        let mut budget = RetryBudget::default();
        assert!(budget.take(Diagnosis::StaleHandle));
        assert!(!budget.take(Diagnosis::StaleHandle));
        // A stale handle does not use up the lost login's retries, nor the dead session's.
        for _ in 0..RetryBudget::LOGIN {
            assert!(budget.take(Diagnosis::NotLoggedIn));
        }
        assert!(!budget.take(Diagnosis::NotLoggedIn));
        for _ in 0..RetryBudget::SESSION {
            assert!(budget.take(Diagnosis::SessionBroken));
        }
        assert!(!budget.take(Diagnosis::SessionBroken));
        assert!(!budget.take(Diagnosis::Other));
        for _ in BUSY_BACKOFF {
            assert!(budget.take(Diagnosis::Busy));
        }
        assert!(!budget.take(Diagnosis::Busy));
    }

    #[test]
    fn busy_backoff_is_bounded_and_jittered() {
        let total: Duration = BUSY_BACKOFF.iter().sum();
        assert!(total < Duration::from_millis(500), "{total:?}");
        for (attempt, most) in BUSY_BACKOFF.iter().enumerate() {
            let waits: Vec<Duration> = (0..50).map(|_| busy_backoff(attempt)).collect();
            assert!(
                waits.iter().all(|w| *w >= *most / 2 && w <= most),
                "{waits:?}"
            );
            let first = waits[0];
            assert!(waits.iter().any(|w| *w != first), "no jitter: {waits:?}");
        }
    }
}
