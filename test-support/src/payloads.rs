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
