//! A throw-away SoftHSM2 store for the benchmarks (`benches/signing.rs`) and the load run
//! (`examples/load.rs`, which includes this file with `#[path]`).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, when the module is initialised, so [`Store::create`]
//! must run first thing in `main`, before any thread exists and before anything loads the
//! module. It writes a `softhsm2.conf` into a temporary directory, initialises a token through
//! PKCS#11 (`C_InitToken`, `C_InitPIN`), opens it with `cryptoki-ops`, and removes the
//! directory when dropped.
#![allow(dead_code)] // the bench and the example each use part of it

pub mod stats;

use std::path::PathBuf;

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{
    Curve, EcKeySpec, Hsm, HsmConfig, KeyPairInfo, Module, ModuleSource, PinSource, TokenSelector,
};

/// SO PIN of the throw-away token.
pub const SO_PIN: &str = "bench-so-pin-1234";
/// User PIN of the throw-away token.
pub const USER_PIN: &str = "bench-user-pin-5678";

/// A SoftHSM2 store in a temporary directory, one initialised token, and the module.
pub struct Store {
    /// The module (`TEST_PKCS11_MODULE`, else the first installed SoftHSM2).
    pub module: Module,
    /// The token's slot.
    pub slot: Slot,
    /// The token's label.
    pub label: String,
    /// Removed on drop.
    dir: tempfile::TempDir,
}

impl Store {
    /// Writes the configuration, points `SOFTHSM2_CONF` at it, loads SoftHSM2 and initialises
    /// a token labelled `label`. Call before any other thread exists.
    pub fn create(label: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::Builder::new()
            .prefix("tezos-hsm-bench-")
            .tempdir()?;
        // A fresh temporary directory of this run only: a plain write is enough.
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens)?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, cryptoki_ops::module::softhsm2_conf(&tokens))?;
        // Single-threaded at this point (see the module docs), and edition 2021: safe.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let module = Module::load(&ModuleSource::Path(module_path()?))?;
        let token = module.init_token(
            label,
            &SecretString::from(SO_PIN),
            &SecretString::from(USER_PIN),
        )?;
        let slot = module
            .pkcs11()
            .get_slots_with_token()?
            .into_iter()
            .find(|slot| slot.id() == token.slot_id)
            .ok_or("the new token's slot disappeared")?;
        Ok(Self {
            module,
            slot,
            label: label.to_string(),
            dir,
        })
    }

    /// The `softhsm2.conf` this store uses (export it as `SOFTHSM2_CONF` for other tools).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// Configuration for the token, logged in as the user, with a pool of `max_sessions`.
    pub fn config(&self, max_sessions: usize) -> HsmConfig {
        HsmConfig::new(
            TokenSelector::Label(self.label.clone()),
            PinSource::Value(SecretString::from(USER_PIN)),
        )
        .with_module(ModuleSource::Path(self.module.path().to_path_buf()))
        .with_max_sessions(max_sessions)
    }

    /// Opens the token through `cryptoki-ops` with a pool of `max_sessions`.
    pub fn open(&self, max_sessions: usize) -> Result<Hsm, cryptoki_ops::Error> {
        Hsm::open(&self.config(max_sessions))
    }

    /// Generates a non-extractable signing key on `curve` labelled `label`.
    pub fn generate(
        &self,
        hsm: &Hsm,
        curve: Curve,
        label: &str,
    ) -> Result<KeyPairInfo, cryptoki_ops::Error> {
        hsm.generate_ec_key(&EcKeySpec::new(curve, label))
    }

    /// A raw `cryptoki` session on the token (no pool), logged in, and the handle of the
    /// private key with CKA_ID `id` in it. The login belongs to the application, so when a
    /// session is already logged in `C_Login` answers `CKR_USER_ALREADY_LOGGED_IN`: fine.
    pub fn raw_session(
        &self,
        id: &[u8],
    ) -> Result<(Session, ObjectHandle), Box<dyn std::error::Error>> {
        let session = self.module.pkcs11().open_rw_session(self.slot)?;
        match session.login(UserType::User, Some(&SecretString::from(USER_PIN))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(e.into()),
        }
        let handles = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ])?;
        let [handle] = handles[..] else {
            return Err(format!("{} private keys with that CKA_ID", handles.len()).into());
        };
        Ok((session, handle))
    }

    /// How many sessions this process has open on the token, as far as it can tell: the count
    /// `C_GetTokenInfo` reports when the module knows it (`ulSessionCount`); else (SoftHSM2
    /// reports `CK_UNAVAILABLE_INFORMATION`, and its session handles are never reused, so they
    /// cannot be counted either) whether *any* session is open, from the login state: PKCS#11
    /// logs the application out when its last session on the token closes, so a fresh session
    /// is logged in if and only if another session is still open. Compare it with a baseline
    /// taken while no session was open. Call it only while no other thread opens or closes
    /// sessions.
    pub fn session_count(&self) -> Result<SessionCount, cryptoki::error::Error> {
        let pkcs11 = self.module.pkcs11();
        if let Some(count) = pkcs11.get_token_info(self.slot)?.session_count() {
            return Ok(SessionCount::Reported(count));
        }
        let probe = pkcs11.open_rw_session(self.slot)?;
        let state = probe.get_session_info()?.session_state();
        drop(probe);
        Ok(SessionCount::AnyOpen(!matches!(
            state,
            SessionState::RoPublic | SessionState::RwPublic
        )))
    }
}

/// See [`Store::session_count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCount {
    /// `ulSessionCount` of `C_GetTokenInfo`.
    Reported(u64),
    /// Whether any session is open (the token is logged in).
    AnyOpen(bool),
}

impl SessionCount {
    /// No session open.
    pub fn is_zero(self) -> bool {
        matches!(self, Self::Reported(0) | Self::AnyOpen(false))
    }
}

impl std::fmt::Display for SessionCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reported(n) => write!(f, "{n} open (C_GetTokenInfo)"),
            Self::AnyOpen(true) => write!(f, "some open (a new session finds the token logged in)"),
            Self::AnyOpen(false) => {
                write!(f, "none open (a new session finds the token logged out)")
            }
        }
    }
}

/// `TEST_PKCS11_MODULE`, else the first installed SoftHSM2.
fn module_path() -> Result<PathBuf, cryptoki_ops::Error> {
    match std::env::var_os("TEST_PKCS11_MODULE") {
        Some(path) => Ok(PathBuf::from(path)),
        None => ModuleSource::softhsm2(),
    }
}

/// Resident set size of this process in KiB (Linux `/proc/self/status`), if known.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
