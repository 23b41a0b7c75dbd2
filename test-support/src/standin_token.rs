//! The HSM behind the stand-in `cloudhsm-cli` (`cloudhsm-cli/fixtures/cloudhsm-cli-standin`) in
//! the CLI's CloudHSM tests: its `key list` and `key set-attribute` are handed to this test binary
//! (`STANDIN_TOKEN_HELPER`), which answers them from the test's SoftHSM2 token, in the JSON AWS
//! documents (`cloudhsm_cli-key-list`, `manage-keys-cloudhsm-cli-filtering`,
//! `cloudhsm_cli-key-set-attribute`).
//!
//! `key set-attribute --name trusted --value true` really marks the key trusted, as the admin does
//! on CloudHSM. SoftHSM2 lets only its security officer set `CKA_TRUSTED`, but hides private
//! objects from it, and a CloudHSM wrapping key is private (and SoftHSM2 refuses to copy a
//! private object to a public one). So the helper finds the key through PKCS#11 as its owner,
//! marks it, and sets `CKA_TRUSTED` in the key's SoftHSM2 file (see `mark_trusted_in_file`). The
//! key keeps its handle, label, id, value and key reference (computed from class and id).

use std::path::Path;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde_json::{json, Value};

/// Environment variable naming the file with the CLI arguments, one a line: set, the test
/// `token_helper` answers them instead of testing.
pub const HELPER_ENV: &str = "TEZOS_HSM_TEST_TOKEN_HELPER_ARGS";
/// Environment variable naming the token the helper acts on (default: the test token).
pub const TOKEN_ENV: &str = "STANDIN_TOKEN_LABEL";

fn token_label() -> String {
    std::env::var(TOKEN_ENV).unwrap_or_else(|_| crate::TOKEN_LABEL.to_string())
}

/// A wrapper script in `dir` that the stand-in runs as `STANDIN_TOKEN_HELPER`: it writes its
/// arguments to a file and runs this test binary's `token_helper` test, which answers them.
pub fn helper_program(dir: &Path, test_name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let args = dir.join("helper-args");
    let program = dir.join("token-helper");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{args}'\n{HELPER_ENV}='{args}' exec '{exe}' {test_name} --exact --nocapture --quiet --test-threads=1\n",
        args = args.display(),
        exe = exe.display()
    );
    std::fs::write(&program, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

/// Answers the CLI arguments in the file named by [`HELPER_ENV`], if set; prints the JSON.
pub fn answer_if_asked() {
    let Ok(file) = std::env::var(HELPER_ENV) else {
        return;
    };
    let args: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let answer = match answer(&args) {
        Ok(data) => json!({"error_code": 0, "data": data}),
        Err(message) => json!({"error_code": 1, "data": message}),
    };
    println!("{answer}");
}

fn filters(args: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_filter = false;
    for arg in args {
        if arg.starts_with("--") {
            in_filter = arg == "--filter";
            continue;
        }
        if in_filter {
            if let Some((k, v)) = arg.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out
}

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn class_name(class: ObjectClass) -> &'static str {
    match class {
        ObjectClass::PRIVATE_KEY => "private-key",
        ObjectClass::PUBLIC_KEY => "public-key",
        _ => "secret-key",
    }
}

/// A stable key reference: FNV-1a of class and id.
fn reference(class: ObjectClass, id: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in class_name(class).bytes().chain(id.iter().copied()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("0x{hash:016x}")
}

struct Object {
    handle: ObjectHandle,
    class: ObjectClass,
    label: String,
    id: Vec<u8>,
    trusted: bool,
}

fn pkcs11() -> Pkcs11 {
    let module = std::env::var("TEST_PKCS11_MODULE").unwrap();
    let pkcs11 = Pkcs11::new(module).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(
            cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
        ))
        .unwrap();
    pkcs11
}

fn session(pkcs11: &Pkcs11, user: UserType) -> Session {
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .is_ok_and(|t| t.label() == token_label())
        })
        .unwrap();
    let session = pkcs11.open_rw_session(slot).unwrap();
    if matches!(user, UserType::So) {
        let pin = AuthPin::new(crate::SO_PIN.into());
        session.login(user, Some(&pin)).unwrap();
        return session;
    }
    // The token's user PIN: the key owner's (`STANDIN_OWNER_PIN`, for the admin's commands), the
    // CLI's credentials (as on CloudHSM, a PIN `user:password`), else the harness's user PIN.
    let candidates = [
        std::env::var("STANDIN_OWNER_PIN").ok(),
        std::env::var("CLOUDHSM_PIN").ok(),
        Some(crate::USER_PIN.to_string()),
    ];
    for pin in candidates.into_iter().flatten() {
        if session.login(user, Some(&AuthPin::new(pin.into()))).is_ok() {
            return session;
        }
    }
    panic!("stand-in: no PIN opens token '{}'", token_label());
}

fn objects(session: &Session) -> Vec<Object> {
    let mut out = Vec::new();
    for class in [
        ObjectClass::PRIVATE_KEY,
        ObjectClass::PUBLIC_KEY,
        ObjectClass::SECRET_KEY,
    ] {
        for handle in session.find_objects(&[Attribute::Class(class)]).unwrap() {
            let mut object = Object {
                handle,
                class,
                label: String::new(),
                id: Vec::new(),
                trusted: false,
            };
            let wanted = [AttributeType::Label, AttributeType::Id];
            for attribute in session.get_attributes(handle, &wanted).unwrap() {
                match attribute {
                    Attribute::Label(l) => object.label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(id) => object.id = id,
                    _ => {}
                }
            }
            if class != ObjectClass::PRIVATE_KEY {
                if let Ok(attrs) = session.get_attributes(handle, &[AttributeType::Trusted]) {
                    object.trusted = attrs.contains(&Attribute::Trusted(true));
                }
            }
            out.push(object);
        }
    }
    out
}

/// SoftHSM2's object file format (`ObjectFile`): a u64 generation, then attributes as u64 type,
/// u64 kind (1: boolean, one byte, 0xff when true), value; integers big-endian.
fn bool_attribute(kind: u64, value: bool) -> Vec<u8> {
    let mut bytes = kind.to_be_bytes().to_vec();
    bytes.extend(1u64.to_be_bytes());
    bytes.push(if value { 0xff } else { 0 });
    bytes
}

fn replace(data: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    match data.windows(from.len()).position(|w| w == from) {
        Some(at) => {
            data[at..at + to.len()].copy_from_slice(to);
            true
        }
        None => false,
    }
}

/// The security officer's part, done on SoftHSM2's files: SoftHSM2 lets only its security
/// officer set CKA_TRUSTED but hides private objects from it, while a CloudHSM wrapping key is
/// private. So the one key file marked with CKA_DERIVE=true gets CKA_TRUSTED=true and its mark
/// removed, and its generation is raised so every process using the token reads it again.
fn mark_trusted_in_file() -> Result<(), String> {
    const CKA_TRUSTED: u64 = 0x86;
    const CKA_DERIVE: u64 = 0x10c;
    let conf =
        std::env::var("SOFTHSM2_CONF").map_err(|_| "stand-in: no SOFTHSM2_CONF".to_string())?;
    let text = std::fs::read_to_string(conf).map_err(|e| e.to_string())?;
    let dir = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("directories.tokendir"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(|d| d.trim().to_string())
        .ok_or("stand-in: no directories.tokendir")?;
    let mut marked = 0;
    for token in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let token = token.map_err(|e| e.to_string())?.path();
        let Ok(files) = std::fs::read_dir(&token) else {
            continue;
        };
        for file in files {
            let path = file.map_err(|e| e.to_string())?.path();
            if path.extension().is_none_or(|e| e != "object") || path.ends_with("token.object") {
                continue;
            }
            let mut data = std::fs::read(&path).map_err(|e| e.to_string())?;
            if data.len() < 8
                || !replace(
                    &mut data[8..],
                    &bool_attribute(CKA_DERIVE, true),
                    &bool_attribute(CKA_DERIVE, false),
                )
            {
                continue;
            }
            if !replace(
                &mut data[8..],
                &bool_attribute(CKA_TRUSTED, false),
                &bool_attribute(CKA_TRUSTED, true),
            ) {
                return Err(format!("stand-in: no CKA_TRUSTED in {}", path.display()));
            }
            let generation = u64::from_be_bytes(data[..8].try_into().unwrap()) + 1;
            data[..8].copy_from_slice(&generation.to_be_bytes());
            std::fs::write(&path, data).map_err(|e| e.to_string())?;
            marked += 1;
        }
    }
    if marked == 1 {
        Ok(())
    } else {
        Err(format!("stand-in: {marked} marked key files, expected 1"))
    }
}

fn matches(object: &Object, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "attr.label" => &object.label == v,
        "attr.class" => class_name(object.class) == v,
        "key-reference" => reference(object.class, &object.id) == *v,
        _ => false,
    })
}

fn answer(args: &[String]) -> Result<Value, String> {
    let pin = std::env::var("CLOUDHSM_PIN").map_err(|_| "Not logged in".to_string())?;
    let user = pin
        .split_once(':')
        .map(|(u, _)| u.to_ascii_lowercase())
        .unwrap_or_default();
    let role = std::env::var("CLOUDHSM_ROLE").unwrap_or_default();
    let filters = filters(args);
    let pkcs11 = pkcs11();
    match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("key"), Some("list")) => {
            let session = session(&pkcs11, UserType::User);
            let partial = std::env::var("STANDIN_PARTIAL_KEY").ok();
            let keys: Vec<Value> = objects(&session)
                .iter()
                .filter(|o| matches(o, &filters))
                .map(|o| {
                    let coverage = if partial.as_deref() == Some(o.label.as_str()) { "partial" } else { "full" };
                    json!({
                        "key-reference": reference(o.class, &o.id),
                        "key-info": {
                            "key-owners": [{"username": user, "key-coverage": coverage}],
                            "shared-users": [],
                            "key-quorum-values": {"manage-key-quorum-value": 0, "use-key-quorum-value": 0},
                            "cluster-coverage": coverage
                        },
                        "attributes": {
                            "label": o.label,
                            "id": format!("0x{}", hex::encode(&o.id)),
                            "class": class_name(o.class),
                            "trusted": o.trusted
                        }
                    })
                })
                .collect();
            let _ = option(args, "--max-items");
            Ok(
                json!({"matched_keys": keys, "total_key_count": keys.len(), "returned_key_count": keys.len()}),
            )
        }
        (Some("key"), Some("set-attribute")) => {
            if role != "admin" {
                return Err("This operation can only be performed by an admin".into());
            }
            if option(args, "--name").as_deref() != Some("trusted")
                || option(args, "--value").as_deref() != Some("true")
            {
                return Err("stand-in: only --name trusted --value true is played".into());
            }
            // As the key's owner: find the key, and mark it with CKA_DERIVE=true (a flag SoftHSM2
            // stores in clear and a wrapping key never has) so its file can be found.
            let user_session = session(&pkcs11, UserType::User);
            let found: Vec<Object> = objects(&user_session)
                .into_iter()
                .filter(|o| matches(o, &filters))
                .collect();
            let [key] = found.as_slice() else {
                return Err(format!("Key selection criteria matched {} keys. Refine selection criteria to select a single key.", found.len()));
            };
            if key.class != ObjectClass::SECRET_KEY {
                return Err("stand-in: only secret keys are marked trusted here".into());
            }
            user_session
                .update_attributes(key.handle, &[Attribute::Derive(true)])
                .map_err(|e| format!("stand-in: mark the key: {e}"))?;
            user_session.logout().unwrap();
            drop(user_session);
            mark_trusted_in_file()?;
            Ok(json!({"message": "Attribute set successfully"}))
        }
        _ => Err(format!("stand-in token helper: unknown command {args:?}")),
    }
}
