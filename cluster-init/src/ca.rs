//! The customer CA: a self-signed certificate (`customerCA.crt`) and its key, in a directory.
//!
//! AWS's "Initialize the cluster" page
//! (<https://docs.aws.amazon.com/cloudhsm/latest/userguide/initialize-cluster.html>) creates the
//! key with `openssl genrsa -aes256 -out customerCA.key 2048` and the certificate with
//! `openssl req -new -x509 -days 3652 -key customerCA.key -out customerCA.crt`, and requires of
//! the trust anchor: RFC 5280 compliant, self-signed, and when it has X509v3 extensions, a
//! Basic Constraints extension. This module makes the same: a 10-year (3652 days)
//! self-signed certificate with Basic Constraints CA:TRUE (critical), key usage keyCertSign and
//! cRLSign, and key identifiers.
//!
//! A directory holds `customerCA.crt` and either `customerCA.key` (the key, encrypted PKCS#8,
//! mode 0600) or `customerCA.token.json` (where the key is on a PKCS#11 token).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyIdMethod, KeyUsagePurpose};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

use crate::key::CaKey;
use crate::x509;
use crate::{files, Error};

/// The CA certificate's file name: the name the CloudHSM client reads the trust anchor under.
pub const CA_CERT_FILE: &str = "customerCA.crt";
/// The encrypted CA key's file name.
pub const CA_KEY_FILE: &str = "customerCA.key";
/// The file saying which token holds the CA key.
pub const CA_TOKEN_FILE: &str = "customerCA.token.json";
/// Validity of the CA certificate and of the cluster certificate, as AWS's example (`-days 3652`).
pub const VALIDITY_DAYS: u32 = 3652;

/// The subject of the CA certificate.
#[derive(Debug, Clone)]
pub struct CaSubject {
    /// Common name (CN).
    pub common_name: String,
    /// Organization (O), if any.
    pub organization: Option<String>,
    /// Two-letter country code (C), if any.
    pub country: Option<String>,
}

impl Default for CaSubject {
    fn default() -> Self {
        Self {
            common_name: "customerCA".into(),
            organization: None,
            country: None,
        }
    }
}

/// Where a token CA key is: written to `customerCA.token.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeyRef {
    /// The token's label.
    pub token: String,
    /// The key's label.
    pub key_label: String,
    /// The key's CKA_ID, hex.
    pub key_id: String,
}

/// Where the CA key is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CaKeyLocation {
    /// An encrypted file.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A PKCS#11 token.
    Token(TokenKeyRef),
}

/// What [`create_ca`] made.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedCa {
    /// The CA certificate's file.
    pub certificate: PathBuf,
    /// Where the key is.
    pub key: CaKeyLocation,
    /// The key's algorithm.
    pub key_algorithm: &'static str,
    /// The subject, RFC 4514.
    pub subject: String,
    /// Last day of validity (RFC 3339 UTC).
    pub not_after: String,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256_fingerprint: String,
}

/// How the new CA's key is made.
pub enum NewCaKey<'a> {
    /// RSA 2048 in software, written encrypted under this passphrase.
    File(&'a SecretString),
    /// ECDSA P-256 generated on this token under this label.
    Token {
        /// The token, logged in as a user.
        hsm: &'a cryptoki_ops::Hsm,
        /// The key's label.
        key_label: &'a str,
    },
}

/// Creates a customer CA in `dir` (made mode 0700 when missing): its key and `customerCA.crt`.
/// Refuses when any of the files exists already.
///
/// ```no_run
/// use secrecy::SecretString;
/// use cluster_init::{create_ca, CaSubject, NewCaKey};
/// let passphrase = SecretString::from("correct horse battery staple");
/// let ca = create_ca("ca".as_ref(), &CaSubject::default(), NewCaKey::File(&passphrase))?;
/// println!("{}", ca.certificate.display());
/// # Ok::<(), cluster_init::Error>(())
/// ```
pub fn create_ca(dir: &Path, subject: &CaSubject, key: NewCaKey<'_>) -> Result<CreatedCa, Error> {
    prepare_dir(dir)?;
    let cert_path = dir.join(CA_CERT_FILE);
    files::ensure_absent(&cert_path)?;
    files::ensure_absent(&dir.join(CA_KEY_FILE))?;
    files::ensure_absent(&dir.join(CA_TOKEN_FILE))?;
    let params = ca_params(subject)?;
    let (ca_key, location) = match key {
        NewCaKey::File(passphrase) => {
            crate::key::check_passphrase(passphrase)?;
            let (ca_key, private) = CaKey::generate_rsa()?;
            let pem = CaKey::encrypt_pem(&private, passphrase)?;
            let path = dir.join(CA_KEY_FILE);
            files::write_new(&path, pem.as_bytes(), 0o600)?;
            (ca_key, CaKeyLocation::File { path })
        }
        NewCaKey::Token { hsm, key_label } => {
            let spec = cryptoki_ops::EcKeySpec::new(cryptoki_ops::Curve::P256, key_label);
            let pair = hsm.generate_ec_key(&spec)?;
            let reference = TokenKeyRef {
                token: hsm.token_label().to_string(),
                key_label: key_label.to_string(),
                key_id: pair.private.id_hex(),
            };
            let signing =
                hsm.signing_key(&cryptoki_ops::KeySelector::Id(pair.private.id.clone()))?;
            let json = serde_json::to_vec_pretty(&reference)
                .map_err(|e| Error::invalid("token reference", e.to_string()))?;
            files::write_new(&dir.join(CA_TOKEN_FILE), &json, 0o644)?;
            (CaKey::from_token(signing)?, CaKeyLocation::Token(reference))
        }
    };
    let mut params = params;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id_of(&ca_key));
    let cert = params
        .self_signed(&ca_key)
        .map_err(|e| sign_error(&ca_key, e))?;
    let parsed = x509::from_rcgen(&cert)?;
    // What AWS will check: a self-signed CA certificate.
    x509::check_self_signed(&parsed).map_err(|e| Error::invalid("CA certificate", e))?;
    x509::check_ca(&parsed).map_err(|e| Error::invalid("CA certificate", e))?;
    files::write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(CreatedCa {
        certificate: cert_path,
        key: location,
        key_algorithm: ca_key.description(),
        subject: parsed.tbs_certificate().subject().to_string(),
        not_after: rfc3339(params.not_after),
        sha256_fingerprint: x509::fingerprint(&parsed),
    })
}

fn prepare_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::invalid(
            "directory",
            format!("{} exists and is not a directory", dir.display()),
        )),
        Err(_) => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|source| Error::Write {
                action: "create the directory",
                path: dir.to_path_buf(),
                source,
            })
        }
    }
}

fn key_id_of(key: &CaKey) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(rcgen::PublicKeyData::der_bytes(key))[..20].to_vec()
}

pub(crate) fn sign_error(key: &CaKey, e: rcgen::Error) -> Error {
    match key.take_error() {
        Some(hsm) => Error::Hsm(hsm),
        None => Error::invalid("certificate", format!("cannot issue it: {e}")),
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Validity from now (to the second) for [`VALIDITY_DAYS`] days.
pub(crate) fn validity() -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    (now, now + time::Duration::days(i64::from(VALIDITY_DAYS)))
}

fn ca_params(subject: &CaSubject) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(c) = &subject.country {
        if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
            return Err(Error::invalid(
                "country",
                format!("'{c}' is not a two-letter country code such as US"),
            ));
        }
        dn.push(
            DnType::CountryName,
            rcgen::DnValue::PrintableString(
                c.as_str()
                    .try_into()
                    .map_err(|e| Error::invalid("country", format!("{e}")))?,
            ),
        );
    }
    if let Some(o) = &subject.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if subject.common_name.trim().is_empty() {
        return Err(Error::invalid("common name", "it is empty"));
    }
    dn.push(DnType::CommonName, subject.common_name.as_str());
    params.distinguished_name = dn;
    let (not_before, not_after) = validity();
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(x509::random_serial()?);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// A CA directory read back: the certificate and where its key is.
#[derive(Debug)]
pub struct CaDir {
    /// The directory.
    pub dir: PathBuf,
    /// `customerCA.crt`.
    pub certificate: Certificate,
    /// Its PEM text, as written.
    pub certificate_pem: String,
    /// Where the key is.
    pub key: CaKeyLocation,
}

impl CaDir {
    /// Reads the CA in `dir`, checking the certificate is a self-signed CA certificate.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let cert_path = dir.join(CA_CERT_FILE);
        let bytes = files::read(&cert_path, "CA certificate")?;
        let certificate = x509::parse_certificate(&bytes, "CA certificate")?;
        x509::check_self_signed(&certificate).map_err(|e| Error::invalid("CA certificate", e))?;
        x509::check_ca(&certificate).map_err(|e| Error::invalid("CA certificate", e))?;
        x509::check_validity(&certificate, SystemTime::now())
            .map_err(|e| Error::invalid("CA certificate", e))?;
        let key_path = dir.join(CA_KEY_FILE);
        let token_path = dir.join(CA_TOKEN_FILE);
        let key = if key_path.exists() {
            CaKeyLocation::File { path: key_path }
        } else if token_path.exists() {
            let json = files::read(&token_path, "token reference")?;
            let reference: TokenKeyRef = serde_json::from_slice(&json).map_err(|e| {
                Error::invalid("token reference", format!("{}: {e}", token_path.display()))
            })?;
            CaKeyLocation::Token(reference)
        } else {
            return Err(Error::invalid(
                "CA directory",
                format!(
                    "{} holds neither {CA_KEY_FILE} nor {CA_TOKEN_FILE}; create the CA with `cluster ca create`",
                    dir.display()
                ),
            ));
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            certificate_pem: x509::certificate_pem(&certificate)?,
            certificate,
            key,
        })
    }

    /// The CA key of the file in this directory, decrypted with `passphrase`.
    pub fn software_key(&self, passphrase: &SecretString) -> Result<CaKey, Error> {
        match &self.key {
            CaKeyLocation::File { path } => {
                self.checked(CaKey::from_encrypted_file(path, passphrase)?)
            }
            CaKeyLocation::Token(r) => Err(Error::invalid(
                "CA directory",
                format!("its key is on the token '{}', not in a file", r.token),
            )),
        }
    }

    /// The CA key on the token `hsm` (the one [`CaKeyLocation::Token`] names).
    pub fn token_key(&self, hsm: &cryptoki_ops::Hsm) -> Result<CaKey, Error> {
        let CaKeyLocation::Token(r) = &self.key else {
            return Err(Error::invalid(
                "CA directory",
                "its key is in a file, not on a token",
            ));
        };
        let id = hex_decode(&r.key_id)
            .ok_or_else(|| Error::invalid("token reference", "key_id is not hex"))?;
        let signing = hsm.signing_key(&cryptoki_ops::KeySelector::Id(id))?;
        self.checked(CaKey::from_token(signing)?)
    }

    /// Checks `key` is the certificate's key.
    fn checked(&self, key: CaKey) -> Result<CaKey, Error> {
        if !key.matches(self.certificate.tbs_certificate().subject_public_key_info()) {
            return Err(Error::invalid(
                "CA key",
                format!(
                    "it is not the key of {}; the directory's files do not belong together",
                    self.dir.join(CA_CERT_FILE).display()
                ),
            ));
        }
        Ok(key)
    }

    /// The issuer for rcgen: this certificate's subject and key identifier, signing with `key`.
    pub(crate) fn issuer<'a>(
        &self,
        key: &'a CaKey,
    ) -> Result<rcgen::Issuer<'static, &'a CaKey>, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = x509::to_rcgen_name(
            self.certificate.tbs_certificate().subject(),
            "CA certificate",
        )?;
        let spki = self.certificate.tbs_certificate().subject_public_key_info();
        params.key_identifier_method = KeyIdMethod::PreSpecified(
            x509::subject_key_id(&self.certificate).unwrap_or_else(|| x509::key_id(spki)),
        );
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(rcgen::Issuer::new(params, key))
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
