//! [`Hsm`]: one token, logged in, with its session pool. The entry point of the crate.

use std::fmt;
use std::sync::Arc;

use cryptoki::session::UserType;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{HsmConfig, Role};
use crate::error::{Error, Result, RvError};
use crate::module::{Module, TokenSummary};
use crate::pool::{ck, Retry, SessionPool, TokenContext};
use crate::token::TokenReport;

/// A logged-in token with a pool of sessions. Cheap to clone; `Send + Sync`: share it between
/// threads and every operation takes a session from the pool for its duration.
///
/// ```no_run
/// use cryptoki_ops::{Curve, EcKeySpec, Hsm, HsmConfig, KeySelector, PinSource, TokenSelector};
///
/// let config = HsmConfig::new(TokenSelector::Label("signer".into()), PinSource::Env("SIGNER_PIN".into()));
/// let hsm = Hsm::open(&config)?;
/// let key = hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker"))?;
/// let signer = hsm.signing_key(&KeySelector::Label("baker".into()))?;
/// let signature = signer.sign(&[0u8; 32])?; // 64 bytes r || s
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
#[derive(Clone)]
pub struct Hsm {
    pub(crate) inner: Arc<SessionPool>,
}

impl fmt::Debug for Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hsm")
            .field("module", &self.inner.token.module.path())
            .field("token", &self.inner.token.label)
            .finish_non_exhaustive()
    }
}

impl Hsm {
    /// Loads the module, selects the token, reads the PIN and logs in (checking the PIN now).
    ///
    /// On SoftHSM2, the answers it gives while another process rewrites the token's files (the
    /// token missing, `CKR_PIN_INCORRECT`, `CKR_USER_PIN_NOT_INITIALIZED`, `CKR_GENERAL_ERROR`
    /// from `C_Login`) are retried a bounded number of times with a short back-off, the module
    /// re-reading its token directory in between, before they are returned. SoftHSM2 never
    /// locks a PIN, so retrying a wrong one costs only the delay; other modules (CloudHSM locks
    /// users after failed logins) get no login retry.
    pub fn open(config: &HsmConfig) -> Result<Self> {
        let module = Module::load(&config.module)?;
        // The token first, so a wrong token is reported as such before the PIN is looked for.
        let mut selected = Some(config.token.select(&module)?);
        let pin = config.pin.resolve_within(config.pin_timeout)?;
        if module.is_cloudhsm() && !config.allow_kmsuser {
            // The PIN is `<crypto user>:<password>` on CloudHSM (AWS docs `pkcs11-pin`).
            let user = pin.expose_secret().split_once(':').map(|(user, _)| user);
            if user.is_some_and(|u| u.eq_ignore_ascii_case("kmsuser")) {
                return Err(Error::KmsUserRefused {
                    token: selected
                        .as_ref()
                        .map(|t| t.label.clone())
                        .unwrap_or_default(),
                });
            }
        }
        let mut attempt = 0;
        loop {
            let token = match selected.take() {
                Some(token) => token,
                None => config.token.select(&module)?,
            };
            match Self::open_with(&module, config, token, &pin) {
                Err(e)
                    if module.is_softhsm()
                        && transient_login_error(&e)
                        && crate::module::transient_backoff(&mut attempt) =>
                {
                    module.reload_if_idle();
                }
                result => return result,
            }
        }
    }

    fn open_with(
        module: &Module,
        config: &HsmConfig,
        token: TokenSummary,
        pin: &SecretString,
    ) -> Result<Self> {
        let context = TokenContext {
            module: module.clone(),
            slot: std::sync::Mutex::new(token.slot),
            serial: token.serial,
            label: token.label,
            pin: pin.clone(),
            user_type: match config.role {
                Role::User => UserType::User,
                Role::SecurityOfficer => UserType::So,
            },
        };
        let pool = SessionPool::new(context, config.max_sessions, config.checkout_timeout)?;
        Ok(Self {
            inner: Arc::new(pool),
        })
    }

    /// The module this token belongs to.
    pub fn module(&self) -> &Module {
        &self.inner.token.module
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.inner.token.label
    }

    /// Sessions this `Hsm`'s pool has open right now.
    pub fn open_sessions(&self) -> usize {
        self.inner.open_sessions()
    }

    /// The pool's counters right now, for metrics: cheap (one lock, no PKCS#11 call), read-only.
    ///
    /// ```no_run
    /// # let hsm: cryptoki_ops::Hsm = unimplemented!();
    /// let stats = hsm.pool_stats();
    /// println!("{} of {} sessions in use, {} idle", stats.in_use, stats.max_sessions, stats.idle);
    /// ```
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.stats()
    }

    /// What the token is and can do.
    pub fn token_info(&self) -> Result<TokenReport> {
        let pkcs11 = self.module().pkcs11();
        let slot = self.inner.slot();
        let pool = &self.inner;
        let info = pkcs11
            .get_token_info(slot)
            .map_err(|e| pool.to_error(ck("C_GetTokenInfo")(e), None))?;
        let library = pkcs11
            .get_library_info()
            .map(|i| {
                format!(
                    "{} {}",
                    i.manufacturer_id().trim_end(),
                    i.library_description().trim_end()
                )
            })
            .unwrap_or_default();
        let mechanisms = pkcs11
            .get_mechanism_list(slot)
            .map_err(|e| pool.to_error(ck("C_GetMechanismList")(e), None))?
            .iter()
            .map(|m| m.to_string())
            .collect();
        Ok(TokenReport {
            module: self.module().path().display().to_string(),
            library,
            slot_id: slot.id(),
            label: info.label().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            session_count: info.session_count(),
            rw_session_count: info.rw_session_count(),
            max_session_count: format!("{:?}", info.max_session_count()),
            mechanisms,
        })
    }

    /// Whether the token has the mechanism. Asked with `C_GetMechanismInfo`, not looked up in
    /// `C_GetMechanismList`: cryptoki 0.12 drops the vendor-defined mechanisms from that list,
    /// and CloudHSM's AES key wraps are vendor-defined (AWS CloudHSM user guide, "Supported
    /// mechanisms", pkcs11-mechanisms).
    pub(crate) fn supports(&self, mechanism: cryptoki::mechanism::MechanismType) -> bool {
        self.module()
            .pkcs11()
            .get_mechanism_info(self.inner.slot(), mechanism)
            .is_ok()
    }

    /// Runs a raw `cryptoki` operation on a pooled, logged-in session, for what this crate does
    /// not wrap. The closure must not close the session or log out.
    ///
    /// ```no_run
    /// # let hsm: cryptoki_ops::Hsm = unimplemented!();
    /// let random = hsm.with_session(|session| session.generate_random_vec(16))?;
    /// # Ok::<(), cryptoki_ops::Error>(())
    /// ```
    pub fn with_session<T>(
        &self,
        mut op: impl FnMut(&cryptoki::session::Session) -> Result<T, cryptoki::error::Error>,
    ) -> Result<T> {
        self.inner.run(Retry::Never, None, |s| {
            op(&s.session).map_err(ck("PKCS#11 call"))
        })
    }
}

/// A snapshot of an [`Hsm`]'s session pool ([`Hsm::pool_stats`]). More counters may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's size: sessions it may open at most (`HsmConfig::max_sessions`).
    pub max_sessions: usize,
    /// Sessions checked out by an operation now.
    pub in_use: usize,
    /// Sessions open and waiting for an operation.
    pub idle: usize,
    /// Callers waiting for a session now (the pool is at its size or its limit).
    pub waiting: usize,
    /// Sessions that may be in use at once now: `max_sessions`, or fewer while the HSM
    /// throttles (the pool lowers it on a busy answer and raises it again as requests succeed).
    pub limit: usize,
    /// Sessions forgotten since the pool opened because the module reported them dead (or the
    /// token gone); each is replaced by a new session when one is needed.
    pub replaced: u64,
    /// Answers since the pool opened that said the HSM was busy (`CKR_FUNCTION_FAILED`,
    /// `CKR_OPERATION_ACTIVE`, `CKR_DEVICE_ERROR`: AWS CloudHSM throttling), whether the retry
    /// then succeeded or not.
    pub throttled: u64,
}

/// Whether a failed login may be SoftHSM2 reading a token file another process is rewriting.
fn transient_login_error(error: &Error) -> bool {
    match error {
        Error::PinIncorrect { .. } => true,
        Error::Pkcs11 { function, rv, .. } => {
            function == "C_Login"
                && matches!(
                    rv,
                    RvError::UserPinNotInitialized
                        | RvError::GeneralError
                        | RvError::TokenNotPresent
                )
        }
        _ => false,
    }
}
