//! The two writers: a new file ([`write_new`]) and an atomic replacement ([`replace`]), both
//! through a temporary file of their own, fsynced, then linked or renamed and the directory
//! fsynced.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use super::nofollow;
use super::{io, DurableError};

/// Writes `contents` to the new file `path`, mode 0600: afterwards `path` either does not
/// exist or is complete, and an existing file is never replaced (the temporary file is
/// hard-linked to `path`, which fails if `path` exists, even if it appeared a moment ago).
///
/// # Errors
/// [`DurableError::Exists`] if `path` exists (as anything, a symbolic link included);
/// [`DurableError::Io`] for any other failure.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("durable-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("secret.txt");
/// tezos_keys::durable::write_new(&path, b"hello")?;
/// let again = tezos_keys::durable::write_new(&path, b"again").unwrap_err();
/// assert_eq!(again.kind(), "file_exists"); // never overwritten
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// # }
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_new(path: &Path, contents: &[u8]) -> Result<(), DurableError> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(DurableError::Exists {
            path: path.to_path_buf(),
        });
    }
    let (dir, temp) = write_temp(path, contents)?;
    fs::hard_link(&temp.0, path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            DurableError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io("create", path)(e)
        }
    })?;
    drop(temp); // removes the temporary name
    sync_dir(&dir)
}

/// Replaces `path` with a file holding `contents`, mode 0600, atomically: a crash leaves the
/// old file or the new one, complete. A symbolic link at `path` is replaced, not followed.
///
/// # Errors
/// [`DurableError::Io`]. On error the old file or the new one may be in place, never a mix.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("durable-replace-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("record.json");
/// tezos_keys::durable::replace(&path, b"one")?;
/// tezos_keys::durable::replace(&path, b"two")?;
/// assert_eq!(tezos_keys::durable::read_regular(&path, 100)?.as_deref(), Some(&b"two"[..]));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn replace(path: &Path, contents: &[u8]) -> Result<(), DurableError> {
    let (dir, mut temp) = write_temp(path, contents)?;
    fs::rename(&temp.0, path).map_err(io("rename a temporary file onto", path))?;
    temp.0 = PathBuf::new(); // renamed: nothing to remove
    sync_dir(&dir)
}

/// A temporary file's path; the file is removed when this is dropped, unless emptied.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// Creates, writes and fsyncs a temporary file beside `path`; returns its directory and name.
fn write_temp(path: &Path, contents: &[u8]) -> Result<(PathBuf, Temp), DurableError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| DurableError::Io {
        action: "write",
        path: path.to_path_buf(),
        source: std::io::Error::new(ErrorKind::InvalidInput, "the path does not name a file"),
    })?;
    let (temp, mut file) = create_temp(&dir, name)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io("write", &temp.0))?;
    Ok((dir, temp))
}

/// Creates `.<name>.tmp-<pid>-<n>` in `dir`, exclusively, mode 0600; `n` counts per process,
/// so no two writers on one host ever pick the same name.
fn create_temp(dir: &Path, name: &OsStr) -> Result<(Temp, File), DurableError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp_path = dir.join(temp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600).custom_flags(nofollow());
        }
        match options.open(&temp_path) {
            Ok(file) => return Ok((Temp(temp_path), file)),
            // A leftover of a killed process that had our pid: try the next number.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io("create a temporary file in", dir)(e)),
        }
    }
    Err(io("create a temporary file in", dir)(last.unwrap_or_else(
        || std::io::Error::other("no free temporary name"),
    )))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), DurableError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync the directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), DurableError> {
    // Directories cannot be opened for fsync here; the rename is still atomic.
    Ok(())
}
