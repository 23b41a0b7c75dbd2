//! The CLI's JSON answers (serde types) and how they are read into the API's types.

use serde::Deserialize;
use serde_json::Value;

use crate::error::CloudHsmError;
use crate::keys::{KeyListing, KeyUser};
use crate::types::{HsmUser, KeyRef, MfaStrategy, UserRole};
use crate::Result;

/// The answer envelope: `{"error_code": 0, "data": ...}` on success (every `cloudhsm_cli-*` page),
/// `{"error_code": 1, "data": "<message>"}` on failure (AWS docs
/// `manage-keys-cloudhsm-cli-filtering`, `quorum-auth-chsm-cli-admin`).
#[derive(Deserialize)]
pub(crate) struct Envelope {
    pub(crate) error_code: i64,
    #[serde(default)]
    pub(crate) data: Value,
}

/// `user list` (AWS docs `cloudhsm_cli-user-list`):
///
/// ```json
/// {"error_code": 0, "data": {"users": [
///   {"username": "admin", "role": "admin", "locked": "false", "mfa": [], "cluster-coverage": "full"},
///   {"username": "app_user", "role": "internal(APPLIANCE_USER)", "locked": "false",
///    "mfa": [{"strategy": "token-sign", "status": "enabled"}], "cluster-coverage": "full"}]}}
/// ```
#[derive(Deserialize)]
pub(crate) struct WireUserList {
    pub(crate) users: Vec<WireUser>,
}

#[derive(Deserialize)]
pub(crate) struct WireUser {
    pub(crate) username: String,
    pub(crate) role: String,
    /// A string, `"false"`, in the documented sample; a JSON boolean is accepted too.
    #[serde(default)]
    pub(crate) locked: Value,
    #[serde(default)]
    pub(crate) mfa: Vec<WireMfa>,
    #[serde(rename = "cluster-coverage", default)]
    pub(crate) cluster_coverage: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireMfa {
    pub(crate) strategy: String,
    pub(crate) status: String,
}

/// `user create` (AWS docs `cloudhsm_cli-user-create`):
/// `{"error_code": 0, "data": {"username": "alice", "role": "crypto-user"}}`.
#[derive(Deserialize)]
pub(crate) struct WireCreatedUser {
    pub(crate) username: String,
    pub(crate) role: String,
}

/// `key list --verbose` (AWS docs `cloudhsm_cli-key-list`, `manage-keys-cloudhsm-cli-filtering`):
///
/// ```json
/// {"error_code": 0, "data": {"matched_keys": [{"key-reference": "0x00000000001c0686",
///   "key-info": {"key-owners": [{"username": "cu1", "key-coverage": "full"}],
///                "shared-users": [{"username": "alice", "key-coverage": "full"}], ...},
///   "attributes": {"label": "...", "class": "private-key", ...}}],
///  "total_key_count": 1, "returned_key_count": 1}}
/// ```
#[derive(Deserialize)]
pub(crate) struct WireKeyList {
    pub(crate) matched_keys: Vec<WireKey>,
    #[serde(default)]
    pub(crate) total_key_count: Option<u64>,
    /// Set when more keys follow (`--max-items` reached); given back as `--starting-token`
    /// (AWS docs `cloudhsm_cli-key-list`). The field's spelling is not shown in AWS's examples;
    /// both spellings the CLI uses elsewhere are accepted.
    #[serde(default, alias = "next-token")]
    pub(crate) next_token: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireKey {
    #[serde(rename = "key-reference", default)]
    pub(crate) key_reference: String,
    #[serde(rename = "key-info", default)]
    pub(crate) key_info: Option<WireKeyInfo>,
    #[serde(default)]
    pub(crate) attributes: Option<WireKeyAttributes>,
}

#[derive(Deserialize)]
pub(crate) struct WireKeyInfo {
    #[serde(rename = "key-owners", default)]
    pub(crate) key_owners: Vec<WireKeyUser>,
    #[serde(rename = "shared-users", default)]
    pub(crate) shared_users: Vec<WireKeyUser>,
    #[serde(rename = "cluster-coverage", default)]
    pub(crate) cluster_coverage: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireKeyUser {
    pub(crate) username: String,
    #[serde(rename = "key-coverage", default)]
    pub(crate) key_coverage: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct WireKeyAttributes {
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) class: Option<String>,
    #[serde(default)]
    pub(crate) trusted: Option<Value>,
}

impl WireKeyUser {
    fn into_user(self) -> KeyUser {
        KeyUser {
            username: self.username,
            key_coverage: self.key_coverage,
        }
    }
}

impl WireKey {
    fn into_listing(self) -> KeyListing {
        let (owners, shared_users, cluster_coverage) = match self.key_info {
            Some(info) => (
                info.key_owners
                    .into_iter()
                    .map(WireKeyUser::into_user)
                    .collect(),
                info.shared_users
                    .into_iter()
                    .map(WireKeyUser::into_user)
                    .collect(),
                info.cluster_coverage,
            ),
            None => (Vec::new(), Vec::new(), None),
        };
        let attributes = self.attributes;
        KeyListing {
            reference: self.key_reference,
            label: attributes.as_ref().and_then(|a| a.label.clone()),
            class: attributes.as_ref().and_then(|a| a.class.clone()),
            trusted: attributes
                .as_ref()
                .and_then(|a| a.trusted.as_ref())
                .and_then(parse_flag),
            owners,
            shared_users,
            cluster_coverage,
        }
    }
}

pub(crate) fn from_data<T: for<'de> Deserialize<'de>>(command: &str, data: Value) -> Result<T> {
    serde_json::from_value(data).map_err(|e| CloudHsmError::BadResponse {
        command: command.to_string(),
        reason: format!("unexpected data: {e}"),
    })
}

/// The first JSON object in `stdout` (the CLI may print prompts before it), as an envelope.
pub(crate) fn parse_envelope(stdout: &str) -> std::result::Result<Option<Envelope>, String> {
    let Some(start) = stdout.find('{') else {
        return Ok(None);
    };
    match serde_json::Deserializer::from_str(&stdout[start..])
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(value)) => serde_json::from_value::<Envelope>(value)
            .map(Some)
            .map_err(|e| format!("its JSON is not {{\"error_code\": N, \"data\": ...}}: {e}")),
        Some(Err(e)) => Err(format!("its output is not valid JSON: {e}")),
        None => Ok(None),
    }
}

/// A failure's `data`: a message string as documented, else the JSON itself. Not yet redacted
/// nor shortened.
pub(crate) fn message_text(data: &Value) -> String {
    match data {
        Value::String(s) => s.clone(),
        Value::Null => "no message".to_string(),
        other => other.to_string(),
    }
}

/// `locked`: `"false"`/`"true"` as documented, or a JSON boolean.
pub(crate) fn parse_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Null => Some(false),
        _ => None,
    }
}

/// `user list`'s `data` as users.
pub(crate) fn read_users(command: &str, data: Value) -> Result<Vec<HsmUser>> {
    let data: WireUserList = from_data(command, data)?;
    data.users
        .into_iter()
        .map(|u| {
            let locked = parse_flag(&u.locked).ok_or_else(|| CloudHsmError::BadResponse {
                command: command.to_string(),
                reason: format!("user '{}' has locked = {}", u.username, u.locked),
            })?;
            Ok(HsmUser {
                role: UserRole::parse(&u.role),
                locked,
                mfa: u
                    .mfa
                    .into_iter()
                    .map(|m| MfaStrategy {
                        strategy: m.strategy,
                        status: m.status,
                    })
                    .collect(),
                cluster_coverage: u.cluster_coverage,
                username: u.username,
            })
        })
        .collect()
}

/// `user create`'s `data`: the user `username`, just created.
pub(crate) fn read_created_user(command: &str, data: Value, username: &str) -> Result<HsmUser> {
    let created: WireCreatedUser = from_data(command, data)?;
    if created.username != username {
        return Err(CloudHsmError::BadResponse {
            command: command.to_string(),
            reason: format!(
                "it reports creating user '{}' instead of '{username}'",
                created.username
            ),
        });
    }
    Ok(HsmUser {
        username: created.username,
        role: UserRole::parse(&created.role),
        locked: false,
        mfa: Vec::new(),
        cluster_coverage: None,
    })
}

/// One page of `key list --verbose`: the keys, and the token of the next page if any.
pub(crate) fn read_key_page(
    command: &str,
    data: Value,
) -> Result<(Vec<KeyListing>, Option<String>)> {
    let list: WireKeyList = from_data(command, data)?;
    let keys = list
        .matched_keys
        .into_iter()
        .map(WireKey::into_listing)
        .collect();
    Ok((keys, list.next_token.filter(|t| !t.is_empty())))
}

/// `key list --filter ... --verbose`'s `data`: the one key matched.
pub(crate) fn read_one_key(command: &str, data: Value, key: &KeyRef) -> Result<KeyListing> {
    let list: WireKeyList = from_data(command, data)?;
    let matched = list.matched_keys.len() as u64;
    let total = list.total_key_count.unwrap_or(matched).max(matched);
    let mut keys = list.matched_keys.into_iter();
    match (keys.next(), total) {
        (Some(found), 1) => Ok(found.into_listing()),
        (None, _) | (_, 0) => Err(CloudHsmError::KeyNotFound {
            key: key.to_string(),
            message: "`key list` matched no key".to_string(),
        }),
        (Some(_), _) => Err(CloudHsmError::AmbiguousKey {
            key: key.to_string(),
            message: format!("`key list` matched {total} keys"),
        }),
    }
}

/// `key list --verbose`'s `data`: the users the one key matched is shared with.
pub(crate) fn read_shared_users(command: &str, data: Value, key: &KeyRef) -> Result<Vec<String>> {
    let list: WireKeyList = from_data(command, data)?;
    let matched = list.matched_keys.len() as u64;
    let total = list.total_key_count.unwrap_or(matched).max(matched);
    let mut keys = list.matched_keys.into_iter();
    let found = match (keys.next(), total) {
        (Some(found), 1) => found,
        (None, _) | (_, 0) => {
            return Err(CloudHsmError::KeyNotFound {
                key: key.to_string(),
                message: "`key list` matched no key".to_string(),
            })
        }
        (Some(_), _) => {
            return Err(CloudHsmError::AmbiguousKey {
                key: key.to_string(),
                message: format!("`key list` matched {total} keys"),
            })
        }
    };
    let info = found.key_info.ok_or_else(|| CloudHsmError::BadResponse {
        command: command.to_string(),
        reason: format!("key {} has no key-info", found.key_reference),
    })?;
    Ok(info.shared_users.into_iter().map(|u| u.username).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::matched_key_count;

    #[test]
    fn envelope_parsing() {
        // AWS docs `manage-keys-cloudhsm-cli-filtering` ("Filtration Errors").
        let failure = r#"{
  "error_code": 1,
  "data": "Key selection criteria matched 48 keys. Refine selection criteria to select a single key."
}"#;
        let envelope = parse_envelope(failure).unwrap().unwrap();
        assert_eq!(envelope.error_code, 1);
        let message = message_text(&envelope.data);
        assert_eq!(matched_key_count(&message.to_ascii_lowercase()), Some(48));
        // A prompt before the JSON, as in AWS docs `cloudhsm_cli-user-create`.
        let prompted = "Enter password:\nConfirm password:\n{\"error_code\": 0, \"data\": {\"username\": \"alice\", \"role\": \"crypto-user\"}}";
        assert_eq!(parse_envelope(prompted).unwrap().unwrap().error_code, 0);
        assert!(parse_envelope("no json here").unwrap().is_none());
        assert!(parse_envelope("{\"data\": 1}").is_err());
        assert!(parse_envelope("{\"error_code\": 0,").is_err());
    }

    #[test]
    fn locked_flag() {
        assert_eq!(parse_flag(&Value::String("false".into())), Some(false));
        assert_eq!(parse_flag(&Value::String("true".into())), Some(true));
        assert_eq!(parse_flag(&Value::Bool(true)), Some(true));
        assert_eq!(parse_flag(&Value::String("maybe".into())), None);
    }
}
