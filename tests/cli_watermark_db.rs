//! `--watermark-db`: `tezos-hsm sign` keeps its double-signing records in PostgreSQL (the
//! private cluster scripts/test.sh starts, `TEST_DATABASE_URL`), and a database that cannot
//! be reached stops consensus signing with an error that never shows the password.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::cli::CliHome;
use common::payloads;

fn database_url() -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts a private \
             PostgreSQL, or point it at a scratch database"
        ),
    }
}

fn attestation(level: u32, tag: u8) -> String {
    hex::encode(payloads::attestation(level, 0, tag))
}

#[test]
fn sign_keeps_its_records_in_the_database_not_the_directory() {
    let url = database_url();
    let home = CliHome::new();
    home.json(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    let db = [("TEZOS_HSM_WATERMARK_DB", url.as_str())];
    let sign = |payload: &str, dir: Option<&str>| {
        let mut args = vec!["sign", "baker", payload, "--allow", "0x13", "--json"];
        if let Some(dir) = dir {
            args.extend(["--watermark-dir", dir]);
        }
        home.run_with(&args, &db)
    };
    let first = sign(&attestation(7, 1), None);
    assert!(first.success(), "{}", first.stderr);
    let signature = first.json()["signature"].as_str().unwrap().to_owned();
    // The same bytes: the recorded signature (P-256 on SoftHSM2 signs with a random nonce).
    let again = sign(&attestation(7, 1), None);
    assert_eq!(again.json()["signature"], signature.as_str());
    // Other bytes at that level, even with an empty directory given: the database refuses.
    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let refused = sign(&attestation(7, 2), empty.to_str());
    assert_eq!(refused.error()["kind"], "double_sign", "{}", refused.stderr);
    assert!(
        std::fs::read_dir(home.path().join("watermarks"))
            .unwrap()
            .next()
            .is_none(),
        "nothing was written to the file store"
    );
}

#[test]
fn an_unreachable_database_refuses_consensus_signatures_and_hides_the_password() {
    let home = CliHome::new();
    home.json(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://signer:Sup3r-S3cret@127.0.0.1:{port}/hwm");
    let run = home.run_with(
        &[
            "sign",
            "baker",
            &attestation(1, 1),
            "--allow",
            "0x13",
            "--json",
        ],
        &[("TEZOS_HSM_WATERMARK_DB", &url)],
    );
    assert_ne!(run.code, 0);
    assert_eq!(
        run.error()["kind"],
        "watermark_db_unavailable",
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing signed: {}", run.stdout);
    assert!(run
        .stderr
        .contains(&format!("postgres://signer@127.0.0.1:{port}/hwm")));
    assert!(!run.stderr.contains("Sup3r-S3cret"), "{}", run.stderr);
    // Nor does --help show it, from the environment.
    let help = home.run_with(&["sign", "--help"], &[("TEZOS_HSM_WATERMARK_DB", &url)]);
    assert!(help.stdout.contains("--watermark-db"), "{}", help.stdout);
    assert!(!help.stdout.contains("Sup3r-S3cret"), "{}", help.stdout);
}
