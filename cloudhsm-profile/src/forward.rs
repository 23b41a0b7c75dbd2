//! The entries of the function list the profile replaces; every other entry is SoftHSM2's own.
//!
//! Each replacement checks its rule (see the crate docs for the AWS page of each), injects the
//! configured faults, then calls SoftHSM2's function with the same (or mapped) arguments.

use std::ptr::null_mut;

use cryptoki_sys::*;

use crate::faults::Faults;
use crate::latency::{sleep_until, Network};
use crate::{backend, mechanisms, template};

/// SoftHSM2's implementation of `$f`.
macro_rules! real {
    ($f:ident) => {
        match backend::list().and_then(|list| list.$f) {
            Some(f) => f,
            None => return CKR_GENERAL_ERROR,
        }
    };
}

/// The faults of this process (loaded before the list was handed out).
macro_rules! faults {
    () => {
        match Faults::get() {
            Ok(faults) => faults,
            Err(_) => return CKR_GENERAL_ERROR,
        }
    };
}

/// The simulated network of this process (loaded before the list was handed out).
macro_rules! network {
    () => {
        match Network::get() {
            Ok(network) => network,
            Err(_) => return CKR_GENERAL_ERROR,
        }
    };
}

/// Returns early with `$rv` when it is `Some`.
macro_rules! fail_with {
    ($rv:expr) => {
        if let Some(rv) = $rv {
            return rv;
        }
    };
}

/// Returns early with the error of a `Result<_, CK_RV>`.
macro_rules! try_rv {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(rv) => return rv,
        }
    };
}

/// SoftHSM2's list with the profile's entries in place.
pub fn patch(mut list: CK_FUNCTION_LIST) -> CK_FUNCTION_LIST {
    list.C_GetFunctionList = Some(crate::C_GetFunctionList);
    list.C_GetMechanismList = Some(get_mechanism_list);
    list.C_GetMechanismInfo = Some(get_mechanism_info);
    list.C_OpenSession = Some(open_session);
    list.C_GetSessionInfo = Some(get_session_info);
    list.C_Login = Some(login);
    list.C_CreateObject = Some(create_object);
    list.C_CopyObject = Some(copy_object);
    list.C_SetAttributeValue = Some(set_attribute_value);
    list.C_GetAttributeValue = Some(get_attribute_value);
    list.C_FindObjectsInit = Some(find_objects_init);
    list.C_FindObjects = Some(find_objects);
    list.C_GenerateKey = Some(generate_key);
    list.C_GenerateKeyPair = Some(generate_key_pair);
    list.C_WrapKey = Some(wrap_key);
    list.C_UnwrapKey = Some(unwrap_key);
    list.C_SignInit = Some(sign_init);
    list.C_Sign = Some(sign);
    list
}

/// A mechanism pointer for SoftHSM2: the mapped copy, or NULL when none was given.
fn mechanism_ptr(mapped: &mut Option<CK_MECHANISM>) -> *mut CK_MECHANISM {
    mapped.as_mut().map_or(null_mut(), std::ptr::from_mut)
}

unsafe extern "C" fn get_mechanism_list(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    let real = real!(C_GetMechanismList);
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let mut n: CK_ULONG = 0;
    // SAFETY: the size query takes a NULL list and a valid count.
    let rv = unsafe { real(slot, null_mut(), &mut n) };
    if rv != CKR_OK {
        return rv;
    }
    let mut all: Vec<CK_MECHANISM_TYPE> = vec![0; n as usize];
    // SAFETY: `all` has room for `n` entries.
    let rv = unsafe { real(slot, all.as_mut_ptr(), &mut n) };
    if rv != CKR_OK {
        return rv;
    }
    all.truncate(n as usize);
    let shown = mechanisms::advertised(&all);
    // SAFETY: `count` is non-NULL and the caller's to write (PKCS#11).
    let room = unsafe { count.replace(shown.len() as CK_ULONG) } as usize;
    if list.is_null() {
        return CKR_OK;
    }
    if room < shown.len() {
        return CKR_BUFFER_TOO_SMALL;
    }
    // SAFETY: the caller said `list` has room for `room` >= shown.len() entries.
    unsafe { std::ptr::copy_nonoverlapping(shown.as_ptr(), list, shown.len()) };
    CKR_OK
}

unsafe extern "C" fn get_mechanism_info(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    let real = real!(C_GetMechanismInfo);
    let backing = try_rv!(mechanisms::backend(mechanism));
    // SAFETY: forwarded as given.
    unsafe { real(slot, backing, info) }
}

unsafe extern "C" fn open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    application: *mut std::ffi::c_void,
    notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    let real = real!(C_OpenSession);
    if faults!().removed() {
        return CKR_DEVICE_REMOVED;
    }
    if flags & CKF_RW_SESSION == 0 {
        // "Known issues for the PKCS #11 library" (ki-pkcs11-sdk): "SDK 5 does not support
        // opening Read-Only sessions ... the call will fail with the error CKR_FUNCTION_FAILED".
        return CKR_FUNCTION_FAILED;
    }
    // SAFETY: forwarded as given.
    let rv = unsafe { real(slot, flags, application, notify, session) };
    if rv == CKR_OK && !session.is_null() {
        // SAFETY: SoftHSM2 wrote the new handle there.
        faults!().opened(unsafe { *session });
    }
    rv
}

unsafe extern "C" fn get_session_info(
    session: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    let real = real!(C_GetSessionInfo);
    fail_with!(faults!().session_state(session));
    // SAFETY: forwarded as given.
    unsafe { real(session, info) }
}

unsafe extern "C" fn login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    let real = real!(C_Login);
    fail_with!(faults!().session_state(session));
    if user == CKU_SO {
        // "PKCS #11 library PIN" (pkcs11-pin): the application logs in as a crypto user,
        // PIN `<CU user>:<password>`; admins work through CloudHSM CLI. The return code of an
        // SO login is not documented; CKR_USER_TYPE_INVALID is PKCS#11's for a refused type.
        return CKR_USER_TYPE_INVALID;
    }
    // SAFETY: forwarded as given.
    unsafe { real(session, user, pin, pin_len) }
}

unsafe extern "C" fn create_object(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let real = real!(C_CreateObject);
    // SAFETY: the caller passes `count` valid attributes.
    let given = unsafe { template::slice(template, count) };
    let class = template::class(given);
    try_rv!(template::check(given, template::is_key(class), faults!()));
    let mut used = match class {
        Some(CKO_PRIVATE_KEY | CKO_SECRET_KEY) => template::with_extractable_default(given),
        _ => given.to_vec(),
    };
    // Kept alive until SoftHSM2 has read it: the damaged copy of the key value, if any.
    let _damaged = if class == Some(CKO_SECRET_KEY) && faults!().damage_secret_values() {
        template::damage_value(&mut used)
    } else {
        None
    };
    // SAFETY: `used` holds valid attributes pointing into the caller's buffers or `_damaged`.
    unsafe { real(session, used.as_mut_ptr(), used.len() as CK_ULONG, object) }
}

unsafe extern "C" fn copy_object(
    session: CK_SESSION_HANDLE,
    source: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let real = real!(C_CopyObject);
    // SAFETY: the caller passes `count` valid attributes.
    try_rv!(template::check(
        unsafe { template::slice(template, count) },
        true,
        faults!()
    ));
    // SAFETY: forwarded as given.
    unsafe { real(session, source, template, count, object) }
}

unsafe extern "C" fn set_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    let real = real!(C_SetAttributeValue);
    // SAFETY: the caller passes `count` valid attributes.
    try_rv!(template::check(
        unsafe { template::slice(template, count) },
        true,
        faults!()
    ));
    // SAFETY: forwarded as given.
    unsafe { real(session, object, template, count) }
}

unsafe extern "C" fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    let real = real!(C_GetAttributeValue);
    let faults = faults!();
    fail_with!(faults.session_call(session));
    if faults.throttle_read(session) {
        // "Known issues for the PKCS #11 library" (ki-pkcs11-sdk): C_GetAttributeValue returns
        // CKR_DEVICE_ERROR when the HSM throttles.
        return CKR_DEVICE_ERROR;
    }
    // "Retrieving attributes" (pkcs11-attributes-retrieve): each call is a round trip.
    let deadline = network!().read_deadline();
    // SAFETY: forwarded as given.
    let rv = unsafe { real(session, object, template, count) };
    sleep_until(deadline);
    rv
}

unsafe extern "C" fn find_objects_init(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    let real = real!(C_FindObjectsInit);
    fail_with!(faults!().session_call(session));
    // SAFETY: forwarded as given.
    unsafe { real(session, template, count) }
}

unsafe extern "C" fn find_objects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max_count: CK_ULONG,
    count: *mut CK_ULONG,
) -> CK_RV {
    let real = real!(C_FindObjects);
    let deadline = network!().read_deadline();
    // SAFETY: forwarded as given.
    let rv = unsafe { real(session, objects, max_count, count) };
    sleep_until(deadline);
    rv
}

unsafe extern "C" fn generate_key(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let real = real!(C_GenerateKey);
    // SAFETY: the caller passes a valid mechanism and `count` valid attributes.
    let mut mapped = try_rv!(unsafe { mechanisms::mapped(mechanism) });
    let given = unsafe { template::slice(template, count) };
    try_rv!(template::check(given, true, faults!()));
    let mut used = template::with_extractable_default(given);
    // SAFETY: all pointers are valid for the call.
    unsafe {
        real(
            session,
            mechanism_ptr(&mut mapped),
            used.as_mut_ptr(),
            used.len() as CK_ULONG,
            key,
        )
    }
}

#[allow(clippy::too_many_arguments)] // the PKCS#11 signature
unsafe extern "C" fn generate_key_pair(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let real = real!(C_GenerateKeyPair);
    let faults = faults!();
    // SAFETY: the caller passes a valid mechanism and valid templates.
    let mut mapped = try_rv!(unsafe { mechanisms::mapped(mechanism) });
    let public_template = unsafe { template::slice(public, public_count) };
    let private_template = unsafe { template::slice(private, private_count) };
    try_rv!(template::check(public_template, true, faults));
    try_rv!(template::check(private_template, true, faults));
    let mut used = template::with_extractable_default(private_template);
    // SAFETY: all pointers are valid for the call.
    unsafe {
        real(
            session,
            mechanism_ptr(&mut mapped),
            public,
            public_count,
            used.as_mut_ptr(),
            used.len() as CK_ULONG,
            public_key,
            private_key,
        )
    }
}

unsafe extern "C" fn wrap_key(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: *mut CK_ULONG,
) -> CK_RV {
    let real = real!(C_WrapKey);
    // SAFETY: the caller passes a valid mechanism.
    let mut mapped = try_rv!(unsafe { mechanisms::mapped(mechanism) });
    // SAFETY: all pointers are valid for the call.
    unsafe {
        real(
            session,
            mechanism_ptr(&mut mapped),
            wrapping_key,
            key,
            wrapped,
            wrapped_len,
        )
    }
}

#[allow(clippy::too_many_arguments)] // the PKCS#11 signature
unsafe extern "C" fn unwrap_key(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped: *mut CK_BYTE,
    wrapped_len: CK_ULONG,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let real = real!(C_UnwrapKey);
    // SAFETY: the caller passes a valid mechanism and `count` valid attributes.
    let mut mapped = try_rv!(unsafe { mechanisms::mapped(mechanism) });
    let given = unsafe { template::slice(template, count) };
    try_rv!(template::check(given, true, faults!()));
    let mut used = template::with_extractable_default(given);
    // SAFETY: all pointers are valid for the call.
    unsafe {
        real(
            session,
            mechanism_ptr(&mut mapped),
            unwrapping_key,
            wrapped,
            wrapped_len,
            used.as_mut_ptr(),
            used.len() as CK_ULONG,
            key,
        )
    }
}

unsafe extern "C" fn sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let real = real!(C_SignInit);
    let faults = faults!();
    fail_with!(faults.session_call(session));
    if faults.logout_before_sign_init(session) {
        let logout = real!(C_Logout);
        // SAFETY: a plain call on the caller's session; logs out every session of the process,
        // as a logout by another part of the application would.
        unsafe { logout(session) };
    }
    // SAFETY: the caller passes a valid mechanism.
    let mut mapped = try_rv!(unsafe { mechanisms::mapped(mechanism) });
    // SAFETY: all pointers are valid for the call.
    unsafe { real(session, mechanism_ptr(&mut mapped), key) }
}

unsafe extern "C" fn sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    let real = real!(C_Sign);
    let faults = faults!();
    let network = network!();
    fail_with!(faults.session_state(session));
    if signature.is_null() {
        // The length query: answered by the client library, no round trip (see `latency`).
        // SAFETY: forwarded as given.
        return unsafe { real(session, data, data_len, signature, signature_len) };
    }
    let request = network.begin_sign();
    // SAFETY: forwarded as given. Called even when the request is refused, so SoftHSM2 ends the
    // operation, as a failed C_Sign must.
    let rv = unsafe { real(session, data, data_len, signature, signature_len) };
    let over_capacity = request.throttled();
    network.finish_sign(request);
    if rv == CKR_OK && (over_capacity || faults.throttle_sign(session)) {
        // "HSM throttling" (troubleshoot-hsm-throttling): "In PKCS11, busy errors map to
        // CKR_FUNCTION_FAILED". SoftHSM2 has finished the operation, as a failed C_Sign would.
        return CKR_FUNCTION_FAILED;
    }
    rv
}
