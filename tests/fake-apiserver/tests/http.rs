//! The fake API server over real HTTP: discovery, CRUD, watch, server-side apply, CRDs, the
//! simulated controller and fault injection.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{APPLY, Client, MERGE, eventually};
use tally_fake_apiserver::{Config, FakeApiServer, Fault, Handle, Verb};

async fn server(config: Config) -> (Handle, Client) {
    let server = FakeApiServer::start(config).await.expect("server starts");
    let client = Client::new(&server.url());
    (server, client)
}

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn configmap(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}})
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a numeric resourceVersion")
}

const DEPLOY: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn discovery() {
    let (_server, c) = server(Config::default()).await;
    assert_eq!(c.get("/version").await.body["major"], "1");
    let api = c.get("/api").await.body;
    assert_eq!(api["versions"], json!(["v1"]));
    let groups = c.get("/apis").await.body;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in [
        "apps",
        "batch",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "policy",
        "autoscaling",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
    ] {
        assert!(names.contains(&group), "{group} in {names:?}");
    }
    let core = c.get("/api/v1").await.body;
    let find = |list: &Value, name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
    };
    assert_eq!(find(&core, "namespaces").unwrap()["namespaced"], false);
    assert_eq!(find(&core, "configmaps").unwrap()["namespaced"], true);
    assert_eq!(
        find(&core, "persistentvolumeclaims").unwrap()["kind"],
        "PersistentVolumeClaim"
    );
    let apps = c.get("/apis/apps/v1").await.body;
    assert_eq!(apps["groupVersion"], "apps/v1");
    let deploy = find(&apps, "deployments").unwrap();
    assert_eq!(deploy["kind"], "Deployment");
    assert!(
        deploy["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("watch"))
    );
    assert!(find(&apps, "deployments/status").is_some());
    let rbac = c.get("/apis/rbac.authorization.k8s.io/v1").await.body;
    assert_eq!(find(&rbac, "clusterroles").unwrap()["namespaced"], false);
    assert_eq!(c.get("/apis/nope.example.com/v1").await.status, 404);
    assert_eq!(c.get("/apis/apps/v1/nopes").await.status, 404);
}

#[tokio::test]
async fn create_get_list_delete() {
    let (server, c) = server(Config::default()).await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let created = c
        .post(
            cms,
            &configmap("default", "a", json!({"app": "x", "tier": "web"})),
        )
        .await;
    assert_eq!(created.status, 201);
    assert!(created.body["metadata"]["uid"].is_string());
    assert!(created.body["metadata"]["creationTimestamp"].is_string());
    assert_eq!(created.body["metadata"]["generation"], 1);
    c.post(cms, &configmap("default", "b", json!({"app": "y"})))
        .await;
    c.post(cms, &configmap("default", "c", json!({}))).await;

    let again = c.post(cms, &configmap("default", "a", json!({}))).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["kind"], "Status");
    assert_eq!(again.body["reason"], "AlreadyExists");
    let missing_ns = c
        .post(
            "/api/v1/namespaces/nope/configmaps",
            &configmap("nope", "a", json!({})),
        )
        .await;
    assert_eq!(
        (missing_ns.status, missing_ns.body["reason"].as_str()),
        (404, Some("NotFound"))
    );
    let bad_name = c
        .post(cms, &configmap("default", "Bad_Name", json!({})))
        .await;
    assert_eq!(bad_name.status, 422);

    let got = c.get(&format!("{cms}/a")).await;
    assert_eq!(got.body["data"]["k"], "v");
    assert_eq!(c.get(&format!("{cms}/zz")).await.status, 404);

    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = c.get(cms).await.body;
    assert_eq!(list["kind"], "ConfigMapList");
    assert!(rv(&list) >= rv(&created.body));
    assert_eq!(names(&list), ["a", "b", "c"]);
    let q = |s: &str| {
        format!(
            "{cms}?labelSelector={}",
            s.replace(' ', "%20").replace('!', "%21")
        )
    };
    assert_eq!(names(&c.get(&q("app=x")).await.body), ["a"]);
    assert_eq!(names(&c.get(&q("app!=x")).await.body), ["b", "c"]);
    assert_eq!(names(&c.get(&q("app in (x,y)")).await.body), ["a", "b"]);
    assert_eq!(names(&c.get(&q("app notin (x)")).await.body), ["b", "c"]);
    assert_eq!(names(&c.get(&q("app")).await.body), ["a", "b"]);
    assert_eq!(names(&c.get(&q("!app")).await.body), ["c"]);
    assert_eq!(
        names(
            &c.get(&format!("{cms}?fieldSelector=metadata.name%3Db"))
                .await
                .body
        ),
        ["b"]
    );
    assert_eq!(
        names(&c.get("/api/v1/configmaps").await.body),
        ["a", "b", "c"]
    );

    let deleted = c
        .delete(&format!("{cms}/a?propagationPolicy=Foreground"))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(c.get(&format!("{cms}/a")).await.status, 404);
    assert_eq!(c.delete(&format!("{cms}/a")).await.status, 404);
    assert_eq!(
        c.delete(&format!("{cms}/b?propagationPolicy=Sideways"))
            .await
            .status,
        400
    );

    let counters = server.counters();
    assert_eq!(counters.get(Verb::Create, "configmaps"), 6);
    assert_eq!(counters.get(Verb::Get, "configmaps"), 3);
    assert_eq!(counters.get(Verb::Delete, "configmaps"), 3);
    assert_eq!(server.store().list("configmaps", Some("default")).len(), 2);
}

#[tokio::test]
async fn namespace_deletion_cascades() {
    let (server, c) = server(Config::default()).await;
    let ns = c
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        )
        .await;
    assert_eq!(ns.status, 201);
    assert_eq!(ns.body["status"]["phase"], "Active");
    c.post(
        "/api/v1/namespaces/team/configmaps",
        &configmap("team", "a", json!({})),
    )
    .await;
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &configmap("default", "a", json!({})),
    )
    .await;
    assert_eq!(c.delete("/api/v1/namespaces/team").await.status, 200);
    assert!(server.store().list("configmaps", Some("team")).is_empty());
    assert_eq!(server.store().list("configmaps", Some("default")).len(), 1);
    assert_eq!(c.get("/api/v1/namespaces/team").await.status, 404);
}

#[tokio::test]
async fn server_side_apply() {
    let (server, c) = server(Config::default().without_controller()).await;
    let path = format!("{DEPLOY}/web?fieldManager=tally");
    let no_manager = c
        .patch(
            &format!("{DEPLOY}/web"),
            APPLY,
            &deployment("web", 2, "nginx:1"),
        )
        .await;
    assert_eq!(no_manager.status, 400);

    // Dry run of a create stores nothing.
    let dry = c
        .patch(
            &format!("{path}&dryRun=All"),
            APPLY,
            &deployment("web", 2, "nginx:1"),
        )
        .await;
    assert_eq!(dry.status, 201);
    assert_eq!(dry.body["spec"]["replicas"], 2);
    assert!(
        server
            .store()
            .get("deployments.apps", "default", "web")
            .is_none()
    );

    let created = c
        .patch(&path, APPLY, &deployment("web", 2, "nginx:1"))
        .await;
    assert_eq!(created.status, 201);
    let managed = &created.body["metadata"]["managedFields"][0];
    assert_eq!(managed["manager"], "tally");
    assert_eq!(managed["operation"], "Apply");
    assert_eq!(managed["fieldsType"], "FieldsV1");
    assert_eq!(managed["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert_eq!(created.body["metadata"]["generation"], 1);

    // The same apply again changes nothing, not even the resourceVersion.
    let noop = c
        .patch(&path, APPLY, &deployment("web", 2, "nginx:1"))
        .await;
    assert_eq!(noop.status, 200);
    assert_eq!(rv(&noop.body), rv(&created.body));

    // A changed field bumps resourceVersion and generation.
    let changed = c
        .patch(&path, APPLY, &deployment("web", 3, "nginx:1"))
        .await;
    assert_eq!(changed.body["spec"]["replicas"], 3);
    assert!(rv(&changed.body) > rv(&created.body));
    assert_eq!(changed.body["metadata"]["generation"], 2);

    // Another manager changing tally's field conflicts...
    let other = format!("{DEPLOY}/web?fieldManager=kubectl");
    let conflict = c
        .patch(&other, APPLY, &deployment("web", 5, "nginx:1"))
        .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["reason"], "Conflict");
    let causes = conflict.body["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0]["field"], ".spec.replicas");
    assert!(
        conflict.body["message"]
            .as_str()
            .unwrap()
            .contains("conflict with \"tally\"")
    );
    // ... unless forced, which takes the field over.
    let forced = c
        .patch(
            &format!("{other}&force=true"),
            APPLY,
            &deployment("web", 5, "nginx:1"),
        )
        .await;
    assert_eq!(forced.status, 200);
    assert_eq!(forced.body["spec"]["replicas"], 5);
    let managers: Vec<&str> = forced.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"kubectl") && managers.contains(&"tally"),
        "{:#}",
        forced.body["metadata"]
    );

    // Dry run of an update returns the result and keeps the stored object.
    let dry = c
        .patch(
            &format!("{path}&dryRun=All&force=true"),
            APPLY,
            &deployment("web", 9, "nginx:2"),
        )
        .await;
    assert_eq!(dry.body["spec"]["replicas"], 9);
    let stored = server
        .store()
        .get("deployments.apps", "default", "web")
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 5);

    // Fields tally stops applying are removed, unless another manager also owns them: `app`
    // stays (kubectl applied it too), `owner` goes.
    let mut with_label = deployment("web", 5, "nginx:1");
    with_label["metadata"]["labels"]["owner"] = json!("tally");
    c.patch(&format!("{path}&force=true"), APPLY, &with_label)
        .await;
    let mut without_labels = deployment("web", 5, "nginx:1");
    without_labels["metadata"]["labels"] = json!({});
    let applied = c
        .patch(&format!("{path}&force=true"), APPLY, &without_labels)
        .await;
    assert_eq!(applied.status, 200);
    assert_eq!(applied.body["metadata"]["labels"], json!({"app": "web"}));

    // An apply that carries a resourceVersion is an optimistic lock, as on a real server.
    let mut guarded = deployment("web", 6, "nginx:1");
    guarded["metadata"]["resourceVersion"] = json!("1");
    let stale = c
        .patch(&format!("{path}&force=true"), APPLY, &guarded)
        .await;
    assert_eq!(stale.status, 409, "{:#}", stale.body);
    guarded["metadata"]["resourceVersion"] = applied.body["metadata"]["resourceVersion"].clone();
    let current = c
        .patch(&format!("{path}&force=true"), APPLY, &guarded)
        .await;
    assert_eq!(current.status, 200, "{:#}", current.body);
    assert_eq!(current.body["spec"]["replicas"], 6);

    let counters = server.counters();
    assert_eq!(counters.verb(Verb::Apply), 12);
    assert_eq!(counters.dry_runs(), 2);
    let log = server.request_log();
    assert!(
        log.iter()
            .any(|r| r.field_manager.as_deref() == Some("kubectl") && r.force)
    );
}

#[tokio::test]
async fn updates_patches_and_status() {
    let (server, c) = server(Config::default().without_controller()).await;
    let created = c.post(DEPLOY, &deployment("web", 1, "nginx:1")).await.body;
    let path = format!("{DEPLOY}/web");

    // PUT with a stale resourceVersion conflicts; a current one succeeds.
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(c.put(&path, &stale).await.status, 409);
    let mut update = created.clone();
    update["spec"]["replicas"] = json!(4);
    update["status"] = json!({"replicas": 99});
    let updated = c.put(&path, &update).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["spec"]["replicas"], 4);
    assert!(
        updated.body.get("status").is_none(),
        "main resource PUT ignores status"
    );
    assert_eq!(updated.body["metadata"]["generation"], 2);

    // Status subresource: only status changes; generation stays.
    let mut with_status = updated.body.clone();
    with_status["status"] = json!({"readyReplicas": 4});
    with_status["spec"]["replicas"] = json!(10);
    let st = c.put(&format!("{path}/status"), &with_status).await;
    assert_eq!(st.status, 200);
    assert_eq!(st.body["status"]["readyReplicas"], 4);
    assert_eq!(st.body["spec"]["replicas"], 4);
    assert_eq!(st.body["metadata"]["generation"], 2);
    assert_eq!(
        c.get(&format!("{path}/status")).await.body["status"]["readyReplicas"],
        4
    );
    let patched = c
        .patch(
            &format!("{path}/status"),
            MERGE,
            &json!({"status": {"replicas": 4}}),
        )
        .await;
    assert_eq!(
        patched.body["status"],
        json!({"readyReplicas": 4, "replicas": 4})
    );

    // Merge and strategic merge patches; JSON patch.
    let merged = c
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"labels": {"extra": "1", "app": null}}}),
        )
        .await;
    assert_eq!(merged.body["metadata"]["labels"], json!({"extra": "1"}));
    let strategic = c
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            &json!({"spec": {"replicas": 6}}),
        )
        .await;
    assert_eq!(strategic.body["spec"]["replicas"], 6);
    let json_patch = c
        .patch(
            &path,
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 7}]),
        )
        .await;
    assert_eq!(json_patch.body["spec"]["replicas"], 7);
    let managers: Vec<&str> = json_patch.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"fake-tests"), "{managers:?}");

    // Configmaps have no status subresource.
    c.post(
        "/api/v1/namespaces/default/configmaps",
        &configmap("default", "a", json!({})),
    )
    .await;
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps/a/status")
            .await
            .status,
        404
    );
    assert_eq!(server.counters().verb(Verb::Patch), 4);
}

#[tokio::test]
async fn watch_semantics() {
    let (server, c) = server(
        Config {
            bookmark_interval: Duration::from_millis(20),
            ..Config::default()
        }
        .without_controller(),
    )
    .await;
    let cms = "/api/v1/namespaces/default/configmaps";
    c.post(cms, &configmap("default", "before", json!({"w": "1"})))
        .await;
    let list = c.get(cms).await.body;
    let list_rv = rv(&list);

    // From the list's version: only later changes, filtered by the selector.
    let mut w = c
        .watch(&format!(
            "{cms}?watch=1&resourceVersion={list_rv}&labelSelector=w%3D1&allowWatchBookmarks=true"
        ))
        .await;
    c.post(cms, &configmap("default", "a", json!({"w": "1"})))
        .await;
    c.post(cms, &configmap("default", "skip", json!({"w": "2"})))
        .await;
    c.patch(&format!("{cms}/a"), MERGE, &json!({"data": {"k": "2"}}))
        .await;
    c.patch(
        &format!("{cms}/a"),
        MERGE,
        &json!({"metadata": {"labels": {"w": "0"}}}),
    )
    .await;
    c.delete(&format!("{cms}/before")).await;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = w.next_change().await.expect("an event");
        seen.push(format!(
            "{} {}",
            event["type"].as_str().unwrap(),
            event["object"]["metadata"]["name"].as_str().unwrap()
        ));
    }
    assert_eq!(
        seen,
        ["ADDED a", "MODIFIED a", "DELETED a", "DELETED before"]
    );
    // Bookmarks carry a version and the kind.
    let bookmark = loop {
        let event = w.next().await.expect("a bookmark");
        if event["type"] == "BOOKMARK" {
            break event;
        }
    };
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert!(rv(&bookmark["object"]) >= list_rv);

    // Replaying history from the list's version.
    let mut replay = c
        .watch(&format!("{cms}?watch=true&resourceVersion={list_rv}"))
        .await;
    let first = replay.next_change().await.unwrap();
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("a"))
    );

    // Without a version: the current objects first.
    let mut current = c.watch(&format!("{cms}?watch=1")).await;
    let first = current.next_change().await.unwrap();
    assert_eq!(first["object"]["metadata"]["name"], "a");

    // Streaming list: initial events, then a bookmark marking their end.
    let mut streaming = c.watch(&format!("{cms}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")).await;
    let mut kinds = Vec::new();
    loop {
        let e = streaming.next().await.unwrap();
        kinds.push(e["type"].as_str().unwrap().to_string());
        if e["type"] == "BOOKMARK" {
            assert_eq!(
                e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
                "true"
            );
            break;
        }
    }
    assert_eq!(kinds, ["ADDED", "ADDED", "BOOKMARK"]);

    // Dropped watches end.
    eventually(async || (server.open_watches() == 4).then_some(())).await;
    server.faults().drop_watches();
    while current.next().await.is_some() {}
    eventually(async || (server.open_watches() == 0).then_some(())).await;

    // Too old: an ERROR event with a 410 Status.
    server.store().compact();
    let mut gone = c
        .watch(&format!("{cms}?watch=1&resourceVersion={list_rv}"))
        .await;
    let error = gone.next().await.unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");

    // timeoutSeconds ends a watch.
    let mut short = c
        .watch(&format!(
            "{cms}?watch=1&resourceVersion={}&timeoutSeconds=0",
            rv(&c.get(cms).await.body)
        ))
        .await;
    assert!(short.next().await.is_none());
    assert_eq!(server.counters().verb(Verb::Watch), 6);
}

#[tokio::test]
async fn crd_registration() {
    let (server, c) = server(Config::default()).await;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}, "subresources": {"status": {}}}]}});
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let applied = c
        .patch(
            &format!("{crds}/widgets.example.com?fieldManager=tally"),
            APPLY,
            &crd,
        )
        .await;
    assert_eq!(applied.status, 201);
    let established = eventually(async || {
        let got = c.get(&format!("{crds}/widgets.example.com")).await.body;
        let conditions = got["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
            .then_some(got)
    })
    .await;
    assert_eq!(established["status"]["acceptedNames"]["kind"], "Widget");
    let groups = c.get("/apis").await.body;
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
    let list = c.get("/apis/example.com/v1").await.body;
    assert_eq!(list["resources"][0]["name"], "widgets");
    assert_eq!(list["resources"][0]["namespaced"], true);

    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}});
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    assert_eq!(
        c.patch(&format!("{widgets}/w1?fieldManager=tally"), APPLY, &widget)
            .await
            .status,
        201
    );
    assert_eq!(
        c.get(&format!("{widgets}/w1")).await.body["spec"]["size"],
        3
    );

    // A CRD may not take a built-in resource's name.
    let mut shadow = crd.clone();
    shadow["metadata"]["name"] = json!("deployments.apps");
    shadow["spec"]["group"] = json!("apps");
    shadow["spec"]["names"] = json!({"kind": "Deployment", "plural": "deployments"});
    assert_eq!(c.post(crds, &shadow).await.status, 422);

    assert_eq!(
        c.delete(&format!("{crds}/widgets.example.com"))
            .await
            .status,
        200
    );
    assert_eq!(c.get(&format!("{widgets}/w1")).await.status, 404);
    assert_eq!(c.get("/apis/example.com/v1").await.status, 404);
    assert!(server.store().list("widgets.example.com", None).is_empty());
}

#[tokio::test]
async fn simulated_controller() {
    let config = Config::default()
        .with_ready_delay(Duration::from_millis(30))
        .with_progress_deadline(Duration::from_millis(100));
    let (server, c) = server(config).await;
    let apply = |path: String, body: Value| {
        let c = &c;
        async move {
            assert_eq!(
                c.patch(&format!("{path}?fieldManager=tally"), APPLY, &body)
                    .await
                    .status,
                201
            )
        }
    };
    apply(format!("{DEPLOY}/web"), deployment("web", 2, "nginx:1")).await;
    apply(
        format!("{DEPLOY}/broken"),
        deployment("broken", 1, "registry/fail:1"),
    )
    .await;
    let mut sts = deployment("db", 3, "postgres:17");
    sts["kind"] = json!("StatefulSet");
    apply(
        "/apis/apps/v1/namespaces/default/statefulsets/db".into(),
        sts,
    )
    .await;
    let mut ds = deployment("agent", 1, "agent:1");
    ds["kind"] = json!("DaemonSet");
    apply(
        "/apis/apps/v1/namespaces/default/daemonsets/agent".into(),
        ds,
    )
    .await;
    apply("/apis/batch/v1/namespaces/default/jobs/migrate".into(), json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "migrate:1"}]}}}})).await;
    apply(
        "/api/v1/namespaces/default/persistentvolumeclaims/data".into(),
        json!({"apiVersion": "v1",
        "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;

    let status_of = async |path: &str| c.get(path).await.body["status"].clone();
    let web = eventually(async || {
        let s = status_of(&format!("{DEPLOY}/web")).await;
        (s["availableReplicas"] == 2).then_some(s)
    })
    .await;
    assert_eq!(web["observedGeneration"], 1);
    assert_eq!(web["updatedReplicas"], 2);
    assert_eq!(web["readyReplicas"], 2);
    assert_eq!(web["conditions"][0]["type"], "Available");
    assert_eq!(web["conditions"][0]["status"], "True");

    let broken = eventually(async || {
        let s = status_of(&format!("{DEPLOY}/broken")).await;
        (s["conditions"][1]["reason"] == "ProgressDeadlineExceeded").then_some(s)
    })
    .await;
    assert_eq!(broken["conditions"][1]["status"], "False");
    assert!(broken.get("readyReplicas").is_none());

    let db = eventually(async || {
        let s = status_of("/apis/apps/v1/namespaces/default/statefulsets/db").await;
        (s["readyReplicas"] == 3).then_some(s)
    })
    .await;
    assert_eq!(db["currentRevision"], db["updateRevision"]);
    eventually(async || {
        (status_of("/apis/apps/v1/namespaces/default/daemonsets/agent").await["numberReady"] == 1)
            .then_some(())
    })
    .await;
    let job = eventually(async || {
        let s = status_of("/apis/batch/v1/namespaces/default/jobs/migrate").await;
        (s["succeeded"] == 1).then_some(s)
    })
    .await;
    assert!(
        job["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    );
    let pvc = eventually(async || {
        let s = status_of("/api/v1/namespaces/default/persistentvolumeclaims/data").await;
        (s["phase"] == "Bound").then_some(s)
    })
    .await;
    assert_eq!(pvc["capacity"]["storage"], "1Gi");

    // A new generation is rolled out again.
    let scaled = c
        .patch(
            &format!("{DEPLOY}/web?fieldManager=tally"),
            APPLY,
            &deployment("web", 4, "nginx:1"),
        )
        .await;
    assert_eq!(scaled.body["metadata"]["generation"], 2);
    eventually(async || {
        let s = status_of(&format!("{DEPLOY}/web")).await;
        (s["observedGeneration"] == 2 && s["availableReplicas"] == 4).then_some(())
    })
    .await;
    // The controller's writes are its own managed-fields entry, through the status subresource.
    let web = server
        .store()
        .get("deployments.apps", "default", "web")
        .unwrap();
    let entry = web["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "kube-controller-manager")
        .cloned()
        .unwrap();
    assert_eq!(entry["subresource"], "status");
}

#[tokio::test]
async fn fault_injection() {
    let (server, c) = server(Config::default().without_controller()).await;
    server.faults().inject(
        Fault::status(503)
            .on(Verb::Apply)
            .for_resource("deployments.apps")
            .times(2),
    );
    server.faults().inject(
        Fault::status(429)
            .on(Verb::List)
            .for_resource("configmaps")
            .times(1),
    );
    let path = format!("{DEPLOY}/web?fieldManager=tally");
    for _ in 0..2 {
        let answer = c
            .patch(&path, APPLY, &deployment("web", 1, "nginx:1"))
            .await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.body["reason"], "ServiceUnavailable");
        assert_eq!(
            answer
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
    assert_eq!(
        c.patch(&path, APPLY, &deployment("web", 1, "nginx:1"))
            .await
            .status,
        201
    );
    let throttled = c.get("/api/v1/namespaces/default/configmaps").await;
    assert_eq!(
        (throttled.status, throttled.body["code"].as_i64()),
        (429, Some(429))
    );
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps").await.status,
        200
    );
    assert_eq!(server.faults().pending(), 0);

    server.faults().inject(Fault::status(409).on(Verb::Update));
    let live = c.get(&format!("{DEPLOY}/web")).await.body;
    assert_eq!(c.put(&format!("{DEPLOY}/web"), &live).await.status, 409);
    server.faults().clear();
    assert_eq!(c.put(&format!("{DEPLOY}/web"), &live).await.status, 200);

    server.faults().inject(Fault::status(500).ratio(0.5));
    let failures = {
        let mut n = 0;
        for _ in 0..40 {
            if c.get("/version").await.status == 500 {
                n += 1;
            }
        }
        n
    };
    assert!((5..35).contains(&failures), "{failures}");
    server.faults().clear();

    let log = server.request_log();
    assert_eq!(
        log.iter().filter(|r| r.injected_fault).count(),
        4 + failures
    );
    let counters = server.counters();
    assert_eq!(counters.get(Verb::Apply, "deployments.apps"), 3);
    assert_eq!(counters.writes(), 5);
}

#[tokio::test]
async fn impersonation_is_logged_and_authorized() {
    let (server, _c) = server(Config::default()).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let request = hyper::Request::get(format!("{}/api/v1/namespaces", server.url()))
        .header("Impersonate-User", "system:serviceaccount:team-a:deployer")
        .body(http_body_util::Empty::new())
        .unwrap();
    // No binding grants a ServiceAccount the cluster's namespaces.
    assert_eq!(client.request(request).await.unwrap().status(), 403);
    let log = server.request_log();
    assert_eq!(
        log[0].impersonate_user.as_deref(),
        Some("system:serviceaccount:team-a:deployer")
    );
    assert_eq!(log[0].verb, Verb::List);
    assert_eq!(log[0].resource, "namespaces");
}

#[tokio::test]
async fn store_edits_are_drift() {
    let (server, c) = server(Config::default().without_controller()).await;
    c.patch(
        &format!("{DEPLOY}/web?fieldManager=tally"),
        APPLY,
        &deployment("web", 2, "nginx:1"),
    )
    .await;
    let before = server.store().resource_version();
    server
        .store()
        .edit("kubectl-edit", "deployments.apps", "default", "web", |d| {
            d["spec"]["replicas"] = json!(9);
        })
        .unwrap();
    assert!(server.store().resource_version() > before);
    let live = c.get(&format!("{DEPLOY}/web")).await.body;
    assert_eq!(live["spec"]["replicas"], 9);
    // tally re-applying its value now conflicts with the edit's owner unless forced.
    let conflict = c
        .patch(
            &format!("{DEPLOY}/web?fieldManager=tally"),
            APPLY,
            &deployment("web", 2, "nginx:1"),
        )
        .await;
    assert_eq!(conflict.status, 409);
    let healed = c
        .patch(
            &format!("{DEPLOY}/web?fieldManager=tally&force=true"),
            APPLY,
            &deployment("web", 2, "nginx:1"),
        )
        .await;
    assert_eq!(healed.body["spec"]["replicas"], 2);
    // Store access is not in the request log.
    assert_eq!(server.counters().total(), 4);
}

#[test]
fn background_server_and_kubeconfig() {
    let server = FakeApiServer::start_in_background(Config::default()).expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("server: {}", server.url())));
    assert!(text.contains("current-context: fake"));
    assert!(server.store().get("namespaces", "", "default").is_some());
    drop(server);
}

#[tokio::test]
async fn endpoints_follow_ready_replicas_and_the_service_proxy_answers_through_them() {
    let config = Config::default().with_ready_delay(Duration::from_millis(30));
    let (_server, c) = server(config).await;
    let apply = async |path: String, body: Value| {
        let status = c
            .patch(&format!("{path}?fieldManager=tally"), APPLY, &body)
            .await
            .status;
        assert!(status == 200 || status == 201, "{status}");
    };
    let service = |name: &str, app: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    };
    apply(format!("{DEPLOY}/blue"), deployment("blue", 2, "web:1")).await;
    apply(
        format!("{DEPLOY}/green"),
        deployment("green", 1, "web:2-smoke-bad"),
    )
    .await;
    apply(
        format!("{DEPLOY}/stuck"),
        deployment("stuck", 1, "web:fail"),
    )
    .await;
    for (name, app) in [("web", "blue"), ("preview", "green"), ("stuck", "stuck")] {
        apply(
            format!("/api/v1/namespaces/default/services/{name}"),
            service(name, app),
        )
        .await;
    }
    let endpoints = eventually(async || {
        let e = c.get("/api/v1/namespaces/default/endpoints/web").await.body;
        (e["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(2)).then_some(e)
    })
    .await;
    assert_eq!(endpoints["subsets"][0]["ports"][0]["port"], 8080);
    let proxy = |name: &str| format!("/api/v1/namespaces/default/services/{name}:http/proxy/ready");
    assert_eq!(c.get(&proxy("web")).await.status, 200);
    eventually(async || (c.get(&proxy("preview")).await.status == 500).then_some(())).await;
    let stuck = c.get(&proxy("stuck")).await;
    assert_eq!(stuck.status, 503);
    assert_eq!(
        stuck.body["message"],
        "no endpoints available for service \"stuck\""
    );
    let not_ready = c
        .get("/api/v1/namespaces/default/endpoints/stuck")
        .await
        .body;
    assert_eq!(
        not_ready["subsets"][0]["notReadyAddresses"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
