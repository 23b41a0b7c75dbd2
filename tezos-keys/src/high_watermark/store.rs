//! Where high-watermarks live: the [`WatermarkStore`] a guard locks, loads and saves through,
//! the rule every store enforces (a record never moves backwards), and two stores:
//! [`FileStore`] (durable, `file`; its file format in `file/format.rs`) and [`MemoryStore`]
//! (tests, `memory`).

mod file;
mod memory;

use std::sync::Arc;

use super::{GuardError, Height, KeyMarks};
use crate::PublicKeyHash;

pub use file::FileStore;
pub use memory::MemoryStore;

/// Storage for high-watermarks: one record ([`KeyMarks`]) per key, each behind its own lock.
///
/// The guard calls [`WatermarkStore::lock`] and then, through the [`LockedRecord`] it gets,
/// loads, signs and saves: the lock must exclude every other holder of the same key's lock,
/// in this process (other threads, other guards over the same store) and, for a store shared
/// between processes, in every process, until the [`LockedRecord`] is dropped.
pub trait WatermarkStore: Send + Sync {
    /// Takes the exclusive lock on `key`'s record, waiting for it (for a bounded time).
    ///
    /// # Errors
    /// [`GuardError::StoreBusy`] if the wait ran out; any other store error, e.g.
    /// [`GuardError::StoreMissing`] for a store whose directory has vanished.
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError>;

    /// Everything recorded for `key` (taking and releasing its lock): to display or check a
    /// record. Empty if nothing was ever recorded.
    ///
    /// # Errors
    /// As [`WatermarkStore::lock`] and [`LockedRecord::load`].
    fn load(&self, key: &PublicKeyHash) -> Result<KeyMarks, GuardError> {
        self.lock(key)?.load()
    }
}

/// One key's record, locked by [`WatermarkStore::lock`] until this is dropped.
pub trait LockedRecord {
    /// Everything recorded for the key; empty if nothing was ever recorded.
    ///
    /// # Errors
    /// [`GuardError::StoreCorrupt`] for a record that exists but cannot be parsed (never
    /// return an empty record for it), [`GuardError::StoreIo`] if it cannot be read.
    fn load(&mut self) -> Result<KeyMarks, GuardError>;

    /// Replaces the key's record. When this returns `Ok`, the record must survive a crash
    /// or power loss; on `Err` the old or the new record may be in place, never a mix. A record
    /// never moves backwards: a save that would lower or drop any (chain, kind) height already
    /// recorded is refused, whoever calls it.
    ///
    /// # Errors
    /// [`GuardError::DoubleSign`] for a save that would move the record backwards (nothing is
    /// written); [`GuardError::StoreIo`] (or [`GuardError::StoreCorrupt`]) when it could not be
    /// made durable.
    fn save(&mut self, marks: &KeyMarks) -> Result<(), GuardError>;
}

/// A store shared with the caller (e.g. a test keeping a handle on a [`MemoryStore`]).
impl<T: WatermarkStore + ?Sized> WatermarkStore for Arc<T> {
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError> {
        (**self).lock(key)
    }
}

/// Refuses a new record `next` that would lower, or drop, a height of the `current` one: the
/// rule that makes a record never move backwards, checked by every store under its lock (and
/// by stores in other crates, e.g. `watermark-postgres`, in their [`LockedRecord::save`]).
///
/// # Errors
/// [`GuardError::DoubleSign`] naming the first (chain, kind) that would move backwards.
pub fn refuse_regression(
    key: &PublicKeyHash,
    current: &KeyMarks,
    next: &KeyMarks,
) -> Result<(), GuardError> {
    for ((chain, kind), recorded) in current {
        let requested = next.get(&(*chain, *kind)).map(|mark| mark.height);
        let lower = requested
            .is_none_or(|height| height.compare(&recorded.height) == core::cmp::Ordering::Less);
        if lower {
            return Err(GuardError::DoubleSign {
                key: *key,
                chain: *chain,
                kind: *kind,
                requested: requested.unwrap_or(Height::new(0, 0)),
                recorded: recorded.height,
            });
        }
    }
    Ok(())
}
