//! Reading SoftHSM2's `token.object`, to tell a complete token file from a damaged one before
//! SoftHSM2 is loaded (SoftHSM2 silently skips a token whose file it cannot read).
//!
//! The format is SoftHSM2's object file (`src/lib/object_store/ObjectFile.cpp` and `File.cpp`
//! in SoftHSMv2): a big-endian u64 generation, then records of a u64 attribute type, a u64
//! kind (1 boolean: 1 byte; 2 integer: u64; 3 byte string: u64 length + bytes; 4 attribute
//! map: u64 byte length + entries; 5 mechanism set: u64 count + u64 each) and the value, up to
//! the end of the file. The token's attributes are vendor attributes `CKA_VENDOR_DEFINED +
//! 0x5348 + n` (`OSAttributes.h`): 1 label, 2 serial, 3 flags, 4 SO PIN, 5 user PIN.

/// `CKA_VENDOR_DEFINED + 0x5348` ('SH'), SoftHSM2's vendor attribute base.
const SOFTHSM: u64 = 0x8000_0000 + 0x5348;
const LABEL: u64 = SOFTHSM + 1;
const SERIAL: u64 = SOFTHSM + 2;
const FLAGS: u64 = SOFTHSM + 3;
const SO_PIN: u64 = SOFTHSM + 4;
const USER_PIN: u64 = SOFTHSM + 5;

/// What a complete `token.object` says about its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenObject {
    /// The token label, padding removed.
    pub label: String,
    /// Whether the user PIN was set (`C_InitPIN` completed).
    pub user_pin_set: bool,
}

/// Why a `token.object` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The file is missing.
    Missing,
    /// The file is empty (SoftHSM2 was killed between its truncate and its write).
    Empty,
    /// The file ends inside a record or holds something else.
    Unreadable,
}

impl Damage {
    /// A few words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Empty => "empty",
            Self::Unreadable => "unreadable (cut short or not a SoftHSM2 token file)",
        }
    }
}

/// Reads the token file at `path`.
pub fn read(path: &std::path::Path) -> Result<TokenObject, Damage> {
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Damage::Missing),
        Err(_) => Err(Damage::Unreadable),
    }
}

/// Parses the bytes of a `token.object`: every record must be whole and the token's label,
/// serial, flags and SO PIN present.
pub fn parse(bytes: &[u8]) -> Result<TokenObject, Damage> {
    if bytes.is_empty() {
        return Err(Damage::Empty);
    }
    let mut reader = Reader(bytes);
    reader.u64()?; // generation
    let (mut label, mut serial, mut flags, mut so_pin, mut user_pin) =
        (None, false, false, false, false);
    while !reader.0.is_empty() {
        let attribute = reader.u64()?;
        let kind = reader.u64()?;
        let value = reader.value(kind)?;
        match (attribute, kind) {
            (LABEL, 3) => label = Some(value),
            (SERIAL, 3) => serial = true,
            (FLAGS, 2) => flags = true,
            (SO_PIN, 3) => so_pin = !value.is_empty(),
            (USER_PIN, 3) => user_pin = !value.is_empty(),
            (LABEL | SERIAL | FLAGS | SO_PIN | USER_PIN, _) => return Err(Damage::Unreadable),
            _ => {}
        }
    }
    let label = label.ok_or(Damage::Unreadable)?;
    if !(serial && flags && so_pin) || label.len() != 32 {
        return Err(Damage::Unreadable);
    }
    let label = std::str::from_utf8(label).map_err(|_| Damage::Unreadable)?;
    Ok(TokenObject {
        label: label.trim_end_matches(' ').to_string(),
        user_pin_set: user_pin,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], Damage> {
        let n = usize::try_from(n).map_err(|_| Damage::Unreadable)?;
        if n > self.0.len() {
            return Err(Damage::Unreadable);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, Damage> {
        let bytes = self.take(8)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// The value of an attribute of `kind` (byte strings returned, others skipped).
    fn value(&mut self, kind: u64) -> Result<&'a [u8], Damage> {
        match kind {
            1 => self.take(1),
            2 => self.take(8),
            3 | 4 => {
                // A byte string, or an attribute map (its byte length, then its entries).
                let len = self.u64()?;
                self.take(len)
            }
            5 => {
                let count = self.u64()?;
                self.take(count.checked_mul(8).ok_or(Damage::Unreadable)?)
            }
            _ => Err(Damage::Unreadable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(out: &mut Vec<u8>, attribute: u64, kind: u64, value: &[u8]) {
        out.extend(attribute.to_be_bytes());
        out.extend(kind.to_be_bytes());
        if kind == 3 {
            out.extend((value.len() as u64).to_be_bytes());
        }
        out.extend(value);
    }

    fn token(user_pin: bool) -> Vec<u8> {
        let mut out = 7u64.to_be_bytes().to_vec();
        record(
            &mut out,
            LABEL,
            3,
            format!("{:<32}", "tezos-hsm").as_bytes(),
        );
        record(&mut out, SERIAL, 3, b"0123456789abcdef");
        record(&mut out, FLAGS, 2, &0x42du64.to_be_bytes());
        record(&mut out, SO_PIN, 3, &[1; 72]);
        if user_pin {
            record(&mut out, USER_PIN, 3, &[2; 72]);
        }
        out
    }

    #[test]
    fn a_complete_token_file_gives_its_label_and_user_pin_state() {
        let parsed = parse(&token(true)).unwrap();
        assert_eq!(parsed.label, "tezos-hsm");
        assert!(parsed.user_pin_set);
        assert!(!parse(&token(false)).unwrap().user_pin_set);
    }

    #[test]
    fn empty_cut_short_or_foreign_files_are_damaged() {
        assert_eq!(parse(&[]), Err(Damage::Empty));
        let whole = token(true);
        for cut in [1, 8, 20, whole.len() / 2, whole.len() - 1] {
            assert_eq!(
                parse(&whole[..cut]),
                Err(Damage::Unreadable),
                "cut at {cut}"
            );
        }
        assert_eq!(parse(&[0xa5; 97]), Err(Damage::Unreadable));
        // A file of whole records that is not a token (no label).
        assert_eq!(parse(&7u64.to_be_bytes()), Err(Damage::Unreadable));
    }
}
