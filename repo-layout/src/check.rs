//! Cross-references between layout files: every name an environment, tenant or app uses must
//! resolve, namespaces must belong to one tenant, and `dependsOn` must not loop. Each finding
//! points at the line that says the wrong thing.

use std::collections::{BTreeMap, HashMap};

use tally_validator::{Finding, Severity};

use crate::load::Repo;

/// Rule ids of layout cross-references.
pub mod rules {
    /// A tenant name that no `tenants/<name>/tenant.yaml` defines.
    pub const UNKNOWN_TENANT: &str = "layout-unknown-tenant";
    /// An app name that no `apps/<name>/app.yaml` defines.
    pub const UNKNOWN_APP: &str = "layout-unknown-app";
    /// An app targeting a namespace its tenant does not own.
    pub const NAMESPACE_NOT_OWNED: &str = "layout-namespace-not-owned";
    /// Two tenants claiming one namespace.
    pub const NAMESPACE_CONFLICT: &str = "layout-namespace-conflict";
    /// An app in an environment that does not run its tenant (or its dependency).
    pub const NOT_IN_ENVIRONMENT: &str = "layout-not-in-environment";
    /// `dependsOn` loops back on itself.
    pub const DEPENDENCY_CYCLE: &str = "layout-dependency-cycle";
}

/// Checks the repo's cross-references.
pub fn check(repo: &Repo) -> Vec<Finding> {
    let mut out = Vec::new();

    // Each namespace belongs to one tenant.
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (name, tenant) in &repo.tenants {
        for (i, ns) in tenant.spec.namespaces.iter().enumerate() {
            if let Some(first) = owner.insert(ns, name) {
                out.push(tenant.object.finding(
                    rules::NAMESPACE_CONFLICT,
                    Severity::Error,
                    &format!("/spec/namespaces/{i}"),
                    format!("namespace `{ns}` is already owned by tenant `{first}`"),
                ));
                owner.insert(ns, first);
            }
        }
    }

    for app in repo.apps.values() {
        match repo.tenants.get(&app.spec.tenant) {
            None => out.push(app.object.finding(
                rules::UNKNOWN_TENANT,
                Severity::Error,
                "/spec/tenant",
                format!(
                    "no tenant `{}` (expected tenants/{}/tenant.yaml)",
                    app.spec.tenant, app.spec.tenant
                ),
            )),
            Some(tenant) if !tenant.spec.namespaces.contains(&app.spec.namespace) => {
                out.push(app.object.finding(
                    rules::NAMESPACE_NOT_OWNED,
                    Severity::Error,
                    "/spec/namespace",
                    format!(
                        "namespace `{}` is not one of tenant `{}`'s ({})",
                        app.spec.namespace,
                        app.spec.tenant,
                        tenant.spec.namespaces.join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
        for (j, dep) in app.spec.depends_on.iter().enumerate() {
            if !repo.apps.contains_key(dep) {
                out.push(app.object.finding(
                    rules::UNKNOWN_APP,
                    Severity::Error,
                    &format!("/spec/dependsOn/{j}"),
                    format!("no app `{dep}` (expected apps/{dep}/app.yaml)"),
                ));
            }
        }
    }
    out.extend(cycles(repo));

    for env in repo.environments.values() {
        for (i, tenant) in env.spec.tenants.iter().enumerate() {
            if !repo.tenants.contains_key(tenant) {
                out.push(env.object.finding(
                    rules::UNKNOWN_TENANT,
                    Severity::Error,
                    &format!("/spec/tenants/{i}"),
                    format!("no tenant `{tenant}` (expected tenants/{tenant}/tenant.yaml)"),
                ));
            }
        }
        let in_env: Vec<&str> = env.spec.apps.iter().map(|a| a.name.as_str()).collect();
        for (i, instance) in env.spec.apps.iter().enumerate() {
            let at = format!("/spec/apps/{i}/name");
            let Some(app) = repo.apps.get(&instance.name) else {
                out.push(env.object.finding(
                    rules::UNKNOWN_APP,
                    Severity::Error,
                    &at,
                    format!(
                        "no app `{}` (expected apps/{}/app.yaml)",
                        instance.name, instance.name
                    ),
                ));
                continue;
            };
            if repo.tenants.contains_key(&app.spec.tenant)
                && !env.spec.tenants.contains(&app.spec.tenant)
            {
                out.push(env.object.finding(
                    rules::NOT_IN_ENVIRONMENT,
                    Severity::Error,
                    &at,
                    format!(
                        "app `{}` belongs to tenant `{}`, which this environment does not list under tenants",
                        instance.name, app.spec.tenant
                    ),
                ));
            }
            for dep in &app.spec.depends_on {
                if repo.apps.contains_key(dep) && !in_env.contains(&dep.as_str()) {
                    out.push(env.object.finding(
                        rules::NOT_IN_ENVIRONMENT,
                        Severity::Error,
                        &at,
                        format!(
                            "app `{}` depends on `{dep}`, which this environment does not run",
                            instance.name
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// One finding per `dependsOn` cycle, at the entry that closes it.
fn cycles(repo: &Repo) -> Vec<Finding> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        repo: &'a Repo,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        out: &mut Vec<Finding>,
    ) {
        marks.insert(name, Mark::Visiting);
        path.push(name);
        if let Some(app) = repo.apps.get(name) {
            for (j, dep) in app.spec.depends_on.iter().enumerate() {
                match marks.get(dep.as_str()) {
                    Some(Mark::Visiting) => {
                        let start = path.iter().position(|p| p == dep).unwrap_or(0);
                        let mut cycle: Vec<&str> = path[start..].to_vec();
                        cycle.push(dep);
                        out.push(app.object.finding(
                            rules::DEPENDENCY_CYCLE,
                            Severity::Error,
                            &format!("/spec/dependsOn/{j}"),
                            format!("dependency cycle: {}", cycle.join(" → ")),
                        ));
                    }
                    Some(Mark::Done) => {}
                    None if repo.apps.contains_key(dep) => visit(dep, repo, marks, path, out),
                    None => {}
                }
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::new();
    for name in repo.apps.keys() {
        if !marks.contains_key(name.as_str()) {
            visit(name, repo, &mut marks, &mut Vec::new(), &mut out);
        }
    }
    out
}

/// The environment's apps in an order where every app comes after its dependencies (apps in a
/// cycle keep their listed order; the cycle is a finding of its own).
pub fn apply_order<'a>(
    repo: &Repo,
    apps: &'a [crate::model::AppInstance],
) -> Vec<&'a crate::model::AppInstance> {
    let mut placed: Vec<&str> = Vec::new();
    let mut order = Vec::new();
    let mut remaining: Vec<&crate::model::AppInstance> = apps.iter().collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        remaining.retain(|inst| {
            let deps = repo
                .apps
                .get(&inst.name)
                .map(|a| a.spec.depends_on.as_slice())
                .unwrap_or(&[]);
            let ready = deps
                .iter()
                .all(|d| placed.contains(&d.as_str()) || !apps.iter().any(|a| &a.name == d));
            if ready {
                placed.push(&inst.name);
                order.push(*inst);
            }
            !ready
        });
        if remaining.len() == before {
            order.append(&mut remaining);
        }
    }
    order
}
