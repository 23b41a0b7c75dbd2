//! Writing the bring-up's files: new files that never replace an existing one, and the trust
//! anchor replaced atomically. Both write a temporary file beside the target
//! (`O_CREAT|O_EXCL`, the final mode from the start), `fsync` it, then link (new files) or
//! rename (replacement) it into place and `fsync` the directory, so a crash leaves the old file
//! or the complete new one, never a part.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// Most bytes read from a certificate, CSR, key or JSON input: the largest of them
/// (`describe-clusters` output) is a few tens of kilobytes.
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Reads a small input file, with an error naming it.
pub(crate) fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    let meta = fs::metadata(path).map_err(|source| Error::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(Error::Invalid {
            what,
            reason: format!(
                "{} is {} bytes, more than the {MAX_INPUT_BYTES} a {what} can be",
                path.display(),
                meta.len()
            ),
        });
    }
    fs::read(path).map_err(|source| Error::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Refuses early when `path` exists, so that nothing is written when one of several outputs is
/// already there.
pub(crate) fn ensure_absent(path: &Path) -> Result<(), Error> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(Error::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes the new file `path` with `mode`; an existing file (or link) at `path` is never
/// replaced, even one that appeared a moment ago.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    ensure_absent(path)?;
    let temp = write_temp(path, contents, mode)?;
    fs::hard_link(&temp.0, path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            Error::Exists {
                path: path.to_path_buf(),
            }
        } else {
            io("create", path, e)
        }
    })?;
    drop(temp);
    sync_dir(path)
}

/// Replaces `path` atomically with a file holding `contents`, with `mode`.
pub(crate) fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut temp = write_temp(path, contents, mode)?;
    fs::rename(&temp.0, path).map_err(|e| io("rename a temporary file onto", path, e))?;
    temp.0 = PathBuf::new();
    sync_dir(path)
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Write {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary file, removed when dropped unless its path was cleared.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

fn write_temp(path: &Path, contents: &[u8], mode: u32) -> Result<Temp, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io("write", path, ErrorKind::InvalidInput.into()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = Temp(path.with_file_name(temp_name));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(mode)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file: File = options
        .open(&temp.0)
        .map_err(|e| io("create a temporary file beside", path, e))?;
    // The umask may have cleared bits of `mode` (e.g. 0644 under umask 077): set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io("set the mode of", &temp.0, e))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", &temp.0, e))?;
    Ok(temp)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync the directory", dir, e))
}
