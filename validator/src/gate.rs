//! The gate's pipeline over plain manifests: discover, read and parse in parallel, learn CRDs,
//! validate every object against its schema and the per-object policies in one parallel pass,
//! run the policies that judge the whole set, and return the sorted findings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::finding::{Finding, RuleDoc, Severity, drop_consequences, sort_findings};
use crate::manifest::{FileJudge, FileKind, FileObjects, objects_from};
use crate::object::{Object, ObjectRef};
use crate::policy::{PolicyConfig, PolicyEngine, SetIndex};
use crate::schema::{self, SchemaError, SchemaOptions, SchemaRegistry};
use crate::source::{self, Input, SourceError, SourceText};
use crate::unit::{self, UnitKind, UnitOptions};
use crate::yaml::{self, Reading, Streamed};

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
    match read_file(input, name, limits, over_total) {
        Ok((name, bytes, json)) => parse_bytes(name, bytes, json, limits),
        Err(unreadable) => unreadable,
    }
}

/// An input that was not read or parsed: its findings, no objects.
fn unreadable(name: Arc<str>, findings: Vec<Finding>) -> InputObjects {
    let parsed = FileObjects {
        objects: Vec::new(),
        findings,
        skipped: false,
    };
    (name, Vec::new(), parsed)
}

/// Reads one file's bytes within the limits, with whether it is named `.json`; or, when it
/// cannot be read or is over a limit, the finding that says so.
fn read_file(
    input: &Input,
    name: Arc<str>,
    limits: &InputLimits,
    over_total: bool,
) -> Result<(Arc<str>, Vec<u8>, bool), InputObjects> {
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
        return Err(unreadable(name, vec![f]));
    }
    if let Some(size) = disk_size(input).filter(|&n| n > limits.max_file_bytes) {
        let f = limit(format!(
            "this file is {size} bytes, more than {}; it was not read (--max-file-size raises the limit)",
            limits.max_file_bytes
        ));
        return Err(unreadable(name, vec![f]));
    }
    let bytes = match source::read_input(input, &name, limits.max_file_bytes) {
        Ok(bytes) => bytes,
        Err(finding) => return Err(unreadable(name, vec![*finding])),
    };
    if bytes.len() as u64 > limits.max_file_bytes {
        // Stdin, or a file that grew since it was measured.
        let f = limit(format!(
            "this input is more than {} bytes; it was not read (--max-file-size raises the limit)",
            limits.max_file_bytes
        ));
        return Err(unreadable(name, vec![f]));
    }
    let json = matches!(input, Input::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")));
    Ok((name, bytes, json))
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
    let prepared = match Prepared::new(name, bytes, json) {
        Ok(prepared) => prepared,
        Err(unreadable) => return unreadable,
    };
    let parsed = match prepared.comment_finding() {
        Some(finding) => FileObjects {
            objects: Vec::new(),
            findings: vec![finding],
            skipped: false,
        },
        None => objects_from(
            &prepared.name,
            yaml::load_with(&prepared.name, &prepared.text, &limits.yaml),
        ),
    };
    prepared.finish(parsed, None).0
}

/// A file decoded and ready to parse.
struct Prepared {
    name: Arc<str>,
    /// What is parsed: JSON's indentation detabbed, documents with invalid bytes blanked.
    text: Arc<str>,
    /// What reports quote, when it is not `text`.
    shown: Option<String>,
    /// Findings of decoding.
    findings: Vec<Finding>,
    /// Named `.json`.
    json: bool,
}

impl Prepared {
    /// Decodes a file's bytes; a file that is not text at all is its finding.
    fn new(name: Arc<str>, bytes: Vec<u8>, json: bool) -> Result<Prepared, InputObjects> {
        let (text, shown, findings) = match source::decode(&name, bytes) {
            SourceText::Text(text) => (text, None, Vec::new()),
            SourceText::Partly {
                text,
                shown,
                findings,
            } => (text, Some(shown), findings),
            SourceText::Unreadable(finding) => return Err(unreadable(name, vec![*finding])),
        };
        // JSON may indent with tabs; YAML may not. One tab is one column either way.
        let text = if json && text.contains('\t') {
            detab_indentation(&text)
        } else {
            text
        };
        // Shared from the start: the run keeps the text for reports, and the second pass
        // reads it again.
        let text: Arc<str> = Arc::from(text);
        Ok(Prepared {
            name,
            text,
            shown,
            findings,
            json,
        })
    }

    /// A comment in a JSON file: YAML would read `// x` as a plain scalar and fail lines later,
    /// so it is said here, and the file is not parsed.
    fn comment_finding(&self) -> Option<Finding> {
        let pos = self.json.then(|| json_comment(&self.text)).flatten()?;
        Some(Finding::new(
            yaml::rules::SYNTAX,
            Severity::Error,
            &self.name,
            pos,
            "a comment in a JSON file: JSON has no comments, and kubectl and the API server reject the file; remove it",
        ))
    }

    /// The input read: the decoding findings before `parsed`'s, a note for a file with nothing
    /// in it, the text to quote, and the text that was parsed (the same `Arc` when they are
    /// one). `objects` counts the objects when `parsed` does not hold them.
    fn finish(self, mut parsed: FileObjects, objects: Option<usize>) -> (InputObjects, Arc<str>) {
        let mut findings = self.findings;
        let no_objects = objects.map_or(parsed.objects.is_empty(), |n| n == 0);
        let nothing = no_objects && parsed.findings.is_empty() && !parsed.skipped;
        if nothing && findings.is_empty() {
            parsed.findings.push(Finding::new(
                crate::manifest::rules::EMPTY_FILE,
                Severity::Info,
                &self.name,
                crate::Pos::START,
                "this file holds no document: it is empty or only comments",
            ));
        }
        findings.append(&mut parsed.findings);
        parsed.findings = findings;
        let shown = match self.shown {
            Some(shown) => Arc::from(shown),
            None => Arc::clone(&self.text),
        };
        let texts = vec![(Arc::clone(&self.name), shown)];
        ((self.name, texts, parsed), self.text)
    }
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
    let over_total = over_totals(inputs, limits);
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

/// Per input, whether it would take the run past `--max-input-size`. The run's total is counted
/// in input order, before reading, so which files are past it does not depend on which thread
/// reads first.
fn over_totals(inputs: &[Input], limits: &InputLimits) -> Vec<bool> {
    let mut total = 0u64;
    inputs
        .iter()
        .map(|input| {
            let size = disk_size(input).unwrap_or(0).min(limits.max_file_bytes);
            let over = total.saturating_add(size) > limits.max_total_bytes;
            if !over {
                total += size;
            }
            over
        })
        .collect()
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
    index: &SetIndex,
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
///
/// Files are streamed, one document at a time, in two passes, so what a run holds is the text
/// of its files (for reports), their findings and what cross-object rules need to know (the
/// [`SetIndex`]), never every object at once. The first pass reads each document, turns it into
/// objects, gathers their findings, identities, CRDs and what the index needs, and judges at
/// once the objects whose checks ask nothing of the rest of the set (most kinds: a ConfigMap,
/// a Role); the second reads again the files that hold the others (workloads, Services,
/// Ingresses, and any object a CRD of the set defines) and judges those with the whole set's
/// index. Findings are the ones [`check_set`] gives the same objects loaded whole, in the same
/// order.
pub fn validate_paths(paths: &[PathBuf], options: &GateOptions) -> Result<GateReport, GateError> {
    let mut inputs = source::discover(paths, &options.excludes)?;
    inputs.retain(|i| !is_config(i, options.policy.path.as_deref()));
    let policies = !options.skip_policies;
    let mut registry = SchemaRegistry::new(options.schema.clone())?;
    let mut sources = Sources::default();
    // Findings of `--crds` files, said after the inputs' own.
    let mut crd_findings = Vec::new();
    if !options.crds.is_empty() {
        let mut crd_inputs = source::discover(&options.crds, &[])?;
        // A CRD file that is also an input is read once, as an input.
        crd_inputs.retain(|i| inputs.binary_search(i).is_err());
        let crds = load_inputs(&crd_inputs)?;
        // Problems in CRD files matter: they are inputs too, only not checked as objects.
        crd_findings.extend(crds.findings);
        crd_findings.extend(registry.add_crds(&crds.objects));
        for (name, text) in crds.sources.iter() {
            sources.insert(Arc::clone(name), Arc::clone(text));
        }
    }
    let engine = PolicyEngine::new(&options.policy);
    let first = Judge {
        registry: &registry,
        policies: policies.then_some(&engine),
        index: None,
        limits: &options.limits,
    };
    let over_total = over_totals(&inputs, &options.limits);
    let mut scanned: Vec<Scanned> = inputs
        .par_iter()
        .zip(over_total)
        .map(|(input, over_total)| {
            let name: Arc<str> = Arc::from(input.display_name());
            if let Input::Unit(kind, dir) = input {
                return Scanned::whole(unit_objects(*kind, dir, &name, &options.units), policies);
            }
            match read_file(input, name, &options.limits, over_total) {
                Ok((name, bytes, json)) => scan_bytes(name, bytes, json, &first),
                Err(unreadable) => Scanned::whole(unreadable, policies),
            }
        })
        .collect();
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    let mut checked = Vec::new();
    let mut index = SetIndex::default();
    for input in &mut scanned {
        findings.append(&mut input.findings);
        for (file, text) in input.texts.drain(..) {
            sources.insert(file, text);
        }
        if input.skipped {
            skipped.push(Arc::clone(&input.name));
        }
        index.append(std::mem::take(&mut input.index));
    }
    findings.append(&mut crd_findings);
    let input_crds: Vec<Object> = scanned
        .iter_mut()
        .flat_map(|s| std::mem::take(&mut s.crds))
        .collect();
    findings.extend(registry.add_crds(&input_crds));
    // An object judged early whose kind a CRD of the inputs defines is judged again: that CRD
    // gives it a schema and a scope the first pass did not know.
    let defined: Vec<(&str, &str)> = input_crds.iter().filter_map(crd_kind).collect();
    for input in &mut scanned {
        input.judge_again_if(|id| {
            defined.iter().any(|(group, kind)| {
                id.kind == *kind
                    && (id.group() == *group
                        || id
                            .api_version
                            .strip_prefix(group)
                            .is_some_and(|v| v.starts_with('/')))
            })
        });
    }
    let second = Judge {
        registry: &registry,
        policies: policies.then_some(&engine),
        index: Some(&index),
        limits: &options.limits,
    };
    let judged: Vec<Vec<Option<Vec<Finding>>>> =
        scanned.par_iter_mut().map(|s| second.input(s)).collect();
    for input in &mut scanned {
        checked.append(&mut input.checked);
    }
    drop(scanned);
    let set = if policies {
        engine.check_set(&index)
    } else {
        Vec::new()
    };
    drop(index);
    // Findings are most of what a run holds at its end: one allocation for all of them.
    let count: usize = judged.iter().flatten().flatten().map(Vec::len).sum();
    findings.reserve_exact(count + set.len() + options.policy.findings.len());
    findings.extend(judged.into_iter().flatten().flatten().flatten());
    findings.extend(set);
    findings.extend(options.policy.findings.iter().cloned());
    if let (Some(file), Some(text)) = (&options.policy.file, &options.policy.text) {
        sources.insert(Arc::clone(file), Arc::clone(text));
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
    Ok(GateReport {
        findings,
        files: inputs.len(),
        objects: checked.len(),
        checked,
        kubernetes_version: registry.kubernetes_version().to_owned(),
        sources,
        skipped,
        rule_docs: Vec::new(),
    })
}

/// The group and kind a CRD defines, when it names both.
fn crd_kind(crd: &Object) -> Option<(&str, &str)> {
    let spec = crd.value.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let kind = spec.pointer("/names/kind")?.as_str()?;
    Some((group, kind))
}

/// One input after the first pass of [`validate_paths`]: what it said, what it holds, and how
/// the second pass gets back the objects it has still to judge.
#[derive(Debug)]
struct Scanned {
    name: Arc<str>,
    /// Texts its findings may quote.
    texts: Vec<(Arc<str>, Arc<str>)>,
    /// Findings of reading it (decoding, YAML, structure), in the order a whole load gives.
    findings: Vec<Finding>,
    /// Read and set aside: it holds no Kubernetes object.
    skipped: bool,
    /// Its objects' files and identities, in order.
    checked: Vec<(Arc<str>, ObjectRef)>,
    /// Per object, in order: its schema and policy findings when the first pass could judge it.
    verdicts: Vec<Option<Vec<Finding>>>,
    /// What cross-object rules need to know of its objects.
    index: SetIndex,
    /// Its CustomResourceDefinitions, whole (they supply schemas).
    crds: Vec<Object>,
    /// Where its objects come from in the second pass.
    again: Again,
}

/// How the second pass gets an input's objects.
#[derive(Debug)]
enum Again {
    /// It has none.
    Nothing,
    /// Read the text again, the way the first pass ended reading it: only the documents still
    /// to judge, in parallel, when each can be cut out of the stream (`documents`), else whole.
    Reread {
        text: Arc<str>,
        reading: Reading,
        documents: Vec<DocumentPlace>,
    },
    /// Kept from the first pass (a rendered chart or kustomization).
    Kept(Vec<Object>),
}

/// Final verdicts on some objects, by their place in their input.
type Verdicts = Vec<(usize, Vec<Finding>)>;

/// Where a document of a file read whole starts and which of the file's objects it holds.
#[derive(Debug, Clone, Copy)]
struct DocumentPlace {
    /// Its first line (0-based), when it can be read again on its own.
    start_line: Option<u32>,
    /// Its first object's place in the file's objects, and how many it holds.
    first_object: usize,
    objects: usize,
}

/// Objects judged together: enough to keep both cores busy, few enough that a batch of ordinary
/// objects costs a few megabytes.
const BATCH: usize = 128;

impl Scanned {
    /// An input read whole (a rendered unit, or one that could not be read): its objects are
    /// kept for the second pass.
    fn whole((name, texts, parsed): InputObjects, policies: bool) -> Scanned {
        let mut index = SetIndex::default();
        let mut crds = Vec::new();
        let mut checked = Vec::with_capacity(parsed.objects.len());
        for o in &parsed.objects {
            checked.push((Arc::clone(&o.provenance.file), o.id.clone()));
            if policies {
                index.add(o);
            }
            if schema::is_crd(o) {
                crds.push(o.clone());
            }
        }
        let verdicts = vec![None; checked.len()];
        let again = if parsed.objects.is_empty() {
            Again::Nothing
        } else {
            Again::Kept(parsed.objects)
        };
        Scanned {
            name,
            texts,
            findings: parsed.findings,
            skipped: parsed.skipped,
            checked,
            verdicts,
            index,
            crds,
            again,
        }
    }

    /// Forgets the early verdicts on objects `doubtful` picks.
    fn judge_again_if(&mut self, doubtful: impl Fn(&ObjectRef) -> bool) {
        for (verdict, (_, id)) in self.verdicts.iter_mut().zip(&self.checked) {
            if verdict.is_some() && doubtful(id) {
                *verdict = None;
            }
        }
    }
}

/// What the first pass keeps of one file's documents while it reads them.
struct FirstPass<'j> {
    judge: &'j Judge<'j>,
    file_judge: FileJudge,
    /// Findings about its documents and objects.
    findings: Vec<Finding>,
    checked: Vec<(Arc<str>, ObjectRef)>,
    verdicts: Vec<Option<Vec<Finding>>>,
    /// Objects waiting to be judged, with their place in `verdicts`.
    batch: Vec<(usize, Object)>,
    index: SetIndex,
    crds: Vec<Object>,
    documents: Vec<DocumentPlace>,
}

impl<'j> FirstPass<'j> {
    fn new(judge: &'j Judge<'j>) -> FirstPass<'j> {
        FirstPass {
            judge,
            file_judge: FileJudge::default(),
            findings: Vec::new(),
            checked: Vec::new(),
            verdicts: Vec::new(),
            batch: Vec::new(),
            index: SetIndex::default(),
            crds: Vec::new(),
            documents: Vec::new(),
        }
    }

    fn document(&mut self, file: &Arc<str>, doc: yaml::YamlDocument) {
        let start_line = doc.start_line;
        let mut read = self.file_judge.document(file, doc);
        self.documents.push(DocumentPlace {
            start_line,
            first_object: self.checked.len(),
            objects: read.objects.len(),
        });
        self.findings.append(&mut read.findings);
        for o in read.objects {
            self.checked
                .push((Arc::clone(&o.provenance.file), o.id.clone()));
            self.verdicts.push(None);
            if self.judge.policies.is_some() {
                self.index.add(&o);
            }
            if schema::is_crd(&o) {
                // A CRD is judged with the schemas of the whole run (its own among them).
                self.crds.push(o);
                continue;
            }
            let worth_trying = match self.judge.policies {
                Some(_) => !SetIndex::likely_consulted_for(&o),
                None => true,
            };
            if worth_trying {
                self.batch.push((self.verdicts.len() - 1, o));
                if self.batch.len() >= BATCH {
                    self.flush();
                }
            }
        }
    }

    /// Judges the waiting objects, keeping the verdicts that do not depend on the set.
    fn flush(&mut self) {
        let judged: Vec<(usize, Option<Vec<Finding>>)> = self
            .batch
            .par_iter()
            .map(|(i, o)| (*i, self.judge.early(o)))
            .collect();
        self.batch.clear();
        for (i, verdict) in judged {
            self.verdicts[i] = verdict;
        }
    }
}

/// The first pass over one file's bytes: decoded, read one document at a time, each document's
/// objects counted, indexed, judged when they can be, and dropped.
fn scan_bytes(name: Arc<str>, bytes: Vec<u8>, json: bool, judge: &Judge<'_>) -> Scanned {
    let policies = judge.policies.is_some();
    let prepared = match Prepared::new(name, bytes, json) {
        Ok(prepared) => prepared,
        Err(unreadable) => return Scanned::whole(unreadable, policies),
    };
    if let Some(finding) = prepared.comment_finding() {
        let parsed = FileObjects {
            objects: Vec::new(),
            findings: vec![finding],
            skipped: false,
        };
        return Scanned::whole(prepared.finish(parsed, None).0, policies);
    }
    let file = Arc::clone(&prepared.name);
    let mut pass = FirstPass::new(judge);
    let end = yaml::stream_with(
        &file,
        &prepared.text,
        &judge.limits.yaml,
        Reading::Whole,
        &mut |event| match event {
            Streamed::Document(doc) => pass.document(&file, doc),
            Streamed::Restart => pass = FirstPass::new(judge),
        },
    );
    let manifest = pass.file_judge.kind(&file) == FileKind::Manifest;
    let read = FileObjects {
        objects: Vec::new(),
        findings: std::mem::take(&mut pass.findings),
        skipped: false,
    };
    let parsed = pass.file_judge.finish(&file, end.findings, read);
    let objects = if manifest { pass.checked.len() } else { 0 };
    let ((name, texts, parsed), text) = prepared.finish(parsed, Some(objects));
    if objects == 0 {
        return Scanned {
            name,
            texts,
            findings: parsed.findings,
            skipped: parsed.skipped,
            checked: Vec::new(),
            verdicts: Vec::new(),
            index: SetIndex::default(),
            crds: Vec::new(),
            again: Again::Nothing,
        };
    }
    pass.flush();
    Scanned {
        name,
        texts,
        findings: parsed.findings,
        skipped: parsed.skipped,
        checked: pass.checked,
        verdicts: pass.verdicts,
        index: pass.index,
        crds: pass.crds,
        again: Again::Reread {
            text,
            reading: end.reading,
            documents: pass.documents,
        },
    }
}

/// Schemas and per-object policies: early (first pass, with the schemas known before the
/// inputs were read and no index) or final (second pass, the whole set's schemas and index).
struct Judge<'a> {
    registry: &'a SchemaRegistry,
    policies: Option<&'a PolicyEngine>,
    /// The whole set's index (second pass only).
    index: Option<&'a SetIndex>,
    limits: &'a InputLimits,
}

impl Judge<'_> {
    /// An object's findings when its per-object rules ask nothing of the set; `None` when they
    /// do, and it must wait for the whole set.
    fn early(&self, o: &Object) -> Option<Vec<Finding>> {
        let mut found = self.registry.validate(o);
        if let Some(engine) = self.policies {
            let probe = SetIndex::probe();
            found.extend(engine.check_object(o, &probe));
            if probe.consulted() {
                return None;
            }
        }
        Some(found)
    }

    /// Every verdict on one input's objects, in object order: the early ones, and the others
    /// judged now.
    fn input(&self, input: &mut Scanned) -> Vec<Option<Vec<Finding>>> {
        let mut verdicts = std::mem::take(&mut input.verdicts);
        if verdicts.iter().any(Option::is_none) {
            match &input.again {
                Again::Nothing => {}
                Again::Kept(objects) => {
                    let todo: Vec<(usize, &Object)> = objects
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| verdicts[*i].is_none())
                        .collect();
                    for (i, found) in self.judge(&todo) {
                        verdicts[i] = Some(found);
                    }
                }
                Again::Reread {
                    text,
                    reading,
                    documents,
                } => {
                    let again = match reading {
                        Reading::Whole => self.reread_documents(
                            &input.name,
                            text,
                            documents,
                            &input.checked,
                            &verdicts,
                        ),
                        Reading::Isolated => None,
                    };
                    match again {
                        Some(done) => {
                            for (i, found) in done {
                                verdicts[i] = Some(found);
                            }
                        }
                        None => self.reread(&input.name, text, *reading, &mut verdicts),
                    }
                }
            }
        }
        verdicts
    }

    /// Reads a file again and judges the objects without a verdict. One thread reads while
    /// this one judges what it read, a batch behind: reading and judging overlap, and at most
    /// three batches of objects exist at once.
    fn reread(
        &self,
        file: &Arc<str>,
        text: &str,
        reading: Reading,
        verdicts: &mut [Option<Vec<Finding>>],
    ) {
        enum Read {
            Batch(Vec<(usize, Object)>),
            Restart,
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let wanted: &[Option<Vec<Finding>>] = verdicts;
        let limits = &self.limits.yaml;
        let done = std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut file_judge = FileJudge::default();
                let mut next = 0;
                let mut batch = Vec::new();
                yaml::stream_with(file, text, limits, reading, &mut |event| match event {
                    Streamed::Document(doc) => {
                        for o in file_judge.document(file, doc).objects {
                            if wanted.get(next).is_some_and(Option::is_none) {
                                batch.push((next, o));
                            }
                            next += 1;
                        }
                        if batch.len() >= BATCH {
                            // The receiver only stops early when it panicked.
                            let _ = tx.send(Read::Batch(std::mem::take(&mut batch)));
                        }
                    }
                    // Read as the first pass ended, the stream does not break again; if it
                    // did, it would start over.
                    Streamed::Restart => {
                        file_judge = FileJudge::default();
                        next = 0;
                        batch.clear();
                        let _ = tx.send(Read::Restart);
                    }
                });
                let _ = tx.send(Read::Batch(batch));
            });
            let mut done: Vec<(usize, Vec<Finding>)> = Vec::new();
            for read in rx {
                match read {
                    Read::Batch(batch) => {
                        let todo: Vec<(usize, &Object)> =
                            batch.iter().map(|(i, o)| (*i, o)).collect();
                        done.extend(self.judge(&todo));
                    }
                    Read::Restart => done.clear(),
                }
            }
            done
        });
        for (i, found) in done {
            verdicts[i] = Some(found);
        }
    }

    /// Reads again only the documents of a file (read whole) that hold objects without a
    /// verdict, each on its own and in parallel, and judges those objects: no document is
    /// parsed that is not needed, and both cores parse. `None` when a document cannot be cut
    /// out of its stream, or reads differently on its own: the file is then read again whole.
    fn reread_documents(
        &self,
        file: &Arc<str>,
        text: &str,
        documents: &[DocumentPlace],
        checked: &[(Arc<str>, ObjectRef)],
        verdicts: &[Option<Vec<Finding>>],
    ) -> Option<Verdicts> {
        let starts: Vec<u32> = documents
            .iter()
            .map(|d| d.start_line)
            .collect::<Option<_>>()?;
        let offsets = line_offsets(text, &starts)?;
        let wanted: Vec<usize> = (0..documents.len())
            .filter(|&k| {
                let d = &documents[k];
                verdicts
                    .get(d.first_object..d.first_object + d.objects)
                    .is_some_and(|v| v.iter().any(Option::is_none))
            })
            .collect();
        let limits = &self.limits.yaml;
        let judged: Option<Vec<Verdicts>> = wanted
            .par_iter()
            .map(|&k| {
                let d = &documents[k];
                let end = offsets.get(k + 1).copied().unwrap_or(text.len());
                let doc = yaml::document_again(file, text, offsets[k]..end, starts[k], k, limits)?;
                let objects = FileJudge::default().document(file, doc).objects;
                // Read on its own, the document must give the objects the stream gave.
                let same = objects.len() == d.objects
                    && objects
                        .iter()
                        .zip(&checked[d.first_object..])
                        .all(|(o, (f, id))| o.id == *id && o.provenance.file == *f);
                if !same {
                    return None;
                }
                Some(
                    objects
                        .iter()
                        .enumerate()
                        .map(|(j, o)| (d.first_object + j, o))
                        .filter(|(i, _)| verdicts[*i].is_none())
                        .map(|(i, o)| (i, self.verdict(o)))
                        .collect(),
                )
            })
            .collect();
        Some(judged?.into_iter().flatten().collect())
    }

    /// Final verdicts, in parallel.
    fn judge(&self, objects: &[(usize, &Object)]) -> Vec<(usize, Vec<Finding>)> {
        objects
            .par_iter()
            .map(|(i, o)| (*i, self.verdict(o)))
            .collect()
    }

    /// One object's final verdict: its schema and per-object policies, with the set's index.
    fn verdict(&self, o: &Object) -> Vec<Finding> {
        debug_assert!(self.policies.is_none() || self.index.is_some());
        let mut found = self.registry.validate(o);
        if let (Some(engine), Some(index)) = (self.policies, self.index) {
            found.extend(engine.check_object(o, index));
        }
        found
    }
}

/// The byte offsets of `lines` (0-based, increasing) in `text`; `None` when one is past its end
/// or they do not increase.
fn line_offsets(text: &str, lines: &[u32]) -> Option<Vec<usize>> {
    let mut offsets = Vec::with_capacity(lines.len());
    let (mut line, mut at) = (0u32, 0usize);
    for &want in lines {
        if want < line {
            return None;
        }
        while line < want {
            at += text.get(at..)?.find('\n')? + 1;
            line += 1;
        }
        offsets.push(at);
    }
    Some(offsets)
}

#[cfg(test)]
mod place_tests {
    use super::line_offsets;

    #[test]
    fn line_offsets_are_found_in_one_scan() {
        let text = "a\nbb\n---\nc\n";
        assert_eq!(line_offsets(text, &[0, 2, 3]), Some(vec![0, 5, 9]));
        assert_eq!(line_offsets(text, &[0, 9]), None);
        assert_eq!(line_offsets(text, &[2, 1]), None);
    }
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
