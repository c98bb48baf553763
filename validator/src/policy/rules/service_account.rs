//! Service account tokens: `automount-service-account-token`, `default-service-account`.

use serde_json::Value;

use crate::policy::engine::Out;
use crate::policy::workload::Workload;

use super::{AUTOMOUNT_SERVICE_ACCOUNT_TOKEN, DEFAULT_SERVICE_ACCOUNT, Subject};

/// The service account a pod runs as (`default` when unnamed).
fn account<'a>(w: &Workload<'a>) -> &'a str {
    w.get("serviceAccountName")
        .or_else(|| w.get("serviceAccount"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
}

/// Whether the pod gets a token: the pod's setting wins, then the ServiceAccount's (when the set
/// has it), then the API server's default (yes). `None` means the pod did not decide.
fn mounted(s: &Subject<'_>, w: &Workload<'_>) -> (bool, Option<bool>) {
    let pod = w
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool);
    let sa = s
        .index
        .service_account_automount(s.obj.id.namespace.as_deref(), account(w));
    (pod.or(sa).unwrap_or(true), pod.or(sa))
}

/// The token is mounted and neither the pod nor its ServiceAccount decided so.
pub(crate) fn automount_token(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    let (yes, decided) = mounted(s, w);
    if !yes || decided.is_some() {
        return;
    }
    out.report(
        AUTOMOUNT_SERVICE_ACCOUNT_TOKEN,
        s.obj,
        &w.ptr(""),
        format!(
            "every container gets the API token of service account `{}` although nothing says it needs one; set `automountServiceAccountToken: false` on the pod or its ServiceAccount (or `true` when it calls the Kubernetes API)",
            account(w)
        ),
    );
}

/// The pod runs as its namespace's `default` service account, with the token mounted.
pub(crate) fn default_service_account(s: &Subject<'_>, out: &mut Out<'_>) {
    let Some(w) = &s.workload else { return };
    if account(w) != "default" || !mounted(s, w).0 {
        return;
    }
    let at = match (w.get("serviceAccountName"), w.get("serviceAccount")) {
        (Some(_), _) => w.ptr("/serviceAccountName"),
        (None, Some(_)) => w.ptr("/serviceAccount"),
        (None, None) => w.ptr(""),
    };
    out.report(
        DEFAULT_SERVICE_ACCOUNT,
        s.obj,
        &at,
        "the pod uses the namespace's `default` service account, shared by every pod that names none, with its token mounted; give it a ServiceAccount of its own (or do not mount the token)",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use crate::policy::testing::{at, deployment, findings_with};

    #[test]
    fn undecided_tokens() {
        let d = deployment("      containers: [{name: a, image: app:1.0.0}]\n");
        assert_eq!(at(AUTOMOUNT_SERVICE_ACCOUNT_TOKEN, &d), [(13, 5)]);
        assert_eq!(at(DEFAULT_SERVICE_ACCOUNT, &d), [(13, 5)]);
        let off = deployment(
            "      automountServiceAccountToken: false\n      containers: [{name: a, image: app:1.0.0}]\n",
        );
        assert!(at(AUTOMOUNT_SERVICE_ACCOUNT_TOKEN, &off).is_empty());
        assert!(at(DEFAULT_SERVICE_ACCOUNT, &off).is_empty());
        let own = deployment(
            "      serviceAccountName: web\n      automountServiceAccountToken: true\n      containers: [{name: a, image: app:1.0.0}]\n",
        );
        assert!(at(AUTOMOUNT_SERVICE_ACCOUNT_TOKEN, &own).is_empty());
        assert!(at(DEFAULT_SERVICE_ACCOUNT, &own).is_empty());
        let explicit_default = deployment(
            "      serviceAccountName: default\n      containers: [{name: a, image: app:1.0.0}]\n",
        );
        assert_eq!(at(DEFAULT_SERVICE_ACCOUNT, &explicit_default), [(14, 7)]);
    }

    #[test]
    fn service_account_objects_decide_too() {
        let d = deployment(
            "      serviceAccountName: web\n      containers: [{name: a, image: app:1.0.0}]\n",
        );
        let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, namespace: shop}\nautomountServiceAccountToken: false\n";
        let all = findings_with(&PolicyConfig::default(), &[("d.yaml", &d), ("sa.yaml", sa)]);
        assert!(
            !all.iter()
                .any(|f| f.rule == AUTOMOUNT_SERVICE_ACCOUNT_TOKEN),
            "{all:#?}"
        );
        let all = findings_with(&PolicyConfig::default(), &[("d.yaml", &d)]);
        assert!(
            all.iter()
                .any(|f| f.rule == AUTOMOUNT_SERVICE_ACCOUNT_TOKEN)
        );
    }
}
