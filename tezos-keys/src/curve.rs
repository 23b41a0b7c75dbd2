//! The three signature curves Tezos implicit accounts use.

use core::fmt;

/// A Tezos signature curve, named after its address prefix.
///
/// | Curve | Address | Public key | Signature |
/// |---|---|---|---|
/// | [`Curve::Ed25519`] | `tz1` | `edpk` | `edsig` |
/// | [`Curve::Secp256k1`] | `tz2` | `sppk` | `spsig1` |
/// | [`Curve::P256`] | `tz3` | `p2pk` | `p2sig` |
///
/// BLS (`tz4`) is not supported by this crate.
///
/// ```
/// use tezos_keys::Curve;
/// assert_eq!(Curve::Secp256k1.address_prefix(), "tz2");
/// assert_eq!(Curve::P256.to_string(), "P-256 (tz3)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Curve {
    /// Ed25519 (EdDSA), `tz1`.
    Ed25519,
    /// secp256k1 (ECDSA), `tz2`.
    Secp256k1,
    /// NIST P-256 / secp256r1 (ECDSA), `tz3`.
    P256,
}

impl Curve {
    /// All supported curves, in tag order.
    pub const ALL: [Self; 3] = [Self::Ed25519, Self::Secp256k1, Self::P256];

    /// The tag byte used for this curve in forged (binary) public keys and
    /// public key hashes (Octez `signature_v1.ml`): 0, 1, 2.
    pub const fn tag(self) -> u8 {
        match self {
            Self::Ed25519 => 0x00,
            Self::Secp256k1 => 0x01,
            Self::P256 => 0x02,
        }
    }

    /// The curve for a forged tag byte, if it is one this crate supports.
    pub const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0x00 => Some(Self::Ed25519),
            0x01 => Some(Self::Secp256k1),
            0x02 => Some(Self::P256),
            _ => None,
        }
    }

    /// The address prefix: `tz1`, `tz2` or `tz3`.
    pub const fn address_prefix(self) -> &'static str {
        match self {
            Self::Ed25519 => "tz1",
            Self::Secp256k1 => "tz2",
            Self::P256 => "tz3",
        }
    }

    /// Length in bytes of the public key as Tezos stores it: 32 for Ed25519,
    /// 33 (compressed SEC1) for the ECDSA curves.
    pub const fn public_key_len(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            Self::Secp256k1 | Self::P256 => 33,
        }
    }

    /// Whether signatures on this curve are ECDSA (and so have an `s` that
    /// can be high or low).
    pub const fn is_ecdsa(self) -> bool {
        !matches!(self, Self::Ed25519)
    }

    /// A short human name: `Ed25519`, `secp256k1`, `P-256`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
            Self::Secp256k1 => "secp256k1",
            Self::P256 => "P-256",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.address_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for curve in Curve::ALL {
            assert_eq!(Curve::from_tag(curve.tag()), Some(curve));
        }
        assert_eq!(Curve::from_tag(3), None);
    }
}
