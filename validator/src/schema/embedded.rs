//! The Kubernetes schemas compiled into the binary: one gzip-compressed definitions document per
//! minor version (see `validator/schemas/generate.py` and NOTICE), and the index from
//! apiVersion and kind to the definition that describes them.

use std::collections::HashMap;
use std::io::Read;

use serde_json::Value;

use super::SchemaError;

/// The `$id` of every embedded definitions document; kinds `$ref` into it.
pub(super) const DEFINITIONS_URI: &str = "https://kubernetes.io/api/_definitions.json";

/// The definition every object's `metadata` is checked against.
pub(super) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// One embedded Kubernetes minor version.
struct Embedded {
    minor: u32,
    name: &'static str,
    gzip: &'static [u8],
}

macro_rules! embedded {
    ($($minor:literal),* $(,)?) => {
        &[$(Embedded {
            minor: $minor,
            name: concat!("1.", $minor),
            gzip: include_bytes!(concat!("../../schemas/v1.", $minor, ".json.gz")),
        }),*]
    };
}

/// Oldest first; the last is the default.
static EMBEDDED: &[Embedded] = embedded![25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37];

/// The Kubernetes versions (`X.Y`) whose schemas are embedded, oldest first.
pub fn supported_versions() -> Vec<&'static str> {
    EMBEDDED.iter().map(|e| e.name).collect()
}

/// A Kubernetes version the registry validates against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KubeVersion {
    /// The minor version (`30` for 1.30).
    pub minor: u32,
    /// `1.30`.
    pub name: &'static str,
    /// `v1.30.0`, or the patch release asked for (`v1.30.2`): kubeconform's
    /// `{{.NormalizedKubernetesVersion}}`.
    pub normalized: String,
}

/// Picks the embedded version for `requested` (`1.30`, `v1.30`, `1.30.2`), the newest when `None`.
pub(super) fn select(requested: Option<&str>) -> Result<KubeVersion, SchemaError> {
    let newest = EMBEDDED.last().ok_or_else(|| unsupported("(none)"))?;
    let Some(requested) = requested else {
        return Ok(KubeVersion {
            minor: newest.minor,
            name: newest.name,
            normalized: format!("v{}.0", newest.name),
        });
    };
    let text = requested.trim();
    let digits = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let mut parts = digits.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    let patch = match parts.next() {
        None => Some(0),
        Some(p) => p.parse::<u32>().ok(),
    };
    let (Some(1), Some(minor), Some(patch), None) = (major, minor, patch, parts.next()) else {
        return Err(unsupported(requested));
    };
    let embedded = EMBEDDED
        .iter()
        .find(|e| e.minor == minor)
        .ok_or_else(|| unsupported(requested))?;
    Ok(KubeVersion {
        minor,
        name: embedded.name,
        normalized: format!("v1.{minor}.{patch}"),
    })
}

fn unsupported(requested: &str) -> SchemaError {
    SchemaError::UnsupportedVersion {
        requested: requested.to_owned(),
        supported: supported_versions().join(", "),
    }
}

/// Decompresses and parses the definitions document of one version.
pub(super) fn definitions(version: &KubeVersion) -> Result<Value, SchemaError> {
    let embedded = EMBEDDED
        .iter()
        .find(|e| e.minor == version.minor)
        .ok_or_else(|| unsupported(version.name))?;
    let corrupt = |reason: String| SchemaError::Embedded {
        version: version.name,
        reason,
    };
    let mut json = Vec::with_capacity(embedded.gzip.len() * 16);
    flate2::read::GzDecoder::new(embedded.gzip)
        .read_to_end(&mut json)
        .map_err(|e| corrupt(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

/// apiVersion → kind → definition name, from `x-kubernetes-group-version-kind`.
#[derive(Debug, Default)]
pub(super) struct KindIndex {
    by_api_version: HashMap<String, HashMap<String, String>>,
}

impl KindIndex {
    /// Indexes every definition that names the kinds it describes.
    pub fn new(definitions: &Value) -> KindIndex {
        let mut index = KindIndex::default();
        let Some(defs) = definitions.get("$defs").and_then(Value::as_object) else {
            return index;
        };
        for (name, schema) in defs {
            let Some(gvks) = schema
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            else {
                continue;
            };
            for gvk in gvks {
                let field = |f: &str| gvk.get(f).and_then(Value::as_str).unwrap_or("");
                let (group, version, kind) = (field("group"), field("version"), field("kind"));
                if version.is_empty() || kind.is_empty() {
                    continue;
                }
                let api_version = if group.is_empty() {
                    version.to_owned()
                } else {
                    format!("{group}/{version}")
                };
                index
                    .by_api_version
                    .entry(api_version)
                    .or_default()
                    .entry(kind.to_owned())
                    .or_insert_with(|| name.clone());
            }
        }
        index
    }

    /// The definition for an apiVersion and kind.
    pub fn get(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.by_api_version
            .get(api_version)?
            .get(kind)
            .map(String::as_str)
    }

    /// The kinds served under an apiVersion.
    pub fn kinds(&self, api_version: &str) -> impl Iterator<Item = &str> {
        self.by_api_version
            .get(api_version)
            .into_iter()
            .flat_map(|kinds| kinds.keys().map(String::as_str))
    }

    /// The apiVersions that serve a kind, sorted.
    pub fn api_versions_of(&self, kind: &str) -> Vec<&str> {
        let mut found: Vec<&str> = self
            .by_api_version
            .iter()
            .filter(|(_, kinds)| kinds.contains_key(kind))
            .map(|(api_version, _)| api_version.as_str())
            .collect();
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_in_every_spelling() {
        for spelling in ["1.30", "v1.30", "1.30.2", "V1.30.0"] {
            let v = select(Some(spelling)).unwrap();
            assert_eq!((v.minor, v.name), (30, "1.30"), "{spelling}");
        }
        assert_eq!(select(Some("1.30.2")).unwrap().normalized, "v1.30.2");
        let newest = select(None).unwrap();
        assert_eq!(newest.name, *supported_versions().last().unwrap());
    }

    #[test]
    fn unsupported_versions_list_the_supported_ones() {
        for bad in ["1.12", "2.30", "1.30.x", "latest", "1.30.1.1", ""] {
            let err = select(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("1.25") && err.contains("1.37"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_embedded_version_decompresses_and_indexes_kinds() {
        for name in supported_versions() {
            let version = select(Some(name)).unwrap();
            let defs = definitions(&version).unwrap();
            let index = KindIndex::new(&defs);
            assert_eq!(
                index.get("apps/v1", "Deployment"),
                Some("io.k8s.api.apps.v1.Deployment"),
                "{name}"
            );
            assert!(index.get("v1", "Pod").is_some(), "{name}");
        }
    }
}
