//! Driving the `tezos-hsm` binary as a user would, on a local SoftHSM2 store of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A `TEZOS_HSM_HOME` of its own (so a SoftHSM2 store of its own), removed when dropped.
pub struct CliHome(tempfile::TempDir);

/// What one run of the tool printed.
pub struct CliRun {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliRun {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Standard output as the one JSON value `--json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// The `{"kind","message"}` of a failed `--json` run (the last line of stderr).
    pub fn error(&self) -> Value {
        assert_ne!(self.code, 0, "expected a failure: {}", self.stdout);
        let line = self.stderr.lines().last().unwrap_or_default();
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr is not a JSON error ({e}): {}", self.stderr));
        value["error"].clone()
    }
}

/// The `tezos-hsm` binary: the one Cargo names to the root package's integration tests when it
/// runs them (`CARGO_BIN_EXE_tezos-hsm`), else the one built next to the test binary.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_tezos-hsm") {
        return PathBuf::from(path);
    }
    crate::target_dir().join("tezos-hsm")
}

/// The command running the tool with `args` on the store in `home`, with no module, token, PIN
/// or guard settings inherited from the test's environment, plus `envs` (to spawn and kill).
pub fn command_in(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    command.args(args).env("TEZOS_HSM_HOME", home);
    for var in [
        "PKCS11_MODULE",
        "TEZOS_HSM_TOKEN",
        "TEZOS_HSM_PIN",
        "TEZOS_HSM_WATERMARK_DIR",
        "TEZOS_HSM_WATERMARK_DB",
        "TEZOS_HSM_LOCK_TIMEOUT",
        "SOFTHSM2_CONF",
    ] {
        command.env_remove(var);
    }
    command.envs(envs.iter().copied());
    command
}

/// Runs the tool with `args` on the store in `home`, with no module, token, PIN or guard
/// settings inherited from the test's environment, plus `envs`.
pub fn run_in(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> CliRun {
    let output = command_in(home, args, envs)
        .output()
        .expect("run tezos-hsm");
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl CliHome {
    /// A new, empty home.
    #[allow(clippy::new_without_default)] // each call makes a directory: `new` says so
    pub fn new() -> Self {
        Self(tempfile::tempdir().expect("temporary directory"))
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Runs the tool with `args`, with no module, token, PIN or guard settings inherited.
    pub fn run(&self, args: &[&str]) -> CliRun {
        self.run_with(args, &[])
    }

    /// Like [`Self::run`], with extra environment variables.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> CliRun {
        run_in(self.path(), args, envs)
    }

    /// Runs with `--json`, expects success, returns the JSON value printed.
    pub fn json(&self, args: &[&str]) -> Value {
        let run = self.run(&[args, &["--json"]].concat());
        assert!(
            run.success(),
            "{args:?} failed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        run.json()
    }

    /// Runs with `--json`, expects failure, returns the error's kind and message.
    pub fn error(&self, args: &[&str]) -> (String, String) {
        let error = self.run(&[args, &["--json"]].concat()).error();
        let field = |name: &str| error[name].as_str().unwrap_or_default().to_string();
        (field("kind"), field("message"))
    }
}
