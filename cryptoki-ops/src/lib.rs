//! Safe, pooled PKCS#11 key operations for HSM key-management runbooks.
//!
//! `cryptoki-ops` drives keys in a PKCS#11 HSM from Rust: it loads a module (AWS CloudHSM's
//! `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so` in production, SoftHSM2 in tests), selects a token,
//! logs in once, and runs every operation on a bounded pool of read-write sessions shared by all
//! threads. On top of that: EC key pairs on secp256k1, P-256 and Ed25519 with an explicit
//! attribute policy ([`keys`]), AES-256 wrapping keys, public-key export as SEC1, raw ECDSA
//! signing of a digest, wrapping and unwrapping private keys for backup and replication, listing
//! and deleting keys.
//!
//! ```no_run
//! use cryptoki_ops::{Curve, EcKeySpec, Hsm, HsmConfig, KeySelector, PinSource, TokenSelector};
//!
//! // On CloudHSM the PIN is `<crypto user>:<password>`; here it comes from the environment.
//! let config = HsmConfig::new(TokenSelector::First, PinSource::Env("PKCS11_PIN".into()));
//! let hsm = Hsm::open(&config)?;
//! hsm.generate_ec_key(&EcKeySpec::new(Curve::Secp256k1, "baker"))?;
//! let key = hsm.signing_key(&KeySelector::Label("baker".into()))?;
//! println!("public key {}", hex::encode(key.public_key().compressed()));
//! let signature = key.sign(&[0x11; 32])?; // r || s over a 32-byte digest
//! # Ok::<(), cryptoki_ops::Error>(())
//! ```
//!
//! Errors are one enum, [`Error`]; each message says what failed and how to fix it, and never
//! holds a PIN or key bytes.

pub mod config;
pub mod curve;
pub mod error;
pub mod hsm;
pub mod keys;
pub mod module;
pub mod pin;
mod pool;
pub mod sign;
pub mod token;
pub mod wrap;

pub use config::{HsmConfig, Role};
pub use curve::{Curve, PublicKey};
pub use error::{Error, Result};
pub use hsm::{Hsm, PoolStats};
pub use keys::{EcKeySpec, KeyClass, KeyInfo, KeyPairInfo, KeySelector, WrappingKeySpec};
pub use module::{Module, ModuleSource, TokenSummary};
pub use pin::PinSource;
pub use sign::{to_raw_signature, RawSignature, SigningKey};
pub use token::{TokenReport, TokenSelector};
pub use wrap::{UnwrapTarget, WrapMechanism, WrappedKey};

pub use secrecy;
