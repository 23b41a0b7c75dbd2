//! The stand-in `cloudhsm-cli` (`fixtures/cloudhsm-cli-standin`) and checks shared by the tests
//! of this crate. The stand-in answers with the JSON AWS documents and records the arguments and
//! environment it was given; it talks to no HSM.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use cloudhsm_cli::{CliRole, CloudHsmCli};
use cryptoki_ops::secrecy::SecretString;
use cryptoki_ops::PinSource;

/// `CLOUDHSM_PIN` of the key owner (a crypto user) in these tests.
pub const OWNER_PIN: &str = "baker_owner:Owner-Passw0rd";
/// `CLOUDHSM_PIN` of the admin in these tests.
pub const ADMIN_PIN: &str = "admin:Admin-Passw0rd";
/// Password given to a new crypto user.
pub const NEW_PASSWORD: &str = "Standby-Passw0rd";

const STANDIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cloudhsm-cli-standin");

/// Tests write small scripts and run them. A script being written while another thread forks can
/// make its execution fail with ETXTBSY ("text file busy"), so tests that write or spawn hold
/// this lock.
static SPAWN: Mutex<()> = Mutex::new(());

/// Takes the lock every test that writes or spawns a program holds.
pub fn spawn_lock() -> MutexGuard<'static, ()> {
    SPAWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the stand-in recorded about one run.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// `CLOUDHSM_ROLE`, or `<unset>`.
    pub role: String,
    /// `expected`, `other` or `<unset>`: whether `CLOUDHSM_PIN` was the test PIN.
    pub pin: String,
    /// The arguments, in order.
    pub args: Vec<String>,
}

/// A stand-in CLI in a temporary directory, configured by environment variables set in a wrapper
/// script (so tests never touch the test process's environment).
pub struct StandIn {
    /// The temporary directory (the wrapper, the record, files tests add).
    pub dir: tempfile::TempDir,
    /// The wrapper to run as the CLI.
    pub program: PathBuf,
}

impl StandIn {
    /// A stand-in that expects `expected_pin` in `CLOUDHSM_PIN`, with `env` set for it (values
    /// without `'`).
    pub fn new(expected_pin: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("cloudhsm-cli");
        let record = dir.path().join("record");
        let pid = dir.path().join("pid");
        let answer = dir.path().join("answer");
        let mut script = format!(
            "#!/bin/sh\nSTANDIN_RECORD='{}'\nSTANDIN_PIDFILE='{}'\nSTANDIN_OUTPUT='{}'\n\
             STANDIN_EXPECTED_PIN='{expected_pin}'\n\
             export STANDIN_RECORD STANDIN_PIDFILE STANDIN_OUTPUT STANDIN_EXPECTED_PIN\n",
            record.display(),
            pid.display(),
            answer.display()
        );
        for (name, value) in env {
            assert!(!value.contains('\''), "{value}");
            script.push_str(&format!("{name}='{value}'\nexport {name}\n"));
        }
        script.push_str(&format!("exec sh '{STANDIN}' \"$@\"\n"));
        std::fs::write(&program, script).unwrap();
        set_mode(&program, 0o755);
        Self { dir, program }
    }

    /// A stand-in whose answer is `output`, printed on file descriptor `fd` (1 or 2), with exit
    /// status `exit`.
    pub fn answering(expected_pin: &str, output: &str, fd: u8, exit: u8) -> Self {
        let standin = Self::new(
            expected_pin,
            &[
                ("STANDIN_ERROR", "output"),
                ("STANDIN_OUTPUT_FD", &fd.to_string()),
                ("STANDIN_EXIT", &exit.to_string()),
            ],
        );
        std::fs::write(standin.dir.path().join("answer"), output).unwrap();
        standin
    }

    /// The CLI with credentials `pin` and `role`.
    pub fn cli(&self, pin: &str, role: CliRole) -> CloudHsmCli {
        CloudHsmCli::with_program(&self.program, pin_value(pin), role)
    }

    /// As the key owner.
    pub fn owner(&self) -> CloudHsmCli {
        self.cli(OWNER_PIN, CliRole::CryptoUser)
    }

    /// As the admin.
    pub fn admin(&self) -> CloudHsmCli {
        self.cli(ADMIN_PIN, CliRole::Admin)
    }

    /// The process id of the last run, if it wrote one.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.path().join("pid")).ok()?;
        text.trim().parse().ok()
    }

    /// What the last run recorded; `None` if the CLI never ran.
    pub fn record(&self) -> Option<Record> {
        let text = std::fs::read_to_string(self.dir.path().join("record")).ok()?;
        let mut record = Record {
            role: String::new(),
            pin: String::new(),
            args: Vec::new(),
        };
        for line in text.lines() {
            let (key, value) = line.split_once('=').unwrap();
            match key {
                "role" => record.role = value.to_string(),
                "pin" => record.pin = value.to_string(),
                "arg" => record.args.push(value.to_string()),
                other => panic!("unexpected record line {other}"),
            }
        }
        Some(record)
    }
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The PIN source giving `pin`.
pub fn pin_value(pin: &str) -> PinSource {
    PinSource::Value(SecretString::from(pin))
}

/// `secret` inside a JSON string, as serde_json writes it (non-ASCII as is).
pub fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// `secret` inside a JSON string, written in ASCII only (`\u00f6` for `ö`, or `\u00F6` with
/// `upper`).
pub fn json_escaped_ascii(secret: &str, upper: bool) -> String {
    let mut out = String::new();
    for c in json_escaped(secret).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&if upper {
                    format!("\\u{unit:04X}")
                } else {
                    format!("\\u{unit:04x}")
                });
            }
        }
    }
    out
}

/// Asserts that `text` holds none of `secrets`, in any spelling: as is, JSON-escaped (with or
/// without ASCII escapes, either case of hex digit), escaped by `{:?}`, and each of those escaped
/// once more by `{:?}` (an error's `Debug` output escapes its fields' text).
pub fn assert_no_secret_in(text: &str, secrets: &[&str]) {
    for secret in secrets {
        let debug = |s: &str| format!("{s:?}").trim_matches('"').to_string();
        let forms = [
            secret.to_string(),
            json_escaped(secret),
            json_escaped_ascii(secret, false),
            json_escaped_ascii(secret, true),
            debug(secret),
        ];
        for form in forms.iter().cloned().chain(forms.iter().map(|f| debug(f))) {
            assert!(
                !text.contains(&form),
                "secret {secret:?} (as {form:?}) in: {text}"
            );
        }
    }
}

/// Neither `err`'s message nor its `Debug` form holds one of `secrets` or the test PINs.
pub fn assert_no_secrets(err: &dyn std::error::Error, secrets: &[&str]) {
    let text = format!("{err} / {err:?}");
    assert_no_secret_in(&text, secrets);
    assert_no_secret_in(
        &text,
        &[
            OWNER_PIN,
            ADMIN_PIN,
            NEW_PASSWORD,
            "Owner-Passw0rd",
            "Admin-Passw0rd",
        ],
    );
}
