//! A session of the pool with its cached key handles ([`PooledSession`]), and the guard that
//! holds it while one operation runs ([`SessionGuard`]): back to the pool on drop, or forgotten
//! if it broke.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::{Fail, SessionPool};

/// A session of the pool, with the key handles it has looked up.
pub(crate) struct PooledSession {
    pub(crate) session: Session,
    pub(super) key_epoch: u64,
    /// Private-key handles by CKA_ID.
    pub(super) handles: HashMap<Vec<u8>, ObjectHandle>,
}

impl PooledSession {
    /// The private-key handle cached for `id`, or the result of `lookup`, which is then cached.
    pub(crate) fn cached_handle(
        &mut self,
        id: &[u8],
        lookup: impl FnOnce(&Session) -> Result<ObjectHandle, Fail>,
    ) -> Result<ObjectHandle, Fail> {
        if let Some(handle) = self.handles.get(id) {
            return Ok(*handle);
        }
        let handle = lookup(&self.session)?;
        self.handles.insert(id.to_vec(), handle);
        Ok(handle)
    }
}

/// A checked-out session; goes back to the pool on drop (or is forgotten if it broke).
pub(crate) struct SessionGuard<'a> {
    pool: &'a SessionPool,
    session: Option<PooledSession>,
    /// The operation on it succeeded: the limit may grow when it comes back.
    succeeded: bool,
}

impl<'a> SessionGuard<'a> {
    pub(super) fn new(pool: &'a SessionPool, session: PooledSession) -> Self {
        Self {
            pool,
            session: Some(session),
            succeeded: false,
        }
    }

    /// Notes that the operation succeeded (for the limit, when the session comes back).
    pub(super) fn succeeded(&mut self) {
        self.succeeded = true;
    }

    pub(crate) fn session_mut(&mut self) -> &mut PooledSession {
        // Invariant: only `discard(self)` and `drop` take the session out, and both consume the
        // guard, so a live guard always holds its session.
        self.session
            .as_mut()
            .expect("a live guard holds its session")
    }

    /// Marks the session dead: it is forgotten instead of returned.
    pub(super) fn discard(mut self) {
        if let Some(session) = self.session.take() {
            std::mem::forget(session.session);
            let mut state = self.pool.lock();
            state.open -= 1;
            self.pool.wake(&state, 1);
            drop(state);
            self.pool.replaced.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut state = self.pool.lock();
            state.idle.push(session);
            // One waiter takes this session; one more if the limit grew.
            let grew = self.succeeded && state.limit.succeeded();
            self.pool.wake(&state, 1 + usize::from(grew));
        }
    }
}
