//! The embedded SoftHSM2 store (no `--module`) across processes: concurrent commands, SIGKILL at
//! any point, damaged files, and token labels that must never become paths.
//!
//! Every test drives the `tezos-hsm` binary as several processes on a `TEZOS_HSM_HOME` of its
//! own. The kill loops take their delays from a seed printed on failure (set `CLI_STORE_SEED` to
//! replay one).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::cli::{command_in, CliHome, CliRun};

/// A payload `sign` accepts without a watermark record (a generic operation).
const OPERATION: &str = "03abcdef";

/// A store holding one backup-able key `baker` and a trusted wrapping key `wk`, with what must
/// never change: the key's address, the PIN files and the token directories.
struct Store {
    home: CliHome,
    address: String,
    pins: BTreeMap<String, Vec<u8>>,
    tokens: Vec<String>,
    backups: std::cell::Cell<u32>,
}

impl Store {
    fn new() -> Self {
        let home = CliHome::new();
        let generated = home.json(&[
            "key",
            "generate",
            "--curve",
            "secp256k1",
            "--label",
            "baker",
            "--backupable",
        ]);
        home.json(&["wrapkey", "generate", "--label", "wk", "--trusted"]);
        let address = generated["address"].as_str().unwrap().to_string();
        let pins = pin_files(home.path());
        assert_eq!(pins.len(), 2, "{pins:?}");
        let tokens = token_dirs(home.path());
        assert_eq!(tokens.len(), 1, "{tokens:?}");
        Self {
            home,
            address,
            pins,
            tokens,
            backups: std::cell::Cell::new(0),
        }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn token_object(&self) -> PathBuf {
        self.path()
            .join("tokens")
            .join(&self.tokens[0])
            .join("token.object")
    }

    /// The arguments of one of the commands the kill and burst loops run.
    fn workload(&self, which: u64) -> Vec<String> {
        let args: Vec<&str> = match which % 3 {
            0 => vec!["sign", "baker", OPERATION],
            1 => vec!["key", "list"],
            _ => {
                let n = self.backups.get() + 1;
                self.backups.set(n);
                let out = self.path().join(format!("backup-{n}.json"));
                return ["key", "backup", "baker", "--wrap-key", "wk", "--out"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([out.display().to_string()])
                    .collect();
            }
        };
        args.iter().map(|s| s.to_string()).collect()
    }

    fn spawn(&self, args: &[String], envs: &[(&str, &str)]) -> Child {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        command_in(self.path(), &args, envs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The key is still there with its address, no token was added, no PIN file changed, and
    /// no command announced a new token. Returns whether a `token.object` was restored.
    fn assert_intact(&self, context: &str) -> bool {
        let run = self.home.run(&["key", "show", "baker", "--json"]);
        assert!(
            run.success(),
            "{context}: key show failed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            !run.stderr.contains("created the development token"),
            "{context}: a new token was created: {}",
            run.stderr
        );
        assert_eq!(run.json()["address"], self.address.as_str(), "{context}");
        assert_eq!(
            token_dirs(self.path()),
            self.tokens,
            "{context}: token directories"
        );
        assert!(
            pin_files(self.path()) == self.pins,
            "{context}: the PIN files changed"
        );
        run.stderr.contains("restored")
    }
}

/// The files of `pins/` and their contents.
fn pin_files(home: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(home.join("pins")) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The token directories SoftHSM2 made in `tokens/`.
fn token_dirs(home: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(home.join("tokens")) else {
        return Vec::new();
    };
    let mut dirs: Vec<String> = entries
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

fn finish(child: Child) -> CliRun {
    let output = child.wait_with_output().unwrap();
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A small deterministic generator (xorshift64*), seeded from the clock or `CLI_STORE_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("CLI_STORE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("CLI_STORE_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How long one run of `args` takes on this machine (the range kill delays are drawn from).
fn duration_of(store: &Store, args: &[String]) -> Duration {
    let start = Instant::now();
    let run = finish(store.spawn(args, &[]));
    assert!(run.success(), "{args:?}: {}", run.stderr);
    start.elapsed()
}

#[test]
fn four_first_commands_at_once_make_one_token() {
    for round in 0..4 {
        let home = CliHome::new();
        let children: Vec<Child> = (0..4)
            .map(|_| {
                command_in(home.path(), &["key", "list", "--json"], &[])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let runs: Vec<CliRun> = children.into_iter().map(finish).collect();
        for run in &runs {
            assert!(run.success(), "round {round}: {}", run.stderr);
            assert_eq!(run.json(), serde_json::json!([]), "round {round}");
        }
        let announced = runs
            .iter()
            .filter(|r| r.stderr.contains("created the development token"))
            .count();
        assert_eq!(announced, 1, "round {round}: one command creates the token");
        assert_eq!(token_dirs(home.path()).len(), 1, "round {round}: one token");
        let pins = pin_files(home.path());
        assert_eq!(pins.len(), 2, "round {round}: {pins:?}");
        // The PINs on disk open the token.
        home.json(&["key", "generate", "--curve", "p256", "--label", "k"]);
        assert_eq!(pin_files(home.path()), pins, "round {round}");
    }
}

#[test]
fn bursts_of_concurrent_commands_keep_the_key() {
    let store = Store::new();
    let mut rng = Rng::new();
    for burst in 0..10 {
        let children: Vec<(Vec<String>, Child)> = (0..4)
            .map(|_| {
                let args = store.workload(rng.next());
                let child = store.spawn(&args, &[]);
                (args, child)
            })
            .collect();
        for (args, child) in children {
            let run = finish(child);
            assert!(
                run.success(),
                "burst {burst}: {args:?} failed:\n{}",
                run.stderr
            );
        }
    }
    assert!(!store.assert_intact("after 10 bursts of 4 commands"));
}

#[test]
fn sigkills_never_lose_the_key() {
    let store = Store::new();
    let mut rng = Rng::new();
    // Kill anywhere from the start to the end of the quickest of the three commands (the
    // quickest, as the other tests' processes slow some runs down).
    let quickest = (0..6)
        .map(|i| duration_of(&store, &store.workload(i)))
        .min()
        .unwrap();
    let window = quickest.as_micros() as u64;
    let (mut killed_running, mut restored) = (0, 0);
    for kill in 0..40 {
        let args = store.workload(rng.next());
        let mut child = store.spawn(&args, &[]);
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if store.assert_intact(&format!("after kill {kill} during {args:?}")) {
            restored += 1;
        }
    }
    eprintln!(
        "{killed_running} of 40 kills hit a running command (window {window} µs); \
         {restored} left a token.object to restore"
    );
    assert!(
        killed_running >= 20,
        "only {killed_running} of 40 kills hit a running command (window {window} µs)"
    );
}

#[test]
fn a_kill_during_the_first_command_leaves_a_store_the_next_one_finishes() {
    // The first command creates the token: kill it at points spread over its whole run.
    let probe = CliHome::new();
    let start = Instant::now();
    assert!(probe.run(&["key", "list"]).success());
    let first = start.elapsed().as_micros() as u64;
    for i in 0..8u64 {
        let home = CliHome::new();
        let mut child = command_in(home.path(), &["key", "list"], &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(first * i / 8));
        child.kill().unwrap();
        child.wait().unwrap();
        let next = home.run(&[
            "key", "generate", "--curve", "p256", "--label", "k", "--json",
        ]);
        assert!(
            next.success(),
            "kill {i} of 8: the next command failed:\n{}",
            next.stderr
        );
        assert_eq!(token_dirs(home.path()).len(), 1, "kill {i} of 8");
        let pins = pin_files(home.path());
        assert_eq!(pins.len(), 2, "kill {i} of 8: {pins:?}");
        let again = home.run(&["key", "show", "k", "--json"]);
        assert!(again.success(), "kill {i} of 8: {}", again.stderr);
        assert!(!again.stderr.contains("created"), "{}", again.stderr);
        assert_eq!(pin_files(home.path()), pins);
    }
}

#[test]
fn an_empty_or_garbage_token_object_is_restored_from_the_last_good_copy() {
    let store = Store::new();
    let live = store.token_object();
    let good = std::fs::read(&live).unwrap();
    let damages: [(&str, Option<Vec<u8>>); 4] = [
        ("empty", Some(Vec::new())),
        ("garbage", Some(vec![0xa5; 97])),
        ("cut short", Some(good[..good.len() / 2].to_vec())),
        ("missing", None),
    ];
    for (damage, content) in damages {
        match content {
            Some(bytes) => std::fs::write(&live, bytes).unwrap(),
            None => std::fs::remove_file(&live).unwrap(),
        }
        let run = store.home.run(&["sign", "baker", OPERATION, "--json"]);
        assert!(run.success(), "{damage}: {}", run.stderr);
        assert!(
            run.stderr.contains("restored") && run.stderr.contains("token.object"),
            "{damage}: the restore is announced: {}",
            run.stderr
        );
        assert!(!store.assert_intact(damage));
    }
}

#[test]
fn a_damaged_store_is_an_error_naming_the_file_never_a_new_token() {
    let store = Store::new();
    // No last-known-good copy: an empty token.object cannot be repaired.
    std::fs::remove_dir_all(store.path().join("last-good")).unwrap();
    let live = store.token_object();
    let good = std::fs::read(&live).unwrap();
    std::fs::write(&live, b"").unwrap();
    for args in [&["key", "list"][..], &["sign", "baker", OPERATION]] {
        let (kind, message) = store.home.error(args);
        assert_eq!(kind, "store_damaged", "{args:?}: {message}");
        assert!(message.contains(&live.display().to_string()), "{message}");
        assert_eq!(token_dirs(store.path()), store.tokens);
        assert!(pin_files(store.path()) == store.pins);
    }
    std::fs::write(&live, &good).unwrap();
    assert!(!store.assert_intact("token.object put back"));

    // A token without its user PIN file.
    let pin = store.path().join("pins/tezos-hsm.user-pin");
    let aside = store.path().join("user-pin.aside");
    std::fs::rename(&pin, &aside).unwrap();
    let (kind, message) = store.home.error(&["key", "list"]);
    assert_eq!(kind, "store_damaged", "{message}");
    assert!(message.contains(&pin.display().to_string()), "{message}");
    assert_eq!(token_dirs(store.path()), store.tokens);
    std::fs::rename(&aside, &pin).unwrap();
    assert!(!store.assert_intact("PIN file put back"));

    // PIN files without their token.
    let token = store.path().join("tokens").join(&store.tokens[0]);
    let aside = store.path().join("token.aside");
    std::fs::rename(&token, &aside).unwrap();
    let (kind, message) = store.home.error(&["key", "list"]);
    assert_eq!(kind, "store_damaged", "{message}");
    assert!(message.contains(&pin.display().to_string()), "{message}");
    assert!(token_dirs(store.path()).is_empty(), "no token was created");
    assert!(pin_files(store.path()) == store.pins);
    std::fs::rename(&aside, &token).unwrap();
    assert!(!store.assert_intact("token put back"));
}

#[test]
fn the_store_lock_waits_and_names_its_holder() {
    let store = Store::new();
    // A command that holds the store for about two seconds: its PIN source is slow.
    let pin = store.path().join("pins/tezos-hsm.user-pin");
    let slow = format!("cmd:sleep 2; cat '{}'", pin.display());
    let holder = store.spawn(&["key", "list", "--pin", &slow].map(String::from), &[]);
    let lock = store.path().join("lock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&holder.id().to_string())
    {
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let busy = store.home.run_with(
        &["key", "list", "--json"],
        &[("TEZOS_HSM_LOCK_TIMEOUT", "0.3")],
    );
    let waited = start.elapsed();
    let error = busy.error();
    assert_eq!(error["kind"], "store_busy", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("process {}", holder.id())),
        "{message}"
    );
    assert!(message.contains("key list"), "{message}");
    assert!(message.contains("TEZOS_HSM_LOCK_TIMEOUT"), "{message}");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    // With the default timeout, the next command waits its turn and succeeds.
    let run = store.home.run(&["key", "show", "baker", "--json"]);
    assert!(run.success(), "{}", run.stderr);
    let holder_pid = holder.id();
    assert!(finish(holder).success());
    // Another program holding the lock (a backup under `flock`): no stale pid is blamed.
    let file = std::fs::File::open(&lock).unwrap();
    file.lock().unwrap();
    let error = store
        .home
        .run_with(
            &["key", "list", "--json"],
            &[("TEZOS_HSM_LOCK_TIMEOUT", "0.2")],
        )
        .error();
    assert_eq!(error["kind"], "store_busy", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("another process"), "{message}");
    assert!(!message.contains(&holder_pid.to_string()), "{message}");
    drop(file);
    // A bad timeout is a clear error.
    let bad = store.home.run_with(
        &["key", "list", "--json"],
        &[("TEZOS_HSM_LOCK_TIMEOUT", "soon")],
    );
    assert_eq!(bad.error()["kind"], "config");
}

#[test]
fn token_labels_never_become_file_names() {
    let home = CliHome::new();
    let outside = home.path().join("x.user-pin");
    for label in ["../x", "a/b", "", ".hidden", "x\ny", &"a".repeat(33)] {
        let (kind, message) = home.error(&["token", "init", "--label", label]);
        assert_eq!(kind, "invalid_input", "{label:?}: {message}");
        assert!(!outside.exists(), "{label:?} wrote {}", outside.display());
    }
    for pin in [None, Some("env:HOME")] {
        let mut args = vec!["--token", "../x", "key", "list"];
        args.extend(pin.map(|p| ["--pin", p]).into_iter().flatten());
        let (kind, message) = home.error(&args);
        assert_eq!(kind, "invalid_input", "{pin:?}: {message}");
    }
    assert!(!outside.exists());
    assert!(!home.path().join("x.so-pin").exists());
    // A label of the allowed characters works, up to 32 bytes.
    let label = format!("second_2.{}", "b".repeat(23));
    home.json(&["token", "init", "--label", &label]);
    home.json(&["--token", &label, "key", "list"]);
}

#[test]
fn a_planted_pin_symlink_is_refused_not_followed() {
    let home = CliHome::new();
    let target = home.path().join("precious");
    std::fs::write(&target, b"keep me").unwrap();
    std::fs::create_dir_all(home.path().join("pins")).unwrap();
    std::os::unix::fs::symlink(&target, home.path().join("pins/tezos-hsm.user-pin")).unwrap();
    let run = home.run(&["key", "list", "--json"]);
    assert!(!run.success(), "{}", run.stdout);
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert!(token_dirs(home.path()).is_empty());
}

/// The offset of the user-PIN record in a SoftHSM2 `token.object` (attribute
/// `CKA_VENDOR_DEFINED + 0x5348 + 5`, a byte string): cutting the file there gives the token of
/// a creation killed before `C_InitPIN`.
fn user_pin_record(token_object: &[u8]) -> usize {
    let marker = [0, 0, 0, 0, 0x80, 0, 0x53, 0x4d, 0, 0, 0, 0, 0, 0, 0, 3];
    token_object
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("a user PIN record")
}

/// Moves the PIN files of `tezos-hsm` back into a staging directory, as a creation killed
/// before it published them leaves them.
fn unpublish(home: &Path) {
    let staging = home.join("new-token/tezos-hsm");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("before"), "end\n").unwrap();
    for role in ["so", "user"] {
        std::fs::rename(
            home.join(format!("pins/tezos-hsm.{role}-pin")),
            staging.join(format!("{role}-pin")),
        )
        .unwrap();
    }
}

#[test]
fn an_interrupted_first_creation_is_finished_or_undone() {
    // Killed after the token was complete, before its PINs were published: finished.
    let store = Store::new();
    let pins = store.pins.clone();
    unpublish(store.path());
    let run = store.home.run(&["key", "show", "baker", "--json"]);
    assert!(run.success(), "{}", run.stderr);
    assert!(
        run.stderr.contains("finished creating token 'tezos-hsm'"),
        "{}",
        run.stderr
    );
    assert!(!store.path().join("new-token/tezos-hsm").exists());
    assert_eq!(pin_files(store.path()), pins);
    assert!(!store.assert_intact("published"));

    // Killed between C_InitToken and C_InitPIN: the token without a user PIN is removed and
    // made again.
    let home = CliHome::new();
    home.json(&["key", "list"]);
    let old_pins = pin_files(home.path());
    let old_tokens = token_dirs(home.path());
    let object = home
        .path()
        .join("tokens")
        .join(&old_tokens[0])
        .join("token.object");
    let bytes = std::fs::read(&object).unwrap();
    std::fs::write(&object, &bytes[..user_pin_record(&bytes)]).unwrap();
    std::fs::remove_dir_all(home.path().join("last-good")).unwrap();
    unpublish(home.path());
    let run = home.run(&[
        "key", "generate", "--curve", "p256", "--label", "k", "--json",
    ]);
    assert!(run.success(), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("removed the unfinished token 'tezos-hsm'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("created the development token"),
        "{}",
        run.stderr
    );
    let tokens = token_dirs(home.path());
    assert_eq!(tokens.len(), 1);
    assert_ne!(tokens, old_tokens);
    let new_pins = pin_files(home.path());
    assert_eq!(new_pins.len(), 2);
    assert_ne!(new_pins, old_pins);
    assert!(home.run(&["key", "show", "k"]).success());
}

#[test]
fn a_token_whose_user_pin_was_lost_is_restored_or_refused() {
    let store = Store::new();
    let live = store.token_object();
    let good = std::fs::read(&live).unwrap();
    let cut = &good[..user_pin_record(&good)];
    // Cut right before its user PIN record: the copy has it, so the copy is put back.
    std::fs::write(&live, cut).unwrap();
    let run = store.home.run(&["key", "list", "--json"]);
    assert!(run.success(), "{}", run.stderr);
    assert!(run.stderr.contains("restored"), "{}", run.stderr);
    assert!(!store.assert_intact("user PIN restored"));
    // Without a copy (a store of an older version): an error, never a new token.
    std::fs::remove_dir_all(store.path().join("last-good")).unwrap();
    std::fs::write(&live, cut).unwrap();
    let (kind, message) = store.home.error(&["key", "list"]);
    assert_eq!(kind, "store_damaged", "{message}");
    assert!(message.contains("user PIN was never set"), "{message}");
    assert_eq!(token_dirs(store.path()), store.tokens);
    assert!(pin_files(store.path()) == store.pins);
}

/// The labels of the private keys on the default token of `home`.
fn key_labels(home: &CliHome) -> Vec<String> {
    let keys = home.json(&["key", "list"]);
    let mut labels: Vec<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap().to_string())
        .collect();
    labels.sort();
    labels
}

#[test]
fn concurrent_demos_hold_the_store_until_done_and_leave_one_key_per_label() {
    // Each demo deletes and regenerates its two keys after logging in: if a command let go of
    // the store once logged in, two demos would both find no key and both generate one.
    let home = CliHome::new();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            command_in(home.path(), &["demo", "--json"], &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let run = finish(child);
        assert!(run.success(), "{}\n{}", run.stdout, run.stderr);
    }
    assert_eq!(key_labels(&home), ["demo-p256", "demo-secp256k1"]);
}

#[test]
fn demo_replaces_duplicated_demo_keys() {
    // Two private keys labelled demo-secp256k1 (e.g. made by another PKCS#11 client): the next
    // demo deletes both and works, instead of failing on the duplicate for ever.
    let home = CliHome::new();
    home.json(&["demo"]);
    let pin = std::fs::read_to_string(home.path().join("pins/tezos-hsm.user-pin")).unwrap();
    let output = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", home.path().join("softhsm2.conf"))
        .args(["--module", common::softhsm_module().to_str().unwrap()])
        .args(["--token-label", "tezos-hsm", "--login", "--pin", pin.trim()])
        .args(["--keypairgen", "--key-type", "EC:secp256k1"])
        .args(["--label", "demo-secp256k1", "--id", "0102"])
        .output()
        .expect("pkcs11-tool (Debian package opensc) must be installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        key_labels(&home),
        ["demo-p256", "demo-secp256k1", "demo-secp256k1"]
    );
    home.json(&["demo"]);
    assert_eq!(key_labels(&home), ["demo-p256", "demo-secp256k1"]);
}
