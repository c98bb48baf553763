//! The gate's pipeline over plain manifests: discover, read and parse in parallel, learn CRDs,
//! validate every object against its schema and the per-object policies in one parallel pass,
//! run the policies that judge the whole set, and return the sorted findings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::finding::{Finding, RuleDoc, Severity, drop_consequences, sort_findings};
use crate::manifest::{FileObjects, objects_from};
use crate::object::{Object, ObjectRef};
use crate::policy::{PolicyConfig, PolicyEngine, SetIndex};
use crate::schema::{SchemaError, SchemaOptions, SchemaRegistry};
use crate::source::{self, Input, SourceError, SourceText};
use crate::unit::{self, UnitKind, UnitOptions};
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
    /// Schemas only: no policy runs (`--no-policies`).
    pub skip_policies: bool,
    /// How charts and kustomizations met in the inputs are rendered (`--helm-values`).
    pub units: UnitOptions,
    /// What reading the input may cost (`--max-file-size`, `--max-input-size`,
    /// `--max-documents`, `--max-depth`).
    pub limits: InputLimits,
}

/// What one run may read. The defaults are far above any real repo; a file that crosses one is
/// an `input-limit` finding, not read (or not read further), and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes read in one run, over every file: a file that would take the run past it (in
    /// input order) is not read.
    pub max_total_bytes: u64,
    /// Nesting depth and documents per file.
    pub yaml: yaml::YamlLimits,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_file_bytes: 256 << 20,
            max_total_bytes: 2 << 30,
            yaml: yaml::YamlLimits::default(),
        }
    }
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
    texts: HashMap<Arc<str>, SourceLines>,
}

/// A file's text and, built on first use, where each of its lines starts.
#[derive(Debug, Clone)]
struct SourceLines {
    text: Arc<str>,
    index: std::sync::OnceLock<LineIndex>,
}

/// Where each line starts and, on long lines, where every [`CHECKPOINT`]th character starts: a
/// column on a 1 MB minified line is found without walking the line from its start.
#[derive(Debug, Default, Clone)]
struct LineIndex {
    starts: Vec<u32>,
    /// Per long line (by 0-based index): the byte offset of characters 0, CHECKPOINT, 2·CHECKPOINT, …
    /// (`None` for a long line that is all ASCII, where a column is a byte offset).
    checkpoints: HashMap<u32, Option<Vec<u32>>>,
}

/// Lines longer than this (in bytes) are quoted as a window around the column.
const LONG_LINE: usize = 1024;
/// Characters between two checkpoints of a long line.
const CHECKPOINT: usize = 256;
/// Characters a window keeps before the column.
const WINDOW_BEFORE: usize = 60;
/// Characters a window keeps from the column on.
const WINDOW_AFTER: usize = 200;

impl LineIndex {
    fn build(text: &str) -> LineIndex {
        let starts: Vec<u32> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i as u32 + 1))
            .collect();
        let mut checkpoints = HashMap::new();
        for (i, w) in starts.windows(2).enumerate() {
            Self::index_long(text, i, w[0] as usize, w[1] as usize, &mut checkpoints);
        }
        if let Some(&last) = starts.last() {
            let i = starts.len() - 1;
            Self::index_long(text, i, last as usize, text.len(), &mut checkpoints);
        }
        LineIndex {
            starts,
            checkpoints,
        }
    }

    fn index_long(
        text: &str,
        index: usize,
        start: usize,
        end: usize,
        out: &mut HashMap<u32, Option<Vec<u32>>>,
    ) {
        if end - start <= LONG_LINE {
            return;
        }
        let line = &text[start..end];
        let marks = (!line.is_ascii()).then(|| {
            line.char_indices()
                .step_by(CHECKPOINT)
                .map(|(b, _)| b as u32)
                .collect()
        });
        out.insert(index as u32, marks);
    }
}

/// A piece of a source line around a finding's column: the whole line when it is short, a window
/// of it when it is long (minified JSON), so quoting a line costs the same on any line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineWindow<'a> {
    /// The text shown, without the line ending.
    pub text: &'a str,
    /// The finding's column within `text` (1-based, in characters).
    pub column: u32,
    /// Part of the line before `text` is left out.
    pub cut_before: bool,
    /// Part of the line after `text` is left out.
    pub cut_after: bool,
    /// The line starts a flow collection (`{` or `[`): JSON, or YAML flow style.
    pub flow_line: bool,
}

impl Sources {
    /// Records a file's text.
    pub fn insert(&mut self, file: Arc<str>, text: Arc<str>) {
        let index = std::sync::OnceLock::new();
        self.texts.insert(file, SourceLines { text, index });
    }

    /// The text of a file, when it was read as text.
    pub fn text(&self, file: &str) -> Option<&str> {
        self.texts.get(file).map(|t| &*t.text)
    }

    fn index_of(&self, file: &str) -> Option<(&str, &LineIndex)> {
        let source = self.texts.get(file)?;
        let text = &*source.text;
        Some((text, source.index.get_or_init(|| LineIndex::build(text))))
    }

    /// How many lines `file` has (a final line ending starts no line).
    pub fn line_count(&self, file: &str) -> Option<usize> {
        let (text, index) = self.index_of(file)?;
        let n = index.starts.len();
        Some(if text.ends_with('\n') || text.is_empty() {
            n - 1
        } else {
            n
        })
    }

    /// Line `line` (1-based) of `file`, without its line ending.
    pub fn line(&self, file: &str, line: u32) -> Option<&str> {
        let (text, index) = self.index_of(file)?;
        Self::line_in(text, index, line)
    }

    fn line_in<'t>(text: &'t str, index: &LineIndex, line: u32) -> Option<&'t str> {
        let starts = &index.starts;
        let i = line.checked_sub(1)? as usize;
        let start = *starts.get(i)? as usize;
        let end = starts.get(i + 1).map_or(text.len(), |&e| e as usize);
        let l = &text[start..end];
        if start == text.len() && i > 0 {
            return None;
        }
        Some(
            l.strip_suffix('\n')
                .map_or(l, |l| l.strip_suffix('\r').unwrap_or(l)),
        )
    }

    /// The part of line `line` of `file` to quote for a finding at `column`: the whole line, or
    /// on a long line a window around the column. Its cost does not grow with the line.
    pub fn window(&self, file: &str, line: u32, column: u32) -> Option<LineWindow<'_>> {
        let (text, index) = self.index_of(file)?;
        let l = Self::line_in(text, index, line)?;
        let flow_line = matches!(l.trim_start().as_bytes().first(), Some(b'{' | b'['));
        let whole = LineWindow {
            text: l,
            column,
            cut_before: false,
            cut_after: false,
            flow_line,
        };
        let Some(marks) = index.checkpoints.get(&(line - 1)) else {
            return Some(whole);
        };
        let target = column.max(1) as usize - 1;
        // The byte offset of a character index, from the nearest checkpoint before it.
        let offset = |chars: usize| -> usize {
            match marks {
                None => chars.min(l.len()),
                Some(marks) => {
                    let k = (chars / CHECKPOINT).min(marks.len().saturating_sub(1));
                    let from = marks.get(k).map_or(0, |&b| b as usize);
                    let rest = chars - k * CHECKPOINT;
                    l[from..]
                        .char_indices()
                        .nth(rest)
                        .map_or(l.len(), |(b, _)| from + b)
                }
            }
        };
        let first = target.saturating_sub(WINDOW_BEFORE);
        let from = offset(first);
        let to = offset(target + WINDOW_AFTER);
        Some(LineWindow {
            text: &l[from..to],
            column: (target - first) as u32 + 1,
            cut_before: from > 0,
            cut_after: to < l.len(),
            flow_line,
        })
    }

    /// Every file and its text.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>)> {
        self.texts.iter().map(|(name, s)| (name, &s.text))
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
    /// Every object checked, with its file, in input order. Reports that list what passed (JUnit
    /// test cases) need it; findings alone only name what failed.
    pub checked: Vec<(Arc<str>, ObjectRef)>,
    /// The Kubernetes version validated against.
    pub kubernetes_version: String,
    /// Source texts, for reports that quote lines.
    pub sources: Sources,
    /// Files read that hold no Kubernetes object (configuration, data): set aside, not judged.
    pub skipped: Vec<Arc<str>>,
    /// Docs of rules the gate does not know itself, raised by the caller that built the report
    /// (the repo layout's rules). Reports look a rule up here first, then in the gate's own
    /// catalog ([`report::catalog`](crate::report::catalog)); empty for a plain gate run.
    pub rule_docs: Vec<RuleDoc>,
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
    /// Inputs that hold no Kubernetes object (read, set aside, not judged).
    pub skipped: Vec<Arc<str>>,
}

/// Reads and parses inputs in parallel. A file that cannot be read is a finding for it
/// (`file-unreadable`), never the end of the run.
pub fn load_inputs(inputs: &[Input]) -> Result<Loaded, GateError> {
    load_inputs_with(inputs, &UnitOptions::default())
}

/// A file's size when it is a regular file on disk (known before reading it).
fn disk_size(input: &Input) -> Option<u64> {
    match input {
        Input::File(path) => std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
        _ => None,
    }
}

/// Reads, decodes and parses one file. Never fails: a file that cannot be read is a finding.
fn file_objects(
    input: &Input,
    name: Arc<str>,
    limits: &InputLimits,
    over_total: bool,
) -> InputObjects {
    let unreadable = |name: Arc<str>, findings: Vec<Finding>| {
        let parsed = FileObjects {
            objects: Vec::new(),
            findings,
            skipped: false,
        };
        (name, Vec::new(), parsed)
    };
    let limit = |message: String| {
        Finding::new(
            yaml::rules::LIMIT,
            Severity::Error,
            &name,
            crate::Pos::START,
            message,
        )
    };
    if over_total {
        let f = limit(format!(
            "the run's input passed {} bytes before this file; it was not read (--max-input-size raises the limit)",
            limits.max_total_bytes
        ));
        return unreadable(name, vec![f]);
    }
    if let Some(size) = disk_size(input).filter(|&n| n > limits.max_file_bytes) {
        let f = limit(format!(
            "this file is {size} bytes, more than {}; it was not read (--max-file-size raises the limit)",
            limits.max_file_bytes
        ));
        return unreadable(name, vec![f]);
    }
    let bytes = match source::read_input(input, &name, limits.max_file_bytes) {
        Ok(bytes) => bytes,
        Err(finding) => return unreadable(name, vec![*finding]),
    };
    if bytes.len() as u64 > limits.max_file_bytes {
        // Stdin, or a file that grew since it was measured.
        let f = limit(format!(
            "this input is more than {} bytes; it was not read (--max-file-size raises the limit)",
            limits.max_file_bytes
        ));
        return unreadable(name, vec![f]);
    }
    let json = matches!(input, Input::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")));
    parse_bytes(name, bytes, json, limits)
}

/// Reads one file's bytes as the gate does (decoding, JSON comments, YAML within `limits`,
/// objects), without touching the disk: the fuzz harness and property tests drive the gate
/// through it. `json` says the file is named `.json`.
pub fn load_bytes(name: &str, bytes: Vec<u8>, json: bool, limits: &InputLimits) -> Loaded {
    let (name, texts, parsed) = parse_bytes(Arc::from(name), bytes, json, limits);
    let mut loaded = Loaded {
        files: 1,
        objects: parsed.objects,
        findings: parsed.findings,
        ..Loaded::default()
    };
    if parsed.skipped {
        loaded.skipped.push(name);
    }
    for (file, text) in texts {
        loaded.sources.insert(file, text);
    }
    loaded
}

fn parse_bytes(name: Arc<str>, bytes: Vec<u8>, json: bool, limits: &InputLimits) -> InputObjects {
    let unreadable = |name: Arc<str>, findings: Vec<Finding>| {
        let parsed = FileObjects {
            objects: Vec::new(),
            findings,
            skipped: false,
        };
        (name, Vec::new(), parsed)
    };
    let (text, shown, mut findings) = match source::decode(&name, bytes) {
        SourceText::Text(text) => (text, None, Vec::new()),
        SourceText::Partly {
            text,
            shown,
            findings,
        } => (text, Some(shown), findings),
        SourceText::Unreadable(finding) => return unreadable(name, vec![*finding]),
    };
    // JSON may indent with tabs; YAML may not. One tab is one column either way.
    let text = if json { detab_indentation(&text) } else { text };
    let mut parsed = match json.then(|| json_comment(&text)).flatten() {
        // YAML would read `// x` as a plain scalar and fail lines later: say what it is, here.
        Some(pos) => FileObjects {
            objects: Vec::new(),
            findings: vec![Finding::new(
                yaml::rules::SYNTAX,
                Severity::Error,
                &name,
                pos,
                "a comment in a JSON file: JSON has no comments, and kubectl and the API server reject the file; remove it",
            )],
            skipped: false,
        },
        None => objects_from(&name, yaml::load_with(&name, &text, &limits.yaml)),
    };
    let nothing = parsed.objects.is_empty() && parsed.findings.is_empty() && !parsed.skipped;
    if nothing && findings.is_empty() {
        parsed.findings.push(Finding::new(
            crate::manifest::rules::EMPTY_FILE,
            Severity::Info,
            &name,
            crate::Pos::START,
            "this file holds no document: it is empty or only comments",
        ));
    }
    findings.append(&mut parsed.findings);
    parsed.findings = findings;
    let shown: Arc<str> = Arc::from(shown.unwrap_or(text));
    (Arc::clone(&name), vec![(name, shown)], parsed)
}

/// Where the first comment (`//` or `/*` outside a string) of a JSON text starts.
fn json_comment(text: &str) -> Option<crate::Pos> {
    let (mut line, mut column) = (1u32, 1u32);
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '/' && matches!(chars.peek(), Some('/' | '*')) {
            return Some(crate::Pos::new(line, column));
        } else if c == '#' {
            // `#` is a YAML comment the parser drops silently; JSON has none either.
            return Some(crate::Pos::new(line, column));
        }
        if c == '\n' {
            line += 1;
            column = 1;
            in_string = false;
        } else {
            column += 1;
        }
    }
    None
}

/// As [`load_inputs`], rendering charts and kustomizations with `units`.
pub fn load_inputs_with(inputs: &[Input], units: &UnitOptions) -> Result<Loaded, GateError> {
    load_inputs_limited(inputs, units, &InputLimits::default())
}

/// As [`load_inputs_with`], within `limits`.
pub fn load_inputs_limited(
    inputs: &[Input],
    units: &UnitOptions,
    limits: &InputLimits,
) -> Result<Loaded, GateError> {
    // The run's total is counted in input order, before reading, so which files are past it does
    // not depend on which thread reads first.
    let mut total = 0u64;
    let over_total: Vec<bool> = inputs
        .iter()
        .map(|input| {
            let size = disk_size(input).unwrap_or(0).min(limits.max_file_bytes);
            let over = total.saturating_add(size) > limits.max_total_bytes;
            if !over {
                total += size;
            }
            over
        })
        .collect();
    let per_file: Vec<InputObjects> = inputs
        .par_iter()
        .zip(over_total)
        .map(|(input, over_total)| {
            let name: Arc<str> = Arc::from(input.display_name());
            if let Input::Unit(kind, dir) = input {
                return Ok(unit_objects(*kind, dir, &name, units));
            }
            Ok(file_objects(input, name, limits, over_total))
        })
        .collect::<Result<_, GateError>>()?;
    let mut loaded = Loaded {
        files: per_file.len(),
        ..Loaded::default()
    };
    for (name, texts, mut parsed) in per_file {
        if parsed.skipped {
            loaded.skipped.push(Arc::clone(&name));
        }
        for (file, text) in texts {
            loaded.sources.insert(file, text);
        }
        loaded.objects.append(&mut parsed.objects);
        loaded.findings.append(&mut parsed.findings);
    }
    Ok(loaded)
}

/// One input read: its name, the texts of the files its findings may quote, its objects.
type InputObjects = (Arc<str>, Vec<(Arc<str>, Arc<str>)>, FileObjects);

/// A chart or kustomization rendered, as one input's worth of objects and texts.
fn unit_objects(
    kind: UnitKind,
    dir: &std::path::Path,
    name: &Arc<str>,
    units: &UnitOptions,
) -> InputObjects {
    let out = unit::load(kind, dir, name, units);
    (
        Arc::clone(name),
        out.sources,
        FileObjects {
            objects: out.objects,
            findings: out.findings,
            skipped: false,
        },
    )
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

/// Schema and policy findings for a set of objects judged as a whole (one run's inputs, or one
/// rendered environment): schemas and per-object policies in one parallel pass, then the
/// policies that look across the set.
pub fn check_set(
    registry: &SchemaRegistry,
    objects: &[Object],
    options: &GateOptions,
) -> Vec<Finding> {
    if options.skip_policies {
        return check_objects(registry, objects);
    }
    let engine = PolicyEngine::new(&options.policy);
    let index = engine.index(objects);
    let mut findings = check_with_policies(registry, &engine, &index, objects);
    findings.extend(engine.check_set(&index));
    findings
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
pub fn validate_paths(paths: &[PathBuf], options: &GateOptions) -> Result<GateReport, GateError> {
    let mut inputs = source::discover(paths, &options.excludes)?;
    inputs.retain(|i| !is_config(i, options.policy.path.as_deref()));
    let mut loaded = load_inputs_limited(&inputs, &options.units, &options.limits)?;
    let mut registry = SchemaRegistry::new(options.schema.clone())?;
    if !options.crds.is_empty() {
        let mut crd_inputs = source::discover(&options.crds, &[])?;
        // A CRD file that is also an input is read once, as an input.
        crd_inputs.retain(|i| inputs.binary_search(i).is_err());
        let crds = load_inputs(&crd_inputs)?;
        // Problems in CRD files matter: they are inputs too, only not checked as objects.
        loaded.findings.extend(crds.findings);
        loaded.findings.extend(registry.add_crds(&crds.objects));
        for (name, text) in crds.sources.iter() {
            loaded.sources.insert(Arc::clone(name), Arc::clone(text));
        }
    }
    loaded.findings.extend(registry.add_crds(&loaded.objects));
    let mut findings = std::mem::take(&mut loaded.findings);
    findings.extend(check_set(&registry, &loaded.objects, options));
    findings.extend(options.policy.findings.iter().cloned());
    if let (Some(file), Some(text)) = (&options.policy.file, &options.policy.text) {
        loaded.sources.insert(Arc::clone(file), Arc::clone(text));
    }
    sort_findings(&mut findings);
    drop_consequences(&mut findings);
    // Kustomizations that share a base map its objects to the same lines: say it once.
    findings.dedup_by(|a, b| {
        (
            a.rule,
            &a.file,
            a.pos,
            &a.message,
            a.severity,
            a.exempted.is_some(),
        ) == (
            b.rule,
            &b.file,
            b.pos,
            &b.message,
            b.severity,
            b.exempted.is_some(),
        )
    });
    Ok(report(loaded, findings, &registry))
}

/// The report of what was `loaded`, judged to `findings` (sorted, the reading findings among
/// them).
pub fn report(loaded: Loaded, findings: Vec<Finding>, registry: &SchemaRegistry) -> GateReport {
    GateReport {
        findings,
        files: loaded.files,
        objects: loaded.objects.len(),
        checked: loaded
            .objects
            .iter()
            .map(|o| (Arc::clone(&o.provenance.file), o.id.clone()))
            .collect(),
        kubernetes_version: registry.kubernetes_version().to_owned(),
        sources: loaded.sources,
        skipped: loaded.skipped,
        rule_docs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_comments_are_found_outside_strings() {
        assert_eq!(
            json_comment("{\n  \"a\": \"http://x/*\",\n  // c\n}"),
            Some(crate::Pos::new(3, 3))
        );
        assert_eq!(
            json_comment("{\"a\": \"\\\"//\"} /* c */"),
            Some(crate::Pos::new(1, 15))
        );
        assert_eq!(json_comment("{\"a#b\": 1}"), None);
    }

    #[test]
    fn source_lines_are_indexed() {
        let mut s = Sources::default();
        s.insert(Arc::from("f"), Arc::from("a\r\nbb\n\nlast"));
        let lines: Vec<_> = (0..=5).map(|n| s.line("f", n)).collect();
        assert_eq!(
            lines,
            [None, Some("a"), Some("bb"), Some(""), Some("last"), None]
        );
        s.insert(Arc::from("g"), Arc::from("x\n"));
        assert_eq!((s.line("g", 1), s.line("g", 2)), (Some("x"), None));
    }
}
