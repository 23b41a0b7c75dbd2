//! Moving from octez-signer without a double-bake window: `watermark import --from
//! octez-signer DIR`, `watermark set` and `watermark show`, then `sign` refusing at and below
//! the imported heights and signing above them.
//!
//! The octez-signer files are written here in the format of Octez `src/bin_signer/handler.ml`
//! @f6578813 (`High_watermark.encoding`, JSON as `Data_encoding.Json.to_string ~minify:false`
//! prints it) under the names the wallet gives them (`<kind>_high_watermarks`,
//! `src/lib_client_base_unix/client_context_unix.ml`@82155fa5). No such file exists in the
//! Octez sources or tests to copy byte for byte: `tezt/tests/signer_test.ml` reads the ones a
//! live signer wrote.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::cli::CliHome;
use common::payloads;
use serde_json::Value;
use tezos_keys::{Curve, Signature};

const MAINNET: &str = "NetXdQprcVkpaWU";

/// A home with a P-256 key `baker`; returns it and the key's address.
fn home_with_baker() -> (CliHome, String) {
    let home = CliHome::new();
    let key = home.json(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    let address = key["address"].as_str().unwrap().to_owned();
    (home, address)
}

/// One octez-signer mark, as `High_watermark.encoding` prints it.
fn octez_mark(level: i64, round: Option<i64>, hash: &[u8; 32], signature: Option<&str>) -> String {
    let mut fields = vec![format!("\"level\": {level}")];
    if let Some(round) = round {
        fields.push(format!("\"round\": {round}"));
    }
    fields.push(format!("\"hash\": \"{}\"", hex::encode(hash)));
    if let Some(signature) = signature {
        fields.push(format!("\"signature\": \"{signature}\""));
    }
    format!("{{ {} }}", fields.join(",\n          "))
}

/// A file of one chain and one key.
fn octez_file(chain: &str, key: &str, mark: &str) -> String {
    format!("{{ \"{chain}\":\n    {{ \"{key}\":\n        {mark} }} }}\n")
}

fn sign(home: &CliHome, payload: &[u8]) -> Result<String, (String, String)> {
    let run = home.run(&[
        "sign",
        "baker",
        &hex::encode(payload),
        "--allow",
        "0x11,0x12,0x13",
        "--json",
    ]);
    if run.success() {
        Ok(run.json()["signature"].as_str().unwrap().to_owned())
    } else {
        let e = run.error();
        Err((
            e["kind"].as_str().unwrap().to_owned(),
            e["message"].as_str().unwrap().to_owned(),
        ))
    }
}

fn import(home: &CliHome, dir: &Path) -> Value {
    home.json(&[
        "watermark",
        "import",
        "--from",
        "octez-signer",
        dir.to_str().unwrap(),
    ])
}

fn preattestation(level: u32, round: u32, tag: u8) -> Vec<u8> {
    let mut p = payloads::attestation(level, round, tag);
    p[0] = 0x12;
    p[37] = 0x14;
    p
}

#[test]
fn imported_heights_are_refused_at_and_below_and_signed_above() {
    let (home, baker) = home_with_baker();
    let octez = tempfile::tempdir().unwrap();
    // The attestation octez-signer signed last, with its signature: the very same bytes get
    // that signature back; a preattestation mark without signature (older Octez): a floor.
    let signed = payloads::attestation(1000, 2, 0xaa);
    let octez_signature = Signature::new(Curve::P256, [7; 64]).to_string();
    std::fs::write(
        octez.path().join("attestation_high_watermarks"),
        octez_file(
            MAINNET,
            &baker,
            &octez_mark(
                1000,
                Some(2),
                &tezos_keys::payload::digest(&signed),
                Some(&octez_signature),
            ),
        ),
    )
    .unwrap();
    std::fs::write(
        octez.path().join("preattestation_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(1000, Some(3), &[5; 32], None)),
    )
    .unwrap();
    // A tz4 key in the block file: skipped and reported.
    std::fs::write(
        octez.path().join("block_high_watermarks"),
        octez_file(
            MAINNET,
            "tz4HVR6aty9KwsQFHh81C1G7gBdhxT8kuytm",
            &octez_mark(5, Some(0), &[0; 32], None),
        ),
    )
    .unwrap();

    let out = import(&home, octez.path());
    assert_eq!(out["from"], "octez-signer");
    let files: Vec<_> = out["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "block_high_watermarks",
            "preattestation_high_watermarks",
            "attestation_high_watermarks"
        ]
    );
    let marks = out["marks"].as_array().unwrap();
    assert_eq!(marks.len(), 2, "{out}");
    for m in marks {
        assert_eq!(
            (m["key"].as_str().unwrap(), m["action"].as_str().unwrap()),
            (baker.as_str(), "created")
        );
    }
    assert_eq!(
        out["skipped"][0]["key"],
        "tz4HVR6aty9KwsQFHh81C1G7gBdhxT8kuytm"
    );

    // Attestations: the recorded bytes replay octez-signer's signature; other bytes at that
    // height, and anything lower, are refused; higher is signed.
    assert_eq!(sign(&home, &signed).unwrap(), octez_signature);
    for refused in [
        payloads::attestation(1000, 2, 0xbb),
        payloads::attestation(1000, 1, 0xaa),
        payloads::attestation(999, 9, 0xaa),
    ] {
        assert_eq!(sign(&home, &refused).unwrap_err().0, "double_sign");
    }
    sign(&home, &payloads::attestation(1000, 3, 0xbb)).unwrap();
    // Preattestations: a floor refuses its own height, even for the same bytes.
    for refused in [
        preattestation(1000, 3, 0xaa),
        preattestation(1000, 3, 0xaa),
        preattestation(1000, 0, 1),
    ] {
        assert_eq!(sign(&home, &refused).unwrap_err().0, "double_sign");
    }
    sign(&home, &preattestation(1000, 4, 1)).unwrap();
    sign(&home, &preattestation(1001, 0, 1)).unwrap();

    // Importing again changes nothing: the records are above now, and never lowered.
    let again = import(&home, octez.path());
    let actions: Vec<_> = again["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["kept", "kept"]);
    let shown = home.json(&["watermark", "show", "--key", "baker"]);
    let recorded: Vec<_> = shown["keys"][0]["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["level"].as_u64().unwrap(),
                m["round"].as_u64().unwrap(),
                m["signature"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            ("preattestation", 1001, 0, true),
            ("attestation", 1000, 3, true)
        ]
    );
}

#[test]
fn legacy_file_names_feed_the_attestation_records() {
    let (home, baker) = home_with_baker();
    let octez = tempfile::tempdir().unwrap();
    // Octez before the attestation renaming wrote these two names.
    std::fs::write(
        octez.path().join("endorsement_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(700, Some(0), &[1; 32], None)),
    )
    .unwrap();
    std::fs::write(
        octez.path().join("preendorsement_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(701, None, &[1; 32], None)),
    )
    .unwrap();
    let out = import(&home, octez.path());
    assert_eq!(out["marks"].as_array().unwrap().len(), 2);
    assert_eq!(
        sign(&home, &payloads::attestation(700, 0, 9))
            .unwrap_err()
            .0,
        "double_sign"
    );
    sign(&home, &payloads::attestation(700, 1, 9)).unwrap();
    // A mark without round (legacy) refuses the whole level.
    assert_eq!(
        sign(&home, &preattestation(701, 7, 9)).unwrap_err().0,
        "double_sign"
    );
    sign(&home, &preattestation(702, 0, 9)).unwrap();
}

#[test]
fn an_import_never_lowers_a_record() {
    let (home, baker) = home_with_baker();
    sign(&home, &payloads::attestation(2000, 0, 1)).unwrap();
    let octez = tempfile::tempdir().unwrap();
    std::fs::write(
        octez.path().join("attestation_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(1500, Some(0), &[1; 32], None)),
    )
    .unwrap();
    let out = import(&home, octez.path());
    assert_eq!(out["marks"][0]["action"], "kept");
    assert_eq!(out["marks"][0]["at"]["level"], 2000);
    sign(&home, &payloads::attestation(2001, 0, 1)).unwrap();
}

/// Each row: the attestation file's text (`KEY` replaced by the key's address), and what the
/// message must say. Nothing may be written, not even from the valid block file beside it.
#[test]
fn malformed_files_are_refused_naming_file_and_field() {
    let hash = "00".repeat(32);
    let rows: Vec<(String, &str)> = vec![
        ("{ \"NetXdQprcVkpaWU\": ".into(), "attestation_high_watermarks: not valid JSON"),
        ("[1, 2]".into(), "attestation_high_watermarks: expected a JSON object of chain ids"),
        (format!("{{ \"NetXdQprcVkpaWV\": {{ \"KEY\": {{ \"level\": 1, \"hash\": \"{hash}\" }} }} }}"), "chain id \"NetXdQprcVkpaWV\""),
        (format!("{{ \"{MAINNET}\": {{ \"tz3cQVDon3tDagBKihqTVxKdy45WD25uyckW\": {{ \"level\": 1, \"hash\": \"{hash}\" }} }} }}"), "not a key hash"),
        (format!("{{ \"{MAINNET}\": {{ \"KEY\": {{ \"level\": -1, \"hash\": \"{hash}\" }} }} }}"), "field level: expected an integer from 0 to 2147483647, got -1"),
        (format!("{{ \"{MAINNET}\": {{ \"KEY\": {{ \"level\": 1, \"round\": \"2\", \"hash\": \"{hash}\" }} }} }}"), "field round"),
        (format!("{{ \"{MAINNET}\": {{ \"KEY\": {{ \"hash\": \"{hash}\" }} }} }}"), "field level is missing"),
        (format!("{{ \"{MAINNET}\": {{ \"KEY\": {{ \"level\": 1, \"hash\": \"abcd\" }} }} }}"), "field hash: expected 64 hex digits"),
        (format!("{{ \"{MAINNET}\": {{ \"KEY\": {{ \"level\": 1 }} }} }}"), "field hash is missing"),
        (format!("{{ \"{MAINNET}\": {{ \"KEY\": {{ \"level\": 1, \"hash\": \"{hash}\", \"height\": 3 }} }} }}"), "unknown field \"height\""),
        (
            format!(
                "{{ \"{MAINNET}\": {{ \"KEY\": {{ \"level\": 1, \"hash\": \"{hash}\", \"signature\": \"{}\" }} }} }}",
                Signature::new(Curve::Ed25519, [1; 64])
            ),
            "field signature",
        ),
    ];
    let (home, baker) = home_with_baker();
    let octez = tempfile::tempdir().unwrap();
    std::fs::write(
        octez.path().join("block_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(9000, Some(0), &[1; 32], None)),
    )
    .unwrap();
    for (text, expected) in rows {
        std::fs::write(
            octez.path().join("attestation_high_watermarks"),
            text.replace("KEY", &baker),
        )
        .unwrap();
        let (kind, message) = home.error(&[
            "watermark",
            "import",
            "--from",
            "octez-signer",
            octez.path().to_str().unwrap(),
        ]);
        assert_eq!(kind, "watermark_import_invalid", "{message}");
        assert!(
            message.contains(expected),
            "expected {expected:?} in: {message}"
        );
        assert!(
            message.starts_with("attestation_high_watermarks"),
            "{message}"
        );
    }
    // Nothing was imported from the valid block file.
    let shown = home.json(&["watermark", "show", "--key", &baker]);
    assert_eq!(shown["keys"][0]["marks"], Value::Array(vec![]));
    // A directory without any file, and no directory at all.
    let empty = tempfile::tempdir().unwrap();
    let (kind, message) = home.error(&[
        "watermark",
        "import",
        "--from",
        "octez-signer",
        empty.path().to_str().unwrap(),
    ]);
    assert_eq!(kind, "watermark_import_invalid");
    assert!(message.contains("no high-watermark file"), "{message}");
    let (_, message) = home.error(&[
        "watermark",
        "import",
        "--from",
        "octez-signer",
        "/nonexistent/dir",
    ]);
    assert!(message.contains("is not a directory"), "{message}");
    // A FIFO is never waited on.
    #[cfg(unix)]
    {
        let fifo = octez.path().join("attestation_high_watermarks");
        std::fs::remove_file(&fifo).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let (kind, message) = home.error(&[
            "watermark",
            "import",
            "--from",
            "octez-signer",
            octez.path().to_str().unwrap(),
        ]);
        assert_eq!(kind, "watermark_import_invalid");
        assert!(message.contains("attestation_high_watermarks"), "{message}");
    }
}

#[test]
fn set_raises_a_floor_and_never_lowers() {
    let (home, baker) = home_with_baker();
    let set = |key: &str, level: &str, round: Option<&str>| {
        let mut args = vec![
            "watermark",
            "set",
            "--key",
            key,
            "--chain",
            MAINNET,
            "--kind",
            "attestation",
            "--level",
            level,
        ];
        if let Some(round) = round {
            args.extend(["--round", round]);
        }
        home.run(&[args.as_slice(), &["--json"]].concat())
    };
    let out = set("baker", "300", Some("1"));
    assert!(out.success(), "{}", out.stderr);
    let out = out.json();
    assert_eq!(
        (out["label"].as_str(), out["key"].as_str()),
        (Some("baker"), Some(baker.as_str()))
    );
    assert_eq!(out["previous"], Value::Null);
    assert_eq!(
        sign(&home, &payloads::attestation(300, 1, 1))
            .unwrap_err()
            .0,
        "double_sign"
    );
    sign(&home, &payloads::attestation(300, 2, 1)).unwrap();
    // Lower, or equal to what was signed: refused, nothing changed.
    for (level, round) in [("300", Some("2")), ("299", None), ("300", Some("0"))] {
        let run = set(&baker, level, round);
        assert_eq!(
            run.error()["kind"],
            "watermark_not_raised",
            "{level} {round:?}"
        );
    }
    assert_eq!(
        sign(&home, &payloads::attestation(300, 2, 1)).unwrap(),
        sign(&home, &payloads::attestation(300, 2, 1)).unwrap()
    );
    // Without --round, the whole level: every round of 301 is refused.
    let out = set(&baker, "301", None);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.json()["previous"]["round"], 2);
    assert_eq!(
        sign(&home, &payloads::attestation(301, 5, 1))
            .unwrap_err()
            .0,
        "double_sign"
    );
    sign(&home, &payloads::attestation(302, 0, 1)).unwrap();
    // A whole level is not above a round of that level already recorded (compared by level).
    assert_eq!(
        set(&baker, "302", None).error()["kind"],
        "watermark_not_raised"
    );
    // Bad arguments.
    let (kind, _) = home.error(&[
        "watermark",
        "set",
        "--key",
        "baker",
        "--chain",
        MAINNET,
        "--kind",
        "endorsement",
        "--level",
        "1",
    ]);
    assert_eq!(kind, "invalid_input");
    let (kind, _) = home.error(&[
        "watermark",
        "set",
        "--key",
        "nobody",
        "--chain",
        MAINNET,
        "--kind",
        "block",
        "--level",
        "1",
    ]);
    assert_eq!(kind, "key_not_found");
    // Text outputs.
    let text = home.run(&["watermark", "show"]);
    assert!(text.success(), "{}", text.stderr);
    assert!(
        text.stdout.contains(&format!("{baker} (baker)")),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("302 round 0"), "{}", text.stdout);
}

/// `import` and `sign` at once, in two processes: a signer signs levels 1..=40 in order while
/// an import sets a floor at 20. Whatever the interleaving, the signed levels are 1..=j then
/// 21..=40 (those between refused), and the import raised the record only if it came first.
#[test]
fn import_and_sign_at_once_never_lower_or_tear_the_record() {
    let (home, baker) = home_with_baker();
    let home = Arc::new(home);
    let octez = tempfile::tempdir().unwrap();
    std::fs::write(
        octez.path().join("attestation_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(20, Some(0), &[1; 32], None)),
    )
    .unwrap();
    let progress = Arc::new(AtomicU32::new(0));
    let signer = {
        let (home, progress) = (Arc::clone(&home), Arc::clone(&progress));
        std::thread::spawn(move || {
            (1..=40u32)
                .map(|level| {
                    let ok = sign(&home, &payloads::attestation(level, 0, 1)).map_err(|e| e.0);
                    progress.store(level, Ordering::SeqCst);
                    (level, ok)
                })
                .collect::<Vec<_>>()
        })
    };
    while progress.load(Ordering::SeqCst) < 5 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = import(&home, octez.path());
    let results = signer.join().unwrap();
    let refused: Vec<u32> = results
        .iter()
        .filter_map(|(level, r)| match r {
            Ok(_) => None,
            Err(kind) => {
                assert_eq!(kind, "double_sign", "level {level}");
                Some(*level)
            }
        })
        .collect();
    let j = results.iter().take_while(|(_, r)| r.is_ok()).count();
    let j = u32::try_from(j).unwrap();
    assert!(j >= 5, "signed before the import: {j}");
    assert_eq!(refused, (j + 1..=20).collect::<Vec<_>>(), "{results:?}");
    let action = out["marks"][0]["action"].as_str().unwrap();
    assert_eq!(action == "kept", j >= 20, "{out}");
    let shown = home.json(&["watermark", "show", "--key", &baker]);
    assert_eq!(shown["keys"][0]["marks"][0]["level"], 40);
}

/// With `--watermark-db`, the import and the floors go to PostgreSQL (the private cluster of
/// scripts/test.sh, `TEST_DATABASE_URL`), and `sign` through the database refuses them.
#[test]
fn import_and_set_write_to_the_postgresql_store() {
    let url = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts a private PostgreSQL"
        ),
    };
    let (home, baker) = home_with_baker();
    let db = [("TEZOS_HSM_WATERMARK_DB", url.as_str())];
    let octez = tempfile::tempdir().unwrap();
    std::fs::write(
        octez.path().join("attestation_high_watermarks"),
        octez_file(MAINNET, &baker, &octez_mark(800, Some(1), &[3; 32], None)),
    )
    .unwrap();
    let dir = octez.path().to_str().unwrap();
    let run = home.run_with(
        &[
            "watermark",
            "import",
            "--from",
            "octez-signer",
            dir,
            "--json",
        ],
        &db,
    );
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(run.json()["marks"][0]["action"], "created");
    let run = home.run_with(
        &[
            "watermark",
            "set",
            "--key",
            &baker,
            "--chain",
            MAINNET,
            "--kind",
            "block",
            "--level",
            "900",
            "--json",
        ],
        &db,
    );
    assert!(run.success(), "{}", run.stderr);
    let sign_db = |payload: &[u8]| {
        home.run_with(
            &[
                "sign",
                "baker",
                &hex::encode(payload),
                "--allow",
                "0x11,0x13",
                "--json",
            ],
            &db,
        )
    };
    assert_eq!(
        sign_db(&payloads::attestation(800, 1, 1)).error()["kind"],
        "double_sign"
    );
    assert!(sign_db(&payloads::attestation(800, 2, 1)).success());
    // Nothing went to the file store: signing there is not refused.
    sign(&home, &payloads::attestation(800, 1, 1)).unwrap();
    let shown = home.run_with(&["watermark", "show", "--key", &baker, "--json"], &db);
    let kinds: Vec<_> = shown.json()["keys"][0]["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["level"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("block".to_owned(), 900), ("attestation".to_owned(), 800)]
    );
}
