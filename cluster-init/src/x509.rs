//! X.509 reading and signature checks through the RustCrypto `x509-cert` family: PEM input,
//! the signature of a certificate or CSR checked against an issuer's public key, names
//! converted for `rcgen`, key identifiers.

use std::time::{Duration, SystemTime};

use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs1v15;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode as _, DecodePem as _, Encode as _, Tag, Tagged as _};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;

use crate::Error;

/// rsaEncryption (RFC 8017).
pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
/// id-ecPublicKey (RFC 5480).
pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1 (RFC 5480).
pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Parses one certificate from PEM (or DER when the input is not PEM).
pub fn parse_certificate(bytes: &[u8], what: &'static str) -> Result<Certificate, Error> {
    let parsed = if looks_like_pem(bytes) {
        Certificate::from_pem(bytes)
    } else {
        Certificate::from_der(bytes)
    };
    parsed.map_err(|e| {
        Error::invalid(
            what,
            format!("not an X.509 certificate in PEM or DER ({e}); give the file holding -----BEGIN CERTIFICATE-----"),
        )
    })
}

/// Parses a certificate signing request from PEM (or DER).
pub fn parse_csr(bytes: &[u8]) -> Result<CertReq, Error> {
    let parsed = if looks_like_pem(bytes) {
        CertReq::from_pem(bytes)
    } else {
        CertReq::from_der(bytes)
    };
    parsed.map_err(|e| {
        Error::invalid(
            "CSR",
            format!("not a PKCS#10 certificate signing request in PEM or DER ({e}); give the cluster's <cluster id>_ClusterCsr.csr"),
        )
    })
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'-')
}

/// The PEM text of a certificate.
pub fn certificate_pem(cert: &Certificate) -> Result<String, Error> {
    use x509_cert::der::EncodePem as _;
    cert.to_pem(x509_cert::der::pem::LineEnding::LF)
        .map_err(|e| Error::invalid("certificate", format!("cannot encode it as PEM: {e}")))
}

/// Checks `signature` over `message` with `algorithm`, under the public key `issuer`.
///
/// Supports what AWS CloudHSM's certificates and this tool's CAs use: RSA PKCS#1 v1.5 with
/// SHA-256/384/512 and ECDSA P-256 with SHA-256. Returns the reason when it does not verify.
pub fn verify_signature(
    message: &[u8],
    algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
    issuer: &SubjectPublicKeyInfoOwned,
) -> Result<(), String> {
    let key_bits = issuer
        .subject_public_key
        .as_bytes()
        .ok_or("the public key is not a whole number of bytes")?;
    let oid = algorithm.oid;
    if [SHA256_WITH_RSA, SHA384_WITH_RSA, SHA512_WITH_RSA].contains(&oid) {
        if issuer.algorithm.oid != RSA_ENCRYPTION {
            return Err(format!(
                "signed with RSA but the issuer's key is {}",
                key_name(&issuer.algorithm)
            ));
        }
        let key = rsa::PublicKey::from_pkcs1_der(key_bits)
            .map_err(|e| format!("the issuer's RSA key does not parse: {e}"))?;
        let sig = pkcs1v15::Signature::try_from(signature)
            .map_err(|e| format!("malformed RSA signature: {e}"))?;
        let result = if oid == SHA256_WITH_RSA {
            pkcs1v15::VerifyingKey::<Sha256>::new(key).verify(message, &sig)
        } else if oid == SHA384_WITH_RSA {
            pkcs1v15::VerifyingKey::<Sha384>::new(key).verify(message, &sig)
        } else {
            pkcs1v15::VerifyingKey::<Sha512>::new(key).verify(message, &sig)
        };
        return result.map_err(|_| "RSA PKCS#1 v1.5 signature mismatch".to_string());
    }
    if oid == ECDSA_WITH_SHA256 {
        if key_curve(issuer) != Some(P256) {
            return Err(format!(
                "signed with ECDSA P-256 but the issuer's key is {}",
                key_name(&issuer.algorithm)
            ));
        }
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bits)
            .map_err(|_| "the issuer's P-256 key is not a valid point".to_string())?;
        let sig = p256::ecdsa::Signature::from_der(signature)
            .map_err(|_| "malformed ECDSA signature".to_string())?;
        return key
            .verify(message, &sig)
            .map_err(|_| "ECDSA P-256 signature mismatch".to_string());
    }
    Err(format!(
        "unsupported signature algorithm {oid} (supported: sha256/384/512WithRSAEncryption, ecdsa-with-SHA256)"
    ))
}

/// The named curve of an EC public key, if it is one.
fn key_curve(spki: &SubjectPublicKeyInfoOwned) -> Option<ObjectIdentifier> {
    if spki.algorithm.oid != EC_PUBLIC_KEY {
        return None;
    }
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

/// A short name for a key's algorithm, for messages: `RSA`, `EC P-256`, or the OID.
pub fn key_name(algorithm: &AlgorithmIdentifierOwned) -> String {
    if algorithm.oid == RSA_ENCRYPTION {
        "RSA".into()
    } else if algorithm.oid == EC_PUBLIC_KEY {
        match algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        {
            Some(c) if c == P256 => "EC P-256".into(),
            Some(c) => format!("EC (curve {c})"),
            None => "EC".into(),
        }
    } else {
        algorithm.oid.to_string()
    }
}

/// Checks that `cert` was signed by the key `issuer`.
pub fn verify_certificate(
    cert: &Certificate,
    issuer: &SubjectPublicKeyInfoOwned,
) -> Result<(), String> {
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|e| format!("cannot re-encode the certificate: {e}"))?;
    let signature = cert
        .signature()
        .as_bytes()
        .ok_or("the signature is not a whole number of bytes")?;
    verify_signature(&tbs, cert.signature_algorithm(), signature, issuer)
}

/// Checks the CSR's own signature (made with the key it carries: proof of possession).
pub fn verify_csr(csr: &CertReq) -> Result<(), Error> {
    let info = csr
        .info
        .to_der()
        .map_err(|e| Error::invalid("CSR", format!("cannot re-encode it: {e}")))?;
    let signature = csr
        .signature
        .as_bytes()
        .ok_or_else(|| Error::BadSignature {
            what: "the CSR".into(),
            reason: "the signature is not a whole number of bytes".into(),
        })?;
    verify_signature(&info, &csr.algorithm, signature, &csr.info.public_key).map_err(|reason| {
        Error::BadSignature {
            what: "the CSR".into(),
            reason,
        }
    })
}

/// The DER encoding of a public key (SubjectPublicKeyInfo), for comparing keys.
pub fn spki_der(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    spki.to_der().unwrap_or_default()
}

/// The SHA-256 fingerprint of a certificate's DER, as lowercase hex.
pub fn fingerprint(cert: &Certificate) -> String {
    let der = cert.to_der().unwrap_or_default();
    hex(&Sha256::digest(&der))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The certificate's subject key identifier extension, if it has one.
pub fn subject_key_id(cert: &Certificate) -> Option<Vec<u8>> {
    cert.tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, ski)| ski.0.as_bytes().to_vec())
}

/// A key identifier for `spki` as RFC 5280 §4.2.1.2 method 1 describes, with SHA-256 truncated
/// to 160 bits (RFC 7093 method 1).
pub fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let bits = spki.subject_public_key.raw_bytes();
    Sha256::digest(bits)[..20].to_vec()
}

/// Whether the certificate says it is a CA (basicConstraints cA TRUE), and if it has a key
/// usage extension, that it allows keyCertSign.
pub fn check_ca(cert: &Certificate) -> Result<(), String> {
    let tbs = cert.tbs_certificate();
    match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => {}
        Ok(Some(_)) => return Err("its basic constraints say it is not a CA (CA:FALSE)".into()),
        Ok(None) => {
            return Err(
                "it has no basic constraints extension; AWS requires CA:TRUE basic constraints on the trust anchor".into(),
            )
        }
        Err(e) => return Err(format!("its basic constraints do not parse: {e}")),
    }
    match tbs.get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) if !ku.key_cert_sign() => {
            Err("its key usage does not allow signing certificates (keyCertSign)".into())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("its key usage does not parse: {e}")),
    }
}

/// Whether the certificate is self-signed: subject equals issuer and its own key verifies it.
pub fn check_self_signed(cert: &Certificate) -> Result<(), String> {
    let tbs = cert.tbs_certificate();
    if tbs.subject() != tbs.issuer() {
        return Err(format!(
            "it is not self-signed: issued by {} to {}",
            tbs.issuer(),
            tbs.subject()
        ));
    }
    verify_certificate(cert, tbs.subject_public_key_info())
        .map_err(|e| format!("its self-signature does not verify: {e}"))
}

/// Checks the validity period contains `now`.
pub fn check_validity(cert: &Certificate, now: SystemTime) -> Result<(), String> {
    let validity = cert.tbs_certificate().validity();
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let not_before = validity.not_before.to_unix_duration();
    let not_after = validity.not_after.to_unix_duration();
    if now < not_before {
        return Err(format!("it is not valid before {}", validity.not_before));
    }
    if now > not_after {
        return Err(format!("it expired on {}", validity.not_after));
    }
    Ok(())
}

/// The rcgen form of an X.509 name, attribute by attribute with the same string types, so that
/// a certificate's issuer matches its CA's subject byte for byte.
pub fn to_rcgen_name(name: &Name, what: &'static str) -> Result<rcgen::DistinguishedName, Error> {
    use rcgen::{DnType, DnValue};
    let mut dn = rcgen::DistinguishedName::new();
    for rdn in name.as_ref().iter() {
        if rdn.len() != 1 {
            return Err(Error::invalid(
                what,
                format!("its name {name} has a multi-valued RDN, which this tool cannot copy"),
            ));
        }
        for atv in rdn.iter() {
            let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
            let ty = DnType::from_oid(&arcs);
            if dn.get(&ty).is_some() {
                return Err(Error::invalid(
                    what,
                    format!(
                        "its name {name} repeats the attribute {}, which this tool cannot copy",
                        atv.oid
                    ),
                ));
            }
            let value = &atv.value;
            let text = std::str::from_utf8(value.value())
                .map_err(|_| {
                    Error::invalid(what, format!("its name {name} holds a non-UTF-8 value"))
                })?
                .to_string();
            let bad = |e: rcgen::Error| Error::invalid(what, format!("its name {name}: {e}"));
            let v = match value.tag() {
                Tag::PrintableString => DnValue::PrintableString(text.try_into().map_err(bad)?),
                Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(bad)?),
                Tag::Utf8String => DnValue::Utf8String(text),
                other => {
                    return Err(Error::invalid(
                        what,
                        format!("its name {name} holds a {other} value; supported: PrintableString, UTF8String, IA5String"),
                    ))
                }
            };
            dn.push(ty, v);
        }
    }
    Ok(dn)
}

/// The rcgen algorithm whose public-key identifier matches `spki`, to put that key in a
/// certificate: RSA or EC P-256.
pub fn rcgen_key_algorithm(
    spki: &SubjectPublicKeyInfoOwned,
    what: &'static str,
) -> Result<&'static rcgen::SignatureAlgorithm, Error> {
    if spki.algorithm.oid == RSA_ENCRYPTION {
        Ok(&rcgen::PKCS_RSA_SHA256)
    } else if key_curve(spki) == Some(P256) {
        Ok(&rcgen::PKCS_ECDSA_P256_SHA256)
    } else {
        Err(Error::invalid(
            what,
            format!(
                "its public key is {}; supported: RSA, EC P-256",
                key_name(&spki.algorithm)
            ),
        ))
    }
}

/// A public key as rcgen takes it: the key bits and the matching algorithm.
pub struct RawPublicKey {
    bits: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl RawPublicKey {
    /// The key of `spki`.
    pub fn new(spki: &SubjectPublicKeyInfoOwned, what: &'static str) -> Result<Self, Error> {
        Ok(Self {
            bits: spki.subject_public_key.raw_bytes().to_vec(),
            algorithm: rcgen_key_algorithm(spki, what)?,
        })
    }
}

impl rcgen::PublicKeyData for RawPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

/// A random positive serial number of 16 bytes (RFC 5280 §4.1.2.2: positive, at most 20).
pub fn random_serial() -> Result<rcgen::SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::invalid(
            "serial number",
            format!("no randomness from the system: {e}"),
        )
    })?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// Parses the certificate rcgen produced.
pub fn from_rcgen(cert: &rcgen::Certificate) -> Result<Certificate, Error> {
    Certificate::from_der(cert.der()).map_err(|e| {
        Error::invalid(
            "certificate",
            format!("the issued certificate does not parse: {e}"),
        )
    })
}
