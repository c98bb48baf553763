//! YAML to JSON with positions.
//!
//! Built on saphyr-parser's event stream rather than a DOM so the loader sees what a DOM hides:
//! scalar styles (a plain `yes` is a YAML 1.1 trap, a quoted one is not), duplicate keys, and the
//! exact start of every key and value. Each document becomes a `serde_json::Value` (YAML 1.2 core
//! schema, the reading JSON tools share) and a [`PosNode`] tree of the same shape.
//!
//! Broken input never panics and never hides the rest of the file: when the stream fails, the file
//! is split at its document markers and each document is parsed on its own, so one bad document
//! costs only itself.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

use crate::finding::{Finding, Pos, Severity};
use crate::position::{MapEntry, PosNode};

/// Rule ids raised while reading YAML.
pub mod rules {
    /// The YAML does not parse.
    pub const SYNTAX: &str = "yaml-syntax";
    /// A tab in indentation (YAML allows only spaces there).
    pub const TAB: &str = "yaml-tab-indent";
    /// The same key twice in one mapping.
    pub const DUPLICATE_KEY: &str = "yaml-duplicate-key";
    /// A mapping or sequence used as a mapping key (JSON has only string keys).
    pub const COMPLEX_KEY: &str = "yaml-complex-key";
    /// A plain `yes`/`no`/`on`/`off`/`y`/`n`: a boolean to YAML 1.1, a string to YAML 1.2.
    pub const AMBIGUOUS_BOOL: &str = "yaml-ambiguous-bool";
    /// A plain number that YAML 1.1 reads differently (`0644` octal, `0b101`, `1_000`).
    pub const AMBIGUOUS_NUMBER: &str = "yaml-ambiguous-number";
    /// Template syntax (`{{ .Values.x }}`) left in a file that is not a template.
    pub const TEMPLATE_LEFTOVER: &str = "template-leftover";
    /// A value that JSON cannot carry (`.nan`, `.inf`, a number too large for a float).
    pub const UNREPRESENTABLE: &str = "yaml-unrepresentable";
    /// A tag no Kubernetes reader resolves (`!Ref`, `!!python/object`).
    pub const UNKNOWN_TAG: &str = "yaml-unknown-tag";
    /// A budget crossed: nesting depth, documents per file, alias expansion, file or input size.
    /// The file (or the rest of it) is not read; the run goes on.
    pub const LIMIT: &str = "input-limit";
}

/// What reading one YAML stream may cost. The defaults are far above any real repo; each is a
/// finding when crossed (at the line where it was), never a crash, and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Deeper nesting is refused (aliases count with the depth of their anchor).
    pub max_depth: usize,
    /// Documents read from one stream; the rest of the stream is not read.
    pub max_documents: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            max_depth: 256,
            max_documents: 100_000,
        }
    }
}

/// Deepest nesting a limit may allow (the default): later stages recurse on worker threads,
/// whose stacks are finite. `--max-depth` can lower it.
pub const DEPTH_CEILING: usize = 256;

/// Nodes aliases may expand to in a stream of `bytes` bytes: a fixed floor plus half a node per
/// input byte (the idea of go-yaml's alias ratio: expansion in proportion to what was written).
/// The budget is the stream's, not a document's, so many documents cannot each spend it; over a
/// run, aliases expand to at most half a node per input byte plus the floors.
pub fn alias_budget(bytes: usize) -> usize {
    ALIAS_FLOOR + bytes / 2
}

/// Alias expansion any stream may spend, however small.
const ALIAS_FLOOR: usize = 4096;

/// One YAML document of a stream.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    /// 0-based index of the document in its file.
    pub index: usize,
    /// The document's value (YAML 1.2 core schema).
    pub value: Value,
    /// Positions of every node of `value`.
    pub positions: PosNode,
    /// Findings about this document's content (YAML 1.1 traps, duplicate keys, templates).
    pub findings: Vec<Finding>,
    /// The 0-based line its text starts at when it can be read again on its own with
    /// [`document_again`] (the stream's first document, or one that starts with `---` at the
    /// start of a line, in a stream with no directives); `None` when it cannot be cut out.
    pub start_line: Option<u32>,
}

/// Everything read from one YAML stream.
#[derive(Debug, Default)]
pub struct LoadedYaml {
    /// The documents that parsed (empty documents included, as `Value::Null`).
    pub documents: Vec<YamlDocument>,
    /// Findings that belong to no parsed document (syntax errors).
    pub findings: Vec<Finding>,
}

/// Reads a YAML stream (JSON is YAML too) with the default [`YamlLimits`]. Never fails:
/// problems become findings.
pub fn load(file: &Arc<str>, text: &str) -> LoadedYaml {
    load_with(file, text, &YamlLimits::default())
}

/// Reads a YAML stream within `limits`. Never fails: problems become findings.
pub fn load_with(file: &Arc<str>, text: &str, limits: &YamlLimits) -> LoadedYaml {
    let mut documents = Vec::new();
    let end = stream_with(
        file,
        text,
        limits,
        Reading::Whole,
        &mut |event| match event {
            Streamed::Document(doc) => documents.push(doc),
            Streamed::Restart => documents.clear(),
        },
    );
    LoadedYaml {
        documents,
        findings: end.findings,
    }
}

/// How a stream is read: whole (falling back to one document at a time when it breaks), or one
/// document at a time from the start (what the whole reading fell back to before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// The stream as one, split into its documents only if it does not parse.
    #[default]
    Whole,
    /// Each document on its own.
    Isolated,
}

/// What [`stream_with`] hands its sink, in order.
#[derive(Debug)]
pub enum Streamed {
    /// The next document.
    Document(YamlDocument),
    /// The stream broke: forget the documents handed so far, they come again, read one by one.
    Restart,
}

/// The end of a stream read with [`stream_with`].
#[derive(Debug, Default)]
pub struct StreamEnd {
    /// Findings that belong to no document (syntax errors, budgets crossed).
    pub findings: Vec<Finding>,
    /// How the documents handed last were read: [`Reading::Isolated`] when the whole stream did
    /// not parse. Reading again with it hands the same documents without a restart.
    pub reading: Reading,
}

/// Reads a YAML stream within `limits`, handing each document to `sink` as soon as it is read,
/// so a caller that does not keep them holds one document's tree at a time. The same documents
/// and findings as [`load_with`], which is built on it; budgets are the stream's, whatever the
/// documents' number.
pub fn stream_with(
    file: &Arc<str>,
    text: &str,
    limits: &YamlLimits,
    reading: Reading,
    sink: &mut dyn FnMut(Streamed),
) -> StreamEnd {
    let limits = YamlLimits {
        max_depth: limits.max_depth.min(DEPTH_CEILING),
        ..*limits
    };
    let budget = alias_budget(text.len());
    if reading == Reading::Whole {
        let mut spent = 0;
        let mut whole = |doc| sink(Streamed::Document(doc));
        // A directive (`%YAML`, `%TAG`) changes how the documents after it read.
        let cuttable = !text.starts_with('%') && !text.contains("\n%");
        let parsed = parse_chunk(
            file, text, 0, 0, cuttable, &limits, budget, &mut spent, &mut whole,
        );
        if parsed.error.is_none() {
            return StreamEnd {
                findings: parsed.findings,
                reading: Reading::Whole,
            };
        }
        sink(Streamed::Restart);
    }
    // Isolate documents: parse each on its own so one error costs only its own document. A
    // budget crossed stays crossed: the stream's budget is shared by its documents.
    let mut findings = Vec::new();
    let mut index = 0;
    let mut spent = 0;
    for (start_line, chunk) in split_documents(text) {
        if index >= limits.max_documents {
            findings.push(too_many_documents(file, start_line + 1, &limits));
            break;
        }
        // A chunk is one document, or a few: kept until its error (if any) is known.
        let mut documents = Vec::new();
        let mut part = parse_chunk(
            file,
            chunk,
            start_line,
            index,
            false,
            &limits,
            budget,
            &mut spent,
            &mut |doc| documents.push(doc),
        );
        index += documents.len().max(usize::from(part.error.is_some()));
        let stop = matches!(part.error, Some(LoadError::TooManyDocuments(_)));
        let cause = part
            .error
            .map(|err| describe_error(file, chunk, start_line, &err, &limits));
        if let Some(cause) = &cause {
            // The template that broke the chunk may already be reported by the partial parse, at
            // the same spot: keep one finding, the one that explains the failure.
            let same = |f: &Finding| f.rule == cause.rule && f.pos == cause.pos;
            part.findings.retain(|f| !same(f));
            for d in &mut documents {
                d.findings.retain(|f| !same(f));
            }
        }
        for doc in documents {
            sink(Streamed::Document(doc));
        }
        findings.append(&mut part.findings);
        findings.extend(cause);
        if stop {
            break;
        }
    }
    StreamEnd {
        findings,
        reading: Reading::Isolated,
    }
}

/// Reads again, on its own, document `index` of the stream `text` (read whole before): its
/// text is `text[range]`, which starts at the document's [`YamlDocument::start_line`]. `None`
/// unless that gives exactly one document, read without an error: then the caller reads the
/// stream again instead. The stream's budgets apply to the document alone.
pub fn document_again(
    file: &Arc<str>,
    text: &str,
    range: std::ops::Range<usize>,
    start_line: u32,
    index: usize,
    limits: &YamlLimits,
) -> Option<YamlDocument> {
    let limits = YamlLimits {
        max_depth: limits.max_depth.min(DEPTH_CEILING),
        ..*limits
    };
    let chunk = text.get(range)?;
    let mut spent = 0;
    let mut found = None;
    let mut count = 0;
    let parsed = parse_chunk(
        file,
        chunk,
        start_line,
        index,
        false,
        &limits,
        alias_budget(text.len()),
        &mut spent,
        &mut |doc| {
            count += 1;
            found = Some(doc);
        },
    );
    (parsed.error.is_none() && count == 1)
        .then_some(found)
        .flatten()
}

fn too_many_documents(file: &Arc<str>, line: u32, limits: &YamlLimits) -> Finding {
    Finding::new(
        rules::LIMIT,
        Severity::Error,
        file,
        Pos::new(line, 1),
        format!(
            "more than {} documents in one file; the rest of the file was not read (--max-documents raises the limit)",
            limits.max_documents
        ),
    )
}

/// The end of parsing one stream or chunk (its documents went to the sink); `error` is set when
/// it stopped early.
struct Parsed {
    /// Findings that belong to no finished document.
    findings: Vec<Finding>,
    error: Option<LoadError>,
}

/// Why parsing stopped.
#[derive(Debug)]
enum LoadError {
    Scan(ScanError),
    TooDeep(Pos),
    AliasBomb(Pos, usize),
    TooManyDocuments(Pos),
}

#[allow(clippy::too_many_arguments)]
fn parse_chunk(
    file: &Arc<str>,
    text: &str,
    line_offset: u32,
    first_index: usize,
    cuttable: bool,
    limits: &YamlLimits,
    alias_budget: usize,
    alias_spent: &mut usize,
    sink: &mut dyn FnMut(YamlDocument),
) -> Parsed {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        text,
        file,
        line_offset,
        limits: *limits,
        arena: Vec::new(),
        anchors: HashMap::new(),
        keyed: HashMap::new(),
        alias_budget,
        alias_spent: *alias_spent,
        findings: Vec::new(),
        line_starts: None,
        templates: HashMap::new(),
    };
    let mut index = first_index;
    let error = loop {
        match b.next() {
            Ok((Event::DocumentStart(explicit), span)) => {
                if index >= limits.max_documents {
                    break Some(LoadError::TooManyDocuments(b.pos(&span)));
                }
                let start_line = match (cuttable, index == first_index, explicit) {
                    (false, _, _) => None,
                    (true, true, _) => Some(line_offset),
                    (true, false, true) if span.start.col() == 0 => {
                        Some((span.start.line() as u32).saturating_sub(1) + line_offset)
                    }
                    (true, false, _) => None,
                };
                b.anchors.clear();
                b.arena.clear();
                b.keyed.clear();
                let result = b.next().and_then(|(ev, span)| b.node(ev, span, 0));
                let root = match result {
                    Ok(id) => id,
                    Err(e) => break Some(e),
                };
                match b.next() {
                    Ok((Event::DocumentEnd, _)) => {}
                    Ok(_) => {}
                    Err(e) => break Some(e),
                }
                let (value, positions) = b.build(root, false);
                b.arena.clear();
                sink(YamlDocument {
                    index,
                    value,
                    positions,
                    findings: std::mem::take(&mut b.findings),
                    start_line,
                });
                index += 1;
            }
            Ok((Event::StreamEnd, _)) => break None,
            Ok(_) => {}
            Err(e) => break Some(e),
        }
    };
    *alias_spent = b.alias_spent;
    // Findings from a document that did not finish belong to it, which is now lost: keep them.
    Parsed {
        findings: b.findings,
        error,
    }
}

/// The entry index a large mapping's map holds for a key until the document is built.
fn entry_index(value: &Value) -> usize {
    value.as_u64().map_or(usize::MAX, |i| i as usize)
}

/// Index of a node in a document's arena.
type NodeId = usize;

/// A node of a document as parsed: children by index, so an alias is its anchor's index (shared,
/// never copied while parsing). The JSON value and positions are built from it once the document
/// is complete, aliases expanded within the stream's budget.
struct Node {
    pos: Pos,
    kind: NodeKind,
    /// Nodes of the expanded subtree (itself included), for the alias budget.
    size: usize,
    /// Depth of the expanded subtree (1 for a scalar), for the depth limit.
    depth: usize,
    /// Reached by an alias or a merge too: built by copying (every other node is built once,
    /// by moving).
    shared: bool,
}

enum NodeKind {
    Scalar(Value),
    Seq(Vec<NodeId>),
    Map(Vec<ArenaEntry>),
}

struct ArenaEntry {
    key: Box<str>,
    key_pos: Pos,
    value: NodeId,
}

struct Builder<'a, 'f> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    text: &'a str,
    file: &'f Arc<str>,
    line_offset: u32,
    limits: YamlLimits,
    /// The current document's nodes.
    arena: Vec<Node>,
    /// Anchor id → node (of the current document).
    anchors: HashMap<usize, NodeId>,
    /// The JSON map of each large mapping of the current document, keyed while parsing (the
    /// duplicate-key check) and filled with the values when the document is built, so each key
    /// is hashed once. Until then a value is the index of its key's entry.
    keyed: HashMap<NodeId, Map<String, Value>>,
    /// Nodes aliases may still expand to in this stream, and how many they have.
    alias_budget: usize,
    alias_spent: usize,
    findings: Vec<Finding>,
    /// Where each line of `text` starts, built the first time a line's text is needed.
    line_starts: Option<Vec<usize>>,
    /// The first template action of a line (column, text), per line asked about: many complex
    /// keys on one long line cost one scan of it.
    templates: HashMap<u32, Option<(u32, String)>>,
}

impl<'a> Builder<'a, '_> {
    fn next(&mut self) -> Result<(Event<'a>, Span), LoadError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(LoadError::Scan(e)),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    /// Line `index` (0-based, within this chunk) without its line ending; empty past the end.
    fn line(&mut self, index: u32) -> &'a str {
        let text = self.text;
        let starts = self.line_starts.get_or_insert_with(|| {
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let Some(&start) = starts.get(index as usize) else {
            return "";
        };
        let end = starts
            .get(index as usize + 1)
            .map_or(text.len(), |&e| e - 1);
        let line = &text[start..end.max(start)];
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// The first `{{` of line `line_no` (as reported, with the chunk's offset): its column and
    /// the action's text.
    fn template_on_line(&mut self, line_no: u32) -> Option<(u32, String)> {
        if let Some(known) = self.templates.get(&line_no) {
            return known.clone();
        }
        let line = self.line(line_no.saturating_sub(self.line_offset + 1));
        let found = line.find("{{").map(|at| {
            let column = line[..at].chars().count() as u32 + 1;
            (column, snippet_at(line, at).to_owned())
        });
        self.templates.insert(line_no, found.clone());
        found
    }

    fn pos(&self, span: &Span) -> Pos {
        Pos::new(
            span.start.line() as u32 + self.line_offset,
            span.start.col() as u32 + 1,
        )
    }

    fn finding(&mut self, rule: &'static str, severity: Severity, pos: Pos, msg: String) {
        self.findings
            .push(Finding::new(rule, severity, self.file, pos, msg));
    }

    fn push(&mut self, pos: Pos, kind: NodeKind) -> NodeId {
        let (size, depth) = match &kind {
            NodeKind::Scalar(_) => (1, 1),
            NodeKind::Seq(items) => items.iter().fold((1, 1), |(s, d), &c| {
                (s + self.arena[c].size, d.max(self.arena[c].depth + 1))
            }),
            NodeKind::Map(entries) => entries.iter().fold((1, 1), |(s, d), e| {
                let c = &self.arena[e.value];
                (s + 1 + c.size, d.max(c.depth + 1))
            }),
        };
        self.arena.push(Node {
            pos,
            kind,
            size,
            depth,
            shared: false,
        });
        self.arena.len() - 1
    }

    fn remember(&mut self, anchor: usize, id: NodeId) {
        if anchor > 0 {
            self.anchors.insert(anchor, id);
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<NodeId, LoadError> {
        let pos = self.pos(&span);
        if depth > self.limits.max_depth {
            return Err(LoadError::TooDeep(pos));
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = self.scalar(&text, style, tag.as_deref(), pos);
                let id = self.push(pos, NodeKind::Scalar(value));
                self.remember(anchor, id);
                Ok(id)
            }
            Event::SequenceStart(anchor, tag) => {
                if let Some(tag) = tag.as_deref() {
                    self.unknown_tag(tag, &["seq", "set", "omap", "pairs"], pos);
                }
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, span, depth + 1)?);
                }
                let id = self.push(pos, NodeKind::Seq(items));
                self.remember(anchor, id);
                Ok(id)
            }
            Event::MappingStart(anchor, tag) => {
                if let Some(tag) = tag.as_deref() {
                    self.unknown_tag(tag, &["map", "set", "omap"], pos);
                }
                let (entries, keyed) = self.mapping(depth)?;
                let id = self.push(pos, NodeKind::Map(entries));
                if let Some(keyed) = keyed {
                    self.keyed.insert(id, keyed);
                }
                self.remember(anchor, id);
                Ok(id)
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).copied() {
                Some(id) => {
                    // Shared, not copied: the expansion is paid for once the document is built,
                    // and counted here against the stream's budget.
                    let node = &mut self.arena[id];
                    node.shared = true;
                    self.alias_spent = self.alias_spent.saturating_add(node.size);
                    if self.alias_spent > self.alias_budget {
                        return Err(LoadError::AliasBomb(pos, self.alias_budget));
                    }
                    // Aliases nest their anchor's depth: keep later stages' recursion bounded.
                    if depth + node.depth > self.limits.max_depth {
                        return Err(LoadError::TooDeep(pos));
                    }
                    Ok(id)
                }
                // The parser rejects unknown aliases; stay total anyway.
                None => Ok(self.push(pos, NodeKind::Scalar(Value::Null))),
            },
            // Any other event here means a malformed stream the parser let through.
            _ => Ok(self.push(pos, NodeKind::Scalar(Value::Null))),
        }
    }

    /// A mapping's entries, in order, duplicates resolved; for a large one also its JSON map,
    /// keyed (see [`Builder::keyed`]).
    #[allow(clippy::type_complexity)]
    fn mapping(
        &mut self,
        depth: usize,
    ) -> Result<(Vec<ArenaEntry>, Option<Map<String, Value>>), LoadError> {
        let mut entries: Vec<ArenaEntry> = Vec::new();
        let mut merges: Vec<NodeId> = Vec::new();
        // Key → entry index; small mappings are searched, larger ones hashed: their JSON map,
        // each value the index of its entry until the document is built. Its hasher is keyed
        // per process, so no input can choose collisions.
        let mut index: Option<Map<String, Value>> = None;
        const HASHED_FROM: usize = 16;
        let find =
            |entries: &[ArenaEntry], index: &Option<Map<String, Value>>, key: &str| match index {
                Some(index) => index.get(key).map(entry_index),
                None => entries.iter().position(|e| &*e.key == key),
            };
        loop {
            let (ev, span) = self.next()?;
            let key_pos = self.pos(&span);
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(text, style, _, _) => {
                    if style == ScalarStyle::Plain {
                        self.check_key_trap(&text, key_pos);
                    }
                    if style == ScalarStyle::Plain && &*text == "<<" {
                        let (ev, span) = self.next()?;
                        merges.push(self.node(ev, span, depth + 1)?);
                        continue;
                    }
                    // Moved, not copied: the parser's string becomes the key.
                    text.into_owned().into_boxed_str()
                }
                other => {
                    // A collection as a key: consume it and its value, report, move on.
                    let before = self.findings.len();
                    self.node(other, span, depth + 1)?;
                    let (ev, span) = self.next()?;
                    self.node(ev, span, depth + 1)?;
                    // `key: {{ .Values.x }}` parses as a flow mapping used as a key.
                    if let Some((column, action)) = self.template_on_line(key_pos.line) {
                        let pos = Pos::new(key_pos.line, column);
                        // `{{name}}: x` nests one flow mapping as the key of another: the inner
                        // one has said it already.
                        let said = self.findings[before..]
                            .iter()
                            .any(|f| f.rule == rules::TEMPLATE_LEFTOVER && f.pos == pos);
                        if !said {
                            let msg = format!(
                                "template syntax `{action}` left in a manifest; render the chart or kustomization first"
                            );
                            self.finding(rules::TEMPLATE_LEFTOVER, Severity::Error, pos, msg);
                        }
                    } else {
                        self.finding(
                            rules::COMPLEX_KEY,
                            Severity::Error,
                            key_pos,
                            "a mapping or sequence used as a key; Kubernetes objects need string keys"
                                .into(),
                        );
                    }
                    continue;
                }
            };
            let (ev, span) = self.next()?;
            let value = self.node(ev, span, depth + 1)?;
            // One hash per key: looking it up in a large mapping's map also claims its place.
            let found = match &mut index {
                Some(index) => match index.entry(&*key) {
                    serde_json::map::Entry::Occupied(slot) => Some(entry_index(slot.get())),
                    serde_json::map::Entry::Vacant(slot) => {
                        slot.insert(Value::from(entries.len()));
                        None
                    }
                },
                None => entries.iter().position(|e| e.key == key),
            };
            if let Some(i) = found {
                let msg = format!(
                    "duplicate key `{key}` (first at line {}); the API server rejects duplicate fields",
                    entries[i].key_pos.line
                );
                self.finding(rules::DUPLICATE_KEY, Severity::Error, key_pos, msg);
                // The last one wins, at the first one's place (as in a JSON map).
                entries[i] = ArenaEntry {
                    key,
                    key_pos,
                    value,
                };
                continue;
            }
            let entry = ArenaEntry {
                key,
                key_pos,
                value,
            };
            if index.is_none() && entries.len() + 1 == HASHED_FROM {
                let mut built = Map::with_capacity(HASHED_FROM * 2);
                for (i, e) in entries.iter().chain(std::iter::once(&entry)).enumerate() {
                    built.insert(e.key.to_string(), Value::from(i));
                }
                index = Some(built);
            }
            entries.push(entry);
        }
        // YAML merge keys (`<<: *base`): explicit keys win, earlier merges win over later ones.
        // Merged values are shared by index, as aliases are.
        for merge in merges {
            let sources: Vec<NodeId> = match &self.arena[merge].kind {
                NodeKind::Seq(items) => items.clone(),
                _ => vec![merge],
            };
            for source in sources {
                self.arena[source].shared = true;
                let NodeKind::Map(merged) = &self.arena[source].kind else {
                    continue;
                };
                let mut added = Vec::new();
                for e in merged {
                    let present = find(&entries, &index, &e.key).is_some()
                        || added.iter().any(|a: &ArenaEntry| a.key == e.key);
                    if !present {
                        added.push(ArenaEntry {
                            key: e.key.clone(),
                            key_pos: e.key_pos,
                            value: e.value,
                        });
                    }
                }
                for e in added {
                    if let Some(index) = &mut index {
                        index.insert(e.key.to_string(), Value::from(entries.len()));
                    }
                    entries.push(e);
                }
            }
        }
        Ok((entries, index))
    }

    /// The JSON value and positions of a finished document, aliases expanded (their cost was
    /// checked against the budget while parsing). A node reached only once is moved out of the
    /// arena; one under an alias or a merge is copied.
    fn build(&mut self, id: NodeId, shared: bool) -> (Value, PosNode) {
        let shared = shared || self.arena[id].shared;
        let pos = self.arena[id].pos;
        let kind = if shared {
            None
        } else {
            Some(std::mem::replace(
                &mut self.arena[id].kind,
                NodeKind::Scalar(Value::Null),
            ))
        };
        match kind {
            Some(NodeKind::Scalar(v)) => (v, PosNode::Scalar(pos)),
            Some(NodeKind::Seq(items)) => self.build_seq(pos, &items, false),
            Some(NodeKind::Map(entries)) => {
                let mut out = Vec::with_capacity(entries.len());
                let map = match self.keyed.remove(&id) {
                    // Keyed while parsing, in the entries' order: only the values are put in.
                    Some(mut map) if map.len() == entries.len() => {
                        for (slot, e) in map.values_mut().zip(entries) {
                            let (value, positions) = self.build(e.value, false);
                            *slot = value;
                            out.push(MapEntry {
                                key: e.key,
                                key_pos: e.key_pos,
                                value: positions,
                            });
                        }
                        map
                    }
                    _ => {
                        let mut map = Map::with_capacity(entries.len());
                        for e in entries {
                            let (value, positions) = self.build(e.value, false);
                            map.insert(e.key.to_string(), value);
                            out.push(MapEntry {
                                key: e.key,
                                key_pos: e.key_pos,
                                value: positions,
                            });
                        }
                        map
                    }
                };
                let node = PosNode::Map { pos, entries: out };
                (Value::Object(map), node)
            }
            None => match &self.arena[id].kind {
                NodeKind::Scalar(v) => (v.clone(), PosNode::Scalar(pos)),
                NodeKind::Seq(items) => {
                    let items = items.clone();
                    self.build_seq(pos, &items, true)
                }
                NodeKind::Map(entries) => {
                    let entries: Vec<(Box<str>, Pos, NodeId)> = entries
                        .iter()
                        .map(|e| (e.key.clone(), e.key_pos, e.value))
                        .collect();
                    let mut map = Map::with_capacity(entries.len());
                    let mut out = Vec::with_capacity(entries.len());
                    for (key, key_pos, child) in entries {
                        let (value, positions) = self.build(child, true);
                        map.insert(key.to_string(), value);
                        out.push(MapEntry {
                            key,
                            key_pos,
                            value: positions,
                        });
                    }
                    (Value::Object(map), PosNode::Map { pos, entries: out })
                }
            },
        }
    }

    fn build_seq(&mut self, pos: Pos, items: &[NodeId], shared: bool) -> (Value, PosNode) {
        let (values, items) = items.iter().map(|&c| self.build(c, shared)).unzip();
        (Value::Array(values), PosNode::Seq { pos, items })
    }

    fn scalar(&mut self, text: &str, style: ScalarStyle, tag: Option<&Tag>, pos: Pos) -> Value {
        if let Some(tag) = tag {
            let core = tag.is_yaml_core_schema() || tag.handle == "!!";
            match (core, tag.suffix.as_str()) {
                (true, "str" | "binary" | "timestamp") => return Value::String(text.to_owned()),
                (true, "int" | "float" | "bool" | "null" | "merge" | "value") => {
                    return self.plain(text, pos);
                }
                // `! text`, the non-specific tag: a string.
                (false, "" | "!") if matches!(&*tag.handle, "!" | "") => {
                    return Value::String(text.to_owned());
                }
                _ => self.unknown_tag(tag, &["str", "int", "float", "bool", "null"], pos),
            }
        }
        match style {
            ScalarStyle::Plain => {
                self.check_value_trap(text, pos);
                self.plain(text, pos)
            }
            // Template leftovers in values are the policy `template-leftover`'s (exemptable).
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Value::String(text.to_owned()),
            // Block scalars carry other programs' text (scripts, configs): leave it alone.
            ScalarStyle::Literal | ScalarStyle::Folded => Value::String(text.to_owned()),
        }
    }

    /// Reports a tag that is not one of YAML's core tags for this kind of node.
    fn unknown_tag(&mut self, tag: &Tag, known: &[&str], pos: Pos) {
        let core = tag.is_yaml_core_schema() || tag.handle == "!!";
        if core && known.contains(&tag.suffix.as_str()) {
            return;
        }
        let shown = if core {
            format!("!!{}", tag.suffix)
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        };
        let msg = format!(
            "unknown tag `{shown}`: kubectl and the API server resolve no application tags (CloudFormation's `!Ref`, `!!python/object`); the value is not what the tag means, remove the tag"
        );
        self.finding(rules::UNKNOWN_TAG, Severity::Error, pos, msg);
    }

    fn plain(&mut self, text: &str, pos: Pos) -> Value {
        match resolve_plain(text) {
            Resolved::Value(v) => v,
            Resolved::TooLarge => {
                let msg = format!(
                    "`{text}` is a number too large for a float, which JSON (and so the API server) cannot carry; quote it if a string is meant"
                );
                self.finding(rules::UNREPRESENTABLE, Severity::Error, pos, msg);
                Value::String(text.to_owned())
            }
            Resolved::NotJson => {
                let msg = format!(
                    "`{text}` is a special float that JSON (and so the API server) cannot carry; quote it if a string is meant"
                );
                self.finding(rules::UNREPRESENTABLE, Severity::Error, pos, msg);
                Value::String(text.to_owned())
            }
        }
    }

    fn check_key_trap(&mut self, text: &str, pos: Pos) {
        if let Some(b) = yaml11_bool(text) {
            let msg = format!(
                "key `{text}` is the boolean {b} to YAML 1.1 readers such as kubectl and the API server, which turn it into the key \"{b}\"; quote it"
            );
            self.finding(rules::AMBIGUOUS_BOOL, Severity::Warning, pos, msg);
        }
    }

    fn check_value_trap(&mut self, text: &str, pos: Pos) {
        if let Some(b) = yaml11_bool(text) {
            let msg = format!(
                "`{text}` is the string \"{text}\" to YAML 1.2 but the boolean {b} to YAML 1.1 readers such as kubectl and the API server; quote it, or write {b}"
            );
            self.finding(rules::AMBIGUOUS_BOOL, Severity::Warning, pos, msg);
        } else if let Some(reading) = yaml11_number(text) {
            let msg = format!(
                "`{text}` is read as {reading} by YAML 1.1 readers such as kubectl and the API server, differently by YAML 1.2 tools; write the number unambiguously or quote it"
            );
            self.finding(rules::AMBIGUOUS_NUMBER, Severity::Warning, pos, msg);
        }
    }
}

/// How a plain scalar reads under the YAML 1.2 core schema.
enum Resolved {
    Value(Value),
    /// `.nan` / `.inf`: a float JSON has no way to write.
    NotJson,
    /// A number beyond a float's range (`1e400`): infinite to a JSON reader.
    TooLarge,
}

fn resolve_plain(s: &str) -> Resolved {
    let v = match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Resolved::NotJson,
        _ => {
            let body = s.trim_start_matches(['-', '+']);
            if matches!(body, ".inf" | ".Inf" | ".INF") && s.len() - body.len() <= 1 {
                return Resolved::NotJson;
            }
            match resolve_number(s) {
                Some(Some(n)) => Value::Number(n),
                Some(None) => return Resolved::TooLarge,
                None => Value::String(s.to_owned()),
            }
        }
    };
    Resolved::Value(v)
}

/// A plain scalar's number: `None` when it is not one, `Some(None)` when it is one no float can
/// hold (`1e400`).
fn resolve_number(s: &str) -> Option<Option<Number>> {
    let bytes = s.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16)
            .ok()
            .map(|n| Some(Number::from(n)));
    }
    if let Some(oct) = s.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8)
            .ok()
            .map(|n| Some(Number::from(n)));
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let t = s.strip_prefix('+').unwrap_or(s);
        if let Ok(i) = t.parse::<i64>() {
            return Some(Some(Number::from(i)));
        }
        if let Ok(u) = t.parse::<u64>() {
            return Some(Some(Number::from(u)));
        }
        return t.parse::<f64>().ok().map(Number::from_f64);
    }
    if is_yaml12_float(digits) {
        let t = s.strip_prefix('+').unwrap_or(s);
        return t.parse::<f64>().ok().map(Number::from_f64);
    }
    None
}

/// `( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE][-+]?[0-9]+ )?`, sign already stripped.
fn is_yaml12_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

/// The boolean a YAML 1.1 reader gives a plain scalar that YAML 1.2 reads as a string.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// How YAML 1.1 reads a plain number that YAML 1.2 reads differently, if it does.
fn yaml11_number(s: &str) -> Option<String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let sign = if neg { "-" } else { "" };
    if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match i64::from_str_radix(body, 8) {
            Ok(v) => format!(
                "the octal number {sign}{v} (YAML 1.2: {sign}{})",
                body.trim_start_matches('0')
            ),
            Err(_) => "a string or float, not an octal number".to_owned(),
        });
    }
    if let Some(bin) = body.strip_prefix("0b")
        && !bin.is_empty()
        && let Ok(v) = i64::from_str_radix(bin, 2)
    {
        return Some(format!("the binary number {sign}{v} (YAML 1.2: a string)"));
    }
    if body.contains('_')
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        return Some(format!(
            "the number {sign}{} (YAML 1.2: a string)",
            body.replace('_', "")
        ));
    }
    None
}

/// The byte offset of a Helm or Go-template action that only a chart uses (`{{ .Values.x }}`,
/// `{{ include ... }}`, `{{- if ... }}`). Runtime templates that belong in the data, such as
/// Prometheus' `{{ $labels.instance }}`, are not flagged.
/// Where a Helm chart's own template syntax starts in `text`: an action (`{{ ... }}`) that names
/// the chart's values or built-ins (`.Values`, `.Release`, `.Chart`, ...) or its functions
/// (`include`, `toYaml`, `tpl`, `required`, `nindent`). Go templates of other tools (Prometheus
/// and Alertmanager: `{{ $labels.x }}`, `{{ if eq .Status "firing" }}`, `{{ template "x" . }}`)
/// are data, not leftovers.
pub(crate) fn helm_leftover(text: &str) -> Option<usize> {
    const CHART_WORDS: [&str; 10] = [
        ".Values",
        ".Release",
        ".Chart",
        ".Capabilities",
        ".Files",
        "include ",
        "toYaml",
        "tpl ",
        "required ",
        "nindent",
    ];
    // Most scalars hold no brace: a byte search says so before a substring search is set up.
    if !text.as_bytes().contains(&b'{') {
        return None;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find("{{") {
        let at = from + i;
        let inner = &text[at + 2..];
        let action = inner.find("}}").map_or(inner, |end| &inner[..end]);
        if CHART_WORDS.iter().any(|w| action.contains(w)) {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// Where a placeholder of a plain text template starts in `text`: `{{name}}`, a bare identifier
/// between double braces, as sed scripts, mustache and envsubst-like tools fill in. Go templates
/// (`{{ $labels.x }}`, `{{ .Status }}`, `{{ if ... }}`) are not such placeholders.
pub(crate) fn placeholder(text: &str) -> Option<usize> {
    if !text.as_bytes().contains(&b'{') {
        return None;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find("{{") {
        let at = from + i;
        let inner = &text[at + 2..];
        if let Some(end) = inner.find("}}") {
            let name = inner[..end].trim();
            let mut chars = name.chars();
            let identifier = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if identifier && !matches!(name, "end" | "else") {
                return Some(at);
            }
        }
        from = at + 2;
    }
    None
}

/// Whether a line is nothing but a template control action at the start of the line
/// (`{{- if ... }}`, `{{ end }}`): a chart's structure, which no YAML value holds.
fn control_line(line: &str) -> bool {
    const CONTROL: [&str; 7] = [
        "if ",
        "else",
        "end",
        "range ",
        "with ",
        "define ",
        "template ",
    ];
    let Some(inner) = line.strip_prefix("{{") else {
        return false;
    };
    let inner = inner.trim_start_matches('-').trim_start();
    line.trim_end().ends_with("}}") && CONTROL.iter().any(|w| inner.starts_with(w))
}

fn snippet_at(text: &str, offset: usize) -> &str {
    let rest = &text[offset..];
    match rest.find("}}") {
        Some(end) => &rest[..end + 2],
        None => rest.lines().next().unwrap_or(rest),
    }
}

/// Splits a stream at its document markers (`---` at column 0), keeping each document's first
/// line number (0-based offset to add to its own line numbers).
fn split_documents(text: &str) -> Vec<(u32, &str)> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut offset = 0usize;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let is_marker =
            line.starts_with("---") && line[3..].chars().next().is_none_or(|c| c.is_whitespace());
        if is_marker && offset > start {
            chunks.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line_no as u32;
        }
        offset += line.len();
    }
    if start < text.len() || chunks.is_empty() {
        chunks.push((start_line, &text[start..]));
    }
    chunks
}

/// Turns a parse failure into the most useful finding: a tab or a template beats a bare
/// "did not find expected key".
fn describe_error(
    file: &Arc<str>,
    chunk: &str,
    line_offset: u32,
    err: &LoadError,
    limits: &YamlLimits,
) -> Finding {
    let (pos, info) = match err {
        LoadError::Scan(e) => (
            Pos::new(
                e.marker().line() as u32 + line_offset,
                e.marker().col() as u32 + 1,
            ),
            e.info().to_owned(),
        ),
        LoadError::TooDeep(pos) => {
            let msg = format!(
                "nesting deeper than {} levels (aliases count with their anchor's depth); this document was not read (--max-depth raises the limit)",
                limits.max_depth
            );
            return Finding::new(rules::LIMIT, Severity::Error, file, *pos, msg);
        }
        LoadError::TooManyDocuments(pos) => return too_many_documents(file, pos.line, limits),
        LoadError::AliasBomb(pos, budget) => {
            let msg = format!(
                "aliases in this file expand to more than {budget} nodes (half a node per byte of the file, plus {ALIAS_FLOOR}); this document was not read"
            );
            return Finding::new(rules::LIMIT, Severity::Error, file, *pos, msg);
        }
    };
    // Errors at the end of input sit on a line past the last: point at the last real line.
    let last_line = chunk.lines().count().max(1) as u32 + line_offset;
    let pos = if pos.line > last_line {
        let last = chunk.lines().last().unwrap_or("");
        Pos::new(last_line, last.chars().count() as u32 + 1)
    } else {
        pos
    };
    // Only the failing line and the one before it can explain the failure: a tab or template
    // further up is someone else's business (a block scalar may hold tabs, data may hold `{{`).
    let upto = pos.line.saturating_sub(line_offset).max(1) as usize;
    let from = upto.saturating_sub(2);
    // A chart's own actions (`{{- if .Values.x }}`) anywhere before the failure explain it.
    for (i, line) in chunk.lines().enumerate().take(upto) {
        let found = helm_leftover(line).or_else(|| control_line(line).then_some(0));
        if let Some(col) = found {
            let column = line[..col].chars().count() as u32 + 1;
            return Finding::new(
                rules::TEMPLATE_LEFTOVER,
                Severity::Error,
                file,
                Pos::new(i as u32 + 1 + line_offset, column),
                format!(
                    "template syntax `{}` in a file that is not a template; render it first (helm template, kustomize build)",
                    snippet_at(line, col)
                ),
            )
            .with_help(format!("the YAML parser failed at line {}: {info}", pos.line));
        }
    }
    for (i, line) in chunk.lines().enumerate().take(upto).skip(from) {
        let line_no = i as u32 + 1 + line_offset;
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(col) = line[..indent].find('\t') {
            return Finding::new(
                rules::TAB,
                Severity::Error,
                file,
                Pos::new(line_no, col as u32 + 1),
                "tab character in indentation; YAML indents with spaces only",
            )
            .with_help(format!(
                "the parser then failed at line {}: {info}",
                pos.line
            ));
        }
        // A template action on the failing line itself (`key: {{ x }}` breaks the YAML there);
        // one on the line before may be another tool's template in a block scalar.
        let action = line
            .find("{{")
            .filter(|_| line_no == pos.line || helm_leftover(line).is_some());
        if let Some(col) = action {
            let column = line[..col].chars().count() as u32 + 1;
            return Finding::new(
                rules::TEMPLATE_LEFTOVER,
                Severity::Error,
                file,
                Pos::new(line_no, column),
                "template syntax `{{` in a file that is not a template; render it first (helm template, kustomize build)",
            )
            .with_help(format!("the YAML parser failed at line {}: {info}", pos.line));
        }
    }
    Finding::new(
        rules::SYNTAX,
        Severity::Error,
        file,
        pos,
        format!("YAML syntax error: {info}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load_str(text: &str) -> LoadedYaml {
        load(&Arc::from("t.yaml"), text)
    }

    fn all_findings(l: &LoadedYaml) -> Vec<(&'static str, u32, u32)> {
        let mut v: Vec<_> = l
            .findings
            .iter()
            .chain(l.documents.iter().flat_map(|d| &d.findings))
            .map(|f| (f.rule, f.pos.line, f.pos.column))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn values_and_positions() {
        let l = load_str("a: 1\nb:\n  - x\n  - 'y'\nc: {d: true, e: ~}\n");
        assert!(l.findings.is_empty());
        let d = &l.documents[0];
        assert_eq!(
            d.value,
            json!({"a": 1, "b": ["x", "y"], "c": {"d": true, "e": null}})
        );
        assert_eq!(d.positions.locate("/b/1").value, Pos::new(4, 5));
        assert_eq!(d.positions.locate("/c/e").key, Some(Pos::new(5, 14)));
        assert_eq!(d.positions.locate("/a").key, Some(Pos::new(1, 1)));
    }

    #[test]
    fn core_schema_scalars() {
        let l = load_str("[1, -2, 0x1f, 0o17, 1.5, 1e3, .5, abc, '1', 1.2.3, +7]");
        assert_eq!(
            l.documents[0].value,
            json!([1, -2, 31, 15, 1.5, 1000.0, 0.5, "abc", "1", "1.2.3", 7])
        );
    }

    #[test]
    fn multi_document_streams_and_empty_documents() {
        let l = load_str("a: 1\n---\n---\n# only a comment\n---\nb: 2\n");
        let values: Vec<_> = l.documents.iter().map(|d| d.value.clone()).collect();
        assert_eq!(
            values,
            vec![json!({"a": 1}), Value::Null, Value::Null, json!({"b": 2})]
        );
        assert_eq!(
            l.documents[3].positions.locate("/b").key,
            Some(Pos::new(6, 1))
        );
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second() {
        let l = load_str("a: 1\nb: 2\na: 3\n");
        assert_eq!(all_findings(&l), vec![(rules::DUPLICATE_KEY, 3, 1)]);
        assert!(
            l.documents[0].findings[0]
                .message
                .contains("first at line 1")
        );
    }

    #[test]
    fn duplicates_in_a_large_mapping_are_each_found_once() {
        // The check is a hash lookup (1,000,000 keys: see bench/); here the answers.
        let mut s: String = (0..5000).map(|i| format!("k{i}: {i}\n")).collect();
        s.push_str("k0: again\nk4999: again\nk0: thrice\n");
        let l = load_str(&s);
        let dups: Vec<_> = l.documents[0]
            .findings
            .iter()
            .map(|f| (f.pos.line, f.message.clone()))
            .collect();
        assert_eq!(dups.len(), 3, "{dups:?}");
        assert!(dups[0].1.contains("`k0` (first at line 1)"));
        assert!(dups[1].1.contains("`k4999` (first at line 5000)"));
        assert_eq!(dups[2].0, 5003);
        let d = &l.documents[0];
        assert_eq!(d.value["k0"], json!("thrice"));
        assert_eq!(d.value.as_object().map(|m| m.len()), Some(5000));
        assert_eq!(d.positions.locate("/k0").key, Some(Pos::new(5003, 1)));
    }

    #[test]
    fn many_complex_keys_on_one_line_are_each_reported() {
        let s = format!(
            "{{{}}}\n",
            (0..2000)
                .map(|i| format!("[k{i}]: {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let l = load_str(&s);
        let n = all_findings(&l)
            .iter()
            .filter(|f| f.0 == rules::COMPLEX_KEY)
            .count();
        assert_eq!(n, 2000);
    }

    #[test]
    fn yaml11_traps_only_on_plain_scalars() {
        let l = load_str("on: yes\nmode: 0644\nq: 'no'\nbig: 1_000\nok: true\n");
        assert_eq!(
            all_findings(&l),
            vec![
                (rules::AMBIGUOUS_BOOL, 1, 1),
                (rules::AMBIGUOUS_BOOL, 1, 5),
                (rules::AMBIGUOUS_NUMBER, 2, 7),
                (rules::AMBIGUOUS_NUMBER, 4, 6),
            ]
        );
        assert_eq!(l.documents[0].value["mode"], json!(644));
        assert!(
            l.documents[0].findings[2]
                .message
                .contains("octal number 420")
        );
    }

    #[test]
    fn documents_read_again_on_their_own_are_the_same() {
        let text = "# lead\na: 1\n--- # two\nb: &x [1, 2]\nc: *x\n...\n---\nd: {e: f}\n";
        let file: Arc<str> = Arc::from("f.yaml");
        let docs = load(&file, text).documents;
        let starts: Vec<Option<u32>> = docs.iter().map(|d| d.start_line).collect();
        assert_eq!(starts, [Some(0), Some(2), Some(6)]);
        let offsets = [
            0,
            text.find("---").unwrap(),
            text.rfind("---").unwrap(),
            text.len(),
        ];
        for (k, doc) in docs.iter().enumerate() {
            let range = offsets[k]..offsets[k + 1];
            let start = doc.start_line.unwrap();
            let again = document_again(&file, text, range, start, k, &YamlLimits::default())
                .unwrap_or_else(|| panic!("document {k}"));
            assert_eq!((again.index, &again.value), (doc.index, &doc.value));
            assert_eq!(again.positions, doc.positions);
        }
        // Two documents are not one; a directive keeps documents in their stream.
        assert!(document_again(&file, text, 0..text.len(), 0, 0, &YamlLimits::default()).is_none());
        let directive = load(&file, "%YAML 1.2\n---\na: 1\n---\nb: 2\n").documents;
        assert!(directive.iter().all(|d| d.start_line.is_none()));
    }

    #[test]
    fn syntax_error_keeps_other_documents() {
        let l = load_str("a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n");
        let values: Vec<_> = l.documents.iter().map(|d| d.value.clone()).collect();
        assert_eq!(values, vec![json!({"a": 1}), json!({"d": 4})]);
        assert_eq!(l.findings.len(), 1);
        assert_eq!(l.findings[0].rule, rules::SYNTAX);
        assert!(l.findings[0].pos.line >= 3);
        assert_eq!(
            l.documents[1].positions.locate("/d").key,
            Some(Pos::new(6, 1))
        );
    }

    #[test]
    fn earlier_tabs_and_runtime_templates_do_not_hijack_a_later_error() {
        let text = "a: |\n  x\n  \ty\nb: \"{{ $labels.x }}\"\nc:\nd: [1\n";
        let l = load_str(text);
        assert_eq!(all_findings(&l), vec![(rules::SYNTAX, 6, 6)]);
    }

    #[test]
    fn alias_depth_is_bounded() {
        let mut s = String::from("a0: &a0 [1]\n");
        for i in 1..40 {
            let p = i - 1;
            s.push_str(&format!("a{i}: &a{i} [[[[[[[[*a{p}]]]]]]]]\n"));
        }
        let l = load_str(&s);
        assert_eq!(l.findings[0].rule, rules::LIMIT);
        assert!(
            l.findings[0].message.contains("nesting deeper"),
            "{:?}",
            l.findings
        );
    }

    #[test]
    fn tabs_in_indentation_are_named() {
        let l = load_str("a:\n\tb: 1\n");
        assert_eq!(all_findings(&l), vec![(rules::TAB, 2, 1)]);
    }

    #[test]
    fn chart_templates_are_leftovers_but_runtime_templates_are_data() {
        // In a value that parses, a leftover is the policy `template-leftover`'s (exemptable).
        let l =
            load_str("image: \"{{ .Values.image }}\"\nsummary: \"{{ $labels.instance }} down\"\n");
        assert_eq!(all_findings(&l), vec![]);
        let l = load_str("spec:\n  replicas: {{ .Values.replicas }}\n");
        assert_eq!(all_findings(&l)[0].0, rules::TEMPLATE_LEFTOVER);
        let l = load_str("{{- if .Values.enabled }}\nkind: Pod\n{{- end }}\n");
        assert_eq!(all_findings(&l), vec![(rules::TEMPLATE_LEFTOVER, 1, 1)]);
        // Alertmanager's templates in a block scalar, then a real syntax error: not a leftover.
        let l = load_str(
            "stringData:\n  t.tmpl: |\n    {{ define \"slack.title\" }}\n    {{ if eq .Status \"firing\" }}x{{ end }}\n    {{ end }}\nbad: [\n",
        );
        assert_eq!(all_findings(&l)[0].0, rules::SYNTAX);
        assert_eq!(helm_leftover("{{ with $labels.cluster -}}"), None);
        assert_eq!(helm_leftover("{{ template \"slack.title\" . }}"), None);
        assert_eq!(helm_leftover("a {{ include \"x\" . }}"), Some(2));
    }

    #[test]
    fn a_template_as_a_key_is_reported_once() {
        // `{{name}}` is a flow mapping whose key is a flow mapping: two complex keys, one place.
        let l = load_str("spec:\n  {{name}}template: x\n  a: b\n");
        assert_eq!(all_findings(&l), vec![(rules::TEMPLATE_LEFTOVER, 2, 3)]);
    }

    #[test]
    fn a_template_that_breaks_the_parse_is_reported_once() {
        // The partial parse sees `{{ .Values.name }}` as a flow mapping used as a key; the parse
        // then fails at the chart action below, whose explanation names the same template.
        let l =
            load_str("kind: Service\nmetadata:\n  name: {{ .Values.name }}\n{{- if .Values.x }}\n");
        assert_eq!(all_findings(&l), vec![(rules::TEMPLATE_LEFTOVER, 3, 9)]);
        let found = &l.findings[0];
        assert!(
            found.message.contains("{{ .Values.name }}"),
            "{}",
            found.message
        );
        assert!(
            found
                .help
                .as_deref()
                .is_some_and(|h| h.contains("failed at line 4"))
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let l = load_str("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n");
        assert_eq!(l.documents[0].value["derived"], json!({"x": 1, "y": 3}));
        assert_eq!(
            l.documents[0].positions.locate("/derived/x").key,
            Some(Pos::new(1, 11))
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let l = load_str(&s);
        assert!(l.findings.iter().any(|f| f.rule == rules::LIMIT));
    }

    #[test]
    fn the_alias_budget_is_the_streams_not_each_documents() {
        // Each document expands to about 3,000 nodes, well under the budget alone; together
        // they cross it once, and every later document that expands aliases is refused too,
        // while those without aliases are read.
        let doc = "a: &a [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
        let mut s = String::new();
        for i in 0..40 {
            s.push_str("---\n");
            s.push_str(if i % 2 == 0 { doc } else { "plain: 1\n" });
        }
        let l = load_str(&s);
        let refused = l.findings.iter().filter(|f| f.rule == rules::LIMIT).count();
        let budget = alias_budget(s.len());
        assert!(budget < 20 * 3000, "{budget}");
        assert!(refused > 0 && refused < 20, "{refused}");
        assert_eq!(
            l.documents
                .iter()
                .filter(|d| d.value["plain"] == json!(1))
                .count(),
            20
        );
    }

    #[test]
    fn nested_anchors_are_shared_not_copied() {
        // 120 anchors, each inside the one before: parsing copies none of them (it used to copy
        // every anchored subtree, quadratic in the nesting), and the value is all there.
        let mut s = String::new();
        for i in 0..120 {
            s.push_str(&format!("{{k{i}: v, n{i}: &a{i} "));
        }
        s.push_str("end");
        s.push_str(&"}".repeat(120));
        s.push_str("\nagain: *a100\n");
        let l = load_str(&format!("root: {s}"));
        assert!(all_findings(&l).is_empty(), "{:?}", l.findings);
        let again = &l.documents[0].value["again"];
        assert_eq!(again["k101"], json!("v"));
    }

    #[test]
    fn documents_past_the_limit_are_one_finding() {
        let limits = YamlLimits {
            max_documents: 3,
            ..YamlLimits::default()
        };
        let s = "a: 1\n---\nb: 2\n---\nc: 3\n---\nd: 4\n---\ne: 5\n";
        let l = load_with(&Arc::from("t.yaml"), s, &limits);
        assert_eq!(l.documents.len(), 3);
        assert_eq!(all_findings(&l), vec![(rules::LIMIT, 6, 1)]);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let s = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let l = load_str(&s);
        assert_eq!(l.findings[0].rule, rules::SYNTAX);
    }

    #[test]
    fn unknown_tags_and_huge_numbers_are_reported() {
        let l = load_str(
            "a: !Ref bucket\nb: !!python/object:os.system x\nc: 1e400\nd: !!str 5\ne: !!int 7\nf: ! 8\ng: !Custom {x: 1}\nh: !!map {z: 2}\ni: -1e400\nj: 1e300\n",
        );
        assert_eq!(
            all_findings(&l),
            vec![
                (rules::UNKNOWN_TAG, 1, 4),
                (rules::UNKNOWN_TAG, 2, 4),
                (rules::UNKNOWN_TAG, 7, 4),
                (rules::UNREPRESENTABLE, 3, 4),
                (rules::UNREPRESENTABLE, 9, 4),
            ]
        );
        let v = &l.documents[0].value;
        assert_eq!(
            (&v["d"], &v["e"], &v["f"]),
            (&json!("5"), &json!(7), &json!("8"))
        );
        assert!(v["j"].is_number());
        assert!(
            l.documents[0].findings[1]
                .message
                .contains("`!!python/object:os.system`")
        );
    }

    #[test]
    fn complex_keys_and_special_floats() {
        let l = load_str("? [a]\n: 1\nx: .nan\n");
        assert_eq!(
            all_findings(&l),
            vec![(rules::COMPLEX_KEY, 1, 3), (rules::UNREPRESENTABLE, 3, 4)]
        );
    }
}
