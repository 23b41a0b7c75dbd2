//! Where high-watermarks live: [`FileStore`] (durable) and [`MemoryStore`] (tests).
//!
//! See [`FileStore`] for the file format.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{GuardError, Height, KeyMarks, Mark, MarkKind};
use crate::{ChainId, PublicKeyHash, Signature};

/// Storage for high-watermarks: one record ([`KeyMarks`]) per key.
///
/// The guard calls both methods while holding the key's lock, so an implementation needs no
/// locking of its own per key.
pub trait WatermarkStore: Send + Sync {
    /// Everything recorded for `key`; empty if nothing was ever recorded.
    ///
    /// # Errors
    /// [`GuardError::StoreCorrupt`] for a record that exists but cannot be parsed (never
    /// return an empty record for it), [`GuardError::StoreIo`] if it cannot be read.
    fn load(&self, key: &PublicKeyHash) -> Result<KeyMarks, GuardError>;

    /// Replaces the record for `key`. When this returns `Ok`, the record must survive a crash
    /// or power loss; on `Err` the old or the new record may be in place, never a mix.
    ///
    /// # Errors
    /// [`GuardError::StoreIo`] (or [`GuardError::StoreCorrupt`]) when it could not be made durable.
    fn save(&self, key: &PublicKeyHash, marks: &KeyMarks) -> Result<(), GuardError>;
}

/// A store shared with the caller (e.g. a test keeping a handle on a [`MemoryStore`]).
impl<T: WatermarkStore + ?Sized> WatermarkStore for Arc<T> {
    fn load(&self, key: &PublicKeyHash) -> Result<KeyMarks, GuardError> {
        (**self).load(key)
    }

    fn save(&self, key: &PublicKeyHash, marks: &KeyMarks) -> Result<(), GuardError> {
        (**self).save(key, marks)
    }
}

/// High-watermarks in memory: for tests, and nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<PublicKeyHash, KeyMarks>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl WatermarkStore for MemoryStore {
    fn load(&self, key: &PublicKeyHash) -> Result<KeyMarks, GuardError> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records.get(key).cloned().unwrap_or_default())
    }

    fn save(&self, key: &PublicKeyHash, marks: &KeyMarks) -> Result<(), GuardError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.insert(*key, marks.clone());
        Ok(())
    }
}

/// High-watermarks in a directory, one JSON file per key.
///
/// Each save writes `<address>.json.tmp` (mode 0600), fsyncs it, renames it over
/// `<address>.json` and fsyncs the directory, so a crash leaves either the old or the new
/// record, complete. One process per directory.
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
/// writer at a time, and different keys never share a file (or wait on each other's fsync);
/// a key signs on one or two chains, so the file stays a few hundred bytes.
///
/// Reading is strict: unknown fields, a wrong `format`, another key's address, an unknown
/// chain or kind, a digest that is not 32 bytes, a signature for another curve or a duplicate
/// (chain, kind) make the file corrupt ([`GuardError::StoreCorrupt`]), as does an empty file.
/// Only a missing file means "nothing signed yet", and only if the directory itself is there.
///
/// ```
/// use tezos_keys::high_watermark::{FileStore, WatermarkStore};
/// # let dir = std::env::temp_dir().join(format!("hwm-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir)?; // created (mode 0700) if missing
/// let key = "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD".parse()?;
/// assert!(store.load(&key)?.is_empty()); // no file yet: first use
/// assert!(store.path_for(&key).ends_with("tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD.json"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
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
    /// Opens the store in `dir`, creating the directory (mode 0700) if it is missing.
    ///
    /// # Errors
    /// [`GuardError::StoreIo`] if it cannot be created or is not a directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, GuardError> {
        let dir = dir.as_ref();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(io(dir, "create the directory of"))?;
        Self::open_existing(dir)
    }

    /// Opens the store in `dir`, which must already exist: use this when a missing directory
    /// means a misconfiguration or an unmounted volume rather than a new signer.
    ///
    /// # Errors
    /// [`GuardError::StoreIo`] if `dir` is missing or not a directory.
    pub fn open_existing(dir: impl AsRef<Path>) -> Result<Self, GuardError> {
        let dir = dir.as_ref();
        let meta = fs::metadata(dir).map_err(io(dir, "open the directory of"))?;
        if !meta.is_dir() {
            return Err(GuardError::StoreIo {
                path: dir.to_path_buf(),
                action: "open the directory of",
                source: std::io::Error::other("not a directory"),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `key`'s record: `<dir>/<address>.json`.
    pub fn path_for(&self, key: &PublicKeyHash) -> PathBuf {
        self.dir.join(format!("{key}.json"))
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

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> GuardError {
    let path = path.to_path_buf();
    move |source| GuardError::StoreIo {
        path,
        action,
        source,
    }
}

impl WatermarkStore for FileStore {
    fn load(&self, key: &PublicKeyHash) -> Result<KeyMarks, GuardError> {
        let path = self.path_for(key);
        match fs::read(&path) {
            Ok(bytes) => Self::parse(key, &path, &bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // "Nothing signed yet" only if the directory is still there: a vanished or
                // unmounted directory must not look like a fresh start.
                Self::open_existing(&self.dir)?;
                Ok(KeyMarks::new())
            }
            Err(e) => Err(io(&path, "read")(e)),
        }
    }

    fn save(&self, key: &PublicKeyHash, marks: &KeyMarks) -> Result<(), GuardError> {
        let path = self.path_for(key);
        let tmp = self.dir.join(format!("{key}.json.tmp"));
        let bytes = Self::render(key, marks).map_err(|e| GuardError::StoreCorrupt {
            path: path.clone(),
            reason: format!("cannot serialise the record: {e}"),
        })?;
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io(&tmp, "create"))?;
        file.write_all(&bytes).map_err(io(&tmp, "write"))?;
        file.sync_all().map_err(io(&tmp, "fsync"))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io(&path, "rename the temporary file onto"))?;
        sync_dir(&self.dir)
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), GuardError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir, "fsync the directory of"))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), GuardError> {
    // Directories cannot be opened for fsync here; the rename is still atomic.
    Ok(())
}
