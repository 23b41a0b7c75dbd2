//! Where high-watermarks live: [`FileStore`] (durable) and [`MemoryStore`] (tests).
//!
//! See [`FileStore`] for the file format.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{GuardError, Height, KeyMarks, Mark, MarkKind};
use crate::durable::{self, DurableError};
use crate::{ChainId, PublicKeyHash, Signature};

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

/// Refuses a new record `next` that would lower, or drop, a height of the `current` one: the
/// rule that makes a record never move backwards, checked by every store under its lock.
fn refuse_regression(
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

/// High-watermarks in a directory, one JSON file per key.
///
/// Any number of processes and threads on one host may share a directory:
///
/// - **Lock.** [`WatermarkStore::lock`] takes an exclusive OS file lock (`flock`) on
///   `<dir>/<address>.lock`, a file created beside the record and never removed, and the guard
///   holds it from loading the record through signing to the durable save. The kernel drops it
///   when its holder exits or is killed. The wait is bounded ([`FileStore::with_lock_timeout`],
///   default [`FileStore::DEFAULT_LOCK_TIMEOUT`]): then [`GuardError::StoreBusy`].
/// - **Write.** Each save goes through [`crate::durable::replace`]: a temporary file with a
///   name of its own, created `O_EXCL|O_NOFOLLOW` with mode 0600, fsynced, renamed over
///   `<address>.json`, the directory fsynced; a crash leaves the old or the new record, complete.
/// - **Read.** Records are read `O_NOFOLLOW`, must be regular files of at most
///   [`FileStore::MAX_RECORD_BYTES`]: a symbolic link or FIFO is [`GuardError::StoreCorrupt`].
/// - **Directory.** It must exist ([`FileStore::open`] never creates it; [`FileStore::create`]
///   does) and be writable by its owner only, the user running the guard: a directory that
///   group or others can write, or that another user owns, is [`GuardError::StoreUnsafe`]
///   (anybody who can write it could plant a symbolic link or replace a record). It is checked
///   on open and again at every lock, so a directory that vanished (an unmounted volume) or
///   was opened up since stops signing.
///
/// The lock is an advisory lock of this host's kernel: processes on several hosts sharing one
/// network file system are **not** excluded from each other.
///
/// # File format
///
/// One JSON file per key, `<dir>/<address>.json`, holding every chain and kind of that key:
///
/// ```json
/// {
///   "format": "tezos-keys high-watermark v1",
///   "key": "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD",
///   "marks": [
///     {
///       "chain": "NetXdQprcVkpaWU",
///       "kind": "attestation",
///       "level": 1000000,
///       "round": 0,
///       "digest": "<64 hex digits: BLAKE2b-256 of the signed payload>",
///       "signature": "spsig1..."
///     }
///   ]
/// }
/// ```
///
/// `round` is `null` for legacy payloads. Why one file per key, not per (key, chain): the guard
/// serialises requests with one lock per key, so one file per key is written by exactly one
/// writer at a time, and different keys never share a file, a lock or an fsync; a key signs
/// on one or two chains, so the file stays a few hundred bytes.
///
/// Reading is strict: unknown fields, a wrong `format`, another key's address, an unknown
/// chain or kind, a digest that is not 32 bytes, a signature for another curve or a duplicate
/// (chain, kind) make the file corrupt ([`GuardError::StoreCorrupt`]), as does an empty file.
/// Only a missing file means "nothing signed yet", and only if the directory itself is there.
///
/// ```
/// use tezos_keys::high_watermark::{FileStore, WatermarkStore};
/// # let dir = std::env::temp_dir().join(format!("hwm-doc-{}", std::process::id()));
/// let missing = FileStore::open(&dir).unwrap_err(); // never created when opened to sign
/// assert_eq!(missing.kind(), "watermark_store_missing");
/// let store = FileStore::create(&dir)?; // created with mode 0700 (e.g. `watermark init`)
/// let key = "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD".parse()?;
/// assert!(store.load(&key)?.is_empty()); // no file yet: first use
/// assert!(store.path_for(&key).ends_with("tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD.json"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

const FORMAT: &str = "tezos-keys high-watermark v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecord {
    format: String,
    key: String,
    marks: Vec<FileMark>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMark {
    chain: String,
    kind: String,
    level: u32,
    round: Option<u32>,
    digest: String,
    signature: String,
}

impl FileStore {
    /// How long [`WatermarkStore::lock`] waits for another holder by default: far longer
    /// than a signature takes (milliseconds), far shorter than a baker's deadline.
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

    /// The largest record read: a key's record is a few hundred bytes per chain.
    pub const MAX_RECORD_BYTES: u64 = 1 << 20;

    /// Opens the store in the existing directory `dir`, to sign: a missing directory is
    /// [`GuardError::StoreMissing`], never created here (it may be an unmounted volume, a
    /// typo or another `HOME`; signing from an empty store could double-sign).
    ///
    /// # Errors
    /// [`GuardError::StoreMissing`], [`GuardError::StoreUnsafe`] (see the type's
    /// documentation), [`GuardError::StoreIo`] for something that is not a directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, GuardError> {
        let dir = dir.as_ref();
        durable::check_private_dir(dir).map_err(store_error)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            lock_timeout: Self::DEFAULT_LOCK_TIMEOUT,
        })
    }

    /// Creates the directory `dir` (and missing parents, mode 0700) if it is missing, then
    /// opens it as [`FileStore::open`] does: for a new signer (`tezos-hsm watermark init`,
    /// `key generate`, `key restore`). An existing directory is used as it is, never changed.
    ///
    /// # Errors
    /// As [`FileStore::open`]; [`GuardError::StoreIo`] if it cannot be created.
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, GuardError> {
        let dir = dir.as_ref();
        durable::create_private_dir(dir).map_err(store_error)?;
        Self::open(dir)
    }

    /// The same store, waiting at most `timeout` for a key's lock.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `key`'s record: `<dir>/<address>.json`.
    pub fn path_for(&self, key: &PublicKeyHash) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The file locked while `key`'s record is used: `<dir>/<address>.lock`.
    pub fn lock_path_for(&self, key: &PublicKeyHash) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }

    fn parse(key: &PublicKeyHash, path: &Path, bytes: &[u8]) -> Result<KeyMarks, GuardError> {
        let corrupt = |reason: String| GuardError::StoreCorrupt {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.is_empty() {
            return Err(corrupt("the file is empty".to_owned()));
        }
        let record: FileRecord = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(format!("not a valid record: {e}")))?;
        if record.format != FORMAT {
            return Err(corrupt(format!(
                "format is {:?}, expected {FORMAT:?}",
                record.format
            )));
        }
        if record.key != key.to_string() {
            return Err(corrupt(format!(
                "it belongs to key {}, not {key}",
                record.key
            )));
        }
        let mut marks = KeyMarks::new();
        for (i, m) in record.marks.iter().enumerate() {
            let at = |what: String| corrupt(format!("mark {i}: {what}"));
            let chain: ChainId = m
                .chain
                .parse()
                .map_err(|e| at(format!("chain {:?}: {e}", m.chain)))?;
            let kind =
                MarkKind::from_name(&m.kind).ok_or_else(|| at(format!("kind {:?}", m.kind)))?;
            let digest = hex::decode(&m.digest)
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| at("digest is not 64 hex digits".to_owned()))?;
            let signature: Signature = m
                .signature
                .parse()
                .map_err(|e| at(format!("signature: {e}")))?;
            if signature.curve() != key.curve() {
                return Err(at("signature is for another curve than the key".to_owned()));
            }
            let mark = Mark {
                height: Height {
                    level: m.level,
                    round: m.round,
                },
                digest,
                signature,
            };
            if marks.insert((chain, kind), mark).is_some() {
                return Err(at(format!("second {kind} mark for chain {chain}")));
            }
        }
        Ok(marks)
    }

    fn render(key: &PublicKeyHash, marks: &KeyMarks) -> Result<Vec<u8>, serde_json::Error> {
        let record = FileRecord {
            format: FORMAT.to_owned(),
            key: key.to_string(),
            marks: marks
                .iter()
                .map(|((chain, kind), mark)| FileMark {
                    chain: chain.to_string(),
                    kind: kind.name().to_owned(),
                    level: mark.height.level,
                    round: mark.height.round,
                    digest: hex::encode(mark.digest),
                    signature: mark.signature.to_string(),
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&record)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// A [`durable`] error, as the guard reports it.
fn store_error(e: DurableError) -> GuardError {
    match e {
        DurableError::MissingDir { path } => GuardError::StoreMissing { dir: path },
        DurableError::UnsafeDir { path, problem, fix } => GuardError::StoreUnsafe {
            dir: path,
            problem,
            fix,
        },
        DurableError::Io {
            action,
            path,
            source,
        } => GuardError::StoreIo {
            path,
            action,
            source,
        },
        DurableError::NotRegular { path, found } => GuardError::StoreCorrupt {
            path,
            reason: format!("it is a {found}, not a regular file"),
        },
        DurableError::TooLarge { path, limit } => GuardError::StoreCorrupt {
            path,
            reason: format!("it is larger than {limit} bytes"),
        },
        DurableError::NotADirectory { path } => GuardError::StoreIo {
            path,
            action: "open the directory of",
            source: std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
        },
        DurableError::Exists { path } => GuardError::StoreIo {
            path,
            action: "create",
            source: std::io::Error::from(ErrorKind::AlreadyExists),
        },
    }
}

impl WatermarkStore for FileStore {
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError> {
        // Again at every lock: a directory that vanished or was opened up since `open`
        // stops signing.
        durable::check_private_dir(&self.dir).map_err(store_error)?;
        let path = self.lock_path_for(key);
        let file = durable::open_lock_file(&path).map_err(store_error)?;
        let started = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            match try_lock(&file) {
                Ok(true) => break,
                Ok(false) => {}
                Err(source) => {
                    return Err(GuardError::StoreIo {
                        path,
                        action: "lock",
                        source,
                    })
                }
            }
            let waited = started.elapsed();
            if waited >= self.lock_timeout {
                return Err(GuardError::StoreBusy { path, waited });
            }
            std::thread::sleep(pause.min(self.lock_timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        Ok(Box::new(LockedFile {
            store: self,
            key: *key,
            _lock: file,
            loaded: None,
        }))
    }
}

/// Takes an exclusive `flock` on `file` if it is free: `Ok(false)` if another open file holds
/// it (another process, or another thread of this one: each lock opens the file anew).
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Err(std::io::Error::new(
        ErrorKind::Unsupported,
        "file locks are implemented on Unix only",
    ))
}

/// A [`FileStore`] record, locked: the `flock` on its lock file is released when the file is
/// closed, when this is dropped (or by the kernel, if the process dies).
struct LockedFile<'a> {
    store: &'a FileStore,
    key: PublicKeyHash,
    _lock: File,
    /// What is on disk, as last read or written under this lock: nobody else writes the record
    /// while the lock is held, so `save` checks against it without reading the file again (the
    /// guard has just loaded it on the signing path).
    loaded: Option<KeyMarks>,
}

impl LockedRecord for LockedFile<'_> {
    fn load(&mut self) -> Result<KeyMarks, GuardError> {
        let path = self.store.path_for(&self.key);
        let marks =
            match durable::read_regular(&path, FileStore::MAX_RECORD_BYTES).map_err(store_error)? {
                Some(bytes) => FileStore::parse(&self.key, &path, &bytes)?,
                None => KeyMarks::new(),
            };
        self.loaded = Some(marks.clone());
        Ok(marks)
    }

    fn save(&mut self, marks: &KeyMarks) -> Result<(), GuardError> {
        let current = match self.loaded.take() {
            Some(current) => current,
            None => self.load()?,
        };
        refuse_regression(&self.key, &current, marks)?;
        let path = self.store.path_for(&self.key);
        let bytes = FileStore::render(&self.key, marks).map_err(|e| GuardError::StoreCorrupt {
            path: path.clone(),
            reason: format!("cannot serialise the record: {e}"),
        })?;
        durable::replace(&path, &bytes).map_err(store_error)?;
        self.loaded = Some(marks.clone());
        Ok(())
    }
}
