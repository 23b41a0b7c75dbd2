//! Writing a file that holds key material: atomically, owner-only, never over another file.

use std::path::Path;

use super::RunbookError;
use crate::durable::{self, DurableError};

/// Writes `contents` to `path` so that the file either does not exist or is complete, is
/// readable by its owner only, and never replaces an existing file ([`durable::write_new`]:
/// a unique temporary file created `O_EXCL|O_NOFOLLOW` with mode 0600, fsynced, hard-linked to
/// `path`, the directory fsynced). On failure nothing is left behind.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("runbook-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("secret.txt");
/// tezos_keys::runbook::write_private_file(&path, b"hello")?;
/// assert!(tezos_keys::runbook::write_private_file(&path, b"again").is_err()); // never overwritten
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`RunbookError::FileExists`] if `path` exists; [`RunbookError::Io`] otherwise.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), RunbookError> {
    durable::write_new(path, contents).map_err(|e| match e {
        DurableError::Exists { path } => RunbookError::FileExists { path },
        DurableError::Io {
            action,
            path,
            source,
        } => RunbookError::Io {
            action,
            path,
            source,
        },
        other => RunbookError::Io {
            action: "write",
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_existing_file_is_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.json");
        write_private_file(&path, b"one").unwrap();
        let err = write_private_file(&path, b"two").unwrap_err();
        assert!(matches!(err, RunbookError::FileExists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
    }
}
