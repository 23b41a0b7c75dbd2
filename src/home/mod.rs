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

mod error;
mod files;
mod lock;
mod token_object;

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use cryptoki_ops::secrecy::{ExposeSecret, SecretString};
use cryptoki_ops::{Module, ModuleSource, PinSource};

pub use error::StoreError;
use lock::StoreLock;
use token_object::TokenObject;

use crate::error::CliError;

/// Label of the token created on first use.
pub const DEFAULT_TOKEN: &str = "tezos-hsm";

/// The longest token label PKCS#11 allows (`CK_TOKEN_INFO.label` is 32 bytes).
const MAX_LABEL: usize = 32;

/// The two PINs of a token, as they name its PIN files.
const ROLES: [&str; 2] = ["user", "so"];

/// The local store.
pub struct Home {
    dir: PathBuf,
    /// Held from [`Home::prepare`] until this value is dropped (at the end of the command).
    lock: OnceCell<StoreLock>,
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
            let _ = self.lock.set(lock);
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
        let conf = cryptoki_ops::module::softhsm2_store(&self.dir)
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

    /// Creates token `label` with generated PINs, unless the store has it. Returns false if it
    /// already existed.
    pub fn ensure_token(&self, module: &Module, label: &str) -> Result<bool, CliError> {
        check_label(label)?;
        if self.tokens()?.iter().any(|(_, t)| t.label == label) {
            return Ok(false);
        }
        // `prepare` refused PIN files without a token, so none of `label` exists: check again
        // all the same, as creating the PIN files must never replace one.
        for role in ROLES {
            let pin = self.pin_path(label, role);
            if pin.symlink_metadata().is_ok() {
                return Err(StoreError::Damaged {
                    file: pin,
                    problem: format!("exists but no token is labelled '{label}'"),
                    way_back: "Restore the store from a backup, or move the file out of pins/"
                        .into(),
                }
                .into());
            }
        }
        self.create_token(module, label)?;
        Ok(true)
    }

    /// Creates a token: its PINs are written to `new-token/<label>/` first (with the list of
    /// token directories before), then the token is initialised, then the PINs are published
    /// into `pins/` with hard links (which never replace a file). A kill at any point leaves
    /// something [`Home::finish_interrupted_creations`] completes or undoes.
    fn create_token(&self, module: &Module, label: &str) -> Result<(), CliError> {
        let root = self.dir.join("new-token");
        std::fs::create_dir_all(&root).map_err(StoreError::io("create", &root))?;
        let staging = root.join(label);
        std::fs::create_dir(&staging).map_err(StoreError::io("create", &staging))?;
        let mut before: String = self
            .token_dirs()?
            .iter()
            .map(|t| format!("{}\n", t.name))
            .collect();
        before.push_str("end\n");
        let write = |name: &str, bytes: &[u8]| {
            let path = staging.join(name);
            files::create_private(&path, bytes).map_err(StoreError::io("write", path))
        };
        write("before", before.as_bytes())?;
        let so = new_pin()?;
        let user = new_pin()?;
        write("so-pin", so.expose_secret().as_bytes())?;
        write("user-pin", user.expose_secret().as_bytes())?;
        files::sync_dir(&staging)
            .and_then(|()| files::sync_dir(&root))
            .map_err(StoreError::io("flush", &staging))?;
        module.init_token(label, &so, &user)?;
        self.publish(label, &staging)?;
        Ok(())
    }

    /// Publishes the PINs of a complete token from `staging` into `pins/`, saves the token's
    /// last-known-good copy and removes `staging`.
    fn publish(&self, label: &str, staging: &Path) -> Result<(), StoreError> {
        for role in ROLES {
            let staged = staging.join(format!("{role}-pin"));
            let pin = self.pin_path(label, role);
            match std::fs::hard_link(&staged, &pin) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Published before a kill: it must be the same PIN.
                    if std::fs::read(&pin).ok() != std::fs::read(&staged).ok() {
                        return Err(StoreError::Damaged {
                            file: pin,
                            problem: format!(
                                "is not the PIN token '{label}' was created with (in {})",
                                staged.display()
                            ),
                            way_back: "Restore the store from a backup".into(),
                        });
                    }
                }
                Err(e) => return Err(StoreError::io("publish the PIN file", pin)(e)),
            }
        }
        let pins = self.dir.join("pins");
        files::sync_dir(&pins).map_err(StoreError::io("flush", &pins))?;
        for (token, object) in self.tokens()? {
            if object.label == label {
                self.save_copy(&token)?;
            }
        }
        std::fs::remove_dir_all(staging).map_err(StoreError::io("remove", staging))?;
        files::sync_parent(staging).map_err(StoreError::io("flush", staging))
    }

    /// Completes or undoes the creations of tokens that a kill interrupted: a token whose
    /// user PIN was set gets its PINs published; otherwise what was made is removed (it cannot
    /// hold keys: its PINs were never published) and the token can be created again.
    fn finish_interrupted_creations(&self) -> Result<(), StoreError> {
        let root = self.dir.join("new-token");
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("read", &root)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read", &root))?;
            let staging = entry.path();
            let label = entry.file_name().to_string_lossy().into_owned();
            let read = |name: &str| std::fs::read_to_string(staging.join(name)).ok();
            let before: Option<BTreeSet<String>> =
                read("before").filter(|b| b.ends_with("end\n")).map(|b| {
                    b.lines()
                        .filter(|l| *l != "end")
                        .map(String::from)
                        .collect()
                });
            let pin_ok = |p: &Option<String>| p.as_ref().is_some_and(|p| p.len() == 32);
            let (so, user) = (read("so-pin"), read("user-pin"));
            let Some(before) = before.filter(|_| pin_ok(&so) && pin_ok(&user)) else {
                // Killed before the token was initialised: nothing else was made.
                std::fs::remove_dir_all(&staging).map_err(StoreError::io("remove", &staging))?;
                continue;
            };
            let new: Vec<TokenDir> = self
                .token_dirs()?
                .into_iter()
                .filter(|t| !before.contains(&t.name))
                .collect();
            let made = match new.as_slice() {
                [one] => token_object::read(&one.object()).ok(),
                _ => None,
            };
            if made.is_some_and(|t| t.label == label && t.user_pin_set) {
                self.publish(&label, &staging)?;
                eprintln!("note: finished creating token '{label}' (its creation was interrupted)");
                continue;
            }
            for token in &new {
                let other = token_object::read(&token.object()).is_ok_and(|t| t.label != label);
                if !other {
                    std::fs::remove_dir_all(&token.path)
                        .map_err(StoreError::io("remove", &token.path))?;
                }
            }
            std::fs::remove_dir_all(&staging).map_err(StoreError::io("remove", &staging))?;
            files::sync_dir(&root).map_err(StoreError::io("flush", &root))?;
            eprintln!(
                "note: removed the unfinished token '{label}' (its creation was interrupted before its PINs were set; it held no keys)"
            );
        }
        Ok(())
    }

    /// The token directories of SoftHSM2, by name.
    fn token_dirs(&self) -> Result<Vec<TokenDir>, StoreError> {
        let tokens = self.dir.join("tokens");
        let entries = match std::fs::read_dir(&tokens) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read", &tokens)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read", &tokens))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(TokenDir {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    path: entry.path(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every token of the store with what its `token.object` says (after [`Home::check`], all
    /// of them are readable).
    fn tokens(&self) -> Result<Vec<(TokenDir, TokenObject)>, StoreError> {
        let mut out = Vec::new();
        for token in self.token_dirs()? {
            let path = token.object();
            let object = token_object::read(&path).map_err(|damage| StoreError::Damaged {
                problem: format!("is {}", damage.describe()),
                file: path,
                way_back: "Run the command again: it restores the last-known-good copy".into(),
            })?;
            out.push((token, object));
        }
        Ok(out)
    }

    /// Checks the tokens and PIN files, restoring damaged `token.object`s from their copies.
    fn check(&self) -> Result<(), StoreError> {
        let copies = self.dir.join("last-good");
        std::fs::create_dir_all(&copies).map_err(StoreError::io("create", &copies))?;
        remove_leftover_temps(&copies)?;
        let mut labels: Vec<(String, PathBuf)> = Vec::new();
        for token in self.token_dirs()? {
            remove_leftover_temps(&token.path)?;
            let object = self.check_token(&token)?;
            if let Some((_, other)) = labels.iter().find(|(l, _)| *l == object.label) {
                return Err(StoreError::Damaged {
                    file: token.path.clone(),
                    problem: format!(
                        "holds a second token labelled '{}' (the other is {})",
                        object.label,
                        other.display()
                    ),
                    way_back: "A store has one token per label: the one whose keys you use \
                               opens with the PIN files in pins/. Move the other directory out \
                               of tokens/ (keep it until you are sure)"
                        .into(),
                });
            }
            labels.push((object.label, token.path));
        }
        self.check_pins(&labels)
    }

    /// Checks one token's `token.object`, restoring it from its copy when it is damaged (or
    /// when a cut lost its user PIN), and saving a first copy when there is none.
    fn check_token(&self, token: &TokenDir) -> Result<TokenObject, StoreError> {
        let live_path = token.object();
        let copy_path = self.copy_path(token);
        let live = token_object::read(&live_path);
        let copy = token_object::read(&copy_path);
        let restore = match (&live, &copy) {
            (Ok(live), Ok(copy)) => !live.user_pin_set && copy.user_pin_set,
            (Ok(_), Err(_)) => {
                self.save_copy(token)?;
                false
            }
            (Err(_), Ok(_)) => true,
            (Err(damage), Err(_)) => {
                return Err(StoreError::Damaged {
                    problem: format!(
                        "is {} and there is no last-known-good copy of it ({})",
                        damage.describe(),
                        copy_path.display()
                    ),
                    file: live_path,
                    way_back: format!(
                        "The keys of this token cannot be used until it is repaired: restore {} \
                         from a backup of the store. To use the rest of the store without this \
                         token, move the directory {} out of tokens/ and its PIN files out of pins/",
                        self.dir.display(),
                        token.path.display()
                    ),
                })
            }
        };
        if restore {
            let bytes = std::fs::read(&copy_path).map_err(StoreError::io("read", &copy_path))?;
            files::replace_atomically(&live_path, &bytes)
                .map_err(StoreError::io("restore", &live_path))?;
            eprintln!(
                "note: restored {} from its last-known-good copy {} (it was {}: SoftHSM2 was interrupted while rewriting it)",
                live_path.display(),
                copy_path.display(),
                live.as_ref().err().map_or("without its user PIN", |d| d.describe())
            );
        }
        let object = token_object::read(&live_path).map_err(|damage| StoreError::Damaged {
            problem: format!("is {} after its restore", damage.describe()),
            file: live_path.clone(),
            way_back: "Check the disk, then run the command again".into(),
        })?;
        if !object.user_pin_set {
            return Err(StoreError::Damaged {
                file: live_path,
                problem: format!("is token '{}', whose user PIN was never set", object.label),
                way_back: format!(
                    "Its creation was interrupted and it holds no keys: move the directory {} \
                     and the PIN files of '{}' out of the store, then run the command again",
                    token.path.display(),
                    object.label
                ),
            });
        }
        Ok(object)
    }

    /// Every token has both PIN files, every PIN file has its token, all are regular files.
    fn check_pins(&self, tokens: &[(String, PathBuf)]) -> Result<(), StoreError> {
        let pins = self.dir.join("pins");
        let mut names: Vec<String> = std::fs::read_dir(&pins)
            .map_err(StoreError::io("read", &pins))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in &names {
            let path = pins.join(name);
            let meta = path
                .symlink_metadata()
                .map_err(StoreError::io("read", &path))?;
            if !meta.is_file() {
                return Err(
                    self.not_a_regular("is not a regular file (a link or a directory)", &path)
                );
            }
            let Some(label) = ROLES
                .iter()
                .find_map(|role| name.strip_suffix(&format!(".{role}-pin")))
            else {
                continue;
            };
            if !tokens.iter().any(|(l, _)| l == label) {
                return Err(StoreError::Damaged {
                    file: self.pin_path(label, "user"),
                    problem: format!(
                        "(with {}) is a PIN of token '{label}', which is not in {}",
                        self.pin_path(label, "so").display(),
                        self.dir.join("tokens").display()
                    ),
                    way_back: format!(
                        "Its token.object was lost: restore the store from a backup. To start \
                         over without the keys of '{label}', move its PIN files out of pins/"
                    ),
                });
            }
        }
        for (label, dir) in tokens {
            if check_label(label).is_err() {
                continue; // made by something else: the tool cannot select it anyway
            }
            for role in ROLES {
                let pin = self.pin_path(label, role);
                if !pin.is_file() {
                    return Err(StoreError::Damaged {
                        problem: format!("is missing, although token '{label}' exists ({})", dir.display()),
                        file: pin,
                        way_back: format!(
                            "Restore it from a backup of the store: without it the keys of '{label}' \
                             cannot be used. If they are not needed, move {} out of tokens/",
                            dir.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn not_a_regular(&self, problem: &str, path: &Path) -> StoreError {
        StoreError::Damaged {
            file: path.to_path_buf(),
            problem: problem.to_string(),
            way_back: "Only tezos-hsm writes the store: remove it and run the command again".into(),
        }
    }

    /// Saves `token`'s `token.object` as its last-known-good copy, if it is complete and
    /// differs from the copy.
    fn save_copy(&self, token: &TokenDir) -> Result<(), StoreError> {
        let live = token.object();
        let Ok(bytes) = std::fs::read(&live) else {
            return Ok(());
        };
        if !token_object::parse(&bytes).is_ok_and(|t| t.user_pin_set) {
            return Ok(());
        }
        let copy = self.copy_path(token);
        if std::fs::read(&copy).ok().as_deref() == Some(&bytes[..]) {
            return Ok(());
        }
        if let Some(dir) = copy.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::io("create", dir))?;
        }
        files::replace_atomically(&copy, &bytes).map_err(StoreError::io("write", copy))
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

/// Checks that `label` can name a token of the store and its PIN files.
pub fn check_label(label: &str) -> Result<(), StoreError> {
    let reason = if label.is_empty() {
        "is empty"
    } else if label.len() > MAX_LABEL {
        "is longer than 32 bytes"
    } else if label.starts_with('.') {
        "starts with '.'"
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        "has a character other than A-Z a-z 0-9 . _ -"
    } else {
        return Ok(());
    };
    let shown: String = label.chars().take(40).collect();
    Err(StoreError::InvalidLabel {
        label: if shown.len() < label.len() {
            format!("{shown}...")
        } else {
            shown
        },
        reason,
    })
}

/// Removes the temporary files a killed [`files::replace_atomically`] left in `dir`.
fn remove_leftover_temps(dir: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(StoreError::io("read", dir))?;
    for entry in entries.filter_map(|e| e.ok()) {
        if files::is_leftover_temp(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(StoreError::io("remove", path))?;
        }
    }
    Ok(())
}

/// A random PIN: 16 bytes from the system's generator, as 32 hex characters.
fn new_pin() -> Result<SecretString, StoreError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes[..]))
        .map_err(StoreError::io("read", "/dev/urandom"))?;
    Ok(SecretString::from(hex::encode(&bytes[..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_a_strict_charset_of_1_to_32_bytes() {
        for good in ["tezos-hsm", "second", "a", "A.b_c-9", &"x".repeat(32)] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".",
            "..",
            ".hidden",
            "x y",
            "x\ny",
            "é",
            &"x".repeat(33),
        ] {
            let err = check_label(bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_input", "{bad:?}");
        }
        let long = check_label(&"y".repeat(1 << 20)).unwrap_err().to_string();
        assert!(long.len() < 400, "the message stays short: {}", long.len());
    }
}
