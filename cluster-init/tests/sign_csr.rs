//! `create_ca` then `sign_cluster_csr` on a CSR made here as AWS's HSM makes one (an RSA 2048 key
//! signing its own request), checked independently with `openssl verify`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use cluster_init::{create_ca, sign_cluster_csr, CaDir, CaKey, CaSubject, ClusterCsr, NewCaKey};
use rcgen::{CertificateParams, DnType};
use secrecy::SecretString;

const CLUSTER: &str = "cluster-jxhlf7644ne";

/// A CSR like the cluster's: subject with several attributes, RSA 2048 key. Made once: RSA key
/// generation is the slow part.
fn cluster_csr() -> &'static String {
    static CSR: OnceLock<String> = OnceLock::new();
    CSR.get_or_init(|| {
        let (hsm_key, _) = CaKey::generate_rsa().expect("key");
        let mut params = CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            DnType::CountryName,
            rcgen::DnValue::PrintableString("US".try_into().expect("C")),
        );
        dn.push(DnType::StateOrProvinceName, "Virginia");
        dn.push(DnType::OrganizationName, "Amazon Web Services");
        dn.push(DnType::OrganizationalUnitName, "AWS CloudHSM");
        dn.push(
            DnType::CommonName,
            "HSM:0123456789ABCDEF:PARTN:1, for FIPS mode",
        );
        params.distinguished_name = dn;
        params
            .serialize_request(&hsm_key)
            .expect("csr")
            .pem()
            .expect("pem")
    })
}

fn passphrase() -> SecretString {
    SecretString::from("a long test passphrase")
}

fn openssl_verify(ca: &Path, cert: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert)
        .output()
        .expect("openssl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn signed_certificate_verifies_with_openssl() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ca_dir = tmp.path().join("ca");
    let created = create_ca(
        &ca_dir,
        &CaSubject::default(),
        NewCaKey::File(&passphrase()),
    )
    .expect("ca");
    assert!(created.certificate.ends_with("customerCA.crt"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca_dir.join("customerCA.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The key file is encrypted: openssl reads it with the passphrase only.
    let key_file = ca_dir.join("customerCA.key");
    let text = std::fs::read_to_string(&key_file).expect("key");
    assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let with = Command::new("openssl")
        .args([
            "pkey",
            "-noout",
            "-passin",
            "pass:a long test passphrase",
            "-in",
        ])
        .arg(&key_file)
        .status()
        .expect("openssl");
    assert!(with.success(), "openssl reads the key with the passphrase");
    let without = Command::new("openssl")
        .args(["pkey", "-noout", "-passin", "pass:wrong passphrase", "-in"])
        .arg(&key_file)
        .output()
        .expect("openssl");
    assert!(!without.status.success());

    let ca = CaDir::open(&ca_dir).expect("open");
    let key = ca.software_key(&passphrase()).expect("key");
    let csr = ClusterCsr::parse(cluster_csr().as_bytes()).expect("csr");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out");
    let signed = sign_cluster_csr(&ca, &key, &csr, CLUSTER, &out).expect("sign");
    assert_eq!(
        signed.signed_cert,
        out.join(format!("{CLUSTER}_CustomerHsmCertificate.crt"))
    );
    assert_eq!(signed.trust_anchor, out.join("customerCA.crt"));
    assert_eq!(
        signed.initialize_command,
        format!(
            "aws cloudhsmv2 initialize-cluster --cluster-id {CLUSTER} --signed-cert file://{} --trust-anchor file://{}",
            signed.signed_cert.display(),
            signed.trust_anchor.display()
        )
    );
    let (ok, said) = openssl_verify(&signed.trust_anchor, &signed.signed_cert);
    assert!(ok, "openssl verify: {said}");
    // The certificate carries the CSR's subject, as `openssl x509 -req` does.
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&signed.signed_cert)
        .output()
        .expect("openssl");
    let subject = String::from_utf8_lossy(&subject.stdout);
    assert!(
        subject.contains("CN=HSM:0123456789ABCDEF:PARTN:1\\, for FIPS mode"),
        "{subject}"
    );
    assert!(subject.contains("OU=AWS CloudHSM"), "{subject}");

    // Signing again: the certificate exists, refused, and nothing is replaced.
    let before = std::fs::read(&signed.signed_cert).expect("cert");
    let again = sign_cluster_csr(&ca, &key, &csr, CLUSTER, &out).expect_err("exists");
    assert_eq!(again.kind(), "file_exists", "{again}");
    assert_eq!(std::fs::read(&signed.signed_cert).expect("cert"), before);
}

#[test]
fn refusals() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ca_dir = tmp.path().join("ca");
    create_ca(
        &ca_dir,
        &CaSubject::default(),
        NewCaKey::File(&passphrase()),
    )
    .expect("ca");

    // A second CA in the same directory: refused, the first one untouched.
    let cert_before = std::fs::read(ca_dir.join("customerCA.crt")).expect("cert");
    let again = create_ca(
        &ca_dir,
        &CaSubject::default(),
        NewCaKey::File(&passphrase()),
    )
    .expect_err("exists");
    assert_eq!(again.kind(), "file_exists");
    assert_eq!(
        std::fs::read(ca_dir.join("customerCA.crt")).expect("cert"),
        cert_before
    );

    // A short passphrase is refused before anything is written.
    let other = tmp.path().join("other");
    let short = create_ca(
        &other,
        &CaSubject::default(),
        NewCaKey::File(&SecretString::from("short")),
    )
    .expect_err("short");
    assert_eq!(short.kind(), "invalid_input");
    assert!(!other.join("customerCA.key").exists());

    // Wrong passphrase: named, and the passphrase is not in the message.
    let ca = CaDir::open(&ca_dir).expect("open");
    let wrong = ca
        .software_key(&SecretString::from("not the passphrase"))
        .expect_err("wrong");
    assert_eq!(wrong.kind(), "wrong_passphrase");
    assert!(!wrong.to_string().contains("not the passphrase"));

    // A CSR whose signature does not verify: one bit of the signature flipped.
    let pem = cluster_csr();
    let der = pem_to_der(pem);
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let err = ClusterCsr::parse(&bad).expect_err("bad signature");
    assert_eq!(err.kind(), "bad_signature", "{err}");
    // And one whose content changed after signing (a byte of the subject).
    let mut altered = der;
    let at = find(&altered, b"Virginia").expect("subject");
    altered[at] = b'W';
    let err = ClusterCsr::parse(&altered).expect_err("altered");
    assert_eq!(err.kind(), "bad_signature", "{err}");

    // Not a CSR at all.
    assert_eq!(
        ClusterCsr::parse(b"hello").expect_err("junk").kind(),
        "invalid_input"
    );

    // A malformed cluster id.
    let key = ca.software_key(&passphrase()).expect("key");
    let csr = ClusterCsr::parse(pem.as_bytes()).expect("csr");
    let err = sign_cluster_csr(&ca, &key, &csr, "cluster-1", tmp.path()).expect_err("id");
    assert_eq!(err.kind(), "invalid_input");

    // An existing, different customerCA.crt in the output directory is never replaced.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out");
    std::fs::write(out.join("customerCA.crt"), b"someone else's").expect("write");
    let err = sign_cluster_csr(&ca, &key, &csr, CLUSTER, &out).expect_err("anchor exists");
    assert_eq!(err.kind(), "file_exists");
    assert!(!out
        .join(format!("{CLUSTER}_CustomerHsmCertificate.crt"))
        .exists());
    // Signing into the CA directory itself reuses its customerCA.crt.
    let signed = sign_cluster_csr(&ca, &key, &csr, CLUSTER, &ca_dir).expect("into the CA dir");
    assert_eq!(
        std::fs::read(&signed.trust_anchor).expect("anchor"),
        cert_before
    );
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use x509_cert::der::Encode as _;
    let csr = ClusterCsr::parse(pem.as_bytes()).expect("csr");
    csr.request().to_der().expect("der")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
