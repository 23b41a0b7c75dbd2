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
