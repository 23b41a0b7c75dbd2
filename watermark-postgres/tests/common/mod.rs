//! What the tests against a real PostgreSQL share: the database (started by scripts/test.sh),
//! fresh keys, payloads, a signer that counts its calls.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tezos_keys::{ChainId, Curve, SecretKey, Signature};
use watermark_postgres::{Options, PostgresStore};

/// The test database: `TEST_DATABASE_URL`, set by scripts/test.sh, which starts a private
/// PostgreSQL. Without it the test fails (never passes silently).
pub fn database_url() -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts a private \
             PostgreSQL, or point it at a scratch database"
        ),
    }
}

/// The store on the test database, waiting at most `lock_timeout` for a key's lock.
pub fn store_with(lock_timeout: Duration) -> PostgresStore {
    let mut options = Options::default();
    options.lock_timeout = lock_timeout;
    PostgresStore::open_with(&database_url(), options).unwrap()
}

pub fn store() -> PostgresStore {
    PostgresStore::open(&database_url()).unwrap()
}

/// A direct connection, to look at or tamper with the tables.
pub fn sql() -> postgres::Client {
    postgres::Client::connect(&database_url(), postgres::NoTls).unwrap()
}

/// 32 random bytes.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

/// A new secp256k1 key: every test has keys of its own, so tests sharing the database never
/// meet. (TEST KEYS ONLY.)
pub fn fresh_key() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_bytes(Curve::Secp256k1, &random_bytes()) {
            return key;
        }
    }
}

/// A secp256k1 key from `hex` (64 digits), for worker processes given their parent's key.
pub fn key_from_hex(hex_text: &str) -> SecretKey {
    let bytes: Vec<u8> = (0..hex_text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_text[i..i + 2], 16).unwrap())
        .collect();
    SecretKey::from_bytes(Curve::Secp256k1, &bytes).unwrap()
}

pub fn key_to_hex(key: &SecretKey) -> String {
    key.expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Tenderbake (pre)attestation: `wm` 0x12 or 0x13; `variant` changes the bytes.
pub fn consensus(wm: u8, chain: ChainId, level: u32, round: u32, variant: u8) -> Vec<u8> {
    let mut p = vec![wm];
    p.extend_from_slice(chain.as_bytes());
    p.extend_from_slice(&[variant; 32]); // branch
    p.extend_from_slice(&[if wm == 0x12 { 0x14 } else { 0x15 }, 0, 0]); // kind, slot
    p.extend_from_slice(&level.to_be_bytes());
    p.extend_from_slice(&round.to_be_bytes());
    p.extend_from_slice(&[0xab; 32]); // block payload hash
    p
}

pub fn attestation(level: u32, round: u32, variant: u8) -> Vec<u8> {
    consensus(0x13, ChainId::MAINNET, level, round, variant)
}

/// A Tenderbake block header whose fitness ends with `round`; `variant` changes the bytes.
#[allow(unused_imports)] // not every test binary signs blocks
pub use test_support::payloads::block;

/// A software key that counts how often it is asked to sign, and runs `during` inside the
/// call (to stop the database or block while the record is locked).
pub struct Counting<'a> {
    pub key: &'a SecretKey,
    pub calls: AtomicUsize,
    pub during: Box<dyn Fn() + Send + Sync + 'a>,
}

impl<'a> Counting<'a> {
    pub fn new(key: &'a SecretKey) -> Self {
        Self {
            key,
            calls: AtomicUsize::new(0),
            during: Box::new(|| {}),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl signature::Signer<Signature> for Counting<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.during)();
        signature::Signer::try_sign(self.key, msg)
    }
}
