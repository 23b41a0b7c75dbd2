//! AWS CloudHSM cluster bring-up, the steps of AWS's user guide that come before the first
//! login, as library calls that cannot be typed wrong:
//!
//! - [`create_ca`]: the customer CA ("Create a private key" and the self-signed certificate of
//!   <https://docs.aws.amazon.com/cloudhsm/latest/userguide/initialize-cluster.html>), its key
//!   RSA 2048 in a passphrase-encrypted file, or ECDSA P-256 on a PKCS#11 token.
//! - [`sign_cluster_csr`]: "Sign the CSR" of the same page, refusing a CSR whose signature does
//!   not verify, writing `<cluster id>_CustomerHsmCertificate.crt` and `customerCA.crt`, and
//!   giving the `aws cloudhsmv2 initialize-cluster` command.
//! - [`verify_identity`]: "Verify the identity and authenticity of your cluster's HSM"
//!   (<https://docs.aws.amazon.com/cloudhsm/latest/userguide/verify-hsm-identity.html>): both
//!   chains to the HSM certificate and the CSR's key, each failure naming its link.
//! - [`install_trust_anchor`]: `customerCA.crt` where the CloudHSM client reads it, atomically.
//!
//! X.509 is issued with `rcgen` (every signature through [`CaKey`]) and read and verified with
//! the RustCrypto `x509-cert` family; nothing runs `openssl`.

pub mod anchor;
pub mod ca;
pub mod csr;
pub mod describe;
mod error;
mod files;
pub mod identity;
pub mod key;
pub mod x509;

pub use anchor::{install_trust_anchor, InstalledAnchor, DEFAULT_TRUST_ANCHOR};
pub use ca::{create_ca, CaDir, CaKeyLocation, CaSubject, CreatedCa, NewCaKey, TokenKeyRef};
pub use csr::{sign_cluster_csr, ClusterCsr, SignedCluster};
pub use describe::{parse_describe_clusters, Certificates, Cluster};
pub use error::Error;
pub use files::MAX_INPUT_BYTES;
pub use identity::{verify_identity, IdentityInputs, IdentityReport, Link};
pub use key::CaKey;
