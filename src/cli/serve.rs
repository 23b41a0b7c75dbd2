//! `serve`: the remote signer's arguments.

use clap::Args;

/// `serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:6732 (port 0: any free port; the line printed on
    /// stderr says which). Default: `listen` of --config.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Key to serve, by label; repeat for more. Default: every key on the token (or the
    /// keys table of --config).
    #[arg(long = "key", value_name = "LABEL")]
    pub keys: Vec<String>,
    /// What the served keys may sign: a comma-separated list of block, preattestation,
    /// attestation, generic, michelson. Default: generic.
    #[arg(long, value_name = "KINDS")]
    pub allow: Option<String>,
    /// The TOML configuration file: listen address, module, token, PIN source, watermark
    /// store, TLS, API key, authorized keys and per-key rules (README, "Configuration file").
    /// The command line and the environment win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Check FILE (a --config file), print what would be served, and exit: 0 when valid, 1
    /// with the line and field of the first problem otherwise.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<std::path::PathBuf>,
    /// HTTPS: the certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// HTTPS: the private key (PEM; chmod 600).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Require an API key header on every signer request; the key is the first line of FILE
    /// (chmod 600). octez-client sends it with TEZOS_SIGNER_HTTP_HEADERS="x-api-key: KEY".
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// The API key's header (an x-... header; default x-api-key).
    #[arg(long, value_name = "NAME", requires = "api_key_file")]
    pub api_key_header: Option<String>,
    /// A client key (edpk..., sppk..., p2pk...) whose authentication signatures are accepted;
    /// repeat for more. Adds to authorized_keys of --config.
    #[arg(long = "authorized-key", value_name = "PUBLIC_KEY")]
    pub authorized_keys: Vec<String>,
    /// Require every signing request for the --key keys to be authenticated by an authorized
    /// key (octez-client does it when GET /authorized_keys lists its key).
    #[arg(long)]
    pub require_authentication: bool,
    /// Skip the software verification of each signature the HSM returns (verify-after-sign,
    /// on by default; BENCHMARKS.md §5): for load tests, or when the signer's CPU is the
    /// bottleneck. octez-client and Taquito verify every signature themselves.
    #[arg(long)]
    pub no_verify: bool,
    /// Log each signing request's payload (hex) in its log line.
    #[arg(long)]
    pub log_payloads: bool,
    /// Write the log lines as JSON.
    #[arg(long)]
    pub log_json: bool,
}
