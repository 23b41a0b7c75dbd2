//! The HSM seam of this crate: everything that reaches a PKCS#11 HSM (through `cryptoki-ops`),
//! behind the default cargo feature `hsm`.
//!
//! - [`HsmKey`]: a Tezos key whose private half is in the HSM: watermark check, BLAKE2b-256,
//!   HSM signature, low-S, verification, RustCrypto traits.
//! - [`runbook`]: backup and restore of wrapped keys, replication to a second HSM, the
//!   consistency check across tokens, and the opt-in hot-wallet export.
//!
//! Both are re-exported at the crate root (`tezos_keys::HsmKey`, `tezos_keys::runbook`). The
//! rest of the crate (encodings, verification, software keys, the double-signing guard) is pure
//! software: `cargo build -p tezos-keys --no-default-features` builds it without PKCS#11, and
//! `.ci/run` checks that it does.

mod key;
pub mod runbook;

pub use key::{tezos_curve, tezos_public_key, HsmKey, SignError};
