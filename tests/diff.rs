//! `tally diff`: every environment rendered at two revisions of a git repository and compared.

mod common;

use std::path::Path;

fn edit(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(text.contains(from), "{from} not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap_or_else(|e| panic!("{e}"));
}

fn diff(repo: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = common::output(common::tally_command().arg("diff").args(args).arg(repo));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_change_is_shown_per_environment_object_by_object() {
    let dir = common::temp_dir("diff");
    let repo = dir.join("repo");
    common::init_repo(&repo);
    common::commit_all(&repo, "first");

    // Nothing changed yet: the working tree is the commit.
    let (code, text) = diff(&repo, &["--base", "HEAD"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("staging: 0 to add, 0 to change, 0 to remove"),
        "{text}"
    );

    // An image in one environment, a tenant's quota (a guardrail in both), a manifest removed,
    // and a new app object.
    edit(
        &repo,
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: 1.5.0-rc.2",
    );
    edit(
        &repo,
        "tenants/storefront/tenant.yaml",
        "cpu: \"8\"",
        "cpu: \"10\"",
    );
    edit(
        &repo,
        "apps/api/manifests/api.yaml",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget",
        "apiVersion: policy/v1\nkind: PodDisruptionBudgetX",
    );
    let api = std::fs::read_to_string(repo.join("apps/api/manifests/api.yaml")).unwrap_or_default();
    let cut = api
        .find("---\napiVersion: policy/v1\nkind: PodDisruptionBudgetX")
        .unwrap_or(api.len());
    std::fs::write(repo.join("apps/api/manifests/api.yaml"), &api[..cut])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        repo.join("apps/api/manifests/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api-flags\ndata:\n  NEW_CHECKOUT: \"on\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    common::commit_all(&repo, "second");

    let (code, text) = diff(&repo, &["--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(code, Some(3), "{text}");
    for line in [
        "+ add ConfigMap shop/api-flags",
        "- remove PodDisruptionBudget shop/api",
        "~ update ResourceQuota shop/",
        "    ~ spec.hard[\"requests.cpu\"]: \"8\" → \"10\"",
        "    ~ spec.template.spec.containers[name=web].image: \"registry.example.com/shop/web:1.5.0-rc.1\" → \"registry.example.com/shop/web:1.5.0-rc.2\"",
        "staging: 1 to add, 2 to change, 1 to remove",
        "production: 1 to add, 1 to change, 1 to remove",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // One environment alone.
    let (code, text) = diff(
        &repo,
        &["--base", "HEAD~1", "--head", "HEAD", "--env", "production"],
    );
    assert_eq!(code, Some(3), "{text}");
    assert!(!text.contains("staging:"), "{text}");

    let (code, text) = diff(&repo, &["--base", "no-such-ref"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no-such-ref"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
