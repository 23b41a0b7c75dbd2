//! Finding, loading and initialising a PKCS#11 module, once per process.
//!
//! A PKCS#11 module must be initialised (`C_Initialize`) once per process and is shared by every
//! user in that process. [`Module::load`] keeps one initialised instance per module path in a
//! process-wide registry, so two [`crate::Hsm`]s on the same module share it, and it copes with a
//! module that someone else in the process has already initialised
//! (`CKR_CRYPTOKI_ALREADY_INITIALIZED` is success). Modules are never finalised: finalising a module
//! that another part of the process still uses crashes it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::Error as CkError;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use secrecy::SecretString;

use crate::error::{Error, Result, RvError};

/// Environment variable naming the PKCS#11 module to load.
pub const MODULE_ENV: &str = "PKCS11_MODULE";

/// The AWS CloudHSM (SDK 5) PKCS#11 library.
pub const CLOUDHSM_MODULE: &str = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so";

/// Where SoftHSM2 is installed by Debian/Ubuntu, Fedora/RHEL and Homebrew.
pub const SOFTHSM2_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 configuration (`softhsm2.conf`) of a token store whose token directory is
/// `tokens`: file backend, errors only in the log, fixed slots. The caller writes it (the CLI's
/// embedded store durably, through `tezos_keys::durable`) and points `SOFTHSM2_CONF` at it
/// before SoftHSM2 is loaded: it reads its configuration once per process.
///
/// ```
/// let conf = cryptoki_ops::module::softhsm2_conf(std::path::Path::new("/var/lib/store/tokens"));
/// assert!(conf.starts_with("directories.tokendir = /var/lib/store/tokens\n"));
/// ```
pub fn softhsm2_conf(tokens: &Path) -> String {
    format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    )
}

/// Back-off for the transient answers SoftHSM2 gives while another process rewrites its token
/// files (several processes on one token directory): its file backend rewrites `token.object`
/// in place on every `C_Login`, and a process reading it at that moment gets
/// `CKR_GENERAL_ERROR` from `C_GetSlotList`, sees the token missing, or has its PIN refused.
/// Under a steady stream of logins from other processes the file is being rewritten a good part
/// of the time, so the retries are many but short: 5, 10, 20, 40 ms, then 100 ms (each with up
/// to 50% random jitter, so processes do not retry in step), 20 attempts and under 2.5 s in all.
pub(crate) const TRANSIENT_ATTEMPTS: usize = 20;

/// The delay before transient retry number `attempt` (from 0), without its jitter.
fn transient_delay(attempt: usize) -> Duration {
    Duration::from_millis(match attempt {
        0 => 5,
        1 => 10,
        2 => 20,
        3 => 40,
        _ => 100,
    })
}

/// Sleeps before the next transient retry and returns true, or returns false when the
/// [`TRANSIENT_ATTEMPTS`] are used up.
pub(crate) fn transient_backoff(attempt: &mut usize) -> bool {
    if *attempt >= TRANSIENT_ATTEMPTS {
        return false;
    }
    let base = transient_delay(*attempt);
    // Jitter from the clock's nanoseconds: no need for a random number generator here.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::thread::sleep(base + base * (nanos % 50) / 100);
    *attempt += 1;
    true
}

/// Whether a return value may be one of SoftHSM2's transient multi-process answers (see
/// [`TRANSIENT_BACKOFF`]) when it comes from a call that only reads the slot and token lists.
fn transient_listing_error(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::GeneralError
            | RvError::SlotIdInvalid
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
    )
}

/// Where to find the module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ModuleSource {
    /// `PKCS11_MODULE` if set, else the first of CloudHSM's and SoftHSM2's usual paths that exists.
    #[default]
    Auto,
    /// Exactly this path.
    Path(PathBuf),
}

impl ModuleSource {
    /// Resolves the source to one existing path, or says which paths were tried.
    ///
    /// ```
    /// use cryptoki_ops::ModuleSource;
    /// let err = ModuleSource::Path("/nonexistent/libpkcs11.so".into()).resolve().unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent/libpkcs11.so"));
    /// ```
    pub fn resolve(&self) -> Result<PathBuf> {
        let candidates: Vec<PathBuf> = match self {
            Self::Path(p) => vec![p.clone()],
            Self::Auto => match std::env::var_os(MODULE_ENV) {
                Some(p) if !p.is_empty() => vec![PathBuf::from(p)],
                _ => std::iter::once(CLOUDHSM_MODULE)
                    .chain(SOFTHSM2_MODULES.iter().copied())
                    .map(PathBuf::from)
                    .collect(),
            },
        };
        Self::first_existing(&candidates)
    }

    /// The first SoftHSM2 module installed on this machine, if any.
    pub fn softhsm2() -> Result<PathBuf> {
        let candidates: Vec<PathBuf> = SOFTHSM2_MODULES.iter().map(PathBuf::from).collect();
        Self::first_existing(&candidates)
    }

    fn first_existing(candidates: &[PathBuf]) -> Result<PathBuf> {
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| Error::ModuleNotFound {
                tried: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// An initialised PKCS#11 module, shared process-wide. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    path: PathBuf,
    pkcs11: Pkcs11,
    /// Serialises session opening/closing and token initialisation on this module. SoftHSM2 2.6
    /// crashes when sessions are opened or closed while other threads do the same (SoftHSMv2
    /// #688, #573); these calls are rare, so serialising them costs nothing on the signing path.
    lifecycle: Mutex<()>,
    /// Whether this is SoftHSM2 (by `C_GetInfo`'s manufacturer), whose token files other
    /// processes rewrite under it.
    softhsm: bool,
    /// Session pools of this crate open on the module: it is reloaded only when there are none.
    pools: AtomicUsize,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Module>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Module {
    /// Loads and initialises the module (once per process and path).
    ///
    /// ```no_run
    /// use cryptoki_ops::{Module, ModuleSource};
    /// let module = Module::load(&ModuleSource::Auto)?;
    /// for token in module.tokens()? {
    ///     println!("{} (serial {}, slot {})", token.label, token.serial, token.slot_id);
    /// }
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn load(source: &ModuleSource) -> Result<Self> {
        let path = source.resolve()?;
        let key = path.canonicalize().unwrap_or_else(|_| path.clone());
        let mut modules = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(module) = modules.get(&key) {
            return Ok(module.clone());
        }
        let load_err = |reason: String| Error::ModuleLoad {
            path: path.clone(),
            reason,
        };
        let pkcs11 = Pkcs11::new(&path).map_err(|e| load_err(e.to_string()))?;
        // OS locking: the module may be called from many threads (SoftHSM2 disables its locking
        // when C_Initialize gets NULL arguments).
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(load_err(format!("C_Initialize failed: {e}"))),
        }
        let softhsm = pkcs11
            .get_library_info()
            .is_ok_and(|info| info.manufacturer_id().starts_with("SoftHSM"));
        let module = Self {
            inner: Arc::new(ModuleInner {
                path,
                pkcs11,
                lifecycle: Mutex::new(()),
                softhsm,
                pools: AtomicUsize::new(0),
            }),
        };
        modules.insert(key, module.clone());
        Ok(module)
    }

    /// Path the module was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The underlying `cryptoki` context, for calls this crate does not wrap.
    pub fn pkcs11(&self) -> &Pkcs11 {
        &self.inner.pkcs11
    }

    /// Whether this is the AWS CloudHSM library (which has vendor mechanisms and a CLI for users).
    pub fn is_cloudhsm(&self) -> bool {
        self.inner
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("cloudhsm"))
    }

    /// Whether this is SoftHSM2.
    pub fn is_softhsm(&self) -> bool {
        self.inner.softhsm
    }

    /// Counts a session pool of this crate as using the module (see [`Self::reload_if_idle`]).
    pub(crate) fn pool_opened(&self) {
        self.inner.pools.fetch_add(1, Ordering::AcqRel);
    }

    /// The pool counted by [`Self::pool_opened`] is gone.
    pub(crate) fn pool_closed(&self) {
        self.inner.pools.fetch_sub(1, Ordering::AcqRel);
    }

    /// SoftHSM2 reads its token directory once, in `C_Initialize`: a token whose files another
    /// process was rewriting at that moment stays missing (or without its PIN) for the whole
    /// process. This re-initialises the module (`C_Finalize`, `C_Initialize`) so it reads them
    /// again, but only for SoftHSM2 and only while no session pool of this crate is open on it
    /// (finalising closes every session). Returns whether it did.
    pub(crate) fn reload_if_idle(&self) -> bool {
        if !self.inner.softhsm {
            return false;
        }
        let _guard = self.lifecycle_lock();
        if self.inner.pools.load(Ordering::Acquire) != 0 {
            return false;
        }
        let _ = self.inner.pkcs11.clone().finalize();
        matches!(
            self.inner
                .pkcs11
                .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)),
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _))
        )
    }

    pub(crate) fn lifecycle_lock(&self) -> MutexGuard<'_, ()> {
        self.inner
            .lifecycle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The initialised tokens of the module, in slot order.
    ///
    /// On SoftHSM2, the transient answers it gives while another process rewrites the token
    /// files (`CKR_GENERAL_ERROR`, a slot or token that vanished between two calls) are retried
    /// a bounded number of times with a short back-off before they are returned.
    pub fn tokens(&self) -> Result<Vec<TokenSummary>> {
        let mut attempt = 0;
        loop {
            match self.tokens_once() {
                Err((_, CkError::Pkcs11(rv, _)))
                    if self.inner.softhsm
                        && transient_listing_error(rv)
                        && transient_backoff(&mut attempt) =>
                {
                    self.reload_if_idle();
                }
                result => return result.map_err(|(function, e)| self.error(function, e)),
            }
        }
    }

    fn tokens_once(&self) -> std::result::Result<Vec<TokenSummary>, (&'static str, CkError)> {
        let slots = self
            .inner
            .pkcs11
            .get_slots_with_initialized_token()
            .map_err(|e| ("C_GetSlotList", e))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let info = self
                .inner
                .pkcs11
                .get_token_info(slot)
                .map_err(|e| ("C_GetTokenInfo", e))?;
            out.push(TokenSummary {
                slot_id: slot.id(),
                label: info.label().trim_end().to_string(),
                serial: info.serial_number().trim_end().to_string(),
                slot,
            });
        }
        Ok(out)
    }

    /// Initialises a new token in the first slot whose token is not initialised yet (SoftHSM2
    /// always offers one), sets its SO PIN, then logs in as SO and sets the user PIN.
    ///
    /// This is what `softhsm2-util --init-token --free` does, through PKCS#11, so it also works
    /// on other modules that allow `C_InitToken`. CloudHSM does not: its token is pre-initialised.
    /// Returns the new token (SoftHSM2 moves an initialised token to a new slot id).
    ///
    /// ```no_run
    /// use cryptoki_ops::{Module, ModuleSource};
    /// use secrecy::SecretString;
    /// let module = Module::load(&ModuleSource::softhsm2()?.into())?;
    /// let token = module.init_token("signer", &SecretString::from("so-pin"), &SecretString::from("user-pin"))?;
    /// println!("token {} in slot {}", token.label, token.slot_id);
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn init_token(
        &self,
        label: &str,
        so_pin: &SecretString,
        user_pin: &SecretString,
    ) -> Result<TokenSummary> {
        if label.is_empty() || label.len() > 32 {
            return Err(Error::InvalidInput {
                what: "token label",
                reason: format!("'{label}' must be 1 to 32 bytes long"),
            });
        }
        if self.tokens()?.iter().any(|t| t.label == label) {
            return Err(Error::InvalidInput {
                what: "token label",
                reason: format!("a token labelled '{label}' already exists; pick another label"),
            });
        }
        let _guard = self.lifecycle_lock();
        let pkcs11 = &self.inner.pkcs11;
        let all = pkcs11
            .get_all_slots()
            .map_err(|e| self.error("C_GetSlotList", e))?;
        let free = all
            .into_iter()
            .find(|slot| {
                pkcs11
                    .get_token_info(*slot)
                    .is_ok_and(|info| !info.token_initialized())
            })
            .ok_or_else(|| Error::NotSupportedByModule {
                operation: "initialising a token",
                module: self.inner.path.display().to_string(),
                hint: "the module has no slot with an uninitialised token",
            })?;
        // `AuthPin` is `secrecy::SecretString`: the PINs are passed through without copies.
        pkcs11
            .init_token(free, so_pin, label)
            .map_err(|e| self.error("C_InitToken", e))?;
        // SoftHSM2 reassigns the token to a new slot: find it again by label.
        let token = self
            .tokens()?
            .into_iter()
            .find(|t| t.label == label)
            .ok_or_else(|| Error::TokenNotFound {
                wanted: format!("labelled '{label}' (just initialised)"),
                module: self.inner.path.clone(),
                available: "unknown".into(),
            })?;
        let session = pkcs11
            .open_rw_session(token.slot)
            .map_err(|e| self.error("C_OpenSession", e))?;
        session
            .login(UserType::So, Some(so_pin))
            .map_err(|e| self.error("C_Login(SO)", e))?;
        session
            .init_pin(user_pin)
            .map_err(|e| self.error("C_InitPIN", e))?;
        session.logout().map_err(|e| self.error("C_Logout", e))?;
        session
            .close()
            .map_err(|e| self.error("C_CloseSession", e))?;
        Ok(token)
    }

    fn error(&self, function: &str, e: CkError) -> Error {
        match e {
            CkError::Pkcs11(rv, _) => Error::Pkcs11 {
                function: function.to_string(),
                token: format!("(module {})", self.inner.path.display()),
                key: String::new(),
                rv,
                hint: crate::error::hint_for(rv),
            },
            other => Error::ModuleLoad {
                path: self.inner.path.clone(),
                reason: format!("{function}: {other}"),
            },
        }
    }
}

impl From<PathBuf> for ModuleSource {
    fn from(path: PathBuf) -> Self {
        Self::Path(path)
    }
}

/// One initialised token of a module.
#[derive(Debug, Clone)]
pub struct TokenSummary {
    /// Slot id (may change between runs on SoftHSM2: prefer the label or serial).
    pub slot_id: u64,
    /// Token label, trailing padding removed.
    pub label: String,
    /// Token serial number, trailing padding removed.
    pub serial: String,
    pub(crate) slot: Slot,
}
