//! The high-watermark guard: every rule, the file store, corruption, concurrency.
#![allow(clippy::unwrap_used)]

mod high_watermark_support;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use high_watermark_support::*;
use tezos_keys::high_watermark::{
    FileStore, GuardError, Height, HighWatermark, KeyMarks, KeyPolicy, LockedRecord, MarkKind,
    MemoryStore, WatermarkStore,
};
use tezos_keys::{ChainId, PublicKeyHash, SecretKey, Signature};

fn memory_guard() -> HighWatermark {
    HighWatermark::new(MemoryStore::new())
}

/// Signs `payload` with the tz2 test key under the `all` policy.
fn sign(guard: &HighWatermark, sk: &SecretKey, payload: &[u8]) -> Result<Signature, GuardError> {
    guard.sign(&sk.public_key().hash(), &KeyPolicy::all(), sk, payload)
}

/// One row: a sequence of (payload, expected outcome) through a fresh guard.
/// `ok` = signed, `replay` = the signature of the step it repeats, `refused` = DoubleSign.
macro_rules! sequence {
    ($name:ident: $($payload:expr => $outcome:ident),+ $(,)?) => {
        #[test]
        fn $name() {
            let sk = key(TZ2_KEY);
            let guard = memory_guard();
            let mut signed: Vec<(Vec<u8>, Signature)> = Vec::new();
            $(
                let payload: Vec<u8> = $payload;
                let result = sign(&guard, &sk, &payload);
                sequence!(@check $outcome, result, payload, signed);
            )+
        }
    };
    (@check ok, $result:ident, $payload:ident, $signed:ident) => {
        let signature = $result.unwrap();
        $signed.push(($payload, signature));
    };
    (@check replay, $result:ident, $payload:ident, $signed:ident) => {
        let first = $signed.iter().find(|(p, _)| *p == $payload).expect("signed before").1;
        assert_eq!($result.unwrap(), first);
    };
    (@check refused, $result:ident, $payload:ident, $signed:ident) => {
        let err = $result.unwrap_err();
        assert!(err.is_double_sign(), "{err}");
    };
}

sequence!(attestation_rises: attestation(5, 0, 1) => ok, attestation(5, 1, 1) => ok, attestation(6, 0, 1) => ok);
sequence!(attestation_retry_replays: attestation(5, 0, 1) => ok, attestation(5, 0, 1) => replay);
sequence!(attestation_other_bytes_refused: attestation(5, 0, 1) => ok, attestation(5, 0, 2) => refused);
sequence!(attestation_lower_round_refused: attestation(5, 2, 1) => ok, attestation(5, 1, 1) => refused);
sequence!(attestation_lower_level_refused: attestation(5, 0, 1) => ok, attestation(4, 7, 1) => refused);
sequence!(attestation_old_retry_refused: attestation(5, 0, 1) => ok, attestation(6, 0, 1) => ok, attestation(5, 0, 1) => refused);
sequence!(preattestation_rules: preattestation(9, 0, 1) => ok, preattestation(9, 0, 1) => replay, preattestation(9, 0, 2) => refused, preattestation(8, 3, 1) => refused, preattestation(9, 1, 2) => ok);
sequence!(block_round_from_fitness: block(ChainId::MAINNET, 7, 3, 1) => ok, block(ChainId::MAINNET, 7, 2, 1) => refused, block(ChainId::MAINNET, 7, 3, 2) => refused, block(ChainId::MAINNET, 7, 3, 1) => replay, block(ChainId::MAINNET, 7, 4, 2) => ok);
sequence!(kinds_are_independent: attestation(10, 0, 1) => ok, preattestation(3, 0, 1) => ok, block(ChainId::MAINNET, 3, 0, 1) => ok, attestation(9, 0, 1) => refused);
sequence!(chains_are_independent: block(ChainId::MAINNET, 10, 0, 1) => ok, block(OTHER_CHAIN, 2, 0, 1) => ok, block(OTHER_CHAIN, 2, 0, 2) => refused, block(ChainId::MAINNET, 9, 0, 1) => refused);
sequence!(legacy_block_compares_level_only: legacy_block(20, 1) => ok, legacy_block(20, 1) => replay, legacy_block(20, 2) => refused, legacy_block(19, 1) => refused, legacy_block(21, 2) => ok);
sequence!(legacy_block_shares_the_block_record: legacy_block(20, 1) => ok, block(ChainId::MAINNET, 20, 5, 1) => refused, block(ChainId::MAINNET, 21, 0, 1) => ok, legacy_block(21, 1) => refused);
sequence!(legacy_endorsement_shares_the_attestation_record: attestation(30, 2, 1) => ok, legacy_endorsement(30, 1) => refused, legacy_endorsement(31, 1) => ok, legacy_endorsement(31, 1) => replay, attestation(31, 0, 1) => refused, attestation(32, 0, 1) => ok);

#[test]
fn double_sign_error_names_key_chain_kind_and_both_heights() {
    let sk = key(TZ2_KEY);
    let guard = memory_guard();
    sign(&guard, &sk, &preattestation(100, 2, 1)).unwrap();
    let err = sign(&guard, &sk, &preattestation(99, 5, 1)).unwrap_err();
    match &err {
        GuardError::DoubleSign {
            key,
            chain,
            kind,
            requested,
            recorded,
        } => {
            assert_eq!(*key, sk.public_key().hash());
            assert_eq!(*chain, ChainId::MAINNET);
            assert_eq!(*kind, MarkKind::Preattestation);
            assert_eq!(*requested, Height::new(99, 5));
            assert_eq!(*recorded, Height::new(100, 2));
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "refusing to double-sign: preattestation for tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD on chain \
         NetXdQprcVkpaWU at level 99 round 5 which is not above the last one signed, at level 100 round 2"
    );
    let err = sign(&guard, &sk, &preattestation(100, 2, 9)).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "at level 100 round 2 which was already signed with different bytes (recorded: level 100 round 2)"
        ),
        "{err}"
    );
}

#[test]
fn retry_returns_the_recorded_signature_without_signing_again() {
    // An HSM with randomised ECDSA would give a new signature (and a new block hash) each time.
    let signer = Randomised {
        calls: Default::default(),
    };
    let pkh = key(TZ2_KEY).public_key().hash();
    let guard = memory_guard();
    let payload = block(ChainId::MAINNET, 50, 0, 1);
    let first = guard
        .sign(&pkh, &KeyPolicy::baking(), &signer, &payload)
        .unwrap();
    for _ in 0..5 {
        let again = guard
            .sign(&pkh, &KeyPolicy::baking(), &signer, &payload)
            .unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(signer.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn policy_is_checked_before_the_store_and_the_signer() {
    let sk = key(TZ2_KEY);
    let counting = Counting::new(&sk);
    let pkh = sk.public_key().hash();
    let store = Arc::new(MemoryStore::new());
    let guard = HighWatermark::new(Arc::clone(&store));
    for payload in [
        block(ChainId::MAINNET, 1, 0, 1),
        preattestation(1, 0, 1),
        attestation(1, 0, 1),
        legacy_block(1, 1),
    ] {
        let err = guard
            .sign(&pkh, &KeyPolicy::custody(), &counting, &payload)
            .unwrap_err();
        assert!(matches!(err, GuardError::PolicyRefused { .. }), "{err}");
    }
    let err = guard
        .sign(&pkh, &KeyPolicy::baking(), &counting, &[0x05, 0x01])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("may not sign michelson (0x05) payloads"),
        "{err}"
    );
    // Baking allows 0x11-0x13 and 0x03 but not the legacy forms.
    let err = guard
        .sign(
            &pkh,
            &KeyPolicy::baking(),
            &counting,
            &legacy_endorsement(1, 1),
        )
        .unwrap_err();
    assert_eq!(err.kind(), "watermark_not_allowed", "{err}");
    let octez_style = KeyPolicy::from_allow_list("0x11,0x12,0x13").unwrap();
    let err = guard
        .sign(&pkh, &octez_style, &counting, &[0x03, 0x01])
        .unwrap_err();
    assert_eq!(err.kind(), "watermark_not_allowed", "{err}");
    assert_eq!(counting.calls(), 0);
    assert!(store.load(&pkh).unwrap().is_empty());
}

#[test]
fn non_consensus_payloads_pass_through_unrecorded() {
    let sk = key(TZ2_KEY);
    let counting = Counting::new(&sk);
    let pkh = sk.public_key().hash();
    let store = Arc::new(MemoryStore::new());
    let guard = HighWatermark::new(Arc::clone(&store));
    for payload in [&[0x03, 1, 2][..], &[0x03, 1, 2], &[0x05, 9], &[0x05, 9]] {
        let signature = guard
            .sign(&pkh, &KeyPolicy::custody(), &counting, payload)
            .unwrap();
        tezos_keys::verify(&sk.public_key(), payload, &signature).unwrap();
    }
    assert_eq!(counting.calls(), 4);
    assert!(store.load(&pkh).unwrap().is_empty());
    // Malformed payloads are refused before anything else.
    for bad in [&[][..], &[0x04, 1], &[0x13, 0, 0]] {
        let err = guard
            .sign(&pkh, &KeyPolicy::all(), &counting, bad)
            .unwrap_err();
        assert!(matches!(err, GuardError::Payload(_)), "{err}");
    }
}

#[test]
fn keys_are_independent_and_sign_keypair_uses_the_signers_address() {
    let (a, b) = (key(TZ2_KEY), key(TZ3_KEY));
    let store = Arc::new(MemoryStore::new());
    let guard = HighWatermark::new(Arc::clone(&store));
    let policy = KeyPolicy::baking();
    guard
        .sign_keypair(&policy, &a, &attestation(10, 0, 1))
        .unwrap();
    guard
        .sign_keypair(&policy, &b, &attestation(10, 0, 2))
        .unwrap();
    assert!(guard
        .sign_keypair(&policy, &a, &attestation(10, 0, 2))
        .unwrap_err()
        .is_double_sign());
    let marks = store.load(&b.public_key().hash()).unwrap();
    let mark = marks[&(ChainId::MAINNET, MarkKind::Attestation)];
    assert_eq!(mark.height, Height::new(10, 0));
    assert_eq!(
        mark.digest,
        Some(tezos_keys::payload::digest(&attestation(10, 0, 2)))
    );
    tezos_keys::verify(
        &b.public_key(),
        &attestation(10, 0, 2),
        &mark.signature.unwrap(),
    )
    .unwrap();
}

#[test]
fn a_failed_signature_records_nothing() {
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let guard = memory_guard();
    let err = guard
        .sign(&pkh, &KeyPolicy::baking(), &Failing, &attestation(5, 0, 1))
        .unwrap_err();
    assert_eq!(err.to_string(), "the signer failed: the HSM is unplugged");
    // Nothing left the guard, so other bytes at that height may be signed.
    guard
        .sign(&pkh, &KeyPolicy::baking(), &sk, &attestation(5, 0, 2))
        .unwrap();
}

/// A store whose saves fail while `fail` is set.
struct Flaky {
    inner: MemoryStore,
    fail: AtomicBool,
}

struct FlakyRecord<'a> {
    inner: Box<dyn LockedRecord + 'a>,
    fail: &'a AtomicBool,
}

impl WatermarkStore for Flaky {
    fn lock(&self, key: &PublicKeyHash) -> Result<Box<dyn LockedRecord + '_>, GuardError> {
        Ok(Box::new(FlakyRecord {
            inner: self.inner.lock(key)?,
            fail: &self.fail,
        }))
    }
}

impl LockedRecord for FlakyRecord<'_> {
    fn load(&mut self) -> Result<KeyMarks, GuardError> {
        self.inner.load()
    }

    fn save(&mut self, marks: &KeyMarks) -> Result<(), GuardError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(GuardError::StoreIo {
                path: "flaky".into(),
                action: "write",
                source: std::io::Error::other("disk full"),
            });
        }
        self.inner.save(marks)
    }
}

#[test]
fn a_failed_save_returns_no_signature() {
    let sk = key(TZ2_KEY);
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(),
        fail: AtomicBool::new(true),
    });
    let guard = HighWatermark::new(Arc::clone(&store));
    let err = sign(&guard, &sk, &attestation(5, 0, 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot write the high-watermark record flaky: disk full"
    );
    store.fail.store(false, Ordering::SeqCst);
    sign(&guard, &sk, &attestation(5, 0, 2)).unwrap();
    assert!(sign(&guard, &sk, &attestation(5, 0, 1))
        .unwrap_err()
        .is_double_sign());
}

#[test]
fn file_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let first = {
        let guard = HighWatermark::new(FileStore::open(dir.path()).unwrap());
        sign(&guard, &sk, &block(OTHER_CHAIN, 3, 0, 1)).unwrap();
        sign(&guard, &sk, &legacy_endorsement(8, 1)).unwrap();
        sign(&guard, &sk, &attestation(1_000_000, 2, 1)).unwrap()
    };
    let counting = Counting::new(&sk);
    let guard = HighWatermark::new(FileStore::open(dir.path()).unwrap());
    let again = guard
        .sign(
            &pkh,
            &KeyPolicy::all(),
            &counting,
            &attestation(1_000_000, 2, 1),
        )
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(counting.calls(), 0);
    for refused in [
        attestation(1_000_000, 2, 2),
        attestation(1_000_000, 1, 1),
        block(OTHER_CHAIN, 3, 0, 2),
    ] {
        assert!(sign(&guard, &sk, &refused).unwrap_err().is_double_sign());
    }

    // The file: readable JSON, one per key, mode 0600, no temporary file left behind.
    let store = FileStore::open(dir.path()).unwrap();
    let path = store.path_for(&pkh);
    let text = fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format"], "tezos-keys high-watermark v1");
    assert_eq!(json["key"], pkh.to_string());
    let marks = json["marks"].as_array().unwrap();
    assert_eq!(marks.len(), 2, "{text}");
    let attestation_mark = marks
        .iter()
        .find(|m| m["chain"] == "NetXdQprcVkpaWU")
        .unwrap();
    assert_eq!(attestation_mark["kind"], "attestation");
    assert_eq!(attestation_mark["level"], 1_000_000);
    assert_eq!(attestation_mark["round"], 2);
    assert_eq!(attestation_mark["signature"], first.to_string());
    assert_eq!(
        attestation_mark["digest"],
        hex::encode(tezos_keys::payload::digest(&attestation(1_000_000, 2, 1)))
    );
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [format!("{pkh}.json"), format!("{pkh}.lock")],
        "one record and one lock file per key, no temporary file left behind"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// A valid record for the tz2 test key, at attestation level 5 round 0.
fn valid_record(dir: &std::path::Path) -> String {
    let guard = HighWatermark::new(FileStore::open(dir).unwrap());
    sign(&guard, &key(TZ2_KEY), &attestation(5, 0, 1)).unwrap();
    let store = FileStore::open(dir).unwrap();
    fs::read_to_string(store.path_for(&key(TZ2_KEY).public_key().hash())).unwrap()
}

/// One row: how to damage a valid record, and a fragment of the expected reason.
macro_rules! corrupt {
    ($name:ident: $damage:expr, $reason:expr) => {
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let valid = valid_record(dir.path());
            let damage: fn(&str) -> String = $damage;
            let damaged = damage(&valid);
            let sk = key(TZ2_KEY);
            let pkh = sk.public_key().hash();
            let store = FileStore::open(dir.path()).unwrap();
            let path = store.path_for(&pkh);
            fs::write(&path, &damaged).unwrap();
            let guard = HighWatermark::new(store);
            let counting = Counting::new(&sk);
            for payload in [
                attestation(5, 0, 2),
                attestation(6, 0, 1),
                attestation(1, 0, 1),
            ] {
                let err = guard
                    .sign(&pkh, &KeyPolicy::baking(), &counting, &payload)
                    .unwrap_err();
                let GuardError::StoreCorrupt { path: p, reason } = &err else {
                    panic!("{err}");
                };
                assert_eq!(p, &path);
                assert!(reason.contains($reason), "{reason}");
                assert!(err
                    .to_string()
                    .contains("consensus signing for this key is stopped"));
            }
            assert_eq!(counting.calls(), 0);
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                damaged,
                "never rewritten"
            );
            // Generic operations do not depend on the record.
            guard
                .sign(&pkh, &KeyPolicy::baking(), &counting, &[0x03, 1])
                .unwrap();
        }
    };
}

corrupt!(empty_file_is_corrupt: |_| String::new(), "the file is empty");
corrupt!(garbage_is_corrupt: |_| "level=5\n".into(), "not a valid record");
corrupt!(truncated_json_is_corrupt: |v| v[..v.len() / 2].into(), "not a valid record");
corrupt!(zero_bytes_are_corrupt: |v| "\0".repeat(v.len()), "not a valid record");
corrupt!(unknown_field_is_corrupt: |v| v.replacen("\"level\"", "\"height\": 1, \"level\"", 1), "unknown field `height`");
corrupt!(wrong_format_is_corrupt: |v| v.replace("high-watermark v1", "high-watermark v2"), "format is");
corrupt!(other_keys_file_is_corrupt: |v| v.replace("tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD", "tz3Lfm6CyfSTZ7EgMckptZZGiPxzs9GK59At"), "belongs to key tz3");
corrupt!(bad_chain_is_corrupt: |v| v.replace("NetXdQprcVkpaWU", "NetXdQprcVkpaWV"), "mark 0: chain");
corrupt!(bad_kind_is_corrupt: |v| v.replace("\"attestation\"", "\"endorsement\""), "mark 0: kind");
corrupt!(negative_level_is_corrupt: |v| v.replace("\"level\": 5", "\"level\": -5"), "not a valid record");
corrupt!(short_digest_is_corrupt: |v| v.replacen("\"digest\": \"", "\"digest\": \"00", 1), "digest is not 64 hex digits");
corrupt!(bad_signature_is_corrupt: |v| v.replacen("\"spsig1", "\"spsig2", 1), "mark 0: signature");
corrupt!(duplicate_mark_is_corrupt: |v| {
    let start = v.find("    {").unwrap();
    let end = v.rfind("    }").unwrap() + 5;
    let mark = &v[start..end];
    v.replacen(mark, &format!("{mark},\n{mark}"), 1)
}, "second attestation mark");

#[test]
fn unreadable_record_stops_signing() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let store = FileStore::open(dir.path()).unwrap();
    fs::create_dir(store.path_for(&sk.public_key().hash())).unwrap();
    let guard = HighWatermark::new(store);
    let err = sign(&guard, &sk, &attestation(1, 0, 1)).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_corrupt", "{err}");
    assert!(
        err.to_string()
            .contains("it is a directory, not a regular file"),
        "{err}"
    );
}

/// A file outside the store that a planted symbolic link points to.
#[cfg(unix)]
fn planted(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let outside = dir.parent().unwrap().join(format!("precious-{name}"));
    fs::write(&outside, b"precious").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join(name)).unwrap();
    outside
}

#[cfg(unix)]
#[test]
fn planted_symbolic_links_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watermarks");
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let guard = HighWatermark::new(FileStore::create(&dir).unwrap());

    // At the record: refused as corrupt, the target untouched.
    let outside = planted(&dir, &format!("{pkh}.json"));
    let err = sign(&guard, &sk, &attestation(1, 0, 1)).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_corrupt", "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    fs::remove_file(dir.join(format!("{pkh}.json"))).unwrap();

    // At the lock file.
    fs::remove_file(dir.join(format!("{pkh}.lock"))).unwrap();
    let outside_lock = planted(&dir, &format!("{pkh}.lock"));
    let err = sign(&guard, &sk, &attestation(1, 0, 1)).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    fs::remove_file(dir.join(format!("{pkh}.lock"))).unwrap();

    // At the temporary name every writer used to share: ignored, never written through.
    let outside_tmp = planted(&dir, &format!("{pkh}.json.tmp"));
    sign(&guard, &sk, &attestation(1, 0, 1)).unwrap();
    sign(&guard, &sk, &attestation(2, 0, 1)).unwrap();
    for file in [outside, outside_lock, outside_tmp] {
        assert_eq!(fs::read(&file).unwrap(), b"precious", "{}", file.display());
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_or_an_oversized_file_as_record_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let store = FileStore::open(dir.path()).unwrap();
    let path = store.path_for(&sk.public_key().hash());
    let guard = HighWatermark::new(store);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let err = sign(&guard, &sk, &attestation(1, 0, 1)).unwrap_err(); // no hang
    assert!(err.to_string().contains("it is a FIFO"), "{err}");
    fs::remove_file(&path).unwrap();
    let big = usize::try_from(FileStore::MAX_RECORD_BYTES).unwrap() + 1;
    fs::write(&path, vec![b' '; big]).unwrap();
    let err = sign(&guard, &sk, &attestation(1, 0, 1)).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_corrupt", "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watermarks");
    let sk = key(TZ2_KEY);
    let guard = HighWatermark::new(FileStore::create(&dir).unwrap());
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "created owner-only");
    sign(&guard, &sk, &attestation(1, 0, 1)).unwrap();
    for mode in [0o777, 0o1777, 0o770, 0o722] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        for err in [
            FileStore::open(&dir).unwrap_err(),
            FileStore::create(&dir).unwrap_err(),
            // Checked at every signature, not only on open.
            sign(&guard, &sk, &attestation(2, 0, 1)).unwrap_err(),
        ] {
            assert_eq!(err.kind(), "watermark_store_unsafe", "{err}");
            let text = err.to_string();
            assert!(text.contains(&dir.display().to_string()), "{text}");
            assert!(text.contains("chmod 700"), "{text}");
        }
        let now = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            now & 0o7777,
            mode,
            "never changed behind the operator's back"
        );
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    sign(&guard, &sk, &attestation(2, 0, 1)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_directory_owned_by_another_user_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let me = fs::metadata(tmp.path()).unwrap().uid();
    // As root, give a directory away; otherwise use one that root owns.
    let dir = if me == 0 {
        let dir = tmp.path().join("theirs");
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        dir
    } else {
        std::path::PathBuf::from("/")
    };
    let err = FileStore::open(&dir).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_unsafe", "{err}");
    let text = err.to_string();
    assert!(text.contains("is owned by user id"), "{text}");
    assert!(text.contains("chown"), "{text}");
}

#[test]
fn a_lock_held_too_long_is_store_busy() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let holder = FileStore::open(dir.path()).unwrap();
    let held = holder.lock(&pkh).unwrap();
    let store = FileStore::open(dir.path())
        .unwrap()
        .with_lock_timeout(Duration::from_millis(100));
    let guard = HighWatermark::new(store);
    let err = sign(&guard, &sk, &attestation(1, 0, 1)).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_busy", "{err}");
    assert!(
        err.to_string().contains(".lock was held by another signer"),
        "{err}"
    );
    // Another key is not blocked; the released key signs again.
    sign(&guard, &key(TZ3_KEY), &attestation(1, 0, 1)).unwrap();
    drop(held);
    sign(&guard, &sk, &attestation(1, 0, 1)).unwrap();
}

#[test]
fn error_kinds_are_stable() {
    let sk = key(TZ2_KEY);
    let guard = memory_guard();
    sign(&guard, &sk, &attestation(5, 0, 1)).unwrap();
    let kind = |r: Result<Signature, GuardError>| r.unwrap_err().kind();
    assert_eq!(
        kind(sign(&guard, &sk, &attestation(5, 0, 2))),
        "double_sign"
    );
    assert_eq!(kind(sign(&guard, &sk, &[0x13, 0])), "invalid_input");
    let pkh = sk.public_key().hash();
    let policy = KeyPolicy::custody();
    assert_eq!(
        kind(guard.sign(&pkh, &policy, &sk, &attestation(6, 0, 1))),
        "watermark_not_allowed"
    );
    let baking = KeyPolicy::baking();
    assert_eq!(
        kind(guard.sign(&pkh, &baking, &Failing, &attestation(6, 0, 1))),
        "sign_failed"
    );
}

#[test]
fn vanished_directory_stops_signing() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("watermarks");
    let sk = key(TZ2_KEY);
    let guard = HighWatermark::new(FileStore::create(&sub).unwrap());
    sign(&guard, &sk, &attestation(1, 0, 1)).unwrap();
    fs::remove_dir_all(&sub).unwrap(); // e.g. a volume that is no longer mounted
    let err = sign(&guard, &sk, &attestation(2, 0, 1)).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_missing", "{err}");
    assert!(!sub.exists(), "never created by signing");
    let err = FileStore::open(&sub).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_missing", "{err}");
    assert!(!sub.exists(), "never created by open");
    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    // A regular file where the directory belongs is neither opened nor replaced.
    let err = FileStore::open(&file).unwrap_err();
    assert_eq!(err.kind(), "io", "{err}");
    assert!(err.to_string().contains("not a directory"), "{err}");
    let err = FileStore::create(&file).unwrap_err();
    assert_eq!(err.kind(), "io", "{err}");
    assert!(err.to_string().contains("File exists"), "{err}");
    assert!(file.is_file(), "the file is left as it was");
}

#[test]
fn guard_is_send_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<HighWatermark>();
    shared::<Arc<HighWatermark>>();
    shared::<FileStore>();
    shared::<MemoryStore>();
}

/// 16 threads race at each level: different bytes → one winner; identical bytes → one
/// signature, made once, returned to all.
#[test]
fn racing_threads_get_exactly_one_signature_per_level() {
    const THREADS: usize = 16;
    const LEVELS: u32 = 12;
    let dir = tempfile::tempdir().unwrap();
    let sk = Arc::new(key(TZ2_KEY));
    let guard = Arc::new(HighWatermark::new(FileStore::open(dir.path()).unwrap()));
    let mut winners = 0;
    let mut refused = 0;
    for level in 1..=LEVELS {
        for identical in [false, true] {
            let level = level * 2 + u32::from(identical);
            let barrier = Arc::new(Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (guard, sk, barrier) = (guard.clone(), sk.clone(), barrier.clone());
                    let variant = if identical {
                        0
                    } else {
                        u8::try_from(t).unwrap()
                    };
                    thread::spawn(move || {
                        let payload = block(ChainId::MAINNET, level, 0, variant);
                        barrier.wait();
                        (variant, sign(&guard, &sk, &payload))
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let ok: Vec<_> = results
                .iter()
                .filter_map(|(v, r)| r.as_ref().ok().map(|s| (*v, *s)))
                .collect();
            if identical {
                assert_eq!(ok.len(), THREADS);
                assert!(ok.iter().all(|(_, s)| *s == ok[0].1));
            } else {
                assert_eq!(ok.len(), 1, "level {level}: {} winners", ok.len());
                for (_, r) in &results {
                    if let Err(e) = r {
                        assert!(e.is_double_sign(), "{e}");
                        refused += 1;
                    }
                }
                winners += 1;
                // The record holds the winner.
                let marks = FileStore::open(dir.path())
                    .unwrap()
                    .load(&sk.public_key().hash())
                    .unwrap();
                let mark = marks[&(ChainId::MAINNET, MarkKind::Block)];
                assert_eq!(mark.signature, Some(ok[0].1));
                assert_eq!(
                    mark.digest,
                    Some(tezos_keys::payload::digest(&block(
                        ChainId::MAINNET,
                        level,
                        0,
                        ok[0].0
                    )))
                );
            }
        }
    }
    assert_eq!(winners, LEVELS);
    assert_eq!(refused, LEVELS as usize * (THREADS - 1));
}

/// A signer that blocks until released, to hold one key's lock.
struct Blocking<'a> {
    key: &'a SecretKey,
    entered: mpsc::Sender<()>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl signature::Signer<Signature> for Blocking<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        self.entered.send(()).unwrap();
        self.release.lock().unwrap().recv().unwrap();
        signature::Signer::try_sign(self.key, msg)
    }
}

#[test]
fn different_keys_do_not_wait_on_each_other() {
    let (a, b) = (key(TZ2_KEY), key(TZ3_KEY));
    let guard = memory_guard();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let blocking = Blocking {
        key: &a,
        entered: entered_tx,
        release: Mutex::new(release_rx),
    };
    thread::scope(|s| {
        let held = s.spawn(|| {
            guard.sign(
                &a.public_key().hash(),
                &KeyPolicy::baking(),
                &blocking,
                &attestation(1, 0, 1),
            )
        });
        entered_rx.recv().unwrap(); // key A's lock is now held, mid-signature
        let (done_tx, done_rx) = mpsc::channel();
        let (guard, b) = (&guard, &b);
        s.spawn(move || {
            let r = sign(guard, b, &attestation(1, 0, 1));
            done_tx.send(r.is_ok()).unwrap();
        });
        let other_key = done_rx.recv_timeout(Duration::from_secs(10));
        release_tx.send(()).unwrap();
        assert_eq!(other_key, Ok(true), "key B waited for key A");
        held.join().unwrap().unwrap();
    });
}

/// A caller of the store API cannot move a record backwards either: a save that lowers or
/// drops a recorded height is refused and leaves the record as it was, on both stores.
#[test]
fn a_save_that_would_move_a_record_backwards_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sk = key(TZ2_KEY);
    let pkh = sk.public_key().hash();
    let stores: Vec<Box<dyn WatermarkStore>> = vec![
        Box::new(FileStore::open(dir.path()).unwrap()),
        Box::new(MemoryStore::new()),
    ];
    for store in stores {
        let store: Arc<dyn WatermarkStore> = Arc::from(store);
        let guard = HighWatermark::new(Arc::clone(&store));
        sign(&guard, &sk, &attestation(10, 2, 1)).unwrap();
        let recorded = store.load(&pkh).unwrap();
        let mut lowered = recorded.clone();
        for mark in lowered.values_mut() {
            mark.height = Height::new(5, 0);
        }
        let mut record = store.lock(&pkh).unwrap();
        assert!(record.save(&lowered).unwrap_err().is_double_sign());
        assert!(record.save(&KeyMarks::new()).unwrap_err().is_double_sign());
        drop(record);
        assert_eq!(store.load(&pkh).unwrap(), recorded);
        // Forwards is fine.
        let mut raised = recorded.clone();
        for mark in raised.values_mut() {
            mark.height = Height::new(11, 0);
        }
        store.lock(&pkh).unwrap().save(&raised).unwrap();
    }
}
