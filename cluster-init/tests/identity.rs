//! `verify_identity` on chains made here with AWS's structure: AWS root and manufacturer root,
//! each issuing a hardware certificate for the same hardware key, which issues the HSM
//! certificate; the cluster CSR signed by the HSM key. Each bad chain names its broken link.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::SystemTime;

use cluster_init::identity::{verify_identity, IdentityInputs};
use p256::ecdsa::signature::Signer as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyIdMethod};

/// A software P-256 key for rcgen (the test's stand-in for the roots', hardware and HSM keys).
struct Key(p256::ecdsa::SigningKey, Vec<u8>);

impl Key {
    fn new() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let key = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
        let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
        Self(key, public)
    }
}

impl rcgen::PublicKeyData for Key {
    fn der_bytes(&self) -> &[u8] {
        &self.1
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let signature: p256::ecdsa::Signature = self.0.sign(msg);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[1, 2, 3]));
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    params.key_identifier_method = KeyIdMethod::PreSpecified(cn.as_bytes().to_vec());
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params
}

/// The PEM texts of a chain: (aws root, manufacturer root, aws hardware, manufacturer hardware,
/// hsm, csr).
struct Chain {
    aws_root: String,
    manufacturer_root: String,
    aws_hardware: String,
    manufacturer_hardware: String,
    hsm: String,
    csr: String,
}

impl Chain {
    fn inputs(&self) -> IdentityInputs {
        IdentityInputs::parse(
            self.aws_root.as_bytes(),
            self.manufacturer_root.as_bytes(),
            self.aws_hardware.as_bytes(),
            self.manufacturer_hardware.as_bytes(),
            self.hsm.as_bytes(),
            self.csr.as_bytes(),
        )
        .unwrap()
    }

    /// The names of the links that broke.
    fn broken(&self) -> Vec<String> {
        let report = verify_identity(&self.inputs(), SystemTime::now());
        assert_eq!(report.verified, report.broken().next().is_none());
        report.broken().map(|l| l.link.clone()).collect()
    }
}

struct Keys {
    aws_root: Key,
    manufacturer_root: Key,
    hardware: Key,
    hsm: Key,
}

fn chain(keys: &Keys) -> Chain {
    let aws_root_params = params("AWS CloudHSM Root", true);
    let manufacturer_root_params = params("Manufacturer Root", true);
    let hardware_params = params("HSM hardware 1234", true);
    let aws_root = aws_root_params.self_signed(&keys.aws_root).unwrap();
    let manufacturer_root = manufacturer_root_params
        .self_signed(&keys.manufacturer_root)
        .unwrap();
    let aws_hardware = hardware_params
        .signed_by(
            &keys.hardware,
            &Issuer::from_params(&aws_root_params, &keys.aws_root),
        )
        .unwrap();
    let manufacturer_hardware = hardware_params
        .signed_by(
            &keys.hardware,
            &Issuer::from_params(&manufacturer_root_params, &keys.manufacturer_root),
        )
        .unwrap();
    let hsm = params("HSM:1234:PARTN:5", false)
        .signed_by(
            &keys.hsm,
            &Issuer::from_params(&hardware_params, &keys.hardware),
        )
        .unwrap();
    let mut csr_params = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::CommonName, "HSM:1234:PARTN:5, for FIPS mode");
    csr_params.distinguished_name = dn;
    let csr = csr_params.serialize_request(&keys.hsm).unwrap();
    Chain {
        aws_root: aws_root.pem(),
        manufacturer_root: manufacturer_root.pem(),
        aws_hardware: aws_hardware.pem(),
        manufacturer_hardware: manufacturer_hardware.pem(),
        hsm: hsm.pem(),
        csr: csr.pem().unwrap(),
    }
}

fn new_keys() -> Keys {
    Keys {
        aws_root: Key::new(),
        manufacturer_root: Key::new(),
        hardware: Key::new(),
        hsm: Key::new(),
    }
}

#[test]
fn a_well_formed_chain_verifies() {
    let good = chain(&new_keys());
    assert_eq!(good.broken(), Vec::<String>::new());
    let report = verify_identity(&good.inputs(), SystemTime::now())
        .into_result()
        .unwrap();
    assert_eq!(report.links.len(), 8);
    assert!(report.verified);
    assert!(
        report.links.iter().all(|l| l.ok && l.error.is_none()),
        "{:#?}",
        report.links
    );
    assert_eq!(report.hsm_subject, "CN=HSM:1234:PARTN:5");
}

#[test]
fn each_bad_chain_names_its_broken_link() {
    let keys = new_keys();
    let good = chain(&keys);

    // The AWS hardware certificate issued by another root with AWS's name.
    let impostor = Keys {
        aws_root: Key::new(),
        ..new_keys()
    };
    let forged = chain(&Keys {
        hardware: Key::new(),
        ..impostor
    });
    let bad = Chain {
        aws_hardware: forged.aws_hardware.clone(),
        ..chain(&keys)
    };
    let broken = bad.broken();
    assert!(
        broken.contains(&"AWS hardware certificate <- AWS root certificate".to_string()),
        "{broken:?}"
    );
    assert!(
        broken.contains(&"HSM certificate <- AWS hardware certificate".to_string()),
        "{broken:?}"
    );
    assert!(
        !broken.iter().any(|l| l.contains("manufacturer")),
        "{broken:?}"
    );

    // The roots given the wrong way round: both hardware links break, named by root.
    let swapped = Chain {
        aws_root: good.manufacturer_root.clone(),
        manufacturer_root: good.aws_root.clone(),
        ..chain(&keys)
    };
    let broken = swapped.broken();
    assert!(
        broken.contains(&"AWS hardware certificate <- AWS root certificate".to_string()),
        "{broken:?}"
    );
    assert!(broken.contains(
        &"manufacturer hardware certificate <- manufacturer root certificate".to_string()
    ));

    // An HSM certificate not signed by the hardware key.
    let other = chain(&Keys {
        aws_root: Key::new(),
        manufacturer_root: Key::new(),
        hardware: Key::new(),
        hsm: Key::new(),
    });
    let bad = Chain {
        hsm: other.hsm.clone(),
        ..chain(&keys)
    };
    let broken = bad.broken();
    assert!(
        broken.contains(&"HSM certificate <- AWS hardware certificate".to_string()),
        "{broken:?}"
    );
    assert!(broken.contains(&"HSM certificate <- manufacturer hardware certificate".to_string()));

    // A CSR whose key differs from the HSM certificate's (a valid CSR of another key).
    let bad = Chain {
        csr: other.csr.clone(),
        ..chain(&keys)
    };
    assert_eq!(
        bad.broken(),
        vec!["cluster CSR public key = HSM certificate public key".to_string()]
    );
    let err = verify_identity(&bad.inputs(), SystemTime::now())
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind(), "identity_mismatch");
    assert!(err.to_string().contains("cluster CSR public key"), "{err}");

    // A CSR whose signature does not verify (its subject altered after signing).
    let mut der = pem_body(&good.csr);
    let at = der.windows(5).position(|w| w == b"PARTN").unwrap();
    der[at] = b'Q';
    let bad_inputs = IdentityInputs {
        csr: x509_parse_csr(&der),
        ..good.inputs()
    };
    let report = verify_identity(&bad_inputs, SystemTime::now());
    let broken: Vec<_> = report.broken().map(|l| l.link.clone()).collect();
    assert_eq!(broken, vec!["cluster CSR (its own signature)".to_string()]);
}

fn pem_body(pem: &str) -> Vec<u8> {
    use x509_cert::der::{DecodePem as _, Encode as _};
    x509_cert::request::CertReq::from_pem(pem.as_bytes())
        .unwrap()
        .to_der()
        .unwrap()
}

fn x509_parse_csr(der: &[u8]) -> x509_cert::request::CertReq {
    use x509_cert::der::Decode as _;
    x509_cert::request::CertReq::from_der(der).unwrap()
}
