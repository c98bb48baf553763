//! `--schema-location`: extra JSON schemas on disk, found the way kubeconform finds them, so
//! schema trees vendored for kubeconform work unchanged.
//!
//! A location is either a directory, searched for `{kind}-{group prefix}-{version}.json`
//! (kubeconform's file naming, e.g. `deployment-apps-v1.json`) and `{group}/{kind}_{version}.json`
//! (the CRD catalog layout), or a path template with kubeconform's variables
//! (`{{.ResourceKind}}`, `{{.ResourceAPIVersion}}`, `{{.Group}}`, `{{.KindSuffix}}`,
//! `{{.NormalizedKubernetesVersion}}`, `{{.StrictSuffix}}`). Remote locations are refused: tally
//! runs offline, so schemas are vendored into the repository instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use jsonschema::{Retrieve, Uri};
use serde_json::Value;

use super::SchemaError;

/// Where to look for schemas, in the order given.
#[derive(Debug, Clone)]
pub(super) enum Location {
    /// A directory searched with the default file names.
    Directory(PathBuf),
    /// A path template, parsed.
    Template(Vec<Part>),
}

/// A piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Literal(String),
    Var(Var),
}

/// kubeconform's template variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Var {
    ResourceKind,
    ResourceApiVersion,
    Group,
    KindSuffix,
    NormalizedKubernetesVersion,
    StrictSuffix,
}

/// What a template is filled with for one kind.
#[derive(Debug)]
pub(super) struct Fill<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    /// `v1.30.0`.
    pub normalized_version: &'a str,
}

impl Fill<'_> {
    fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version, |(_, v)| v)
    }

    /// `-apps-v1` for `apps/v1`, `-networking-v1` for `networking.k8s.io/v1`, `-v1` for `v1`.
    fn kind_suffix(&self) -> String {
        let mut suffix = String::from("-");
        match self.api_version.split_once('/') {
            Some((group, version)) => {
                let prefix = group.split('.').next().unwrap_or(group);
                suffix.push_str(&prefix.to_lowercase());
                suffix.push('-');
                suffix.push_str(&version.to_lowercase());
            }
            None => suffix.push_str(&self.api_version.to_lowercase()),
        }
        suffix
    }

    fn var(&self, var: Var) -> String {
        match var {
            Var::ResourceKind => self.kind.to_lowercase(),
            Var::ResourceApiVersion => self.version().to_owned(),
            Var::Group => self.group().to_owned(),
            Var::KindSuffix => self.kind_suffix(),
            Var::NormalizedKubernetesVersion => self.normalized_version.to_owned(),
            // tally is always strict.
            Var::StrictSuffix => "-strict".to_owned(),
        }
    }
}

impl Location {
    /// Parses one `--schema-location`.
    pub fn parse(text: &str) -> Result<Location, SchemaError> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Err(SchemaError::RemoteLocation(text.to_owned()));
        }
        if text.contains("{{") {
            let parts = parse_template(text).map_err(|reason| SchemaError::BadLocation {
                location: text.to_owned(),
                reason,
            })?;
            return Ok(Location::Template(parts));
        }
        let dir = PathBuf::from(text);
        if !dir.is_dir() {
            return Err(SchemaError::BadLocation {
                location: text.to_owned(),
                reason: "not a directory (give a directory, or a path template with \
                         {{.ResourceKind}} and the like)"
                    .into(),
            });
        }
        Ok(Location::Directory(dir))
    }

    /// The files this location would hold the schema of one kind in, most specific first.
    pub fn candidates(&self, fill: &Fill<'_>) -> Vec<PathBuf> {
        match self {
            Location::Directory(dir) => {
                let kind = fill.kind.to_lowercase();
                let mut paths = vec![dir.join(format!("{kind}{}.json", fill.kind_suffix()))];
                let group = fill.group();
                if !group.is_empty() {
                    paths.push(
                        dir.join(group)
                            .join(format!("{kind}_{}.json", fill.version())),
                    );
                }
                paths
            }
            Location::Template(parts) => {
                let path: String = parts
                    .iter()
                    .map(|p| match p {
                        Part::Literal(s) => s.clone(),
                        Part::Var(v) => fill.var(*v),
                    })
                    .collect();
                vec![PathBuf::from(path)]
            }
        }
    }
}

fn parse_template(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "`{{` without a closing `}}`".to_owned())?;
        let inner = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        let var = match inner {
            ".ResourceKind" => Var::ResourceKind,
            ".ResourceAPIVersion" => Var::ResourceApiVersion,
            ".Group" => Var::Group,
            ".KindSuffix" => Var::KindSuffix,
            ".NormalizedKubernetesVersion" => Var::NormalizedKubernetesVersion,
            ".StrictSuffix" => Var::StrictSuffix,
            other => {
                return Err(format!(
                    "unknown template variable `{other}`; known: .ResourceKind, \
                     .ResourceAPIVersion, .Group, .KindSuffix, .NormalizedKubernetesVersion, \
                     .StrictSuffix"
                ));
            }
        };
        parts.push(Part::Var(var));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_owned()));
    }
    Ok(parts)
}

/// Schema documents read from disk, by URI, for `$ref`s and for naming the fields a schema
/// allows. Shared with the retriever so that documents it loads can be looked at later.
pub(super) type Documents = Arc<RwLock<HashMap<String, Arc<Value>>>>;

/// Resolves `$ref`s to local files (`file://` URIs) and refuses everything else: the gate never
/// touches the network.
#[derive(Debug, Clone)]
pub(super) struct LocalFiles {
    pub documents: Documents,
}

impl Retrieve for LocalFiles {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = uri.as_str();
        let base = text.split('#').next().unwrap_or(text);
        let Some(path) = path_of_file_uri(base) else {
            return Err(format!(
                "`{base}` is not a local file; tally does not fetch remote schemas (vendor them \
                 and use --schema-location)"
            )
            .into());
        };
        let value = read_json(&path)?;
        let shared = Arc::new(value.clone());
        self.documents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(base.to_owned(), shared);
        Ok(value)
    }
}

/// Reads and parses a JSON file, with the path in the error.
pub(super) fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}

/// A `file://` URI for an absolute path (percent-encoding what URIs do not allow).
pub(super) fn file_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = absolute.to_string_lossy().replace('\\', "/");
    let mut uri = String::from("file://");
    if !text.starts_with('/') {
        uri.push('/');
    }
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~:@!$&'()*+,;=".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// The path a `file://` URI names.
fn path_of_file_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri
        .strip_prefix("file://")
        .or_else(|| uri.strip_prefix("file:"))?;
    let mut path = percent_decode(rest)?;
    // `file:///C:/x` on Windows.
    if path.len() > 2 && path.as_bytes()[2] == b':' {
        path.remove(0);
    }
    Some(PathBuf::from(path))
}

/// Undoes URI percent-encoding; `None` when the result is not UTF-8.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)),
            _ => None,
        };
        match escaped {
            Some((h, l)) => {
                decoded.push(u8::try_from(h * 16 + l).ok()?);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill<'a>(api_version: &'a str, kind: &'a str) -> Fill<'a> {
        Fill {
            api_version,
            kind,
            normalized_version: "v1.30.0",
        }
    }

    #[test]
    fn templates_fill_kubeconform_variables() {
        let l = Location::parse(
            "s/{{ .NormalizedKubernetesVersion }}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json",
        )
        .unwrap();
        assert_eq!(
            l.candidates(&fill("networking.k8s.io/v1", "Ingress")),
            [PathBuf::from(
                "s/v1.30.0-standalone-strict/ingress-networking-v1.json"
            )]
        );
        let l =
            Location::parse("c/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json").unwrap();
        assert_eq!(
            l.candidates(&fill("example.com/v1alpha1", "Widget")),
            [PathBuf::from("c/example.com/widget_v1alpha1.json")]
        );
    }

    #[test]
    fn bad_locations_are_errors() {
        assert!(matches!(
            Location::parse("https://example.com/{{.ResourceKind}}.json"),
            Err(SchemaError::RemoteLocation(_))
        ));
        assert!(matches!(
            Location::parse("x/{{.Kind}}.json"),
            Err(SchemaError::BadLocation { .. })
        ));
        assert!(matches!(
            Location::parse("/no/such/dir"),
            Err(SchemaError::BadLocation { .. })
        ));
    }

    #[test]
    fn file_uris_round_trip() {
        let path = Path::new("/tmp/a dir/é.json");
        let uri = file_uri(path);
        assert_eq!(uri, "file:///tmp/a%20dir/%C3%A9.json");
        assert_eq!(path_of_file_uri(&uri), Some(path.to_path_buf()));
    }
}
