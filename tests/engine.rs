//! End-to-end tests of `tally plan` and `tally apply`: the real binary and its kube client against
//! the fake API server (real HTTP on 127.0.0.1), with the server's request counters as the proof.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use tally_fake_apiserver::{Config, Fault, Verb};

use common::cluster::Cluster;

/// A fake cluster whose workloads become ready quickly, and a copy of the example repo.
fn setup(name: &str) -> Cluster {
    setup_with(
        name,
        Config::default()
            .with_ready_delay(Duration::from_millis(100))
            .with_progress_deadline(Duration::from_millis(300)),
    )
}

fn setup_with(name: &str, config: Config) -> Cluster {
    Cluster::start(&format!("engine-{name}"), config)
}

/// The live `web` Deployment: the colour the active Service selects (`web` is released
/// blue/green).
fn live_web(store: &tally_fake_apiserver::Store) -> Option<Value> {
    let service = store.get("services", "shop", "web")?;
    let color = service["spec"]["selector"]["tally.dev/color"]
        .as_str()?
        .to_owned();
    store.get("deployments.apps", "shop", &format!("web-{color}"))
}

impl Cluster {
    /// `tally run --env staging --kubeconfig ...`; each test adds its source and options.
    fn daemon(&self) -> Command {
        let mut cmd = common::tally_command();
        cmd.args(["run", "--env", "staging"])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig);
        cmd
    }

    /// `tally ARGS... --kubeconfig ...`: a command that runs to its end against this cluster.
    fn tally(&self, args: &[&str]) -> Output {
        common::output(
            common::tally_command()
                .args(args)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig),
        )
    }

    /// Waits for the daemon to record a failed round; returns the status ConfigMap as text.
    fn failed_round(&self) -> String {
        let store = self.server.store();
        let status = || store.get("configmaps", "tally-system", "tally-status-staging");
        eventually("the failed round recorded", || {
            status().is_some_and(|cm| cm["data"]["result"] == "failed")
        });
        status().map(|cm| cm.to_string()).unwrap_or_default()
    }

    /// A daemon following the example repo's working tree (`--path`) with JSON logs (debug
    /// level: rounds with nothing to do, each load and render) written to `daemon.log`, whose
    /// path is returned with it.
    fn follow_tree(&self, interval: &str, extra: &[&str]) -> (DaemonGuard, PathBuf) {
        let log = self.dir.join("daemon.log");
        let child = self
            .daemon()
            .args([
                "--interval",
                interval,
                "--log-format",
                "json",
                "--log-level",
                "debug",
            ])
            .args(extra)
            .arg("--path")
            .arg(self.repo())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        (DaemonGuard(child), log)
    }

    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let repo = self.repo();
        let mut args = vec![command, "--env", "staging", "--commit", "c1"];
        args.extend_from_slice(extra);
        let repo = repo.to_string_lossy().into_owned();
        args.push(&repo);
        self.tally(&args)
    }

    fn apply(&self) -> Output {
        self.run("apply", &["--timeout", "20"])
    }

    /// Writes a file of the repo (a manifest added to an app).
    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.repo().join(file), text).unwrap_or_else(|e| panic!("{e}"));
    }
}

use common::text;

#[test]
fn first_apply_then_a_no_op_reconcile_that_writes_nothing() {
    let c = setup("first");
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = c.server.store();
    let web = live_web(&store).unwrap_or_else(|| panic!("no Deployment shop/web"));
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/web:1.5.0-rc.1"
    );
    assert!(
        store
            .get(
                "networkpolicies.networking.k8s.io",
                "payments",
                "default-deny"
            )
            .is_some()
    );
    assert!(
        store
            .get("configmaps", "tally-system", "tally-inventory-staging")
            .is_some()
    );

    // Nothing changed: the second reconcile sends no write and no per-object GET.
    c.server.reset_request_log();
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // 41: `web` runs as two colours.
    assert!(text(&out).contains("41 unchanged"), "{}", text(&out));
    let counters = c.server.counters();
    assert_eq!(counters.writes(), 0, "{:?}", c.server.request_log());
    assert_eq!(counters.get(Verb::Get, "deployments.apps"), 0);

    // `plan` agrees: no changes, exit 0.
    assert_eq!(c.run("plan", &[]).status.code(), Some(0));

    // `status` reads the applied commit and every app's health from the cluster.
    let status = c.tally(&["status", "--env", "staging"]);
    let out = text(&status);
    assert_eq!(status.status.code(), Some(0), "{out}");
    assert!(out.contains("applied       c1 at "), "{out}");
    assert!(out.contains("web         healthy"), "{out}");
}

#[test]
fn one_changed_field_is_one_apply() {
    let c = setup("change");
    assert_eq!(c.apply().status.code(), Some(0));
    c.edit(
        "environments/staging/environment.yaml",
        "    - name: api\n      replicas: 2",
        "    - name: api\n      replicas: 3",
    );
    let plan = c.run("plan", &[]);
    assert_eq!(plan.status.code(), Some(3), "{}", text(&plan));
    assert!(
        text(&plan).contains("spec.replicas: 2 → 3"),
        "{}",
        text(&plan)
    );
    c.server.reset_request_log();
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let counters = c.server.counters();
    // The changed Deployment: one dry run by the plan (the server confirms the change), then
    // the apply.
    assert_eq!(counters.get(Verb::Apply, "deployments.apps"), 2);
    assert_eq!(counters.dry_runs(), 1, "{counters:?}");
    assert_eq!(counters.writes(), 1, "{:?}", c.server.request_log());
    let api = c.server.store().get("deployments.apps", "shop", "api");
    assert_eq!(api.map(|d| d["spec"]["replicas"].clone()), Some(json!(3)));
}

#[test]
fn a_removed_app_is_pruned_and_objects_tally_does_not_own_are_kept() {
    let c = setup("prune");
    assert_eq!(c.apply().status.code(), Some(0));
    // Someone else's object in a tenant namespace.
    let foreign = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hand-made", "namespace": "payments"}, "data": {"a": "b"}});
    c.server
        .store()
        .create("kubectl", foreign)
        .unwrap_or_else(|e| panic!("{e}"));
    c.edit(
        "environments/staging/environment.yaml",
        "    - name: ledger\n      labels:\n        tier: staging\n",
        "",
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = c.server.store();
    assert!(
        store
            .get("deployments.apps", "payments", "ledger")
            .is_none()
    );
    assert!(
        store
            .get("cronjobs.batch", "payments", "ledger-reconcile")
            .is_none()
    );
    assert!(store.get("configmaps", "payments", "hand-made").is_some());
    // The tenant's guardrails stay: the tenant is still in the environment.
    assert!(
        store
            .get("resourcequotas", "payments", "tenant-quota")
            .is_some()
    );
}

#[test]
fn a_commit_the_gate_rejects_is_never_applied() {
    let c = setup("rejected");
    assert_eq!(c.apply().status.code(), Some(0));
    c.edit(
        "apps/api/manifests/api.yaml",
        "image: registry.example.com/shop/api:2.0.1",
        "image: registry.example.com/shop/api:latest",
    );
    c.server.reset_request_log();
    let out = c.apply();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no-latest-tag"), "{}", text(&out));
    assert_eq!(c.server.counters().total(), 0, "the cluster was contacted");
    let api = c.server.store().get("deployments.apps", "shop", "api");
    let image = api.map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone());
    assert_eq!(image, Some(json!("registry.example.com/shop/api:2.0.1")));
}

#[test]
fn a_deployment_that_never_becomes_ready_stops_the_apply_and_prunes_nothing() {
    let c = setup("unready");
    assert_eq!(c.apply().status.code(), Some(0));
    // The fake controller never makes an image containing `fail` ready.
    c.edit(
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: fail-1.5.0",
    );
    c.edit(
        "environments/staging/environment.yaml",
        "    - name: ledger\n      labels:\n        tier: staging\n",
        "",
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("shop/web"), "{}", text(&out));
    // Nothing pruned after a failed wave.
    assert!(
        c.server
            .store()
            .get("deployments.apps", "payments", "ledger")
            .is_some()
    );
}

#[test]
fn a_fix_after_a_rollout_past_its_deadline_applies_and_is_healthy() {
    let c = setup("deadline-fix");
    assert_eq!(c.apply().status.code(), Some(0));
    c.edit(
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: fail-1.5.0",
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("ProgressDeadlineExceeded"),
        "{}",
        text(&out)
    );
    // The fix: the deadline the last rollout exceeded belongs to the previous generation and
    // must not fail this one.
    c.edit(
        "environments/staging/environment.yaml",
        "web: fail-1.5.0",
        "web: 1.5.1",
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A NetworkPolicy with two ports and a RoleBinding with two subjects, in the api app.
const ACCESS: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-ingress
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: api
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: ingress-nginx
      ports:
        - port: 8080
        - port: 9090
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: api-readers
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
  - kind: User
    name: alice
    apiGroup: rbac.authorization.k8s.io
  - kind: User
    name: mallory
    apiGroup: rbac.authorization.k8s.io
";

#[test]
fn what_git_removes_from_a_list_the_server_keeps_whole_is_removed() {
    let c = setup("list-removal");
    c.write("apps/api/manifests/access.yaml", ACCESS);
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = c.server.store();
    let live_ports = || {
        store
            .get("networkpolicies.networking.k8s.io", "shop", "api-ingress")
            .map(|p| p["spec"]["ingress"][0]["ports"].clone())
    };
    let live_subjects = || {
        store
            .get(
                "rolebindings.rbac.authorization.k8s.io",
                "shop",
                "api-readers",
            )
            .map(|b| b["subjects"].as_array().map_or(0, Vec::len))
    };
    let port = |n: u16| json!({"port": n, "protocol": "TCP"});
    assert_eq!(live_ports(), Some(json!([port(8080), port(9090)])));
    assert_eq!(live_subjects(), Some(2));

    c.edit(
        "apps/api/manifests/access.yaml",
        "        - port: 9090\n",
        "",
    );
    c.edit(
        "apps/api/manifests/access.yaml",
        "  - kind: User\n    name: mallory\n    apiGroup: rbac.authorization.k8s.io\n",
        "",
    );
    let plan = c.run("plan", &[]);
    assert_eq!(plan.status.code(), Some(3), "{}", text(&plan));
    assert!(text(&plan).contains("2 to update"), "{}", text(&plan));
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_ports(), Some(json!([port(8080)])));
    assert_eq!(live_subjects(), Some(1));
}

/// The api Deployment's selector and pod labels, as the example has them.
const API_SELECTOR: &str = "  selector:
    matchLabels:
      app.kubernetes.io/name: api
  template:
    metadata:
      labels:
        app.kubernetes.io/name: api
";

#[test]
fn a_changed_selector_is_refused_before_any_write_and_replaced_when_allowed() {
    let c = setup("immutable");
    assert_eq!(c.apply().status.code(), Some(0));
    let store = c.server.store();
    let uid = || {
        store
            .get("deployments.apps", "shop", "api")
            .and_then(|d| d["metadata"]["uid"].as_str().map(str::to_owned))
    };
    let first = uid();
    let manifest = "apps/api/manifests/api.yaml";
    c.edit(
        manifest,
        API_SELECTOR,
        &API_SELECTOR
            .replace(
                "      app.kubernetes.io/name: api\n  template",
                "      app.kubernetes.io/name: api\n      tier: backend\n  template",
            )
            .replace(
                "        app.kubernetes.io/name: api\n",
                "        app.kubernetes.io/name: api\n        tier: backend\n",
            ),
    );
    let plan = c.run("plan", &[]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains("± replace Deployment shop/api (spec.selector immutable)"),
        "{shown}"
    );
    assert!(shown.contains("1 to replace"), "{shown}");

    // Refused: nothing at all is written, and the message names the field and the way out.
    c.server.reset_request_log();
    let out = c.apply();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(4), "{shown}");
    assert!(
        shown.contains("Deployment shop/api: the server refuses to change spec.selector in place"),
        "{shown}"
    );
    assert!(shown.contains("tally.dev/recreate: enabled"), "{shown}");
    assert_eq!(
        c.server.counters().writes(),
        0,
        "{:?}",
        c.server.request_log()
    );
    assert_eq!(uid(), first);

    // Allowed: deleted and created again with the new selector.
    c.edit(
        manifest,
        "kind: Deployment\nmetadata:\n  name: api\n",
        "kind: Deployment\nmetadata:\n  name: api\n  annotations:\n    tally.dev/recreate: enabled\n",
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_ne!(uid(), first);
    let selector = store
        .get("deployments.apps", "shop", "api")
        .map(|d| d["spec"]["selector"]["matchLabels"]["tier"].clone());
    assert_eq!(selector, Some(json!("backend")));
}

#[test]
fn a_field_the_server_fills_in_causes_no_write_on_the_next_round() {
    // Charts often say `clusterIP: ""`: the server allocates one and keeps it on every update.
    let c = setup("server-filled");
    c.edit(
        "apps/api/manifests/api.yaml",
        "kind: Service\nmetadata:\n  name: api\nspec:\n",
        "kind: Service\nmetadata:\n  name: api\nspec:\n  clusterIP: \"\"\n",
    );
    assert_eq!(c.apply().status.code(), Some(0));
    let ip = c
        .server
        .store()
        .get("services", "shop", "api")
        .map(|s| s["spec"]["clusterIP"].clone());
    assert!(
        ip.as_ref()
            .and_then(|v| v.as_str())
            .is_some_and(|v| !v.is_empty()),
        "{ip:?}"
    );

    c.server.reset_request_log();
    let plan = c.run("plan", &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let counters = c.server.counters();
    assert_eq!(counters.writes(), 0, "{counters:?}");
    assert_eq!(counters.dry_runs(), 2, "{counters:?}");
}

#[test]
fn a_value_a_webhook_rewrites_is_not_written_again_every_round() {
    // A webhook pins every Deployment's image to a digest: live never equals git's tag.
    let pinned = "registry.example.com/pinned@sha256:0123456789abcdef";
    let c = setup_with(
        "mutating-webhook",
        Config::default()
            .with_ready_delay(Duration::from_millis(100))
            .with_mutation(
                "deployments.apps",
                "/spec/template/spec/containers/0/image",
                json!(pinned),
            ),
    );
    assert_eq!(c.apply().status.code(), Some(0));
    let image = c
        .server
        .store()
        .get("deployments.apps", "shop", "api")
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone());
    assert_eq!(image, Some(json!(pinned)));

    c.server.reset_request_log();
    let plan = c.run("plan", &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let counters = c.server.counters();
    assert_eq!(counters.writes(), 0, "{counters:?}");
    // One dry run per Deployment the local diff flagged (web's two colours, api, ledger), per
    // command.
    assert_eq!(counters.dry_runs(), 8, "{counters:?}");

    // The daemon asks once, then remembers the answer while nothing changes.
    let (_daemon, log) = c.follow_tree("1", &[]);
    eventually_logged("a first round", &log, || {
        count_logged(&log, "reconciled") >= 1
    });
    c.server.reset_request_log();
    eventually_logged("three more rounds", &log, || {
        count_logged(&log, "reconciled") >= 4
    });
    let counters = c.server.counters();
    assert_eq!(counters.writes(), 0, "{counters:?}");
    assert_eq!(counters.dry_runs(), 0, "{counters:?}");
}

/// Autoscalers for the api and web Deployments (both of which set `replicas` in git).
const AUTOSCALERS: &str = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: api
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: api
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
";

#[test]
fn an_autoscaled_deployment_is_not_reset_by_apply_or_self_heal() {
    let c = setup("autoscaled");
    c.write("apps/api/manifests/autoscaler.yaml", AUTOSCALERS);
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = c.server.store();
    let replicas = || {
        store
            .get("deployments.apps", "shop", "api")
            .map(|d| d["spec"]["replicas"].clone())
    };
    let managers = || {
        let d = store
            .get("deployments.apps", "shop", "api")
            .unwrap_or_default();
        let entries = d["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        entries
            .iter()
            .filter(|e| e["fieldsV1"]["f:spec"].get("f:replicas").is_some())
            .filter_map(|e| e["manager"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    // Set on create, from git.
    assert_eq!(replicas(), Some(json!(2)));
    assert_eq!(managers(), ["tally"]);

    // The next apply hands the field over, and keeps its value.
    let plan = c.run("plan", &[]);
    assert!(
        text(&plan).contains("⇢ spec.replicas: 2 (left to others from now on)"),
        "{}",
        text(&plan)
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(replicas(), Some(json!(2)));
    assert_eq!(managers(), ["tally-handover"]);

    // The autoscaler scales up: neither an apply nor the daemon's rounds undo it.
    store
        .edit(
            "kube-controller-manager",
            "deployments.apps",
            "shop",
            "api",
            |d| {
                d["spec"]["replicas"] = json!(5);
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = c.run("plan", &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(replicas(), Some(json!(5)));
    let (_daemon, log) = c.follow_tree("1", &[]);
    eventually_logged("three rounds", &log, || {
        count_logged(&log, "reconciled") >= 3
    });
    assert_eq!(replicas(), Some(json!(5)));
    assert_eq!(managers(), ["kube-controller-manager"]);
}

#[test]
fn a_deployment_first_created_by_kubectl_is_adopted_so_what_git_removes_is_removed() {
    let c = setup("adopt");
    c.edit(
        "apps/api/manifests/api.yaml",
        "          envFrom:\n",
        "          env:\n            - name: KEEP\n              value: a\n            - name: DROP\n              value: b\n          envFrom:\n",
    );
    // Before tally, the team applied the same manifests with `kubectl apply` (client-side).
    let repo = c.repo().to_string_lossy().into_owned();
    let rendered = common::output(
        common::tally_command().args(["render", "--env", "staging", "--format", "json", &repo]),
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&rendered.stdout).unwrap_or_else(|e| panic!("{e}"));
    let mut api = doc["objects"]
        .as_array()
        .and_then(|o| {
            o.iter().find(|o| {
                o["object"]["kind"] == "Deployment" && o["object"]["metadata"]["name"] == "api"
            })
        })
        .map(|o| o["object"].clone())
        .unwrap_or_else(|| panic!("no api Deployment"));
    api["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": api.to_string()
    });
    let store = c.server.store();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    for object in [namespace, api] {
        store
            .create("kubectl-client-side-apply", object)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    let plan = c.run("plan", &[]);
    assert!(
        text(&plan).contains(
            "⇠ adopting: the fields kubectl-client-side-apply set are tally's from now on"
        ),
        "{}",
        text(&plan)
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    c.edit(
        "apps/api/manifests/api.yaml",
        "            - name: DROP\n              value: b\n",
        "",
    );
    let plan = c.run("plan", &[]);
    assert!(
        text(&plan).contains("- spec.template.spec.containers[name=api].env[name=DROP]"),
        "{}",
        text(&plan)
    );
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let env = store
        .get("deployments.apps", "shop", "api")
        .map(|d| d["spec"]["template"]["spec"]["containers"][0]["env"].clone());
    assert_eq!(env, Some(json!([{"name": "KEEP", "value": "a"}])));
}

#[test]
fn a_down_api_group_blocks_only_its_kinds_and_the_rest_is_applied() {
    let c = setup("api-down");
    // The policy group's discovery fails, as an aggregated API does when its server is down.
    c.server.faults().inject(
        Fault::status(503)
            .on(Verb::Discovery)
            .for_resource("policy"),
    );
    let plan = c.run("plan", &[]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(3), "{shown}");
    assert!(
        shown
            .contains("! blocked PodDisruptionBudget shop/api: its API (policy/v1) is unavailable"),
        "{shown}"
    );
    let out = c.apply();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(4), "{shown}");
    assert!(
        shown.contains("blocked PodDisruptionBudget shop/api"),
        "{shown}"
    );
    let store = c.server.store();
    assert!(store.get("deployments.apps", "shop", "api").is_some());
    assert!(live_web(&store).is_some());
    assert!(
        store
            .get("poddisruptionbudgets.policy", "shop", "api")
            .is_none()
    );

    // Back up: the next apply completes.
    c.server.faults().clear();
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        store
            .get("poddisruptionbudgets.policy", "shop", "api")
            .is_some()
    );
}

#[test]
fn impersonated_tenants_are_held_to_the_roles_the_cluster_holds() {
    let c = setup("impersonate");
    // Guardrails (the deployer Role and its binding) go first, as tally; then each tenant's
    // objects as its deployer, which the server authorizes against those roles.
    let out = c.run("apply", &["--timeout", "20", "--impersonate-tenants"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = c.server.request_log();
    let as_deployer = log
        .iter()
        .filter(|r| {
            r.impersonate_user.as_deref() == Some("system:serviceaccount:shop:tally-deployer")
        })
        .count();
    assert!(as_deployer > 0, "no request as the deployer");

    // A kind the deployer's Role does not grant is refused by the server, with its message.
    c.write(
        "apps/api/manifests/quota.yaml",
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: api-limits\nspec:\n  limits:\n    - type: Container\n      default:\n        memory: 256Mi\n",
    );
    let out = c.run("apply", &["--timeout", "20", "--impersonate-tenants"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(4), "{shown}");
    assert!(
        shown.contains(
            "User \"system:serviceaccount:shop:tally-deployer\" cannot patch resource \"limitranges\" in API group \"\" in the namespace \"shop\""
        ),
        "{shown}"
    );
}

#[test]
fn api_faults_mid_apply_are_retried() {
    let c = setup("faults");
    c.server
        .faults()
        .inject(Fault::status(503).on(Verb::Apply).times(2));
    c.server
        .faults()
        .inject(Fault::status(429).on(Verb::List).times(1));
    let out = c.apply();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(live_web(&c.server.store()).is_some());
}

/// Polls `check` for up to 30 s.
fn eventually(what: &str, check: impl FnMut() -> bool) {
    if !poll(check) {
        panic!("timed out waiting for {what}");
    }
}

/// As [`eventually`], and on failure shows the daemon's log.
fn eventually_logged(what: &str, log: &Path, check: impl FnMut() -> bool) {
    if !poll(check) {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("timed out waiting for {what}; the daemon's log:\n{log}");
    }
}

fn poll(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn the_daemons_rounds_with_nothing_to_do_read_live_state_from_watches() {
    let c = setup("watchcache");
    let (mut child, log) = c.follow_tree("1", &[]);
    let rounds = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches(r#""result":"no_change""#)
            .count()
    };
    // The first round applies; the next records "no change" once; from then on rounds are quiet.
    eventually_logged("two rounds with nothing to do", &log, || rounds() >= 2);
    c.server.reset_request_log();
    let before = rounds();
    eventually_logged("three more rounds", &log, || rounds() >= before + 3);
    let counters = c.server.counters();
    let during = (rounds() - before + 1) as u64;
    assert_eq!(
        counters.verb(Verb::List),
        0,
        "live state comes from watches"
    );
    assert_eq!(counters.writes(), 0);
    assert!(
        counters.verb(Verb::Get) <= during,
        "one GET a round (the inventory), not one per object: {} in {during} rounds",
        counters.verb(Verb::Get)
    );

    // A change by hand reaches the daemon through its watch: the drift is seen and put back,
    // still without a list.
    let store = c.server.store();
    store
        .edit("kubectl", "deployments.apps", "shop", "api", |d| {
            d["spec"]["replicas"] = json!(7);
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eventually_logged("drift correction", &log, || {
        store
            .get("deployments.apps", "shop", "api")
            .is_some_and(|d| d["spec"]["replicas"] == json!(2))
    });
    assert_eq!(c.server.counters().verb(Verb::List), 0);
    assert!(terminate(&mut child.0).success());
}

#[test]
fn the_daemon_applies_follows_changes_heals_drift_and_stops_cleanly() {
    let c = setup("daemon");
    let (mut child, log) = c.follow_tree("1", &[]);
    let store = c.server.store();
    let image = |s: &tally_fake_apiserver::Store| {
        live_web(s).map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
    };
    eventually("the first apply", || image(&store).is_some());

    // A change in the working tree is applied on a following round.
    c.edit(
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: 1.5.0-rc.2",
    );
    eventually("the change", || {
        image(&store) == Some(json!("registry.example.com/shop/web:1.5.0-rc.2"))
    });

    // Someone scales a Deployment by hand: the daemon puts it back.
    store
        .edit("kubectl", "deployments.apps", "shop", "api", |d| {
            d["spec"]["replicas"] = json!(7);
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eventually("drift correction", || {
        store
            .get("deployments.apps", "shop", "api")
            .is_some_and(|d| d["spec"]["replicas"] == json!(2))
    });

    // A state the gate rejects is never applied; the last good one stays.
    c.edit(
        "apps/api/manifests/api.yaml",
        "image: registry.example.com/shop/api:2.0.1",
        "image: registry.example.com/shop/api:latest",
    );
    eventually("the rejection to be recorded", || {
        store
            .get("configmaps", "tally-system", "tally-status-staging")
            .is_some_and(|cm| cm["data"]["result"] == "rejected")
    });
    let api = store.get("deployments.apps", "shop", "api");
    let api_image = api.map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone());
    assert_eq!(
        api_image,
        Some(json!("registry.example.com/shop/api:2.0.1"))
    );
    // ...and is a Kubernetes Event too.
    eventually("the rejection's Event", || {
        store
            .list("events", Some("tally-system"))
            .iter()
            .any(|e| e["reason"] == "CommitRejected")
    });

    // SIGTERM: the daemon stops cleanly.
    let status = terminate(&mut child.0);
    assert!(status.success(), "{status:?}");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logs.contains("\"result\":\"rejected\""), "{logs}");
    assert!(logs.contains("\"msg\":\"stopped\""), "{logs}");
}

/// Lines of a JSON log whose message is `msg`.
fn count_logged(log: &Path, msg: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(&format!("\"msg\":\"{msg}\""))
        .count()
}

#[test]
fn the_daemon_rejects_at_its_fail_on_level_and_gates_each_commit_once() {
    let c = setup("failon");
    let (mut child, log) = c.follow_tree("1", &["--fail-on", "warning"]);
    let store = c.server.store();
    let read_only = |s: &tally_fake_apiserver::Store| {
        s.get("deployments.apps", "shop", "api").map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["securityContext"]
                ["readOnlyRootFilesystem"]
                .clone()
        })
    };
    eventually_logged("the first apply", &log, || read_only(&store).is_some());

    // A warning (`read-only-root-fs`) rejects the commit at --fail-on warning, as it would in
    // `tally apply --fail-on warning`.
    c.edit(
        "apps/api/manifests/api.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    );
    let status = || store.get("configmaps", "tally-system", "tally-status-staging");
    eventually_logged("the rejection", &log, || {
        status().is_some_and(|cm| cm["data"]["result"] == "rejected")
    });
    let message = status().map(|cm| cm["data"]["message"].to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("at warning or above") && m.contains("read-only-root-fs")),
        "{message:?}"
    );
    assert_eq!(read_only(&store), Some(json!(true)));

    // Later rounds on the rejected commit do not gate it again: two commits, two loads, two
    // renders, however many rounds.
    let rounds = count_logged(&log, "reconciled");
    eventually_logged("three more rounds", &log, || {
        count_logged(&log, "reconciled") >= rounds + 3
    });
    assert!(terminate(&mut child.0).success());
    assert_eq!(count_logged(&log, "loading the repo"), 2);
    assert_eq!(count_logged(&log, "rendering the environment"), 2);
}

#[test]
fn the_daemon_sheds_a_commit_past_the_input_limits_and_keeps_the_last_good_one() {
    let c = setup("shed");
    // The example repo reads about 10 KB; the limit leaves room for it and not much more.
    c.edit(
        "tally.yaml",
        "kubernetesVersion: \"1.37\"",
        "kubernetesVersion: \"1.37\"\n  limits:\n    maxInputSize: 48Ki",
    );
    let (mut child, log) = c.follow_tree("1", &[]);
    let store = c.server.store();
    let api = || store.get("deployments.apps", "shop", "api");
    eventually_logged("the first apply", &log, || api().is_some());

    // A commit that brings 80 KB of ConfigMaps: rejected as a whole, nothing of it applied.
    let big: String = (0..400)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bulk-{i}\n  namespace: shop\ndata:\n  payload: \"{}\"\n",
                "x".repeat(100)
            )
        })
        .collect();
    c.write("apps/api/manifests/bulk.yaml", &big);
    c.edit(
        "environments/staging/environment.yaml",
        "    - name: api\n      replicas: 2",
        "    - name: api\n      replicas: 3",
    );
    let status = || store.get("configmaps", "tally-system", "tally-status-staging");
    eventually_logged("the rejection", &log, || {
        status().is_some_and(|cm| cm["data"]["result"] == "rejected")
    });
    let message = status().map(|cm| cm["data"]["message"].to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("input-limit") && m.contains("spec.limits")),
        "{message:?}"
    );
    assert!(store.get("configmaps", "shop", "bulk-0").is_none());
    assert_eq!(api().map(|d| d["spec"]["replicas"].clone()), Some(json!(2)));

    // The daemon is still there: the next commit within the limits is applied.
    std::fs::remove_file(c.repo().join("apps/api/manifests/bulk.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    eventually_logged("the next good commit", &log, || {
        api().is_some_and(|d| d["spec"]["replicas"] == json!(3))
    });
    assert!(terminate(&mut child.0).success());
}

#[test]
fn plan_and_apply_load_and_render_the_repo_once() {
    let c = setup("once");
    for command in ["plan", "apply"] {
        let out = c.run(command, &["--log-level", "debug"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.matches("loading the repo").count(), 1, "{stderr}");
        assert_eq!(
            stderr.matches("rendering the environment").count(),
            1,
            "{stderr}"
        );
    }
}

/// Commits everything in `dir` (a git repository, created on the first call) on `main`.

#[test]
fn the_daemon_follows_a_git_branch_and_records_each_commit() {
    let c = setup("gitsource");
    let repo = c.repo();
    let first = common::commit_all(&repo, "change");
    let log = c.dir.join("daemon.log");
    let child = c
        .daemon()
        .args([
            "--interval",
            "1",
            "--log-format",
            "json",
            "--branch",
            "main",
        ])
        .arg("--repo")
        .arg(format!("file://{}", repo.display()))
        .arg("--cache-dir")
        .arg(c.dir.join("cache"))
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = DaemonGuard(child);
    let store = c.server.store();
    let status = |s: &tally_fake_apiserver::Store| {
        s.get("configmaps", "tally-system", "tally-status-staging")
            .map(|cm| {
                (
                    cm["data"]["commit"].as_str().unwrap_or_default().to_owned(),
                    cm["data"]["result"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .unwrap_or_default()
    };
    let image = |s: &tally_fake_apiserver::Store, app: &str| {
        let d = if app == "web" {
            live_web(s)
        } else {
            s.get("deployments.apps", "shop", app)
        };
        d.map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
    };
    // The round after an apply finds nothing to do and records that; either shows the commit
    // applied.
    let applied = |commit: &str| {
        let (at, result) = status(&store);
        at == commit && (result == "applied" || result == "no_change")
    };
    eventually_logged("the first commit applied", &log, || applied(&first));
    assert!(image(&store, "web").is_some());

    // A new commit on the branch is applied, and its id recorded.
    c.edit(
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: 1.5.0-rc.2",
    );
    let second = common::commit_all(&repo, "change");
    eventually_logged("the second commit applied", &log, || applied(&second));
    assert_eq!(
        image(&store, "web"),
        Some(json!("registry.example.com/shop/web:1.5.0-rc.2"))
    );

    // A commit the gate rejects is never applied; the second stays.
    c.edit(
        "apps/api/manifests/api.yaml",
        "image: registry.example.com/shop/api:2.0.1",
        "image: registry.example.com/shop/api:latest",
    );
    let third = common::commit_all(&repo, "change");
    eventually_logged("the rejection recorded", &log, || {
        status(&store) == (third.clone(), "rejected".into())
    });
    assert_eq!(
        image(&store, "api"),
        Some(json!("registry.example.com/shop/api:2.0.1"))
    );
    let inventory = store.get("configmaps", "tally-system", "tally-inventory-staging");
    let recorded = inventory.map(|cm| cm.to_string()).unwrap_or_default();
    assert!(recorded.contains(&second), "{recorded}");
    assert!(!recorded.contains(&third), "{recorded}");

    let exit = terminate(&mut child.0);
    assert!(exit.success(), "{exit:?}");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logs.contains(&format!("\"commit\":\"{second}\"")), "{logs}");
}

/// One HTTP/1.1 request over a plain socket; returns the status code and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(body).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn a_signed_push_triggers_a_reconcile_at_once_and_the_daemon_serves_probes_and_metrics() {
    let c = setup("webhook");
    let log = c.dir.join("daemon.log");
    let secret = c.dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("127.0.0.1:{port}");
    let child = c
        .daemon()
        // An interval so long that only the push can explain a second reconcile.
        .args(["--interval", "3600", "--listen", &addr])
        .arg("--webhook-secret-file")
        .arg(&secret)
        .args(["--log-format", "json"])
        .arg("--path")
        .arg(c.repo())
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = DaemonGuard(child);
    eventually("readiness after the first reconcile", || {
        std::net::TcpStream::connect(&addr).is_ok()
            && http(&addr, "GET", "/readyz", &[], b"").0 == 200
    });
    assert_eq!(http(&addr, "GET", "/healthz", &[], b"").0, 200);
    let (code, metrics) = http(&addr, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tally_reconciles_total{result=\"applied\"} 1"),
        "{metrics}"
    );

    c.edit(
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: 1.5.0-rc.3",
    );
    let body = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}"#;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
    let tag = ring::hmac::sign(&key, body);
    let signature: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let push = |sig: &str| {
        let headers = [
            ("X-GitHub-Event", "push".to_owned()),
            ("Content-Type", "application/json".to_owned()),
            ("X-Hub-Signature-256", format!("sha256={sig}")),
        ];
        http(&addr, "POST", "/hooks/github", &headers, body).0
    };
    assert_eq!(
        push(&"0".repeat(64)),
        401,
        "a wrong signature must be refused"
    );
    assert_eq!(push(&signature), 202);
    let store = c.server.store();
    eventually("the pushed change", || {
        live_web(&store).is_some_and(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                == "registry.example.com/shop/web:1.5.0-rc.3"
        })
    });
    let (_, metrics) = http(&addr, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("outcome=\"bad_signature\"} 1"),
        "{metrics}"
    );
    assert!(terminate(&mut child.0).success());
    // The refused delivery is a warning in the log, with the peer and why (the engine logs it
    // through `tracing`; the binary's subscriber writes it).
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let warning = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["level"] == "warn" && l["outcome"] == "bad_signature");
    let warning = warning.unwrap_or_else(|| panic!("no warning for the bad signature:\n{logs}"));
    assert!(
        warning["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("webhook delivery rejected")),
        "{warning}"
    );
    assert!(
        warning["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{warning}"
    );
}

/// A daemon process that is killed if a test fails before stopping it, so no test leaves one
/// running.
struct DaemonGuard(std::process::Child);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGTERM and waits up to 10 s for the daemon to exit.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the daemon did not stop on SIGTERM");
}

#[test]
fn two_daemons_with_one_lease_never_both_lead_and_the_standby_takes_over() {
    let c = setup("lease");
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| format!("127.0.0.1:{}", a.port()))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let start = |addr: &str, name: &str| {
        let child = c
            .daemon()
            .args(["--interval", "1", "--listen", addr])
            .args(["--leader-election", "--lease-duration", "3"])
            .arg("--path")
            .arg(c.repo())
            .env("POD_NAME", name)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        DaemonGuard(child)
    };
    let (a_addr, b_addr) = (free_port(), free_port());
    let mut a = start(&a_addr, "replica-a");
    let mut b = start(&b_addr, "replica-b");
    let ready = |addr: &str| {
        std::net::TcpStream::connect(addr).is_ok()
            && http(addr, "GET", "/readyz", &[], b"").0 == 200
    };
    eventually("a leader", || ready(&a_addr) || ready(&b_addr));
    // Watch for a while: never two leaders at once.
    for _ in 0..20 {
        assert!(
            !(ready(&a_addr) && ready(&b_addr)),
            "two replicas lead at once"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lease = c.server.store().get(
        "leases.coordination.k8s.io",
        "tally-system",
        "tally-staging",
    );
    let holder = lease.map(|l| l["spec"]["holderIdentity"].clone());
    let (leader, standby_addr) = if ready(&a_addr) {
        (&mut a, b_addr.clone())
    } else {
        (&mut b, a_addr.clone())
    };
    assert!(holder.is_some_and(|h| h == "replica-a" || h == "replica-b"));
    // The leader stops (releasing the Lease): the standby takes over and reconciles.
    assert!(terminate(&mut leader.0).success());
    eventually("the standby to take over", || ready(&standby_addr));
    let standby = if ready(&a_addr) { &mut a } else { &mut b };
    assert!(terminate(&mut standby.0).success());
}

#[test]
fn a_daemon_killed_mid_apply_converges_when_restarted_with_nothing_orphaned() {
    // Workloads take 3 s to become ready: the first apply is still waiting when it is killed.
    let c = setup_with(
        "killed",
        Config::default()
            .with_ready_delay(Duration::from_secs(3))
            .with_progress_deadline(Duration::from_secs(60)),
    );
    let start = || {
        let child = c
            .daemon()
            .args(["--interval", "1"])
            .arg("--path")
            .arg(c.repo())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        DaemonGuard(child)
    };
    let store = c.server.store();
    let mut first = start();
    // Killed (SIGKILL: no chance to clean up) once the guardrails are out, mid-apply.
    eventually("the first wave", || {
        store
            .get("resourcequotas", "shop", "tenant-quota")
            .is_some()
    });
    let _ = first.0.kill();
    let _ = first.0.wait();
    // The inventory already lists what the apply was creating, marked pending.
    let inventory = store.get("configmaps", "tally-system", "tally-inventory-staging");
    assert!(inventory.is_some_and(|i| i["data"]["pending"].is_string()));

    let mut second = start();
    eventually("convergence", || {
        store
            .get("configmaps", "tally-system", "tally-inventory-staging")
            .is_some_and(|i| i["data"].get("pending").is_none() && i["data"]["commit"].is_string())
            && live_web(&store).is_some()
    });
    // Everything the environment renders exists, and nothing labelled for it is left over.
    let plan = c.run("plan", &[]);
    assert!(
        text(&plan).contains("0 to create, 0 to update, 0 to prune"),
        "{}",
        text(&plan)
    );
    assert!(terminate(&mut second.0).success());
}

/// A plain-HTTP server on 127.0.0.1 that answers every request `401` asking for basic auth, and
/// keeps each request's `Authorization` header.
fn refusing_git_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(&stream);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if line.to_ascii_lowercase().starts_with("authorization:")
                    && let Ok(mut l) = log.lock()
                {
                    l.push(line.trim().to_owned());
                }
            }
            let _ = (&stream).write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (addr.to_string(), seen)
}

#[test]
fn refused_git_credentials_are_a_failed_round_and_no_secret_is_ever_shown() {
    let c = setup("gitauth");
    let (addr, seen) = refusing_git_server();
    let log = c.dir.join("daemon.log");
    let child = c
        .daemon()
        .args(["--interval", "3600", "--log-format", "json"])
        .arg("--repo")
        .arg(format!("http://bot:tok-URLPASS-1@{addr}/acme/platform.git"))
        .arg("--cache-dir")
        .arg(c.dir.join("cache"))
        .env("TALLY_GIT_TOKEN", "tok-ENVSECRET-2")
        .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = DaemonGuard(child);
    let recorded = c.failed_round();
    assert!(
        recorded.contains("refused the token in TALLY_GIT_TOKEN"),
        "{recorded}"
    );
    assert!(terminate(&mut child.0).success());
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logs.contains("\"auth\":\"token from TALLY_GIT_TOKEN\""),
        "{logs}"
    );
    assert!(logs.contains("bot:***@"), "{logs}");
    let events = c.server.store().list("events", Some("tally-system"));
    for shown in [&logs, &recorded, &format!("{events:?}")] {
        assert!(!shown.contains("tok-ENVSECRET"), "{shown}");
        assert!(!shown.contains("tok-URLPASS"), "{shown}");
    }
    // The token was sent (once per fetch, not in a loop).
    let sent = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(!sent.is_empty() && sent.len() <= 2, "{sent:?}");
}

#[test]
fn git_credential_flags_that_cannot_apply_are_refused_at_start() {
    let c = setup("gitflags");
    let cache = c.dir.join("cache");
    let known_hosts = c.dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let key = c.dir.join("id_ed25519");
    std::fs::write(&key, "not checked before the first fetch\n").unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str]| {
        let out = c
            .daemon()
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .env_remove("TALLY_GIT_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (out.status.code(), text(&out))
    };
    let kh = known_hosts.to_string_lossy().into_owned();
    let k = key.to_string_lossy().into_owned();
    let ssh = "git@github.com:acme/platform.git";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--repo", ssh, "--git-ssh-key", &k],
            "give --git-known-hosts",
        ),
        (
            &["--repo", ssh, "--git-known-hosts", &kh],
            "give --git-ssh-key",
        ),
        (
            &[
                "--repo",
                ssh,
                "--git-known-hosts",
                "/nonexistent/kh",
                "--git-ssh-key",
                &k,
            ],
            "/nonexistent/kh",
        ),
        (
            &[
                "--repo",
                ssh,
                "--git-known-hosts",
                &kh,
                "--git-ssh-key",
                &k,
                "--git-token-file",
                &k,
            ],
            "--git-token-file is for HTTPS",
        ),
        (
            &[
                "--repo",
                "https://github.com/acme/p.git",
                "--git-ssh-key",
                &k,
            ],
            "--git-ssh-key is for SSH remotes",
        ),
        (
            &[
                "--repo",
                "https://github.com/acme/p.git",
                "--git-token-file",
                "/nonexistent/t",
            ],
            "/nonexistent/t",
        ),
        (&["--path", ".", "--git-token-file", &k], "--repo"),
    ];
    for (args, expected) in cases {
        let (code, out) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
}

#[test]
fn a_fetch_that_never_answers_times_out_as_a_failed_round() {
    let c = setup("fetchtimeout");
    // Accepts connections and holds them open, never sending a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let child = c
        .daemon()
        .args(["--interval", "3600", "--fetch-timeout", "1"])
        .arg("--repo")
        .arg(format!("http://{addr}/acme/platform.git"))
        .arg("--cache-dir")
        .arg(c.dir.join("cache"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = DaemonGuard(child);
    let recorded = c.failed_round();
    assert!(recorded.contains("fetch timeout of 1s"), "{recorded}");
    assert!(terminate(&mut child.0).success());
}

#[test]
fn a_watched_working_tree_is_applied_on_change_without_waiting_for_the_interval() {
    let c = setup("watch");
    // An interval so long that only the change notification can explain a second apply.
    let (mut child, log) = c.follow_tree("3600", &[]);
    let store = c.server.store();
    let image = || {
        live_web(&store).map(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].clone())
    };
    eventually("the first apply", || {
        image() == Some(json!("registry.example.com/shop/web:1.5.0-rc.1"))
            && store
                .get("configmaps", "tally-system", "tally-status-staging")
                .is_some()
    });
    c.edit(
        "environments/staging/environment.yaml",
        "web: 1.5.0-rc.1",
        "web: 1.5.0-rc.4",
    );
    eventually("the edit applied", || {
        image() == Some(json!("registry.example.com/shop/web:1.5.0-rc.4"))
    });
    assert!(terminate(&mut child.0).success());
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logs.contains("\"msg\":\"working tree changed\""), "{logs}");
}
