//! The apply loop against the in-memory cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::cluster::{Backoff, MemoryCluster, Propagation, Retrying, Verb, ready_controller};
use crate::inventory::{Inventory, InventoryError};
use crate::plan::{Desired, PlanOptions, plan};
use crate::{Cluster, EngineError};

const ENV: &str = "prod";

fn labels(app: Option<&str>) -> Value {
    let mut l = json!({"app.kubernetes.io/managed-by": "tally", "tally.dev/environment": ENV,
        "tally.dev/tenant": "shop"});
    match app {
        Some(a) => l["tally.dev/app"] = json!(a),
        None => l["tally.dev/guardrail"] = json!("true"),
    }
    l
}

fn ns(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels(None)}})
}

fn cm(ns: &str, name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels(Some(app))},
        "data": {"key": "value"}})
}

fn deploy(ns: &str, name: &str, app: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels(Some(app))},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image,
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]}}}})
}

fn svc(ns: &str, name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels(Some(app))},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
}

fn ingress(ns: &str, name: &str, app: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "labels": labels(Some(app))},
        "spec": {"rules": [{"host": "shop.example.com"}]}})
}

fn desired(commit: &str, objects: Vec<Value>) -> Desired {
    Desired {
        environment: ENV.into(),
        commit: commit.into(),
        objects,
        depends_on: BTreeMap::new(),
        blue_green: Default::default(),
    }
}

fn shop(image: &str) -> Vec<Value> {
    vec![
        ns("shop"),
        deploy("shop", "web", "web", image),
        ingress("shop", "web", "web"),
        svc("shop", "web", "web"),
        cm("shop", "config", "web"),
    ]
}

fn cluster() -> MemoryCluster {
    let c = MemoryCluster::new();
    c.insert(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tally-system"},
        "status": {"phase": "Active"}}),
    );
    c
}

fn fast() -> ApplyOptions {
    ApplyOptions {
        wait_timeout: Duration::from_millis(50),
        poll_interval: Duration::from_millis(1),
        ..ApplyOptions::default()
    }
}

async fn run<C: Cluster>(c: &C, d: Desired) -> (Plan, ApplyReport) {
    let p = match plan(c, d, &PlanOptions::default()).await {
        Ok(p) => p,
        Err(e) => panic!("plan: {e}"),
    };
    let r = apply(c, &p, &fast()).await;
    (p, r)
}

fn inventory(c: &MemoryCluster) -> Inventory {
    let cm = c
        .object("ConfigMap", Some("tally-system"), "tally-inventory-prod")
        .unwrap_or_else(|| panic!("no inventory"));
    Inventory::from_config_map(&cm).unwrap_or_else(|e| panic!("{e}"))
}

fn names(inv: &Inventory) -> Vec<String> {
    inv.objects.iter().map(ToString::to_string).collect()
}

const INVENTORY_WRITE: &str = "apply ConfigMap tally-system/tally-inventory-prod";

#[tokio::test]
async fn a_first_apply_creates_everything_in_wave_order_and_records_it() {
    let c = cluster();
    let (p, r) = run(&c, desired("c1", shop("web:1"))).await;
    assert_eq!(p.summary().create, 5);
    assert!(r.is_clean(), "{}", r.text());
    assert_eq!(
        c.log(),
        vec![
            INVENTORY_WRITE,
            "apply Namespace shop",
            "apply ConfigMap shop/config",
            "apply Service shop/web",
            "apply Deployment shop/web",
            "apply Ingress shop/web",
            INVENTORY_WRITE,
        ]
    );
    let inv = inventory(&c);
    assert_eq!((inv.commit.as_str(), inv.pending.as_deref()), ("c1", None));
    assert_eq!(inv.objects.len(), 5);
    assert!(
        r.text()
            .contains("prod at c1: applied cleanly; 5 applied, 0 pruned")
    );
}

#[tokio::test]
async fn a_second_reconcile_of_the_same_commit_writes_nothing_and_gets_nothing() {
    let c = cluster();
    run(&c, desired("c1", shop("web:1"))).await;
    c.reset_counts();
    let (p, r) = run(&c, desired("c1", shop("web:1"))).await;
    assert!(!p.has_changes(), "{}", p.text());
    assert!(r.is_clean());
    let counts = c.counts();
    assert_eq!(counts.writes(), 0, "{:?}", c.log());
    // One GET: the inventory. Live state comes from one list per kind.
    assert_eq!((counts.gets, counts.lists), (1, 5));
    assert_eq!(
        p.text(),
        "prod: 0 to create, 0 to update, 0 to prune, 5 unchanged\n"
    );
}

#[tokio::test]
async fn changing_one_field_sends_one_apply() {
    let c = cluster();
    run(&c, desired("c1", shop("web:1"))).await;
    c.reset_counts();
    let (p, r) = run(&c, desired("c2", shop("web:2"))).await;
    assert!(r.is_clean());
    assert_eq!(
        p.text(),
        "~ update Deployment shop/web\n    \
         ~ spec.template.spec.containers[name=web].image: \"web:1\" → \"web:2\"\n\
         prod: 0 to create, 1 to update, 0 to prune, 4 unchanged\n"
    );
    // The object, then the inventory's new commit.
    assert_eq!(c.log(), vec!["apply Deployment shop/web", INVENTORY_WRITE]);
    assert_eq!(inventory(&c).commit, "c2");
}

#[tokio::test]
async fn objects_that_left_git_are_pruned_unless_no_longer_tallys_or_protected() {
    let c = cluster();
    let mut objects = shop("web:1");
    objects.push(cm("shop", "old", "old"));
    let mut keep = cm("shop", "keep", "old");
    keep["metadata"]["annotations"] = json!({"tally.dev/prune": "disabled"});
    objects.push(keep);
    objects.push(cm("shop", "taken", "old"));
    run(&c, desired("c1", objects)).await;
    // Someone takes over `taken`.
    c.modify("ConfigMap", Some("shop"), "taken", |v| {
        v["metadata"]["labels"] = json!({"owner": "someone"});
    });
    c.reset_counts();

    let (p, r) = run(&c, desired("c2", shop("web:1"))).await;
    assert_eq!(p.summary().prune, 1);
    assert!(
        p.text().contains("- prune ConfigMap shop/old\n"),
        "{}",
        p.text()
    );
    assert!(r.is_clean(), "{}", r.text());
    assert_eq!(c.log(), vec!["delete ConfigMap shop/old", INVENTORY_WRITE]);
    assert!(c.object("ConfigMap", Some("shop"), "keep").is_some());
    assert!(c.object("ConfigMap", Some("shop"), "taken").is_some());
    let kept: Vec<String> = r
        .kept
        .iter()
        .map(|(id, why)| format!("{id}: {why}"))
        .collect();
    assert_eq!(
        kept,
        vec![
            "ConfigMap shop/keep: annotated tally.dev/prune: disabled",
            "ConfigMap shop/taken: it no longer carries tally's labels for this environment",
        ]
    );
    assert_eq!(inventory(&c).objects.len(), 5);
}

#[tokio::test]
async fn a_deployment_that_never_becomes_ready_stops_the_waves_and_prevents_pruning() {
    let c = cluster();
    let mut objects = shop("web:1");
    objects.push(cm("shop", "old", "old"));
    run(&c, desired("c1", objects)).await;
    c.set_controller(|v| {
        if v.pointer("/metadata/name") != Some(&json!("web")) || v["kind"] != "Deployment" {
            ready_controller(v);
        }
    });
    c.modify("Ingress", Some("shop"), "web", |v| {
        v["spec"]["rules"][0]["host"] = json!("drifted.example.com");
    });
    c.reset_counts();

    let (p, r) = run(&c, desired("c2", shop("web:broken"))).await;
    assert_eq!(p.summary().prune, 1);
    assert_eq!(r.completion, Completion::WaveFailed(Phase::Workloads));
    assert!(!r.is_clean());
    let problems = r.problems();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0.to_string(), "Deployment shop/web");
    assert!(
        problems[0].1.contains("seen generation 1 of 2"),
        "{}",
        problems[0].1
    );
    // The Ingress wave never went out and nothing was pruned.
    assert_eq!(c.log(), vec!["apply Deployment shop/web", INVENTORY_WRITE]);
    assert!(c.object("ConfigMap", Some("shop"), "old").is_some());
    assert_eq!(
        r.prune_skipped.as_deref(),
        Some("the apply did not complete cleanly: nothing is pruned")
    );
    // The inventory keeps the old object and marks the commit as pending.
    let inv = inventory(&c);
    assert_eq!(
        (inv.commit.as_str(), inv.pending.as_deref()),
        ("c1", Some("c2"))
    );
    assert_eq!(inv.objects.len(), 6);
    assert!(
        r.text()
            .contains("unhealthy Deployment shop/web: progressing")
    );
}

#[tokio::test]
async fn a_failed_rollout_is_reported_without_waiting_for_the_timeout() {
    let c = cluster();
    c.set_controller(|v| {
        if v["kind"] == "Deployment" {
            v["status"] = json!({"observedGeneration": 1, "conditions": [{"type": "Progressing",
                "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]});
        } else {
            ready_controller(v);
        }
    });
    let p = plan(&c, desired("c1", shop("web:1")), &PlanOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = ApplyOptions {
        wait_timeout: Duration::from_secs(3600),
        ..fast()
    };
    let r = apply(&c, &p, &options).await;
    assert_eq!(r.completion, Completion::WaveFailed(Phase::Workloads));
    assert_eq!(
        r.problems()[0].1,
        "failed: ProgressDeadlineExceeded: timed out"
    );
}

#[tokio::test]
async fn api_faults_mid_apply_are_retried_and_the_apply_converges() {
    let memory = cluster();
    memory.fail(Verb::List, 1, 500);
    memory.fail(Verb::Apply, 2, 503);
    memory.fail(Verb::Get, 1, 429);
    let c = Retrying::new(memory, Backoff::immediate(4));
    let (_, r) = run(&c, desired("c1", shop("web:1"))).await;
    assert!(r.is_clean(), "{}", r.text());
    assert_eq!(inventory(c.inner()).objects.len(), 5);
    // Without retries, the same faults stop the apply and say why.
    let memory = cluster();
    memory.fail(Verb::Apply, 1, 503);
    let p = plan(
        &memory,
        desired("c1", shop("web:1")),
        &PlanOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let r = apply(&memory, &p, &fast()).await;
    assert!(
        matches!(r.completion, Completion::NotStarted(ref why) if why.contains("503")),
        "{r:?}"
    );
    assert!(memory.log().is_empty());
}

#[tokio::test]
async fn a_namespace_that_holds_objects_tally_does_not_own_is_kept() {
    let c = cluster();
    let mut objects = shop("web:1");
    objects.push(ns("legacy"));
    objects.push(cm("legacy", "settings", "legacy"));
    run(&c, desired("c1", objects)).await;
    c.insert(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hand-made", "namespace": "legacy"}}));
    c.insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": "legacy"}}));
    c.reset_counts();

    let (p, r) = run(&c, desired("c2", shop("web:1"))).await;
    assert!(r.is_clean(), "{}", r.text());
    assert_eq!(
        c.log(),
        vec!["delete ConfigMap legacy/settings", INVENTORY_WRITE]
    );
    assert!(c.object("Namespace", None, "legacy").is_some());
    assert!(
        p.text().contains(
            "  keep Namespace legacy: it holds objects tally does not own: Secret legacy/hand-made"
        ),
        "{}",
        p.text()
    );
    // Still in the inventory, so it goes once the Secret is gone.
    assert!(names(&inventory(&c)).contains(&"Namespace legacy".to_owned()));
    let secret = c.resource("v1", "Secret").await.ok().flatten();
    if let Some(secret) = secret {
        let _ = c
            .delete(
                &secret,
                Some("legacy"),
                "hand-made",
                Propagation::Background,
            )
            .await;
    }
    c.reset_counts();
    let (_, r) = run(&c, desired("c3", shop("web:1"))).await;
    assert!(r.is_clean(), "{}", r.text());
    assert_eq!(c.log(), vec!["delete Namespace legacy", INVENTORY_WRITE]);
}

#[tokio::test]
async fn a_namespace_whose_contents_cannot_be_read_is_kept() {
    let c = cluster();
    let mut objects = shop("web:1");
    objects.push(ns("legacy"));
    run(&c, desired("c1", objects.clone())).await;
    // How many lists reading live state takes (no prune, so no namespace contents are listed).
    c.reset_counts();
    if let Err(e) = plan(&c, desired("c1", objects), &PlanOptions::default()).await {
        panic!("plan: {e}");
    }
    let live_reads = c.counts().lists;
    // After those, every list is forbidden: tally cannot see what the namespace holds.
    c.fail_after(crate::cluster::Verb::List, live_reads, 1000, 403);
    let p = match plan(&c, desired("c2", shop("web:1")), &PlanOptions::default()).await {
        Ok(p) => p,
        Err(e) => panic!("plan: {e}"),
    };
    assert!(p.text().contains("keep Namespace legacy"), "{}", p.text());
    assert!(
        !p.prune.delete.iter().any(|e| e.kind == "Namespace"),
        "{}",
        p.text()
    );
}

#[tokio::test]
async fn an_empty_render_never_prunes() {
    let c = cluster();
    run(&c, desired("c1", shop("web:1"))).await;
    c.reset_counts();
    let (p, r) = run(&c, desired("c2", Vec::new())).await;
    assert!(matches!(
        p.prune_refused,
        Some(InventoryError::EmptyRender { count: 5, .. })
    ));
    assert!(
        p.text()
            .contains("! the render of environment `prod` is empty")
    );
    assert!(
        r.prune_skipped
            .as_deref()
            .is_some_and(|s| s.contains("refusing to prune"))
    );
    assert_eq!(c.counts().deletes, 0);
    assert_eq!(
        inventory(&c).objects.len(),
        5,
        "the inventory still lists everything"
    );
}

#[tokio::test]
async fn an_app_waits_for_its_dependencies_to_be_healthy() {
    let c = cluster();
    c.set_controller(|v| {
        if !(v["kind"] == "Deployment" && v["metadata"]["name"] == "db") {
            ready_controller(v);
        }
    });
    let mut d = desired(
        "c1",
        vec![
            ns("shop"),
            deploy("shop", "db", "db", "postgres"),
            deploy("shop", "web", "web", "web:1"),
        ],
    );
    d.depends_on.insert("web".into(), vec!["db".into()]);
    let (_, r) = run(&c, d).await;
    assert_eq!(r.completion, Completion::WaveFailed(Phase::Workloads));
    assert!(c.object("Deployment", Some("shop"), "db").is_some());
    assert!(
        c.object("Deployment", Some("shop"), "web").is_none(),
        "web waited for db"
    );
    assert_eq!(r.problems()[0].0.name, "db");

    let p = plan(
        &c,
        desired(
            "c1",
            vec![
                ns("shop"),
                deploy("shop", "db", "db", "postgres"),
                deploy("shop", "web", "web", "web:1"),
            ],
        ),
        &PlanOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let health: Vec<String> = p
        .app_health()
        .iter()
        .map(|(app, h)| format!("{app}: {h}"))
        .collect();
    assert_eq!(
        health,
        vec![
            ": healthy",
            "db: progressing: Deployment shop/db: the controller has not reported status yet",
            "web: progressing: Deployment shop/web: not created yet",
        ]
    );
}

#[tokio::test]
async fn custom_resources_wait_for_their_crd_in_the_same_plan() {
    let c = cluster();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.x.io", "labels": labels(Some("widgets"))},
        "spec": {"group": "x.io", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
    let widget = json!({"apiVersion": "x.io/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "shop", "labels": labels(Some("widgets"))},
        "spec": {"size": 3}});
    let (p, r) = run(&c, desired("c1", vec![widget.clone(), ns("shop"), crd])).await;
    let kinds: Vec<(&str, bool)> = p
        .objects()
        .map(|o| (o.id.kind.as_str(), o.resource.is_some()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("Namespace", true),
            ("CustomResourceDefinition", true),
            ("Widget", false)
        ]
    );
    assert!(r.is_clean(), "{}", r.text());
    assert!(c.object("Widget", Some("shop"), "w").is_some());

    // Without its CRD, a custom resource is a plan error naming it.
    let c = cluster();
    let err = plan(&c, desired("c1", vec![widget]), &PlanOptions::default())
        .await
        .err();
    assert!(
        matches!(err, Some(EngineError::UnknownKinds(ref k)) if k[0] == "Widget shop/w (x.io/v1)")
    );
}

#[tokio::test]
async fn a_dry_run_sends_only_dry_runs_and_records_nothing() {
    let c = cluster();
    c.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
    let mut objects = shop("web:1");
    objects.push(ns("fresh"));
    objects.push(cm("fresh", "c", "web"));
    let p = plan(&c, desired("c1", objects), &PlanOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = ApplyOptions {
        dry_run: true,
        ..fast()
    };
    let r = apply(&c, &p, &options).await;
    assert_eq!(r.completion, Completion::Clean, "{}", r.text());
    let counts = c.counts();
    assert_eq!((counts.applies, counts.deletes), (0, 0));
    // Five objects sent as dry runs, and one dry run by the plan: the existing Namespace lacks
    // tally's labels, and the plan asks the server whether that update changes anything.
    assert_eq!(counts.dry_runs, 7);
    let skipped: Vec<String> = r
        .waves
        .iter()
        .flat_map(|w| &w.skipped)
        .map(ToString::to_string)
        .collect();
    assert_eq!(skipped, vec!["ConfigMap fresh/c"]);
    assert!(!r.inventory_written);
}

#[tokio::test]
async fn tenant_apps_can_be_applied_as_the_tenant_deployer() {
    let c = cluster();
    let options = PlanOptions {
        impersonate_tenants: true,
        ..PlanOptions::default()
    };
    let p = plan(&c, desired("c1", shop("web:1")), &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = apply(&c, &p, &fast()).await;
    assert!(r.is_clean());
    let log = c.log();
    assert!(
        log.contains(&"apply Namespace shop".to_owned()),
        "guardrails are the engine's own"
    );
    assert!(log.contains(
        &"apply Deployment shop/web as system:serviceaccount:shop:tally-deployer".to_owned()
    ));
}

#[tokio::test]
async fn a_stop_request_ends_the_apply_between_waves() {
    let c = cluster();
    let p = plan(&c, desired("c1", shop("web:1")), &PlanOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let options = ApplyOptions {
        stop: Some(Arc::new(AtomicBool::new(true))),
        ..fast()
    };
    let r = apply(&c, &p, &options).await;
    assert_eq!(r.completion, Completion::Interrupted(Phase::Foundation));
    assert!(!r.is_clean());
    assert!(
        r.why_unclean().contains("stopped before the"),
        "{}",
        r.why_unclean()
    );
    // Only the inventory, listing what was about to be created.
    assert_eq!(c.log(), vec![INVENTORY_WRITE]);
    assert_eq!(inventory(&c).pending.as_deref(), Some("c1"));
}

#[tokio::test]
async fn an_apply_that_died_midway_converges_on_the_next_run_without_orphans() {
    let c = cluster();
    let mut objects = shop("web:1");
    objects.push(cm("shop", "extra", "extra"));
    // The inventory, the Namespace and both ConfigMaps go out; then the Service write fails.
    c.fail_after(Verb::Apply, 4, 1, 500);
    let (_, r) = run(&c, desired("c1", objects)).await;
    assert_eq!(
        r.completion,
        Completion::WaveFailed(Phase::Services),
        "{}",
        r.text()
    );
    assert!(c.object("ConfigMap", Some("shop"), "extra").is_some());
    assert_eq!(inventory(&c).pending.as_deref(), Some("c1"));

    // The next commit drops `extra`: the pending inventory lists it, so it is pruned, not orphaned.
    c.reset_counts();
    let (_, r) = run(&c, desired("c2", shop("web:1"))).await;
    assert!(r.is_clean(), "{}", r.text());
    let pruned: Vec<String> = r.pruned.iter().map(ToString::to_string).collect();
    assert_eq!(pruned, vec!["ConfigMap shop/extra"]);
    let inv = inventory(&c);
    assert_eq!(
        (inv.commit.as_str(), inv.pending, inv.objects.len()),
        ("c2", None, 5)
    );
}
