//! Loading a repo: `tally.yaml`, `environments/*/environment.yaml`, `tenants/*/tenant.yaml` and
//! `apps/*/app.yaml`, each read with positions, checked against its JSON schema (`schemas/`) and
//! only then turned into typed specs. A broken file is a finding at its line; the rest still load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use tally_validator::gate::{self, InputLimits, Sources};
use tally_validator::source::Input;
use tally_validator::unit::UnitOptions;
use tally_validator::{Finding, Object, Severity};

use crate::model::{API_VERSION, AppSpec, EnvironmentSpec, RepoSpec, TenantSpec};

/// Rule ids raised while loading the layout.
pub mod rules {
    /// A layout file that does not match its schema.
    pub const SCHEMA: &str = "layout-schema";
    /// A layout file of the wrong kind, or a name that differs from its directory.
    pub const IDENTITY: &str = "layout-identity";
}

/// The file name of the repo's root file.
pub const REPO_FILE: &str = "tally.yaml";

/// Errors that stop loading (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Reading the repo failed.
    #[error(transparent)]
    Gate(#[from] gate::GateError),
    /// The repo's policy configuration (`tally.yaml`) could not be read.
    #[error(transparent)]
    PolicyConfig(#[from] tally_validator::policy::PolicyConfigError),
    /// `--env` names an environment the repo does not have.
    #[error("no environment `{name}` (known: {known})")]
    UnknownEnvironment {
        /// The name asked for.
        name: String,
        /// The environments there are.
        known: String,
    },
    /// A directory could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// One layout file: its name (the directory's), its directory, the object as read, and its spec.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// The entry's name (its directory name).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The file as an object, for positions.
    pub object: Object,
    /// The typed spec.
    pub spec: T,
}

/// A loaded repo.
#[derive(Debug, Default)]
pub struct Repo {
    /// The repo's root directory.
    pub root: PathBuf,
    /// `tally.yaml`, when it loaded.
    pub repo: Option<Entry<RepoSpec>>,
    /// Environments by name.
    pub environments: BTreeMap<String, Entry<EnvironmentSpec>>,
    /// Tenants by name.
    pub tenants: BTreeMap<String, Entry<TenantSpec>>,
    /// Apps by name.
    pub apps: BTreeMap<String, Entry<AppSpec>>,
    /// Findings met while loading.
    pub findings: Vec<Finding>,
    /// The text of every layout file, for reports.
    pub sources: Sources,
}

/// Whether `path` is the root of a tally repo (it has a `tally.yaml` of kind Repo).
pub fn is_repo(path: &Path) -> bool {
    let file = path.join(REPO_FILE);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return false;
    };
    let name: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
    tally_validator::yaml::load(&name, &text)
        .documents
        .first()
        .is_some_and(|d| d.value.get("kind").and_then(serde_json::Value::as_str) == Some("Repo"))
}

/// The input limits of the repo at `root`: `base` with what `spec.limits` of its `tally.yaml`
/// sets. Read leniently: a broken value keeps `base` here, and loading the repo reports it at
/// its line.
pub fn input_limits(root: &Path, base: InputLimits) -> InputLimits {
    let file = root.join(REPO_FILE);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return base;
    };
    let name: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
    let loaded = tally_validator::yaml::load(&name, &text);
    let Some(limits) = loaded
        .documents
        .first()
        .and_then(|d| d.value.pointer("/spec/limits"))
    else {
        return base;
    };
    serde_json::from_value::<crate::model::LimitsSpec>(limits.clone())
        .map_or(base, |spec| spec.over(base))
}

/// Loads the repo rooted at `root`.
pub fn load(root: &Path) -> Result<Repo, LayoutError> {
    load_within(root, &InputLimits::default())
}

/// Loads the repo rooted at `root`, reading each layout file within `limits`.
pub fn load_within(root: &Path, limits: &InputLimits) -> Result<Repo, LayoutError> {
    // Commands and daemon rounds load a repo exactly once; tests count this event to prove it.
    tracing::debug!(root = %root.display(), "loading the repo");
    let mut inputs = vec![Input::File(root.join(REPO_FILE))];
    let mut missing = Vec::new();
    for dir in ["environments", "tenants", "apps"] {
        let file = match dir {
            "environments" => "environment.yaml",
            "tenants" => "tenant.yaml",
            _ => "app.yaml",
        };
        for sub in subdirectories(&root.join(dir))? {
            let path = sub.join(file);
            if path.is_file() {
                inputs.push(Input::File(path));
            } else {
                // A directory here without its file is a mistake, never something to skip.
                let name: Arc<str> = Arc::from(sub.to_string_lossy().as_ref());
                let yml = sub.join(file.replace(".yaml", ".yml"));
                let hint = if yml.is_file() {
                    format!("; rename {} to {file}", yml.display())
                } else {
                    String::new()
                };
                missing.push(Finding::new(
                    rules::IDENTITY,
                    Severity::Error,
                    &name,
                    tally_validator::Pos::START,
                    format!(
                        "`{dir}/` holds `{}` without a `{file}`{hint}",
                        sub.display()
                    ),
                ));
            }
        }
    }
    let loaded = gate::load_inputs_limited(&inputs, &UnitOptions::default(), limits)?;
    let mut repo = Repo {
        root: root.to_path_buf(),
        findings: loaded.findings,
        sources: loaded.sources,
        ..Repo::default()
    };
    repo.findings.extend(missing);
    // Every layout file holds exactly one object: an empty one is reported, never skipped.
    for input in &inputs[1..] {
        let name = input.display_name();
        let has_object = loaded.objects.iter().any(|o| *o.provenance.file == *name);
        let has_finding = repo.findings.iter().any(|f| *f.file == *name);
        if !has_object && !has_finding {
            let file: Arc<str> = Arc::from(name.as_str());
            repo.findings.push(Finding::new(
                rules::IDENTITY,
                Severity::Error,
                &file,
                tally_validator::Pos::START,
                "this layout file is empty; it must hold one tally.dev/v1alpha1 object",
            ));
        }
    }
    for object in loaded.objects {
        if object.provenance.document > 0 {
            repo.findings.push(object.finding(
                rules::IDENTITY,
                Severity::Error,
                "",
                "a layout file holds one object; this second document is not read",
            ));
            continue;
        }
        let path = PathBuf::from(&*object.provenance.file);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (kind, schema) = match file_name {
            REPO_FILE => ("Repo", &schemas().repo),
            "environment.yaml" => ("Environment", &schemas().environment),
            "tenant.yaml" => ("Tenant", &schemas().tenant),
            _ => ("App", &schemas().app),
        };
        if object.id.kind != kind || object.id.api_version != API_VERSION {
            repo.findings.push(object.finding(
                rules::IDENTITY,
                Severity::Error,
                "/kind",
                format!(
                    "`{file_name}` must hold a {API_VERSION} {kind}, found {} {}",
                    object.id.api_version, object.id.kind
                ),
            ));
            continue;
        }
        if kind != "Repo" && object.id.name != name {
            repo.findings.push(object.finding(
                rules::IDENTITY,
                Severity::Error,
                "/metadata/name",
                format!(
                    "the {kind} is named `{}` but lives in directory `{name}`; the two must match",
                    object.id.name
                ),
            ));
        }
        let errors = tally_validator::schema::check_against(&schema.0, &schema.1, &object);
        if !errors.is_empty() {
            repo.findings.extend(errors);
            continue;
        }
        match kind {
            "Repo" => repo.repo = typed(object, name, dir, &mut repo.findings),
            "Environment" => insert(
                &mut repo.environments,
                typed(object, name, dir, &mut repo.findings),
            ),
            "Tenant" => insert(
                &mut repo.tenants,
                typed(object, name, dir, &mut repo.findings),
            ),
            _ => insert(&mut repo.apps, typed(object, name, dir, &mut repo.findings)),
        }
    }
    Ok(repo)
}

fn insert<T>(map: &mut BTreeMap<String, Entry<T>>, entry: Option<Entry<T>>) {
    if let Some(e) = entry {
        map.insert(e.name.clone(), e);
    }
}

fn typed<T: DeserializeOwned>(
    object: Object,
    name: String,
    dir: PathBuf,
    findings: &mut Vec<Finding>,
) -> Option<Entry<T>> {
    let spec_value = object
        .value
        .get("spec")
        .cloned()
        .unwrap_or(serde_json::Value::Object(Default::default()));
    match serde_json::from_value(spec_value) {
        Ok(spec) => Some(Entry {
            name,
            dir,
            object,
            spec,
        }),
        Err(e) => {
            // The schema should have caught this; say so at the spec rather than lose the file.
            findings.push(object.finding(
                rules::SCHEMA,
                Severity::Error,
                "/spec",
                format!("invalid spec: {e}"),
            ));
            None
        }
    }
}

fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, LayoutError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LayoutError::Io {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// A compiled layout schema and its document (to name allowed fields in messages).
type Compiled = (jsonschema::Validator, Arc<serde_json::Value>);

/// The layout's JSON schemas, compiled once.
struct Schemas {
    repo: Compiled,
    environment: Compiled,
    tenant: Compiled,
    app: Compiled,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| Schemas {
        repo: compile(include_str!("../schemas/repo.json")),
        environment: compile(include_str!("../schemas/environment.json")),
        tenant: compile(include_str!("../schemas/tenant.json")),
        app: compile(include_str!("../schemas/app.json")),
    })
}

/// Compiles a schema shipped in this crate; a test proves each one compiles.
fn compile(text: &str) -> Compiled {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => unreachable!("shipped layout schema is not JSON: {e}"),
    };
    match jsonschema::validator_for(&value) {
        Ok(v) => (v, Arc::new(value)),
        Err(e) => unreachable!("shipped layout schema does not compile: {e}"),
    }
}

/// Shared `Arc<str>` for generated names.
pub fn file_name(path: &Path) -> Arc<str> {
    Arc::from(path.to_string_lossy().as_ref())
}
