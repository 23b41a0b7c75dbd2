//! The store contract against a real PostgreSQL (scripts/test.sh starts one): load, save,
//! regressions refused (by the store and by the database), identical replays, locks between
//! threads, the schema, corrupt rows, and no password in any message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{attestation, block, database_url, fresh_key, sql, store, store_with, Counting};
use tezos_keys::high_watermark::{
    Height, HighWatermark, KeyMarks, KeyPolicy, Mark, MarkKind, WatermarkStore,
};
use tezos_keys::{ChainId, PublicKeyHash};
use watermark_postgres::{Options, PostgresStore};

const OTHER_CHAIN: ChainId = ChainId::from_bytes([1, 2, 3, 4]);

fn mark(key: &tezos_keys::SecretKey, level: u32, round: Option<u32>, tag: u8) -> Mark {
    let digest = [tag; 32];
    Mark::signed(
        Height { level, round },
        digest,
        key.sign_digest(&digest).unwrap(),
    )
}

#[test]
fn a_new_key_loads_empty_and_a_saved_record_loads_back() {
    let store = store();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    assert!(store.load(&pkh).unwrap().is_empty());

    let mut marks = KeyMarks::new();
    marks.insert(
        (ChainId::MAINNET, MarkKind::Block),
        mark(&key, 7, Some(1), 1),
    );
    marks.insert(
        (ChainId::MAINNET, MarkKind::Attestation),
        mark(&key, 7, Some(0), 2),
    );
    marks.insert(
        (OTHER_CHAIN, MarkKind::Preattestation),
        mark(&key, u32::MAX, None, 3),
    );
    store.lock(&pkh).unwrap().save(&marks).unwrap();
    assert_eq!(store.load(&pkh).unwrap(), marks);
    // Another store (another process would do the same) reads the same rows.
    assert_eq!(common::store().load(&pkh).unwrap(), marks);
}

#[test]
fn a_floor_saves_without_digest_or_signature_and_refuses_its_height() {
    let store = store();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let floor = Mark::floor(Height::new(40, 1));
    let mut marks = KeyMarks::new();
    marks.insert((ChainId::MAINNET, MarkKind::Attestation), floor);
    store.lock(&pkh).unwrap().save(&marks).unwrap();
    assert_eq!(store.load(&pkh).unwrap(), marks);
    let row = sql()
        .query_one(
            "SELECT digest IS NULL, signature IS NULL FROM tezos_watermarks WHERE key = $1",
            &[&pkh.to_string()],
        )
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));

    let guard = HighWatermark::new(store);
    let counting = Counting::new(&key);
    for refused in [
        attestation(40, 1, 1),
        attestation(40, 0, 1),
        attestation(39, 5, 1),
    ] {
        let err = guard
            .sign(&pkh, &KeyPolicy::all(), &counting, &refused)
            .unwrap_err();
        assert_eq!(err.kind(), "double_sign", "{err}");
    }
    assert_eq!(counting.calls(), 0);
    let signed = guard
        .sign(&pkh, &KeyPolicy::all(), &counting, &attestation(40, 2, 1))
        .unwrap();
    let again = guard
        .sign(&pkh, &KeyPolicy::all(), &counting, &attestation(40, 2, 1))
        .unwrap();
    assert_eq!((again, counting.calls()), (signed, 1));
    // A signature without its digest is refused by the database itself.
    let err = sql()
        .execute(
            "UPDATE tezos_watermarks SET digest = NULL WHERE key = $1",
            &[&pkh.to_string()],
        )
        .unwrap_err();
    assert_eq!(
        err.as_db_error().and_then(|e| e.constraint()),
        Some("tezos_watermarks_signature_has_digest"),
        "{err:?}"
    );
}

#[test]
fn a_save_that_lowers_or_drops_a_height_is_refused_and_writes_nothing() {
    let store = store();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let at = (ChainId::MAINNET, MarkKind::Attestation);
    let mut marks = KeyMarks::new();
    marks.insert(at, mark(&key, 10, Some(2), 1));
    store.lock(&pkh).unwrap().save(&marks).unwrap();

    for lower in [mark(&key, 10, Some(1), 9), mark(&key, 9, Some(5), 9)] {
        let mut next = marks.clone();
        next.insert(at, lower);
        let err = store.lock(&pkh).unwrap().save(&next).unwrap_err();
        assert_eq!(err.kind(), "double_sign", "{err}");
    }
    let err = store
        .lock(&pkh)
        .unwrap()
        .save(&KeyMarks::new())
        .unwrap_err();
    assert_eq!(err.kind(), "double_sign", "dropping a mark: {err}");
    assert_eq!(store.load(&pkh).unwrap(), marks);
}

#[test]
fn other_bytes_at_the_recorded_height_are_refused_and_the_same_bytes_keep_their_signature() {
    let store = store();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let at = (ChainId::MAINNET, MarkKind::Preattestation);
    let mut marks = KeyMarks::new();
    marks.insert(at, mark(&key, 20, Some(0), 1));
    store.lock(&pkh).unwrap().save(&marks).unwrap();

    let mut other_bytes = marks.clone();
    other_bytes.insert(at, mark(&key, 20, Some(0), 2));
    let err = store.lock(&pkh).unwrap().save(&other_bytes).unwrap_err();
    assert_eq!(err.kind(), "double_sign", "{err}");
    assert!(err.to_string().contains("different bytes"), "{err}");

    let mut same_bytes = marks.clone();
    let mut resigned = marks[&at];
    resigned.signature = Some(key.sign_digest(&[9; 32]).unwrap());
    same_bytes.insert(at, resigned);
    store.lock(&pkh).unwrap().save(&same_bytes).unwrap();
    assert_eq!(
        store.load(&pkh).unwrap(),
        marks,
        "the first signature stays"
    );
}

#[test]
fn the_database_refuses_a_lower_height_from_any_writer() {
    let store = store();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let mut marks = KeyMarks::new();
    marks.insert(
        (ChainId::MAINNET, MarkKind::Block),
        mark(&key, 50, Some(0), 1),
    );
    store.lock(&pkh).unwrap().save(&marks).unwrap();

    let mut db = sql();
    let err = db
        .execute(
            "UPDATE tezos_watermarks SET level = 49 WHERE key = $1",
            &[&pkh.to_string()],
        )
        .unwrap_err();
    let text = err
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(
        text.contains("would move back"),
        "the trigger refuses: {err:?}"
    );
    // Legacy rows (no round) compare by level alone.
    let err = db
        .execute(
            "UPDATE tezos_watermarks SET round = NULL, level = 49 WHERE key = $1",
            &[&pkh.to_string()],
        )
        .unwrap_err();
    let text = err
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(text.contains("would move back"), "{err:?}");
    assert_eq!(store.load(&pkh).unwrap(), marks);
}

#[test]
fn the_guard_replays_identical_bytes_and_refuses_others_at_the_same_level() {
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let guard = HighWatermark::new(store());
    let signer = Counting::new(&key);
    let policy = KeyPolicy::baking();
    let first = guard
        .sign(&pkh, &policy, &signer, &block(100, 0, 1))
        .unwrap();
    let again = guard
        .sign(&pkh, &policy, &signer, &block(100, 0, 1))
        .unwrap();
    assert_eq!(first, again, "the recorded signature comes back");
    assert_eq!(signer.calls(), 1, "a replay does not call the signer");
    let err = guard
        .sign(&pkh, &policy, &signer, &block(100, 0, 2))
        .unwrap_err();
    assert_eq!(err.kind(), "double_sign", "{err}");
    // Another kind at the same level is another record.
    guard
        .sign(&pkh, &policy, &signer, &attestation(100, 0, 2))
        .unwrap();
    guard
        .sign(&pkh, &policy, &signer, &block(100, 1, 2))
        .unwrap();
    assert_eq!(signer.calls(), 3);
    let recorded = guard.store().load(&pkh).unwrap();
    assert_eq!(
        recorded[&(ChainId::MAINNET, MarkKind::Block)].height,
        Height::new(100, 1)
    );
}

#[test]
fn a_locked_key_makes_other_threads_wait_then_busy_and_a_drop_releases_it() {
    let store = store_with(Duration::from_millis(300));
    let key = fresh_key().public_key().hash();
    let other = fresh_key().public_key().hash();
    let held = store.lock(&key).unwrap();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let (store, key) = (&store, &key);
        s.spawn(move || {
            let started = Instant::now();
            let result = store.lock(key).map(drop);
            tx.send((result, started.elapsed())).unwrap();
        });
        let (result, waited) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), "watermark_store_busy", "{err}");
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(!err.to_string().contains("tezos_hsm:"), "{err}");
        // Other keys do not wait.
        store.lock(&other).unwrap().load().unwrap();
    });
    drop(held); // rolled back: the lock goes at once
    let started = Instant::now();
    store.lock(&key).unwrap();
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[test]
fn the_pool_serves_more_threads_than_it_has_connections() {
    let mut options = Options::default();
    options.max_connections = 2;
    let guard = HighWatermark::new(PostgresStore::open_with(&database_url(), options).unwrap());
    let keys: Vec<_> = (0..4).map(|_| fresh_key()).collect();
    std::thread::scope(|s| {
        for key in &keys {
            for thread in 0..2u8 {
                let guard = &guard;
                s.spawn(move || {
                    let pkh = key.public_key().hash();
                    for level in 1..=10 {
                        let payload = attestation(level, 0, thread);
                        match guard.sign(&pkh, &KeyPolicy::baking(), key, &payload) {
                            Ok(_) => {}
                            Err(e) => assert!(e.is_double_sign(), "{e}"),
                        }
                    }
                });
            }
        }
    });
    for key in &keys {
        let marks = guard.store().load(&key.public_key().hash()).unwrap();
        assert_eq!(marks.len(), 1);
        assert_eq!(marks.values().next().unwrap().height.level, 10);
    }
}

#[test]
fn a_row_that_cannot_be_read_stops_the_key_instead_of_reading_as_empty() {
    let store = store();
    let key = fresh_key();
    let pkh = key.public_key().hash();
    sql()
        .execute(
            "INSERT INTO tezos_watermarks (key, chain, kind, level, round, digest, signature) \
             VALUES ($1, 'NetXdQprcVkpaWU', 'block', 5, 0, $2, 'not-a-signature')",
            &[&pkh.to_string(), &vec![0u8; 32]],
        )
        .unwrap();
    let err = store.load(&pkh).unwrap_err();
    assert_eq!(err.kind(), "watermark_store_corrupt", "{err}");
    let guard = HighWatermark::new(store);
    let err = guard
        .sign(&pkh, &KeyPolicy::baking(), &key, &block(6, 0, 1))
        .unwrap_err();
    assert_eq!(err.kind(), "watermark_store_corrupt", "{err}");
}

/// A database of its own (the schema tests need a fresh one), dropped at the end.
struct ScratchDatabase {
    name: String,
}

impl ScratchDatabase {
    fn new() -> Self {
        let name = format!("hwm_scratch_{}", hex(&common::random_bytes()[..6]));
        sql()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        let url = database_url();
        let base = url.rsplit_once('/').unwrap().0;
        format!("{base}/{}", self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = sql().batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn concurrent_opens_apply_each_migration_once_and_a_newer_schema_is_refused() {
    let db = ScratchDatabase::new();
    let url = db.url();
    std::thread::scope(|s| {
        let opens: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PostgresStore::open(&url).map(drop)))
            .collect();
        for open in opens {
            open.join().unwrap().unwrap();
        }
    });
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM tezos_watermarks_schema ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, [1, 2]);
    PostgresStore::open(&url).unwrap(); // again: nothing to do

    client
        .execute(
            "INSERT INTO tezos_watermarks_schema (version, description) VALUES (99, 'future')",
            &[],
        )
        .unwrap();
    let err = PostgresStore::open(&url).unwrap_err();
    assert_eq!(err.kind(), "watermark_db_schema", "{err}");
    assert!(err.to_string().contains("schema version 99"), "{err}");
    drop(client);
}

#[test]
fn no_message_holds_the_password() {
    let url = database_url();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password.to_owned())
        .expect("TEST_DATABASE_URL has a password");
    // A wrong password.
    let wrong = url.replacen(&password, "wrong-password-123", 1);
    let err = PostgresStore::open(&wrong).unwrap_err();
    assert_eq!(err.kind(), "watermark_db_unavailable", "{err}");
    assert!(!err.to_string().contains("wrong-password-123"), "{err}");
    assert!(
        !format!("{err:?}").contains("wrong-password-123"),
        "{err:?}"
    );
    // Nobody listening.
    let nobody = url_with_port(&url, closed_port());
    let err = PostgresStore::open(&nobody).unwrap_err();
    assert_eq!(err.kind(), "watermark_db_unavailable", "{err}");
    assert!(!err.to_string().contains(&password), "{err}");
    // The store's own description.
    let store = store();
    assert!(!format!("{store:?}").contains(&password));
    assert!(!store.database().contains(&password));
}

fn url_with_port(url: &str, port: u16) -> String {
    let (head, tail) = url.rsplit_once(':').unwrap();
    let path = tail.split_once('/').unwrap().1;
    format!("{head}:{port}/{path}")
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn lock_ids_are_per_key() {
    let a: PublicKeyHash = "tz2Ch1abG7FNiibmV26Uzgdsnfni9XGrk5wD".parse().unwrap();
    let (class, id) = PostgresStore::lock_id(&a);
    assert_eq!(class, 0x747a_6877);
    assert_eq!(
        id,
        i32::from_be_bytes(a.as_bytes()[..4].try_into().unwrap())
    );
}

#[test]
fn the_store_is_used_from_spawn_blocking_and_dropped_inside_an_async_task() {
    let key = fresh_key();
    let pkh = key.public_key().hash();
    let guard = std::sync::Arc::new(HighWatermark::new(store()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let signer = guard.clone();
        let signed = tokio::task::spawn_blocking(move || {
            signer.sign(&pkh, &KeyPolicy::baking(), &key, &attestation(3, 0, 1))
        })
        .await
        .unwrap();
        signed.unwrap();
        // The last handle goes here, on the runtime's own thread, connections open.
        drop(guard);
    });
}

#[test]
fn a_role_with_only_select_insert_update_opens_and_signs() {
    store(); // the tables exist
    let role = format!("hwm_signer_{}", hex(&common::random_bytes()[..6]));
    let password = hex(&common::random_bytes()[..12]);
    let mut admin = sql();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}';
             GRANT SELECT ON tezos_watermarks_schema TO {role};
             GRANT SELECT, INSERT, UPDATE ON tezos_watermarks TO {role};"
        ))
        .unwrap();
    let url = database_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').unwrap().1;
    let signer_url = format!("{scheme}://{role}:{password}@{host}");
    let result = std::panic::catch_unwind(|| {
        let key = fresh_key();
        let pkh = key.public_key().hash();
        let guard = HighWatermark::new(PostgresStore::open(&signer_url).unwrap());
        guard
            .sign(&pkh, &KeyPolicy::baking(), &key, &attestation(8, 0, 1))
            .unwrap();
        guard
            .sign(&pkh, &KeyPolicy::baking(), &key, &attestation(9, 0, 1))
            .unwrap();
        // And it cannot remove a record.
        let mut client = postgres::Client::connect(&signer_url, postgres::NoTls).unwrap();
        let err = client
            .execute(
                "DELETE FROM tezos_watermarks WHERE key = $1",
                &[&pkh.to_string()],
            )
            .unwrap_err();
        assert!(format!("{err:?}").contains("permission denied"), "{err:?}");
    });
    admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .unwrap();
    result.unwrap();
}
