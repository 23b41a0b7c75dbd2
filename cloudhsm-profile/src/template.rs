//! Attribute templates: the CloudHSM rules on what an application may set.

use std::ffi::c_void;

use cryptoki_sys::{
    CKA_CLASS, CKA_EXTRACTABLE, CKA_PRIVATE, CKA_TRUSTED, CKA_VALUE, CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_VALUE_INVALID,
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

/// Points `CKA_VALUE` of `template` at a copy of the value with its first bit flipped (the
/// `CLOUDHSM_PROFILE_DAMAGE_SECRET_VALUES` fault); returns the copy, which must outlive the use
/// of the template. `None` when the template has no value.
pub fn damage_value(template: &mut [CK_ATTRIBUTE]) -> Option<Box<[u8]>> {
    let attribute = template.iter_mut().find(|a| a.type_ == CKA_VALUE)?;
    if attribute.pValue.is_null() || attribute.ulValueLen == 0 {
        return None;
    }
    // SAFETY: a template attribute points to ulValueLen readable bytes (PKCS#11).
    let value = unsafe {
        std::slice::from_raw_parts(attribute.pValue.cast::<u8>(), attribute.ulValueLen as usize)
    };
    let mut copy: Box<[u8]> = value.into();
    copy[0] ^= 0x80;
    attribute.pValue = copy.as_mut_ptr().cast::<c_void>();
    Some(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::{CKA_LABEL, CKA_WRAP_WITH_TRUSTED, CK_FALSE};

    static FALSE: CK_BBOOL = CK_FALSE;
    static PUBLIC_KEY: CK_OBJECT_CLASS = CKO_PUBLIC_KEY;

    fn attribute<T>(type_: CK_ATTRIBUTE_TYPE, value: &'static T) -> CK_ATTRIBUTE {
        CK_ATTRIBUTE {
            type_,
            pValue: std::ptr::from_ref(value).cast_mut().cast(),
            ulValueLen: size_of::<T>() as CK_ULONG,
        }
    }

    #[test]
    fn the_rules_refuse_what_cloudhsm_refuses() {
        let none = Faults::default();
        let private_false = [
            attribute(CKA_CLASS, &PUBLIC_KEY),
            attribute(CKA_PRIVATE, &FALSE),
        ];
        assert_eq!(class(&private_false), Some(CKO_PUBLIC_KEY));
        assert_eq!(
            check(&private_false, true, &none),
            Err(CKR_ATTRIBUTE_VALUE_INVALID)
        );
        // Not a key (a data object): CKA_PRIVATE=false is fine.
        assert_eq!(check(&private_false, false, &none), Ok(()));
        assert_eq!(check(&[attribute(CKA_PRIVATE, &TRUE)], true, &none), Ok(()));
        assert_eq!(
            check(&[attribute(CKA_TRUSTED, &TRUE)], true, &none),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check(&[attribute(CKA_TRUSTED, &FALSE)], true, &none),
            Err(CKR_ATTRIBUTE_READ_ONLY)
        );
        assert_eq!(
            check(&[attribute(CKA_WRAP_WITH_TRUSTED, &TRUE)], true, &none),
            Ok(())
        );
    }

    #[test]
    fn extractable_is_added_only_when_left_out() {
        let label = [attribute(CKA_LABEL, &TRUE)];
        let added = with_extractable_default(&label);
        assert_eq!(added.len(), 2);
        assert_eq!(added[1].type_, CKA_EXTRACTABLE);
        assert_eq!(bool_value(&added[1]), Some(true));
        let explicit = [attribute(CKA_EXTRACTABLE, &FALSE)];
        let kept = with_extractable_default(&explicit);
        assert_eq!(kept.len(), 1);
        assert_eq!(bool_value(&kept[0]), Some(false));
    }
}
