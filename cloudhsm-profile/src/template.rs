//! Attribute templates: the CloudHSM rules on what an application may set.

use std::ffi::c_void;

use cryptoki_sys::{
    CKA_CLASS, CKA_EXTRACTABLE, CKA_PRIVATE, CKA_TRUSTED, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
    CKO_SECRET_KEY, CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_TEMPLATE_INCONSISTENT, CK_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_BBOOL, CK_OBJECT_CLASS, CK_RV,
    CK_TRUE, CK_ULONG,
};

use crate::faults::Faults;

static TRUE: CK_BBOOL = CK_TRUE;

/// The template as a slice.
///
/// # Safety
///
/// `template` must be NULL or point to `count` valid attributes that outlive the slice.
pub unsafe fn slice<'a>(template: *const CK_ATTRIBUTE, count: CK_ULONG) -> &'a [CK_ATTRIBUTE] {
    if template.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: the caller guarantees `count` valid attributes.
    unsafe { std::slice::from_raw_parts(template, count as usize) }
}

fn find(template: &[CK_ATTRIBUTE], kind: CK_ATTRIBUTE_TYPE) -> Option<&CK_ATTRIBUTE> {
    template.iter().find(|a| a.type_ == kind)
}

fn bool_value(attribute: &CK_ATTRIBUTE) -> Option<bool> {
    if attribute.pValue.is_null() || attribute.ulValueLen as usize != size_of::<CK_BBOOL>() {
        return None;
    }
    // SAFETY: a template attribute points to ulValueLen readable bytes (PKCS#11).
    Some(unsafe { *attribute.pValue.cast::<CK_BBOOL>() } != 0)
}

/// `CKA_CLASS` of the template, if given.
pub fn class(template: &[CK_ATTRIBUTE]) -> Option<CK_OBJECT_CLASS> {
    let a = find(template, CKA_CLASS)?;
    if a.pValue.is_null() || a.ulValueLen as usize != size_of::<CK_OBJECT_CLASS>() {
        return None;
    }
    // SAFETY: as in `bool_value`; read unaligned because the caller chose the buffer.
    Some(unsafe { a.pValue.cast::<CK_OBJECT_CLASS>().read_unaligned() })
}

/// Whether `class` is a key class (private, public or secret key).
pub fn is_key(class: Option<CK_OBJECT_CLASS>) -> bool {
    matches!(
        class,
        Some(CKO_PRIVATE_KEY | CKO_PUBLIC_KEY | CKO_SECRET_KEY)
    )
}

/// The CloudHSM rules for a template an application passes (`key`: it describes a key).
pub fn check(template: &[CK_ATTRIBUTE], key: bool, faults: &Faults) -> Result<(), CK_RV> {
    for attribute in template {
        if faults.unknown_attribute(attribute.type_) {
            // "Attribute errors" (attr-errors): an attribute the module does not support in a
            // template gives CKR_TEMPLATE_INCONSISTENT.
            return Err(CKR_TEMPLATE_INCONSISTENT);
        }
    }
    if find(template, CKA_TRUSTED).is_some() {
        // "Modify attributes" (modify-attr) and key_attribute_background: only an admin sets
        // CKA_TRUSTED, with CloudHSM CLI `key set-attribute`; a crypto user cannot, through
        // PKCS#11.
        return Err(CKR_ATTRIBUTE_READ_ONLY);
    }
    if key && find(template, CKA_PRIVATE).and_then(bool_value) == Some(false) {
        // "PKCS #11 attributes" (pkcs11-attributes-interpreting), footnote 1: CKA_PRIVATE "must
        // be explicitly set only to the default value", true, on EC and RSA private and public
        // keys; the SDK 3 table said the same of all keys. The code is not documented; public
        // reports of this refusal show CKR_ATTRIBUTE_VALUE_INVALID.
        return Err(CKR_ATTRIBUTE_VALUE_INVALID);
    }
    Ok(())
}

/// A copy of the template with `CKA_EXTRACTABLE=true` added when it is left out: CloudHSM's
/// default ("PKCS #11 attributes", pkcs11-attributes-interpreting; SoftHSM2's is false).
pub fn with_extractable_default(template: &[CK_ATTRIBUTE]) -> Vec<CK_ATTRIBUTE> {
    let mut out = template.to_vec();
    if find(template, CKA_EXTRACTABLE).is_none() {
        out.push(CK_ATTRIBUTE {
            type_: CKA_EXTRACTABLE,
            // SoftHSM2 only reads template values.
            pValue: std::ptr::addr_of!(TRUE).cast_mut().cast::<c_void>(),
            ulValueLen: size_of::<CK_BBOOL>() as CK_ULONG,
        });
    }
    out
}
