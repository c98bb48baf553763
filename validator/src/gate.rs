//! The gate's pipeline over plain manifests: discover, read and parse in parallel, learn CRDs,
//! validate every object against its schema and the per-object policies in one parallel pass,
//! run the policies that judge the whole set, and return the sorted findings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::finding::{Finding, Severity, sort_findings};
use crate::manifest::{FileObjects, objects_from};
use crate::object::Object;
use crate::policy::{PolicyConfig, PolicyEngine, SetIndex};
use crate::schema::{SchemaError, SchemaOptions, SchemaRegistry};
use crate::source::{self, Input, SourceError, SourceText};
use crate::yaml;

/// Everything that configures one gate run.
#[derive(Debug, Clone, Default)]
pub struct GateOptions {
    /// Schema selection.
    pub schema: SchemaOptions,
    /// Files or directories of CRDs that supply schemas but are not themselves checked.
    pub crds: Vec<PathBuf>,
    /// Globs (gitignore syntax) of paths to skip.
    pub excludes: Vec<String>,
    /// Policy settings and exemptions (the `policies:` section of `tally.yaml`), with any
    /// problems found reading it.
    pub policy: PolicyConfig,
}

/// Errors that stop a run (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Reading input failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The schema registry could not be built.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// The text of every file read, kept for reports that quote source lines.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    texts: HashMap<Arc<str>, Arc<str>>,
}

impl Sources {
    /// Records a file's text.
    pub fn insert(&mut self, file: Arc<str>, text: Arc<str>) {
        self.texts.insert(file, text);
    }

    /// The text of a file, when it was read as text.
    pub fn text(&self, file: &str) -> Option<&str> {
        self.texts.get(file).map(|t| &**t)
    }

    /// Line `line` (1-based) of `file`, without its newline.
    pub fn line(&self, file: &str, line: u32) -> Option<&str> {
        let text = self.text(file)?;
        text.lines().nth(line.checked_sub(1)? as usize)
    }
}

/// What a gate run found.
#[derive(Debug, Default)]
pub struct GateReport {
    /// Every finding, sorted by file and position; exempted ones included.
    pub findings: Vec<Finding>,
    /// How many files were read.
    pub files: usize,
    /// How many objects were checked.
    pub objects: usize,
    /// The Kubernetes version validated against.
    pub kubernetes_version: String,
    /// Source texts, for reports that quote lines.
    pub sources: Sources,
}

impl GateReport {
    /// The highest severity among findings that count (not exempted), if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| f.exempted.is_none())
            .map(|f| f.severity)
            .max()
    }

    /// Whether any counted finding is at or above `fail_on`.
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.findings.iter().any(|f| f.fails(fail_on))
    }
}

/// Objects and findings read from a set of inputs.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Objects in input order.
    pub objects: Vec<Object>,
    /// Findings met while reading.
    pub findings: Vec<Finding>,
    /// The texts read.
    pub sources: Sources,
    /// How many inputs were read.
    pub files: usize,
}

/// Reads and parses inputs in parallel. I/O errors on named inputs stop the run.
pub fn load_inputs(inputs: &[Input]) -> Result<Loaded, GateError> {
    let per_file: Vec<(Arc<str>, Option<Arc<str>>, FileObjects)> = inputs
        .par_iter()
        .map(|input| {
            let name: Arc<str> = Arc::from(input.display_name());
            let bytes = source::read_bytes(input)?;
            Ok(match source::decode(&name, bytes) {
                SourceText::Text(mut text) => {
                    if matches!(input, Input::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")))
                    {
                        // JSON may indent with tabs; YAML may not. One tab is one column either way.
                        text = detab_indentation(&text);
                    }
                    let parsed = objects_from(&name, yaml::load(&name, &text));
                    (name, Some(Arc::from(text)), parsed)
                }
                SourceText::Unreadable(finding) => (
                    name,
                    None,
                    FileObjects {
                        objects: Vec::new(),
                        findings: vec![*finding],
                    },
                ),
            })
        })
        .collect::<Result<_, GateError>>()?;
    let mut loaded = Loaded {
        files: per_file.len(),
        ..Loaded::default()
    };
    for (name, text, mut parsed) in per_file {
        if let Some(text) = text {
            loaded.sources.insert(name, text);
        }
        loaded.objects.append(&mut parsed.objects);
        loaded.findings.append(&mut parsed.findings);
    }
    Ok(loaded)
}

fn detab_indentation(text: &str) -> String {
    if !text.contains('\t') {
        return text.to_owned();
    }
    text.split_inclusive('\n')
        .map(|line| {
            let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
            let mut l = line[..indent].replace('\t', " ");
            l.push_str(&line[indent..]);
            l
        })
        .collect()
}

/// Validates objects against the registry in parallel.
pub fn check_objects(registry: &SchemaRegistry, objects: &[Object]) -> Vec<Finding> {
    objects
        .par_iter()
        .flat_map_iter(|o| registry.validate(o))
        .collect()
}

/// Schema validation and per-object policies, in one parallel pass.
fn check_with_policies(
    registry: &SchemaRegistry,
    engine: &PolicyEngine,
    index: &SetIndex<'_>,
    objects: &[Object],
) -> Vec<Finding> {
    objects
        .par_iter()
        .flat_map_iter(|o| {
            let mut found = registry.validate(o);
            found.extend(engine.check_object(o, index));
            found
        })
        .collect()
}

/// Whether an input is the policy configuration file (read as configuration, not a manifest).
fn is_config(input: &Input, config: Option<&std::path::Path>) -> bool {
    let (Input::File(path), Some(config)) = (input, config) else {
        return false;
    };
    path.file_name() == config.file_name()
        && match (path.canonicalize(), config.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => path == config,
        }
}

/// Runs the gate over paths (files, directories, `-` for stdin).
pub fn run(paths: &[PathBuf], options: &GateOptions) -> Result<GateReport, GateError> {
    let mut inputs = source::discover(paths, &options.excludes)?;
    inputs.retain(|i| !is_config(i, options.policy.path.as_deref()));
    let mut loaded = load_inputs(&inputs)?;
    let mut registry = SchemaRegistry::new(options.schema.clone())?;
    if !options.crds.is_empty() {
        let crd_inputs = source::discover(&options.crds, &[])?;
        let crds = load_inputs(&crd_inputs)?;
        // Problems in CRD files matter: they are inputs too, only not checked as objects.
        loaded.findings.extend(crds.findings);
        loaded.findings.extend(registry.add_crds(&crds.objects));
        for (name, text) in crds.sources.texts {
            loaded.sources.insert(name, text);
        }
    }
    loaded.findings.extend(registry.add_crds(&loaded.objects));
    let engine = PolicyEngine::new(&options.policy);
    let index = engine.index(&loaded.objects);
    let mut findings = loaded.findings;
    findings.extend(check_with_policies(
        &registry,
        &engine,
        &index,
        &loaded.objects,
    ));
    findings.extend(engine.check_set(&index));
    findings.extend(options.policy.findings.iter().cloned());
    if let (Some(file), Some(text)) = (&options.policy.file, &options.policy.text) {
        loaded.sources.insert(Arc::clone(file), Arc::clone(text));
    }
    sort_findings(&mut findings);
    Ok(GateReport {
        findings,
        files: loaded.files,
        objects: loaded.objects.len(),
        kubernetes_version: registry.kubernetes_version().to_owned(),
        sources: loaded.sources,
    })
}
