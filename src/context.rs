//! Where commands run: the configuration from the global arguments, and opening the HSM, either
//! a token of the local SoftHSM2 development store ([`crate::home`]) or of a configured module.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cryptoki_ops::{Hsm, HsmConfig, ModuleSource, PinSource, Role, TokenSelector};
use secrecy::{ExposeSecret, SecretString};
use tezos_keys::high_watermark::{FileStore, WatermarkStore};
use watermark_postgres::PostgresStore;

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::home::{Home, StoreHold, DEFAULT_TOKEN};

/// Where commands run: the local development store, or a configured module.
pub enum Target {
    /// The local SoftHSM2 store, on token `token`.
    Local {
        /// The store.
        home: Home,
        /// The current token's label.
        token: String,
    },
    /// A configured PKCS#11 module.
    Module {
        /// The module's path.
        path: PathBuf,
    },
}

/// A logged-in token that holds the local store's lock while it lives (nothing for a
/// configured module): dropping the [`Context`] that opened it does not end the hold, so no
/// command can let another process into the store while it still uses the token.
/// Dereferences to the [`Hsm`].
pub struct Session {
    // Dropped first: the session ends before the lock goes.
    hsm: Hsm,
    _hold: Option<StoreHold>,
}

impl Session {
    /// The logged-in token, letting the local store's lock go (nothing for a module): for
    /// `serve`, which runs for days and must not keep every other command out of the store.
    /// Drop the [`Context`] first, so the store's last-known-good copies are saved while the
    /// lock is still held.
    ///
    /// Safe because what the lock protects is done by then: the token exists, its PINs are
    /// published, `token.object` was checked (and repaired) before SoftHSM2 loaded, and the
    /// login is over. What stays is the multi-process use of one SoftHSM2 token directory that
    /// the library supports (module mode): other commands log in and change keys meanwhile,
    /// and SoftHSM2 re-reads the token's files. A rewrite of `token.object` cut short by a kill
    /// (of another command's login, or of a re-login of `serve` after a lost session) is
    /// repaired by the next command from the last-known-good copy, as always.
    pub fn release_store(self) -> Hsm {
        let Self { hsm, _hold: hold } = self;
        drop(hold);
        hsm
    }
}

impl std::ops::Deref for Session {
    type Target = Hsm;

    fn deref(&self) -> &Hsm {
        &self.hsm
    }
}

/// The context of the commands that use a token.
pub struct Context {
    cli_token: Option<String>,
    pin: Option<PinSource>,
    so_pin: Option<PinSource>,
    allow_kmsuser: bool,
    /// `--pin-timeout`: how long a `cmd:` PIN source may run.
    pin_timeout: Duration,
    /// `--json`.
    pub json: bool,
    /// The local store or the module.
    pub target: Target,
    /// Where the double-signing guard keeps its records (the file store).
    pub watermark_dir: PathBuf,
    /// `--watermark-db`: the PostgreSQL store instead, when given.
    watermark_db: Option<SecretString>,
}

/// Where the double-signing guard keeps its records: `--watermark-dir`, else
/// `TEZOS_HSM_HOME/watermarks`.
pub fn watermark_dir(globals: &GlobalArgs) -> Result<PathBuf, CliError> {
    Ok(match &globals.watermark_dir {
        Some(dir) => dir.clone(),
        None => Home::locate()?.dir().join("watermarks"),
    })
}

/// The double-signing guard's store: the PostgreSQL database of `--watermark-db` when given,
/// else the file store in `dir` (which must exist: see [`FileStore::open`]). Shared (`Arc`), so
/// one store serves every thread of `serve` and [`tezos_keys::HighWatermark::new`] takes it.
/// Commands that open no token (`watermark ...`) call it with `globals.watermark_db` and
/// [`watermark_dir`].
pub fn open_watermark_store(
    db: Option<&SecretString>,
    dir: &Path,
) -> Result<Arc<dyn WatermarkStore>, CliError> {
    Ok(match db {
        Some(url) => Arc::new(PostgresStore::open(url.expose_secret())?),
        None => Arc::new(FileStore::open(dir)?),
    })
}

impl Context {
    /// The context of `globals`; prepares the local store when no module is configured.
    pub fn new(globals: &GlobalArgs) -> Result<Self, CliError> {
        let target = match &globals.module {
            Some(path) => Target::Module { path: path.clone() },
            None => {
                let token = globals
                    .token
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TOKEN.to_string());
                // Labels of the local store name its PIN files: refuse a bad one up front,
                // also when --pin makes the PIN file unnecessary.
                crate::home::check_label(&token)?;
                let home = Home::locate()?;
                home.prepare()?;
                Target::Local { home, token }
            }
        };
        Ok(Self {
            cli_token: globals.token.clone(),
            pin: globals.pin.clone(),
            so_pin: globals.so_pin.clone(),
            allow_kmsuser: globals.allow_kmsuser,
            pin_timeout: globals.pin_timeout.map_or(
                cryptoki_ops::pin::DEFAULT_PIN_COMMAND_TIMEOUT,
                Duration::from_secs,
            ),
            json: globals.json,
            target,
            watermark_dir: watermark_dir(globals)?,
            watermark_db: globals.watermark_db.clone(),
        })
    }

    /// The double-signing guard's store: PostgreSQL with `--watermark-db`, else the file
    /// store in [`Context::watermark_dir`] ([`open_watermark_store`]).
    pub fn watermark_store(&self) -> Result<Arc<dyn WatermarkStore>, CliError> {
        open_watermark_store(self.watermark_db.as_ref(), &self.watermark_dir)
    }

    fn config(&self, role: Role) -> Result<HsmConfig, CliError> {
        self.config_for(None, role)
    }

    /// The configuration for token `other` of the same module (the current token when `None`).
    /// Local store: that token's generated PINs; a module: the same --pin for every token.
    fn config_for(&self, other: Option<&str>, role: Role) -> Result<HsmConfig, CliError> {
        match &self.target {
            Target::Local {
                home,
                token: current,
            } => {
                let token = other.unwrap_or(current);
                let module = home.module()?;
                if token == DEFAULT_TOKEN && home.ensure_token(&module, token)? {
                    crate::print::stderr_line(&format!(
                        "note: created the development token '{token}' in {} (SoftHSM2: keys are files on this disk, not in an HSM)",
                        home.dir().display()
                    ));
                }
                let given = if other.is_none() {
                    match role {
                        Role::User => self.pin.clone(),
                        Role::SecurityOfficer => self.so_pin.clone(),
                    }
                } else {
                    None
                };
                let pin = match (given, role) {
                    (Some(pin), _) => pin,
                    (None, Role::User) => home.user_pin(token)?,
                    (None, Role::SecurityOfficer) => home.so_pin(token)?,
                };
                Ok(HsmConfig::new(TokenSelector::Label(token.to_string()), pin)
                    .with_module(ModuleSource::Path(module.path().to_path_buf()))
                    .with_role(role)
                    .with_pin_timeout(self.pin_timeout))
            }
            Target::Module { path } => {
                let token = match other.or(self.cli_token.as_deref()) {
                    Some(t) => t.parse()?,
                    None => TokenSelector::First,
                };
                let pin = match role {
                    Role::User => self.pin.clone().unwrap_or_else(|| PinSource::Env("TEZOS_HSM_PIN".into())),
                    Role::SecurityOfficer => self.so_pin.clone().ok_or_else(|| {
                        CliError::new("config", "this needs the security officer's PIN: pass --so-pin env:VAR (or file:, cmd:)")
                    })?,
                };
                Ok(HsmConfig::new(token, pin)
                    .with_module(ModuleSource::Path(path.clone()))
                    .with_role(role)
                    .with_allow_kmsuser(self.allow_kmsuser)
                    .with_pin_timeout(self.pin_timeout))
            }
        }
    }

    /// Opens `config`, holding the store's lock with the session.
    fn session(&self, config: &HsmConfig) -> Result<Session, CliError> {
        let hold = match &self.target {
            Target::Local { home, .. } => home.hold(),
            Target::Module { .. } => None,
        };
        Ok(Session {
            hsm: Hsm::open(config)?,
            _hold: hold,
        })
    }

    /// The current token, logged in as the user.
    pub fn open(&self) -> Result<Session, CliError> {
        self.session(&self.config(Role::User)?)
    }

    /// The current token, logged in as the user, with its configuration changed by `adjust`
    /// (e.g. `serve`'s pool checkout timeout).
    pub fn open_with(
        &self,
        adjust: impl FnOnce(HsmConfig) -> HsmConfig,
    ) -> Result<Session, CliError> {
        self.session(&adjust(self.config(Role::User)?))
    }

    /// Token `label` of the same module, logged in as the user.
    pub fn open_token(&self, label: &str) -> Result<Session, CliError> {
        self.session(&self.config_for(Some(label), Role::User)?)
    }

    /// The current token, logged in as the security officer when `trusted`, else as the user.
    pub fn open_as(&self, trusted: bool) -> Result<Session, CliError> {
        if trusted {
            self.session(&self.config(Role::SecurityOfficer)?)
        } else {
            self.open()
        }
    }
}
