//! Payload builders and test signers shared by the high-watermark tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use tezos_keys::{ChainId, SecretKey, Signature};

/// Taquito test keys (tezos.md §9) — TEST KEYS ONLY.
pub const TZ2_KEY: &str = "spsk2rBDDeUqakQ42nBHDGQTtP3GErb6AahHPwF9bhca3Q5KA5HESE";
pub const TZ3_KEY: &str = "p2sk2obfVMEuPUnadAConLWk7Tf4Dt3n4svSgJwrgpamRqJXvaYcg1";

/// A second chain id (made up; any chain but mainnet).
pub const OTHER_CHAIN: ChainId = ChainId::from_bytes([1, 2, 3, 4]);

pub fn key(text: &str) -> SecretKey {
    SecretKey::from_base58(text).unwrap()
}

/// A (pre)attestation: `wm` 0x12 or 0x13; `variant` changes the branch, so the bytes.
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

pub fn preattestation(level: u32, round: u32, variant: u8) -> Vec<u8> {
    consensus(0x12, ChainId::MAINNET, level, round, variant)
}

/// A Tenderbake block header whose fitness ends with `round`.
pub fn block(chain: ChainId, level: u32, round: u32, variant: u8) -> Vec<u8> {
    let mut b = vec![0x11];
    b.extend_from_slice(chain.as_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.push(1); // proto
    b.extend_from_slice(&[variant; 32]); // predecessor
    b.extend_from_slice(&[0; 8]); // timestamp
    b.push(4); // validation passes
    b.extend_from_slice(&[0xbb; 32]); // operations hash
    let mut fitness = vec![0, 0, 0, 1, 2, 0, 0, 0, 4];
    fitness.extend_from_slice(&level.to_be_bytes());
    fitness.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4]);
    fitness.extend_from_slice(&round.to_be_bytes());
    b.extend_from_slice(&u32::try_from(fitness.len()).unwrap().to_be_bytes());
    b.extend_from_slice(&fitness);
    b.extend_from_slice(&[0xcc; 40]);
    b
}

pub fn legacy_block(level: u32, variant: u8) -> Vec<u8> {
    let mut b = vec![0x01];
    b.extend_from_slice(ChainId::MAINNET.as_bytes());
    b.extend_from_slice(&level.to_be_bytes());
    b.extend_from_slice(&[variant; 40]);
    b
}

pub fn legacy_endorsement(level: u32, variant: u8) -> Vec<u8> {
    let mut e = vec![0x02];
    e.extend_from_slice(ChainId::MAINNET.as_bytes());
    e.extend_from_slice(&[variant; 32]); // branch
    e.push(0); // tag
    e.extend_from_slice(&level.to_be_bytes());
    e
}

/// A software key that counts how often it is asked to sign.
pub struct Counting<'a> {
    pub key: &'a SecretKey,
    pub calls: AtomicUsize,
}

impl<'a> Counting<'a> {
    pub fn new(key: &'a SecretKey) -> Self {
        Self {
            key,
            calls: AtomicUsize::new(0),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl signature::Signer<Signature> for Counting<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        signature::Signer::try_sign(self.key, msg)
    }
}

/// Like an HSM doing randomised ECDSA: a different signature every call (not valid ones;
/// the guard does not verify, it records and replays).
pub struct Randomised {
    pub calls: AtomicUsize,
}

impl signature::Signer<Signature> for Randomised {
    fn try_sign(&self, _msg: &[u8]) -> Result<Signature, signature::Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
        Ok(Signature::new(tezos_keys::Curve::Secp256k1, bytes))
    }
}

/// A signer that always fails.
pub struct Failing;

impl signature::Signer<Signature> for Failing {
    fn try_sign(&self, _msg: &[u8]) -> Result<Signature, signature::Error> {
        Err(signature::Error::from_source("the HSM is unplugged"))
    }
}
