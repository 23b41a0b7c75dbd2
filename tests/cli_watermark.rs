//! The double-signing guard of `tezos-hsm sign` across processes, and the watermark directory:
//! never created by `sign`, created by `watermark init`, `key generate` and `key restore`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Barrier};

use common::cli::{run_in, CliHome, CliRun};
use common::payloads;
use tezos_keys::{PublicKey, Signature};

fn attestation(level: u32, tag: u8) -> String {
    hex::encode(payloads::attestation(level, 0, tag))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn sign_never_creates_the_watermark_directory() {
    let home = CliHome::new();
    let default_dir = home.path().join("watermarks");
    home.json(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    assert!(default_dir.is_dir(), "key generate creates the default one");

    let missing = home.path().join("elsewhere");
    let sign = |dir: &Path, level: u32| {
        home.run(&[
            "sign",
            "baker",
            &attestation(level, 1),
            "--allow",
            "0x13",
            "--watermark-dir",
            dir.to_str().unwrap(),
            "--json",
        ])
    };
    let run = sign(&missing, 1);
    assert_ne!(run.code, 0);
    let error = run.error();
    assert_eq!(error["kind"], "watermark_store_missing", "{}", run.stderr);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(missing.to_str().unwrap()), "{message}");
    // The fix names the directory given, so it creates that one, not the default.
    assert!(
        message.contains(&format!(
            "tezos-hsm --watermark-dir {} watermark init",
            missing.display()
        )),
        "{message}"
    );
    assert!(!missing.exists(), "sign created the directory");

    // `watermark init` creates it, owner-only, and may run again.
    for _ in 0..2 {
        let out = home.json(&[
            "watermark",
            "init",
            "--watermark-dir",
            missing.to_str().unwrap(),
        ]);
        assert_eq!(out["dir"], missing.to_str().unwrap());
    }
    #[cfg(unix)]
    assert_eq!(mode(&missing), 0o700);
    let run = sign(&missing, 1);
    assert!(run.success(), "{}", run.stderr);

    // A directory others can write is refused, naming the fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o777)).unwrap();
        let run = sign(&missing, 2);
        let error = run.error();
        assert_eq!(error["kind"], "watermark_store_unsafe", "{}", run.stderr);
        assert!(error["message"].as_str().unwrap().contains("chmod 700"));
        let (kind, _) = home.error(&[
            "watermark",
            "init",
            "--watermark-dir",
            missing.to_str().unwrap(),
        ]);
        assert_eq!(kind, "watermark_store_unsafe");
        assert_eq!(
            mode(&missing),
            0o777,
            "never changed behind the operator's back"
        );
    }
}

/// Runs `tezos-hsm` in module mode on the harness's SoftHSM2 token.
struct ModuleCli {
    home: CliHome,
    module: String,
    conf: String,
    watermarks: String,
}

impl ModuleCli {
    fn new(token: &common::TestToken) -> Self {
        let home = CliHome::new();
        let watermarks = home.path().join("watermarks");
        Self {
            module: token.module.to_str().unwrap().to_owned(),
            conf: std::env::var("SOFTHSM2_CONF").unwrap(),
            watermarks: watermarks.to_str().unwrap().to_owned(),
            home,
        }
    }

    fn run(&self, args: &[&str]) -> CliRun {
        let base = [
            "--module",
            &self.module,
            "--token",
            common::TOKEN_LABEL,
            "--watermark-dir",
            &self.watermarks,
            "--json",
        ];
        run_in(
            self.home.path(),
            &[&base[..], args].concat(),
            &[
                ("SOFTHSM2_CONF", &self.conf),
                ("TEZOS_HSM_PIN", common::USER_PIN),
            ],
        )
    }

    /// Signs an attestation; `Some(signature)`, `None` if refused as a double signature.
    /// Other failures (SoftHSM2's transient errors while another process rewrites its files)
    /// are retried a few times.
    fn sign(&self, level: u32, tag: u8) -> Option<String> {
        let payload = attestation(level, tag);
        let mut last = String::new();
        for _ in 0..5 {
            let run = self.run(&["sign", "baker", &payload, "--allow", "0x13"]);
            if run.success() {
                return Some(run.json()["signature"].as_str().unwrap().to_owned());
            }
            if run.error()["kind"] == "double_sign" {
                return None;
            }
            last = run.stderr;
        }
        panic!("level {level} tag {tag}: {last}");
    }
}

/// `level → tag → signatures returned`.
type Signed = BTreeMap<u32, BTreeMap<u8, BTreeSet<String>>>;

/// Runs `workers` threads, each starting one `sign` process per step at the same moment as
/// the others; `step(worker, i)` says what to sign.
fn race(cli: &Arc<ModuleCli>, workers: u8, steps: u32, step: fn(u8, u32) -> (u32, u8)) -> Signed {
    let barrier = Arc::new(Barrier::new(usize::from(workers)));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (cli, barrier) = (Arc::clone(cli), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..steps {
                    let (level, tag) = step(w, i);
                    barrier.wait();
                    if let Some(signature) = cli.sign(level, tag) {
                        got.push((level, tag, signature));
                    }
                }
                got
            })
        })
        .collect();
    let mut signed = Signed::new();
    for handle in handles {
        for (level, tag, signature) in handle.join().unwrap() {
            signed
                .entry(level)
                .or_default()
                .entry(tag)
                .or_default()
                .insert(signature);
        }
    }
    signed
}

/// Verifies every signature for the bytes it was returned for; returns the levels signed for
/// two different payloads.
fn double_signed(public_key: &PublicKey, signed: &Signed) -> Vec<u32> {
    for (level, tags) in signed {
        for (tag, signatures) in tags {
            for s in signatures {
                let signature: Signature = s.parse().unwrap();
                let payload = payloads::attestation(*level, 0, *tag);
                tezos_keys::verify(public_key, &payload, &signature).unwrap();
            }
            assert_eq!(
                signatures.len(),
                1,
                "level {level}: two signatures, same bytes"
            );
        }
    }
    signed
        .iter()
        .filter(|(_, tags)| tags.len() > 1)
        .map(|(level, _)| *level)
        .collect()
}

softhsm_test!(fn four_sign_processes_never_double_sign_or_roll_back(token) {
    let cli = Arc::new(ModuleCli::new(token));
    let run = cli.run(&["key", "generate", "--curve", "p256", "--label", "baker"]);
    assert!(run.success(), "{}", run.stderr);
    let public_key: PublicKey = run.json()["public_key"].as_str().unwrap().parse().unwrap();
    assert!(Path::new(&cli.watermarks).is_dir(), "key generate creates it");
    let started = std::time::Instant::now();

    // 4 processes, each with its own attestation, at each of 25 levels.
    let signed = race(&cli, 4, 25, |w, i| (i + 1, w + 1));
    let doubles = double_signed(&public_key, &signed);
    eprintln!(
        "4 sign processes × 25 levels: {} levels signed, double-signed {doubles:?}, {:?}",
        signed.len(),
        started.elapsed()
    );
    assert_eq!(doubles, [] as [u32; 0]);
    assert_eq!(signed.len(), 25);

    // L against L+1, then other bytes at L+1: refused unless the record moved back.
    let signed = race(&cli, 4, 20, |w, i| {
        let level = 100 + 2 * (i / 2);
        if i % 2 == 0 {
            (level + u32::from(w % 2), w + 1)
        } else {
            (level + 1, 100 + w)
        }
    });
    let rollbacks = double_signed(&public_key, &signed);
    eprintln!(
        "L against L+1 over 10 rounds: roll-backs {rollbacks:?}, {:?} in all",
        started.elapsed()
    );
    assert_eq!(rollbacks, [] as [u32; 0]);
    assert!(signed.contains_key(&119), "L+1 is always signed");
});
