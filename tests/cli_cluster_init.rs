//! Cluster bring-up through the `tezos-hsm` binary: `cluster ca create` (key in an encrypted file
//! or on the embedded store's token), `cluster csr sign` on a CSR that `openssl req` made, and
//! `cluster trust-anchor install`; `openssl verify` checks the certificates independently.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::CliHome;

const CLUSTER: &str = "cluster-jxhlf7644ne";
const PASSPHRASE: &str = "a long test passphrase";

/// A cluster CSR made by OpenSSL, as AWS's HSM makes one: an RSA 2048 key signing its request.
fn openssl_csr(dir: &Path) -> std::path::PathBuf {
    let csr = dir.join(format!("{CLUSTER}_ClusterCsr.csr"));
    let status = Command::new("openssl")
        .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(dir.join("hsm.key"))
        .args(["-subj", "/C=US/ST=Virginia/O=Amazon Web Services/OU=AWS CloudHSM/CN=HSM:1234:PARTN:5, for FIPS mode", "-out"])
        .arg(&csr)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    csr
}

fn openssl_verify(ca: &Path, cert: &Path) {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The "done when": the CA key generated and kept on the embedded store's token, and a
/// cluster certificate `openssl verify -CAfile customerCA.crt` accepts.
#[test]
fn token_ca_signs_a_csr_openssl_accepts() {
    let home = CliHome::new();
    let ca = home.path().join("ca");
    let created = home.json(&[
        "cluster",
        "ca",
        "create",
        "--out",
        s(&ca),
        "--ca-token",
        "tezos-hsm",
    ]);
    assert_eq!(created["key"]["type"], "token");
    assert_eq!(created["key"]["token"], "tezos-hsm");
    assert!(
        !ca.join("customerCA.key").exists(),
        "no key file: the key stays on the token"
    );
    let listed = home.run(&["key", "list"]).stdout;
    assert!(listed.contains("customerCA"), "{listed}");

    let csr = openssl_csr(home.path());
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let signed = home.json(&[
        "cluster",
        "csr",
        "sign",
        "--csr",
        s(&csr),
        "--cluster-id",
        CLUSTER,
        "--ca",
        s(&ca),
        "--out",
        s(&out),
    ]);
    let cert = out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt"));
    let anchor = out.join("customerCA.crt");
    assert_eq!(signed["signed_cert"], s(&cert));
    assert_eq!(signed["trust_anchor"], s(&anchor));
    assert_eq!(
        signed["initialize_command"],
        format!(
            "aws cloudhsmv2 initialize-cluster --cluster-id {CLUSTER} --signed-cert file://{} --trust-anchor file://{}",
            s(&cert),
            s(&anchor)
        )
    );
    openssl_verify(&anchor, &cert);
    // The certificate carries the HSM's key: the one of the CSR.
    let pubkey = |args: &[&str], file: &Path| {
        let out = Command::new("openssl")
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        pubkey(&["x509", "-noout", "-pubkey", "-in"], &cert),
        pubkey(&["req", "-noout", "-pubkey", "-in"], &csr)
    );
}

#[test]
fn file_ca_and_its_refusals() {
    let home = CliHome::new();
    let ca = home.path().join("ca");
    let pass_file = home.path().join("pass");
    std::fs::write(&pass_file, PASSPHRASE).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pass_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let source = format!("file:{}", s(&pass_file));
    let created = home.json(&[
        "cluster",
        "ca",
        "create",
        "--out",
        s(&ca),
        "--passphrase",
        &source,
    ]);
    assert_eq!(created["key"]["type"], "file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca.join("customerCA.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Without a passphrase source: the default variable is named, nothing is written.
    let (kind, message) = home.error(&[
        "cluster",
        "ca",
        "create",
        "--out",
        s(&home.path().join("ca2")),
    ]);
    assert_ne!(kind, "internal");
    assert!(message.contains("TEZOS_HSM_CA_PASSPHRASE"), "{message}");

    let csr = openssl_csr(home.path());
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let sign = |extra: &[&str]| {
        let mut args = vec![
            "cluster",
            "csr",
            "sign",
            "--cluster-id",
            CLUSTER,
            "--ca",
            s(&ca),
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };

    // Wrong passphrase: refused, and the passphrase is never printed.
    let args = sign(&["--csr", s(&csr)]);
    let run = home.run_with(
        &[strs(&args), vec!["--json"]].concat(),
        &[("TEZOS_HSM_CA_PASSPHRASE", "the wrong passphrase")],
    );
    assert_eq!(run.error()["kind"], "wrong_passphrase");
    assert!(!run.stderr.contains("the wrong passphrase"));

    // A CSR whose signature does not verify: its last signature byte changed.
    let mut der = Command::new("openssl")
        .args(["req", "-outform", "DER", "-in"])
        .arg(&csr)
        .output()
        .unwrap()
        .stdout;
    let last = der.len() - 1;
    der[last] ^= 0x55;
    let bad = home.path().join("bad.csr");
    std::fs::write(&bad, &der).unwrap();
    let args = sign(&["--csr", s(&bad), "--passphrase", &source]);
    let (kind, message) = home.error(&strs(&args));
    assert_eq!(kind, "bad_signature", "{message}");
    assert!(!out
        .join(format!("{CLUSTER}_CustomerHsmCertificate.crt"))
        .exists());

    // The good CSR, from describe-clusters output.
    let describe = home.path().join("describe.json");
    let json = serde_json::json!({"Clusters": [{
        "ClusterId": CLUSTER, "State": "UNINITIALIZED",
        "Certificates": {"ClusterCsr": std::fs::read_to_string(&csr).unwrap()}
    }]});
    std::fs::write(&describe, json.to_string()).unwrap();
    let args = vec![
        "cluster",
        "csr",
        "sign",
        "--describe-clusters",
        s(&describe),
        "--ca",
        s(&ca),
        "--out",
        s(&out),
        "--passphrase",
        &source,
    ];
    let signed = home.json(&args);
    assert_eq!(signed["cluster_id"], CLUSTER);
    openssl_verify(
        &out.join("customerCA.crt"),
        &out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt")),
    );

    // Again: the certificate exists, refused, unchanged.
    let before = std::fs::read(out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt"))).unwrap();
    let (kind, _) = home.error(&args);
    assert_eq!(kind, "file_exists");
    assert_eq!(
        std::fs::read(out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt"))).unwrap(),
        before
    );

    // The trust anchor: installed mode 0644, after checking it verifies the cluster certificate.
    let etc = home.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let to = etc.join("customerCA.crt");
    let cert = out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt"));
    let installed = home.json(&[
        "cluster",
        "trust-anchor",
        "install",
        "--ca",
        s(&ca),
        "--to",
        s(&to),
        "--cluster-cert",
        s(&cert),
    ]);
    assert_eq!(installed["replaced"], false);
    openssl_verify(&to, &cert);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&to).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    let again = home.json(&[
        "cluster",
        "trust-anchor",
        "install",
        "--ca",
        s(&ca),
        "--to",
        s(&to),
    ]);
    assert_eq!(again["unchanged"], true);

    // Another CA does not verify the cluster certificate: refused, the installed one kept.
    let other = home.path().join("other-ca");
    home.json(&[
        "cluster",
        "ca",
        "create",
        "--out",
        s(&other),
        "--passphrase",
        &source,
    ]);
    let (kind, message) = home.error(&[
        "cluster",
        "trust-anchor",
        "install",
        "--ca",
        s(&other),
        "--to",
        s(&to),
        "--cluster-cert",
        s(&cert),
    ]);
    assert_eq!(kind, "not_trust_anchor", "{message}");
    openssl_verify(&to, &cert);
    // The cluster certificate is not a CA certificate: refused.
    let (kind, _) = home.error(&[
        "cluster",
        "trust-anchor",
        "install",
        "--ca",
        s(&cert),
        "--to",
        s(&to),
    ]);
    assert_eq!(kind, "not_trust_anchor");
    // A name the client does not read: refused.
    let (kind, message) = home.error(&[
        "cluster",
        "trust-anchor",
        "install",
        "--ca",
        s(&ca),
        "--to",
        s(&etc.join("ca.pem")),
    ]);
    assert_eq!(kind, "invalid_input");
    assert!(message.contains("customerCA.crt"), "{message}");
}

/// Several `cluster csr sign` at once into one directory: exactly one writes the certificate,
/// the others are refused (`file_exists`), and what is there is complete and verifies.
#[test]
fn concurrent_signings_write_one_complete_certificate() {
    let home = CliHome::new();
    let ca = home.path().join("ca");
    let envs = [("TEZOS_HSM_CA_PASSPHRASE", PASSPHRASE)];
    let created = home.run_with(
        &["cluster", "ca", "create", "--out", s(&ca), "--json"],
        &envs,
    );
    assert!(created.success(), "{}", created.stderr);
    let csr = openssl_csr(home.path());
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let args = [
        "cluster",
        "csr",
        "sign",
        "--csr",
        s(&csr),
        "--cluster-id",
        CLUSTER,
        "--ca",
        s(&ca),
        "--out",
        s(&out),
        "--json",
    ];
    let children: Vec<_> = (0..4)
        .map(|_| {
            common::cli::command_in(home.path(), &args, &envs)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let succeeded = outputs.iter().filter(|o| o.status.success()).count();
    assert!(succeeded >= 1, "one signing succeeds");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("file_exists"), "{stderr}");
    }
    assert_eq!(succeeded, 1, "only one writes the certificate");
    openssl_verify(
        &out.join("customerCA.crt"),
        &out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt")),
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// `cluster ca create` killed (SIGKILL) at a varying point: what it leaves is either absent or
/// complete (a key openssl decrypts with the passphrase, a certificate that parses), never a part.
#[test]
fn ca_create_killed_at_any_point_leaves_no_partial_file() {
    let home = CliHome::new();
    let envs = [("TEZOS_HSM_CA_PASSPHRASE", PASSPHRASE)];
    for (i, delay_ms) in [0u64, 150, 400, 800, 1300, 2000].into_iter().enumerate() {
        let dir = home.path().join(format!("ca-{i}"));
        let mut child = common::cli::command_in(
            home.path(),
            &["cluster", "ca", "create", "--out", s(&dir)],
            &envs,
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let key = dir.join("customerCA.key");
        if key.exists() {
            let out = Command::new("openssl")
                .args([
                    "pkey",
                    "-noout",
                    "-passin",
                    &format!("pass:{PASSPHRASE}"),
                    "-in",
                ])
                .arg(&key)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "run {i}: partial key file: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let cert = dir.join("customerCA.crt");
        if cert.exists() {
            let out = Command::new("openssl")
                .args(["x509", "-noout", "-in"])
                .arg(&cert)
                .output()
                .unwrap();
            assert!(out.status.success(), "run {i}: partial certificate");
            assert!(key.exists(), "run {i}: a certificate without its key");
        }
    }
}
