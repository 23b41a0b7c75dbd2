//! A bounded cursor over the bytes of one generic operation, reading the Octez
//! `Data_encoding` binary primitives. Every read checks the length first: no index can go out
//! of bounds, whatever the input.

use super::{OperationError, OperationKind};

/// The cursor, with the kind of the content being read (for error messages).
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    kind: Option<OperationKind>,
}

/// A zarith natural's or integer's largest size where Octez bounds it: `check_size 10`
/// (`Tez_repr.encoding`, `Manager_counter_repr.encoding_for_operation`, gas and storage limits
/// in `operation_repr.ml`).
pub(super) const ZARITH_CHECKED: usize = 10;

impl<'a> Reader<'a> {
    /// A cursor at `offset` of `bytes` (the whole payload, so offsets in errors are payload
    /// offsets).
    pub(super) const fn new(bytes: &'a [u8], offset: usize) -> Self {
        Self {
            bytes,
            offset,
            kind: None,
        }
    }

    /// The offset of the next byte.
    pub(super) const fn offset(&self) -> usize {
        self.offset
    }

    /// Whether every byte has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.offset >= self.bytes.len()
    }

    /// Names the content being read from now on, for error messages.
    pub(super) fn set_kind(&mut self, kind: OperationKind) {
        self.kind = Some(kind);
    }

    fn kind_name(&self) -> &'static str {
        self.kind.map_or("operation", OperationKind::name)
    }

    /// The error for a field whose value is not allowed.
    pub(super) fn invalid(&self, field: &'static str, at: usize, reason: String) -> OperationError {
        OperationError::InvalidField {
            kind: self.kind_name(),
            field,
            offset: at,
            reason,
        }
    }

    /// The next `n` bytes.
    pub(super) fn take(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], OperationError> {
        let end = self.offset.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.offset..end)) {
            Some(slice) => {
                self.offset += n;
                Ok(slice)
            }
            None => Err(OperationError::Truncated {
                kind: self.kind_name(),
                field,
                offset: self.offset,
                needed: n,
                left: self.bytes.len().saturating_sub(self.offset),
            }),
        }
    }

    /// One byte (`uint8`, a tag, a flag).
    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, OperationError> {
        Ok(self.take(1, field)?.first().copied().unwrap_or_default())
    }

    /// A big-endian `uint30` length prefix (`Data_encoding` dynamic size, 4 bytes), checked
    /// against the bytes left.
    fn length(&mut self, field: &'static str) -> Result<usize, OperationError> {
        let at = self.offset;
        let raw = self.take(4, field)?;
        let mut be = [0u8; 4];
        be.copy_from_slice(raw);
        let n = u32::from_be_bytes(be);
        if n > (1 << 30) - 1 {
            return Err(self.invalid(field, at, format!("length {n} is above 2^30 - 1")));
        }
        usize::try_from(n).map_err(|_| self.invalid(field, at, format!("length {n} is too large")))
    }

    /// Bytes with a 4-byte length prefix (`dynamic_size`, `bytes`, `string`, `list`).
    pub(super) fn dynamic(&mut self, field: &'static str) -> Result<&'a [u8], OperationError> {
        let n = self.length(field)?;
        self.take(n, field)
    }

    /// A `Data_encoding` optional field: `0x00` absent, `0xff` present.
    pub(super) fn option(&mut self, field: &'static str) -> Result<bool, OperationError> {
        let at = self.offset;
        match self.u8(field)? {
            0x00 => Ok(false),
            0xff => Ok(true),
            other => Err(self.invalid(
                field,
                at,
                format!("presence flag is 0x{other:02x}, expected 0x00 or 0xff"),
            )),
        }
    }

    /// A zarith number (`n` or `z`: 7 bits a byte, high bit set on all but the last byte), at
    /// most `max` bytes, canonical (no trailing zero byte), as `Data_encoding` reads it.
    pub(super) fn zarith(&mut self, field: &'static str, max: usize) -> Result<(), OperationError> {
        let at = self.offset;
        for i in 0..max {
            let byte = self.u8(field)?;
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(self.invalid(
                        field,
                        at,
                        "number has a trailing zero byte".to_owned(),
                    ));
                }
                return Ok(());
            }
        }
        Err(self.invalid(field, at, format!("number is longer than {max} bytes")))
    }

    /// A public key hash (`Signature.Public_key_hash.encoding`): a curve tag (0 Ed25519,
    /// 1 secp256k1, 2 P-256, 3 BLS, 4 ML-DSA-44 in Octez `src/lib_crypto/signature_v3.ml`) and
    /// 20 bytes. Returns the 21 bytes.
    pub(super) fn pkh(&mut self, field: &'static str) -> Result<&'a [u8], OperationError> {
        let at = self.offset;
        let raw = self.take(21, field)?;
        let tag = raw.first().copied().unwrap_or_default();
        if tag > 4 {
            return Err(self.invalid(field, at, format!("unknown key hash tag {tag}")));
        }
        Ok(raw)
    }

    /// A public key (`Signature.Public_key.encoding`): a curve tag and the key, 32 (Ed25519),
    /// 33 (secp256k1, P-256 compressed), 48 (BLS) or 1312 (ML-DSA-44) bytes.
    pub(super) fn public_key(&mut self, field: &'static str) -> Result<(), OperationError> {
        let at = self.offset;
        let len = match self.u8(field)? {
            0 => 32,
            1 | 2 => 33,
            3 => 48,
            4 => 1312,
            tag => return Err(self.invalid(field, at, format!("unknown public key tag {tag}"))),
        };
        self.take(len, field).map(drop)
    }

    /// A contract (`Contract_repr.encoding`, 22 bytes): `0x00` and an implicit account's key
    /// hash, or `0x01`, a 20-byte contract hash and one padding byte. Returns the implicit
    /// account's 21-byte key hash, if it is one.
    pub(super) fn contract(
        &mut self,
        field: &'static str,
    ) -> Result<Option<&'a [u8]>, OperationError> {
        let at = self.offset;
        match self.u8(field)? {
            0 => self.pkh(field).map(Some),
            1 => self.take(21, field).map(|_| None),
            tag => Err(self.invalid(field, at, format!("unknown contract tag {tag}"))),
        }
    }

    /// An originated contract only (`Contract_repr.originated_encoding`): `0x01`, 20 bytes,
    /// one padding byte.
    pub(super) fn originated(&mut self, field: &'static str) -> Result<(), OperationError> {
        let at = self.offset;
        match self.u8(field)? {
            1 => self.take(21, field).map(drop),
            tag => Err(self.invalid(
                field,
                at,
                format!("tag {tag} is not an originated contract (KT1, tag 1)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zarith_reads_to_the_last_byte() {
        let mut r = Reader::new(&[0x80, 0x80, 0x01, 0xaa], 0);
        r.zarith("n", ZARITH_CHECKED).expect("valid");
        assert_eq!(r.offset(), 3);
        let mut r = Reader::new(&[0x80, 0x00], 0);
        assert!(matches!(
            r.zarith("n", 10),
            Err(OperationError::InvalidField { .. })
        ));
        let mut r = Reader::new(&[0xff; 11], 0);
        assert!(matches!(
            r.zarith("n", 10),
            Err(OperationError::InvalidField { .. })
        ));
        let mut r = Reader::new(&[0xff; 3], 0);
        assert!(matches!(
            r.zarith("n", 10),
            Err(OperationError::Truncated { .. })
        ));
    }

    #[test]
    fn dynamic_checks_the_length_against_the_rest() {
        let mut r = Reader::new(&[0, 0, 0, 2, 7, 8, 9], 0);
        assert_eq!(r.dynamic("b").expect("fits"), &[7, 8]);
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1], 0);
        assert!(matches!(
            r.dynamic("b"),
            Err(OperationError::InvalidField { .. })
        ));
        let mut r = Reader::new(&[0, 0, 1, 0, 1], 0);
        assert!(matches!(
            r.dynamic("b"),
            Err(OperationError::Truncated {
                needed: 256,
                left: 1,
                offset: 4,
                ..
            })
        ));
    }
}
