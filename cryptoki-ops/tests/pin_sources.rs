//! PIN sources: bounded in time and size, never echoing what they were given (issue 12 item 4).
//! No token needed: these only read PINs.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cryptoki_ops::secrecy::ExposeSecret;
use cryptoki_ops::{Error, HsmConfig, PinSource};

/// Runs `f` on a thread and fails the test if it takes longer than `limit` (instead of hanging).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: it hangs"))
}

fn private_file(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Whether the process is gone (or a zombie nobody reaps, as orphans in a container can be).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z'),
    }
}

#[test]
fn a_pin_command_that_hangs_is_killed_at_its_deadline_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // A grandchild of ours (sh forks sleep) holds the output pipe open: it must die too.
    let command = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
    let started = Instant::now();
    let err = within(Duration::from_secs(20), move || {
        PinSource::Command(command)
            .resolve_within(Duration::from_secs(1))
            .unwrap_err()
    });
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(matches!(err, Error::PinSource { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("did not finish within 1s") && message.contains("PIN timeout"),
        "{message}"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !dead(pid) {
        assert!(
            Instant::now() < deadline,
            "the command's child {pid} survived the deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_default_deadline_is_thirty_seconds_and_configurable() {
    assert_eq!(
        cryptoki_ops::pin::DEFAULT_PIN_COMMAND_TIMEOUT,
        Duration::from_secs(30)
    );
    let config = HsmConfig::from_lookup(|name| match name {
        "PKCS11_PIN_SOURCE" => Some("cmd:true".into()),
        "PKCS11_PIN_TIMEOUT" => Some("5".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.pin_timeout, Duration::from_secs(5));
    let err = HsmConfig::from_lookup(|name| (name == "PKCS11_PIN_TIMEOUT").then(|| "soon".into()))
        .unwrap_err();
    assert!(err.to_string().contains("PKCS11_PIN_TIMEOUT"), "{err}");
}

#[test]
fn a_pin_command_that_never_stops_printing_is_stopped_at_4_kib() {
    let started = Instant::now();
    let err = within(Duration::from_secs(20), || {
        PinSource::Command("yes".into()).resolve().unwrap_err()
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::PinSource { .. }), "{err}");
    assert!(err.to_string().contains("more than 4096 bytes"), "{err}");
    // Just under the cap is fine: the first line is the PIN.
    let pin =
        PinSource::Command("printf 'pin-1234\\n'; head -c 4000 /dev/zero | tr '\\0' x".into())
            .resolve()
            .unwrap();
    assert_eq!(pin.expose_secret(), "pin-1234");
}

#[test]
fn a_failing_pin_command_does_not_echo_its_output() {
    let err = PinSource::Command("echo Secret-PIN-42; echo 'no such parameter' >&2; exit 3".into())
        .resolve()
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(message.contains("no such parameter"), "{message}");
    assert!(
        !message.contains("Secret-PIN-42"),
        "the PIN leaked: {message}"
    );
}

#[test]
fn a_fifo_as_pin_file_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pin.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let source = PinSource::File(fifo);
    let err = within(Duration::from_secs(10), move || {
        source.resolve().unwrap_err()
    });
    assert!(matches!(err, Error::PinSource { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("not a regular file (it is a FIFO)"),
        "{err}"
    );
    // A directory too.
    let err = PinSource::File(dir.path().to_path_buf())
        .resolve()
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_pin_file_larger_than_4_kib_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    let mut contents = b"Secret-PIN-42\n".to_vec();
    contents.resize(5000, b'x');
    private_file(&big, &contents);
    let err = PinSource::File(big).resolve().unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(
        message.contains("5000 bytes") && message.contains("4096"),
        "{message}"
    );
    assert!(!message.contains("Secret-PIN-42"), "{message}");
    let small = dir.path().join("small");
    private_file(&small, b"Secret-PIN-42\n");
    assert_eq!(
        PinSource::File(small).resolve().unwrap().expose_secret(),
        "Secret-PIN-42"
    );
}

#[test]
fn parsing_a_pin_source_never_echoes_the_text() {
    // The mistake the design anticipates: a PIN (CloudHSM: user:password) where its source goes.
    for text in [
        "signer:Passw0rd!",
        "env:signer:Passw0rd!",
        "env:Passw0rd!",
        "Passw0rd!",
        "env:",
        "file:",
        "cmd:  ",
        "env:1Passw0rd",
    ] {
        let err = text.parse::<PinSource>().unwrap_err();
        let message = format!("{err} {err:?}");
        assert!(
            !message.contains("Passw0rd"),
            "{text:?} was echoed: {message}"
        );
        assert_eq!(err.kind(), "invalid_input");
        assert!(
            message.contains("e.g."),
            "the error says what is expected: {message}"
        );
    }
    assert_eq!(
        "env:TEZOS_HSM_PIN".parse::<PinSource>().unwrap(),
        PinSource::Env("TEZOS_HSM_PIN".into())
    );
    assert_eq!(
        "env:_pin2".parse::<PinSource>().unwrap(),
        PinSource::Env("_pin2".into())
    );
}

#[test]
fn a_pin_command_is_named_by_its_program_only() {
    // An assignment before the program (`cmd:HSM_PASS=s3cret helper`) or an argument can hold
    // a secret: neither may reach a message about the source.
    let source: PinSource = "cmd:HSM_PASS=Secr3t-Assign fetch-pin --password Secr3t-Arg"
        .parse()
        .unwrap();
    let shown = format!("{source} {source:?}");
    assert!(shown.contains("fetch-pin"), "{shown}");
    assert!(!shown.contains("Secr3t"), "{shown}");
    let err = source.resolve().unwrap_err().to_string();
    assert!(!err.contains("Secr3t"), "{err}");
}
