//! The HA race: two `tezos-hsm serve` processes, each on a SoftHSM2 token of its own holding the
//! same key (restored from one backup), both on one PostgreSQL (`TEST_DATABASE_URL`, the private
//! cluster scripts/test.sh starts), take conflicting block and attestation requests at the same
//! levels at the same moment. Over 100 contested levels: never two signatures for different
//! bytes at one (kind, level), identical requests answered with the identical signature (P-256 on
//! SoftHSM2 signs with a random nonce, so only the recorded signature returned again can match),
//! every refusal a 409, and everything within a bounded time.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::cli::run_in;
use common::payloads;
use common::serve::{Answer, Served};
use serde_json::Value;
use tezos_keys::{PublicKey, Signature};

/// The ceremony wrapping key's value, as a key-ceremony file holds it (both homes import it).
const WRAP_HEX: &str = "4242424242424242424242424242424242424242424242424242424242424242";
const LEVELS: u32 = 100;
/// The whole race, both servers included, must end within this.
const BOUND: Duration = Duration::from_secs(240);

fn database_url() -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts a private \
             PostgreSQL, or point it at a scratch database"
        ),
    }
}

fn ok(home: &Path, args: &[&str]) -> Value {
    let run = run_in(home, &[&["--json"], args].concat(), &[]);
    assert_eq!(
        run.code, 0,
        "{args:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.json()
}

/// Two local stores (two "hosts"), each with its own token, holding one P-256 key: generated
/// on the first, backed up under the ceremony wrapping key, restored on the second. Returns
/// the key's address.
fn one_key_on_two_tokens(first: &Path, second: &Path) -> String {
    let wrap = first.join("wrap.hex");
    std::fs::write(&wrap, WRAP_HEX).unwrap();
    let wrap = wrap.to_str().unwrap();
    for home in [first, second] {
        let imported = ok(
            home,
            &[
                "wrapkey",
                "import",
                "--label",
                "wrap",
                "--value-file",
                wrap,
                "--trusted",
            ],
        );
        assert_eq!(imported["trusted"], true);
    }
    let key = ok(
        first,
        &[
            "key",
            "generate",
            "--curve",
            "p256",
            "--label",
            "baker",
            "--backupable",
        ],
    );
    let backup = first.join("baker.backup.json");
    let backup = backup.to_str().unwrap();
    ok(
        first,
        &[
            "key",
            "backup",
            "baker",
            "--wrap-key",
            "wrap",
            "--out",
            backup,
        ],
    );
    let restored = ok(second, &["key", "restore", backup]);
    assert_eq!(restored["address"], key["address"]);
    key["address"].as_str().unwrap().to_owned()
}

/// A Tenderbake block header at `level`, round 0, whose predecessor is `variant` (so the bytes
/// differ); its fitness carries the level and round.
fn block(level: u32, variant: u8) -> Vec<u8> {
    let mut b = vec![0x11];
    b.extend_from_slice(&payloads::MAINNET);
    b.extend_from_slice(&level.to_be_bytes());
    b.push(1); // proto
    b.extend_from_slice(&[variant; 32]); // predecessor
    b.extend_from_slice(&[0; 8]); // timestamp
    b.push(4); // validation passes
    b.extend_from_slice(&[0xbb; 32]); // operations hash
    let mut fitness = vec![0, 0, 0, 1, 2, 0, 0, 0, 4];
    fitness.extend_from_slice(&level.to_be_bytes());
    fitness.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4]);
    fitness.extend_from_slice(&0u32.to_be_bytes()); // round
    b.extend_from_slice(&u32::try_from(fitness.len()).unwrap().to_be_bytes());
    b.extend_from_slice(&fitness);
    b.extend_from_slice(&[0xcc; 40]);
    b
}

fn payload(kind: &str, level: u32, variant: u8) -> Vec<u8> {
    match kind {
        "block" => block(level, variant),
        _ => payloads::attestation(level, 0, variant),
    }
}

/// What each server sends at `level`: at odd levels each its own bytes (a conflict), at even
/// levels the same bytes (identical requests).
fn variant(server: usize, level: u32) -> u8 {
    if level % 2 == 1 {
        u8::try_from(server + 1).unwrap()
    } else {
        0
    }
}

/// One answer: which server, the variant sent, the status, the signature if any.
struct Outcome {
    server: usize,
    variant: u8,
    status: u16,
    signature: Option<String>,
    body: String,
}

fn outcome(server: usize, variant: u8, answer: &Answer) -> Outcome {
    let signature = (answer.status == 200)
        .then(|| answer.json()["signature"].as_str().map(str::to_owned))
        .flatten();
    Outcome {
        server,
        variant,
        status: answer.status,
        signature,
        body: answer.body.clone(),
    }
}

#[test]
fn two_servers_on_one_database_never_double_sign_over_100_contested_levels() {
    let url = database_url();
    let started = Instant::now();
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let address = one_key_on_two_tokens(homes[0].path(), homes[1].path());
    let env = [("TEZOS_HSM_WATERMARK_DB", url.as_str())];
    let args = ["--key", "baker", "--allow", "block,attestation"];
    let servers: Vec<Served> = homes
        .iter()
        .map(|home| Served::start(home.path(), &args, &env).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let public_key: PublicKey = {
        let keys: Vec<String> = servers
            .iter()
            .map(|s| {
                let answer = s.get(&format!("/keys/{address}"));
                assert_eq!(answer.status, 200, "{}", answer.body);
                answer.json()["public_key"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(keys[0], keys[1], "one key on both tokens");
        keys[0].parse().unwrap()
    };

    // Four clients, one per (server, kind), meet at a barrier before every level.
    let barrier = Barrier::new(4);
    let mut results: BTreeMap<(&str, u32), Vec<Outcome>> = BTreeMap::new();
    std::thread::scope(|s| {
        let mut clients = Vec::new();
        for (server, served) in servers.iter().enumerate() {
            for kind in ["block", "attestation"] {
                let (barrier, address) = (&barrier, &address);
                clients.push(s.spawn(move || {
                    let mut outcomes = Vec::new();
                    for level in 1..=LEVELS {
                        barrier.wait();
                        let v = variant(server, level);
                        let answer = served.sign(address, &payload(kind, level, v));
                        outcomes.push(((kind, level), outcome(server, v, &answer)));
                    }
                    outcomes
                }));
            }
        }
        for client in clients {
            for (at, outcome) in client.join().unwrap() {
                results.entry(at).or_default().push(outcome);
            }
        }
    });

    let mut problems = Vec::new();
    let (mut conflicts, mut identical) = (0, 0);
    for ((kind, level), outcomes) in &results {
        let signed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 200).collect();
        for o in outcomes
            .iter()
            .filter(|o| o.status != 200 && o.status != 409)
        {
            problems.push(format!(
                "{kind} {level}: server {} answered {} {}",
                o.server, o.status, o.body
            ));
        }
        for o in &signed {
            let signature: Signature = o.signature.as_deref().unwrap().parse().unwrap();
            if tezos_keys::verify(&public_key, &payload(kind, *level, o.variant), &signature)
                .is_err()
            {
                problems.push(format!("{kind} {level}: a signature for other bytes"));
            }
        }
        let mut signatures: Vec<&str> = signed
            .iter()
            .filter_map(|o| o.signature.as_deref())
            .collect();
        signatures.sort_unstable();
        signatures.dedup();
        if level % 2 == 1 {
            conflicts += 1;
            if signed.len() != 1 {
                problems.push(format!(
                    "{kind} {level}: {} signatures for different bytes (a double signature)",
                    signed.len()
                ));
            }
        } else {
            identical += 1;
            if signed.len() != 2 || signatures.len() != 1 {
                problems.push(format!(
                    "{kind} {level}: identical requests got {} answers with {} distinct signatures",
                    signed.len(),
                    signatures.len()
                ));
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "2 servers × {LEVELS} levels × 2 kinds on one PostgreSQL: {conflicts} conflicting and \
         {identical} identical (kind, level) pairs, {} problems, {elapsed:?}",
        problems.len()
    );
    assert_eq!(problems, [] as [String; 0]);
    assert_eq!(results.len(), 2 * LEVELS as usize);
    assert!(elapsed < BOUND, "the race took {elapsed:?}");
}
