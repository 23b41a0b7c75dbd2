//! Choosing a token of a module, and reporting what it is and can do.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::module::{Module, TokenSummary};

/// Which token of the module to use.
///
/// Parsed from text as `serial:XXXX`, `slot:N`, `first`, or otherwise a label:
///
/// ```
/// use cryptoki_ops::TokenSelector;
/// assert_eq!("baker".parse::<TokenSelector>()?, TokenSelector::Label("baker".into()));
/// assert_eq!("serial:0a1b".parse::<TokenSelector>()?, TokenSelector::Serial("0a1b".into()));
/// assert_eq!("slot:3".parse::<TokenSelector>()?, TokenSelector::SlotId(3));
/// assert!("slot:x".parse::<TokenSelector>().is_err());
/// # Ok::<(), cryptoki_ops::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenSelector {
    /// The first initialised token (CloudHSM has exactly one per cluster).
    #[default]
    First,
    /// The token with this label (SoftHSM2 moves tokens between slots: prefer label or serial).
    Label(String),
    /// The token with this serial number.
    Serial(String),
    /// The token in this slot.
    SlotId(u64),
}

impl FromStr for TokenSelector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(serial) = s.strip_prefix("serial:") {
            Ok(Self::Serial(serial.to_string()))
        } else if let Some(slot) = s.strip_prefix("slot:") {
            slot.parse()
                .map(Self::SlotId)
                .map_err(|_| Error::InvalidInput {
                    what: "token selector",
                    reason: format!("'{s}': a slot id must be a decimal number, e.g. slot:0"),
                })
        } else if s == "first" || s.is_empty() {
            Ok(Self::First)
        } else {
            Ok(Self::Label(s.to_string()))
        }
    }
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::First => write!(f, "(first initialised token)"),
            Self::Label(l) => write!(f, "labelled '{l}'"),
            Self::Serial(s) => write!(f, "with serial '{s}'"),
            Self::SlotId(i) => write!(f, "in slot {i}"),
        }
    }
}

impl TokenSelector {
    /// Finds the token this selector names among the module's initialised tokens.
    ///
    /// On SoftHSM2, a token that is not there is looked for again a bounded number of times
    /// with a short back-off before [`Error::TokenNotFound`]: SoftHSM2 shows no token while
    /// another process rewrites the token's files (and, when it read its directory at that
    /// moment, until the module is initialised again, which this does when no session pool of
    /// this crate is open on it).
    pub fn select(&self, module: &Module) -> Result<TokenSummary> {
        let mut attempt = 0;
        let tokens = loop {
            let tokens = module.tokens()?;
            if let Some(found) = tokens.iter().find(|t| self.matches(t)) {
                return Ok(found.clone());
            }
            if !module.is_softhsm() || !crate::module::transient_backoff(&mut attempt) {
                break tokens;
            }
            module.reload_if_idle();
        };
        Err(Error::TokenNotFound {
            wanted: self.to_string(),
            module: module.path().to_path_buf(),
            available: if tokens.is_empty() {
                "none (initialise one, e.g. `softhsm2-util --init-token --free`)".into()
            } else {
                tokens
                    .iter()
                    .map(|t| format!("'{}' (serial {}, slot {})", t.label, t.serial, t.slot_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    fn matches(&self, token: &TokenSummary) -> bool {
        match self {
            Self::First => true,
            Self::Label(l) => &token.label == l,
            Self::Serial(s) => &token.serial == s,
            Self::SlotId(i) => token.slot_id == *i,
        }
    }
}

/// What a token is and what it can do, as reported by the module.
#[derive(Debug, Clone)]
pub struct TokenReport {
    /// Module path.
    pub module: String,
    /// Module manufacturer and description (`C_GetInfo`).
    pub library: String,
    /// Slot id.
    pub slot_id: u64,
    /// Token label.
    pub label: String,
    /// Token manufacturer.
    pub manufacturer: String,
    /// Token model.
    pub model: String,
    /// Token serial number.
    pub serial: String,
    /// Sessions open on the token (all applications), if the module reports it.
    pub session_count: Option<u64>,
    /// Read-write sessions open, if reported.
    pub rw_session_count: Option<u64>,
    /// Maximum sessions, as the module states it ("unlimited", "unavailable" or a number).
    pub max_session_count: String,
    /// Names of the mechanisms the token supports.
    pub mechanisms: Vec<String>,
}
