//! Kubernetes schemas: the embedded OpenAPI-derived JSON schemas per minor version, extra schema
//! locations, CRD-derived schemas, and validation of objects against them with errors mapped to
//! the offending field's line.
//!
//! Where a kind's schema comes from, first match wins: the CRDs in the input (and `--crd`), then
//! each `--schema-location` in order, then the schemas embedded for the chosen Kubernetes version.
//! Validators are compiled lazily, once per kind, and shared by every thread; an object is first
//! checked with the cheap `is_valid` and only an invalid one pays for detailed errors.

mod crd;

pub(crate) use crd::is_crd;
mod deprecations;
mod embedded;
mod locations;
mod messages;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use jsonschema::{Draft, PatternOptions, ValidationError, Validator};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::finding::{Finding, Pos, Severity};
use crate::object::Object;
use crate::position::unescape_segment;
use deprecations::Status;
use embedded::{DEFINITIONS_URI, KindIndex, KubeVersion};
use locations::{Documents, Fill, LocalFiles, Location};
use messages::At;

pub use embedded::supported_versions;

/// Rule ids raised by schema validation.
pub mod rules {
    /// A field the schema does not know (strict validation, as the API server's).
    pub const UNKNOWN_FIELD: &str = "schema-unknown-field";
    /// Any other schema violation (type, enum, required, format).
    pub const INVALID: &str = "schema-invalid";
    /// No schema for the object's kind.
    pub const MISSING: &str = "schema-missing";
    /// The apiVersion was removed in the chosen Kubernetes version.
    pub const REMOVED_API: &str = "api-removed";
    /// The apiVersion is deprecated in the chosen Kubernetes version.
    pub const DEPRECATED_API: &str = "api-deprecated";
    /// A CustomResourceDefinition whose schema cannot be used.
    pub const BAD_CRD: &str = "crd-schema-invalid";
}

/// What to do with an object whose kind has no schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingSchema {
    /// Report an error.
    Error,
    /// Report a warning (the default).
    #[default]
    Warn,
    /// Say nothing.
    Ignore,
}

/// How to build a [`SchemaRegistry`].
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    /// `X.Y` (also `vX.Y`, `X.Y.Z`); the newest embedded version when `None`.
    pub kubernetes_version: Option<String>,
    /// Extra schema directories or kubeconform-style path templates, searched in order.
    pub locations: Vec<String>,
    /// Policy for kinds without a schema.
    pub missing_schema: MissingSchema,
}

/// Errors building a registry (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The requested Kubernetes version is not embedded.
    #[error("Kubernetes version `{requested}` is not supported; supported versions: {supported}")]
    UnsupportedVersion {
        /// The version asked for.
        requested: String,
        /// The embedded versions, comma-separated.
        supported: String,
    },
    /// A `--schema-location` on the network.
    #[error(
        "schema location `{0}` is remote; tally works offline and never downloads schemas: vendor \
         them into a directory and give that directory (or a path template) to --schema-location"
    )]
    RemoteLocation(String),
    /// A `--schema-location` that cannot be used.
    #[error("schema location `{location}`: {reason}")]
    BadLocation {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The embedded data did not decompress or parse (a build problem, not a user's).
    #[error("the embedded schemas for Kubernetes {version} are corrupt: {reason}")]
    Embedded {
        /// The version whose data is broken.
        version: &'static str,
        /// The decoder's error.
        reason: String,
    },
}

/// Most findings one object gets from its schema; past this, the rest are noise.
const MAX_FINDINGS_PER_OBJECT: usize = 50;

/// Where a kind's schema was found and what became of it.
enum Resolved {
    /// A compiled validator.
    Schema(Validator),
    /// No location knows the kind.
    Missing,
    /// A schema was found but cannot be used.
    Unusable {
        /// The file or CRD it came from.
        source: String,
        /// Why it cannot be used.
        reason: String,
        /// Whether a finding elsewhere (at the CRD) already says why.
        reported: bool,
    },
}

/// Per apiVersion, per kind.
type ByKind<T> = HashMap<String, HashMap<String, T>>;

/// Schemas for one Kubernetes version plus custom resources; validates objects.
pub struct SchemaRegistry {
    version: KubeVersion,
    missing: MissingSchema,
    kinds: KindIndex,
    /// The embedded definitions, registered once; every kind `$ref`s into them.
    registry: jsonschema::Registry<'static>,
    locations: Vec<Location>,
    /// Schema documents by URI, to name the fields a schema allows in messages.
    documents: Documents,
    /// Compiled CRD schemas, eagerly (their errors are findings about the CRD).
    crds: ByKind<Arc<Resolved>>,
    /// Lazily resolved and compiled schemas of every other kind, one cell per kind so a kind is
    /// compiled once even when several threads want it at the same moment.
    cache: RwLock<ByKind<Arc<OnceLock<Arc<Resolved>>>>>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("version", &self.version.name)
            .field("missing", &self.missing)
            .field("locations", &self.locations)
            .field("crds", &self.crds.values().map(HashMap::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl SchemaRegistry {
    /// Builds the registry for the options' Kubernetes version.
    pub fn new(options: SchemaOptions) -> Result<SchemaRegistry, SchemaError> {
        let version = embedded::select(options.kubernetes_version.as_deref())?;
        let locations = options
            .locations
            .iter()
            .map(|l| Location::parse(l))
            .collect::<Result<Vec<_>, _>>()?;
        let definitions = Arc::new(embedded::definitions(&version)?);
        let kinds = KindIndex::new(&definitions);
        let corrupt = |e: jsonschema::ReferencingError| SchemaError::Embedded {
            version: version.name,
            reason: e.to_string(),
        };
        let registry = jsonschema::Registry::new()
            .add(DEFINITIONS_URI, Arc::clone(&definitions))
            .and_then(|builder| builder.prepare())
            .map_err(corrupt)?;
        let documents: Documents = Arc::default();
        documents
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(DEFINITIONS_URI.to_owned(), definitions);
        Ok(SchemaRegistry {
            version,
            missing: options.missing_schema,
            kinds,
            registry,
            locations,
            documents,
            crds: HashMap::new(),
            cache: RwLock::default(),
        })
    }

    /// The Kubernetes version in use (`X.Y`).
    pub fn kubernetes_version(&self) -> &str {
        self.version.name
    }

    /// Adds schemas for the custom resources the given CRDs define (each served version of each
    /// `apiextensions.k8s.io/v1` CustomResourceDefinition). Returns findings about CRDs whose
    /// schemas cannot be used. Later CRDs for the same kind replace earlier ones.
    pub fn add_crds<'a>(&mut self, objects: impl IntoIterator<Item = &'a Object>) -> Vec<Finding> {
        let jobs: Vec<(&Object, crd::CrdVersion)> = objects
            .into_iter()
            .filter(|o| crd::is_crd(o))
            .flat_map(|o| crd::versions(o).into_iter().map(move |v| (o, v)))
            .collect();
        if jobs.is_empty() {
            return Vec::new();
        }
        let compiled: Vec<_> = jobs
            .into_par_iter()
            .map(|(object, version)| {
                let result = self.compile(&version.schema, Draft::Draft202012, true);
                (object, version, result)
            })
            .collect();
        let mut findings = Vec::new();
        for (object, mut version, result) in compiled {
            let resolved = match result {
                Ok(validator) => {
                    if let Some(problem) = &version.problem {
                        findings.push(object.finding(
                            rules::BAD_CRD,
                            Severity::Error,
                            &version.pointer,
                            problem.clone(),
                        ));
                    }
                    // Kept to name the fields it allows when an object has an unknown one.
                    let id = version.schema.get("$id").and_then(Value::as_str);
                    if let Some(id) = id.map(str::to_owned) {
                        let schema = Arc::new(std::mem::take(&mut version.schema));
                        self.documents
                            .write()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(id, schema);
                    }
                    Resolved::Schema(validator)
                }
                Err(error) => {
                    findings.push(bad_crd_finding(object, &version, &error));
                    Resolved::Unusable {
                        source: format!(
                            "CustomResourceDefinition {} ({}:{})",
                            object.id.name,
                            object.provenance.file,
                            object.pos(&version.pointer).line
                        ),
                        reason: "its schema is invalid".into(),
                        reported: true,
                    }
                }
            };
            self.crds
                .entry(version.api_version)
                .or_default()
                .insert(version.kind, Arc::new(resolved));
        }
        findings
    }

    /// Validates one object; findings point at the offending fields.
    pub fn validate(&self, object: &Object) -> Vec<Finding> {
        let (api_version, kind) = (&object.id.api_version, &object.id.kind);
        let mut findings = Vec::new();
        match deprecations::status(api_version, kind, self.version.minor) {
            Status::Removed(change) => {
                findings.push(self.removed_finding(object, change));
                // Nothing serves it: no schema to check against, no "missing schema" on top.
                return findings;
            }
            Status::Deprecated(change) => findings.push(self.deprecated_finding(object, change)),
            Status::Current => {}
        }
        match &*self.resolve(api_version, kind) {
            Resolved::Schema(validator) => {
                if !validator.is_valid(&object.value) {
                    findings.extend(self.explain(object, validator));
                }
            }
            Resolved::Missing => findings.extend(self.missing_finding(object)),
            Resolved::Unusable {
                source,
                reason,
                reported,
            } => {
                // A broken schema file is a configuration error; a broken CRD was reported at
                // the CRD, so its objects only say they went unchecked.
                let severity = match (reported, self.missing) {
                    (false, _) | (true, MissingSchema::Error) => Severity::Error,
                    (true, MissingSchema::Warn) => Severity::Warning,
                    (true, MissingSchema::Ignore) => return findings,
                };
                findings.push(
                    object
                        .finding(
                            rules::MISSING,
                            severity,
                            "/kind",
                            format!(
                                "the schema for `{api_version}` {kind} from {source} cannot be used: {reason}"
                            ),
                        )
                        .with_help("fix or remove that schema; until then this object is not checked"),
                );
            }
        }
        findings
    }

    /// The schema for a kind: a CRD's, else the first location's, else the embedded one.
    fn resolve(&self, api_version: &str, kind: &str) -> Arc<Resolved> {
        if let Some(resolved) = self.crds.get(api_version).and_then(|k| k.get(kind)) {
            return Arc::clone(resolved);
        }
        let cell = {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            cache
                .get(api_version)
                .and_then(|k| k.get(kind))
                .map(Arc::clone)
        };
        let cell = cell.unwrap_or_else(|| {
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                cache
                    .entry(api_version.to_owned())
                    .or_default()
                    .entry(kind.to_owned())
                    .or_default(),
            )
        });
        // Compiled outside the map's lock; other kinds go on meanwhile.
        Arc::clone(cell.get_or_init(|| Arc::new(self.load(api_version, kind))))
    }

    fn load(&self, api_version: &str, kind: &str) -> Resolved {
        let fill = Fill {
            api_version,
            kind,
            normalized_version: &self.version.normalized,
        };
        for location in &self.locations {
            for path in location.candidates(&fill) {
                if path.is_file() {
                    return self.load_file(&path);
                }
            }
        }
        match self.kinds.get(api_version, kind) {
            Some(definition) => {
                let root = json!({ "$ref": format!("{DEFINITIONS_URI}#/$defs/{definition}") });
                match self.compile(&root, Draft::Draft202012, true) {
                    Ok(validator) => Resolved::Schema(validator),
                    Err(e) => Resolved::Unusable {
                        source: format!("the embedded Kubernetes {} schemas", self.version.name),
                        reason: e.to_string(),
                        reported: false,
                    },
                }
            }
            None => Resolved::Missing,
        }
    }

    /// A schema file from a location: JSON Schema of any draft (kubeconform's schemas declare
    /// none that validators know; they are draft 4 in spirit), `$ref`s to local files allowed.
    fn load_file(&self, path: &Path) -> Resolved {
        let unusable = |reason: String| Resolved::Unusable {
            source: format!("`{}`", path.display()),
            reason,
            reported: false,
        };
        let mut schema = match locations::read_json(path) {
            Ok(schema) => schema,
            Err(e) => return unusable(e),
        };
        let draft = take_draft(&mut schema);
        let uri = locations::file_uri(path);
        {
            let shared = Arc::new(schema.clone());
            let mut documents = self
                .documents
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(id) = schema.get("$id").and_then(Value::as_str) {
                documents.insert(id.to_owned(), Arc::clone(&shared));
            }
            documents.insert(uri.clone(), shared);
        }
        // Formats stay unchecked: such schemas use names (`int-or-string`, Go durations) whose
        // JSON Schema meaning differs.
        let built = self.options(draft, false).with_base_uri(uri).build(&schema);
        match built {
            Ok(validator) => Resolved::Schema(validator),
            Err(e) => unusable(e.to_string()),
        }
    }

    fn options(&self, draft: Draft, formats: bool) -> jsonschema::ValidationOptions<'_> {
        jsonschema::options()
            .with_draft(draft)
            .with_registry(&self.registry)
            .with_retriever(LocalFiles {
                documents: Arc::clone(&self.documents),
            })
            // Kubernetes patterns are Go (RE2) regular expressions, which the `regex` crate reads.
            .with_pattern_options(PatternOptions::regex())
            .should_validate_formats(formats)
            .with_format("byte", is_base64)
    }

    fn compile(
        &self,
        schema: &Value,
        draft: Draft,
        formats: bool,
    ) -> Result<Validator, ValidationError<'static>> {
        self.options(draft, formats).build(schema)
    }

    /// Detailed findings for an object known to be invalid.
    fn explain(&self, object: &Object, validator: &Validator) -> Vec<Finding> {
        explain(object, validator, |error| self.site_document(error))
    }

    /// The document holding the failing keyword and the pointer of the schema node around it.
    fn site_document(&self, error: &ValidationError<'_>) -> Option<(Arc<Value>, String)> {
        let location = error.absolute_keyword_location()?.as_str();
        let (base, fragment) = location.split_once('#')?;
        let document = self
            .documents
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(base)
            .cloned()?;
        let fragment = locations::percent_decode(fragment)?;
        let (parent, _keyword) = fragment.rsplit_once('/')?;
        Some((document, parent.to_owned()))
    }

    /// The replacement the chosen version serves, if any.
    fn replacement(&self, change: &deprecations::ApiChange, kind: &str) -> Option<&'static str> {
        change.replacements.iter().copied().find(|r| {
            self.kinds.get(r, kind).is_some()
                && !matches!(
                    deprecations::status(r, kind, self.version.minor),
                    Status::Removed(_)
                )
        })
    }

    fn removed_finding(&self, object: &Object, change: &deprecations::ApiChange) -> Finding {
        let (api_version, kind) = (&object.id.api_version, &object.id.kind);
        let head = format!(
            "`{api_version}` {kind} was removed in Kubernetes 1.{} (validating for {})",
            change.removed, self.version.name
        );
        let (message, help) = match self.replacement(change, kind) {
            Some(r) => (
                format!("{head}; use `{r}`"),
                format!(
                    "change `apiVersion` to `{r}` and check the fields that changed ({})",
                    deprecations::GUIDE
                ),
            ),
            None => (
                format!("{head} and no apiVersion replaces it"),
                change.note.unwrap_or(deprecations::GUIDE).to_owned(),
            ),
        };
        object
            .finding(rules::REMOVED_API, Severity::Error, "/apiVersion", message)
            .with_help(help)
    }

    fn deprecated_finding(&self, object: &Object, change: &deprecations::ApiChange) -> Finding {
        let (api_version, kind) = (&object.id.api_version, &object.id.kind);
        let mut message = format!(
            "`{api_version}` {kind} is deprecated since Kubernetes 1.{} and removed in 1.{}",
            change.deprecated, change.removed
        );
        if let Some(r) = self.replacement(change, kind) {
            message.push_str(&format!("; use `{r}`"));
        }
        object
            .finding(
                rules::DEPRECATED_API,
                Severity::Warning,
                "/apiVersion",
                message,
            )
            .with_help(format!(
                "migrate before upgrading to 1.{} ({})",
                change.removed,
                deprecations::GUIDE
            ))
    }

    fn missing_finding(&self, object: &Object) -> Option<Finding> {
        let severity = match self.missing {
            MissingSchema::Error => Severity::Error,
            MissingSchema::Warn => Severity::Warning,
            MissingSchema::Ignore => return None,
        };
        let (api_version, kind) = (&object.id.api_version, &object.id.kind);
        let k8s = self.version.name;
        let mut other_versions = self.kinds.api_versions_of(kind);
        other_versions.sort_by_key(|v| std::cmp::Reverse(stability(v)));
        let (pointer, message, help) = if !other_versions.is_empty() {
            let listed = other_versions
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            (
                "/apiVersion",
                format!(
                    "no schema for `{api_version}` {kind}: Kubernetes {k8s} serves {kind} as {listed}"
                ),
                format!("change `apiVersion` to {}", other_versions[0]),
            )
        } else if let Some(close) = suggest_kind(&self.kinds, api_version, kind) {
            (
                "/kind",
                format!("no schema for `{api_version}` {kind}; did you mean `{close}`?"),
                format!("`{api_version}` serves `{close}` in Kubernetes {k8s}"),
            )
        } else {
            (
                "/kind",
                format!(
                    "no schema for `{api_version}` {kind} (Kubernetes {k8s}), so it is not checked"
                ),
                "give its CustomResourceDefinition with `--crd`, or a directory of JSON schemas \
                 with `--schema-location`; `--missing-schema=ignore` silences this"
                    .to_owned(),
            )
        };
        Some(
            object
                .finding(rules::MISSING, severity, pointer, message)
                .with_help(help),
        )
    }
}

/// How stable an apiVersion is: GA above beta above alpha, newer above older.
fn stability(api_version: &str) -> (u8, u32, u32) {
    let version = api_version.rsplit('/').next().unwrap_or(api_version);
    let digits = version.strip_prefix('v').unwrap_or(version);
    let split = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let major = digits[..split].parse().unwrap_or(0);
    let rest = &digits[split..];
    let (level, n) = if rest.is_empty() {
        (2, "0")
    } else if let Some(n) = rest.strip_prefix("beta") {
        (1, n)
    } else {
        (0, rest.strip_prefix("alpha").unwrap_or("0"))
    };
    (level, major, n.parse().unwrap_or(0))
}

fn suggest_kind<'a>(kinds: &'a KindIndex, api_version: &str, kind: &str) -> Option<&'a str> {
    messages::suggest(kind, kinds.kinds(api_version))
}

fn bad_crd_finding(
    object: &Object,
    version: &crd::CrdVersion,
    error: &ValidationError<'_>,
) -> Finding {
    // Point at the offending keyword when it exists in the source, else at `openAPIV3Schema`.
    let inner = error.instance_path().as_str();
    let located = object.locate(&format!("{}{inner}", version.pointer));
    let pos = if located.exact && !inner.is_empty() {
        located.best()
    } else {
        object.pos(&version.pointer)
    };
    let path: Vec<String> = inner
        .split('/')
        .skip(1)
        .map(|s| unescape_segment(s).into_owned())
        .collect();
    let mut what = error.to_string();
    if what.chars().count() > 200 {
        what = what.chars().take(200).collect::<String>() + "…";
    }
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at `{}`", path.join("."))
    };
    Finding::new(
        rules::BAD_CRD,
        Severity::Error,
        &object.provenance.file,
        pos,
        format!(
            "the schema of `{}` {}{at} is invalid: {what}",
            version.api_version, version.kind
        ),
    )
    .with_object(object.id.clone())
    .with_help("the API server rejects this CRD; its custom resources are not checked")
}

/// The draft a schema file declares; an unknown `$schema` (kubeconform's
/// `http://json-schema.org/schema#`) is removed and read as draft 4.
fn take_draft(schema: &mut Value) -> Draft {
    let declared = schema
        .get("$schema")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let draft = [
        ("draft-04", Draft::Draft4),
        ("draft-06", Draft::Draft6),
        ("draft-07", Draft::Draft7),
        ("2019-09", Draft::Draft201909),
        ("2020-12", Draft::Draft202012),
    ]
    .into_iter()
    .find(|(marker, _)| declared.contains(marker))
    .map(|(_, draft)| draft);
    match draft {
        Some(draft) => draft,
        None => {
            if let Some(map) = schema.as_object_mut() {
                map.remove("$schema");
            }
            Draft::Draft4
        }
    }
}

/// Base64 as the API server decodes `[]byte` fields: the standard alphabet with padding; line
/// breaks are skipped.
fn is_base64(text: &str) -> bool {
    let mut len = 0usize;
    let mut padding = 0usize;
    for b in text.bytes() {
        match b {
            b'\r' | b'\n' => continue,
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => {}
            _ => return false,
        }
        len += 1;
    }
    len.is_multiple_of(4) && padding <= 2
}

/// Validates an object against a standalone compiled schema (`schema` is its document, used to
/// name allowed fields), with the same messages and positions as Kubernetes schemas.
pub fn check_against(validator: &Validator, schema: &Arc<Value>, object: &Object) -> Vec<Finding> {
    if validator.is_valid(&object.value) {
        return Vec::new();
    }
    explain(object, validator, |error| {
        // The keyword's schema node is the schema path without its last segment (the keyword).
        let path = error.schema_path().as_str();
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        Some((Arc::clone(schema), parent.to_owned()))
    })
}

/// Turns a validator's errors for `object` into findings: described, deduplicated, capped.
fn explain(
    object: &Object,
    validator: &Validator,
    site_of: impl Fn(&ValidationError<'_>) -> Option<(Arc<Value>, String)>,
) -> Vec<Finding> {
    let mut problems = Vec::new();
    for error in validator.iter_errors(&object.value) {
        let site = site_of(&error);
        let node = site.as_ref().and_then(|(doc, ptr)| doc.pointer(ptr));
        problems.extend(messages::describe(object, &error, node));
        if problems.len() >= MAX_FINDINGS_PER_OBJECT {
            break;
        }
    }
    // A misspelt required field shows up twice (unknown, and missing): keep the first.
    let meant: HashSet<(String, String)> = problems
        .iter()
        .filter(|p| p.rule == rules::UNKNOWN_FIELD)
        .filter_map(|p| p.field.clone())
        .collect();
    let mut seen: HashSet<(Pos, &'static str, &'static str, String)> = HashSet::new();
    let mut findings = Vec::new();
    for problem in problems {
        if problem.keyword == "required"
            && problem.field.as_ref().is_some_and(|f| meant.contains(f))
        {
            continue;
        }
        let located = object.locate(&problem.pointer);
        let pos = match problem.at {
            At::Key => located.best(),
            At::Value => located.value,
        };
        // One finding per place and kind of problem; each missing required field is its own.
        let missing = match (&problem.field, problem.keyword) {
            (Some((_, name)), "required") => name.clone(),
            _ => String::new(),
        };
        if !seen.insert((pos, problem.rule, problem.keyword, missing)) {
            continue;
        }
        // A field set from another file (an `Origin`, such as an override) is reported there.
        let (file, pos) = match object.origin_of(&problem.pointer) {
            Some(origin) => (&origin.file, origin.pos),
            None => (&object.provenance.file, pos),
        };
        let mut finding = Finding::new(problem.rule, Severity::Error, file, pos, problem.message)
            .with_object(object.id.clone());
        if let Some(help) = problem.help {
            finding = finding.with_help(help);
        }
        findings.push(finding);
    }
    findings
}
