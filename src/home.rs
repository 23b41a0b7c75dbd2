//! The embedded default: a local SoftHSM2 store in a data directory of the tool's own.
//!
//! Layout of `TEZOS_HSM_HOME` (default `$XDG_DATA_HOME/tezos-hsm`, else
//! `~/.local/share/tezos-hsm`):
//!
//! ```text
//! lock                         the store's lock; its holder's pid and command (0600)
//! softhsm2.conf                SoftHSM2 configuration pointing at tokens/
//! tokens/<uuid>/               SoftHSM2's token files (token.object, keys)
//! last-good/<uuid>.token.object  last-known-good copy of each token's token.object
//! pins/<label>.user-pin        generated user PIN of token <label> (0600, never overwritten)
//! pins/<label>.so-pin          generated security-officer PIN of token <label> (0600)
//! new-token/<label>/           a token being created: its PINs until they are published
//! ```
//!
//! This is a development token: the keys are files on this disk, protected by PINs stored next
//! to them. Point `--module` at a real HSM for anything else.
//!
//! What the store guarantees, on one host (see [`Home::prepare`]):
//! - one command at a time: every command holds the store's lock ([`lock`]) from before
//!   SoftHSM2 is loaded until it ends;
//! - a token is created only when no token, PIN file or half-made token has its label, and its
//!   PINs are written once (`O_EXCL`) and published only when the token is complete;
//! - SoftHSM2 rewrites `token.object` in place on every login, so a kill can leave it empty or
//!   cut short: the store keeps a copy of each token's last complete `token.object`, and puts
//!   it back (saying so) before SoftHSM2 is loaded;
//! - anything else missing or damaged is a `store_damaged` error naming the file and the way
//!   back, never a silent start-over.

mod check;
mod create;
mod error;
mod files;
mod label;
mod lock;
mod token_object;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoki_ops::{Module, ModuleSource, PinSource};

pub use error::StoreError;
pub use label::check_label;
use lock::StoreLock;

use crate::error::CliError;

/// Label of the token created on first use.
pub const DEFAULT_TOKEN: &str = "tezos-hsm";

/// The two PINs of a token, as they name its PIN files.
const ROLES: [&str; 2] = ["user", "so"];

/// The local store.
pub struct Home {
    dir: PathBuf,
    /// Held from [`Home::prepare`] until this value and every [`StoreHold`] taken from it are
    /// dropped (at the end of the command).
    lock: OnceCell<Arc<StoreLock>>,
}

/// A share of the store's lock: see [`Home::hold`].
#[derive(Debug, Clone)]
pub struct StoreHold {
    _lock: Arc<StoreLock>,
}

/// One token directory of SoftHSM2.
struct TokenDir {
    /// Its name (a UUID SoftHSM2 chose).
    name: String,
    /// Its path.
    path: PathBuf,
}

impl TokenDir {
    fn object(&self) -> PathBuf {
        self.path.join("token.object")
    }
}

impl Home {
    /// The store's directory (not created yet).
    pub fn locate() -> Result<Self, CliError> {
        let dir = if let Some(dir) = std::env::var_os("TEZOS_HSM_HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(dir)
        } else if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(data).join("tezos-hsm")
        } else if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(home).join(".local/share/tezos-hsm")
        } else {
            return Err(CliError::new(
                "config",
                "cannot find a data directory: set TEZOS_HSM_HOME (or HOME)",
            ));
        };
        Ok(Self {
            dir,
            lock: OnceCell::new(),
        })
    }

    /// A share of the store's lock (after [`Home::prepare`]): the lock stays held while it
    /// lives, also after this value is dropped. A session opened on the store carries one, so
    /// that no command can end its hold on the store while it still uses a token.
    pub fn hold(&self) -> Option<StoreHold> {
        self.lock.get().map(|lock| StoreHold {
            _lock: Arc::clone(lock),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the store's lock (held until this value is dropped), creates the directories and
    /// SoftHSM2 configuration if needed, finishes or undoes a token creation that was
    /// interrupted, checks every token and PIN file (restoring a damaged `token.object` from
    /// its last-known-good copy), and points SoftHSM2 at the store. Must run before the module
    /// is loaded, while the process has one thread.
    pub fn prepare(&self) -> Result<(), CliError> {
        std::fs::create_dir_all(&self.dir).map_err(StoreError::io("create", &self.dir))?;
        if self.lock.get().is_none() {
            let lock = StoreLock::acquire(&self.dir)?;
            let _ = self.lock.set(Arc::new(lock));
        }
        let pins = self.dir.join("pins");
        match std::fs::symlink_metadata(&pins) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(self.not_a_regular("pins/ is not a directory", &pins).into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&pins).map_err(StoreError::io("create", &pins))?;
            }
            Err(e) => return Err(StoreError::io("read", &pins)(e).into()),
        }
        files::set_mode(&pins, 0o700).map_err(StoreError::io("protect", &pins))?;
        let conf = softhsm2_store(&self.dir)
            .map_err(StoreError::io("write softhsm2.conf in", &self.dir))?;
        self.finish_interrupted_creations()?;
        self.check()?;
        // Edition 2021: `set_var` is safe; it runs before any other thread exists and before
        // SoftHSM2 reads its configuration (once per process, when it is loaded).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        Ok(())
    }

    fn pin_path(&self, label: &str, role: &str) -> PathBuf {
        self.dir.join("pins").join(format!("{label}.{role}-pin"))
    }

    fn copy_path(&self, token: &TokenDir) -> PathBuf {
        self.dir
            .join("last-good")
            .join(format!("{}.token.object", token.name))
    }

    /// Where the user PIN of token `label` comes from.
    pub fn user_pin(&self, label: &str) -> Result<PinSource, CliError> {
        self.pin(label, "user")
    }

    /// Where the SO PIN of token `label` comes from.
    pub fn so_pin(&self, label: &str) -> Result<PinSource, CliError> {
        self.pin(label, "so")
    }

    fn pin(&self, label: &str, role: &str) -> Result<PinSource, CliError> {
        check_label(label)?;
        let tokens = self.tokens()?;
        if !tokens.iter().any(|(_, t)| t.label == label) {
            let mut available: Vec<&str> = tokens.iter().map(|(_, t)| t.label.as_str()).collect();
            available.sort_unstable();
            return Err(StoreError::TokenNotFound {
                label: label.to_string(),
                dir: self.dir.clone(),
                available: if available.is_empty() {
                    "(none)".into()
                } else {
                    available.join(", ")
                },
            }
            .into());
        }
        Ok(PinSource::File(self.pin_path(label, role)))
    }

    /// The SoftHSM2 module, or one line saying how to install it.
    pub fn module(&self) -> Result<Module, CliError> {
        let path = ModuleSource::softhsm2().map_err(|_| {
            CliError::new(
                "module_not_found",
                "SoftHSM2 is not installed: install it with `sudo apt-get install -y softhsm2` \
                 (Fedora: dnf install softhsm; macOS: brew install softhsm), or pass --module",
            )
        })?;
        Ok(Module::load(&ModuleSource::Path(path))?)
    }
}

impl Drop for Home {
    /// At the end of a command that held the store, saves the last-known-good copy of every
    /// token whose `token.object` is complete (the lock is still held: nothing writes it).
    fn drop(&mut self) {
        if self.lock.get().is_none() {
            return;
        }
        let Ok(tokens) = self.token_dirs() else {
            return;
        };
        for token in tokens {
            if let Err(e) = self.save_copy(&token) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// Creates SoftHSM2's part of the store in `dir` (a `tokens/` directory and a `softhsm2.conf`
/// naming it, unless they exist) and returns the configuration's path.
///
/// The configuration is replaced atomically ([`files::replace_atomically`]), so a kill or a
/// concurrent call never leaves a partial one; an empty one (from an older version killed while
/// writing it) is written again.
fn softhsm2_store(dir: &Path) -> std::io::Result<PathBuf> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    if conf.metadata().map_or(true, |m| m.len() == 0) {
        let text = cryptoki_ops::module::softhsm2_conf(&tokens);
        files::replace_atomically(&conf, text.as_bytes())?;
    }
    Ok(conf)
}
