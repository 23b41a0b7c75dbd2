//! Checking the store before SoftHSM2 is loaded: its tokens, their `token.object` (restored
//! from the last-known-good copy when damaged) and PIN files.

use std::path::{Path, PathBuf};

use super::token_object::{self, TokenObject};
use super::{check_label, files, Home, StoreError, TokenDir, ROLES};

impl Home {
    /// The token directories of SoftHSM2, by name.
    pub(super) fn token_dirs(&self) -> Result<Vec<TokenDir>, StoreError> {
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
    pub(super) fn tokens(&self) -> Result<Vec<(TokenDir, TokenObject)>, StoreError> {
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
    pub(super) fn check(&self) -> Result<(), StoreError> {
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

    pub(super) fn not_a_regular(&self, problem: &str, path: &Path) -> StoreError {
        StoreError::Damaged {
            file: path.to_path_buf(),
            problem: problem.to_string(),
            way_back: "Only tezos-hsm writes the store: remove it and run the command again".into(),
        }
    }

    /// Saves `token`'s `token.object` as its last-known-good copy, if it is complete and
    /// differs from the copy.
    pub(super) fn save_copy(&self, token: &TokenDir) -> Result<(), StoreError> {
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
