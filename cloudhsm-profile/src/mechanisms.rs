//! Mechanisms: only what CloudHSM SDK 5 lists, with its vendor AES key wraps run as SoftHSM2's.
//!
//! AWS user guide, "Supported mechanisms for the PKCS #11 library for AWS CloudHSM Client SDK 5"
//! (`pkcs11-mechanisms`): the AES key wraps are `CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD`,
//! `_PKCS5_PAD` and `_ZERO_PAD`; the standard `CKM_AES_KEY_WRAP[_PAD]` are not listed ("Migrate
//! to SDK 5", `pkcs11-migrate-to-sdk-5`, maps them to the vendor ones), nor is any EdDSA
//! mechanism (also "Supported key types", `pkcs11-key-types`). Values from AWS's vendor header
//! `cloudhsm_pkcs11_vendor_defs.h`. `_PKCS5_PAD` is a CloudHSM-only padding SoftHSM2 cannot do,
//! so it is not offered.

use cryptoki_sys::{
    CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP_PKCS7,
    CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, CKM_VENDOR_DEFINED, CKR_MECHANISM_INVALID,
    CK_MECHANISM, CK_MECHANISM_TYPE, CK_RV,
};

/// `CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD` (RFC 5649), 0x8000216F.
pub const CLOUDHSM_ZERO_PAD: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | 0x216F;
/// `CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD` (RFC 3394), 0x80002109.
pub const CLOUDHSM_NO_PAD: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | CKM_AES_KEY_WRAP;

/// Vendor mechanism and the SoftHSM2 mechanism that does the work.
const VENDOR: [(CK_MECHANISM_TYPE, CK_MECHANISM_TYPE); 2] = [
    (CLOUDHSM_ZERO_PAD, CKM_AES_KEY_WRAP_PAD),
    (CLOUDHSM_NO_PAD, CKM_AES_KEY_WRAP),
];

/// What CloudHSM's PKCS#11 library does not have.
const ABSENT: [CK_MECHANISM_TYPE; 6] = [
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_PAD,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_KEY_WRAP_PKCS7,
    CKM_EDDSA,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
];

/// The SoftHSM2 mechanism that runs `mechanism`, or `CKR_MECHANISM_INVALID`.
pub fn backend(mechanism: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_TYPE, CK_RV> {
    if ABSENT.contains(&mechanism) {
        return Err(CKR_MECHANISM_INVALID);
    }
    Ok(VENDOR
        .iter()
        .find(|(vendor, _)| *vendor == mechanism)
        .map_or(mechanism, |(_, real)| *real))
}

/// The mechanism list the profile shows, given SoftHSM2's.
pub fn advertised(real: &[CK_MECHANISM_TYPE]) -> Vec<CK_MECHANISM_TYPE> {
    let mut shown: Vec<_> = real
        .iter()
        .copied()
        .filter(|m| !ABSENT.contains(m))
        .collect();
    shown.extend(
        VENDOR
            .iter()
            .filter(|(_, backing)| real.contains(backing))
            .map(|(vendor, _)| *vendor),
    );
    shown
}

/// A copy of `*mechanism` with its type mapped by [`backend`] (parameters shared).
///
/// # Safety
///
/// `mechanism` must be NULL or point to a valid `CK_MECHANISM`.
pub unsafe fn mapped(mechanism: *const CK_MECHANISM) -> Result<Option<CK_MECHANISM>, CK_RV> {
    // SAFETY: the caller guarantees NULL or a valid pointer.
    let Some(given) = (unsafe { mechanism.as_ref() }) else {
        return Ok(None);
    };
    Ok(Some(CK_MECHANISM {
        mechanism: backend(given.mechanism)?,
        ..*given
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::{CKM_AES_GCM, CKM_ECDSA, CKM_EC_KEY_PAIR_GEN};

    #[test]
    fn the_list_trades_standard_wraps_and_eddsa_for_the_vendor_wraps() {
        let softhsm2 = [
            CKM_ECDSA,
            CKM_EC_KEY_PAIR_GEN,
            CKM_AES_KEY_WRAP,
            CKM_AES_KEY_WRAP_PAD,
            CKM_EDDSA,
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
        ];
        assert_eq!(
            advertised(&softhsm2),
            [
                CKM_ECDSA,
                CKM_EC_KEY_PAIR_GEN,
                CLOUDHSM_ZERO_PAD,
                CLOUDHSM_NO_PAD
            ]
        );
        // A vendor wrap is listed only when SoftHSM2 can run it.
        assert_eq!(
            advertised(&[CKM_ECDSA, CKM_AES_KEY_WRAP]),
            [CKM_ECDSA, CLOUDHSM_NO_PAD]
        );
    }

    #[test]
    fn vendor_values_are_awss_and_map_onto_softhsm2() {
        assert_eq!(CLOUDHSM_ZERO_PAD, 0x8000_216F);
        assert_eq!(CLOUDHSM_NO_PAD, 0x8000_2109);
        assert_eq!(backend(CLOUDHSM_ZERO_PAD), Ok(CKM_AES_KEY_WRAP_PAD));
        assert_eq!(backend(CLOUDHSM_NO_PAD), Ok(CKM_AES_KEY_WRAP));
        assert_eq!(backend(CKM_AES_GCM), Ok(CKM_AES_GCM));
        for absent in ABSENT {
            assert_eq!(backend(absent), Err(CKR_MECHANISM_INVALID), "0x{absent:x}");
        }
    }
}
