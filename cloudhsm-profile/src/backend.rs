//! The module behind the profile: SoftHSM2, loaded once per process.

use std::ffi::OsString;
use std::sync::OnceLock;

use cryptoki_sys::{CKR_OK, CK_FUNCTION_LIST, CK_FUNCTION_LIST_PTR, CK_RV};

/// Environment variable with the path of SoftHSM2.
pub const SOFTHSM2_ENV: &str = "CLOUDHSM_PROFILE_SOFTHSM2";
/// Where Debian and Ubuntu install SoftHSM2.
pub const SOFTHSM2_DEFAULT: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Backend {
    /// Kept loaded for the life of the process: `list` points into it.
    _library: libloading::Library,
    list: CK_FUNCTION_LIST,
}

/// SoftHSM2's own function list, or `None` if it cannot be loaded (the reason goes to stderr).
pub fn list() -> Option<&'static CK_FUNCTION_LIST> {
    static BACKEND: OnceLock<Option<Backend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| match load() {
            Ok(backend) => Some(backend),
            Err(reason) => {
                eprintln!("cloudhsm-profile: {reason}");
                None
            }
        })
        .as_ref()
        .map(|b| &b.list)
}

fn load() -> Result<Backend, String> {
    let path = std::env::var_os(SOFTHSM2_ENV).unwrap_or_else(|| OsString::from(SOFTHSM2_DEFAULT));
    let shown = path.to_string_lossy().into_owned();
    // SAFETY: loading a shared library runs its initialisers; SoftHSM2's are sound.
    let library = unsafe { libloading::Library::new(&path) }.map_err(|e| {
        format!("cannot load SoftHSM2 from {shown}: {e}; install softhsm2 or set {SOFTHSM2_ENV}")
    })?;
    type GetFunctionList = unsafe extern "C" fn(*mut CK_FUNCTION_LIST_PTR) -> CK_RV;
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module.
    let get = unsafe { library.get::<GetFunctionList>(b"C_GetFunctionList\0") }
        .map_err(|e| format!("{shown} is not a PKCS#11 module: {e}"))?;
    let mut list: CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
    // SAFETY: `list` is a valid place for one pointer.
    let rv = unsafe { get(&mut list) };
    if rv != CKR_OK || list.is_null() {
        return Err(format!("C_GetFunctionList of {shown} failed with 0x{rv:x}"));
    }
    // SAFETY: the module returned a valid list, which lives as long as the library.
    let list = unsafe { *list };
    Ok(Backend {
        _library: library,
        list,
    })
}
