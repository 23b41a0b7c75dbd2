//! What the module under test can do, found by asking it (never by its name), and the one way a
//! test skips what the module cannot do.
//!
//! The integration suite runs on SoftHSM2 and, with [`super::VIA_PROFILE_ENV`] set, through the
//! CloudHSM profile, which refuses what AWS CloudHSM refuses. A test (or one step of a test) that
//! needs a [`Capability`] calls [`require`]: it probes the module, and when the capability is
//! missing it records the skip and returns `false`, and the test returns (or leaves the step
//! out). Each skip is one line `module<TAB>capability<TAB>test` appended to the file named by
//! [`SKIP_LOG_ENV`] (`scripts/test.sh` sets it and prints a summary per module at the end), and
//! is printed on stderr.

use std::io::Write;

use cryptoki::error::RvError;
use cryptoki_ops::{Error, Hsm};

use super::TestToken;

/// Environment variable naming the file skips are appended to (unset: stderr only).
pub const SKIP_LOG_ENV: &str = "TEST_SKIP_LOG";

/// Something a PKCS#11 module may or may not do, as the tests need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// A `CKU_SO` login through PKCS#11 (CloudHSM: crypto users only, AWS user guide
    /// `pkcs11-pin`). The tests' key ceremony makes its trusted wrapping key that way.
    SecurityOfficerLogin,
    /// Ed25519 keys: `CKM_EDDSA` in the mechanism list (not in CloudHSM's PKCS#11 library, AWS
    /// user guide `pkcs11-mechanisms`).
    EdDsa,
    /// The standard AES key wrap `CKM_AES_KEY_WRAP_PAD` in the mechanism list (CloudHSM has only
    /// its vendor wraps).
    StandardAesKeyWrap,
    /// Read-only sessions (CloudHSM refuses them, AWS user guide `ki-pkcs11-sdk`).
    ReadOnlySessions,
}

impl Capability {
    /// How the skip summary names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::SecurityOfficerLogin => "security-officer login (CKU_SO)",
            Self::EdDsa => "Ed25519 (CKM_EDDSA)",
            Self::StandardAesKeyWrap => "standard AES key wrap (CKM_AES_KEY_WRAP_PAD)",
            Self::ReadOnlySessions => "read-only sessions",
        }
    }
}

/// The module the tests run through, as the skip summary names it.
pub fn module_name() -> &'static str {
    if std::env::var_os(super::VIA_PROFILE_ENV).is_some() {
        "CloudHSM profile"
    } else {
        "SoftHSM2"
    }
}

/// Whether the module `token` is tested through has `capability`, by asking it.
pub fn has(token: &TestToken, capability: Capability) -> bool {
    match capability {
        Capability::SecurityOfficerLogin => match Hsm::open(&token.so_config()) {
            Ok(_) => true,
            Err(Error::Pkcs11 {
                rv: RvError::UserTypeInvalid,
                ..
            }) => false,
            Err(e) => panic!("probing the security-officer login: {e}"),
        },
        Capability::EdDsa => listed(token, "CKM_EDDSA"),
        Capability::StandardAesKeyWrap => listed(token, "CKM_AES_KEY_WRAP_PAD"),
        Capability::ReadOnlySessions => {
            let hsm = token.open();
            let pkcs11 = hsm.module().pkcs11();
            let slot = pkcs11
                .get_slots_with_token()
                .expect("slots")
                .into_iter()
                .find(|slot| {
                    pkcs11
                        .get_token_info(*slot)
                        .is_ok_and(|info| info.label().trim_end() == token.label)
                })
                .expect("the test token's slot");
            match pkcs11.open_ro_session(slot) {
                Ok(_) => true,
                Err(cryptoki::error::Error::Pkcs11(RvError::FunctionFailed, _)) => false,
                Err(e) => panic!("probing read-only sessions: {e}"),
            }
        }
    }
}

fn listed(token: &TestToken, mechanism: &str) -> bool {
    token
        .open()
        .token_info()
        .expect("token information")
        .mechanisms
        .iter()
        .any(|m| m == mechanism)
}

/// `true` when the module has `capability`; else records that the current test skipped it (see
/// the module docs) and returns `false`. Use: `if !require(token, Capability::EdDsa) { return; }`.
pub fn require(token: &TestToken, capability: Capability) -> bool {
    if has(token, capability) {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let line = format!("{}\t{}\t{test}\n", module_name(), capability.name());
    eprintln!(
        "skipped: {test} needs {} ({})",
        capability.name(),
        module_name()
    );
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        // One short O_APPEND write per skip: lines of parallel test processes do not mix.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("skip log {}: {e}", path.to_string_lossy()));
        file.write_all(line.as_bytes()).expect("write the skip log");
    }
    false
}
