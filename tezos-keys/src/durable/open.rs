//! Opening a file without following a symbolic link or waiting on a FIFO: to read it whole
//! ([`read_regular`]) or to lock it ([`open_lock_file`]).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read as _};
use std::path::Path;

use super::{describe, io, DurableError};
#[cfg(unix)]
use super::{nofollow, nonblock};

/// Reads the whole file at `path`, at most `limit` bytes: `None` if there is no such file.
/// A symbolic link is not followed and a FIFO is not waited on: anything but a regular file
/// is [`DurableError::NotRegular`].
///
/// # Errors
/// [`DurableError::NotRegular`], [`DurableError::TooLarge`], [`DurableError::Io`].
pub fn read_regular(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, DurableError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, nofollow() | nonblock());
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // ELOOP from O_NOFOLLOW, ENXIO from a socket…: say what the path is, if we can.
            return Err(match fs::symlink_metadata(path) {
                Ok(meta) if !meta.is_file() => DurableError::NotRegular {
                    path: path.to_path_buf(),
                    found: describe(&meta.file_type()),
                },
                _ => io("open", path)(e),
            });
        }
    };
    let meta = file.metadata().map_err(io("inspect", path))?;
    if !meta.is_file() {
        return Err(DurableError::NotRegular {
            path: path.to_path_buf(),
            found: describe(&meta.file_type()),
        });
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(DurableError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(Some(bytes))
}

/// Opens (creating it, mode 0600, if missing) the file `path` for use as a lock: a symbolic
/// link is not followed, and anything but a regular file is refused.
///
/// # Errors
/// [`DurableError::NotRegular`], [`DurableError::Io`].
pub fn open_lock_file(path: &Path) -> Result<File, DurableError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(nofollow() | nonblock());
    }
    let file = options
        .open(path)
        .map_err(|e| match fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_file() => DurableError::NotRegular {
                path: path.to_path_buf(),
                found: describe(&meta.file_type()),
            },
            _ => io("open", path)(e),
        })?;
    let meta = file.metadata().map_err(io("inspect", path))?;
    if !meta.is_file() {
        return Err(DurableError::NotRegular {
            path: path.to_path_buf(),
            found: describe(&meta.file_type()),
        });
    }
    Ok(file)
}
