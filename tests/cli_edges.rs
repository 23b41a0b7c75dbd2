//! The edges of the command line: arguments that must not be echoed, errors as JSON, and
//! output to a closed pipe or a full disk.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::process::Stdio;

use common::cli::{command_in, CliHome as Home, CliRun};

/// A value given where a PIN *source* is expected is probably the PIN: the refusal says which
/// forms are accepted and never repeats it, in text or JSON.
#[test]
fn a_pin_given_as_pin_source_is_refused_without_echo() {
    let home = Home::new();
    for option in ["--pin", "--so-pin"] {
        for json in [false, true] {
            let mut args = vec![option, "signer:Passw0rd!", "key", "list"];
            if json {
                args.push("--json");
            }
            let out = home.run(&args);
            assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
            let all = format!("{}{}", out.stdout, out.stderr);
            assert!(
                !all.contains("Passw0rd") && !all.contains("signer:"),
                "the secret is echoed: {all}"
            );
            for form in ["env:VAR", "file:PATH", "cmd:COMMAND", option] {
                assert!(out.stderr.contains(form), "{form} in {}", out.stderr);
            }
            if json {
                assert_eq!(out.error()["kind"], "usage", "{}", out.stderr);
            }
        }
    }
}

/// Argument errors honour `--json` like every other error; `--help` and `--version` do not
/// turn into errors.
#[test]
fn argument_errors_honour_json() {
    let home = Home::new();
    for args in [
        &["key", "lst", "--json"][..],
        &["--json", "key"],
        &["key", "show", "--json"],
        &[
            "key", "generate", "--curve", "secp999", "--label", "k", "--json",
        ],
    ] {
        let out = home.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let error = out.error();
        assert_eq!(error["kind"], "usage", "{args:?}: {}", out.stderr);
        assert!(!error["message"].as_str().unwrap().is_empty());
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "one JSON line: {}",
            out.stderr
        );
    }
    // Without --json, clap's own text.
    let out = home.run(&["key", "lst"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);

    let help = home.run(&["--help", "--json"]);
    assert!(help.success(), "{}", help.stderr);
    assert!(help.stdout.contains("Usage: tezos-hsm"), "{}", help.stdout);
    let version = home.run(&["--version", "--json"]);
    assert!(version.success(), "{}", version.stderr);
    assert!(
        version.stdout.starts_with("tezos-hsm "),
        "{}",
        version.stdout
    );
}

fn finished(output: std::process::Output) -> CliRun {
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `tezos-hsm key list | head -c0`: the reader is gone before anything is written. The command
/// ends quietly (0, or 141 as a process killed by SIGPIPE would), without a panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    let home = Home::new();
    home.json(&["key", "generate", "--curve", "p256", "--label", "piped"]);
    for args in [&["key", "list"][..], &["key", "list", "--json"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = command_in(home.path(), args, &[])
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let out = finished(output);
        assert!(
            out.code == 0 || out.code == 141,
            "{args:?}: exit {}: {}",
            out.code,
            out.stderr
        );
        assert!(
            !out.stderr.contains("panicked") && !out.stderr.contains("backtrace"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr, "", "quietly");
    }
}

/// Output that cannot be written (a full disk) is an error: a non-zero exit and a message on
/// stderr, never a panic or a success that printed nothing.
#[test]
fn a_failed_write_to_stdout_is_an_error() {
    let home = Home::new();
    home.json(&["key", "generate", "--curve", "p256", "--label", "full"]);
    for json in [false, true] {
        let mut args = vec!["key", "show", "full"];
        if json {
            args.push("--json");
        }
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = command_in(home.path(), &args, &[])
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let out = finished(output);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        if json {
            assert_eq!(out.error()["kind"], "io", "{}", out.stderr);
        } else {
            assert!(
                out.stderr.starts_with("error: cannot write the output"),
                "{}",
                out.stderr
            );
        }
    }
}

/// A token compared with itself is trivially "consistent": `cluster check` refuses a token
/// named twice.
#[test]
fn cluster_check_refuses_a_token_named_twice() {
    let home = Home::new();
    home.json(&["token", "init", "--label", "second"]);
    for tokens in ["tezos-hsm,tezos-hsm", "tezos-hsm,second,tezos-hsm"] {
        let (kind, message) = home.error(&["cluster", "check", "--tokens", tokens]);
        assert_eq!(kind, "invalid_input", "{tokens}: {message}");
        assert!(message.contains("'tezos-hsm' twice"), "{message}");
    }
}

softhsm_test!(
    /// Two names that select one token (its label and its serial) are refused as well.
    fn cluster_check_refuses_two_names_of_one_token(token) {
        let serial = token.open().token_info().unwrap().serial;
        let home = Home::new();
        let module = token.module.to_str().unwrap().to_string();
        let conf = std::env::var("SOFTHSM2_CONF").unwrap();
        let tokens = format!("{},serial:{serial}", token.label);
        let out = home.run_with(
            &["--module", &module, "--pin", "env:TEST_PIN", "cluster", "check", "--tokens", &tokens, "--json"],
            &[("SOFTHSM2_CONF", &conf), ("TEST_PIN", common::USER_PIN)],
        );
        let error = out.error();
        assert_eq!(error["kind"], "invalid_input", "{}", out.stderr);
        assert!(error["message"].as_str().unwrap().contains("same token"), "{}", out.stderr);
    }
);

softhsm_test!(
    /// A label made by another tool may hold a newline or an escape sequence: the text output
    /// shows them escaped, so such a label cannot forge a `key list` line or drive the terminal.
    fn labels_with_control_characters_cannot_forge_output(token) {
        use cryptoki::mechanism::Mechanism;
        use cryptoki::object::Attribute;
        use cryptoki_ops::{Curve, EcKeySpec};

        let hsm = token.open();
        hsm.generate_ec_key(&EcKeySpec::new(Curve::P256, "real")).unwrap();
        let forged = "evil\nbaker                p256      tz3Fake  p2pkFake  id 00\u{1b}[2K";
        hsm.with_session(|s| {
            s.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[Attribute::EcParams(Curve::P256.ec_params().to_vec()), Attribute::Token(true), Attribute::Id(vec![0xee; 4]), Attribute::Label(forged.as_bytes().to_vec())],
                &[Attribute::Token(true), Attribute::Private(true), Attribute::Sign(true), Attribute::Id(vec![0xee; 4]), Attribute::Label(forged.as_bytes().to_vec())],
            )
        })
        .unwrap();
        drop(hsm);
        let home = Home::new();
        let module = token.module.to_str().unwrap().to_string();
        let conf = std::env::var("SOFTHSM2_CONF").unwrap();
        let run = |args: &[&str]| {
            let base = ["--module", &module, "--token", &token.label, "--pin", "env:TEST_PIN"];
            home.run_with(&[&base[..], args].concat(), &[("SOFTHSM2_CONF", &conf), ("TEST_PIN", common::USER_PIN)])
        };
        let list = run(&["key", "list"]);
        assert!(list.success(), "{}", list.stderr);
        assert_eq!(list.stdout.lines().count(), 2, "one line per key: {}", list.stdout);
        assert!(!list.stdout.contains('\u{1b}'), "{:?}", list.stdout);
        assert!(list.stdout.contains("evil\\nbaker"), "{}", list.stdout);
        let show = run(&["key", "show", "id:eeeeeeee"]);
        assert!(show.success(), "{}", show.stderr);
        assert_eq!(show.stdout.lines().count(), 7, "{}", show.stdout);
        assert!(!show.stdout.contains('\u{1b}'), "{:?}", show.stdout);
        // JSON keeps the label as it is (escaped by the encoder).
        let json = run(&["key", "list", "--json"]).json();
        assert!(json.as_array().unwrap().iter().any(|k| k["label"] == forged), "{json}");
    }
);

/// A PIN or passphrase that starts with `-` reaches the PIN-source parser (which refuses it
/// without echo) instead of clap, which would print it back as an unexpected argument.
#[test]
fn a_pin_starting_with_a_hyphen_is_refused_without_echo() {
    let home = Home::new();
    let cases: [&[&str]; 5] = [
        &["key", "list", "--pin"],
        &["key", "list", "--so-pin"],
        &["key", "list", "--admin-pin"],
        &["cluster", "ca", "create", "--passphrase"],
        &["cluster", "csr", "sign", "--ca", "ca-dir", "--passphrase"],
    ];
    for case in cases {
        for secret in ["--Passw0rd", "-Secr3t"] {
            for json in [false, true] {
                let mut args = case.to_vec();
                args.push(secret);
                if json {
                    args.push("--json");
                }
                let out = home.run(&args);
                assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
                let all = format!("{}{}", out.stdout, out.stderr);
                assert!(
                    !all.contains("Passw0rd") && !all.contains("Secr3t") && !all.contains("'-S'"),
                    "{args:?}: the secret is echoed: {all}"
                );
                assert!(out.stderr.contains("env:VAR"), "{args:?}: {}", out.stderr);
                if json {
                    assert_eq!(out.error()["kind"], "usage", "{}", out.stderr);
                }
            }
        }
    }
}

/// A FIFO (or any non-regular file) given where a backup or a key value is read fails at once
/// with a clear error, instead of waiting for a writer forever.
#[test]
fn a_fifo_given_as_backup_or_key_value_fails_at_once() {
    let home = Home::new();
    let fifo = home.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["key", "restore", fifo, "--json"],
        vec![
            "wrapkey",
            "import",
            "--label",
            "w",
            "--value-file",
            fifo,
            "--json",
        ],
    ] {
        let started = std::time::Instant::now();
        let out = home.run(&args);
        assert!(!out.success(), "{args:?}: {}", out.stdout);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{args:?} waited on the FIFO"
        );
        let message = out.error()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("FIFO") || message.contains("fifo"),
            "{args:?}: {message}"
        );
    }
}
