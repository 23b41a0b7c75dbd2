//! [`FileStore`]: high-watermarks in a directory, one JSON file per key, behind an OS file lock.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{refuse_regression, LockedRecord, WatermarkStore};
use crate::durable::{self, DurableError};
use crate::high_watermark::{GuardError, KeyMarks};
use crate::PublicKeyHash;

mod format;

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
/// `round` is `null` for legacy payloads. A floor (a [`Mark`](crate::high_watermark::Mark) without signature,
/// set by `watermark set` or imported) has no `digest` and no `signature` field; an imported
/// mark may have a `digest` alone. Why one file per key, not per (key, chain): the guard
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
                Some(bytes) => format::parse(&self.key, &path, &bytes)?,
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
        let bytes = format::render(&self.key, marks).map_err(|e| GuardError::StoreCorrupt {
            path: path.clone(),
            reason: format!("cannot serialise the record: {e}"),
        })?;
        durable::replace(&path, &bytes).map_err(store_error)?;
        self.loaded = Some(marks.clone());
        Ok(())
    }
}
