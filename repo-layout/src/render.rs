//! Rendering one environment to the exact set of objects the engine will apply: tenant guardrails
//! first, then each app's manifests (in `dependsOn` order) with the environment's overrides,
//! namespaces, ownership labels and tenant ids applied, and the tenant boundary checked.
//!
//! Every object keeps its provenance: app objects point at their manifest lines (an overridden
//! field at the environment line that changed it), guardrails at the tenant field that produced
//! them.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use tally_validator::gate::{self, InputLimits, Sources};
use tally_validator::object::{Origin, Provenance};
use tally_validator::position::PosNode;
use tally_validator::unit::UnitOptions;
use tally_validator::{Finding, Object, ObjectRef, Pos, Severity, manifest, source, yaml};

use crate::boundary;
use crate::check::apply_order;
use crate::guardrails::guardrails;
use crate::load::{Entry, LayoutError, Repo};
use crate::model::{AppSpec, Source};
use crate::overrides;

/// Rule ids raised while rendering.
pub mod rules {
    /// A kustomize or helm source whose binary is not on PATH, or that failed.
    pub const SOURCE: &str = "layout-source";
}

/// Labels tally puts on everything it renders.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "tally");
/// The environment label.
pub const ENVIRONMENT_LABEL: &str = "tally.dev/environment";
/// The app label.
pub const APP_LABEL: &str = "tally.dev/app";
/// The tenant label.
pub const TENANT_LABEL: &str = "tally.dev/tenant";
/// The annotation that lets the engine delete and create again an object whose immutable fields
/// change (value `enabled`); an app's `recreate: true` sets it on all its objects.
pub const RECREATE_ANNOTATION: &str = "tally.dev/recreate";
/// The annotation listing fields the engine leaves to others once the object exists (JSON
/// pointers, separated by commas or new lines); an app's `ignoreFields` adds to it.
pub const IGNORE_FIELDS_ANNOTATION: &str = "tally.dev/ignore-fields";

/// An environment's desired state.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The environment's name.
    pub environment: String,
    /// Every object, guardrails first, then apps in apply order.
    pub objects: Vec<Object>,
    /// Findings met while rendering (sources, boundary).
    pub findings: Vec<Finding>,
    /// Texts of the manifests read, for reports.
    pub sources: Sources,
}

/// What rendering one environment may still read: the environment's share of
/// [`InputLimits::max_total_bytes`], spent by every manifest file and tool output read, so the
/// limits hold for the commit as a whole, not per app.
struct Budget {
    limits: InputLimits,
    left: u64,
}

impl Budget {
    fn new(repo: &Repo, limits: &InputLimits) -> Budget {
        let layout: u64 = repo.sources.iter().map(|(_, t)| t.len() as u64).sum();
        Budget {
            limits: *limits,
            left: limits.max_total_bytes.saturating_sub(layout),
        }
    }

    /// The limits for the next read: the file limit, and what is left of the total.
    fn limits(&self) -> InputLimits {
        InputLimits {
            max_total_bytes: self.left,
            ..self.limits
        }
    }

    fn spend(&mut self, bytes: u64) {
        self.left = self.left.saturating_sub(bytes);
    }
}

/// Input-limit findings name the `tally validate` flag; in a repo, `tally.yaml` sets the same.
fn in_repo_terms(mut f: Finding) -> Finding {
    if f.rule == yaml::rules::LIMIT && f.message.ends_with("raises the limit)") {
        f.message = f.message.replace(
            " raises the limit)",
            ", or spec.limits in tally.yaml, raises the limit)",
        );
    }
    f
}

/// Renders environment `env` of `repo`. `excludes` (gitignore globs) skip manifest files;
/// `limits` bound what the whole environment may read.
pub fn render(
    repo: &Repo,
    env: &str,
    excludes: &[String],
    limits: &InputLimits,
) -> Result<Rendered, LayoutError> {
    // Each environment is rendered once per command or daemon round; tests count this event.
    tracing::debug!(environment = env, "rendering the environment");
    let mut out = Rendered {
        environment: env.to_owned(),
        ..Rendered::default()
    };
    let Some(environment) = repo.environments.get(env) else {
        let known: Vec<&str> = repo.environments.keys().map(String::as_str).collect();
        return Err(LayoutError::UnknownEnvironment {
            name: env.to_owned(),
            known: known.join(", "),
        });
    };

    for name in &environment.spec.tenants {
        let Some(tenant) = repo.tenants.get(name) else {
            continue;
        };
        for generated in guardrails(name, &tenant.spec) {
            let pos = tenant.object.pos(&generated.source);
            let mut value = generated.value;
            if let Some(labels) = overrides::labels_mut(&mut value) {
                labels.insert(ENVIRONMENT_LABEL.into(), Value::from(env));
            }
            out.objects
                .push(generated_object(value, &tenant.object.provenance.file, pos));
        }
    }

    // Read every app first: a CRD in one app decides the scope of custom resources in another.
    let mut apps = Vec::new();
    let mut budget = Budget::new(repo, limits);
    for (i, instance) in apply_order(repo, &environment.spec.apps)
        .into_iter()
        .enumerate()
    {
        let Some(app) = repo.apps.get(&instance.name) else {
            continue;
        };
        let index = environment
            .spec
            .apps
            .iter()
            .position(|a| a.name == instance.name)
            .unwrap_or(i);
        let (objects, findings) = read_source(repo, app, excludes, &mut out.sources, &mut budget)?;
        out.findings.extend(findings.into_iter().map(in_repo_terms));
        apps.push((instance, app, format!("/spec/apps/{index}"), objects));
    }
    // Custom resources' scope by (group, kind). Built-in groups keep their built-in scopes: a
    // CRD cannot make a ClusterRoleBinding namespaced.
    let mut crd_scopes: HashMap<(String, String), bool> = HashMap::new();
    for o in apps.iter().flat_map(|(_, _, _, objects)| objects) {
        if o.id.kind == "CustomResourceDefinition" {
            let s = |p: &str| o.value.pointer(p).and_then(Value::as_str);
            if let (Some(group), Some(kind), Some(scope)) =
                (s("/spec/group"), s("/spec/names/kind"), s("/spec/scope"))
                && !builtin_group(group)
            {
                crd_scopes.insert((group.to_owned(), kind.to_owned()), scope == "Cluster");
            }
        }
    }

    for (instance, app, at, objects) in apps {
        let tenant = repo.tenants.get(&app.spec.tenant);
        let first = out.objects.len();
        for mut object in objects {
            let group = object.id.group().to_owned();
            let kind = object.id.kind.clone();
            let cluster_scoped = if builtin_group(&group) {
                boundary::is_cluster_scoped(&kind)
            } else {
                // A custom resource without its CRD in the set is taken as namespaced.
                crd_scopes.get(&(group, kind)).copied().unwrap_or(false)
            };
            if !cluster_scoped
                && object.id.namespace.is_none()
                && let Some(meta) = object
                    .value
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
            {
                meta.insert("namespace".into(), Value::from(app.spec.namespace.as_str()));
            }
            for change in overrides::apply(&mut object.value, instance, &at) {
                object.origins.push(Origin {
                    pointer: change.pointer,
                    file: Arc::clone(&environment.object.provenance.file),
                    pos: environment.object.pos(&change.source),
                });
            }
            if let Some(labels) = overrides::labels_mut(&mut object.value) {
                labels.insert(MANAGED_BY.0.into(), Value::from(MANAGED_BY.1));
                labels.insert(ENVIRONMENT_LABEL.into(), Value::from(env));
                labels.insert(APP_LABEL.into(), Value::from(app.name.as_str()));
                labels.insert(TENANT_LABEL.into(), Value::from(app.spec.tenant.as_str()));
            }
            annotate(&mut object.value, &app.spec);
            if let Some(ids) = tenant.and_then(|t| t.spec.ids.as_ref()) {
                boundary::fill_ids(&mut object.value, ids);
            }
            object.id = identity(&object.value);
            if let Some(t) = tenant {
                out.findings.extend(boundary::check(
                    &object,
                    &app.spec.tenant,
                    &t.spec,
                    cluster_scoped,
                ));
            }
            out.objects.push(object);
        }
        out.findings
            .extend(crate::strategy::check(app, &out.objects[first..]));
    }
    Ok(out)
}

/// Whether an API group is Kubernetes' own (the core group, `apps`, `batch`, `*.k8s.io`, ...).
/// The annotations an app's `recreate` and `ignoreFields` give its objects.
fn annotate(object: &mut Value, spec: &crate::model::AppSpec) {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let pointers: Vec<&str> = spec
        .ignore_fields
        .iter()
        .filter(|i| i.kind.as_ref().is_none_or(|k| *k == kind))
        .filter(|i| i.name.as_ref().is_none_or(|n| *n == name))
        .flat_map(|i| i.pointers.iter().map(String::as_str))
        .collect();
    if !spec.recreate && pointers.is_empty() {
        return;
    }
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let Some(annotations) = annotations.as_object_mut() else {
        return;
    };
    if spec.recreate {
        annotations
            .entry(RECREATE_ANNOTATION)
            .or_insert_with(|| Value::from("enabled"));
    }
    if !pointers.is_empty() {
        let mut all: Vec<String> = annotations
            .get(IGNORE_FIELDS_ANNOTATION)
            .and_then(Value::as_str)
            .map(|s| {
                s.split([',', '\n'])
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for p in pointers {
            if !all.iter().any(|q| q == p) {
                all.push(p.to_owned());
            }
        }
        annotations.insert(IGNORE_FIELDS_ANNOTATION.into(), Value::from(all.join(",")));
    }
}

fn builtin_group(group: &str) -> bool {
    !group.contains('.') || group.ends_with(".k8s.io")
}

/// The identity of an object as rendered.
fn identity(value: &Value) -> ObjectRef {
    let s = |p: &str| {
        value
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    ObjectRef {
        api_version: s("/apiVersion"),
        kind: s("/kind"),
        namespace: value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
        name: s("/metadata/name"),
    }
}

/// An object generated from a layout field: every node points at that field.
fn generated_object(value: Value, file: &Arc<str>, pos: Pos) -> Object {
    Object {
        id: identity(&value),
        provenance: Provenance {
            file: Arc::clone(file),
            document: 0,
            pointer: String::new(),
        },
        positions: uniform_positions(&value, pos),
        value,
        origins: Vec::new(),
    }
}

fn uniform_positions(value: &Value, pos: Pos) -> PosNode {
    match value {
        Value::Object(m) => PosNode::Map {
            pos,
            entries: m
                .iter()
                .map(|(k, v)| tally_validator::position::MapEntry {
                    key: k.as_str().into(),
                    key_pos: pos,
                    value: uniform_positions(v, pos),
                })
                .collect(),
        },
        Value::Array(items) => PosNode::Seq {
            pos,
            items: items.iter().map(|v| uniform_positions(v, pos)).collect(),
        },
        _ => PosNode::Scalar(pos),
    }
}

/// Reads an app's manifests: a plain directory, or the output of `kustomize build` /
/// `helm template` when those binaries are installed. Sources must stay inside the repo.
fn read_source(
    repo: &Repo,
    app: &Entry<AppSpec>,
    excludes: &[String],
    sources: &mut Sources,
    budget: &mut Budget,
) -> Result<(Vec<Object>, Vec<Finding>), LayoutError> {
    let (dir, pointer) = match &app.spec.source {
        Source::Manifests(dir) => (dir.as_str(), "/spec/source/manifests"),
        Source::Kustomize(dir) => (dir.as_str(), "/spec/source/kustomize"),
        Source::Helm(helm) => (helm.chart.as_str(), "/spec/source/helm/chart"),
    };
    let path = app.dir.join(dir);
    let inside = match (path.canonicalize(), repo.root.canonicalize()) {
        (Ok(p), Ok(root)) => Some(p.starts_with(root)),
        _ => None,
    };
    let problem = match inside {
        None => Some(format!("`{}` does not exist", path.display())),
        Some(false) => Some(format!(
            "`{dir}` leads outside the repo; an app's sources must be in the repo the gate sees"
        )),
        Some(true) => None,
    };
    if let Some(message) = problem {
        let f = app
            .object
            .finding(rules::SOURCE, Severity::Error, pointer, message);
        return Ok((Vec::new(), vec![f]));
    }
    match &app.spec.source {
        Source::Manifests(_) => {
            if !path.is_dir() {
                let message = format!("`{}` is not a directory", path.display());
                let f = app
                    .object
                    .finding(rules::SOURCE, Severity::Error, pointer, message);
                return Ok((Vec::new(), vec![f]));
            }
            let inputs = source::discover(&[path], excludes).map_err(gate::GateError::from)?;
            let loaded =
                gate::load_inputs_limited(&inputs, &UnitOptions::default(), &budget.limits())?;
            for (name, text) in loaded.sources.iter() {
                budget.spend(text.len() as u64);
                sources.insert(Arc::clone(name), Arc::clone(text));
            }
            Ok((loaded.objects, loaded.findings))
        }
        Source::Kustomize(_) => {
            let args = vec!["build".to_owned(), path.display().to_string()];
            run_tool(app, "kustomize", &args, pointer, &path, sources, budget)
        }
        Source::Helm(helm) => {
            let mut args = vec![
                "template".to_owned(),
                app.name.clone(),
                path.display().to_string(),
                "--namespace".to_owned(),
                app.spec.namespace.clone(),
            ];
            for values in &helm.values_files {
                args.push("--values".into());
                args.push(app.dir.join(values).display().to_string());
            }
            run_tool(app, "helm", &args, pointer, &path, sources, budget)
        }
    }
}

fn run_tool(
    app: &Entry<AppSpec>,
    tool: &str,
    args: &[String],
    pointer: &str,
    path: &Path,
    sources: &mut Sources,
    budget: &mut Budget,
) -> Result<(Vec<Object>, Vec<Finding>), LayoutError> {
    let output = match Command::new(tool).args(args).output() {
        Ok(o) => o,
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                format!("this app is rendered with `{tool}`, which is not installed (not on PATH)")
            } else {
                format!("running `{tool}`: {e}")
            };
            return Ok((
                Vec::new(),
                vec![
                    app.object
                        .finding(rules::SOURCE, Severity::Error, pointer, message),
                ],
            ));
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = format!("`{tool} {}` failed: {}", args.join(" "), stderr.trim());
        return Ok((
            Vec::new(),
            vec![
                app.object
                    .finding(rules::SOURCE, Severity::Error, pointer, message),
            ],
        ));
    }
    let size = output.stdout.len() as u64;
    let over = if size > budget.limits.max_file_bytes {
        Some(format!(
            "`{tool}` wrote {size} bytes, more than the {} one file may hold; nothing of it was read (spec.limits.maxFileSize in tally.yaml raises the limit)",
            budget.limits.max_file_bytes
        ))
    } else if size > budget.left {
        Some(format!(
            "`{tool}` wrote {size} bytes, which takes this environment past the {} bytes it may read; nothing of it was read (spec.limits.maxInputSize in tally.yaml raises the limit)",
            budget.limits.max_total_bytes
        ))
    } else {
        None
    };
    if let Some(message) = over {
        let f = app
            .object
            .finding(yaml::rules::LIMIT, Severity::Error, pointer, message);
        return Ok((Vec::new(), vec![f]));
    }
    budget.spend(size);
    let name: Arc<str> = Arc::from(format!("{} ({tool} output)", path.display()));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let parsed = manifest::objects_from(&name, yaml::load_with(&name, &text, &budget.limits.yaml));
    sources.insert(Arc::clone(&name), Arc::from(text));
    Ok((parsed.objects, parsed.findings))
}

/// Every namespace the rendered objects use, for summaries.
pub fn namespaces(rendered: &Rendered) -> BTreeSet<&str> {
    rendered
        .objects
        .iter()
        .filter_map(|o| o.id.namespace.as_deref())
        .collect()
}
