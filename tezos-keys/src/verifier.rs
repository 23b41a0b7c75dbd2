//! A public key made ready for verification, with the platform's optimised assembly.
//!
//! Which backend verifies what, and why (issue 15; figures in BENCHMARKS.md §5):
//!
//! - **secp256k1: libsecp256k1** (the `secp256k1` crate, its C library built from the crate's
//!   vendored sources with the C compiler Rust already needs). It is the library the Octez node
//!   verifies with (`src/lib_crypto/secp256k1.ml`), so its rules are the chain's by
//!   construction: ECDSA over the 32-byte digest as given, lower-S only. About 2.4 times faster
//!   than the pure-Rust `k256` on the benchmark machine.
//! - **P-256: OpenSSL's libcrypto** (the `openssl` crate, `ECDSA_do_verify`, which takes the
//!   32-byte digest as it is: Tezos signs BLAKE2b-256 digests, so an API that insists on hashing
//!   with SHA-256 itself does not fit). OpenSSL verifies P-256 with its `ecp_nistz256` assembly,
//!   about 3.8 times faster than the pure-Rust `p256`, and accepts high-S as Octez (HACL*) does.
//!   Chosen over `aws-lc-rs` (prehashed verification through `Digest::import_less_safe`, about
//!   15 % faster still) for its build cost: `aws-lc-sys` compiles AWS-LC from source, which took
//!   3.5 minutes and 330 MB of memory on the 2-core benchmark machine for each profile, where
//!   `openssl-sys` links the system's libcrypto in seconds (Debian: `libssl-dev` and
//!   `pkg-config`, installed by `scripts/ensure-deps.sh`; SoftHSM2 itself already runs on that
//!   libcrypto, and it gets the distribution's security updates). `ring` has no prehashed
//!   ECDSA verification at all.
//! - **Ed25519: `ed25519-dalek`**, unchanged (see [`crate::verify_digest`] for its rules).
//!
//! The checks that decide *which* signatures are acceptable stay in Rust, before the backend is
//! asked: the curve, `r` and `s` in `1..n` (through the RustCrypto types), and low-S for
//! secp256k1. The backends only do the point arithmetic. A property test in `verify.rs` checks
//! that the result is the same as the pure-Rust `k256`/`p256` verification's on random keys,
//! digests and tampered signatures.

use std::fmt;
use std::sync::OnceLock;

use ed25519_dalek::Verifier as _;
use openssl::ec::{EcGroup, EcGroupRef, EcKey, EcPoint};
use openssl::pkey::Public;

use crate::error::{Error, Result};
use crate::payload::digest;
use crate::{Curve, PublicKey, Signature};

/// A Tezos public key parsed once for fast verification: build it once per key and verify many
/// signatures with it. [`crate::verify_digest`] builds one per call; [`crate::HsmKey`] keeps one
/// for its verify-after-sign. Cheap to clone; `Send + Sync`.
///
/// ```
/// use tezos_keys::{PublicKey, Signature, Verifier};
/// // tezos_crypto_rs test vector (Octez `sdk/rust/crypto/src/hash.rs`, tezos.md §9).
/// let pk: PublicKey = "p2pk65p7HKSGvkMdeK5yckM2nmi59oGNw4ksqdcvwxxF3AV3hopkfGS".parse()?;
/// let sig: Signature = "p2sigefoF8vJvSshWmLL6NyX6QnQUyUhq76r3F3ST6mTNqeCFzosDQyaRanoZpm14eeakZhAJ3LdGHFE4z9cPv9yTWFqWM4j9A".parse()?;
/// let verifier = Verifier::new(&pk)?;
/// verifier.verify(b"hello, message", &sig)?;
/// assert!(verifier.verify(b"hello, messagE", &sig).is_err());
/// # Ok::<(), tezos_keys::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    public_key: PublicKey,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Ed25519(ed25519_dalek::VerifyingKey),
    Secp256k1(secp256k1::PublicKey),
    P256(EcKey<Public>),
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Verifier").field(&self.public_key).finish()
    }
}

impl Verifier {
    /// Parses `public_key` for its curve's backend.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] if the backend refuses the key (a [`PublicKey`] has been
    /// checked to be on its curve already, so this means the backend disagrees: please report).
    pub fn new(public_key: &PublicKey) -> Result<Self> {
        let curve = public_key.curve();
        let invalid = |reason| Error::InvalidPublicKey { curve, reason };
        let backend = match curve {
            Curve::Ed25519 => {
                let raw = <[u8; 32]>::try_from(public_key.as_bytes())
                    .map_err(|_| invalid("an Ed25519 key must be 32 bytes"))?;
                Backend::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|_| invalid("the key bytes are not a point on the curve"))?,
                )
            }
            Curve::Secp256k1 => Backend::Secp256k1(
                secp256k1::PublicKey::from_slice(public_key.as_bytes())
                    .map_err(|_| invalid("the key bytes are not a point on the curve"))?,
            ),
            Curve::P256 => Backend::P256(p256_key(public_key).ok_or_else(|| {
                invalid("OpenSSL refused the P-256 point (internal error, please report)")
            })?),
        };
        Ok(Self {
            public_key: *public_key,
            backend,
        })
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Verifies `signature` over `message` (watermark included): BLAKE2b-256, then
    /// [`Verifier::verify_digest`].
    ///
    /// # Errors
    /// As [`Verifier::verify_digest`].
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<()> {
        self.verify_digest(&digest(message), signature)
    }

    /// Verifies `signature` over a ready 32-byte digest, with the Octez node's rules (listed at
    /// [`crate::verify_digest`]).
    ///
    /// # Errors
    /// [`Error::CurveMismatch`], [`Error::MalformedSignature`], [`Error::HighS`] (secp256k1
    /// only) or [`Error::VerificationFailed`], as [`crate::verify_digest`].
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &Signature) -> Result<()> {
        let curve = self.public_key.curve();
        if signature.curve() != curve {
            return Err(Error::CurveMismatch {
                what: "the signature",
                expected: curve,
                actual: signature.curve(),
            });
        }
        let failed = Error::VerificationFailed { curve };
        let malformed = || Error::MalformedSignature {
            curve,
            reason: "r and s must both be between 1 and the curve order n - 1",
        };
        let valid = match &self.backend {
            Backend::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
                key.verify(digest, &sig).is_ok()
            }
            Backend::Secp256k1(key) => {
                // r, s in 1..n (MalformedSignature) and low-S (HighS), decided in Rust first.
                if !signature.is_low_s()? {
                    return Err(Error::HighS);
                }
                let sig = secp256k1::ecdsa::Signature::from_compact(signature.as_bytes())
                    .map_err(|_| malformed())?;
                let message = secp256k1::Message::from_digest(*digest);
                secp256k1::ecdsa::verify(&sig, message, key).is_ok()
            }
            Backend::P256(key) => {
                p256::ecdsa::Signature::from_slice(signature.as_bytes())
                    .map_err(|_| malformed())?;
                let (r, s) = signature.as_bytes().split_at(32);
                let sig = openssl::bn::BigNum::from_slice(r)
                    .and_then(|r| Ok((r, openssl::bn::BigNum::from_slice(s)?)))
                    .and_then(|(r, s)| openssl::ecdsa::EcdsaSig::from_private_components(r, s));
                // An OpenSSL error (out of memory) fails closed, as a signature that does not
                // verify.
                sig.and_then(|sig| sig.verify(digest, key)).unwrap_or(false)
            }
        };
        if valid {
            Ok(())
        } else {
            Err(failed)
        }
    }
}

/// Verifies a Tezos signature over a message (watermark included), like [`crate::verify`].
impl signature::Verifier<Signature> for Verifier {
    fn verify(&self, msg: &[u8], signature: &Signature) -> signature::Result<()> {
        Verifier::verify(self, msg, signature).map_err(signature::Error::from_source)
    }
}

/// The P-256 group, made once (OpenSSL picks its `ecp_nistz256` method where it has one).
fn p256_group() -> Option<&'static EcGroupRef> {
    static GROUP: OnceLock<Option<EcGroup>> = OnceLock::new();
    GROUP
        .get_or_init(|| EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).ok())
        .as_deref()
}

/// The key as an OpenSSL public key. Decompressed by `p256` first: OpenSSL's generic square
/// root made parsing a compressed point cost about a third of a verification.
fn p256_key(public_key: &PublicKey) -> Option<EcKey<Public>> {
    let group = p256_group()?;
    let uncompressed = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key.as_bytes())
        .ok()?
        .to_sec1_point(false);
    let mut ctx = openssl::bn::BigNumContext::new().ok()?;
    let point = EcPoint::from_bytes(group, uncompressed.as_bytes(), &mut ctx).ok()?;
    EcKey::from_public_key(group, &point).ok()
}

#[cfg(test)]
mod tests {
    use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use proptest::prelude::*;

    use super::*;
    use crate::SecretKey;

    const SECP256K1_N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    const P256_N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    /// The verification this crate did before the fast backends: pure-Rust `k256`/`p256` and
    /// `ed25519-dalek`, with the same Octez rules. The fast [`Verifier`] must agree with it.
    fn reference(public_key: &PublicKey, digest: &[u8; 32], signature: &Signature) -> Result<()> {
        use ed25519_dalek::Verifier as _;
        let curve = public_key.curve();
        if signature.curve() != curve {
            return Err(Error::CurveMismatch {
                what: "the signature",
                expected: curve,
                actual: signature.curve(),
            });
        }
        let failed = |_| Error::VerificationFailed { curve };
        let malformed = |_| Error::MalformedSignature {
            curve,
            reason: "r and s must both be between 1 and the curve order n - 1",
        };
        let key_error = |_| Error::InvalidPublicKey {
            curve,
            reason: "the key bytes are not a point on the curve",
        };
        let bytes = public_key.as_bytes();
        match curve {
            Curve::Ed25519 => {
                let raw = <[u8; 32]>::try_from(bytes).expect("32 bytes");
                let key = ed25519_dalek::VerifyingKey::from_bytes(&raw).map_err(key_error)?;
                let sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
                key.verify(digest, &sig).map_err(failed)
            }
            Curve::Secp256k1 => {
                if !signature.is_low_s()? {
                    return Err(Error::HighS);
                }
                let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(key_error)?;
                let sig =
                    k256::ecdsa::Signature::from_slice(signature.as_bytes()).map_err(malformed)?;
                key.verify_prehash(digest, &sig).map_err(failed)
            }
            Curve::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(key_error)?;
                let sig =
                    p256::ecdsa::Signature::from_slice(signature.as_bytes()).map_err(malformed)?;
                key.verify_prehash(digest, &sig).map_err(failed)
            }
        }
    }

    /// `(r, n - s)`: the other signature of the same pair (ECDSA curves).
    fn twin(sig: &Signature) -> Signature {
        let n = match sig.curve() {
            Curve::Secp256k1 => SECP256K1_N,
            _ => P256_N,
        };
        let mut bytes = *sig.as_bytes();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(n[i]) - i16::from(bytes[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            bytes[32 + i] = u8::try_from(d + 256 * borrow).expect("a byte");
        }
        Signature::new(sig.curve(), bytes)
    }

    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8 % bytes.len()] ^= 1 << (bit % 8);
    }

    /// How a good signature is spoiled before both verifiers see it.
    #[derive(Debug, Clone, Copy)]
    enum Tamper {
        None,
        HighS,
        FlipR(usize),
        FlipS(usize),
        FlipDigest(usize),
        FlipKey(usize),
        OtherKey,
        ZeroR,
        ZeroS,
        ROrder,
        SOrder,
        SwapRS,
        Random([u8; 32], [u8; 32]),
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            Just(Tamper::None),
            Just(Tamper::HighS),
            (0usize..256).prop_map(Tamper::FlipR),
            (0usize..256).prop_map(Tamper::FlipS),
            (0usize..256).prop_map(Tamper::FlipDigest),
            (0usize..264).prop_map(Tamper::FlipKey),
            Just(Tamper::OtherKey),
            Just(Tamper::ZeroR),
            Just(Tamper::ZeroS),
            Just(Tamper::ROrder),
            Just(Tamper::SOrder),
            Just(Tamper::SwapRS),
            any::<([u8; 32], [u8; 32])>().prop_map(|(r, s)| Tamper::Random(r, s)),
        ]
    }

    /// Random digests, and the edges: zero, all ones (above both orders), the orders.
    fn digest() -> impl Strategy<Value = [u8; 32]> {
        prop_oneof![
            8 => any::<[u8; 32]>(),
            1 => Just([0u8; 32]),
            1 => Just([0xff; 32]),
            1 => Just(SECP256K1_N),
            1 => Just(P256_N),
        ]
    }

    fn secret_key() -> impl Strategy<Value = SecretKey> {
        let curve = prop_oneof![
            4 => Just(Curve::Secp256k1),
            4 => Just(Curve::P256),
            1 => Just(Curve::Ed25519),
        ];
        (curve, any::<[u8; 32]>()).prop_filter_map("scalar out of range", |(c, b)| {
            SecretKey::from_bytes(c, &b).ok()
        })
    }

    proptest! {
        // The pure-Rust reference is slow in debug builds.
        #![proptest_config(ProptestConfig::with_cases(192))]

        /// The fast verifier accepts exactly what the pure-Rust one accepts, with the same error.
        #[test]
        fn fast_verifier_agrees_with_pure_rust(
            sk in secret_key(),
            other in secret_key(),
            digest in digest(),
            tamper in tamper(),
        ) {
            let curve = sk.curve();
            let mut key = sk.public_key();
            let mut digest_used = digest;
            let good = sk.sign_digest(&digest).expect("sign");
            let mut sig = *good.as_bytes();
            let order = if curve == Curve::Secp256k1 { SECP256K1_N } else { P256_N };
            match tamper {
                Tamper::None => {}
                Tamper::HighS => sig = *twin(&good).as_bytes(),
                Tamper::FlipR(bit) => flip(&mut sig[..32], bit),
                Tamper::FlipS(bit) => flip(&mut sig[32..], bit),
                Tamper::FlipDigest(bit) => flip(&mut digest_used, bit),
                Tamper::FlipKey(bit) => {
                    let mut bytes = key.as_bytes().to_vec();
                    flip(&mut bytes, bit);
                    match PublicKey::from_bytes(curve, &bytes) {
                        Ok(flipped) => key = flipped,
                        Err(_) => return Ok(()), // refused before any verifier sees it
                    }
                }
                Tamper::OtherKey => {
                    if other.curve() != curve {
                        return Ok(());
                    }
                    key = other.public_key();
                }
                Tamper::ZeroR => sig[..32].fill(0),
                Tamper::ZeroS => sig[32..].fill(0),
                Tamper::ROrder => sig[..32].copy_from_slice(&order),
                Tamper::SOrder => sig[32..].copy_from_slice(&order),
                Tamper::SwapRS => sig.rotate_left(32),
                Tamper::Random(r, s) => {
                    sig[..32].copy_from_slice(&r);
                    sig[32..].copy_from_slice(&s);
                }
            }
            let sig = Signature::new(curve, sig);
            let expected = reference(&key, &digest_used, &sig);
            let fast = Verifier::new(&key).expect("key").verify_digest(&digest_used, &sig);
            prop_assert_eq!(&fast, &expected, "{:?} on {}", tamper, curve);
            prop_assert_eq!(&verify_digest_free(&key, &digest_used, &sig), &expected);
            match tamper {
                Tamper::None => prop_assert_eq!(fast, Ok(())),
                Tamper::HighS if curve == Curve::P256 => prop_assert_eq!(fast, Ok(())),
                Tamper::HighS if curve == Curve::Secp256k1 => {
                    prop_assert_eq!(fast, Err(Error::HighS))
                }
                // A digest of 0 mod n: ECDSA then accepts (r, s) under -Q as under Q (u1 = 0,
                // so the point is ±u2·Q, one x), and flipping the key's prefix 02/03 gives -Q.
                // Both verifiers must still agree (above).
                Tamper::FlipKey(_) if digest_used == [0; 32] || digest_used == order => {}
                Tamper::FlipR(_) | Tamper::FlipS(_) | Tamper::FlipDigest(_) | Tamper::FlipKey(_)
                | Tamper::ZeroR | Tamper::ZeroS | Tamper::ROrder | Tamper::SOrder => {
                    prop_assert!(fast.is_err())
                }
                _ => {}
            }
        }
    }

    fn verify_digest_free(key: &PublicKey, digest: &[u8; 32], sig: &Signature) -> Result<()> {
        crate::verify_digest(key, digest, sig)
    }

    #[test]
    fn curve_mismatch_is_refused_before_the_backend() {
        let k1 = SecretKey::from_bytes(Curve::Secp256k1, &[7; 32]).expect("key");
        let p2 = SecretKey::from_bytes(Curve::P256, &[7; 32]).expect("key");
        let sig = p2.sign_digest(&[1; 32]).expect("sign");
        let verifier = Verifier::new(&k1.public_key()).expect("key");
        assert!(matches!(
            verifier.verify_digest(&[1; 32], &sig),
            Err(Error::CurveMismatch { .. })
        ));
    }

    #[test]
    fn verifier_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Verifier>();
    }
}
