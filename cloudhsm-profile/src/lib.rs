//! A PKCS#11 module for tests: SoftHSM2 behind the documented rules of AWS CloudHSM SDK 5.
//!
//! Every test of the project runs on SoftHSM2, which accepts things CloudHSM refuses. This
//! module loads SoftHSM2 (path in `CLOUDHSM_PROFILE_SOFTHSM2`, default
//! `/usr/lib/softhsm/libsofthsm2.so`) and hands out SoftHSM2's own function list with a few
//! entries replaced, so every PKCS#11 call is forwarded unchanged except where a CloudHSM rule
//! applies. It is test-only (`publish = false`) and the one crate of the workspace with `unsafe`
//! code, because a C ABI cannot be written without it.
//!
//! | Rule | Where AWS documents it | Module answer |
//! |---|---|---|
//! | no read-only sessions | user guide, "Known issues for the PKCS #11 library" (`ki-pkcs11-sdk`) | `C_OpenSession` without `CKF_RW_SESSION`: `CKR_FUNCTION_FAILED` |
//! | crypto users only, no `CKU_SO` login | "PKCS #11 library PIN" (`pkcs11-pin`) | `C_Login(CKU_SO)`: `CKR_USER_TYPE_INVALID` (code undocumented) |
//! | `CKA_PRIVATE` only at its default, true | "PKCS #11 attributes" (`pkcs11-attributes-interpreting`), footnote 1 | `CKA_PRIVATE=false` in a key template: `CKR_ATTRIBUTE_VALUE_INVALID` (code reported in public issues, not documented) |
//! | `CKA_TRUSTED` set by an admin through CloudHSM CLI only | "Modify attributes" (`modify-attr`), `key_attribute_background` | `CKA_TRUSTED` in any template: `CKR_ATTRIBUTE_READ_ONLY` |
//! | only the vendor AES key-wrap mechanisms | "Supported mechanisms" (`pkcs11-mechanisms`), "Migrate to SDK 5" (`pkcs11-migrate-to-sdk-5`) | lists `CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD`/`_NO_PAD` (run as SoftHSM2's `CKM_AES_KEY_WRAP_PAD`/`CKM_AES_KEY_WRAP`); the standard ones: `CKR_MECHANISM_INVALID` |
//! | `CKA_EXTRACTABLE` defaults to true | "PKCS #11 attributes" (`pkcs11-attributes-interpreting`) | added as true to private/secret key templates that leave it out |
//! | no EdDSA in the PKCS#11 library | "Supported mechanisms" (`pkcs11-mechanisms`), "Supported key types" (`pkcs11-key-types`) | `CKM_EDDSA`, `CKM_EC_EDWARDS_KEY_PAIR_GEN` not listed; using them: `CKR_MECHANISM_INVALID` |
//!
//! Pages are under <https://docs.aws.amazon.com/cloudhsm/latest/userguide/>. Faults are injected
//! deterministically when the environment asks ([`faults`] lists the variables): throttling
//! (`CKR_FUNCTION_FAILED` on every Nth `C_Sign`, as the "HSM throttling" page describes), dead
//! sessions, a logout behind the application's back, a removed device, and a module that does
//! not know some attributes.
//!
//! A network and a cluster's capacity are simulated on request too ([`latency`] lists the
//! variables): a signature takes a configurable round trip (sleeping, not burning CPU), searches
//! and attribute reads a smaller one, and above a configurable number of signatures in flight
//! the module throttles with `CKR_FUNCTION_FAILED`, as the "HSM throttling" page describes.

mod backend;
pub mod faults;
mod forward;
pub mod latency;
mod mechanisms;
mod template;

use std::sync::OnceLock;

use cryptoki_sys::{
    CKR_ARGUMENTS_BAD, CKR_GENERAL_ERROR, CKR_OK, CK_FUNCTION_LIST, CK_FUNCTION_LIST_PTR, CK_RV,
};

/// SoftHSM2's function list with the profile's entries in place; `None` if SoftHSM2 could not
/// be loaded or the fault variables are malformed (the reason went to stderr).
fn profile_list() -> Option<&'static CK_FUNCTION_LIST> {
    static LIST: OnceLock<Option<CK_FUNCTION_LIST>> = OnceLock::new();
    LIST.get_or_init(|| {
        let real = backend::list()?;
        if let Err(reason) = faults::Faults::get() {
            eprintln!("cloudhsm-profile: {reason}");
            return None;
        }
        if let Err(reason) = latency::Network::get() {
            eprintln!("cloudhsm-profile: {reason}");
            return None;
        }
        Some(forward::patch(*real))
    })
    .as_ref()
}

/// The PKCS#11 entry point: the function list of this module.
///
/// # Safety
///
/// `list` must be NULL or point to writable memory for one pointer, as PKCS#11 requires.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut CK_FUNCTION_LIST_PTR) -> CK_RV {
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    match profile_list() {
        Some(profile) => {
            // SAFETY: checked non-NULL; the caller provides room for one pointer. The list is
            // a static that lives as long as the process; callers only read it.
            unsafe { *list = std::ptr::from_ref(profile).cast_mut() };
            CKR_OK
        }
        None => CKR_GENERAL_ERROR,
    }
}
