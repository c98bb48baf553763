//! A small YAML emitter for JSON values, for `tally render`: block style, keys in object order,
//! and strings quoted whenever a YAML 1.1 or 1.2 reader could take them for anything but a string.

use std::fmt::Write;

use serde_json::Value;

/// Writes one value as a YAML document body (no `---`).
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(&mut out, value, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, value, 0),
        _ => {
            out.push_str(&scalar(value, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn map(out: &mut String, value: &Value, level: usize) {
    let Value::Object(m) = value else { return };
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        out.push_str(&string(k, level));
        out.push(':');
        nested(out, v, level, true);
    }
}

fn seq(out: &mut String, value: &Value, level: usize) {
    let Value::Array(items) = value else { return };
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                map(out, v, level + 2);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push(' ');
                seq(out, v, level + 2);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(v, level + 2));
                out.push('\n');
            }
        }
    }
}

/// The value after `key:`: on the same line when scalar, indented below when a collection.
fn nested(out: &mut String, v: &Value, level: usize, _in_map: bool) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            indent(out, level + 2);
            map(out, v, level + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            indent(out, level + 2);
            seq(out, v, level + 2);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(v, level + 2));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value, level: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, level),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn string(s: &str, level: usize) -> String {
    if s.contains('\n') && block_safe(s) {
        let chomp = if s.ends_with('\n') { "" } else { "-" };
        let mut out = format!("|{chomp}");
        for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', level));
                out.push_str(line);
            }
        }
        return out;
    }
    if plain_safe(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block keeps the text exactly when no line starts with a space (the indentation would
/// be ambiguous), nothing ends in trailing blank lines, and there are no tabs or control chars.
fn block_safe(s: &str) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    !body.starts_with(' ')
        && !body.starts_with('\n')
        && !body.ends_with('\n')
        && !body
            .split('\n')
            .any(|l| l.ends_with(' ') || l.starts_with(' ') && l.trim().is_empty())
        && !s.chars().any(|c| c.is_control() && c != '\n')
        && !body.is_empty()
}

/// Whether a string can be written plain and read back as the same string by any YAML reader.
fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s || ",[]{}#&*!|>'\"%@`".contains(first) || s.starts_with("---") {
        return false;
    }
    // `-`, `?` and `:` start a plain scalar only when something other than a space follows.
    if "-?:".contains(first) && !s[1..].starts_with(|c: char| !c.is_whitespace()) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(char::is_control) {
        return false;
    }
    // Anything a YAML 1.1 or 1.2 reader would take for a bool, null or number.
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "yes"
            | "n"
            | "no"
            | "on"
            | "off"
            | "true"
            | "false"
            | "null"
            | "~"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return false;
    }
    let numeric_start =
        first.is_ascii_digit() || ((first == '-' || first == '+' || first == '.') && s.len() > 1);
    if numeric_start
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoObBeE".contains(c))
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn round_trip(v: &Value) -> Value {
        let text = to_yaml(v);
        let file: Arc<str> = Arc::from("t");
        let loaded = tally_validator::yaml::load(&file, &text);
        assert!(loaded.findings.is_empty(), "{text}\n{:?}", loaded.findings);
        loaded
            .documents
            .into_iter()
            .next()
            .map(|d| d.value)
            .unwrap_or(Value::Null)
    }

    #[test]
    fn emits_block_yaml_that_reads_back_identically() {
        let v = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"a/b": "yes", "n": "0644", "e": ""}},
            "data": {"script": "#!/bin/sh\necho hi\n", "nochomp": "a\nb", "q": "a: b", "t": "x #y",
                     "num": "1.5", "neg": "-1", "opt": "-Xmx1g", "dash": "- x", "doc": "---", "colon": "x:", "star": "*a", "sp": " lead", "nl": "\n  x\ny"},
            "list": [{"name": "a", "v": [1, 2]}, [], {}, [["x"]], null, true, 3.5],
        });
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn readable_output() {
        let v = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}});
        assert_eq!(
            to_yaml(&v),
            "kind: Pod\nspec:\n  containers:\n    - name: a\n      args:\n        - x\n        - \"y\"\n"
        );
    }
}
