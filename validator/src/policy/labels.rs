//! Label selectors as the API server reads them: `matchLabels` and `matchExpressions`
//! (`In`, `NotIn`, `Exists`, `DoesNotExist`), and the plain maps Services and
//! ReplicationControllers use.

use serde_json::{Map, Value};

/// Whether a `LabelSelector` (`{matchLabels, matchExpressions}`) selects these labels. An empty
/// selector selects everything; a selector that is not a mapping selects nothing.
pub(crate) fn selects(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let Some(selector) = selector.as_object() else {
        return false;
    };
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in match_labels {
            if get(k) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values = || {
                e.get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
            };
            let have = get(key);
            let ok = match e.get("operator").and_then(Value::as_str) {
                Some("In") => have.is_some_and(|h| values().any(|v| v == h)),
                Some("NotIn") => have.is_none_or(|h| values().all(|v| v != h)),
                Some("Exists") => have.is_some(),
                Some("DoesNotExist") => have.is_none(),
                // An unknown operator is a schema error; select nothing rather than guess.
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// Whether a selector has no requirement at all (`{}`): it selects every pod of its namespace.
pub(crate) fn is_empty_selector(selector: &Value) -> bool {
    selector.as_object().is_some_and(|s| {
        s.iter().all(|(k, v)| match k.as_str() {
            "matchLabels" => v.as_object().is_none_or(Map::is_empty),
            "matchExpressions" => v.as_array().is_none_or(Vec::is_empty),
            _ => true,
        })
    })
}

/// Whether a plain map selector (a Service's, a ReplicationController's) selects these labels.
/// Callers decide what an empty map means.
pub(crate) fn map_selects(
    selector: &Map<String, Value>,
    labels: Option<&Map<String, Value>>,
) -> bool {
    selector.iter().all(|(k, v)| {
        labels
            .and_then(|l| l.get(k))
            .is_some_and(|have| have.as_str().is_some() && have.as_str() == v.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn match_labels_and_expressions() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        assert!(selects(&json!({"matchLabels": {"app": "web"}}), Some(&l)));
        assert!(!selects(&json!({"matchLabels": {"app": "db"}}), Some(&l)));
        assert!(selects(&json!({}), Some(&l)));
        assert!(selects(&json!({}), None));
        assert!(!selects(&Value::Null, Some(&l)));
        let sel = json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "app", "operator": "NotIn", "values": ["db"]},
            {"key": "app", "operator": "Exists"}
        ]});
        assert!(selects(&sel, Some(&l)));
        let sel = json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]});
        assert!(!selects(&sel, Some(&l)));
    }

    #[test]
    fn empty_selectors_and_maps() {
        assert!(is_empty_selector(&json!({})));
        assert!(is_empty_selector(&json!({"matchLabels": {}})));
        assert!(!is_empty_selector(&json!({"matchLabels": {"a": "b"}})));
        assert!(!is_empty_selector(&Value::Null));
        let l = labels(json!({"app": "web"}));
        let sel = labels(json!({"app": "web"}));
        assert!(map_selects(&sel, Some(&l)));
        assert!(!map_selects(&labels(json!({"app": "x"})), Some(&l)));
        assert!(!map_selects(&sel, None));
    }
}
