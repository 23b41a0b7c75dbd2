//! `cluster ca create`, `cluster csr sign`, `cluster trust-anchor install`, `cluster
//! verify-identity`: the runbook steps "Create Customer CRT", "Initialise the cluster", the trust
//! anchor of the client and "Verify the HSM", through
//! the `cluster-init` library (AWS's "Initialize the cluster" page:
//! <https://docs.aws.amazon.com/cloudhsm/latest/userguide/initialize-cluster.html>).

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use cluster_init::{
    CaKeyLocation, CaSubject, CreatedCa, IdentityInputs, IdentityReport, InstalledAnchor, NewCaKey,
    SignedCluster,
};
use cryptoki_ops::PinSource;
use serde::Serialize;

use super::{Output, Rendered};
use crate::cli::{GlobalArgs, PinSourceParser};
use crate::context::Context;
use crate::error::CliError;

/// Environment variable holding the CA key's passphrase when `--passphrase` is not given.
pub const PASSPHRASE_ENV: &str = "TEZOS_HSM_CA_PASSPHRASE";

/// `cluster ca ...`
#[derive(Subcommand)]
pub enum CaCommand {
    /// Create the customer CA: a self-signed certificate (customerCA.crt, 10 years) and its key,
    /// RSA 2048 encrypted under a passphrase (customerCA.key, mode 0600), or P-256 on a PKCS#11
    /// token (--ca-token). Never overwrites.
    Create(CaCreateArgs),
}

/// `cluster ca create`.
#[derive(Args)]
pub struct CaCreateArgs {
    /// Directory to create the CA in (created mode 0700 if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep the CA key on this PKCS#11 token (of --module, or the local store) instead of a
    /// file: it never exists outside the HSM.
    #[arg(long, value_name = "LABEL")]
    pub ca_token: Option<String>,
    /// Label of the CA key on the token.
    #[arg(long, default_value = "customerCA", requires = "ca_token")]
    pub key_label: String,
    /// Where the key file's passphrase comes from: env:VAR, file:PATH or cmd:COMMAND.
    /// Default: env:TEZOS_HSM_CA_PASSPHRASE.
    #[arg(
        long,
        value_parser = PinSourceParser,
        conflicts_with = "ca_token",
        allow_hyphen_values = true
    )]
    pub passphrase: Option<PinSource>,
    /// The certificate's common name (CN).
    #[arg(long, default_value = "customerCA")]
    pub common_name: String,
    /// The certificate's organization (O).
    #[arg(long)]
    pub organization: Option<String>,
    /// The certificate's two-letter country code (C).
    #[arg(long)]
    pub country: Option<String>,
}

/// `cluster csr ...`
#[derive(Subcommand)]
pub enum CsrCommand {
    /// Sign the cluster's CSR with the customer CA: writes CLUSTER-ID_CustomerHsmCertificate.crt
    /// and customerCA.crt (never over an existing file) and prints the `aws cloudhsmv2
    /// initialize-cluster` command to run. Refuses a CSR whose signature does not verify.
    Sign(CsrSignArgs),
}

/// `cluster csr sign`.
#[derive(Args)]
pub struct CsrSignArgs {
    /// The cluster's CSR (CLUSTER-ID_ClusterCsr.csr).
    #[arg(
        long,
        required_unless_present = "describe_clusters",
        conflicts_with = "describe_clusters"
    )]
    pub csr: Option<PathBuf>,
    /// The JSON of `aws cloudhsmv2 describe-clusters`, instead of --csr.
    #[arg(long, value_name = "JSON")]
    pub describe_clusters: Option<PathBuf>,
    /// The cluster id (cluster-...); with --describe-clusters, only needed when it lists several.
    #[arg(long, required_unless_present = "describe_clusters")]
    pub cluster_id: Option<String>,
    /// The CA directory (from `cluster ca create`).
    #[arg(long)]
    pub ca: PathBuf,
    /// Directory to write the two certificates in.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Where the CA key file's passphrase comes from. Default: env:TEZOS_HSM_CA_PASSPHRASE.
    #[arg(long, value_parser = PinSourceParser, allow_hyphen_values = true)]
    pub passphrase: Option<PinSource>,
}

/// `cluster trust-anchor ...`
#[derive(Subcommand)]
pub enum TrustAnchorCommand {
    /// Install customerCA.crt where the CloudHSM client reads it, atomically, mode 0644, after
    /// checking it is a self-signed CA certificate (that verifies --cluster-cert, if given).
    Install(TrustAnchorArgs),
}

/// `cluster trust-anchor install`.
#[derive(Args)]
pub struct TrustAnchorArgs {
    /// The CA directory, or the customerCA.crt file itself.
    #[arg(long)]
    pub ca: PathBuf,
    /// Where to install it.
    #[arg(long, default_value = cluster_init::DEFAULT_TRUST_ANCHOR)]
    pub to: PathBuf,
    /// The cluster certificate (CLUSTER-ID_CustomerHsmCertificate.crt) it must verify.
    #[arg(long)]
    pub cluster_cert: Option<PathBuf>,
}

fn lib(e: cluster_init::Error) -> CliError {
    let mut message = e.to_string();
    if e.kind() == "bad_signature" {
        message.push_str(
            "\n  download the CSR again (aws cloudhsmv2 describe-clusters) and do not edit it",
        );
    }
    CliError::new(e.kind(), message)
}

fn passphrase(source: Option<PinSource>) -> Result<secrecy::SecretString, CliError> {
    let source = source.unwrap_or_else(|| PinSource::Env(PASSPHRASE_ENV.into()));
    Ok(source.resolve()?)
}

/// `cluster ca create`: what was made.
#[derive(Serialize)]
pub struct CaCreated(CreatedCa);

impl fmt::Display for CaCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ca = &self.0;
        writeln!(f, "customer CA created: {}", ca.certificate.display())?;
        writeln!(f, "subject:     {}", ca.subject)?;
        writeln!(f, "valid until: {}", ca.not_after)?;
        writeln!(f, "sha256:      {}", ca.sha256_fingerprint)?;
        match &ca.key {
            CaKeyLocation::File { path } => write!(
                f,
                "key:         {} ({}, mode 0600); keep it and its passphrase offline",
                path.display(),
                ca.key_algorithm
            ),
            CaKeyLocation::Token(t) => write!(
                f,
                "key:         '{}' (id {}) on token '{}' ({})",
                t.key_label, t.key_id, t.token, ca.key_algorithm
            ),
        }
    }
}

impl Output for CaCreated {}

/// Runs `cluster ca create`.
pub fn ca_create(globals: &GlobalArgs, command: CaCommand) -> Result<Rendered, CliError> {
    let CaCommand::Create(args) = command;
    let subject = CaSubject {
        common_name: args.common_name,
        organization: args.organization,
        country: args.country,
    };
    let created = match &args.ca_token {
        Some(token) => {
            let ctx = Context::new(globals)?;
            let hsm = ctx.open_token(token)?;
            cluster_init::create_ca(
                &args.out,
                &subject,
                NewCaKey::Token {
                    hsm: &hsm,
                    key_label: &args.key_label,
                },
            )
        }
        None => {
            let secret = passphrase(args.passphrase)?;
            cluster_init::create_ca(&args.out, &subject, NewCaKey::File(&secret))
        }
    }
    .map_err(lib)?;
    Rendered::new(&CaCreated(created), globals.json)
}

/// `cluster csr sign`: the files written and the command to run.
#[derive(Serialize)]
pub struct CsrSigned(SignedCluster);

impl fmt::Display for CsrSigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        writeln!(f, "signed the CSR of {}: {}", s.cluster_id, s.subject)?;
        writeln!(
            f,
            "cluster certificate: {} (valid until {})",
            s.signed_cert.display(),
            s.not_after
        )?;
        writeln!(f, "trust anchor:        {}", s.trust_anchor.display())?;
        writeln!(f, "initialize the cluster with:")?;
        write!(f, "  {}", s.initialize_command)
    }
}

impl Output for CsrSigned {}

/// Runs `cluster csr sign`.
pub fn csr_sign(globals: &GlobalArgs, command: CsrCommand) -> Result<Rendered, CliError> {
    let CsrCommand::Sign(args) = command;
    let (csr_bytes, cluster_id) = match (&args.describe_clusters, &args.csr) {
        (Some(json), _) => {
            let bytes = read(json, "describe-clusters output")?;
            let cluster = cluster_init::parse_describe_clusters(&bytes, args.cluster_id.as_deref())
                .map_err(lib)?;
            let csr = cluster.certificates.cluster_csr.ok_or_else(|| {
                CliError::new(
                    "invalid_input",
                    format!(
                        "the cluster {} has no ClusterCsr (state {}); a cluster has one until it is initialized",
                        cluster.cluster_id,
                        cluster.state.as_deref().unwrap_or("unknown")
                    ),
                )
            })?;
            (csr.into_bytes(), cluster.cluster_id)
        }
        (None, Some(path)) => {
            let id = args
                .cluster_id
                .clone()
                .ok_or_else(|| CliError::new("usage", "--csr needs --cluster-id"))?;
            (read(path, "CSR")?, id)
        }
        (None, None) => {
            return Err(CliError::new(
                "usage",
                "give --csr FILE or --describe-clusters JSON",
            ))
        }
    };
    let csr = cluster_init::ClusterCsr::parse(&csr_bytes).map_err(lib)?;
    let ca = cluster_init::CaDir::open(&args.ca).map_err(lib)?;
    // The CA key on a token keeps its session: the session (and with it the store's lock)
    // lives until the signing is done.
    let session;
    let key = match &ca.key {
        CaKeyLocation::File { .. } => ca.software_key(&passphrase(args.passphrase)?),
        CaKeyLocation::Token(reference) => {
            session = Context::new(globals)?.open_token(&reference.token)?;
            ca.token_key(&session)
        }
    }
    .map_err(lib)?;
    let signed =
        cluster_init::sign_cluster_csr(&ca, &key, &csr, &cluster_id, &args.out).map_err(lib)?;
    Rendered::new(&CsrSigned(signed), globals.json)
}

/// `cluster trust-anchor install`: where it went.
#[derive(Serialize)]
pub struct AnchorInstalled(InstalledAnchor);

impl fmt::Display for AnchorInstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.0;
        let what = if a.unchanged {
            "already installed"
        } else if a.replaced {
            "installed (replaced the previous one)"
        } else {
            "installed"
        };
        writeln!(f, "trust anchor {what}: {}", a.path.display())?;
        writeln!(f, "subject: {}", a.subject)?;
        write!(f, "sha256:  {}", a.sha256_fingerprint)?;
        if let Some(cert) = &a.verified_cluster_certificate {
            write!(f, "\nit verifies {}", cert.display())?;
        }
        Ok(())
    }
}

impl Output for AnchorInstalled {}

/// Runs `cluster trust-anchor install`.
pub fn trust_anchor(
    globals: &GlobalArgs,
    command: TrustAnchorCommand,
) -> Result<Rendered, CliError> {
    let TrustAnchorCommand::Install(args) = command;
    let installed =
        cluster_init::install_trust_anchor(&args.ca, &args.to, args.cluster_cert.as_deref())
            .map_err(lib)?;
    Rendered::new(&AnchorInstalled(installed), globals.json)
}

fn read(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        CliError::new(
            "io",
            format!("cannot read the {what} {}: {e}", path.display()),
        )
    })?;
    if meta.len() > cluster_init::MAX_INPUT_BYTES {
        return Err(CliError::new(
            "invalid_input",
            format!(
                "the {what} {} is {} bytes, larger than any {what}",
                path.display(),
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| {
        CliError::new(
            "io",
            format!("cannot read the {what} {}: {e}", path.display()),
        )
    })
}

/// `cluster verify-identity`.
#[derive(Args)]
pub struct VerifyIdentityArgs {
    /// AWS CloudHSM's root certificate (AWS_CloudHSM_Root-G1.crt, from AWS's user guide).
    #[arg(long)]
    pub aws_root: PathBuf,
    /// The HSM manufacturer's root certificate (from the manufacturer's site, linked by AWS).
    #[arg(long)]
    pub manufacturer_root: PathBuf,
    /// The JSON of `aws cloudhsmv2 describe-clusters` (instead of the four files below).
    #[arg(long, value_name = "JSON")]
    pub describe_clusters: Option<PathBuf>,
    /// The cluster, when --describe-clusters lists several.
    #[arg(long, requires = "describe_clusters")]
    pub cluster_id: Option<String>,
    /// The cluster's CSR (ClusterCsr).
    #[arg(
        long,
        required_unless_present = "describe_clusters",
        conflicts_with = "describe_clusters"
    )]
    pub csr: Option<PathBuf>,
    /// The HSM certificate (HsmCertificate).
    #[arg(
        long,
        required_unless_present = "describe_clusters",
        conflicts_with = "describe_clusters"
    )]
    pub hsm_cert: Option<PathBuf>,
    /// The AWS hardware certificate (AwsHardwareCertificate).
    #[arg(
        long,
        required_unless_present = "describe_clusters",
        conflicts_with = "describe_clusters"
    )]
    pub aws_hardware_cert: Option<PathBuf>,
    /// The manufacturer hardware certificate (ManufacturerHardwareCertificate).
    #[arg(
        long,
        required_unless_present = "describe_clusters",
        conflicts_with = "describe_clusters"
    )]
    pub manufacturer_hardware_cert: Option<PathBuf>,
}

/// `cluster verify-identity`: every link and whether it holds; exit code 0 only when all do.
#[derive(Serialize)]
pub struct IdentityVerified(IdentityReport);

impl fmt::Display for IdentityVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.0;
        for link in &r.links {
            match &link.error {
                None => writeln!(f, "ok      {}", link.link)?,
                Some(e) => writeln!(f, "BROKEN  {}: {e}", link.link)?,
            }
        }
        writeln!(
            f,
            "HSM: {} (public key sha256 {})",
            r.hsm_subject, r.hsm_public_key_sha256
        )?;
        if r.verified {
            write!(
                f,
                "verified: AWS and the manufacturer attest this HSM, and the CSR is its own"
            )
        } else {
            write!(f, "NOT verified: do not sign this CSR")
        }
    }
}

impl Output for IdentityVerified {
    fn success(&self) -> bool {
        self.0.verified
    }

    fn failure_note(&self) -> Option<String> {
        let broken: Vec<&str> = self.0.broken().map(|l| l.link.as_str()).collect();
        Some(format!(
            "error: the HSM's identity does not verify; broken: {}",
            broken.join("; ")
        ))
    }
}

/// Runs `cluster verify-identity`.
pub fn verify_identity(
    globals: &GlobalArgs,
    args: VerifyIdentityArgs,
) -> Result<Rendered, CliError> {
    let aws_root = read(&args.aws_root, "AWS root certificate")?;
    let manufacturer_root = read(&args.manufacturer_root, "manufacturer root certificate")?;
    let inputs = match &args.describe_clusters {
        Some(json) => {
            let cluster = cluster_init::parse_describe_clusters(
                &read(json, "describe-clusters output")?,
                args.cluster_id.as_deref(),
            )
            .map_err(lib)?;
            let c = &cluster.certificates;
            let field = |value: &Option<String>, name: &str| {
                value.clone().map(String::into_bytes).ok_or_else(|| {
                    CliError::new(
                        "invalid_input",
                        format!(
                            "the cluster {} has no {name} (state {}); the certificates are there only until the cluster is initialized",
                            cluster.cluster_id,
                            cluster.state.as_deref().unwrap_or("unknown")
                        ),
                    )
                })
            };
            IdentityInputs::parse(
                &aws_root,
                &manufacturer_root,
                &field(&c.aws_hardware_certificate, "AwsHardwareCertificate")?,
                &field(&c.manufacturer_hardware_certificate, "ManufacturerHardwareCertificate")?,
                &field(&c.hsm_certificate, "HsmCertificate")?,
                &field(&c.cluster_csr, "ClusterCsr")?,
            )
        }
        None => {
            let file = |path: &Option<PathBuf>, what: &'static str| match path {
                Some(p) => read(p, what),
                None => Err(CliError::new("usage", format!("give the {what} file, or --describe-clusters"))),
            };
            IdentityInputs::parse(
                &aws_root,
                &manufacturer_root,
                &file(&args.aws_hardware_cert, "AWS hardware certificate")?,
                &file(&args.manufacturer_hardware_cert, "manufacturer hardware certificate")?,
                &file(&args.hsm_cert, "HSM certificate")?,
                &file(&args.csr, "CSR")?,
            )
        }
    }
    .map_err(lib)?;
    let report = cluster_init::identity::verify_identity(&inputs, std::time::SystemTime::now());
    Rendered::new(&IdentityVerified(report), globals.json)
}
