//! The customer CA's private key: RSA 2048 in a passphrase-encrypted file (AWS's example), or
//! ECDSA P-256 on a PKCS#11 token, where it never leaves the HSM. Either signs through rcgen's
//! [`rcgen::SigningKey`].

use std::cell::RefCell;
use std::path::Path;

use p256::ecdsa::Signature as EcdsaSignature;
use rsa::pkcs1v15;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use crate::x509::RSA_ENCRYPTION;
use crate::Error;

/// Size of the software CA key: the 2048-bit RSA key of AWS's example
/// (<https://docs.aws.amazon.com/cloudhsm/latest/userguide/initialize-cluster.html>, "Create a
/// private key": `openssl genrsa -aes256 -out customerCA.key 2048`).
pub const RSA_BITS: usize = 2048;

/// Fewest characters a CA key passphrase may have (OpenSSL refuses fewer than 4; a key that
/// establishes ownership of the cluster deserves more).
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// A CA key that can sign certificates.
pub struct CaKey {
    inner: Inner,
    public_bits: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
    /// The token's error when a signature failed (rcgen only carries "remote key error").
    last_error: RefCell<Option<cryptoki_ops::Error>>,
}

enum Inner {
    Software(Box<pkcs1v15::SigningKey<Sha256>>),
    Token(Box<cryptoki_ops::SigningKey>),
}

impl std::fmt::Debug for CaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::Software(_) => "software RSA",
            Inner::Token(key) => return write!(f, "CaKey(token {key:?})"),
        };
        write!(f, "CaKey({kind})")
    }
}

impl CaKey {
    /// Generates a new RSA 2048 key in memory.
    pub fn generate_rsa() -> Result<(Self, rsa::PrivateKey), Error> {
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
            .map_err(|e| Error::invalid("CA key", format!("RSA key generation failed: {e}")))?;
        Ok((Self::from_rsa(private.clone())?, private))
    }

    fn from_rsa(private: rsa::PrivateKey) -> Result<Self, Error> {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        let public_bits = private
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| {
                Error::invalid("CA key", format!("cannot encode the RSA public key: {e}"))
            })?
            .into_vec();
        Ok(Self {
            inner: Inner::Software(Box::new(pkcs1v15::SigningKey::<Sha256>::new(private))),
            public_bits,
            algorithm: &rcgen::PKCS_RSA_SHA256,
            last_error: RefCell::new(None),
        })
    }

    /// Reads the encrypted key file `path` with `passphrase`.
    pub fn from_encrypted_file(path: &Path, passphrase: &SecretString) -> Result<Self, Error> {
        let bytes = crate::files::read(path, "CA key")?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::invalid("CA key", format!("{} is not PEM text", path.display())))?;
        if !text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Error::invalid(
                "CA key",
                format!(
                    "{} is not an encrypted PKCS#8 key (-----BEGIN ENCRYPTED PRIVATE KEY-----); this tool never reads an unencrypted CA key",
                    path.display()
                ),
            ));
        }
        let private =
            rsa::PrivateKey::from_pkcs8_encrypted_pem(text, passphrase.expose_secret().as_bytes())
                .map_err(|_| Error::WrongPassphrase {
                    path: path.to_path_buf(),
                })?;
        Self::from_rsa(private)
    }

    /// Encrypts `private` under `passphrase` as PKCS#8 PEM (PBES2: scrypt and AES-256-CBC),
    /// which `openssl pkey` and `openssl x509 -CAkey` also read.
    pub fn encrypt_pem(
        private: &rsa::PrivateKey,
        passphrase: &SecretString,
    ) -> Result<zeroize::Zeroizing<String>, Error> {
        check_passphrase(passphrase)?;
        private
            .to_pkcs8_encrypted_pem(passphrase.expose_secret().as_bytes(), LineEnding::LF)
            .map_err(|e| Error::invalid("CA key", format!("cannot encrypt the key: {e}")))
    }

    /// The key `key` of a PKCS#11 token: ECDSA P-256, signing on the token.
    pub fn from_token(key: cryptoki_ops::SigningKey) -> Result<Self, Error> {
        if key.curve() != cryptoki_ops::Curve::P256 {
            return Err(Error::invalid(
                "CA key",
                format!(
                    "the token key is {}; a CA key on a token must be P-256",
                    key.curve().name()
                ),
            ));
        }
        Ok(Self {
            public_bits: key.public_key().uncompressed().to_vec(),
            inner: Inner::Token(Box::new(key)),
            algorithm: &rcgen::PKCS_ECDSA_P256_SHA256,
            last_error: RefCell::new(None),
        })
    }

    /// A short description: `RSA 2048 (file)` or `EC P-256 (token)`.
    pub fn description(&self) -> &'static str {
        match self.inner {
            Inner::Software(_) => "RSA 2048, in an encrypted file",
            Inner::Token(_) => "EC P-256, on a PKCS#11 token",
        }
    }

    /// Whether this key is the one of `spki` (the CA certificate's).
    pub fn matches(&self, spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> bool {
        let same_type = match self.inner {
            Inner::Software(_) => spki.algorithm.oid == RSA_ENCRYPTION,
            Inner::Token(_) => spki.algorithm.oid == crate::x509::EC_PUBLIC_KEY,
        };
        same_type && spki.subject_public_key.raw_bytes() == self.public_bits.as_slice()
    }

    /// Takes the token error behind a failed signature, if there was one.
    pub(crate) fn take_error(&self) -> Option<cryptoki_ops::Error> {
        self.last_error.borrow_mut().take()
    }
}

/// Refuses an empty or short passphrase.
pub fn check_passphrase(passphrase: &SecretString) -> Result<(), Error> {
    if passphrase.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(Error::invalid(
            "passphrase",
            format!("it has fewer than {MIN_PASSPHRASE_CHARS} characters; use a longer one"),
        ));
    }
    Ok(())
}

impl rcgen::PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match &self.inner {
            Inner::Software(key) => key
                .try_sign(msg)
                .map(|s| s.to_vec())
                .map_err(|_| rcgen::Error::RemoteKeyError),
            Inner::Token(key) => {
                let digest = Sha256::digest(msg);
                let raw = key.sign(&digest).map_err(|e| {
                    *self.last_error.borrow_mut() = Some(e);
                    rcgen::Error::RemoteKeyError
                })?;
                let signature =
                    EcdsaSignature::from_slice(&raw).map_err(|_| rcgen::Error::RemoteKeyError)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }
}
