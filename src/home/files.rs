//! Small file operations the store needs to survive a kill at any point: files created once and
//! never overwritten, files replaced atomically, and directory entries made durable.

use std::io::Write;
use std::path::Path;

/// Creates `path` with `bytes`, readable by the owner only, failing if anything (a file, a
/// symbolic link) is already there (`O_CREAT|O_EXCL`, which never follows a link), and flushes
/// it to disk.
pub fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces `path` with `bytes` atomically: a reader (or a kill) sees the old file or the new
/// one, never a mix. Writes a temporary file next to it, flushes it, renames it over `path`
/// and flushes the directory.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?
        .to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    // A temporary file of a killed process with this pid: ours to replace.
    let _ = std::fs::remove_file(&temp);
    create_private(&temp, bytes)?;
    std::fs::rename(&temp, path)?;
    sync_parent(path)
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
