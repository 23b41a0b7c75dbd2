//! The label and id of a key about to be made: what is accepted.

use crate::error::{Error, Result};

/// The longest `CKA_LABEL` a new key may get, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// The longest `CKA_ID` a new key may get, in bytes.
pub const MAX_ID_BYTES: usize = 32;

/// Checks the label of a key about to be made (generated, imported or restored): 1 to
/// [`MAX_LABEL_BYTES`] bytes of printable UTF-8, without control characters or the invisible
/// characters that reorder text. Labels are printed (`key list`, errors), where a newline or an
/// escape sequence could forge output. Keys made by other tools are still found by any label.
///
/// ```
/// use cryptoki_ops::keys::check_label;
/// assert!(check_label("baker-1").is_ok());
/// assert!(check_label("clé").is_ok());
/// assert!(check_label("").is_err());
/// assert!(check_label("two\nlines").is_err());
/// assert_eq!(check_label(&"x".repeat(65)).unwrap_err().kind(), "invalid_input");
/// ```
pub fn check_label(label: &str) -> Result<()> {
    const RULE: &str = "a key label is 1 to 64 bytes of printable UTF-8 without control characters";
    let refuse = |why: String| {
        Err(Error::InvalidInput {
            what: "key label",
            reason: format!("{RULE}; {why}"),
        })
    };
    if label.is_empty() {
        return refuse("this one is empty".into());
    }
    if label.len() > MAX_LABEL_BYTES {
        return refuse(format!("this one is {} bytes long", label.len()));
    }
    let invisible = |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    if let Some((at, c)) = label
        .char_indices()
        .find(|(_, c)| c.is_control() || invisible(*c))
    {
        return refuse(format!(
            "this one has the character U+{:04X} at byte {at}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks the `CKA_ID` of a key about to be made: 1 to [`MAX_ID_BYTES`] bytes. An empty id
/// cannot be used to find the key's other half or to cache its handle.
///
/// ```
/// use cryptoki_ops::keys::check_id;
/// assert!(check_id(&[1, 2, 3]).is_ok());
/// assert!(check_id(&[]).is_err());
/// assert!(check_id(&[0; 33]).is_err());
/// ```
pub fn check_id(id: &[u8]) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(Error::InvalidInput {
            what: "key id",
            reason: format!(
                "a CKA_ID is 1 to 32 bytes; this one is {} bytes long",
                id.len()
            ),
        });
    }
    Ok(())
}
