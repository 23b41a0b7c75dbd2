//! Tezos payloads for tests.

/// Mainnet's chain id, `NetXdQprcVkpaWU`.
pub const MAINNET: [u8; 4] = [0x7a, 0x06, 0xa7, 0x70];

/// A Tenderbake attestation (watermark 0x13) as a baker signs it, 80 bytes: chain id, branch,
/// tag 0x15, slot, level, round, block payload hash; `tag` fills the hash so payloads at one
/// level can differ.
pub fn attestation(level: u32, round: u32, tag: u8) -> Vec<u8> {
    let mut p = vec![0x13];
    p.extend_from_slice(&MAINNET);
    p.extend_from_slice(&[0x11; 32]); // branch
    p.extend_from_slice(&[0x15, 0x00, 0x07]); // attestation tag, slot 7
    p.extend_from_slice(&level.to_be_bytes());
    p.extend_from_slice(&round.to_be_bytes());
    p.extend_from_slice(&[tag; 32]); // block payload hash
    p
}

/// A generic operation (watermark 0x03) with one transaction content, forged by hand after
/// Octez's encoding (branch, tag 108, source, fee, counter, gas and storage limits, amount,
/// implicit destination, no parameters): `nonce` varies the amount so payloads differ.
pub fn transaction(nonce: u8) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(&[0x22; 32]); // branch
    p.push(108); // transaction
    p.push(0x01); // source: secp256k1 (tz2)
    p.extend_from_slice(&[0x33; 20]);
    p.extend_from_slice(&[0xe8, 0x07]); // fee 1000 mutez (zarith)
    p.push(0x05); // counter
    p.extend_from_slice(&[0x90, 0x4e]); // gas limit 10000
    p.push(0x00); // storage limit
    p.push(nonce & 0x7f); // amount
    p.extend_from_slice(&[0x00, 0x00]); // destination: implicit, ed25519 (tz1)
    p.extend_from_slice(&[0x44; 20]);
    p.push(0x00); // no parameters
    p
}

/// A Tenderbake block header (watermark 0x11) at `level` whose fitness ends with `round` (the
/// layout of `tezos.md`: the round is the fitness's last 4 bytes); `variant` fills the
/// predecessor so headers at one level can differ.
pub fn block(level: u32, round: u32, variant: u8) -> Vec<u8> {
    let mut b = vec![0x11];
    b.extend_from_slice(&MAINNET);
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
    b.extend_from_slice(&(fitness.len() as u32).to_be_bytes());
    b.extend_from_slice(&fitness);
    b.extend_from_slice(&[0xcc; 40]); // protocol data
    b
}

/// A generic operation (watermark 0x03) as a wallet forges it: branch, then one transaction
/// (tag 0x6c) from `source` (the 21-byte forged pkh, `PublicKeyHash::to_forged`) with
/// `counter`, to a fixed tz1, no parameters (`operation_repr.ml` manager operation layout).
pub fn transaction_from(source: &[u8; 21], counter: u64) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(&[0x22; 32]); // branch
    p.push(0x6c); // transaction
    p.extend_from_slice(source);
    for n in [1420, counter, 10_600, 0, 1_000_000 + counter] {
        zarith(&mut p, n); // fee, counter, gas limit, storage limit, amount
    }
    p.extend_from_slice(&[0x00, 0x00]); // destination: implicit, tz1
    p.extend_from_slice(&[0x33; 20]);
    p.push(0x00); // no parameters
    p
}

/// A natural number in Tezos's zarith encoding (7 bits a byte, high bit = more).
fn zarith(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
