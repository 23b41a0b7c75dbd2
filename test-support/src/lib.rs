//! The SoftHSM2 test harness: every test gets a SoftHSM2 store of its own.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once per process, and 2.6 is known to crash when one process
//! drives it from many test threads with sessions opening and closing. So each test declared
//! with [`softhsm_test!`] runs in a **child process** of the test binary: the parent (the normal
//! libtest thread) creates a temporary token directory and a `softhsm2.conf` pointing at it,
//! re-runs the test binary with `--exact <this test>` and `SOFTHSM2_CONF` set, and removes the
//! directory afterwards. In the child, the test body gets a [`TestToken`] initialised through
//! PKCS#11 (`C_InitToken`, then `C_InitPIN` as SO). Tests run in parallel across processes
//! (libtest's threads each wait on one child); a crash in one child fails that test only, with
//! the child's output in the failure message.
//!
//! A test crate uses it as `use test_support::{self as common, softhsm_test};` (the root
//! package's tests keep `mod common;`, a re-export of this crate).
#![allow(clippy::unwrap_used)] // the harness of tests: a failed unwrap is a failed test

pub mod capabilities;
pub mod ceremony;
pub mod cli;
pub mod http;
pub mod objects;
pub mod payloads;
pub mod standin_token;

use std::path::PathBuf;
use std::process::Command;

use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::{Hsm, HsmConfig, Module, ModuleSource, PinSource, Role, TokenSelector};

/// SO PIN of every test token.
pub const SO_PIN: &str = "test-so-pin-1234";
/// User PIN of every test token.
pub const USER_PIN: &str = "test-user-pin-5678";
/// Label of the first token of a test.
pub const TOKEN_LABEL: &str = "test-token";

const CHILD_ENV: &str = "CRYPTOKI_OPS_TEST_CHILD";
/// Set (to anything) to run the library's side of the tests through the CloudHSM profile
/// (`cloudhsm-profile/`): SoftHSM2 behind the documented rules of AWS CloudHSM.
pub const VIA_PROFILE_ENV: &str = "TEST_VIA_CLOUDHSM_PROFILE";

/// Declares a test that runs in its own process on its own SoftHSM2 store:
/// `softhsm_test!(fn name(token) { ... });`
#[macro_export]
macro_rules! softhsm_test {
    ($(#[$meta:meta])* fn $name:ident($token:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::isolated(
                concat!(module_path!(), "::", stringify!($name)),
                |$token: &$crate::TestToken| $body,
            );
        }
    };
}

/// The SoftHSM2 module tests use: `TEST_PKCS11_MODULE`, else the first installed SoftHSM2.
pub fn softhsm_module() -> PathBuf {
    match std::env::var_os("TEST_PKCS11_MODULE") {
        Some(path) => PathBuf::from(path),
        None => ModuleSource::softhsm2().unwrap_or_else(|e| panic!("{e}")),
    }
}

/// A token initialised for this test.
#[derive(Debug, Clone)]
pub struct TestToken {
    /// Module path.
    pub module: PathBuf,
    /// Token label.
    pub label: String,
}

impl TestToken {
    fn init(label: &str) -> Self {
        let module_path = softhsm_module();
        let module = Module::load(&ModuleSource::Path(module_path.clone())).expect("load SoftHSM2");
        module
            .init_token(
                label,
                &SecretString::from(SO_PIN),
                &SecretString::from(USER_PIN),
            )
            .expect("initialise test token");
        Self {
            module: module_path,
            label: label.to_string(),
        }
    }

    /// Another token in the same SoftHSM2 store (a second "HSM").
    pub fn another(&self, label: &str) -> Self {
        Self::init(label)
    }

    /// Configuration logging in as the user: through the CloudHSM profile when
    /// [`VIA_PROFILE_ENV`] is set, else on SoftHSM2 directly.
    pub fn config(&self) -> HsmConfig {
        HsmConfig::new(
            TokenSelector::Label(self.label.clone()),
            PinSource::Value(SecretString::from(USER_PIN)),
        )
        .with_module(ModuleSource::Path(self.library_module()))
    }

    /// The module the library is tested through (see [`TestToken::config`]).
    pub fn library_module(&self) -> PathBuf {
        if std::env::var_os(VIA_PROFILE_ENV).is_none() {
            return self.module.clone();
        }
        std::env::set_var("CLOUDHSM_PROFILE_SOFTHSM2", &self.module);
        profile_module()
    }

    /// Configuration logging in as the security officer.
    pub fn so_config(&self) -> HsmConfig {
        let mut config = self.config().with_role(Role::SecurityOfficer);
        config.pin = PinSource::Value(SecretString::from(SO_PIN));
        config
    }

    /// The token, logged in as the user.
    pub fn open(&self) -> Hsm {
        Hsm::open(&self.config()).expect("open test token")
    }
}

/// Where Cargo puts what it builds, `target/<profile>/`: the test binary runs from its `deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf()
}

/// The CloudHSM profile module (`cloudhsm-profile/`), built by `cargo build -p cloudhsm-profile`
/// into [`target_dir`].
pub fn profile_module() -> PathBuf {
    let path = target_dir().join("libcloudhsm_profile.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p cloudhsm-profile` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs `body` in a child process with a SoftHSM2 store of its own (see the module docs).
pub fn isolated(full_name: &str, body: impl FnOnce(&TestToken)) {
    // libtest names a test by its path without the crate name.
    let name = full_name
        .split_once("::")
        .map_or(full_name, |(_, rest)| rest);
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body(&TestToken::init(TOKEN_LABEL));
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("softhsm-test-")
        .tempdir()
        .expect("temporary directory");
    // A fresh temporary directory of this run only: a plain write is enough.
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("SoftHSM2 token directory");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(&conf, cryptoki_ops::module::softhsm2_conf(&tokens))
        .expect("SoftHSM2 configuration");
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_ENV, name)
        .env("TEST_PKCS11_MODULE", softhsm_module())
        .current_dir(dir.path())
        .output()
        .expect("run the test in a child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "test {name} failed in its child process ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}
