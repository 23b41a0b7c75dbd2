//! Installing the trust anchor where the CloudHSM client reads it.
//!
//! The client SDK checks the cluster's certificate against `/opt/cloudhsm/etc/customerCA.crt`
//! ("Install and configure CloudHSM CLI", step "Copy the issuing certificate":
//! <https://docs.aws.amazon.com/cloudhsm/latest/userguide/gs_cloudhsm_cli-install.html>): the
//! file must have exactly that name, hold the self-signed CA certificate that signed the
//! cluster's CSR, and be readable by every user that runs the client (mode 0644).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::ca::CA_CERT_FILE;
use crate::x509;
use crate::{files, Error};

/// Where the CloudHSM client reads the trust anchor.
pub const DEFAULT_TRUST_ANCHOR: &str = "/opt/cloudhsm/etc/customerCA.crt";

/// What [`install_trust_anchor`] did.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledAnchor {
    /// Where it was written.
    pub path: PathBuf,
    /// Its subject, RFC 4514.
    pub subject: String,
    /// SHA-256 of its DER, hex.
    pub sha256_fingerprint: String,
    /// Whether a file was there before (now replaced).
    pub replaced: bool,
    /// Whether the file there was already this certificate (nothing written).
    pub unchanged: bool,
    /// The cluster certificate checked against it, if one was given.
    pub verified_cluster_certificate: Option<PathBuf>,
}

/// Installs the CA certificate `ca` (a CA directory holding `customerCA.crt`, or the certificate
/// file itself) at `to`, atomically, mode 0644, after checking it is a self-signed CA
/// certificate, valid now, and, when `cluster_cert` is given, that it verifies that certificate.
pub fn install_trust_anchor(
    ca: &Path,
    to: &Path,
    cluster_cert: Option<&Path>,
) -> Result<InstalledAnchor, Error> {
    let source = if ca.is_dir() {
        ca.join(CA_CERT_FILE)
    } else {
        ca.to_path_buf()
    };
    let bytes = files::read(&source, "CA certificate")?;
    let anchor = x509::parse_certificate(&bytes, "CA certificate")?;
    x509::check_ca(&anchor)
        .map_err(|e| Error::NotTrustAnchor(format!("{}: {e}", source.display())))?;
    x509::check_self_signed(&anchor)
        .map_err(|e| Error::NotTrustAnchor(format!("{}: {e}", source.display())))?;
    x509::check_validity(&anchor, SystemTime::now())
        .map_err(|e| Error::NotTrustAnchor(format!("{}: {e}", source.display())))?;
    if let Some(path) = cluster_cert {
        let cert = x509::parse_certificate(
            &files::read(path, "cluster certificate")?,
            "cluster certificate",
        )?;
        let tbs = cert.tbs_certificate();
        if tbs.issuer() != anchor.tbs_certificate().subject() {
            return Err(Error::NotTrustAnchor(format!(
                "{} was issued by {}, not by this CA ({})",
                path.display(),
                tbs.issuer(),
                anchor.tbs_certificate().subject()
            )));
        }
        x509::verify_certificate(&cert, anchor.tbs_certificate().subject_public_key_info())
            .map_err(|e| {
                Error::NotTrustAnchor(format!(
                    "it does not verify {}: {e}; install the CA that signed the cluster's CSR",
                    path.display()
                ))
            })?;
    }
    if to.file_name().is_some_and(|n| n != CA_CERT_FILE) {
        return Err(Error::invalid(
            "destination",
            format!(
                "{} is not named {CA_CERT_FILE}, the only name the CloudHSM client reads",
                to.display()
            ),
        ));
    }
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            return Err(Error::invalid(
                "destination",
                format!(
                    "the directory {} does not exist; install the CloudHSM client first (it creates /opt/cloudhsm/etc)",
                    dir.display()
                ),
            ))
        }
        _ => {}
    }
    let pem = x509::certificate_pem(&anchor)?;
    let existing = std::fs::read(to).ok();
    let unchanged = existing
        .as_deref()
        .and_then(|b| x509::parse_certificate(b, "certificate").ok())
        .is_some_and(|c| c == anchor);
    if !unchanged {
        files::replace(to, pem.as_bytes(), 0o644)?;
    }
    Ok(InstalledAnchor {
        path: to.to_path_buf(),
        subject: anchor.tbs_certificate().subject().to_string(),
        sha256_fingerprint: x509::fingerprint(&anchor),
        replaced: existing.is_some() && !unchanged,
        unchanged,
        verified_cluster_certificate: cluster_cert.map(Path::to_path_buf),
    })
}
