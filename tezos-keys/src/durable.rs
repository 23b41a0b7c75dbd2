//! Owner-only files that survive a crash: the one durable file writer of the workspace.
//!
//! - [`write_new`]: a new file, complete or absent, never over an existing one (backups).
//! - [`replace`]: a file replaced atomically, old or new and never a mix (watermark records).
//! - [`read_regular`]: a small file read without following a symbolic link or hanging on a FIFO.
//! - [`check_private_dir`], [`create_private_dir`]: a directory only its owner can write.
//!
//! Both writers create a temporary file beside the target with a name no other writer uses
//! (`.<name>.tmp-<pid>-<counter>`), `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600 from the start; write
//! and `fsync` it; then link or rename it to the target and `fsync` the directory, so the new
//! name survives a crash. A planted file or symbolic link at a temporary name makes the create
//! fail; it is never written through. On failure the temporary file is removed; a SIGKILL
//! between create and rename can leave one behind, which nothing reads.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a durable file operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurableError {
    /// [`write_new`] found the target already there; it is never overwritten.
    #[error("{} already exists and is never overwritten: choose another name or move it away first", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A system call failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted: `create a temporary file beside`, `write`, `rename onto`…
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The path is not a regular file (a symbolic link, directory, FIFO, socket or device).
    #[error("{} is a {found}, not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        found: &'static str,
    },
    /// The file is larger than the caller's limit.
    #[error("{} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The path given as a directory is something else.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory does not exist.
    #[error("the directory {} does not exist", path.display())]
    MissingDir {
        /// The directory.
        path: PathBuf,
    },
    /// The directory exists but someone else could change what is in it.
    #[error("the directory {} {problem}: another user could replace the files in it; fix: {fix}", path.display())]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong, e.g. `is writable by group and others (mode 777)`.
        problem: String,
        /// The command that fixes it, e.g. `chmod 700 /var/lib/signer/watermarks`.
        fix: String,
    },
}

impl DurableError {
    /// A stable snake_case name for the error, for scripts and JSON output: `file_exists`,
    /// `io`, `not_regular_file`, `file_too_large`, `not_a_directory`, `directory_missing`, `directory_unsafe`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Exists { .. } => "file_exists",
            Self::Io { .. } => "io",
            Self::NotRegular { .. } => "not_regular_file",
            Self::TooLarge { .. } => "file_too_large",
            Self::NotADirectory { .. } => "not_a_directory",
            Self::MissingDir { .. } => "directory_missing",
            Self::UnsafeDir { .. } => "directory_unsafe",
        }
    }
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> DurableError + 'a {
    move |source| DurableError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

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

/// Checks that `dir` is a directory that only its owner, the user running this process, can
/// write: owned by the effective user, no write permission for group or others. The files
/// in such a directory cannot be replaced, removed or planted by anybody else (a symbolic
/// link planted in a shared directory could otherwise redirect a write).
///
/// # Errors
/// [`DurableError::MissingDir`], [`DurableError::UnsafeDir`] (naming the fix),
/// [`DurableError::NotADirectory`], [`DurableError::Io`].
pub fn check_private_dir(dir: &Path) -> Result<(), DurableError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(DurableError::MissingDir {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(io("inspect the directory", dir)(e)),
    };
    if !meta.is_dir() {
        return Err(DurableError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let unsafe_dir = |problem: String, fix: String| DurableError::UnsafeDir {
            path: dir.to_path_buf(),
            problem,
            fix,
        };
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(unsafe_dir(
                format!(
                    "is owned by user id {}, not by the user running this program (id {me})",
                    meta.uid()
                ),
                format!(
                    "run as its owner, or `chown {me} {0} && chmod 700 {0}`",
                    dir.display()
                ),
            ));
        }
        let mode = meta.mode() & 0o7777;
        let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => Some("group and others"),
            (true, false) => Some("its group"),
            (false, true) => Some("others"),
            (false, false) => None,
        };
        if let Some(writers) = writers {
            return Err(unsafe_dir(
                format!("is writable by {writers} (mode {mode:o})"),
                format!("`chmod 700 {}`", dir.display()),
            ));
        }
        check_ancestors(dir, me)?;
    }
    Ok(())
}

/// Checks every directory above `dir` (after resolving symbolic links): whoever can write one
/// of them can rename `dir` away and put another directory, or a symbolic link to one, in its
/// place, and the checks on `dir` itself would then pass on a directory with other records.
/// Each ancestor must belong to root or to the user running this program, and must not be
/// writable by group or others unless its sticky bit is set (as on `/tmp`: there only an
/// entry's owner may rename or remove it).
#[cfg(unix)]
fn check_ancestors(dir: &Path, me: u32) -> Result<(), DurableError> {
    use std::os::unix::fs::MetadataExt as _;
    let real = fs::canonicalize(dir).map_err(io("resolve the directory", dir))?;
    for ancestor in real.ancestors().skip(1) {
        let meta = fs::metadata(ancestor).map_err(io("inspect the directory", ancestor))?;
        let mode = meta.mode() & 0o7777;
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        let shared = mode & 0o022 != 0 && mode & 0o1000 == 0;
        if !owner_ok || shared {
            let problem = if owner_ok {
                format!(
                    "is inside {}, which group or others can write (mode {mode:o}) and so could \
                     swap it for another directory",
                    ancestor.display()
                )
            } else {
                format!(
                    "is inside {}, which belongs to user id {} and so could be swapped for \
                     another directory",
                    ancestor.display(),
                    meta.uid()
                )
            };
            return Err(DurableError::UnsafeDir {
                path: dir.to_path_buf(),
                problem,
                fix: format!(
                    "move it under a directory only you (or root) can write, or `chmod go-w {}`",
                    ancestor.display()
                ),
            });
        }
    }
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist, then checks it as
/// [`check_private_dir`] does: an existing directory that others can write is refused, never
/// silently changed.
///
/// # Errors
/// As [`check_private_dir`]; [`DurableError::Io`] if it cannot be created.
pub fn create_private_dir(dir: &Path) -> Result<(), DurableError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(io("create the directory", dir))?;
    check_private_dir(dir)
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

fn describe(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "device";
        }
    }
    if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(unix)]
fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(unix)]
fn nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(dir: &Path) -> Vec<OsString> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_new_writes_once_with_mode_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.json");
        write_new(&path, b"one").unwrap();
        let err = write_new(&path, b"two").unwrap_err();
        assert!(matches!(err, DurableError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(names(dir.path()), ["backup.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, b"precious").unwrap();
        let link = dir.path().join("record.json");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = read_regular(&link, 100).unwrap_err();
        assert_eq!(err.kind(), "not_regular_file", "{err}");
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert_eq!(write_new(&link, b"x").unwrap_err().kind(), "file_exists");
        let err = open_lock_file(&link).unwrap_err();
        assert_eq!(err.kind(), "not_regular_file", "{err}");
        replace(&link, b"new").unwrap(); // replaces the link itself
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, [b'x'; 101]).unwrap();
        assert_eq!(
            read_regular(&path, 100).unwrap_err().kind(),
            "file_too_large"
        );
        assert_eq!(read_regular(&path, 101).unwrap().unwrap().len(), 101);
        assert_eq!(read_regular(&dir.path().join("none"), 1).unwrap(), None);
        let err = read_regular(dir.path(), 1).unwrap_err();
        assert_eq!(err.kind(), "not_regular_file", "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_regular(&fifo, 100).unwrap_err();
        assert!(
            err.to_string().ends_with("is a FIFO, not a regular file"),
            "{err}"
        );
        assert_eq!(
            open_lock_file(&fifo).unwrap_err().kind(),
            "not_regular_file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn directories_others_can_write_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        assert_eq!(
            check_private_dir(&dir).unwrap_err().kind(),
            "directory_missing"
        );
        create_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        create_private_dir(&dir).unwrap(); // already there: fine
        for (mode, who) in [
            (0o770, "its group"),
            (0o777, "group and others"),
            (0o702, "others"),
        ] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let err = check_private_dir(&dir).unwrap_err();
            assert_eq!(err.kind(), "directory_unsafe");
            let text = err.to_string();
            assert!(text.contains(&format!("is writable by {who}")), "{text}");
            assert!(
                text.contains(&format!("chmod 700 {}", dir.display())),
                "{text}"
            );
            assert_eq!(
                create_private_dir(&dir).unwrap_err().kind(),
                "directory_unsafe"
            );
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        check_private_dir(&dir).unwrap(); // readable by others is fine
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_inside_one_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        let dir = shared.join("watermarks");
        create_private_dir(&dir).unwrap();
        // Group-writable parent: a group member could rename `watermarks` away and plant a
        // symbolic link to another directory of the owner's in its place.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o775)).unwrap();
        let err = check_private_dir(&dir).unwrap_err();
        assert_eq!(err.kind(), "directory_unsafe");
        assert!(
            err.to_string()
                .contains(&format!("chmod go-w {}", shared.display())),
            "{err}"
        );
        // The same through a symbolic link: the resolved path's parents are checked.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(
            check_private_dir(&link).unwrap_err().kind(),
            "directory_unsafe"
        );
        // Sticky and shared, as /tmp: only an entry's owner may rename it there.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        check_private_dir(&dir).unwrap();
        check_private_dir(&link).unwrap();
    }
}
