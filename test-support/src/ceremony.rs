//! The key ceremony's trusted AES wrapping key on a test token, made the way the module allows.
//!
//! With a security-officer login (SoftHSM2), the officer imports it with `CKA_TRUSTED` set. Without
//! one (the CloudHSM profile, as on AWS CloudHSM), CloudHSM's procedure runs: the crypto user
//! imports it, an admin marks it trusted with `cloudhsm-cli key set-attribute` (AWS user guide
//! `cloudhsm_cli-key-set-attribute`, `key_attribute_background`), through
//! [`cloudhsm_cli::create_trusted_wrapping_key`] and the stand-in CLI, whose token helper acts on
//! the test's SoftHSM2 token ([`super::standin_token`]). A test binary that uses this declares
//! the helper: `#[test] fn token_helper() { common::standin_token::answer_if_asked(); }`.

use cloudhsm_cli::{create_trusted_wrapping_key, CliRole, CloudHsmCli};
use cryptoki_ops::secrecy::{SecretBox, SecretString};
use cryptoki_ops::{Hsm, KeyInfo, PinSource, WrappingKeySpec};

use super::capabilities::{has, Capability};
use super::{standin_token, TestToken};

/// The stand-in `cloudhsm-cli` (test fixture of the cloudhsm-cli crate).
pub const STANDIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../cloudhsm-cli/fixtures/cloudhsm-cli-standin"
);

/// Puts the trusted AES-256 wrapping key `label` of value `value` on `token`.
pub fn ceremony_key(token: &TestToken, label: &str, value: [u8; 32]) -> KeyInfo {
    let value = SecretBox::new(Box::new(value));
    if has(token, Capability::SecurityOfficerLogin) {
        let so = Hsm::open(&token.so_config()).expect("security-officer login");
        return so
            .import_wrapping_key(&WrappingKeySpec::new(label).trusted(), &value)
            .expect("import the ceremony key as the security officer");
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    // This test runs alone in its process (softhsm_test!): the environment is its own.
    std::env::set_var(
        "STANDIN_TOKEN_HELPER",
        standin_token::helper_program(dir.path(), "token_helper"),
    );
    std::env::set_var(standin_token::TOKEN_ENV, &token.label);
    let pin = |p: &str| PinSource::Value(SecretString::from(p));
    let owner = CloudHsmCli::with_program(
        STANDIN,
        pin("key_owner:Owner-Passw0rd"),
        CliRole::CryptoUser,
    );
    let admin = CloudHsmCli::with_program(STANDIN, pin("admin:Admin-Passw0rd"), CliRole::Admin);
    let hsm = token.open();
    create_trusted_wrapping_key(
        &hsm,
        &WrappingKeySpec::new(label),
        Some(&value),
        &owner,
        &admin,
        &[],
    )
    .expect("the CloudHSM trusted-wrapping-key procedure")
    .info
}
