//! Directories only their owner can write: checked ([`check_private_dir`]) or created so
//! ([`create_private_dir`]).

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::{io, DurableError};

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
