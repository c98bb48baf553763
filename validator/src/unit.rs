//! Directories that are rendered before they are judged: Helm charts and kustomizations.
//!
//! A directory holding `Chart.yaml` is a chart; one holding `kustomization.yaml` (or `.yml`, or
//! `Kustomization`) is a kustomization. Their files are not manifests on their own (templates,
//! patches, values), so the walk takes such a directory as one unit and the gate judges what it
//! renders to, with every finding pointing at the file a person edits:
//!
//! - a **chart** is rendered with `helm template`; each object is mapped to the template named by
//!   helm's `# Source:` comment, and each field to the line of that template that writes its key
//!   (templates are not YAML, so the line is found by key, in order). Without helm, the chart is
//!   one warning and nothing under it is judged file by file.
//! - a **kustomization** is built with `kustomize build`, else `kubectl kustomize`, through a
//!   wrapper that turns on origin annotations; each object is mapped to the resource file it came
//!   from, and each field to its line there (a field a patch added points at the nearest enclosing
//!   field of the resource). Without either binary, the files listed under `resources` are judged
//!   as they are (an info says so) and patches are not judged as objects. A kustomize Component
//!   is never built on its own: the kustomizations that use it carry it.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::finding::{Finding, Pos, Severity};
use crate::manifest::{self, FileObjects};
use crate::object::{Object, ObjectRef, Provenance};
use crate::position::{MapEntry, PosNode};
use crate::yaml;

/// Rule ids raised for units.
pub mod rules {
    /// A chart or kustomization could not be rendered (its tool is missing, or failed).
    pub const NOT_RENDERED: &str = "unit-not-rendered";
}

/// The annotation kustomize writes with `buildMetadata: [originAnnotations]`.
const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";

/// What kind of unit a directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitKind {
    /// A Helm chart (`Chart.yaml`).
    Chart,
    /// A kustomization (`kustomization.yaml`).
    Kustomization,
}

/// The file that makes `dir` a unit, if any: `Chart.yaml` wins over a kustomization.
pub fn unit_file(dir: &Path) -> Option<(UnitKind, PathBuf)> {
    let chart = dir.join("Chart.yaml");
    if chart.is_file() {
        return Some((UnitKind::Chart, chart));
    }
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .map(|p| (UnitKind::Kustomization, p))
}

/// A file's shown name and its text.
type FileText = (Arc<str>, Arc<str>);

/// What a unit rendered to: objects mapped to their source files, findings, and the texts of the
/// files they point at.
#[derive(Debug, Default)]
pub struct UnitOutput {
    /// Objects, positions in their source files.
    pub objects: Vec<Object>,
    /// Findings (a unit that could not be rendered is one).
    pub findings: Vec<Finding>,
    /// `(file, text)` of every file a finding may quote.
    pub sources: Vec<FileText>,
}

/// How units are rendered.
#[derive(Debug, Clone, Default)]
pub struct UnitOptions {
    /// Values files given to every `helm template` (`--helm-values`), after the chart's own
    /// `values.yaml`.
    pub helm_values: Vec<PathBuf>,
}

/// Renders the unit at `dir` (shown as `shown`) and maps what it renders back to its files.
pub fn load(kind: UnitKind, dir: &Path, shown: &str, options: &UnitOptions) -> UnitOutput {
    match kind {
        UnitKind::Chart => chart(dir, shown, options),
        UnitKind::Kustomization => kustomization(dir, shown),
    }
}

/// A path under the unit, named as the user named the unit (`shown`), else relative to the
/// current directory, else absolute.
fn display(file: &Path, dir: &Path, shown: &str) -> String {
    let canonical_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Ok(rest) = file.strip_prefix(&canonical_dir) {
        return Path::new(shown).join(rest).to_string_lossy().into_owned();
    }
    if let Some(rel) = std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
    {
        return rel.to_string_lossy().into_owned();
    }
    file.to_string_lossy().into_owned()
}

fn not_rendered(file: &str, severity: Severity, message: String) -> Finding {
    let file: Arc<str> = Arc::from(file);
    Finding::new(rules::NOT_RENDERED, severity, &file, Pos::START, message)
}

/// Runs a tool; `Ok(None)` when it is not installed.
fn run(tool: &str, args: &[&str], dir: Option<&Path>) -> Result<Option<String>, String> {
    let mut command = Command::new(tool);
    command.args(args);
    if let Some(d) = dir {
        command.current_dir(d);
    }
    match command.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("running `{tool}`: {e}")),
        Ok(out) if !out.status.success() => Err(format!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(out) => Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned())),
    }
}

// ---------------------------------------------------------------------------------------------
// Helm charts

fn chart(dir: &Path, shown: &str, options: &UnitOptions) -> UnitOutput {
    let chart_file = Path::new(shown)
        .join("Chart.yaml")
        .to_string_lossy()
        .into_owned();
    let release = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "release".into());
    let dir_arg = dir.to_string_lossy().into_owned();
    let values: Vec<String> = options
        .helm_values
        .iter()
        .map(|v| format!("--values={}", v.display()))
        .collect();
    let mut args = vec!["template", release.as_str(), dir_arg.as_str()];
    args.extend(values.iter().map(String::as_str));
    let text = match run("helm", &args, None) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return UnitOutput {
                findings: vec![not_rendered(
                    &chart_file,
                    Severity::Warning,
                    "this Helm chart was not rendered: `helm` is not installed (not on PATH), so \
                     its templates were not checked"
                        .into(),
                )],
                ..UnitOutput::default()
            };
        }
        Err(message) => {
            return UnitOutput {
                findings: vec![not_rendered(&chart_file, Severity::Error, message)],
                ..UnitOutput::default()
            };
        }
    };
    map_chart_output(dir, shown, &text)
}

/// Maps `helm template` output to the chart's templates through its `# Source:` comments.
fn map_chart_output(dir: &Path, shown: &str, text: &str) -> UnitOutput {
    let name: Arc<str> = Arc::from(format!("{shown} (helm template)"));
    let FileObjects { objects, .. } = manifest::objects_from(&name, yaml::load(&name, text));
    let lines: Vec<&str> = text.lines().collect();
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut out = UnitOutput::default();
    // Each template read once: its shown name and text (`None`: it could not be read).
    let mut templates: HashMap<PathBuf, Option<FileText>> = HashMap::new();
    for object in objects {
        let start = object.positions.pos().line as usize;
        // The nearest `# Source:` comment above the object's first line.
        let source = lines[..start.saturating_sub(1).min(lines.len())]
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("# Source: "));
        let template = source.and_then(|s| {
            // `<chart>/templates/x.yaml`, `<chart>/charts/<sub>/templates/x.yaml`
            let rest: PathBuf = Path::new(s).components().skip(1).collect();
            let path = canonical.join(rest);
            let entry = templates.entry(path.clone()).or_insert_with(|| {
                let text = std::fs::read_to_string(&path).ok()?;
                Some((Arc::from(display(&path, dir, shown)), Arc::from(text)))
            });
            entry.clone()
        });
        let Some((file, template_text)) = template else {
            // No template to point at: the chart's own file stands for it.
            let file: Arc<str> = Arc::from(Path::new(shown).join("Chart.yaml").to_string_lossy());
            out.objects
                .push(relocate(object, &file, &PosNode::Scalar(Pos::START)));
            continue;
        };
        let positions = by_keys(&object.positions, &template_text);
        out.objects.push(Object {
            provenance: Provenance {
                file: Arc::clone(&file),
                document: object.provenance.document,
                pointer: object.provenance.pointer,
            },
            positions,
            ..object
        });
    }
    out.sources = templates.into_values().flatten().collect();
    out
}

/// Positions for a rendered document in a template that wrote it: each key at the first line,
/// after its parent's, that starts with `key:` (or `- key:`); what cannot be found takes its
/// parent's position.
fn by_keys(rendered: &PosNode, template: &str) -> PosNode {
    let lines: Vec<&str> = template.lines().collect();
    let first = lines
        .iter()
        .position(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with("{{")
        })
        .unwrap_or(0);
    let start = Pos::new(first as u32 + 1, 1);
    walk_keys(rendered, &lines, first, start)
}

fn walk_keys(node: &PosNode, lines: &[&str], from: usize, here: Pos) -> PosNode {
    match node {
        PosNode::Scalar(_) => PosNode::Scalar(here),
        PosNode::Seq { items, .. } => PosNode::Seq {
            pos: here,
            items: items
                .iter()
                .map(|i| walk_keys(i, lines, from, here))
                .collect(),
        },
        PosNode::Map { entries, .. } => {
            let mut next = from;
            let entries = entries
                .iter()
                .map(|e| {
                    let found = find_key(lines, from, &e.key);
                    let (key_pos, after) = match found {
                        Some((line, col)) => {
                            next = next.max(line);
                            (Pos::new(line as u32 + 1, col as u32 + 1), line + 1)
                        }
                        None => (here, from),
                    };
                    MapEntry {
                        key: e.key.clone(),
                        key_pos,
                        value: walk_keys(&e.value, lines, after, key_pos),
                    }
                })
                .collect();
            PosNode::Map { pos: here, entries }
        }
    }
}

/// The first line at or after `from` whose text starts with `key:` (after indentation and an
/// optional `- `), and the key's column (0-based).
fn find_key(lines: &[&str], from: usize, key: &str) -> Option<(usize, usize)> {
    lines.iter().enumerate().skip(from).find_map(|(n, l)| {
        let indent = l.len() - l.trim_start().len();
        let t = &l[indent..];
        let (t, dash) = match t.strip_prefix("- ") {
            Some(rest) => (
                rest.trim_start(),
                l.len() - rest.trim_start().len() - indent,
            ),
            None => (t, 0),
        };
        let rest = t
            .strip_prefix(key)
            .or_else(|| t.strip_prefix(&format!("\"{key}\"")))?;
        rest.starts_with(':')
            .then(|| (n, l[..indent].chars().count() + dash))
    })
}

// ---------------------------------------------------------------------------------------------
// Kustomizations

fn kustomization(dir: &Path, shown: &str) -> UnitOutput {
    let Some((_, file)) = unit_file(dir) else {
        return UnitOutput::default();
    };
    let file_shown = display(
        &file.canonicalize().unwrap_or_else(|_| file.clone()),
        dir,
        shown,
    );
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let spec = yaml::load(&Arc::from(file_shown.as_str()), &text)
        .documents
        .into_iter()
        .next()
        .map(|d| d.value)
        .unwrap_or(Value::Null);
    // A Component is applied by the kustomizations that use it, never built on its own.
    if spec.get("kind").and_then(Value::as_str) == Some("Component") {
        return UnitOutput::default();
    }
    match build(dir) {
        Ok(Some((wrapper, output))) => {
            let out = map_kustomize_output(dir, shown, &wrapper, &output);
            let _ = std::fs::remove_dir_all(&wrapper);
            out
        }
        Ok(None) => resources_as_they_are(dir, shown, &file_shown, &spec),
        Err(message) => UnitOutput {
            findings: vec![not_rendered(&file_shown, Severity::Error, message)],
            ..UnitOutput::default()
        },
    }
}

/// Builds `dir` through a wrapper kustomization with origin annotations on. Returns the
/// wrapper's directory (origin paths are relative to it) and the output; `None` when neither
/// kustomize nor kubectl is installed.
fn build(dir: &Path) -> Result<Option<(PathBuf, String)>, String> {
    static WRAPPERS: AtomicUsize = AtomicUsize::new(0);
    let target = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let wrapper = std::env::temp_dir()
        .canonicalize()
        .unwrap_or_else(|_| std::env::temp_dir())
        .join(format!(
            "tally-kustomize-{}-{}",
            std::process::id(),
            WRAPPERS.fetch_add(1, Ordering::Relaxed)
        ));
    std::fs::create_dir_all(&wrapper).map_err(|e| format!("{}: {e}", wrapper.display()))?;
    // kustomize refuses absolute resource paths; a relative one from the wrapper is accepted.
    let relative = relative_path(&wrapper, &target);
    let spec = format!(
        "resources:\n- {}\nbuildMetadata: [originAnnotations]\n",
        serde_json::Value::from(relative.to_string_lossy().into_owned())
    );
    let result = std::fs::write(wrapper.join("kustomization.yaml"), spec)
        .map_err(|e| format!("{}: {e}", wrapper.display()))
        .and_then(|()| {
            let w = wrapper.to_string_lossy().into_owned();
            let restrictor = "--load-restrictor=LoadRestrictionsNone";
            match run("kustomize", &["build", restrictor, &w], None)? {
                Some(out) => Ok(Some(out)),
                None => run("kubectl", &["kustomize", restrictor, &w], None),
            }
        });
    match result {
        Ok(Some(out)) => Ok(Some((wrapper, out))),
        other => {
            let _ = std::fs::remove_dir_all(&wrapper);
            other.map(|_| None)
        }
    }
}

/// `to` relative to `from` (both absolute): `../../x/y`.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for c in &to[common..] {
        path.push(c.as_os_str());
    }
    path
}

/// `base.join(rel)` with `.` and `..` resolved lexically.
fn normalise(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A source file read once per unit: its shown name, text, and documents.
struct SourceFile {
    shown: Arc<str>,
    text: Arc<str>,
    documents: Vec<(Value, PosNode)>,
    findings: Vec<Finding>,
}

fn map_kustomize_output(dir: &Path, shown: &str, wrapper: &Path, text: &str) -> UnitOutput {
    let name: Arc<str> = Arc::from(format!("{shown} (kustomize build)"));
    let FileObjects { objects, .. } = manifest::objects_from(&name, yaml::load(&name, text));
    let mut files: HashMap<PathBuf, Option<SourceFile>> = HashMap::new();
    let mut out = UnitOutput::default();
    let kustomization_file = unit_file(dir).map(|(_, f)| f);
    for mut object in objects {
        let origin = take_origin(&mut object.value);
        let path = origin
            .as_deref()
            .and_then(|o| origin_field(o, "path").or_else(|| origin_field(o, "configuredIn")))
            .map(|p| normalise(wrapper, &p))
            .or_else(|| kustomization_file.clone());
        let source = path.and_then(|p| {
            files
                .entry(p.clone())
                .or_insert_with(|| read_source_file(&p, dir, shown))
                .as_ref()
        });
        let Some(source) = source else {
            out.objects.push(object);
            continue;
        };
        let (document, matched) = matching_document(&source.documents, &object.id);
        let positions = match matched {
            Some(pos) => remap(&object.positions, pos, pos.pos()),
            None => flat(&object.positions, Pos::START),
        };
        out.objects.push(Object {
            provenance: Provenance {
                file: Arc::clone(&source.shown),
                document,
                pointer: String::new(),
            },
            positions,
            ..object
        });
    }
    for source in files.into_values().flatten() {
        out.findings.extend(source.findings);
        out.sources.push((source.shown, source.text));
    }
    out
}

fn read_source_file(path: &Path, dir: &Path, shown: &str) -> Option<SourceFile> {
    let text = std::fs::read_to_string(path).ok()?;
    let shown: Arc<str> = Arc::from(display(path, dir, shown));
    let loaded = yaml::load(&shown, &text);
    let mut findings = loaded.findings;
    let documents = loaded
        .documents
        .into_iter()
        .map(|d| {
            // The file's own YAML problems (duplicate keys, 1.1 traps) are its lines' business.
            findings.extend(d.findings);
            (d.value, d.positions)
        })
        .collect();
    Some(SourceFile {
        shown,
        text: Arc::from(text),
        documents,
        findings,
    })
}

/// The document of a resource file that an object came from: same kind and name, else the only
/// one of that kind, else the first.
fn matching_document<'a>(
    documents: &'a [(Value, PosNode)],
    id: &ObjectRef,
) -> (usize, Option<&'a PosNode>) {
    let kind_of = |v: &Value| v.get("kind").and_then(Value::as_str).map(str::to_owned);
    let name_of = |v: &Value| {
        v.get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let same_kind: Vec<usize> = (0..documents.len())
        .filter(|&i| kind_of(&documents[i].0).as_deref() == Some(id.kind.as_str()))
        .collect();
    let exact = same_kind
        .iter()
        .copied()
        .find(|&i| name_of(&documents[i].0).as_deref() == Some(id.name.as_str()));
    let chosen = exact
        .or_else(|| (same_kind.len() == 1).then(|| same_kind[0]))
        .or_else(|| (!documents.is_empty()).then_some(0));
    match chosen {
        Some(i) => (i, Some(&documents[i].1)),
        None => (0, None),
    }
}

/// Removes kustomize's origin annotation (and `annotations` if it leaves it empty); returns it.
fn take_origin(value: &mut Value) -> Option<String> {
    let metadata = value.get_mut("metadata")?.as_object_mut()?;
    let annotations = metadata.get_mut("annotations")?.as_object_mut()?;
    let origin = annotations.remove(ORIGIN_ANNOTATION)?;
    if annotations.is_empty() {
        metadata.remove("annotations");
    }
    origin.as_str().map(str::to_owned)
}

/// `path: x.yaml` from an origin annotation's little YAML document.
fn origin_field(origin: &str, field: &str) -> Option<String> {
    origin.lines().find_map(|l| {
        let value = l.trim().strip_prefix(field)?.strip_prefix(':')?.trim();
        (!value.is_empty()).then(|| value.trim_matches(['"', '\'']).to_owned())
    })
}

/// `rendered`'s positions taken from `source` where the same path exists there, else from the
/// nearest enclosing one.
fn remap(rendered: &PosNode, source: &PosNode, here: Pos) -> PosNode {
    match (rendered, source) {
        (PosNode::Map { entries, .. }, PosNode::Map { pos, .. }) => PosNode::Map {
            pos: *pos,
            entries: entries
                .iter()
                .map(|e| match source.entry(&e.key) {
                    Some(s) => MapEntry {
                        key: e.key.clone(),
                        key_pos: s.key_pos,
                        value: remap(&e.value, &s.value, s.key_pos),
                    },
                    None => MapEntry {
                        key: e.key.clone(),
                        key_pos: *pos,
                        value: flat(&e.value, *pos),
                    },
                })
                .collect(),
        },
        (PosNode::Seq { items, .. }, PosNode::Seq { pos, items: s }) => PosNode::Seq {
            pos: *pos,
            items: items
                .iter()
                .enumerate()
                .map(|(i, item)| match s.get(i) {
                    Some(si) => remap(item, si, si.pos()),
                    None => flat(item, *pos),
                })
                .collect(),
        },
        (PosNode::Scalar(_), s) => PosNode::Scalar(s.pos()),
        (other, _) => flat(other, here),
    }
}

/// The same shape with every position at `pos`.
fn flat(node: &PosNode, pos: Pos) -> PosNode {
    match node {
        PosNode::Scalar(_) => PosNode::Scalar(pos),
        PosNode::Seq { items, .. } => PosNode::Seq {
            pos,
            items: items.iter().map(|i| flat(i, pos)).collect(),
        },
        PosNode::Map { entries, .. } => PosNode::Map {
            pos,
            entries: entries
                .iter()
                .map(|e| MapEntry {
                    key: e.key.clone(),
                    key_pos: pos,
                    value: flat(&e.value, pos),
                })
                .collect(),
        },
    }
}

fn relocate(object: Object, file: &Arc<str>, positions: &PosNode) -> Object {
    Object {
        provenance: Provenance {
            file: Arc::clone(file),
            document: 0,
            pointer: String::new(),
        },
        positions: flat(&object.positions, positions.pos()),
        ..object
    }
}

/// Without kustomize or kubectl: the files under `resources` judged as they are.
fn resources_as_they_are(dir: &Path, shown: &str, file_shown: &str, spec: &Value) -> UnitOutput {
    let mut out = UnitOutput {
        findings: vec![not_rendered(
            file_shown,
            Severity::Info,
            "this kustomization was not built: neither `kustomize` nor `kubectl` is installed; \
             the files under `resources` were checked as they are, without patches"
                .into(),
        )],
        ..UnitOutput::default()
    };
    let resources = spec
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for resource in resources {
        let path = dir.join(resource);
        // Directories are kustomizations of their own (judged as units); URLs are not read.
        if resource.contains("://") || !path.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name: Arc<str> = Arc::from(Path::new(shown).join(resource).to_string_lossy());
        let parsed = manifest::objects_from(&name, yaml::load(&name, &text));
        out.objects.extend(parsed.objects);
        out.findings.extend(parsed.findings);
        out.sources.push((name, Arc::from(text)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_templates_in_order() {
        let template = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: \"{{ .Values.image }}\"\n";
        let name: Arc<str> = Arc::from("out");
        let rendered = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: r\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:latest\n";
        let doc = yaml::load(&name, rendered).documents.remove(0).positions;
        let mapped = by_keys(&doc, template);
        assert_eq!(
            mapped
                .locate("/spec/template/spec/containers/0/image")
                .best(),
            Pos::new(10, 11)
        );
        assert_eq!(mapped.locate("/metadata/name").best(), Pos::new(4, 3));
    }

    #[test]
    fn origin_annotations_are_read_and_removed() {
        let mut v = serde_json::json!({"metadata": {"name": "a", "annotations": {
            ORIGIN_ANNOTATION: "path: ../base/web.yaml\n"}}});
        let origin = take_origin(&mut v);
        assert_eq!(
            origin.as_deref().and_then(|o| origin_field(o, "path")),
            Some("../base/web.yaml".into())
        );
        assert_eq!(v, serde_json::json!({"metadata": {"name": "a"}}));
    }

    #[test]
    fn relative_paths_climb_to_the_common_root() {
        assert_eq!(
            relative_path(Path::new("/tmp/w"), Path::new("/work/x/k")),
            PathBuf::from("../../work/x/k")
        );
        assert_eq!(
            normalise(Path::new("/tmp/w"), "../../work/x/k/a.yaml"),
            PathBuf::from("/work/x/k/a.yaml")
        );
    }
}
