//! Owner-only files that survive a crash: the one durable file writer of the workspace.
//!
//! - [`write_new`]: a new file, complete or absent, never over an existing one (backups).
//! - [`replace`]: a file replaced atomically, old or new and never a mix (watermark records).
//! - [`read_regular`]: a small file read without following a symbolic link or hanging on a FIFO;
//!   [`open_lock_file`], a lock file opened the same way (module `open`).
//! - [`check_private_dir`], [`create_private_dir`]: a directory only its owner can write
//!   (module `dir`).
//!
//! Both writers (module `write`) create a temporary file beside the target with a name no other
//! writer uses (`.<name>.tmp-<pid>-<counter>`), `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600 from the
//! start; write and `fsync` it; then link or rename it to the target and `fsync` the directory,
//! so the new name survives a crash. A planted file or symbolic link at a temporary name makes
//! the create fail; it is never written through. On failure the temporary file is removed; a
//! SIGKILL between create and rename can leave one behind, which nothing reads.

mod dir;
mod open;
#[cfg(test)]
mod tests;
mod write;

use std::fs;
use std::path::{Path, PathBuf};

pub use dir::{check_private_dir, create_private_dir};
pub use open::{open_lock_file, read_regular};
pub use write::{replace, write_new};

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

/// The [`DurableError::Io`] of `action` on `path`, for `map_err`.
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

/// What a file that is not a regular file is, as an error names it.
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

/// `O_NOFOLLOW`: a symbolic link is not followed.
#[cfg(unix)]
fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// `O_NONBLOCK`: opening a FIFO does not wait for a writer.
#[cfg(unix)]
fn nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}
