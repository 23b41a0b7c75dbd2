//! Verifying the identity and authenticity of the cluster's first HSM before signing its CSR,
//! as AWS's procedure does it
//! (<https://docs.aws.amazon.com/cloudhsm/latest/userguide/verify-hsm-identity.html>):
//!
//! 1. Two chains to the HSM certificate: AWS root → AWS hardware certificate → HSM certificate,
//!    and manufacturer root → manufacturer hardware certificate → HSM certificate (the two
//!    hardware certificates certify the same hardware key, which signed the HSM certificate).
//! 2. The cluster CSR carries the HSM certificate's public key (and its own signature verifies).
//!
//! Every link is checked and reported, so that a failure names the link that broke; the
//! certificates come from `aws cloudhsmv2 describe-clusters` ([`crate::describe`]) or PEM files,
//! the roots from AWS's and the manufacturer's published root certificates.

use std::time::SystemTime;

use serde::Serialize;
use x509_cert::request::CertReq;
use x509_cert::Certificate;

use crate::x509;
use crate::Error;

/// The certificates and CSR to check, parsed.
#[derive(Debug, Clone)]
pub struct IdentityInputs {
    /// AWS CloudHSM's root certificate.
    pub aws_root: Certificate,
    /// The hardware manufacturer's root certificate.
    pub manufacturer_root: Certificate,
    /// `AwsHardwareCertificate`.
    pub aws_hardware: Certificate,
    /// `ManufacturerHardwareCertificate`.
    pub manufacturer_hardware: Certificate,
    /// `HsmCertificate`.
    pub hsm: Certificate,
    /// `ClusterCsr`.
    pub csr: CertReq,
}

impl IdentityInputs {
    /// Parses the six PEM (or DER) inputs; a malformed one is an [`Error::Invalid`] naming it.
    pub fn parse(
        aws_root: &[u8],
        manufacturer_root: &[u8],
        aws_hardware: &[u8],
        manufacturer_hardware: &[u8],
        hsm: &[u8],
        csr: &[u8],
    ) -> Result<Self, Error> {
        Ok(Self {
            aws_root: x509::parse_certificate(aws_root, "AWS root certificate")?,
            manufacturer_root: x509::parse_certificate(
                manufacturer_root,
                "manufacturer root certificate",
            )?,
            aws_hardware: x509::parse_certificate(aws_hardware, "AWS hardware certificate")?,
            manufacturer_hardware: x509::parse_certificate(
                manufacturer_hardware,
                "manufacturer hardware certificate",
            )?,
            hsm: x509::parse_certificate(hsm, "HSM certificate")?,
            csr: x509::parse_csr(csr)?,
        })
    }
}

/// One link of the verification and what was found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Link {
    /// The link, e.g. `AWS hardware certificate <- AWS root certificate`.
    pub link: String,
    /// Whether it holds.
    pub ok: bool,
    /// Why not, when it does not.
    pub error: Option<String>,
}

/// The verification's result, link by link.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityReport {
    /// Every link checked, in the procedure's order.
    pub links: Vec<Link>,
    /// Subject of the HSM certificate, RFC 4514.
    pub hsm_subject: String,
    /// SHA-256 of the HSM's public key (SubjectPublicKeyInfo DER), hex.
    pub hsm_public_key_sha256: String,
    /// Whether every link holds: the HSM is attested by AWS and by its manufacturer, and the
    /// CSR is the HSM's.
    pub verified: bool,
}

impl IdentityReport {
    /// The links that broke.
    pub fn broken(&self) -> impl Iterator<Item = &Link> {
        self.links.iter().filter(|l| !l.ok)
    }

    /// `Ok` when verified, else [`Error::Identity`] naming the first broken link.
    pub fn into_result(self) -> Result<Self, Error> {
        let broken = self.broken().next().map(|link| Error::Identity {
            link: link.link.clone(),
            reason: link.error.clone().unwrap_or_default(),
        });
        match broken {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }
}

/// Names of the certificates in links and messages.
const AWS_ROOT: &str = "AWS root certificate";
const MANUFACTURER_ROOT: &str = "manufacturer root certificate";
const AWS_HARDWARE: &str = "AWS hardware certificate";
const MANUFACTURER_HARDWARE: &str = "manufacturer hardware certificate";
const HSM: &str = "HSM certificate";
const CSR: &str = "cluster CSR";

/// Verifies the HSM's identity from `inputs`, at time `now`: both chains and the CSR's key.
pub fn verify_identity(inputs: &IdentityInputs, now: SystemTime) -> IdentityReport {
    let mut links = Vec::new();
    let mut push = |link: String, result: Result<(), String>| {
        links.push(Link {
            link,
            ok: result.is_ok(),
            error: result.err(),
        })
    };
    for (name, root) in [
        (AWS_ROOT, &inputs.aws_root),
        (MANUFACTURER_ROOT, &inputs.manufacturer_root),
    ] {
        push(
            format!("{name} (self-signed, valid now)"),
            x509::check_self_signed(root).and_then(|()| x509::check_validity(root, now)),
        );
    }
    for (hardware_name, hardware, root_name, root) in [
        (
            AWS_HARDWARE,
            &inputs.aws_hardware,
            AWS_ROOT,
            &inputs.aws_root,
        ),
        (
            MANUFACTURER_HARDWARE,
            &inputs.manufacturer_hardware,
            MANUFACTURER_ROOT,
            &inputs.manufacturer_root,
        ),
    ] {
        push(
            format!("{hardware_name} <- {root_name}"),
            issued_by(hardware, root, now),
        );
        push(
            format!("{HSM} <- {hardware_name}"),
            issued_by(&inputs.hsm, hardware, now),
        );
    }
    push(
        format!("{CSR} (its own signature)"),
        x509::verify_csr(&inputs.csr).map_err(|e| e.to_string()),
    );
    let hsm_key = x509::spki_der(inputs.hsm.tbs_certificate().subject_public_key_info());
    let csr_key = x509::spki_der(&inputs.csr.info.public_key);
    push(
        format!("{CSR} public key = {HSM} public key"),
        if hsm_key == csr_key {
            Ok(())
        } else {
            Err(format!(
                "the CSR's public key (sha256 {}) is not the HSM certificate's (sha256 {}): this CSR was not made by this HSM; do not sign it",
                sha256_hex(&csr_key),
                sha256_hex(&hsm_key)
            ))
        },
    );
    let verified = links.iter().all(|l| l.ok);
    IdentityReport {
        links,
        hsm_subject: inputs.hsm.tbs_certificate().subject().to_string(),
        hsm_public_key_sha256: sha256_hex(&hsm_key),
        verified,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    x509::hex(&Sha256::digest(bytes))
}

/// Whether `cert` was issued by `issuer`: names match, the issuer may sign certificates (no
/// CA:FALSE), its key verifies the signature, and both are valid at `now`.
fn issued_by(cert: &Certificate, issuer: &Certificate, now: SystemTime) -> Result<(), String> {
    let tbs = cert.tbs_certificate();
    let issuer_tbs = issuer.tbs_certificate();
    if tbs.issuer() != issuer_tbs.subject() {
        return Err(format!(
            "it names its issuer {}, but that certificate is {}",
            tbs.issuer(),
            issuer_tbs.subject()
        ));
    }
    if let Ok(Some((_, bc))) = issuer_tbs.get_extension::<x509_cert::ext::pkix::BasicConstraints>()
    {
        if !bc.ca {
            return Err(
                "the issuer's basic constraints say CA:FALSE: it may not sign certificates".into(),
            );
        }
    }
    x509::verify_certificate(cert, issuer_tbs.subject_public_key_info())?;
    x509::check_validity(cert, now)
}
