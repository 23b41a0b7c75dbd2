//! Creating a token of the store: PINs staged, the token initialised, the PINs published;
//! and finishing or undoing a creation a kill interrupted.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use cryptoki_ops::secrecy::{ExposeSecret, SecretString};
use cryptoki_ops::Module;

use super::{check_label, files, token_object, Home, StoreError, TokenDir, ROLES};
use crate::error::CliError;

impl Home {
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
    pub(super) fn finish_interrupted_creations(&self) -> Result<(), StoreError> {
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
}

/// A random PIN: 16 bytes from the system's generator, as 32 hex characters.
fn new_pin() -> Result<SecretString, StoreError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 16]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes[..]))
        .map_err(StoreError::io("read", "/dev/urandom"))?;
    Ok(SecretString::from(hex::encode(&bytes[..])))
}
