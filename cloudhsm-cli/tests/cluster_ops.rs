//! Issue 14 against the stand-in CLI: `--cluster-id`, marking a key trusted (`key set-attribute`),
//! keys with their owners and coverage, users' coverage, the owner check before a wrap, and the
//! refusal of AWS KMS's `kmsuser`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use cloudhsm_cli::{CliRole, CloudHsmError, KeyRef};
use common::{spawn_lock, StandIn, ADMIN_PIN, OWNER_PIN};

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn the_cluster_id_is_passed_to_every_command() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let cli = standin
        .owner()
        .with_cluster_id("cluster-jxhlf7644ne")
        .unwrap();
    assert_eq!(cli.cluster_id(), Some("cluster-jxhlf7644ne"));
    cli.list_users().unwrap();
    assert_eq!(
        standin.record().unwrap().args,
        args(&["user", "list", "--cluster-id", "cluster-jxhlf7644ne"])
    );
    cli.share_key(&KeyRef::Label("baker".into()), "signer")
        .unwrap();
    let recorded = standin.record().unwrap().args;
    assert_eq!(
        recorded[recorded.len() - 2..],
        args(&["--cluster-id", "cluster-jxhlf7644ne"])
    );
    // Without one, no --cluster-id.
    standin.owner().list_users().unwrap();
    assert_eq!(standin.record().unwrap().args, args(&["user", "list"]));
    for bad in [
        "",
        "cluster-",
        "jxhlf7644ne",
        "cluster-ABC",
        "cluster-a b",
        "cluster-a;rm",
    ] {
        let err = standin.owner().with_cluster_id(bad).unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{bad}");
    }
}

#[test]
fn set_trusted_is_key_set_attribute_by_an_admin() {
    let _lock = spawn_lock();
    let standin = StandIn::new(ADMIN_PIN, &[]);
    let key = KeyRef::Reference("0x00000000001C0686".into());
    standin.admin().set_trusted(&key, true).unwrap();
    let record = standin.record().unwrap();
    assert_eq!(
        (record.role.as_str(), record.pin.as_str()),
        ("admin", "expected")
    );
    assert_eq!(
        record.args,
        args(&[
            "key",
            "set-attribute",
            "--filter",
            "key-reference=0x00000000001c0686",
            "--name",
            "trusted",
            "--value",
            "true"
        ])
    );
    // A crypto user cannot set CKA_TRUSTED (AWS docs modify-attr): refused before running.
    let standin = StandIn::new(OWNER_PIN, &[]);
    let err = standin.owner().set_trusted(&key, true).unwrap_err();
    assert!(
        matches!(
            err,
            CloudHsmError::WrongRole {
                needed: CliRole::Admin,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(standin.record(), None);
}

#[test]
fn key_listing_reads_reference_owner_shared_users_and_coverage() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[]);
    let key = standin
        .owner()
        .key_listing(&KeyRef::SecretKey("wrap".into()))
        .unwrap();
    assert_eq!(
        standin.record().unwrap().args,
        args(&[
            "key",
            "list",
            "--filter",
            "attr.label=wrap",
            "attr.class=secret-key",
            "--verbose"
        ])
    );
    assert_eq!(key.reference, "0x00000000001c0686");
    assert_eq!(key.label.as_deref(), Some("baker"));
    assert_eq!(key.trusted, Some(false));
    assert_eq!(key.owners[0].username, "baker_owner");
    assert_eq!(key.owners[0].key_coverage.as_deref(), Some("full"));
    let shared: Vec<&str> = key
        .shared_users
        .iter()
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(
        shared,
        ["standby_signer", "backup_cu"],
        "key-list-verbose.json"
    );
    assert!(key.incomplete_coverage().is_empty());

    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_KEYS", "partial")]);
    let keys = standin.owner().list_keys().unwrap();
    assert_eq!(
        standin.record().unwrap().args,
        args(&["key", "list", "--verbose", "--max-items", "100"])
    );
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].label.as_deref(), Some("baker"));
    assert_eq!(
        keys[0].incomplete_coverage(),
        ["shared-user backup_cu: partial"]
    );
}

#[test]
fn users_without_full_cluster_coverage_are_seen() {
    let _lock = spawn_lock();
    let standin = StandIn::new(OWNER_PIN, &[("STANDIN_USERS", "partial")]);
    let users = standin.owner().list_users().unwrap();
    let partial: Vec<&str> = users
        .iter()
        .filter(|u| !u.has_full_coverage())
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(partial, ["kmsuser"]);
}

#[test]
fn only_the_owner_passes_the_owner_check() {
    let _lock = spawn_lock();
    let key = KeyRef::Label("baker".into());
    // The fixture's key is owned by baker_owner and shared with standby_signer.
    let standin = StandIn::new(OWNER_PIN, &[]);
    standin.owner().require_owner(&key, "backup").unwrap();
    let signer = "standby_signer:Signer-Passw0rd";
    let standin = StandIn::new(signer, &[]);
    let err = standin
        .cli(signer, CliRole::CryptoUser)
        .require_owner(&key, "backup")
        .unwrap_err();
    assert_eq!(err.kind(), "not_key_owner");
    let text = err.to_string();
    assert!(
        text.contains("run as the key's owner (the crypto user that generated it"),
        "{text}"
    );
    assert!(
        text.contains("baker_owner") && text.contains("standby_signer"),
        "{text}"
    );
    assert!(!text.contains("Signer-Passw0rd"), "{text}");
}

#[test]
fn kmsuser_credentials_are_refused_unless_allowed() {
    let _lock = spawn_lock();
    let kms = "KMSUser:Kms-Passw0rd-1";
    let standin = StandIn::new(kms, &[]);
    let cli = standin.cli(kms, CliRole::CryptoUser);
    let err = cli
        .share_key(&KeyRef::Label("baker".into()), "signer")
        .unwrap_err();
    assert_eq!(err.kind(), "kmsuser_refused");
    assert!(err.to_string().contains("rotates its password"), "{err}");
    assert!(!err.to_string().contains("Kms-Passw0rd"), "{err}");
    assert_eq!(standin.record(), None, "nothing ran");
    cli.allow_kmsuser(true)
        .share_key(&KeyRef::Label("baker".into()), "signer")
        .unwrap();
    assert_eq!(standin.record().unwrap().pin, "expected");
}
