//! Desired against live: what applying an object would change, on the fields tally manages.
//!
//! Only the fields in the desired object count (the fields server-side apply would set), compared
//! one by one, so whatever the API server adds is not a change: defaults (`imagePullPolicy`,
//! `protocol: TCP`, `terminationMessagePath`), status, metadata the server owns, and fields other
//! managers set (an HPA's `replicas`, an injected sidecar). Values are compared the way the API
//! server stores them: quantities by amount (`1000m` = `1`, `1024Mi` = `1Gi`), int-or-string
//! forms (`"80"` = `80`), numbers by value, and an empty map, list or null the same as absent.
//!
//! A live field that desired omits is a change only when tally's field manager set it before and
//! no other manager also owns it (read from `metadata.managedFields`): applying will then remove
//! it. Associative lists (containers, env, ports, volumes, ...) are matched by their keys, not
//! their positions; other lists are atomic and compared position by position.
//!
//! Secret values (`data`, `stringData`) never leave this module: a change to them is reported
//! by key only, and `stringData` is compared as the `data` the server stores.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use tally_layout::validator::ObjectRef;

use crate::fields::{self, Ownership, same_scalar};

/// What applying one object would do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The object does not exist yet.
    Create,
    /// The object exists and these fields differ.
    Update(Vec<FieldChange>),
    /// The object exists, these fields differ, and the server refuses to change some of them
    /// in place (they are immutable): applying means deleting the object and creating it again.
    Replace(Replace),
    /// Applying would change nothing.
    Unchanged,
}

/// An update the server refuses in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Replace {
    /// The fields that differ (the local diff).
    pub fields: Vec<FieldChange>,
    /// The immutable fields the server named, e.g. `spec.selector`.
    pub immutable: Vec<String>,
    /// Whether the object may be deleted and created again (`tally.dev/recreate: enabled`).
    pub recreate: bool,
}

impl Replace {
    /// Why the object cannot be updated in place, and the way out, in one line.
    pub fn refusal(&self) -> String {
        format!(
            "the server refuses to change {} in place (immutable); to delete the object and \
             create it again, annotate it `{RECREATE_ANNOTATION}: enabled` (or set \
             `recreate: true` on its app), or rename it",
            self.immutable.join(", ")
        )
    }
}

pub use tally_layout::render::RECREATE_ANNOTATION;

/// Whether the desired object allows being deleted and created again.
pub fn recreate_allowed(desired: &Value) -> bool {
    desired
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(RECREATE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("enabled")
}

/// The fields an API server's 422 message says are immutable, e.g. from
/// `Deployment.apps "web" is invalid: spec.selector: Invalid value: ...: field is immutable`;
/// empty when the refusal is about something else.
pub fn immutable_fields_refused(message: &str) -> Vec<String> {
    const PHRASES: &[&str] = &[
        "field is immutable",
        "may not change once set",
        "cannot change roleRef",
        "spec is immutable",
        "updates to statefulset spec for fields other than",
        "updates to job spec",
    ];
    let Some((_, errors)) = message.split_once(" is invalid: ") else {
        return Vec::new();
    };
    let errors = errors.strip_prefix('[').unwrap_or(errors);
    // Each error starts with `path: ` followed by its type; find where each one starts.
    const TYPES: &[&str] = &[
        "Invalid value",
        "Forbidden",
        "Required value",
        "Unsupported value",
        "Duplicate value",
        "Not found",
        "Too long",
        "Too many",
    ];
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let bytes = errors.as_bytes();
    let mut at = 0;
    while at < errors.len() {
        let begins = at == 0 || errors[..at].ends_with(", ");
        if begins {
            let path_len = errors[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || "._[]-\"=/".contains(c)))
                .unwrap_or(errors.len() - at);
            let rest = &errors[at + path_len..];
            if path_len > 0
                && let Some(rest) = rest.strip_prefix(": ")
                && TYPES.iter().any(|t| rest.starts_with(t))
            {
                starts.push((at, &errors[at..at + path_len]));
            }
        }
        at += 1;
        while at < bytes.len() && !errors.is_char_boundary(at) {
            at += 1;
        }
    }
    let mut out = Vec::new();
    for (i, (start, path)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(errors.len(), |(next, _)| *next);
        let text = &errors[*start..end];
        if PHRASES.iter().any(|p| text.contains(p)) && !out.iter().any(|f| f == path) {
            out.push((*path).to_owned());
        }
    }
    out
}

impl Change {
    /// Whether applying would write anything.
    pub fn is_change(&self) -> bool {
        !matches!(self, Change::Unchanged)
    }
}

/// What happens to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The field is set where it was absent.
    Add,
    /// The field is removed (tally set it before and no longer does).
    Remove,
    /// The field's value changes.
    Change,
    /// The field keeps its value, and from now on tally leaves it to others.
    Release,
    /// Tally takes over the fields these managers (`from`) set.
    Adopt,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// Where, e.g. `spec.template.spec.containers[name=web].image`.
    pub path: String,
    /// What happens.
    pub op: Op,
    /// The live value (`None` when added or redacted).
    pub from: Option<Value>,
    /// The desired value (`None` when removed or redacted).
    pub to: Option<Value>,
    /// Whether the values are withheld (Secret data).
    pub redacted: bool,
}

/// Compares a desired object with its live counterpart (`None` when it does not exist).
pub fn diff(desired: &Value, live: Option<&Value>) -> Change {
    diff_leaving(desired, live, &[])
}

/// As [`diff`], for a desired object from which the fields at `left` (JSON pointers through
/// maps) were taken out because they are left to others: their absence is not a removal.
pub fn diff_leaving(desired: &Value, live: Option<&Value>, left: &[String]) -> Change {
    let Some(live) = live else {
        return Change::Create;
    };
    let desired = normalized(desired);
    let (Some(d), Some(l)) = (desired.as_object(), live.as_object()) else {
        return Change::Update(vec![FieldChange {
            path: String::new(),
            op: Op::Change,
            from: None,
            to: None,
            redacted: true,
        }]);
    };
    let mut walker = Walker {
        secret: is_secret(&desired),
        path: Vec::new(),
        out: Vec::new(),
        left,
    };
    walker.object(d, l, &Ownership::of(live));
    if walker.out.is_empty() {
        Change::Unchanged
    } else {
        Change::Update(walker.out)
    }
}

fn is_secret(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("Secret")
        && v.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

/// The desired object as the server will store it: a Secret's `stringData` becomes `data`.
pub(crate) fn normalized(desired: &Value) -> Cow<'_, Value> {
    let Some(string_data) = desired.get("stringData").and_then(Value::as_object) else {
        return Cow::Borrowed(desired);
    };
    if !is_secret(desired) {
        return Cow::Borrowed(desired);
    }
    let mut out = desired.clone();
    if let Some(o) = out.as_object_mut() {
        let mut data = match o.remove("data") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in string_data {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            data.insert(k.clone(), Value::String(base64(text.as_bytes())));
        }
        o.remove("stringData");
        o.insert("data".into(), Value::Object(data));
    }
    Cow::Owned(out)
}

/// Standard base64 with padding, as the API server stores Secret data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A step of a field path.
#[derive(Debug, Clone)]
enum Seg<'a> {
    Field(&'a str),
    Item(String),
    Index(usize),
}

struct Walker<'a> {
    secret: bool,
    path: Vec<Seg<'a>>,
    out: Vec<FieldChange>,
    /// Fields left to others (JSON pointers).
    left: &'a [String],
}

/// Top-level fields that are not the desired state.
const IGNORED_ROOT: &[&str] = &["apiVersion", "kind", "status"];
/// Metadata the server owns.
const IGNORED_METADATA: &[&str] = &[
    "creationTimestamp",
    "resourceVersion",
    "uid",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];
/// Maps whose values are quantities (`resources.limits`, a quota's `hard`, a LimitRange's
/// `default`, ...).
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "hard",
    "capacity",
    "allocatable",
    "min",
    "max",
    "default",
    "defaultRequest",
    "maxLimitRequestRatio",
    "overhead",
];
/// Fields that are quantities themselves.
const QUANTITY_FIELDS: &[&str] = &["sizeLimit", "averageValue"];

impl<'a> Walker<'a> {
    fn ignored(&self, key: &str) -> bool {
        match self.path.as_slice() {
            [] => IGNORED_ROOT.contains(&key),
            [Seg::Field("metadata")] => IGNORED_METADATA.contains(&key),
            _ => false,
        }
    }

    /// Whether field `name` of the current map is left to others.
    fn left(&self, name: &str) -> bool {
        if self.left.is_empty() {
            return false;
        }
        let mut pointer = String::new();
        for seg in &self.path {
            let Seg::Field(f) = seg else { return false };
            pointer.push('/');
            pointer.push_str(&f.replace('~', "~0").replace('/', "~1"));
        }
        pointer.push('/');
        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        crate::ignore::is_left(self.left, &pointer)
    }

    fn redacting(&self) -> bool {
        self.secret
            && matches!(
                self.path.first(),
                Some(Seg::Field("data" | "stringData" | "binaryData"))
            )
    }

    /// Whether the current field holds a quantity.
    fn quantity(&self) -> bool {
        if matches!(
            self.path.first(),
            Some(Seg::Field(
                "metadata" | "data" | "stringData" | "binaryData"
            ))
        ) {
            return false;
        }
        let n = self.path.len();
        let field = |i: usize| match self.path.get(i) {
            Some(Seg::Field(f)) => Some(*f),
            _ => None,
        };
        field(n.wrapping_sub(1)).is_some_and(|f| QUANTITY_FIELDS.contains(&f))
            || (n >= 2 && field(n - 2).is_some_and(|f| QUANTITY_MAPS.contains(&f)))
    }

    fn push(&mut self, op: Op, from: Option<&Value>, to: Option<&Value>) {
        let redacted = self.redacting();
        self.out.push(FieldChange {
            path: render_path(&self.path),
            op,
            from: if redacted { None } else { from.cloned() },
            to: if redacted { None } else { to.cloned() },
            redacted,
        });
    }

    fn object(
        &mut self,
        d: &'a Map<String, Value>,
        l: &'a Map<String, Value>,
        own: &Ownership<'a>,
    ) {
        for (k, dv) in d {
            if self.ignored(k) {
                continue;
            }
            self.path.push(Seg::Field(k));
            let child = own.field(k);
            match l.get(k) {
                None | Some(Value::Null) => {
                    if !absent_is_fine(dv, &child) {
                        self.added(dv);
                    }
                }
                Some(lv) => self.value(dv, lv, &child, k),
            }
            self.path.pop();
        }
        // Fields tally set before and no longer sets.
        let Some(tally) = own.tally else { return };
        for key in tally.keys() {
            let Some(name) = key.strip_prefix("f:") else {
                continue;
            };
            if self.ignored(name) || d.get(name).is_some_and(|v| !v.is_null()) || self.left(name) {
                continue;
            }
            if let Some((name, lv)) = l.get_key_value(name) {
                self.path.push(Seg::Field(name));
                self.removed(lv, &own.field(name));
                self.path.pop();
            }
        }
    }

    fn value(&mut self, d: &'a Value, l: &'a Value, own: &Ownership<'a>, field: &'a str) {
        match (d, l) {
            (Value::Object(dm), Value::Object(lm)) => self.object(dm, lm, own),
            (Value::Array(da), Value::Array(la)) => self.list(da, la, own, field),
            (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => {
                if !(is_empty(d) && is_empty(l)) {
                    self.push(Op::Change, Some(l), Some(d));
                }
            }
            _ => {
                let same = if self.quantity() {
                    same_quantity(d, l)
                } else {
                    same_scalar(d, l)
                };
                if !same {
                    self.push(Op::Change, Some(l), Some(d));
                }
            }
        }
    }

    fn list(&mut self, da: &'a [Value], la: &'a [Value], own: &Ownership<'a>, field: &'a str) {
        let all: Vec<&Value> = da.iter().chain(la.iter()).collect();
        // A list the server keeps whole is replaced by the apply: a live item the desired state
        // lacks is removed, whoever put it there (a subject dropped from a RoleBinding, a port
        // dropped from a NetworkPolicy rule).
        let atomic = own.list_is_atomic();
        if let Some(keys) = fields::list_keys(own, field, &all) {
            let mut matched = vec![false; la.len()];
            for d in da {
                let found = la
                    .iter()
                    .enumerate()
                    .find(|(i, l)| !matched[*i] && same_item(d, l, &keys));
                self.path.push(Seg::Item(item_label(d, &keys)));
                match found {
                    Some((i, l)) => {
                        matched[i] = true;
                        self.value(d, l, &own.item(l), field);
                    }
                    None => self.added(d),
                }
                self.path.pop();
            }
            for (l, _) in la.iter().zip(&matched).filter(|(_, m)| !**m) {
                if atomic {
                    self.path.push(Seg::Item(item_label(l, &keys)));
                    self.push(Op::Remove, Some(l), None);
                    self.path.pop();
                    continue;
                }
                let item = own.item(l);
                if item.tally.is_some() {
                    self.path.push(Seg::Item(item_label(l, &keys)));
                    self.removed(l, &item);
                    self.path.pop();
                }
            }
            return;
        }
        let scalars = all.iter().all(|v| !v.is_object() && !v.is_array());
        if scalars && (own.is_set() || field == "finalizers") {
            for d in da {
                if !la.iter().any(|l| same_scalar(d, l)) {
                    self.path.push(Seg::Item(scalar_label(d)));
                    self.push(Op::Add, None, Some(d));
                    self.path.pop();
                }
            }
            for l in la {
                if !da.iter().any(|d| same_scalar(d, l)) && (atomic || own.member(l).tally_alone())
                {
                    self.path.push(Seg::Item(scalar_label(l)));
                    self.push(Op::Remove, Some(l), None);
                    self.path.pop();
                }
            }
            return;
        }
        // Atomic: the server keeps the list as given, so position matters.
        if da.len() != la.len() {
            self.push_list_change(la, da);
            return;
        }
        let inside = Ownership::atomic();
        for (i, (d, l)) in da.iter().zip(la).enumerate() {
            self.path.push(Seg::Index(i));
            if l.is_null() && !is_empty(d) {
                self.added(d);
            } else {
                self.value(d, l, &inside, field);
            }
            self.path.pop();
        }
    }

    fn push_list_change(&mut self, from: &[Value], to: &[Value]) {
        let from = Value::Array(from.to_vec());
        let to = Value::Array(to.to_vec());
        self.push(Op::Change, Some(&from), Some(&to));
    }

    /// A desired value absent from live: one change per leaf, so a new container reads field by
    /// field.
    fn added(&mut self, d: &'a Value) {
        match d {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    if is_empty(v) {
                        continue;
                    }
                    self.path.push(Seg::Field(k));
                    self.added(v);
                    self.path.pop();
                }
            }
            _ if is_empty(d) => {}
            _ => self.push(Op::Add, None, Some(d)),
        }
    }

    /// A live value tally set before and no longer sets: removed where tally alone owns it.
    fn removed(&mut self, l: &'a Value, own: &Ownership<'a>) {
        if own.tally_alone() {
            self.push(Op::Remove, Some(l), None);
            return;
        }
        // Shared with other managers: only tally's own parts underneath go.
        let Some(tally) = own.tally else { return };
        for key in tally.keys() {
            if let Some(name) = key.strip_prefix("f:") {
                if let Some((name, lv)) = l.as_object().and_then(|m| m.get_key_value(name)) {
                    self.path.push(Seg::Field(name));
                    self.removed(lv, &own.field(name));
                    self.path.pop();
                }
            } else if let Some(json) = key.strip_prefix("k:") {
                let Ok(k) = serde_json::from_str::<Map<String, Value>>(json) else {
                    continue;
                };
                let keys: Vec<String> = k.keys().cloned().collect();
                let item = l.as_array().and_then(|items| {
                    items.iter().find(|i| {
                        k.iter()
                            .all(|(f, v)| i.get(f).is_some_and(|x| same_scalar(v, x)))
                    })
                });
                if let Some(item) = item {
                    self.path.push(Seg::Item(item_label(item, &keys)));
                    self.removed(item, &own.item(item));
                    self.path.pop();
                }
            }
        }
    }
}

/// Whether a desired value may be missing from live without that being a change: empty maps,
/// lists and nulls always (the server drops them); `false`, `0` and `""` when tally already set
/// the field (the server drops zero values of optional fields, but an unset field may differ).
fn absent_is_fine(d: &Value, own: &Ownership<'_>) -> bool {
    is_empty(d)
        || (own.tally.is_some()
            && match d {
                Value::Bool(b) => !b,
                Value::Number(n) => n.as_f64() == Some(0.0),
                Value::String(s) => s.is_empty(),
                _ => false,
            })
}

/// Null, or a map or list with nothing but empty values in it.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether desired item `d` is live item `l` of a keyed list. Key fields desired leaves out (a
/// defaulted `protocol`) do not count; at least one key must be given.
fn same_item(d: &Value, l: &Value, keys: &[String]) -> bool {
    let mut any = false;
    for k in keys {
        if let Some(dv) = d.get(k) {
            any = true;
            if !l.get(k).is_some_and(|lv| same_scalar(dv, lv)) {
                return false;
            }
        }
    }
    any
}

fn item_label(item: &Value, keys: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            item.get(k).map(|v| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
        })
        .collect();
    parts.join(",")
}

fn scalar_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_path(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Field(f) => {
                let plain = !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(f);
                } else {
                    let _ = write!(out, "[{}]", Value::from(*f));
                }
            }
            Seg::Item(label) => {
                let _ = write!(out, "[{label}]");
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// Whether two quantities are the same amount (`1000m` and `1`, `1Gi` and `1024Mi`).
pub fn same_quantity(a: &Value, b: &Value) -> bool {
    if same_scalar(a, b) {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match (
        text(a).as_deref().and_then(quantity),
        text(b).as_deref().and_then(quantity),
    ) {
        (Some(x), Some(y)) => x == y || ((x - y).abs() <= 1e-9 * x.abs().max(y.abs())),
        _ => false,
    }
}

/// The amount of a Kubernetes quantity (`500m`, `1.5Gi`, `2e3`), if it is one.
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(n * scale)
}

/// The longest value shown in a text diff before it is cut.
const MAX_SHOWN: usize = 200;

pub(crate) fn shown(v: Option<&Value>, redacted: bool) -> String {
    if redacted {
        return "(redacted)".into();
    }
    let Some(v) = v else {
        return String::new();
    };
    let text = v.to_string();
    if text.chars().count() <= MAX_SHOWN {
        return text;
    }
    let cut: String = text.chars().take(MAX_SHOWN).collect();
    format!("{cut}… ({} characters)", text.chars().count())
}

/// Appends one object's entry of a text diff: `+ create Deployment shop/web`, or
/// `~ update ...` followed by one indented line per field; nothing when unchanged.
pub fn write_change(out: &mut String, id: &ObjectRef, change: &Change) {
    match change {
        Change::Unchanged => {}
        Change::Create => {
            let _ = writeln!(out, "+ create {id}");
        }
        Change::Update(fields) => {
            let _ = writeln!(out, "~ update {id}");
            for f in fields {
                write_field(out, f);
            }
        }
        Change::Replace(r) => {
            let _ = writeln!(out, "± replace {id} ({} immutable)", r.immutable.join(", "));
            for f in &r.fields {
                write_field(out, f);
            }
            if r.recreate {
                let _ = writeln!(
                    out,
                    "    deleted and created again ({RECREATE_ANNOTATION}: enabled)"
                );
            } else {
                let _ = writeln!(out, "    ! {}", r.refusal());
            }
        }
    }
}

fn write_field(out: &mut String, f: &FieldChange) {
    let multiline = |v: &Option<Value>| {
        v.as_ref()
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains('\n'))
    };
    match f.op {
        Op::Add => {
            let _ = writeln!(
                out,
                "    + {}: {}",
                f.path,
                shown(f.to.as_ref(), f.redacted)
            );
        }
        Op::Adopt => {
            let _ = writeln!(
                out,
                "    ⇠ adopting: the fields {} set are tally's from now on",
                f.from.as_ref().and_then(Value::as_str).unwrap_or_default()
            );
        }
        Op::Release => {
            let _ = writeln!(
                out,
                "    ⇢ {}: {} (left to others from now on)",
                f.path,
                shown(f.from.as_ref(), f.redacted)
            );
        }
        Op::Remove => {
            let _ = writeln!(
                out,
                "    - {}: {}",
                f.path,
                shown(f.from.as_ref(), f.redacted)
            );
        }
        Op::Change if f.redacted => {
            let _ = writeln!(out, "    ~ {}: (redacted, changed)", f.path);
        }
        Op::Change if multiline(&f.from) || multiline(&f.to) => {
            let _ = writeln!(out, "    ~ {}:", f.path);
            let text =
                |v: &Option<Value>| v.as_ref().and_then(Value::as_str).unwrap_or("").to_owned();
            write_lines(out, &text(&f.from), &text(&f.to));
        }
        Op::Change => {
            let _ = writeln!(
                out,
                "    ~ {}: {} → {}",
                f.path,
                shown(f.from.as_ref(), false),
                shown(f.to.as_ref(), false)
            );
        }
    }
}

/// A line diff of two texts: the lines between their common start and end.
fn write_lines(out: &mut String, from: &str, to: &str) {
    let a: Vec<&str> = from.lines().collect();
    let b: Vec<&str> = to.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    for line in &a[prefix..a.len() - suffix] {
        let _ = writeln!(out, "        -{line}");
    }
    for line in &b[prefix..b.len() - suffix] {
        let _ = writeln!(out, "        +{line}");
    }
}

/// Appends a prune line: `- prune ConfigMap shop/old`.
pub fn write_prune(out: &mut String, id: &ObjectRef) {
    let _ = writeln!(out, "- prune {id}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The list at `v`, made one if it is not.
    fn list(v: &mut Value) -> &mut Vec<Value> {
        if !v.is_array() {
            *v = json!([]);
        }
        match v {
            Value::Array(a) => a,
            _ => unreachable!("just made a list"),
        }
    }

    fn changes(desired: Value, live: Value) -> Vec<String> {
        match diff(&desired, Some(&live)) {
            Change::Unchanged => Vec::new(),
            Change::Create => vec!["create".into()],
            Change::Update(fields) | Change::Replace(Replace { fields, .. }) => {
                let mut out = String::new();
                for f in &fields {
                    write_field(&mut out, f);
                }
                out.lines().map(|l| l.trim().to_owned()).collect()
            }
        }
    }

    fn deployment(replicas: u32, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": image,
                                        "ports": [{"containerPort": 80}],
                                        "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}]}}}})
    }

    /// The Deployment as the API server returns it after tally applied `deployment(2, "web:1")`.
    fn live_deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                "uid": "u-1", "resourceVersion": "42", "generation": 3,
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "annotations": {"deployment.kubernetes.io/revision": "3"},
                "managedFields": [
                    {"manager": "tally", "operation": "Apply", "apiVersion": "apps/v1",
                     "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                            "f:metadata": {"f:labels": {"f:app": {}}},
                            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                                ".": {}, "f:name": {}, "f:image": {},
                                "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                    ".": {}, "f:containerPort": {}}},
                                "f:resources": {"f:limits": {"f:cpu": {}, "f:memory": {}}}}}}}}}},
                    {"manager": "kube-controller-manager", "operation": "Update",
                     "subresource": "status", "fieldsV1": {"f:status": {}}}
                ]},
            "spec": {"replicas": 2, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1",
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                        "terminationMessagePath": "/dev/termination-log"}],
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {}}}},
            "status": {"observedGeneration": 3, "replicas": 2}})
    }

    #[test]
    fn server_defaults_status_and_normalized_quantities_are_not_changes() {
        assert_eq!(
            changes(deployment(2, "web:1"), live_deployment()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_changed_field_is_reported_once_with_its_path() {
        assert_eq!(
            changes(deployment(3, "web:2"), live_deployment()),
            vec![
                "~ spec.replicas: 2 → 3",
                "~ spec.template.spec.containers[name=web].image: \"web:1\" → \"web:2\"",
            ]
        );
    }

    #[test]
    fn a_missing_object_is_created() {
        assert_eq!(diff(&deployment(1, "x"), None), Change::Create);
    }

    #[test]
    fn fields_tally_dropped_are_removed_but_others_fields_are_not() {
        let mut desired = deployment(2, "web:1");
        // tally no longer sets replicas (an HPA takes over) nor the label.
        desired["spec"]
            .as_object_mut()
            .map(|s| s.remove("replicas"));
        desired["metadata"]["labels"] = json!({});
        let mut live = live_deployment();
        live["metadata"]["labels"]["team"] = json!("a");
        assert_eq!(
            changes(desired, live),
            vec!["- metadata.labels.app: \"web\"", "- spec.replicas: 2"]
        );
    }

    #[test]
    fn a_field_shared_with_another_manager_is_not_reported_as_removed() {
        let mut desired = deployment(2, "web:1");
        desired["spec"]
            .as_object_mut()
            .map(|s| s.remove("replicas"));
        let mut live = live_deployment();
        list(&mut live["metadata"]["managedFields"]).push(json!({"manager": "hpa",
            "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}));
        assert_eq!(changes(desired, live), Vec::<String>::new());
    }

    #[test]
    fn keyed_lists_match_by_key_and_ignore_items_of_others() {
        let mut live = live_deployment();
        // A sidecar someone else added, listed first.
        list(&mut live["spec"]["template"]["spec"]["containers"])
            .insert(0, json!({"name": "proxy", "image": "envoy"}));
        assert_eq!(
            changes(deployment(2, "web:1"), live.clone()),
            Vec::<String>::new()
        );

        let mut desired = deployment(2, "web:1");
        list(&mut desired["spec"]["template"]["spec"]["containers"])
            .push(json!({"name": "log", "image": "fluent", "args": ["-v"]}));
        assert_eq!(
            changes(desired, live),
            vec![
                "+ spec.template.spec.containers[name=log].name: \"log\"",
                "+ spec.template.spec.containers[name=log].image: \"fluent\"",
                "+ spec.template.spec.containers[name=log].args: [\"-v\"]",
            ]
        );
    }

    #[test]
    fn a_keyed_item_tally_owned_is_removed_when_dropped() {
        let mut desired = deployment(2, "web:1");
        desired["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([]);
        assert_eq!(
            changes(desired, live_deployment()),
            vec![
                "- spec.template.spec.containers[name=web].ports[containerPort=80,protocol=TCP]: {\"containerPort\":80,\"protocol\":\"TCP\"}"
            ]
        );
    }

    #[test]
    fn atomic_lists_compare_by_position() {
        let d = json!({"apiVersion": "v1", "kind": "X", "spec": {"args": ["a", "b"]}});
        let l = json!({"apiVersion": "v1", "kind": "X", "spec": {"args": ["a", "c"]}});
        assert_eq!(changes(d.clone(), l), vec!["~ spec.args[1]: \"c\" → \"b\""]);
        let l = json!({"apiVersion": "v1", "kind": "X", "spec": {"args": ["a"]}});
        assert_eq!(changes(d, l), vec!["~ spec.args: [\"a\"] → [\"a\",\"b\"]"]);
    }

    #[test]
    fn int_or_string_numbers_and_empty_values_are_normalized() {
        let d = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "annotations": {}},
            "spec": {"ports": [{"port": 80, "targetPort": "8080"}], "selector": {"app": "x"},
                     "externalIPs": [], "sessionAffinityConfig": null}});
        let l = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80.0, "targetPort": 8080, "protocol": "TCP"}],
                     "selector": {"app": "x"}, "clusterIP": "10.0.0.1", "type": "ClusterIP"}});
        assert_eq!(changes(d, l), Vec::<String>::new());
    }

    #[test]
    fn zero_values_missing_from_live_count_only_before_tally_set_them() {
        let d = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"hostNetwork": false,
            "automountServiceAccountToken": false}});
        let l = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"automountServiceAccountToken": false},
            "metadata": {"managedFields": [{"manager": "tally", "operation": "Apply",
                "fieldsV1": {"f:spec": {"f:hostNetwork": {}, "f:automountServiceAccountToken": {}}}}]}});
        assert_eq!(changes(d.clone(), l), Vec::<String>::new());
        let never_applied = json!({"apiVersion": "v1", "kind": "Pod", "spec": {}});
        assert_eq!(
            changes(d, never_applied),
            vec![
                "+ spec.hostNetwork: false",
                "+ spec.automountServiceAccountToken: false"
            ]
        );
    }

    #[test]
    fn a_port_dropped_inside_an_atomic_list_is_a_change() {
        // NetworkPolicy `ingress` is atomic: the server records it as a leaf, and an apply
        // replaces it whole. Dropping port 9090 in git must be planned.
        let policy = |ports: Value| {
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"podSelector": {}, "ingress": [{"ports": ports}]}})
        };
        let mut live =
            policy(json!([{"port": 80, "protocol": "TCP"}, {"port": 9090, "protocol": "TCP"}]));
        live["metadata"]["managedFields"] = json!([{"manager": "tally", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:podSelector": {}, "f:ingress": {}}}}]);
        let c = changes(policy(json!([{"port": 80}])), live.clone());
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            c[0].starts_with("- spec.ingress[0].ports[port=9090"),
            "{c:?}"
        );
        // Defaults the server adds inside it (protocol) are not changes.
        assert_eq!(
            changes(policy(json!([{"port": 80}, {"port": 9090}])), live),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_subject_dropped_from_an_atomic_list_is_a_change() {
        // RoleBinding `subjects` is atomic on a real server: `f:subjects: {}`, no `k:` entries.
        let binding = |names: &[&str]| {
            let subjects: Vec<Value> = names
                .iter()
                .map(
                    |n| json!({"kind": "User", "name": n, "apiGroup": "rbac.authorization.k8s.io"}),
                )
                .collect();
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "devs", "namespace": "shop"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "edit"},
                "subjects": subjects})
        };
        let mut live = binding(&["alice", "mallory"]);
        live["metadata"]["managedFields"] = json!([{"manager": "tally", "operation": "Apply",
            "fieldsV1": {"f:roleRef": {}, "f:subjects": {}}}]);
        let c = changes(binding(&["alice"]), live);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].starts_with("~ subjects:"), "{c:?}");
        assert!(!c[0].ends_with("mallory"), "{c:?}");
    }

    #[test]
    fn immutable_fields_are_read_from_the_servers_refusal() {
        let one = r#"Deployment.apps "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"a, b: c"}}: field is immutable"#;
        assert_eq!(immutable_fields_refused(one), ["spec.selector"]);
        let two = r#"Job.batch "j" is invalid: [spec.selector: Invalid value: {}: field is immutable, spec.template: Invalid value: {"x": 1}: field is immutable]"#;
        assert_eq!(
            immutable_fields_refused(two),
            ["spec.selector", "spec.template"]
        );
        let binding = r#"RoleBinding.rbac.authorization.k8s.io "r" is invalid: roleRef: Invalid value: {"kind":"Role"}: cannot change roleRef"#;
        assert_eq!(immutable_fields_refused(binding), ["roleRef"]);
        let other = r#"Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#;
        assert!(immutable_fields_refused(other).is_empty());
        assert!(immutable_fields_refused("admission webhook denied the request").is_empty());
    }

    #[test]
    fn quantities_compare_by_amount_only_where_they_are_quantities() {
        assert!(same_quantity(&json!("1000m"), &json!("1")));
        assert!(same_quantity(&json!("0.5"), &json!("500m")));
        assert!(same_quantity(&json!("1024Mi"), &json!("1Gi")));
        assert!(same_quantity(&json!(2), &json!("2")));
        assert!(same_quantity(&json!("1e3"), &json!("1k")));
        assert!(!same_quantity(&json!("1Gi"), &json!("1G")));
        assert_eq!(quantity("1.5Gi"), Some(1.5 * 1024f64.powi(3)));
        assert_eq!(quantity("abc"), None);
        // A ConfigMap value is text: "1000m" is not "1" there.
        let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"limits": "1000m"}});
        let l = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"limits": "1"}});
        assert_eq!(changes(d, l), vec!["~ data.limits: \"1\" → \"1000m\""]);
    }

    #[test]
    fn secret_values_are_redacted_and_string_data_is_compared_as_data() {
        let d = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"user": "admin", "password": "new"}, "data": {"token": "dG9r"}});
        let l = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"user": base64(b"admin"), "password": base64(b"old")}, "type": "Opaque"});
        let c = changes(d.clone(), l);
        assert_eq!(
            c,
            vec![
                "+ data.token: (redacted)",
                "~ data.password: (redacted, changed)"
            ]
        );
        let Change::Update(fields) = diff(
            &d,
            Some(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}})),
        ) else {
            panic!("expected an update");
        };
        assert!(
            fields
                .iter()
                .all(|f| f.redacted && f.from.is_none() && f.to.is_none())
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"admin\xff"), "YWRtaW7/");
    }

    #[test]
    fn sets_and_odd_keys() {
        let d = json!({"apiVersion": "v1", "kind": "X", "metadata": {"finalizers": ["a", "b"],
            "annotations": {"example.com/x y": "1"}}});
        let l = json!({"apiVersion": "v1", "kind": "X", "metadata": {"finalizers": ["b", "c"],
            "annotations": {}}});
        assert_eq!(
            changes(d, l),
            vec![
                "+ metadata.finalizers[a]: \"a\"",
                "+ metadata.annotations[\"example.com/x y\"]: \"1\""
            ]
        );
    }

    #[test]
    fn the_text_diff_reads_like_a_plan() {
        let id = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        };
        let mut out = String::new();
        write_change(&mut out, &id, &Change::Create);
        write_change(
            &mut out,
            &id,
            &diff(&deployment(3, "web:1"), Some(&live_deployment())),
        );
        write_change(&mut out, &id, &Change::Unchanged);
        write_prune(&mut out, &id);
        assert_eq!(
            out,
            "+ create Deployment shop/web\n~ update Deployment shop/web\n    ~ spec.replicas: 2 → 3\n- prune Deployment shop/web\n"
        );
    }

    #[test]
    fn multi_line_values_show_the_lines_that_changed() {
        let d = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"app.conf": "a\nb\nc\n"}});
        let l = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"app.conf": "a\nx\nc\n"}});
        assert_eq!(changes(d, l), vec!["~ data[\"app.conf\"]:", "-x", "+b"]);
    }
}
