#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;

use tezos_keys::payload::Watermark;
use tezos_keys::ChainId;

use super::*;

const FULL: &str = r#"
listen = "127.0.0.1:6732"
module = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"
token = "signer"
pin = "file:secrets/pin"
watermark_dir = "watermarks"
authorized_keys = ["edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav"]
log_payloads = true

[tls]
cert = "tls/cert.pem"
key = "/etc/tls/key.pem"

[api_key]
header = "X-Signer-Key"
file = "api-key"

[keys.baker]
allow = ["block", "preattestation", "attestation", "generic"]
generic_operations = ["reveal", "delegation"]
chains = ["NetXdQprcVkpaWU"]
require_authentication = true

[keys."payout key"]
allow = ["generic", "michelson"]
"#;

fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
    ServeConfig::parse(Path::new("/etc/tezos-hsm/serve.toml"), text)
}

/// The error's text, asserting it is an `Invalid` or `Syntax` error on `line`.
fn error_on_line(text: &str, line: usize) -> String {
    let error = parse(text).unwrap_err();
    assert_eq!(error.kind(), "config_invalid");
    match &error {
        ConfigError::Invalid { line: l, .. } | ConfigError::Syntax { line: l, .. } => {
            assert_eq!(*l, line, "{error}");
        }
        ConfigError::Unreadable { .. } => panic!("{error}"),
    }
    error.to_string()
}

#[test]
fn a_full_configuration_gives_every_field_and_the_rules_per_key() {
    let config = parse(FULL).unwrap();
    assert_eq!(config.listen, Some("127.0.0.1:6732".parse().unwrap()));
    assert_eq!(
        config.module.as_deref(),
        Some(Path::new("/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"))
    );
    assert_eq!(config.token.as_deref(), Some("signer"));
    // Relative paths are relative to the configuration file's directory.
    assert_eq!(
        config.pin,
        Some(PinSource::File("/etc/tezos-hsm/secrets/pin".into()))
    );
    assert!(
        matches!(&config.watermark, WatermarkStore::Dir(d) if d == Path::new("/etc/tezos-hsm/watermarks"))
    );
    assert_eq!(
        config.tls,
        Some(TlsFiles {
            cert: "/etc/tezos-hsm/tls/cert.pem".into(),
            key: "/etc/tls/key.pem".into()
        })
    );
    assert_eq!(
        config.api_key,
        Some(ApiKeyFile {
            header: "x-signer-key".into(),
            file: "/etc/tezos-hsm/api-key".into()
        })
    );
    assert_eq!(config.authorized_keys.len(), 1);
    assert!(config.log_payloads);
    assert!(config.requires_authentication());

    let baker = &config.keys["baker"].rules;
    assert_eq!(
        baker.kinds.allowed,
        vec![
            Watermark::Block,
            Watermark::Preattestation,
            Watermark::Attestation,
            Watermark::Generic
        ]
    );
    assert_eq!(
        baker
            .generic_operations
            .as_ref()
            .unwrap()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>(),
        ["reveal", "delegation"]
    );
    assert_eq!(
        baker.chains.as_ref().unwrap().iter().collect::<Vec<_>>(),
        [&ChainId::MAINNET]
    );
    assert!(baker.require_authentication);

    let payout = &config.keys["payout key"].rules;
    assert_eq!(
        payout.kinds.allowed,
        vec![Watermark::Generic, Watermark::Michelson]
    );
    assert!(payout.chains.is_none() && payout.generic_operations.is_none());
    assert!(!payout.require_authentication);
}

#[test]
fn an_empty_file_is_valid_and_leaves_everything_to_the_command_line() {
    let config = parse("").unwrap();
    assert!(config.listen.is_none() && config.pin.is_none() && config.keys.is_empty());
    assert!(matches!(config.watermark, WatermarkStore::Default));
    assert!(!config.requires_authentication() && !config.log_payloads);
}

/// Every way of getting it wrong names the line, the field, and the fix.
#[test]
fn mistakes_name_their_line_field_and_fix() {
    let cases: &[(&str, usize, &[&str])] = &[
        // Unknown fields, at every level.
        (
            "listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n",
            2,
            &["unknown field `listen_addr`", "remove it"],
        ),
        (
            "[keys.baker]\nallow = [\"block\"]\nrequire_authentification = true\n",
            3,
            &[
                "unknown field `require_authentification`",
                "require_authentication",
            ],
        ),
        (
            "[tls]\ncert = \"c\"\nkey = \"k\"\nca = \"x\"\n",
            4,
            &["unknown field `ca`"],
        ),
        (
            "[api_key]\nfile = \"k\"\nvalue = \"secret\"\n",
            3,
            &["unknown field `value`"],
        ),
        // Missing fields.
        (
            "[keys.baker]\nchains = [\"NetXdQprcVkpaWU\"]\n",
            1,
            &["missing field `allow`", "add it"],
        ),
        ("[tls]\ncert = \"c\"\n", 1, &["missing field `key`"]),
        // Wrong types and bad TOML.
        ("log_payloads = \"yes\"\n", 1, &["log_payloads"]),
        ("listen = \n", 1, &[]),
        // Unknown kinds, chains, keys.
        (
            "[keys.baker]\nallow = [\"block\",\n  \"endorsement\"]\n",
            3,
            &[
                "keys.baker.allow",
                "\"endorsement\"",
                "block, preattestation, attestation, generic, michelson",
            ],
        ),
        (
            "[keys.baker]\nallow = [\"0x11\"]\n",
            2,
            &["unknown kind \"0x11\""],
        ),
        (
            "[keys.baker]\nallow = []\n",
            1,
            &["keys.baker.allow", "sign nothing"],
        ),
        (
            "[keys.baker]\nallow = [\"block\"]\nchains = [\"NetXdQprcVkpaWV\"]\n",
            3,
            &["keys.baker.chains", "NetXdQprcVkpaWU"],
        ),
        (
            "[keys.baker]\nallow = [\"block\"]\nchains = []\n",
            1,
            &["allows no chain", "remove the field"],
        ),
        (
            "[keys.baker]\nallow = [\"block\"]\ngeneric_operations = [\"transaction\"]\n",
            3,
            &[
                "keys.baker.generic_operations",
                "\"generic\" is not in allow",
            ],
        ),
        (
            "[keys.baker]\nallow = [\"generic\"]\ngeneric_operations = [\"Transfer!\"]\n",
            3,
            &["unknown operation kind \"Transfer!\"", "drain_delegate"],
        ),
        (
            "[keys.baker]\nallow = [\"generic\"]\nrequire_authentication = true\n",
            1,
            &[
                "keys.baker.require_authentication",
                "authorized_keys is empty",
            ],
        ),
        (
            "authorized_keys = [\"tz1VSUr8wwNhLAzempoch5d6hLRiTh8Cjcjb\"]\n",
            1,
            &["authorized_keys", "edpk"],
        ),
        // Top-level values.
        ("listen = \"localhost\"\n", 1, &["listen", "127.0.0.1:6732"]),
        (
            "\n\npin = \"1234\"\n",
            3,
            &["pin", "never put the PIN itself", "env:"],
        ),
        ("token = \"slot:abc\"\n", 1, &["token"]),
        (
            "watermark_dir = \"w\"\nwatermark_db = \"postgres://db/x\"\n",
            2,
            &["watermark_db", "keep one"],
        ),
        ("watermark_db = \"mysql://db/x\"\n", 1, &["postgres://"]),
        (
            "[api_key]\nheader = \"Authorization\"\nfile = \"k\"\n",
            2,
            &["api_key.header", "x-api-key"],
        ),
    ];
    for (text, line, needles) in cases {
        let message = error_on_line(text, *line);
        assert!(
            message.starts_with("/etc/tezos-hsm/serve.toml, line "),
            "{message}"
        );
        for needle in *needles {
            assert!(
                message.contains(needle),
                "{needle:?} not in {message:?} (for {text:?})"
            );
        }
    }
}

#[test]
fn a_pin_or_password_is_never_repeated_in_an_error() {
    for text in [
        "pin = \"Passw0rd-s3cret\"\n",
        "pin = 5309s3cret\n",
        "pin = 530913\n",
        "log_payloads = \"s3cret\"\n",
        "pin = [\"s3cret\"]\n",
        "pin = \"user:Passw0rd-s3cret\"\n",
        "watermark_db = \"mysql://u:Passw0rd-s3cret@db/x\"\n",
    ] {
        let message = parse(text).unwrap_err().to_string();
        assert!(
            !message.contains("s3cret") && !message.contains("530913"),
            "{message}"
        );
    }
}

#[test]
fn duplicate_keys_are_refused_by_toml_itself() {
    let message = error_on_line(
        "[keys.baker]\nallow = [\"block\"]\n[keys.baker]\nallow = [\"generic\"]\n",
        3,
    );
    assert!(message.contains("baker"), "{message}");
}

#[test]
fn redact_url_masks_passwords_in_user_info_and_query() {
    assert_eq!(
        redact_url("postgres://u:p@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(
        redact_url("postgres://u@h/db?password=p"),
        "postgres://u@h/db"
    );
    assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    assert_eq!(
        redact_url("postgres://u:p:q@x@h/db"),
        "postgres://u:***@h/db"
    );
    assert_eq!(redact_url("garbage"), "***");
}

#[test]
fn load_reads_a_file_and_reports_what_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, "[keys.baker]\nallow = [\"block\"]\n").unwrap();
    let config = ServeConfig::load(&path).unwrap();
    assert_eq!(config.path, path);
    assert!(config.keys.contains_key("baker"));

    let missing = ServeConfig::load(&dir.path().join("nope.toml")).unwrap_err();
    assert_eq!(missing.kind(), "config_unreadable");
    assert!(missing.to_string().contains("nope.toml"), "{missing}");
    let directory = ServeConfig::load(dir.path()).unwrap_err();
    assert!(
        directory.to_string().contains("not a regular file"),
        "{directory}"
    );
}

#[test]
fn error_kinds_are_stable() {
    let path = PathBuf::from("f");
    let table = [
        (
            ConfigError::Unreadable {
                path: path.clone(),
                reason: String::new(),
            },
            "config_unreadable",
        ),
        (
            ConfigError::Syntax {
                path: path.clone(),
                line: 1,
                message: String::new(),
            },
            "config_invalid",
        ),
        (
            ConfigError::Invalid {
                path,
                line: 1,
                field: String::new(),
                reason: String::new(),
            },
            "config_invalid",
        ),
    ];
    for (error, kind) in table {
        assert_eq!(error.kind(), kind);
    }
}

/// The example of the README's "Configuration file" section is a valid configuration.
#[test]
fn the_readme_example_is_valid() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("### Configuration file")
        .nth(1)
        .expect("the README has its Configuration file section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml example in it");
    let config = parse(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
    assert_eq!(config.keys.len(), 2);
    assert!(config.tls.is_some() && config.api_key.is_some());
    assert!(config.requires_authentication());
}
