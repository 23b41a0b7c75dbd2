//! Small file operations the store needs to survive a kill at any point: files created once and
//! never overwritten, files replaced atomically, and directory entries made durable.

use std::path::Path;

use tezos_keys::durable::{self, DurableError};

/// Creates `path` with `bytes`, readable by the owner only, failing if anything (a file, a
/// symbolic link) is already there, durably: [`tezos_keys::durable::write_new`], the
/// workspace's one owner-only durable writer.
pub fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    durable::write_new(path, bytes).map_err(into_io)
}

/// Replaces `path` with `bytes` atomically: a reader (or a kill) sees the old file or the new
/// one, never a mix ([`tezos_keys::durable::replace`]: a temporary file of its own next to
/// it, flushed, renamed over `path`, the directory flushed).
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    durable::replace(path, bytes).map_err(into_io)
}

/// A durable-writer error as the `std::io::Error` the store's callers expect.
fn into_io(e: DurableError) -> std::io::Error {
    match e {
        DurableError::Exists { .. } => std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        DurableError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Whether `name` is a temporary file [`replace_atomically`] may have left behind.
pub fn is_leftover_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Flushes the directory holding `path`, so that a new name in it survives a crash.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Flushes directory `dir`.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Sets the permission bits of `path` (Unix only).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}
