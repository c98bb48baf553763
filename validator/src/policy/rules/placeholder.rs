//! `unrendered-placeholder`: values that were meant to be replaced before anything was applied
//! (`<ADD YOUR KEY HERE>`, `YOUR_PROJECT_ID`, `INSERT_PASSWORD_HERE`, `xxSECRETxx`, `x.x.x.x`,
//! `changeme`, a template's `<no value>`).
//!
//! Multi-line values (scripts, embedded config files) are not read: usage text such as
//! `usage: run <NAME>` belongs there.
//!
//! `template-leftover`, from the same walk: a Helm chart's template syntax (`{{ .Values.x }}`,
//! `{{ include ... }}`) in a value, where an unrendered chart leaked into a manifest. Other
//! tools' Go templates (Prometheus and Alertmanager: `{{ $labels.x }}`, `{{ if eq .Status
//! "firing" }}`) are data and are not reported.

use serde_json::Value;

use crate::policy::engine::Out;
use crate::position::escape_segment;

use super::{Subject, TEMPLATE_LEFTOVER, UNRENDERED_PLACEHOLDER};
use crate::yaml::helm_leftover;

/// One step of the path from the object's root to a value, kept on the stack.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Path<'p, 'a> {
    seg: Seg<'a>,
    parent: Option<&'p Path<'p, 'a>>,
}

fn pointer(path: Option<&Path<'_, '_>>) -> String {
    let mut segs = Vec::new();
    let mut p = path;
    while let Some(node) = p {
        segs.push(node.seg);
        p = node.parent;
    }
    let mut out = String::new();
    for seg in segs.iter().rev() {
        out.push('/');
        match seg {
            Seg::Key(k) => out.push_str(&escape_segment(k)),
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// Every single-line string of the object that is a placeholder.
pub(crate) fn unrendered_placeholder(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    // CRDs carry prose (`description`) full of `<...>`; they configure nothing themselves.
    if obj.id.kind == "CustomResourceDefinition" {
        return;
    }
    walk(&obj.value, None, &mut |s, path| {
        if let Some(what) = is_placeholder(s) {
            out.report_value(
                UNRENDERED_PLACEHOLDER,
                obj,
                &pointer(path),
                format!("`{s}` is {what}; replace it with the real value before this is applied"),
            );
        }
    });
}

/// Every single-line string of the object that holds a Helm chart's template syntax.
pub(crate) fn template_leftover(s: &Subject<'_>, out: &mut Out<'_>) {
    let obj = s.obj;
    walk(&obj.value, None, &mut |s, path| {
        if s.contains('\n') {
            return;
        }
        if let Some(at) = helm_leftover(s) {
            let rest = &s[at..];
            let action = rest.find("}}").map_or(rest, |end| &rest[..end + 2]);
            out.report_value(
                TEMPLATE_LEFTOVER,
                obj,
                &pointer(path),
                format!(
                    "template syntax `{action}` left in a manifest; render the chart first \
                     (helm template), or let tally render it"
                ),
            );
        }
    });
}

/// Calls `check` with every string of `v` and its path; copies of the object written by tools
/// are not walked.
fn walk<'a>(
    v: &'a Value,
    path: Option<&Path<'_, 'a>>,
    check: &mut dyn FnMut(&'a str, Option<&Path<'_, 'a>>),
) {
    match v {
        Value::String(s) => check(s, path),
        Value::Object(map) => {
            for (k, child) in map {
                // Copies of the object itself, written by tools.
                if k == "managedFields" || k == "kubectl.kubernetes.io/last-applied-configuration" {
                    continue;
                }
                let node = Path {
                    seg: Seg::Key(k),
                    parent: path,
                };
                walk(child, Some(&node), check);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let node = Path {
                    seg: Seg::Index(i),
                    parent: path,
                };
                walk(child, Some(&node), check);
            }
        }
        _ => {}
    }
}

/// What kind of placeholder a single-line value is, if it is one.
///
/// Runs on every string of every object, so it makes one pass over the bytes and looks closer
/// only at word starts whose first letter could begin a placeholder.
pub(crate) fn is_placeholder(s: &str) -> Option<&'static str> {
    if s.len() < 3 {
        return None;
    }
    let b = s.as_bytes();
    let mut angle = false;
    for i in 0..b.len() {
        let c = b[i];
        if c == b'\n' {
            return None;
        }
        angle |= c == b'<';
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        if !c.is_ascii() {
            continue;
        }
        // An ASCII byte is always a character boundary.
        let rest = &s[i..];
        let found = match c | 0x20 {
            b'c' | b'r' => [
                "changeme",
                "change-me",
                "change_me",
                "changethis",
                "change-this",
                "replaceme",
                "replace-me",
                "replace_me",
            ]
            .iter()
            .any(|w| word_at(rest, w)),
            // `YOUR_PROJECT`, `your-registry.example.com`: "your" plus a separator and more.
            b'y' => {
                let r = rest.as_bytes();
                r.len() > 5
                    && r[..4].eq_ignore_ascii_case(b"your")
                    && matches!(r[4], b'_' | b'-')
                    && r[5].is_ascii_alphanumeric()
            }
            // `INSERT_PASSWORD`: in capitals only, as `insert_id` or `insert-only` are names.
            b'i' => {
                let r = rest.as_bytes();
                r.len() > 7
                    && r.starts_with(b"INSERT")
                    && matches!(r[6], b'_' | b'-')
                    && (r[7].is_ascii_uppercase() || r[7].is_ascii_digit())
            }
            // `PASSWORD_HERE`, `token-goes-here`: "here" as the last word of a name.
            b'h' => {
                i > 0
                    && matches!(b[i - 1], b'_' | b'-')
                    && rest.len() >= 4
                    && rest.as_bytes()[..4].eq_ignore_ascii_case(b"here")
                    && rest
                        .as_bytes()
                        .get(4)
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || b"_-.".contains(c)))
            }
            b'x' => word_at(rest, "x.x.x.x"),
            _ => false,
        };
        if found {
            return Some(if c | 0x20 == b'x' {
                "a placeholder address"
            } else {
                "a placeholder"
            });
        }
    }
    if angle {
        if s.contains("<no value>") {
            return Some("what a template prints for a missing value");
        }
        if angle_placeholder(s) {
            return Some("a placeholder");
        }
    }
    let t = s.trim();
    if ["TODO", "FIXME", "TBD", "REPLACE_ME", "CHANGE_ME"].contains(&t) || xx_token(t) {
        return Some("a placeholder");
    }
    None
}

/// `xxSECRETxx`: a name in capitals between `xx` and `xx`, the shape token-replacing deploy
/// scripts look for.
fn xx_token(t: &str) -> bool {
    let Some(inner) = t.strip_prefix("xx").and_then(|r| r.strip_suffix("xx")) else {
        return false;
    };
    inner.bytes().any(|b| b.is_ascii_uppercase())
        && inner
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `text` starts with `word` (ASCII case-insensitively) followed by a word end.
fn word_at(text: &str, word: &str) -> bool {
    let (t, w) = (text.as_bytes(), word.as_bytes());
    t.len() >= w.len()
        && t[..w.len()].eq_ignore_ascii_case(w)
        && t.get(w.len()).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// `<ADD KEY HERE>`, `<PROJECT_ID>`, `<your-domain>`: an all-caps name or a "your"/"here" phrase
/// between angle brackets.
fn angle_placeholder(s: &str) -> bool {
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            return false;
        };
        let inner = &after[..close];
        let allowed = inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-' | b'.'));
        let letters = inner.bytes().filter(u8::is_ascii_alphabetic).count();
        if allowed && letters >= 3 && inner.len() <= 60 {
            let upper = inner.bytes().all(|b| !b.is_ascii_lowercase());
            let lower = inner.to_ascii_lowercase();
            let phrase = ["your", "here", "insert", "replace", "add "]
                .iter()
                .any(|w| lower.contains(w));
            if upper || phrase {
                return true;
            }
        }
        rest = &after[close..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::at;

    #[test]
    fn chart_syntax_is_a_leftover_and_other_templates_are_data() {
        let found = |yaml: &str| at(TEMPLATE_LEFTOVER, yaml);
        let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r, namespace: m}\nspec:\n  groups:\n  - name: g\n    rules:\n    - alert: Down\n      expr: up == 0\n      annotations:\n        summary: \"{{ with $labels.cluster -}} {{ . }} {{- end }} down\"\n        state: '{{ if eq .Status \"firing\" }}fire{{ end }}'\n        title: '{{ template \"slack.title\" . }}'\n";
        assert_eq!(found(rule), []);
        let leaked = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: m}\ndata:\n  IMAGE: \"{{ .Values.image }}\"\n  SCRIPT: |\n    echo {{ .Values.x }}\n";
        assert_eq!(found(leaked), [(5, 10)]);
    }

    #[test]
    fn placeholders() {
        for yes in [
            "<ADD YOUR API KEY HERE>",
            "https://<PROJECT_ID>.example.com",
            "<your-domain>",
            "YOUR_PROJECT_ID",
            "your-registry.example.com/app:1.0",
            "x.x.x.x",
            "http://X.X.X.X:8080",
            "changeme",
            "postgres://app:CHANGEME@db/app",
            "TODO",
            "<no value>",
            "INSERT_PASSWORD_HERE",
            "INSERT_API_KEY",
            "https://INSERT_HOST/api",
            "PASSWORD_HERE",
            "token-goes-here",
            "put_token_here",
            "xxSECRETxx",
            "xxDB_PASSWORD2xx",
        ] {
            assert!(is_placeholder(yes).is_some(), "{yes}");
        }
        for no in [
            "<none>",
            "a <b> c",
            "yourself",
            "box.x.y",
            "nginx:1.27",
            "exchange-metrics",
            "TODO: later",
            "10.0.0.1",
            "-Xmx512m",
            "ünïcödé ÿour-ẋ.x.x.x ČhangeMe",
            "日本語のテキスト",
            "insert_id",
            "insert-only",
            "INSERTED_ROWS",
            "where",
            "there-here-now.example.com",
            "here",
            "here-and-there",
            "stop-here.example.com",
            "see docs here",
            "xxhash",
            "xxxxxx",
            "xxSecretxx",
        ] {
            assert!(is_placeholder(no).is_none(), "{no}");
        }
    }

    #[test]
    fn findings_at_the_value_and_not_in_block_text() {
        let cm = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  annotations:
    example.com/owner: <TEAM-NAME>
data:
  api_url: https://api.example.com
  region: YOUR_REGION
  list: [a, x.x.x.x]
  script: |
    echo usage: run <NAME>
";
        assert_eq!(
            at(UNRENDERED_PLACEHOLDER, cm),
            [(7, 24), (10, 11), (11, 13)]
        );
    }

    #[test]
    fn crds_are_prose() {
        let crd = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          description: Set host to <YOUR-HOST>, or INSERT_HOST_HERE in older releases.
";
        assert!(at(UNRENDERED_PLACEHOLDER, crd).is_empty());
    }
}
