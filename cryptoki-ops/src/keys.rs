//! Key pairs, wrapping keys, and finding, listing and deleting keys.
//!
//! # Attribute policy
//!
//! Every attribute is set explicitly, because modules differ in their defaults (AWS CloudHSM
//! makes a key **extractable** when `CKA_EXTRACTABLE` is left out). Only standard PKCS#11
//! attributes are used, so other tools (`pkcs11-tool`, `cloudhsm-cli`) see and use the keys.
//!
//! EC private key ([`EcKeySpec`]):
//!
//! | Attribute | Value | Why |
//! |---|---|---|
//! | `CKA_TOKEN` | true | survives the session: it is a long-term key |
//! | `CKA_PRIVATE` | true | visible only after login (CloudHSM requires it) |
//! | `CKA_SENSITIVE` | true | its value can never be read in clear |
//! | `CKA_EXTRACTABLE` | **false**; true only with [`EcKeySpec::backupable`] | cannot leave the HSM, not even wrapped, unless a backup is wanted |
//! | `CKA_WRAP_WITH_TRUSTED` | true when backupable | a backup-able key can only be wrapped by a wrapping key the security officer marked trusted; a module that refuses the attribute gets an error, never a key without it |
//! | `CKA_SIGN` | true | its one job |
//! | `CKA_DECRYPT`, `CKA_UNWRAP`, `CKA_DERIVE` | false | no other use: a signing key is never a decryption or key-agreement key |
//! | `CKA_LABEL`, `CKA_ID` | same on both halves | find the pair by either; the id is 8 random bytes from the token |
//!
//! EC public key: `CKA_TOKEN` true, `CKA_PRIVATE` **true** (visible only after login),
//! `CKA_VERIFY` true, `CKA_ENCRYPT`/`CKA_WRAP`/`CKA_DERIVE` false, `CKA_EC_PARAMS` = the curve's
//! DER OID, same label and id. `CKA_PRIVATE` is true on every module, also when the public half
//! is created from a known point (restore, replication): AWS CloudHSM accepts `CKA_PRIVATE` on
//! EC public keys only at its default, true (AWS CloudHSM user guide, "PKCS #11 attributes",
//! <https://docs.aws.amazon.com/cloudhsm/latest/userguide/pkcs11-attributes-interpreting.html>,
//! footnote 1; OpenSC issue 2747). Every session of this crate is logged in, so nothing is lost;
//! a public key is exported with [`Hsm::public_key`].
//!
//! AES wrapping key ([`WrappingKeySpec`]): `CKA_TOKEN` true, `CKA_SENSITIVE` true,
//! `CKA_EXTRACTABLE` false, `CKA_WRAP`/`CKA_UNWRAP` true, `CKA_ENCRYPT`/`CKA_DECRYPT`/`CKA_SIGN`/
//! `CKA_VERIFY`/`CKA_DERIVE` false (it only wraps keys), `CKA_VALUE_LEN` 32 (AES-256).
//! `CKA_PRIVATE` is true, except for a trusted key made by the security officer: PKCS#11 lets
//! only the SO set `CKA_TRUSTED`, and the SO cannot create private objects, so a trusted wrapping
//! key is a public object (its value stays sensitive and non-extractable).

mod delete;
mod generate;
mod info;
mod lookup;
mod names;
mod selector;
mod spec;
mod template;

#[cfg(doc)]
use crate::hsm::Hsm;

pub use info::{KeyClass, KeyInfo, KeyPairInfo};
pub(crate) use lookup::{ensure_id_free, find_one, read_info, read_public_key};
pub use names::{check_id, check_label, MAX_ID_BYTES, MAX_LABEL_BYTES};
pub use selector::KeySelector;
pub use spec::{EcKeySpec, WrappingKeySpec};
pub(crate) use template::{private_key_template, public_key_template};
