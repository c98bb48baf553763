//! From JSON-schema errors to findings a person can act on: each at the offending field's own
//! line, worded in Kubernetes terms (field paths like `spec.containers[0].image`, "an integer or a
//! string" rather than `oneOf` noise), with the field they probably meant when one is close.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError};
use serde_json::Value;

use super::rules;
use crate::object::Object;
use crate::position::{escape_segment, unescape_segment};

/// The quantity grammar that `validator/schemas/generate.py` puts on Quantity; recognised here to
/// word the error. Keep the two in sync.
pub(super) const QUANTITY_PATTERN: &str =
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

const QUANTITY: &str = "a quantity such as 500m or 1Gi";
const QUANTITY_HELP: &str = "a quantity is a number with an optional suffix: m (milli), k, M, G, T \
    (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), e.g. 250m, 1.5, 512Mi";

/// Where in the source a problem is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    /// The key of the field (unknown fields, missing children).
    Key,
    /// The value (wrong types and values).
    Value,
}

/// One problem found in an object, before it becomes a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// The rule it breaks.
    pub rule: &'static str,
    /// Pointer to the field, relative to the object.
    pub pointer: String,
    /// Whether to show the key or the value.
    pub at: At,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The kind of problem, so a cascade at one place reports once.
    pub keyword: &'static str,
    /// For a missing required field, its object's pointer and its name; for an unknown field,
    /// its object's pointer and the name it probably meant. When both meet, the misspelling
    /// explains the missing field and only it is reported.
    pub field: Option<(String, String)>,
}

/// Describes one validation error. `site` is the schema node holding the failing keyword, when
/// known: it names the fields allowed where an unknown one was found.
pub(super) fn describe(
    object: &Object,
    error: &ValidationError<'_>,
    site: Option<&Value>,
) -> Vec<Problem> {
    let pointer = error.instance_path().as_str().to_owned();
    let instance = object.value.pointer(&pointer).unwrap_or(&Value::Null);
    let kind_name = &object.id.kind;
    let path = field_path(&object.value, &pointer);
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("`{path}`: ")
    };
    let problem = |rule, at, keyword, message: String, help: Option<String>| Problem {
        rule,
        pointer: pointer.clone(),
        at,
        message,
        help,
        keyword,
        field: None,
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let allowed = site.map(property_names).unwrap_or_default();
            unexpected
                .iter()
                .map(|name| unknown_field(kind_name, &pointer, &path, name, &allowed))
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            let place = place(kind_name, &path);
            let message = format!("missing required field `{name}` in {place}");
            vec![Problem {
                field: Some((pointer.clone(), name)),
                ..problem(rules::INVALID, At::Key, "required", message, None)
            }]
        }
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<JsonType> = match kind {
                TypeKind::Single(t) => vec![*t],
                TypeKind::Multiple(set) => set.iter().collect(),
            };
            vec![type_problem(&pointer, &prefix, instance, &expected, site)]
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // A union of plain types (IntOrString in kubeconform-style schemas) is a type error.
            match union_of_types(context, error.instance_path().as_str()) {
                Some(expected) => vec![type_problem(&pointer, &prefix, instance, &expected, site)],
                None => {
                    let forms: Vec<String> = context
                        .iter()
                        .filter_map(|branch| branch.first())
                        .take(4)
                        .map(|e| e.masked_with("the value").to_string())
                        .collect();
                    let help =
                        (!forms.is_empty()).then(|| format!("forms tried: {}", forms.join("; ")));
                    vec![problem(
                        rules::INVALID,
                        At::Value,
                        "oneOf",
                        format!("{prefix}matches none of the allowed forms"),
                        help,
                    )]
                }
            }
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => vec![problem(
            rules::INVALID,
            At::Value,
            "oneOf",
            format!(
                "{prefix}matches more than one of the allowed forms; it must match exactly one"
            ),
            None,
        )],
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<&Value> = options
                .as_array()
                .map(|a| a.iter().filter(|v| !v.is_null()).collect())
                .unwrap_or_default();
            let listed = allowed
                .iter()
                .map(|v| format!("`{}`", plain(v)))
                .collect::<Vec<_>>()
                .join(", ");
            let mut message = format!(
                "{prefix}{} is not allowed; expected {}{listed}",
                shown(instance),
                if allowed.len() == 1 { "" } else { "one of " }
            );
            if let Some(s) = instance
                .as_str()
                .and_then(|found| suggest(found, allowed.iter().filter_map(|v| v.as_str())))
            {
                message.push_str(&format!("; did you mean `{s}`?"));
            }
            vec![problem(rules::INVALID, At::Value, "enum", message, None)]
        }
        ValidationErrorKind::Constant { expected_value } => vec![problem(
            rules::INVALID,
            At::Value,
            "const",
            format!(
                "{prefix}{} is not allowed; expected `{}`",
                shown(instance),
                plain(expected_value)
            ),
            None,
        )],
        ValidationErrorKind::Pattern { pattern } if pattern == QUANTITY_PATTERN => vec![problem(
            rules::INVALID,
            At::Value,
            "quantity",
            format!("{prefix}expected {QUANTITY}, found {}", shown(instance)),
            Some(QUANTITY_HELP.into()),
        )],
        ValidationErrorKind::Pattern { pattern } => vec![problem(
            rules::INVALID,
            At::Value,
            "pattern",
            format!(
                "{prefix}{} does not match the pattern `{pattern}`",
                shown(instance)
            ),
            None,
        )],
        ValidationErrorKind::Format { format } => {
            let (message, help) = match format.as_str() {
                "byte" => (
                    format!("{prefix}not valid base64"),
                    Some(
                        if object.id.kind == "Secret" && pointer.starts_with("/data/") {
                            "Secret `data` values are base64-encoded; put plain text under \
                         `stringData` instead, or encode it (`base64 -w0`)"
                                .to_owned()
                        } else {
                            "encode the value with base64 (`base64 -w0`)".to_owned()
                        },
                    ),
                ),
                "date-time" => (
                    format!(
                        "{prefix}expected an RFC 3339 date-time such as 2024-01-31T12:00:00Z, found {}",
                        shown(instance)
                    ),
                    None,
                ),
                other => (
                    format!("{prefix}{} is not a valid `{other}`", shown(instance)),
                    None,
                ),
            };
            vec![problem(rules::INVALID, At::Value, "format", message, help)]
        }
        ValidationErrorKind::Minimum { limit } => vec![problem(
            rules::INVALID,
            At::Value,
            "range",
            format!(
                "{prefix}{} is less than the minimum {limit}",
                shown(instance)
            ),
            None,
        )],
        ValidationErrorKind::Maximum { limit } => vec![problem(
            rules::INVALID,
            At::Value,
            "range",
            format!(
                "{prefix}{} is greater than the maximum {limit}",
                shown(instance)
            ),
            None,
        )],
        ValidationErrorKind::ExclusiveMinimum { limit } => vec![problem(
            rules::INVALID,
            At::Value,
            "range",
            format!("{prefix}{} must be greater than {limit}", shown(instance)),
            None,
        )],
        ValidationErrorKind::ExclusiveMaximum { limit } => vec![problem(
            rules::INVALID,
            At::Value,
            "range",
            format!("{prefix}{} must be less than {limit}", shown(instance)),
            None,
        )],
        ValidationErrorKind::FalseSchema => vec![problem(
            rules::INVALID,
            At::Key,
            "false",
            format!("{prefix}this field is not allowed here"),
            None,
        )],
        _ => {
            let keyword = match error.kind() {
                ValidationErrorKind::Referencing(_) => "$ref",
                _ => "other",
            };
            let what = error.masked_with("the value").to_string();
            vec![problem(
                rules::INVALID,
                At::Value,
                keyword,
                format!("{prefix}{what}"),
                None,
            )]
        }
    }
}

fn unknown_field(kind: &str, parent: &str, path: &str, name: &str, allowed: &[&str]) -> Problem {
    let mut message = format!("unknown field `{name}` in {}", place(kind, path));
    let mut help = None;
    let suggestion = suggest(name, allowed.iter().copied());
    match suggestion {
        Some(s) => message.push_str(&format!("; did you mean `{s}`?")),
        None if !allowed.is_empty() => {
            const SHOWN: usize = 12;
            let mut list = allowed
                .iter()
                .take(SHOWN)
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if allowed.len() > SHOWN {
                list.push_str(&format!(" and {} more", allowed.len() - SHOWN));
            }
            help = Some(format!("fields allowed here: {list}"));
        }
        None => {}
    }
    Problem {
        rule: rules::UNKNOWN_FIELD,
        pointer: format!("{parent}/{}", escape_segment(name)),
        at: At::Key,
        message,
        help,
        keyword: "unknown",
        field: suggestion.map(|s| (parent.to_owned(), s.to_owned())),
    }
}

/// `Deployment` or Deployment `spec.template`.
fn place(kind: &str, path: &str) -> String {
    if path.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} `{path}`")
    }
}

fn type_problem(
    pointer: &str,
    prefix: &str,
    instance: &Value,
    expected: &[JsonType],
    site: Option<&Value>,
) -> Problem {
    let mut expected: Vec<JsonType> = expected
        .iter()
        .copied()
        .filter(|t| *t != JsonType::Null)
        .collect();
    expected.sort_by_key(|t| t.as_str());
    expected.dedup();
    let has = |t| expected.contains(&t);
    let is_quantity = site
        .and_then(|s| s.get("pattern"))
        .is_some_and(|p| p == QUANTITY_PATTERN);
    let wanted = if expected.len() == 2 && has(JsonType::Integer) && has(JsonType::String) {
        "an integer or a string".to_owned()
    } else if expected.len() == 2 && has(JsonType::Number) && has(JsonType::String) && is_quantity {
        QUANTITY.to_owned()
    } else {
        expected
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let found = type_name(instance);
    let shown_value = match instance {
        Value::Number(_) | Value::Bool(_) => format!(" {instance}"),
        Value::String(s) if s.chars().count() <= 40 => format!(" {instance}"),
        _ => String::new(),
    };
    let help = if has(JsonType::String) && matches!(instance, Value::Number(_) | Value::Bool(_)) {
        let reads = if instance.is_boolean() {
            "a boolean"
        } else {
            "a number"
        };
        Some(format!(
            "quote it (\"{instance}\"): YAML reads an unquoted {instance} as {reads}"
        ))
    } else if let Value::String(s) = instance {
        let number = s.trim().parse::<f64>().is_ok();
        let boolean = s == "true" || s == "false";
        if (number && (has(JsonType::Integer) || has(JsonType::Number)))
            || (boolean && has(JsonType::Boolean))
        {
            Some(format!("remove the quotes: {s}"))
        } else {
            None
        }
    } else if has(JsonType::Array) && instance.is_object() {
        Some("a list needs its items written as `- item`".to_owned())
    } else if has(JsonType::Object) && instance.is_array() {
        Some("a mapping needs `key: value` pairs, not `- item`s".to_owned())
    } else {
        None
    };
    Problem {
        rule: rules::INVALID,
        pointer: pointer.to_owned(),
        at: At::Value,
        message: format!("{prefix}expected {wanted}, found {found}{shown_value}"),
        help,
        keyword: "type",
        field: None,
    }
}

/// When every alternative failed only on its type at this same place, the types they wanted.
fn union_of_types(context: &[Vec<ValidationError<'static>>], here: &str) -> Option<Vec<JsonType>> {
    let mut types = Vec::new();
    for branch in context {
        if branch.is_empty() {
            return None;
        }
        for e in branch {
            match e.kind() {
                ValidationErrorKind::Type { kind } if e.instance_path().as_str() == here => {
                    match kind {
                        TypeKind::Single(t) => types.push(*t),
                        TypeKind::Multiple(set) => types.extend(set.iter()),
                    }
                }
                _ => return None,
            }
        }
    }
    (!types.is_empty()).then_some(types)
}

/// The names of the properties a schema node declares, in its order.
fn property_names(site: &Value) -> Vec<&str> {
    site.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as a message shows it: scalars as written in JSON, strings only when short (long ones
/// could be anything, secrets included).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() > 40 => "the value".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        other => format!("`{}`", plain(other)),
    }
}

/// A scalar without JSON quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `spec.template.spec.containers[0].ports[0]`, from a pointer, the way kubectl names fields.
pub(super) fn field_path(root: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut node = Some(root);
    for raw in pointer.split('/').skip(1) {
        let segment = unescape_segment(raw);
        match node {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{segment}]"));
                node = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            _ => {
                let simple = !segment.is_empty()
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
                if simple {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&segment);
                } else {
                    out.push_str(&format!("[{}]", Value::String(segment.to_string())));
                }
                node = node.and_then(|n| n.get(segment.as_ref()));
            }
        }
    }
    out
}

/// The candidate closest to `name`, when one is close enough to be a slip: the same up to case
/// and separators, or a few edits away.
pub(super) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let target = squash(name);
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let distance = if squash(candidate) == target {
            0
        } else {
            edit_distance(&name.to_lowercase(), &candidate.to_lowercase())
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous2 = vec![0usize; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(previous2[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut previous2, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn suggestions_catch_slips_only() {
        let fields = ["replicas", "selector", "template", "minReadySeconds"];
        assert_eq!(suggest("replica", fields.into_iter()), Some("replicas"));
        assert_eq!(
            suggest("min_ready_seconds", fields.into_iter()),
            Some("minReadySeconds")
        );
        assert_eq!(suggest("selcetor", fields.into_iter()), Some("selector"));
        assert_eq!(suggest("image", fields.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn field_paths_read_like_kubectl() {
        let v = json!({"spec": {"containers": [{"ports": [{"containerPort": 1}]}]},
                       "metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        assert_eq!(
            field_path(&v, "/spec/containers/0/ports/0/containerPort"),
            "spec.containers[0].ports[0].containerPort"
        );
        assert_eq!(
            field_path(&v, "/metadata/labels/app.kubernetes.io~1name"),
            "metadata.labels[\"app.kubernetes.io/name\"]"
        );
        assert_eq!(field_path(&v, ""), "");
    }
}
