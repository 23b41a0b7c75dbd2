//! `cluster verify-identity` on chains that OpenSSL makes here with AWS's structure (AWS root and
//! manufacturer root → hardware certificates for one hardware key → HSM certificate; the CSR
//! signed by the HSM key), given as files and as `describe-clusters` JSON.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::CliHome;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            name,
        ],
    );
}

/// Makes the chain's files in `dir`, the HSM certificate signed by `hsm_signer`'s key.
fn make_chain(dir: &Path, hsm_signer: &str) {
    std::fs::write(dir.join("ca.ext"), "basicConstraints=critical,CA:TRUE\n").unwrap();
    for k in [
        "aws_root.key",
        "manu_root.key",
        "hardware.key",
        "other.key",
        "hsm.key",
    ] {
        key(dir, k);
    }
    for (k, cn, out) in [
        ("aws_root.key", "AWS CloudHSM Root", "aws_root.crt"),
        ("manu_root.key", "Manufacturer Root", "manu_root.crt"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "3650",
                "-key",
                k,
                "-subj",
                &format!("/CN={cn}"),
                "-out",
                out,
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "hardware.key",
            "-subj",
            "/CN=HSM hardware 1234",
            "-out",
            "hardware.csr",
        ],
    );
    for (root, out) in [
        ("aws_root", "aws_hardware.crt"),
        ("manu_root", "manu_hardware.crt"),
    ] {
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "3650",
                "-in",
                "hardware.csr",
                "-CA",
                &format!("{root}.crt"),
                "-CAkey",
                &format!("{root}.key"),
                "-CAcreateserial",
                "-extfile",
                "ca.ext",
                "-out",
                out,
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "hsm.key",
            "-subj",
            "/CN=HSM:1234:PARTN:5, for FIPS mode",
            "-out",
            "cluster.csr",
        ],
    );
    // The HSM certificate: the HSM key, issued in the hardware certificate's name, by the
    // hardware key or (a forgery) by another key under a certificate of the same name.
    if hsm_signer == "hardware.key" {
        std::fs::copy(dir.join("aws_hardware.crt"), dir.join("hardware_ca.crt")).unwrap();
    } else {
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "3650",
                "-key",
                hsm_signer,
                "-subj",
                "/CN=HSM hardware 1234",
                "-out",
                "hardware_ca.crt",
            ],
        );
    }
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "3650",
            "-in",
            "cluster.csr",
            "-CA",
            "hardware_ca.crt",
            "-CAkey",
            hsm_signer,
            "-CAcreateserial",
            "-out",
            "hsm.crt",
        ],
    );
}

fn files(dir: &Path) -> Vec<String> {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    vec![
        "cluster".into(),
        "verify-identity".into(),
        "--aws-root".into(),
        p("aws_root.crt"),
        "--manufacturer-root".into(),
        p("manu_root.crt"),
        "--aws-hardware-cert".into(),
        p("aws_hardware.crt"),
        "--manufacturer-hardware-cert".into(),
        p("manu_hardware.crt"),
        "--hsm-cert".into(),
        p("hsm.crt"),
        "--csr".into(),
        p("cluster.csr"),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn openssl_made_chains() {
    let home = CliHome::new();
    let good: PathBuf = home.path().join("good");
    std::fs::create_dir(&good).unwrap();
    make_chain(&good, "hardware.key");
    // What AWS's page does with openssl accepts the chain too.
    openssl(
        &good,
        &[
            "verify",
            "-CAfile",
            "aws_root.crt",
            "-untrusted",
            "aws_hardware.crt",
            "hsm.crt",
        ],
    );

    let report = home.json(&strs(&files(&good)));
    assert_eq!(report["verified"], true, "{report}");

    // The same from describe-clusters JSON.
    let read = |name: &str| std::fs::read_to_string(good.join(name)).unwrap();
    let json = serde_json::json!({"Clusters": [{"ClusterId": "cluster-jxhlf7644ne", "State": "UNINITIALIZED", "Certificates": {
        "ClusterCsr": read("cluster.csr"), "HsmCertificate": read("hsm.crt"),
        "AwsHardwareCertificate": read("aws_hardware.crt"), "ManufacturerHardwareCertificate": read("manu_hardware.crt"),
    }}]});
    let describe = home.path().join("describe.json");
    std::fs::write(&describe, json.to_string()).unwrap();
    let p = |name: &str| good.join(name).to_str().unwrap().to_string();
    let report = home.json(&[
        "cluster",
        "verify-identity",
        "--describe-clusters",
        describe.to_str().unwrap(),
        "--aws-root",
        &p("aws_root.crt"),
        "--manufacturer-root",
        &p("manu_root.crt"),
    ]);
    assert_eq!(report["verified"], true, "{report}");

    // An HSM certificate signed by another key: exit 1, both HSM links named in the report and
    // in the text note.
    let bad = home.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    make_chain(&bad, "other.key");
    let run = home.run(&[strs(&files(&bad)), vec!["--json"]].concat());
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(report["verified"], false);
    let broken: Vec<String> = report["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ok"] == false)
        .map(|l| l["link"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        broken,
        vec![
            "HSM certificate <- AWS hardware certificate",
            "HSM certificate <- manufacturer hardware certificate"
        ]
    );
    let text = home.run(&strs(&files(&bad)));
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains("BROKEN  HSM certificate <- AWS hardware certificate"),
        "{}",
        text.stdout
    );
    assert!(text.stderr.contains("does not verify"), "{}", text.stderr);

    // The good chain with the bad chain's CSR (another HSM's key): the key comparison breaks.
    let mut mixed = files(&good);
    let last = mixed.len() - 1;
    mixed[last] = bad.join("cluster.csr").to_str().unwrap().to_string();
    let report = home.run(&[strs(&mixed), vec!["--json"]].concat()).json();
    let broken: Vec<&str> = report["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ok"] == false)
        .map(|l| l["link"].as_str().unwrap())
        .collect();
    assert_eq!(
        broken,
        vec!["cluster CSR public key = HSM certificate public key"]
    );
}
