//! The output of `aws cloudhsmv2 describe-clusters` (JSON): a cluster's id, state, CSR and the
//! HSM's certificates, as the `DescribeClusters` API returns them
//! (<https://docs.aws.amazon.com/cloudhsm/latest/APIReference/API_DescribeClusters.html>,
//! `Certificates`: `ClusterCsr`, `HsmCertificate`, `AwsHardwareCertificate`,
//! `ManufacturerHardwareCertificate`, `ClusterCertificate`).

use serde::Deserialize;

use crate::Error;

/// One cluster's certificates, PEM text as the API gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Certificates {
    /// The cluster's certificate signing request (present until it is initialized).
    pub cluster_csr: Option<String>,
    /// The HSM's certificate, issued by the hardware manufacturer and by AWS.
    pub hsm_certificate: Option<String>,
    /// The HSM hardware's certificate issued by AWS.
    pub aws_hardware_certificate: Option<String>,
    /// The HSM hardware's certificate issued by the manufacturer.
    pub manufacturer_hardware_certificate: Option<String>,
    /// The cluster certificate signed by the customer CA (after initialization).
    pub cluster_certificate: Option<String>,
}

/// A cluster of the `describe-clusters` output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cluster {
    /// `cluster-…`.
    pub cluster_id: String,
    /// `UNINITIALIZED`, `INITIALIZED`, `ACTIVE`…
    #[serde(default)]
    pub state: Option<String>,
    /// Its certificates.
    #[serde(default)]
    pub certificates: Certificates,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    clusters: Vec<Cluster>,
}

/// The cluster `cluster_id` of a `describe-clusters` output, or its only cluster when `None`.
pub fn parse_describe_clusters(json: &[u8], cluster_id: Option<&str>) -> Result<Cluster, Error> {
    let output: Output = serde_json::from_slice(json).map_err(|e| {
        Error::invalid(
            "describe-clusters output",
            format!(
                "{e}; give the JSON that `aws cloudhsmv2 describe-clusters --output json` prints"
            ),
        )
    })?;
    let ids: Vec<&str> = output
        .clusters
        .iter()
        .map(|c| c.cluster_id.as_str())
        .collect();
    let found = match cluster_id {
        Some(id) => output.clusters.iter().find(|c| c.cluster_id == id),
        None if output.clusters.len() == 1 => output.clusters.first(),
        None => {
            return Err(Error::invalid(
                "describe-clusters output",
                format!(
                    "it lists {} clusters ({}); say which with --cluster-id",
                    ids.len(),
                    ids.join(", ")
                ),
            ))
        }
    };
    found.cloned().ok_or_else(|| {
        Error::invalid(
            "describe-clusters output",
            format!(
                "it does not list the cluster {} (it lists: {})",
                cluster_id.unwrap_or("?"),
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            ),
        )
    })
}
