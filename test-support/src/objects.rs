//! What is on a token, seen by a fresh, independent reader: OpenSC's `pkcs11-tool`, in a process
//! of its own that loads SoftHSM2 afresh from the token files, logs in as the user and lists the
//! objects of every class (private, public and secret keys, certificates, data objects).
//!
//! "Nothing left behind" is checked with it against the object set before the operation, never
//! through the library's own listing on the handle that did the work: that listing sees only
//! some classes, through the same session pool and the same cached module.

use std::path::Path;
use std::process::Command;

use crate::{softhsm_module, TestToken, USER_PIN};

/// One object as `pkcs11-tool --list-objects` describes it: its header (class, key type) and
/// every attribute line (label, ID, usage, access, public point...).
pub type ObjectDescription = String;

/// The objects on `token` (of this test's SoftHSM2 store), sorted.
pub fn token_objects(token: &TestToken) -> Vec<ObjectDescription> {
    list(&token.module, None, &token.label, USER_PIN)
}

/// The objects on the token `label` of a `tezos-hsm` store (`TEZOS_HSM_HOME` = `home`: its
/// `softhsm2.conf` and the user PIN in `pins/<label>.user-pin`), sorted.
pub fn store_objects(home: &Path, label: &str) -> Vec<ObjectDescription> {
    let pin_file = home.join("pins").join(format!("{label}.user-pin"));
    let pin = std::fs::read_to_string(&pin_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pin_file.display()));
    list(
        &softhsm_module(),
        Some(&home.join("softhsm2.conf")),
        label,
        pin.trim(),
    )
}

fn list(module: &Path, conf: Option<&Path>, label: &str, pin: &str) -> Vec<ObjectDescription> {
    let mut command = Command::new("pkcs11-tool");
    if let Some(conf) = conf {
        command.env("SOFTHSM2_CONF", conf);
    }
    let output = command
        .args(["--module", module.to_str().expect("UTF-8 module path")])
        .args(["--token-label", label, "--login", "--pin", pin, "--list-objects"])
        .output()
        .expect("pkcs11-tool (Debian package opensc) must be installed: scripts/ensure-deps.sh installs it");
    assert!(
        output.status.success(),
        "pkcs11-tool --list-objects on '{label}': {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Splits a listing into objects: each starts with an unindented line.
fn parse(listing: &str) -> Vec<ObjectDescription> {
    let mut objects: Vec<ObjectDescription> = Vec::new();
    for line in listing.lines().filter(|l| !l.trim().is_empty()) {
        match objects.last_mut() {
            Some(object) if line.starts_with(char::is_whitespace) => {
                object.push('\n');
                object.push_str(line.trim_end());
            }
            _ => objects.push(line.trim_end().to_string()),
        }
    }
    objects.sort();
    objects
}

/// How many of `objects` are of a class (`"Private Key Object"`, `"Public Key Object"`,
/// `"Secret Key Object"`) and carry the label `label`.
pub fn count(objects: &[ObjectDescription], class: &str, label: &str) -> usize {
    let label_line = format!("label:      {label}");
    objects
        .iter()
        .filter(|o| o.starts_with(class) && o.lines().any(|l| l.trim() == label_line))
        .count()
}
