//! Which layer of an artifact's manifest holds its files.
//!
//! Two producers matter: `hdarctl push` and `helm push` store a chart-style
//! gzipped tar with Helm's media types (config
//! `application/vnd.cncf.helm.config.v1+json`, one layer
//! `application/vnd.cncf.helm.chart.content.v1.tar+gzip`, perhaps a
//! provenance layer beside it), and generic ORAS clients store one
//! `application/vnd.oci.image.layer.v1.tar+gzip` layer. Exactly one layer
//! of those two types must exist; other layers (provenance, signatures)
//! are ignored.

use serde::Deserialize;

/// Helm's (and `hdarctl`'s) chart content layer.
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The OCI image layer type generic ORAS artifacts use for a tar.gz.
pub const OCI_TAR_GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Layer types whose blob is a gzipped tar of the artifact's files.
pub const CONTENT_LAYERS: [&str; 2] = [HELM_CHART_LAYER, OCI_TAR_GZIP_LAYER];

/// Manifest types accepted when pulling (an image index names several
/// artifacts and is refused).
pub const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The distribution spec's own limit on a manifest a registry accepts.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The content layer as the manifest declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLayer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// Why a manifest cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("it is not a JSON image manifest: {0}")]
    Parse(String),
    #[error("schemaVersion is {0}, expected 2")]
    SchemaVersion(u64),
    #[error(
        "its media type `{0}` is not a single artifact's manifest (an index must be resolved to one artifact before it is referenced)"
    )]
    MediaType(String),
    #[error(
        "it has no layer of type {HELM_CHART_LAYER} or {OCI_TAR_GZIP_LAYER}; push the artifact with hdarctl, helm or an ORAS client"
    )]
    NoContentLayer,
    #[error("it has {0} content layers; an HDAG artifact has exactly one")]
    SeveralContentLayers(usize),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u64,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

/// The one content layer of `manifest` (raw bytes as served).
pub fn content_layer(manifest: &[u8]) -> Result<ContentLayer, ManifestError> {
    let m: Manifest =
        serde_json::from_slice(manifest).map_err(|e| ManifestError::Parse(e.to_string()))?;
    if m.schema_version != 2 {
        return Err(ManifestError::SchemaVersion(m.schema_version));
    }
    if let Some(t) = &m.media_type
        && !MANIFEST_TYPES.contains(&t.as_str())
    {
        return Err(ManifestError::MediaType(t.clone()));
    }
    let mut content = m
        .layers
        .into_iter()
        .filter(|l| CONTENT_LAYERS.contains(&l.media_type.as_str()));
    match (content.next(), content.count()) {
        (None, _) => Err(ManifestError::NoContentLayer),
        (Some(l), 0) => Ok(ContentLayer {
            media_type: l.media_type,
            digest: l.digest,
            size: l.size,
        }),
        (Some(_), more) => Err(ManifestError::SeveralContentLayers(more + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(layers: &[&str]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|t| json!({"mediaType": t, "digest": format!("sha256:{}", "0".repeat(64)), "size": 3}))
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": "sha256:x", "size": 1},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn helm_and_oras_layers_are_found_and_provenance_ignored() {
        let l = content_layer(&manifest(&[
            HELM_CHART_LAYER,
            "application/vnd.cncf.helm.chart.provenance.v1.prov",
        ]))
        .unwrap();
        assert_eq!((l.media_type.as_str(), l.size), (HELM_CHART_LAYER, 3));
        assert!(content_layer(&manifest(&[OCI_TAR_GZIP_LAYER])).is_ok());
    }

    #[test]
    fn unusable_manifests_say_why() {
        assert_eq!(
            content_layer(&manifest(&["application/vnd.oci.image.layer.v1.tar"])),
            Err(ManifestError::NoContentLayer)
        );
        assert_eq!(
            content_layer(&manifest(&[OCI_TAR_GZIP_LAYER, HELM_CHART_LAYER])),
            Err(ManifestError::SeveralContentLayers(2))
        );
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": []
        }))
        .unwrap();
        assert!(matches!(
            content_layer(&index),
            Err(ManifestError::MediaType(_))
        ));
        assert!(matches!(content_layer(b"{"), Err(ManifestError::Parse(_))));
    }
}
