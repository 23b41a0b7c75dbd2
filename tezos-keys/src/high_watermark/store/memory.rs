//! [`MemoryStore`]: high-watermarks in memory, for tests.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, PoisonError};

use super::{refuse_regression, LockedRecord, WatermarkStore};
use crate::high_watermark::{GuardError, KeyMarks};
use crate::PublicKeyHash;

/// High-watermarks in memory: for tests, and nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<PublicKeyHash, KeyMarks>>,
    locked: Mutex<HashSet<PublicKeyHash>>,
    released: Condvar,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl WatermarkStore for MemoryStore {
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError> {
        let mut locked = self.locked.lock().unwrap_or_else(PoisonError::into_inner);
        while locked.contains(key) {
            locked = self
                .released
                .wait(locked)
                .unwrap_or_else(PoisonError::into_inner);
        }
        locked.insert(*key);
        Ok(Box::new(MemoryRecord {
            store: self,
            key: *key,
        }))
    }
}

/// A [`MemoryStore`] record, locked: the key is in `locked` until this is dropped.
struct MemoryRecord<'a> {
    store: &'a MemoryStore,
    key: PublicKeyHash,
}

impl LockedRecord for MemoryRecord<'_> {
    fn load(&mut self) -> Result<KeyMarks, GuardError> {
        let records = self
            .store
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(records.get(&self.key).cloned().unwrap_or_default())
    }

    fn save(&mut self, marks: &KeyMarks) -> Result<(), GuardError> {
        let mut records = self
            .store
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = records.get(&self.key) {
            refuse_regression(&self.key, current, marks)?;
        }
        records.insert(self.key, marks.clone());
        Ok(())
    }
}

impl Drop for MemoryRecord<'_> {
    fn drop(&mut self) {
        let mut locked = self
            .store
            .locked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        locked.remove(&self.key);
        self.store.released.notify_all();
    }
}
