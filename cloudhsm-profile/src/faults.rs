//! Deterministic fault injection, configured by environment variables read once per process.
//!
//! | Variable | Effect |
//! |---|---|
//! | `CLOUDHSM_PROFILE_THROTTLE_EVERY=N` | every Nth `C_Sign` of a session that returns a signature returns `CKR_FUNCTION_FAILED` instead (the operation is finished, as on an HSM that throttles: AWS user guide, "HSM throttling", `troubleshoot-hsm-throttling`) |
//! | `CLOUDHSM_PROFILE_THROTTLE_READS_EVERY=N` | every Nth `C_GetAttributeValue` of a session returns `CKR_DEVICE_ERROR`, what CloudHSM returns there when it throttles ("Known issues for the PKCS #11 library", `ki-pkcs11-sdk`) |
//! | `CLOUDHSM_PROFILE_DEAD_SESSION_EVERY=N` | the k-th session opened dies at its (k·N)-th session call (`C_FindObjectsInit`, `C_GetAttributeValue`, `C_SignInit`): that call and every later one on it, `C_GetSessionInfo` included, return `CKR_SESSION_HANDLE_INVALID` |
//! | `CLOUDHSM_PROFILE_LOGOUT_EVERY=N` | the k-th session opened calls `C_Logout` once, before its (k·N)-th `C_SignInit`, logging out every session of the application behind its back |
//! | `CLOUDHSM_PROFILE_REMOVE_AFTER=N` | after N session calls in all, the device is gone: session calls, `C_OpenSession`, `C_Login`, `C_Sign` and `C_GetSessionInfo` return `CKR_DEVICE_REMOVED` |
//! | `CLOUDHSM_PROFILE_DAMAGE_SECRET_VALUES=1` | a secret key created from its value (`C_CreateObject`, a key ceremony's import) gets that value with its first bit flipped, as if damaged on its way: the token then holds another key, with another check value |
//! | `CLOUDHSM_PROFILE_UNKNOWN_ATTRIBUTES=0x210,...` | a module that does not know these attribute types: a template with one returns `CKR_TEMPLATE_INCONSISTENT` (AWS user guide, "Attribute errors", `attr-errors`) |
//!
//! Calls are counted per session, so what a session sees does not depend on how threads
//! interleave. Deaths and logouts are spread out (session k at k·N): one at a time, the
//! trouble a retry is meant to absorb; all sessions at once is the removed device. N = 0 or an
//! unset variable turns the fault off. A malformed value makes `C_GetFunctionList` fail, with the reason on stderr.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use cryptoki_sys::{
    CKR_DEVICE_REMOVED, CKR_SESSION_HANDLE_INVALID, CK_ATTRIBUTE_TYPE, CK_RV, CK_SESSION_HANDLE,
};

/// Every Nth `C_Sign` is throttled.
pub const THROTTLE_EVERY: &str = "CLOUDHSM_PROFILE_THROTTLE_EVERY";
/// Every Nth `C_GetAttributeValue` is throttled.
pub const THROTTLE_READS_EVERY: &str = "CLOUDHSM_PROFILE_THROTTLE_READS_EVERY";
/// Every Nth session call finds its session dead.
pub const DEAD_SESSION_EVERY: &str = "CLOUDHSM_PROFILE_DEAD_SESSION_EVERY";
/// Every Nth `C_SignInit` is preceded by a `C_Logout`.
pub const LOGOUT_EVERY: &str = "CLOUDHSM_PROFILE_LOGOUT_EVERY";
/// The device is removed after N session calls.
pub const REMOVE_AFTER: &str = "CLOUDHSM_PROFILE_REMOVE_AFTER";
/// Secret key values given to `C_CreateObject` are damaged (1: on).
pub const DAMAGE_SECRET_VALUES: &str = "CLOUDHSM_PROFILE_DAMAGE_SECRET_VALUES";
/// Attribute types the module pretends not to know.
pub const UNKNOWN_ATTRIBUTES: &str = "CLOUDHSM_PROFILE_UNKNOWN_ATTRIBUTES";

/// The configured faults and their counters.
#[derive(Debug, Default)]
pub struct Faults {
    throttle_every: u64,
    throttle_reads_every: u64,
    dead_session_every: u64,
    logout_every: u64,
    remove_after: u64,
    damage_secret_values: u64,
    unknown_attributes: Vec<CK_ATTRIBUTE_TYPE>,
    /// Session calls of all sessions, for the removed device.
    all_session_calls: AtomicU64,
    /// Sessions opened so far, to number them.
    opened: AtomicU64,
    sessions: Mutex<HashMap<CK_SESSION_HANDLE, Counts>>,
}

/// What one session has done so far.
#[derive(Debug, Default)]
struct Counts {
    /// 1 for the first session opened, 2 for the second...
    number: u64,
    calls: u64,
    signs: u64,
    reads: u64,
    sign_inits: u64,
    dead: bool,
}

/// Counts one more and says whether it is an `every`th one (never when `every` is 0).
fn tick(counter: &mut u64, every: u64) -> bool {
    *counter += 1;
    counter.checked_rem(every) == Some(0)
}

impl Counts {
    /// Counts one more and says whether it is the (number·every)-th, this session's turn.
    fn turn(counter: &mut u64, number: u64, every: u64) -> bool {
        *counter += 1;
        every != 0 && *counter == number.max(1) * every
    }
}

/// A whole number from the environment variable `name`, 0 when it is unset.
pub(crate) fn number(name: &str) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(0),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a whole number; write e.g. {name}=5")),
    }
}

fn attribute_types(name: &str) -> Result<Vec<CK_ATTRIBUTE_TYPE>, String> {
    let Ok(v) = std::env::var(name) else {
        return Ok(Vec::new());
    };
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => CK_ATTRIBUTE_TYPE::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.map_err(|_| {
                format!("{name}: {s:?} is not an attribute type; write e.g. {name}=0x210 (CKA_WRAP_WITH_TRUSTED)")
            })
        })
        .collect()
}

impl Faults {
    /// The faults of this process, read from the environment on first use.
    pub fn get() -> Result<&'static Self, &'static str> {
        static FAULTS: OnceLock<Result<Faults, String>> = OnceLock::new();
        FAULTS
            .get_or_init(|| {
                Ok(Self {
                    throttle_every: number(THROTTLE_EVERY)?,
                    throttle_reads_every: number(THROTTLE_READS_EVERY)?,
                    dead_session_every: number(DEAD_SESSION_EVERY)?,
                    logout_every: number(LOGOUT_EVERY)?,
                    remove_after: number(REMOVE_AFTER)?,
                    damage_secret_values: number(DAMAGE_SECRET_VALUES)?,
                    unknown_attributes: attribute_types(UNKNOWN_ATTRIBUTES)?,
                    ..Self::default()
                })
            })
            .as_ref()
            .map_err(String::as_str)
    }

    fn with_session<T>(&self, session: CK_SESSION_HANDLE, f: impl FnOnce(&mut Counts) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        f(sessions.entry(session).or_default())
    }

    /// Whether the device has been removed (without counting a call).
    pub fn removed(&self) -> bool {
        self.remove_after != 0
            && self.all_session_calls.load(Ordering::Relaxed) >= self.remove_after
    }

    /// The error a call on `session` that is not counted must fail with, if any.
    pub fn session_state(&self, session: CK_SESSION_HANDLE) -> Option<CK_RV> {
        if self.removed() {
            return Some(CKR_DEVICE_REMOVED);
        }
        self.with_session(session, |c| c.dead)
            .then_some(CKR_SESSION_HANDLE_INVALID)
    }

    /// Counts one session call on `session`; the error it must fail with, if any.
    pub fn session_call(&self, session: CK_SESSION_HANDLE) -> Option<CK_RV> {
        if self.removed() {
            return Some(CKR_DEVICE_REMOVED);
        }
        self.all_session_calls.fetch_add(1, Ordering::Relaxed);
        let every = self.dead_session_every;
        self.with_session(session, |c| {
            c.dead = c.dead || Counts::turn(&mut c.calls, c.number, every);
            c.dead
        })
        .then_some(CKR_SESSION_HANDLE_INVALID)
    }

    /// Counts one `C_Sign` on `session` that produced a signature; whether to report
    /// throttling instead.
    pub fn throttle_sign(&self, session: CK_SESSION_HANDLE) -> bool {
        self.with_session(session, |c| tick(&mut c.signs, self.throttle_every))
    }

    /// Counts one `C_GetAttributeValue` on `session`; whether to report throttling instead.
    pub fn throttle_read(&self, session: CK_SESSION_HANDLE) -> bool {
        self.with_session(session, |c| tick(&mut c.reads, self.throttle_reads_every))
    }

    /// Counts one `C_SignInit` on `session`; whether to log out first.
    pub fn logout_before_sign_init(&self, session: CK_SESSION_HANDLE) -> bool {
        self.with_session(session, |c| {
            Counts::turn(&mut c.sign_inits, c.number, self.logout_every)
        })
    }

    /// Numbers a newly opened session (starting afresh if SoftHSM2 reuses a handle).
    pub fn opened(&self, session: CK_SESSION_HANDLE) {
        let number = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.insert(
            session,
            Counts {
                number,
                ..Counts::default()
            },
        );
    }

    /// Whether secret key values given to `C_CreateObject` are damaged.
    pub fn damage_secret_values(&self) -> bool {
        self.damage_secret_values != 0
    }

    /// Whether the module pretends not to know this attribute type.
    pub fn unknown_attribute(&self, attribute: CK_ATTRIBUTE_TYPE) -> bool {
        self.unknown_attributes.contains(&attribute)
    }
}
