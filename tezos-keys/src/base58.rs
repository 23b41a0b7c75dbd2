//! Tezos base58check: `base58(prefix ‖ payload ‖ sha256d(prefix ‖ payload)[..4])`.
//!
//! Octez `src/lib_crypto/base58.ml`; the prefix bytes are those of Octez
//! `sdk/rust/crypto/src/hash.rs` (`prefix_bytes`) and
//! `ecadlabs/gotez:b58/prefix/prefix.go`.
//!
//! Decoding is strict: the checksum, the prefix and the exact payload length
//! must all be right, and the caller says which prefixes it accepts. Decoded
//! payloads are held in [`Zeroizing`] buffers because some of them are
//! secret keys, and no error message repeats more than the first four
//! characters of the input (which carry no secret: they follow from the
//! prefix).

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Longest input [`decode`] looks at, in characters. The longest supported
/// encodings (`edsig`, `spsig1`, 64-byte `edsk`) are 99 characters.
pub const MAX_TEXT_LEN: usize = 160;

/// A Tezos base58check prefix: the bytes that make an encoding start with
/// `tz1`, `edpk`, `spsig1`, ….
///
/// ```
/// use tezos_keys::base58::{self, Prefix};
/// let text = base58::encode(Prefix::Net, &[0x7a, 0x06, 0xa7, 0x70])?;
/// assert_eq!(text, "NetXdQprcVkpaWU"); // Tezos mainnet
/// let (prefix, bytes) = base58::decode(&text, &[Prefix::Net])?;
/// assert_eq!((prefix, bytes.as_slice()), (Prefix::Net, &[0x7a, 0x06, 0xa7, 0x70][..]));
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prefix {
    /// `tz1`: Ed25519 public key hash (20 bytes).
    Tz1,
    /// `tz2`: secp256k1 public key hash (20 bytes).
    Tz2,
    /// `tz3`: P-256 public key hash (20 bytes).
    Tz3,
    /// `tz4`: BLS public key hash (recognised, not supported).
    Tz4,
    /// `KT1`: originated contract (recognised, not supported).
    Kt1,
    /// `edpk`: Ed25519 public key (32 bytes).
    Edpk,
    /// `sppk`: secp256k1 compressed public key (33 bytes).
    Sppk,
    /// `p2pk`: P-256 compressed public key (33 bytes).
    P2pk,
    /// `BLpk`: BLS public key (recognised, not supported).
    Blpk,
    /// `edsig`: Ed25519 signature (64 bytes).
    Edsig,
    /// `spsig1`: secp256k1 signature `r ‖ s` (64 bytes).
    Spsig1,
    /// `p2sig`: P-256 signature `r ‖ s` (64 bytes).
    P2sig,
    /// `sig`: generic signature, any curve (64 bytes).
    Sig,
    /// `edsk`: Ed25519 secret seed (32 bytes).
    EdskSeed,
    /// `edsk`: Ed25519 secret key as seed ‖ public key (64 bytes).
    EdskKeypair,
    /// `spsk`: secp256k1 secret scalar (32 bytes).
    Spsk,
    /// `p2sk`: P-256 secret scalar (32 bytes).
    P2sk,
    /// `Net`: chain id (4 bytes).
    Net,
}

impl Prefix {
    /// Every prefix this crate knows, supported or not.
    pub const ALL: [Self; 18] = [
        Self::Tz1,
        Self::Tz2,
        Self::Tz3,
        Self::Tz4,
        Self::Kt1,
        Self::Edpk,
        Self::Sppk,
        Self::P2pk,
        Self::Blpk,
        Self::Edsig,
        Self::Spsig1,
        Self::P2sig,
        Self::Sig,
        Self::EdskSeed,
        Self::EdskKeypair,
        Self::Spsk,
        Self::P2sk,
        Self::Net,
    ];

    /// The raw prefix bytes (tezos.md §1).
    pub const fn bytes(self) -> &'static [u8] {
        match self {
            Self::Tz1 => &[0x06, 0xa1, 0x9f],
            Self::Tz2 => &[0x06, 0xa1, 0xa1],
            Self::Tz3 => &[0x06, 0xa1, 0xa4],
            Self::Tz4 => &[0x06, 0xa1, 0xa6],
            Self::Kt1 => &[0x02, 0x5a, 0x79],
            Self::Edpk => &[0x0d, 0x0f, 0x25, 0xd9],
            Self::Sppk => &[0x03, 0xfe, 0xe2, 0x56],
            Self::P2pk => &[0x03, 0xb2, 0x8b, 0x7f],
            Self::Blpk => &[0x06, 0x95, 0x87, 0xcc],
            Self::Edsig => &[0x09, 0xf5, 0xcd, 0x86, 0x12],
            Self::Spsig1 => &[0x0d, 0x73, 0x65, 0x13, 0x3f],
            Self::P2sig => &[0x36, 0xf0, 0x2c, 0x34],
            Self::Sig => &[0x04, 0x82, 0x2b],
            Self::EdskSeed => &[0x0d, 0x0f, 0x3a, 0x07],
            Self::EdskKeypair => &[0x2b, 0xf6, 0x4e, 0x07],
            Self::Spsk => &[0x11, 0xa2, 0xe0, 0xc9],
            Self::P2sk => &[0x10, 0x51, 0xee, 0xbd],
            Self::Net => &[0x57, 0x52, 0x00],
        }
    }

    /// Length of the payload that follows the prefix, in bytes.
    pub const fn payload_len(self) -> usize {
        match self {
            Self::Tz1 | Self::Tz2 | Self::Tz3 | Self::Tz4 | Self::Kt1 => 20,
            Self::Edpk | Self::EdskSeed | Self::Spsk | Self::P2sk => 32,
            Self::Sppk | Self::P2pk => 33,
            Self::Blpk => 48,
            Self::Edsig | Self::Spsig1 | Self::P2sig | Self::Sig | Self::EdskKeypair => 64,
            Self::Net => 4,
        }
    }

    /// The text every encoding with this prefix starts with.
    pub const fn text(self) -> &'static str {
        match self {
            Self::Tz1 => "tz1",
            Self::Tz2 => "tz2",
            Self::Tz3 => "tz3",
            Self::Tz4 => "tz4",
            Self::Kt1 => "KT1",
            Self::Edpk => "edpk",
            Self::Sppk => "sppk",
            Self::P2pk => "p2pk",
            Self::Blpk => "BLpk",
            Self::Edsig => "edsig",
            Self::Spsig1 => "spsig1",
            Self::P2sig => "p2sig",
            Self::Sig => "sig",
            Self::EdskSeed | Self::EdskKeypair => "edsk",
            Self::Spsk => "spsk",
            Self::P2sk => "p2sk",
            Self::Net => "Net",
        }
    }

    /// What the value is, for messages: "address", "public key", ….
    pub const fn noun(self) -> &'static str {
        match self {
            Self::Tz1 | Self::Tz2 | Self::Tz3 | Self::Tz4 => "address",
            Self::Kt1 => "contract address",
            Self::Edpk | Self::Sppk | Self::P2pk | Self::Blpk => "public key",
            Self::Edsig | Self::Spsig1 | Self::P2sig | Self::Sig => "signature",
            Self::EdskSeed | Self::EdskKeypair | Self::Spsk | Self::P2sk => "secret key",
            Self::Net => "chain id",
        }
    }

    /// Whether the payload is secret key material.
    pub const fn is_secret(self) -> bool {
        matches!(
            self,
            Self::EdskSeed | Self::EdskKeypair | Self::Spsk | Self::P2sk
        )
    }

    /// Whether this crate can use values with this prefix (`tz4`, `KT1` and
    /// `BLpk` are only recognised, to give a clear error).
    pub const fn is_supported(self) -> bool {
        !matches!(self, Self::Tz4 | Self::Kt1 | Self::Blpk)
    }

    /// Length of the whole encoded text in characters (tezos.md §1; the
    /// Tezos prefixes are chosen so that it does not depend on the payload).
    pub const fn encoded_len(self) -> usize {
        match self {
            Self::Tz1 | Self::Tz2 | Self::Tz3 | Self::Tz4 | Self::Kt1 => 36,
            Self::Edpk | Self::EdskSeed | Self::Spsk | Self::P2sk => 54,
            Self::Sppk | Self::P2pk => 55,
            Self::Blpk => 76,
            Self::Edsig | Self::Spsig1 => 99,
            Self::P2sig | Self::EdskKeypair => 98,
            Self::Sig => 96,
            Self::Net => 15,
        }
    }

    const fn unsupported_what(self) -> &'static str {
        match self {
            Self::Tz4 => "a tz4 (BLS) address",
            Self::Kt1 => "a KT1 (originated contract) address",
            Self::Blpk => "a BLpk (BLS) public key",
            _ => "this value",
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Describe a set of accepted prefixes, e.g. "a tz2/tz3 address".
pub(crate) fn describe(expected: &[Prefix]) -> String {
    let mut texts: Vec<&str> = Vec::new();
    for p in expected {
        if !texts.contains(&p.text()) {
            texts.push(p.text());
        }
    }
    let noun = match expected.first() {
        Some(first) if expected.iter().all(|p| p.noun() == first.noun()) => first.noun(),
        Some(_) => "value",
        None => return "nothing (no prefix accepted)".to_owned(),
    };
    let joined = texts.join("/");
    let article = if joined.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {joined} {noun}")
}

fn checksum(body: &[u8]) -> [u8; 4] {
    let once = Sha256::digest(body);
    let twice = Sha256::digest(once);
    let mut out = [0u8; 4];
    for (o, b) in out.iter_mut().zip(twice.iter()) {
        *o = *b;
    }
    out
}

/// Encode `payload` with `prefix`.
///
/// # Errors
/// [`Error::WrongLength`] if `payload` is not exactly
/// [`Prefix::payload_len`] bytes.
pub fn encode(prefix: Prefix, payload: &[u8]) -> Result<String> {
    if payload.len() != prefix.payload_len() {
        return Err(Error::WrongLength {
            prefix: prefix.text(),
            expected: prefix.payload_len(),
            actual: payload.len(),
        });
    }
    let mut body = Zeroizing::new(Vec::with_capacity(prefix.bytes().len() + payload.len() + 4));
    body.extend_from_slice(prefix.bytes());
    body.extend_from_slice(payload);
    let sum = checksum(&body);
    body.extend_from_slice(&sum);
    let ascii = encode_fast(&body);
    // The base58 alphabet is ASCII, so every byte is one char. Exact
    // capacity: the String never reallocates, so a secret-key text leaves
    // no stray copy behind when it moves into a `SecretString`.
    let mut text = String::with_capacity(ascii.len());
    text.extend(ascii.iter().map(|&b| char::from(b)));
    Ok(text)
}

/// Decode `text`, accepting only the prefixes in `expected`.
///
/// Returns the prefix found and the payload (without prefix and checksum),
/// in a buffer that is zeroed when dropped.
///
/// # Errors
/// A distinct [`Error`] for each failure: empty text, too long, a character
/// outside base58, bad checksum, an unknown prefix, a known but unsupported
/// prefix (`tz4`, `KT1`, `BLpk`: [`Error::Unsupported`]), a supported prefix
/// the caller did not ask for ([`Error::WrongPrefix`]), or a wrong payload
/// length.
pub fn decode(text: &str, expected: &[Prefix]) -> Result<(Prefix, Zeroizing<Vec<u8>>)> {
    let what = || describe(expected);
    if text.is_empty() {
        return Err(Error::EmptyText { expected: what() });
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::TextTooLong {
            expected: what(),
            actual: text.chars().count(),
            max: MAX_TEXT_LEN,
        });
    }
    let mut data = Zeroizing::new(vec![0u8; text.len()]);
    let n = match bs58::decode(text).onto(data.as_mut_slice()) {
        Ok(n) => n,
        Err(
            bs58::decode::Error::InvalidCharacter { index, .. }
            | bs58::decode::Error::NonAsciiCharacter { index },
        ) => {
            return Err(Error::InvalidBase58 {
                expected: what(),
                position: index,
            })
        }
        Err(_) => {
            return Err(Error::InvalidBase58 {
                expected: what(),
                position: 0,
            })
        }
    };
    let data = data.get(..n).unwrap_or_default();
    let Some((body, sum)) = data.split_last_chunk::<4>() else {
        return Err(Error::BadChecksum { expected: what() });
    };
    if checksum(body) != *sum {
        return Err(Error::BadChecksum { expected: what() });
    }
    let mut length_mismatch = None;
    for prefix in Prefix::ALL {
        let Some(payload) = body.strip_prefix(prefix.bytes()) else {
            continue;
        };
        if payload.len() != prefix.payload_len() {
            length_mismatch.get_or_insert((prefix, payload.len()));
            continue;
        }
        if !prefix.is_supported() {
            return Err(Error::Unsupported {
                what: prefix.unsupported_what(),
            });
        }
        if !expected.contains(&prefix) {
            return Err(Error::WrongPrefix {
                expected: what(),
                found: prefix.text(),
            });
        }
        return Ok((prefix, Zeroizing::new(payload.to_vec())));
    }
    if let Some((prefix, actual)) = length_mismatch {
        if !prefix.is_supported() {
            return Err(Error::Unsupported {
                what: prefix.unsupported_what(),
            });
        }
        return Err(Error::WrongLength {
            prefix: prefix.text(),
            expected: prefix.payload_len(),
            actual,
        });
    }
    Err(Error::UnknownPrefix {
        expected: what(),
        starts_with: text.chars().take(4).collect(),
    })
}

/// Base58 (Bitcoin alphabet) of `input`.
///
/// `bs58::encode` converts one byte at a time and took 8.3 µs of the 9.6 µs of software work per
/// P-256 signature (issue 7, BENCHMARKS.md); this takes 4 input bytes at a time into limbs of
/// base 58^5 (< 2^30, so a limb shifted by 32 bits fits a u64) and takes about 0.7 µs. The unit
/// test `fast_encoder_matches_bs58` checks it against `bs58`, which still does all decoding.
fn encode_fast(input: &[u8]) -> Zeroizing<Vec<u8>> {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const BASE: u64 = 656_356_768; // 58^5 < 2^30
    let zeros = input.iter().take_while(|b| **b == 0).count();
    let input = input.get(zeros..).unwrap_or_default();
    let mut limbs: Zeroizing<Vec<u32>> =
        Zeroizing::new(Vec::with_capacity(input.len() * 8 / 29 + 2));
    let head = match input.len() % 4 {
        0 => 4.min(input.len()),
        n => n,
    };
    let (first, rest) = input.split_at(head);
    let push = |chunk: &[u8], limbs: &mut Vec<u32>| {
        let mut carry = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let shift = 8 * chunk.len() as u32;
        for limb in limbs.iter_mut() {
            carry += u64::from(*limb) << shift;
            *limb = (carry % BASE) as u32;
            carry /= BASE;
        }
        while carry > 0 {
            limbs.push((carry % BASE) as u32);
            carry /= BASE;
        }
    };
    if !first.is_empty() {
        push(first, &mut limbs);
    }
    for chunk in rest.chunks_exact(4) {
        push(chunk, &mut limbs);
    }
    let mut digits = Zeroizing::new(Vec::with_capacity(zeros + limbs.len() * 5));
    for (i, &limb) in limbs.iter().enumerate() {
        let mut v = limb;
        let last = i + 1 == limbs.len();
        for _ in 0..5 {
            if last && v == 0 {
                break;
            }
            digits.push(ALPHABET[(v % 58) as usize]);
            v /= 58;
        }
    }
    digits.extend(std::iter::repeat_n(b'1', zeros));
    digits.reverse();
    digits
}

#[cfg(test)]
mod tests;
