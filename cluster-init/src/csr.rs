//! Signing the cluster's CSR with the customer CA, as step "Sign the CSR" of AWS's
//! "Initialize the cluster" (<https://docs.aws.amazon.com/cloudhsm/latest/userguide/initialize-cluster.html>):
//! the equivalent of `openssl x509 -req -days 3652 -in <cluster ID>_ClusterCsr.csr -CA
//! customerCA.crt -CAkey customerCA.key -CAcreateserial -out <cluster ID>_CustomerHsmCertificate.crt`,
//! after checking the CSR's own signature. It then gives the `aws cloudhsmv2 initialize-cluster`
//! command to run with the two files.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, IsCa};
use serde::Serialize;
use x509_cert::der::Encode as _;
use x509_cert::request::CertReq;

use crate::ca::{self, CaDir, CA_CERT_FILE};
use crate::key::CaKey;
use crate::x509;
use crate::{files, Error};

/// Longest certificate `initialize-cluster` takes, in characters, for the signed certificate and
/// for the trust anchor (API reference of `InitializeCluster`:
/// <https://docs.aws.amazon.com/cloudhsm/latest/APIReference/API_InitializeCluster.html>).
pub const MAX_CERT_CHARS: usize = 5000;

/// The name of the signed cluster certificate for `cluster_id`, as AWS's page names it.
pub fn cluster_cert_file(cluster_id: &str) -> String {
    format!("{cluster_id}_CustomerHsmCertificate.crt")
}

/// Checks a cluster id has the form the API accepts: `cluster-` then 11 to 16 characters of
/// `[2-7a-zA-Z]` (`InitializeCluster`'s `ClusterId` pattern).
pub fn check_cluster_id(id: &str) -> Result<(), Error> {
    let rest = id.strip_prefix("cluster-").unwrap_or("");
    let ok = (11..=16).contains(&rest.len())
        && rest
            .chars()
            .all(|c| c.is_ascii_alphabetic() || ('2'..='7').contains(&c));
    if !ok {
        return Err(Error::invalid(
            "cluster id",
            format!("'{id}' is not of the form cluster-xxxxxxxxxxx (11 to 16 letters or digits 2-7); copy it from `aws cloudhsmv2 describe-clusters`"),
        ));
    }
    Ok(())
}

/// A parsed cluster CSR whose signature verified.
#[derive(Debug, Clone)]
pub struct ClusterCsr {
    csr: CertReq,
}

impl ClusterCsr {
    /// Parses a CSR (PEM or DER) and checks its signature: a CSR altered on the way, or not
    /// signed by the key it carries, is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let csr = x509::parse_csr(bytes)?;
        x509::verify_csr(&csr)?;
        Ok(Self { csr })
    }

    /// The request.
    pub fn request(&self) -> &CertReq {
        &self.csr
    }

    /// The subject, RFC 4514.
    pub fn subject(&self) -> String {
        self.csr.info.subject.to_string()
    }
}

/// What [`sign_cluster_csr`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SignedCluster {
    /// The cluster.
    pub cluster_id: String,
    /// `<cluster id>_CustomerHsmCertificate.crt`.
    pub signed_cert: PathBuf,
    /// `customerCA.crt` (the trust anchor).
    pub trust_anchor: PathBuf,
    /// The certificate's subject (the CSR's), RFC 4514.
    pub subject: String,
    /// Serial number, hex.
    pub serial: String,
    /// Last day of validity (RFC 3339 UTC).
    pub not_after: String,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256_fingerprint: String,
    /// The command that initializes the cluster with these files.
    pub initialize_command: String,
}

/// Signs `csr` for `cluster_id` with the CA of `ca` (key `key`), writing
/// `<cluster id>_CustomerHsmCertificate.crt` and `customerCA.crt` in `out_dir`. Never writes over
/// an existing file (an existing `customerCA.crt` identical to the CA's is used as it is).
pub fn sign_cluster_csr(
    ca: &CaDir,
    key: &CaKey,
    csr: &ClusterCsr,
    cluster_id: &str,
    out_dir: &Path,
) -> Result<SignedCluster, Error> {
    check_cluster_id(cluster_id)?;
    let cert_path = out_dir.join(cluster_cert_file(cluster_id));
    let anchor_path = out_dir.join(CA_CERT_FILE);
    files::ensure_absent(&cert_path)?;
    let anchor_present = if std::fs::symlink_metadata(&anchor_path).is_ok() {
        if !same_certificate(&anchor_path, &ca.certificate) {
            return Err(Error::Exists { path: anchor_path });
        }
        true
    } else {
        false
    };

    let request = &csr.csr.info;
    let public_key = x509::RawPublicKey::new(&request.public_key, "CSR")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = x509::to_rcgen_name(&request.subject, "CSR")?;
    let (not_before, not_after) = ca::validity();
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(x509::random_serial()?);
    params.is_ca = IsCa::NoCa;
    params.use_authority_key_identifier_extension = true;
    let issuer = ca.issuer(key)?;
    let cert = params
        .signed_by(&public_key, &issuer)
        .map_err(|e| ca::sign_error(key, e))?;
    let parsed = x509::from_rcgen(&cert)?;
    // Check what was made: the CSR's key, signed by the CA.
    let ca_spki = ca.certificate.tbs_certificate().subject_public_key_info();
    x509::verify_certificate(&parsed, ca_spki).map_err(|reason| Error::BadSignature {
        what: "the certificate just issued".into(),
        reason,
    })?;
    if x509::spki_der(parsed.tbs_certificate().subject_public_key_info())
        != x509::spki_der(&request.public_key)
    {
        return Err(Error::invalid(
            "certificate",
            "the issued certificate does not carry the CSR's public key exactly; nothing was written",
        ));
    }
    let pem = cert.pem();
    for (what, text) in [
        ("signed certificate", &pem),
        ("trust anchor", &ca.certificate_pem),
    ] {
        if text.len() > MAX_CERT_CHARS {
            return Err(Error::invalid(
                what,
                format!(
                    "it is {} characters; initialize-cluster takes at most {MAX_CERT_CHARS}",
                    text.len()
                ),
            ));
        }
    }
    files::write_new(&cert_path, pem.as_bytes(), 0o644)?;
    if !anchor_present {
        match files::write_new(&anchor_path, ca.certificate_pem.as_bytes(), 0o644) {
            // Another signing wrote it meanwhile: fine if it is this CA's certificate.
            Err(Error::Exists { path }) if !same_certificate(&path, &ca.certificate) => {
                return Err(Error::Exists { path })
            }
            Err(Error::Exists { .. }) | Ok(()) => {}
            Err(e) => return Err(e),
        }
    }
    let serial = parsed
        .tbs_certificate()
        .serial_number()
        .to_der()
        .map(|d| x509::hex(d.get(2..).unwrap_or_default()))
        .unwrap_or_default();
    Ok(SignedCluster {
        cluster_id: cluster_id.to_string(),
        initialize_command: initialize_command(cluster_id, &cert_path, &anchor_path),
        signed_cert: cert_path,
        trust_anchor: anchor_path,
        subject: request.subject.to_string(),
        serial,
        not_after: ca::rfc3339(not_after),
        sha256_fingerprint: x509::fingerprint(&parsed),
    })
}

/// Whether the file at `path` is a regular file holding `cert`.
fn same_certificate(path: &Path, cert: &x509_cert::Certificate) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && files::read(path, "certificate")
            .ok()
            .and_then(|b| x509::parse_certificate(&b, "certificate").ok())
            .is_some_and(|c| &c == cert)
}

/// `aws cloudhsmv2 initialize-cluster --cluster-id … --signed-cert file://… --trust-anchor
/// file://…`, step "Initialize the cluster" of AWS's page, with the paths quoted for a POSIX shell.
pub fn initialize_command(cluster_id: &str, signed_cert: &Path, trust_anchor: &Path) -> String {
    format!(
        "aws cloudhsmv2 initialize-cluster --cluster-id {} --signed-cert {} --trust-anchor {}",
        shell_quote(cluster_id),
        shell_quote(&format!("file://{}", signed_cert.display())),
        shell_quote(&format!("file://{}", trust_anchor.display())),
    )
}

fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
