//! The two BLAKE2b sizes Tezos uses (unkeyed).

use blake2::digest::consts::{U20, U32};
use blake2::{Blake2b, Digest};

/// BLAKE2b with a 20-byte output: public key hashes.
pub(crate) fn blake2b_160(data: &[u8]) -> [u8; 20] {
    Blake2b::<U20>::digest(data).into()
}

/// BLAKE2b with a 32-byte output: signing digests.
pub(crate) fn blake2b_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}
