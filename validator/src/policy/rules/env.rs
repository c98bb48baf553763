//! `duplicate-env`: one name, one value.

use serde_json::Value;

use crate::policy::engine::Out;

use super::{DUPLICATE_ENV, Subject};

/// The same variable twice in one container's `env`: the last one wins, silently, and apply
/// tools disagree about which entry to update.
pub(crate) fn duplicate_env(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    for c in w.containers() {
        let Some(env) = c.get("env").and_then(Value::as_array) else {
            continue;
        };
        for (i, e) in env.iter().enumerate() {
            let Some(name) = e.get("name").and_then(Value::as_str) else {
                continue;
            };
            let first = env[..i]
                .iter()
                .position(|p| p.get("name").and_then(Value::as_str) == Some(name));
            if let Some(first) = first {
                let first_line = s.obj.pos(&c.ptr(&format!("/env/{first}/name"))).line;
                out.report(
                    DUPLICATE_ENV,
                    s.obj,
                    &c.ptr(&format!("/env/{i}/name")),
                    format!(
                        "environment variable `{name}` of {} is set twice (first at line {first_line}); only the last value counts, and apply tools disagree about which entry they change",
                        c.describe()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{at, deployment, of};

    #[test]
    fn second_occurrence_is_the_finding() {
        let d = deployment(
            "      containers:
        - name: app
          image: app:1.0.0
          env:
            - {name: MODE, value: a}
            - {name: LEVEL, value: b}
            - {name: MODE, value: c}
",
        );
        assert_eq!(at(DUPLICATE_ENV, &d), [(20, 16)]);
        assert!(
            of(DUPLICATE_ENV, &d)[0]
                .message
                .contains("first at line 18")
        );
    }
}
