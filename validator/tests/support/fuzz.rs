//! The gate under mutated input: a small seeded mutator over the repo's own fixtures and
//! examples, and the invariants every run must keep. Shared by the property tests
//! (`tests/properties.rs`, fixed seed, bounded count) and the fuzz harness
//! (`examples/fuzz.rs`, `--iterations`, `--seed`). Standard library only: runs on stable.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tally_validator::Severity;
use tally_validator::finding::{drop_consequences, sort_findings};
use tally_validator::gate::{self, GateOptions, GateReport};
use tally_validator::report::{self, Format, ReportOptions};
use tally_validator::schema::SchemaRegistry;

/// xorshift64*: small, fast, and the same sequence for a seed everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One seed input: its name (the extension matters: `.json` is read as JSON) and bytes.
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The repo's fixtures and examples (`.yaml`, `.yml`, `.json`), sorted by path.
pub fn corpus() -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = Vec::new();
    for dir in ["tests/fixtures", "examples"] {
        walk(&root.join(dir), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some(Seed { name, bytes })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if tally_validator::source::is_manifest_path(&p) {
            out.push(p);
        }
    }
}

/// Bytes that break YAML, JSON and the gate's assumptions in interesting ways.
const TOKENS: &[&[u8]] = &[
    b"\n---\n",
    b"---",
    b"...\n",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b": ",
    b"- ",
    b"? ",
    b"\t",
    b"\0",
    b"\xff",
    b"\xe9",
    b"\xef\xbb\xbf",
    b"!Ref ",
    b"!!python/object ",
    b"!!str ",
    b"\"",
    b"'",
    b"#",
    b"//",
    b"\n",
    b"\r\n",
    b"  ",
    b"1e400",
    b".nan",
    b"yes",
    b"0644",
    b"{{ .Values.x }}",
    b"{{name}}",
    b"kind: List\nitems:\n- ",
    b"apiVersion: v1\n",
    b"kind: ConfigMap\n",
    b"metadata:\n  name: x\n",
    b"\x1b[2J",
    b"\xe2\x80\xae",
    b"%YAML 1.2\n",
    b"|\n",
    b">-\n",
    b"\\",
    b",",
    b"a: 1\na: 2\n",
    b"[[[[[[[[[[",
    b"]]]]]]]]]]",
];

/// 1 to 4 random edits of a seed (or a splice of two seeds).
pub fn mutate(rng: &mut Rng, seeds: &[Seed]) -> (String, Vec<u8>) {
    let seed = &seeds[rng.below(seeds.len())];
    let mut bytes = seed.bytes.clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 | 2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(256)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())].bytes;
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(512)).min(other.len());
                bytes.splice(at..at, other[from..end].iter().copied());
            }
            _ => bytes.truncate(at),
        }
    }
    (seed.name.clone(), bytes)
}

/// The gate on one file's bytes, as `tally validate` would judge it (schemas and policies).
pub fn judge(
    name: &str,
    bytes: Vec<u8>,
    registry: &SchemaRegistry,
    options: &GateOptions,
) -> GateReport {
    let json = name.to_ascii_lowercase().ends_with(".json");
    let mut loaded = gate::load_bytes(name, bytes, json, &options.limits);
    let mut findings = std::mem::take(&mut loaded.findings);
    findings.extend(gate::check_set(registry, &loaded.objects, options));
    sort_findings(&mut findings);
    drop_consequences(&mut findings);
    gate::report(loaded, findings, registry)
}

/// The invariants: every report format writes, JSON and SARIF parse, every finding sits on a
/// line of its file (or just past its end, where an unfinished document is reported).
pub fn check(report: &GateReport, name: &str, bytes: &[u8]) -> Result<(), String> {
    let lines = bytes.split(|&b| b == b'\n').count() as u32;
    for f in &report.findings {
        if &*f.file != name {
            return Err(format!("a finding names another file: {f:?}"));
        }
        if f.pos.line == 0 || f.pos.column == 0 || f.pos.line > lines + 1 {
            return Err(format!("a finding outside the file ({lines} lines): {f:?}"));
        }
    }
    for format in [
        Format::Human,
        Format::Json,
        Format::Sarif,
        Format::Junit,
        Format::Github,
    ] {
        let mut out = Vec::new();
        let options = ReportOptions {
            color: false,
            show: Severity::Info,
        };
        report::write(format, report, options, &mut out)
            .map_err(|e| format!("{format:?} failed: {e}"))?;
        let text = String::from_utf8(out).map_err(|_| format!("{format:?} is not UTF-8"))?;
        if matches!(format, Format::Json | Format::Sarif) {
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("{format:?} is not valid JSON: {e}"))?;
        }
    }
    Ok(())
}

/// The streamed gate (`tally validate FILE`: two passes, documents read again on their own)
/// must find what [`judge`] finds on the same bytes loaded whole: the same rules at the same
/// places with the same messages, in the same order. The bytes are written to `dir` under a
/// name unique to `tag`, judged, and removed.
pub fn streamed_agrees(
    name: &str,
    bytes: &[u8],
    whole: &GateReport,
    options: &GateOptions,
    dir: &Path,
    tag: u64,
) -> Result<(), String> {
    let file = dir.join(format!("{tag}-{}", name.rsplit('/').next().unwrap_or(name)));
    std::fs::write(&file, bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let streamed = gate::validate_paths(std::slice::from_ref(&file), options);
    let _ = std::fs::remove_file(&file);
    let streamed = streamed.map_err(|e| format!("the streamed gate failed: {e}"))?;
    let shown = |r: &GateReport| -> Vec<String> {
        r.findings
            .iter()
            .map(|f| {
                format!(
                    "{} {:?} {}:{} {}",
                    f.rule, f.severity, f.pos.line, f.pos.column, f.message
                )
            })
            .collect()
    };
    let (a, b) = (shown(whole), shown(&streamed));
    if a == b {
        return Ok(());
    }
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    Err(format!(
        "the streamed gate differs from the whole one at finding {at} of {}/{}: whole {:?}, streamed {:?}\n  whole:    {a:?}\n  streamed: {b:?}",
        a.len(),
        b.len(),
        a.get(at),
        b.get(at)
    ))
}

/// The schema registry and options a fuzz run judges with (policies on).
pub fn setup() -> (SchemaRegistry, GateOptions) {
    let options = GateOptions::default();
    let registry = SchemaRegistry::new(options.schema.clone()).expect("the embedded schemas load");
    (registry, options)
}
