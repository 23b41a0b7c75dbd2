//! The store's lock: one command at a time on a local store.
//!
//! SoftHSM2's file backend rewrites `token.object` in place on every login, and its own
//! locks do not keep two processes from creating a token or PINs at the same time, so every
//! command takes an exclusive OS lock (`flock` through [`std::fs::File::lock`]) on the file
//! `lock` of the store and holds it until the process ends. It waits at most
//! `TEZOS_HSM_LOCK_TIMEOUT` seconds (default 30) and then says who holds it: the holder writes
//! its pid, command and start time into the lock file. The OS releases the lock when the
//! holder exits, however it exits (SIGKILL included), so a lock is never stale.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::StoreError;

/// Environment variable: how long to wait for the store's lock, in seconds.
pub const TIMEOUT_ENV: &str = "TEZOS_HSM_LOCK_TIMEOUT";

/// How long to wait when `TEZOS_HSM_LOCK_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Subcommand words that may appear in the lock file (nothing else from the command line
/// does: it may hold a PIN source or a path the user would not want recorded).
const COMMAND_WORDS: &[&str] = &[
    "token",
    "init",
    "info",
    "key",
    "generate",
    "list",
    "show",
    "delete",
    "backup",
    "restore",
    "replicate",
    "export-hot-wallet",
    "wrapkey",
    "import",
    "sign",
    "demo",
    "cluster",
    "check",
    "serve",
];

/// The store's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct StoreLock {
    file: File,
}

impl Drop for StoreLock {
    /// Clears the holder's record before the lock goes (a killed holder leaves it: see
    /// [`holder`]).
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

impl StoreLock {
    /// Takes the lock of the store in `dir`, waiting up to the configured timeout.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let timeout = timeout()?;
        let path = dir.join("lock");
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(StoreError::io("open the lock file", &path))?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(StoreError::Busy {
                            dir: dir.to_path_buf(),
                            holder: holder(&mut file),
                            lock: path,
                            waited_secs: waited.as_secs_f64(),
                        });
                    }
                    std::thread::sleep(pause.min(timeout - waited));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(StoreError::io("lock", &path)(e));
                }
            }
        }
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let record = format!(
            "pid {}\ncommand tezos-hsm {}\nsince {since}\n",
            std::process::id(),
            command_words()
        );
        // Who holds the lock is information for others, not needed for correctness.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()));
        Ok(Self { file })
    }
}

/// The configured timeout.
fn timeout() -> Result<Duration, StoreError> {
    let Some(value) = std::env::var_os(TIMEOUT_ENV) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            StoreError::Config(format!(
                "{TIMEOUT_ENV} must be a number of seconds from 0 to 86400 (e.g. 30 or 0.5), not {value:?}"
            ))
        })
}

/// The subcommand of this process, for the lock file: its known words only.
fn command_words() -> String {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| COMMAND_WORDS.contains(&a.as_str()))
        .take(2)
        .collect();
    words.join(" ")
}

/// Who holds the lock, from what the holder wrote into the lock file.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(4096).read_to_string(&mut text));
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let unknown = "another process (not a tezos-hsm command; e.g. `flock`, or a backup)";
    let Some(pid) = field("pid ").filter(|p| p.bytes().all(|b| b.is_ascii_digit())) else {
        return unknown.into();
    };
    // A record left by a holder that was killed: the lock is held by someone else since.
    let proc = Path::new("/proc");
    if proc.join("self").exists() && !proc.join(&pid).exists() {
        return unknown.into();
    }
    let command = field("command ")
        .filter(|c| {
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" -".contains(&b))
        })
        .unwrap_or_else(|| "tezos-hsm".into());
    let age = field("since ")
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(|since| {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
            Some(format!(", for {} s", now.saturating_sub(since)))
        })
        .unwrap_or_default();
    format!("process {pid} (`{command}`{age})")
}
