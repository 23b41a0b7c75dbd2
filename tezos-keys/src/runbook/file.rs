//! Writing a file that holds key material: atomically, owner-only, never over another file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::RunbookError;

/// Writes `contents` to `path` so that the file either does not exist or is complete, is
/// readable by its owner only, and never replaces an existing file:
///
/// 1. a temporary file in the same directory is created with mode 0600 from the start
///    (`O_CREAT|O_EXCL`), written and `fsync`ed;
/// 2. it is hard-linked to `path`, which fails if `path` exists (no overwrite, no race);
/// 3. the temporary name is removed and the directory `fsync`ed, so the new name survives a
///    crash.
///
/// On failure nothing is left behind.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("runbook-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("secret.txt");
/// tezos_keys::runbook::write_private_file(&path, b"hello")?;
/// assert!(tezos_keys::runbook::write_private_file(&path, b"again").is_err()); // never overwritten
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// # }
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), RunbookError> {
    let io = |action, source| RunbookError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        return Err(RunbookError::FileExists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| RunbookError::InvalidInput {
        what: "output file",
        reason: format!("{} does not name a file", path.display()),
    })?;
    let (temp_path, mut file) =
        create_temp(&dir, name).map_err(|e| io("create a file beside", e))?;
    let cleanup = TempGuard(Some(temp_path.clone()));
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", e))?;
    drop(file);
    std::fs::hard_link(&temp_path, path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            RunbookError::FileExists {
                path: path.to_path_buf(),
            }
        } else {
            io("create", e)
        }
    })?;
    drop(cleanup); // removes the temporary name
    sync_dir(&dir).map_err(|e| io("sync the directory of", e))?;
    Ok(())
}

/// Removes the temporary file when dropped (success or failure).
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for attempt in 0..16u32 {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}-{attempt}", std::process::id()));
        let temp_path = dir.join(temp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&temp_path) {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_once_with_mode_0600_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("runbook-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("backup.json");
        write_private_file(&path, b"one").unwrap();
        let err = write_private_file(&path, b"two").unwrap_err();
        assert!(matches!(err, RunbookError::FileExists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["backup.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
