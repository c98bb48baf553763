//! The fake API server driven by the real kube client: kubeconfig, discovery, typed and dynamic
//! server-side apply, conflicts, and kube-runtime's watcher (including relisting after 410).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::json;
use tally_fake_apiserver::{Config, FakeApiServer, Handle, Verb};
use tokio_stream_lite::next_event;

async fn client(server: &Handle) -> Client {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).expect("kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("a valid kubeconfig");
    let options = KubeConfigOptions {
        context: Some("fake".into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a client")
}

fn deployment(replicas: i32, image: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

#[tokio::test]
async fn discovery_and_apply_with_kube() {
    let server =
        FakeApiServer::start(Config::default().with_ready_delay(Duration::from_millis(20)))
            .await
            .expect("server");
    let client = client(&server).await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let apps = discovery.get("apps").expect("apps group");
    let (deploy, caps) = apps
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "Deployment")
        .expect("deployments");
    assert_eq!(deploy.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural.ends_with("status"))
    );
    let (ns, caps) = discovery
        .get("")
        .expect("core group")
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "Namespace")
        .expect("namespaces");
    assert_eq!(
        (ns.plural.as_str(), caps.scope),
        ("namespaces", Scope::Cluster)
    );

    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let ssa = PatchParams::apply("tally").force();
    let created = api
        .patch("web", &ssa, &Patch::Apply(deployment(2, "nginx:1")))
        .await
        .expect("apply");
    assert_eq!(created.spec.replicas, Some(2));
    let managed = created.managed_fields();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("tally"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    // The same apply again changes nothing (the controller may have written status meanwhile).
    let again = api
        .patch("web", &ssa, &Patch::Apply(deployment(2, "nginx:1")))
        .await
        .expect("apply");
    assert_eq!(again.metadata.generation, Some(1));

    // Conflicts surface as kube's API errors.
    let other = PatchParams::apply("someone-else");
    let err = api
        .patch("web", &other, &Patch::Apply(deployment(3, "nginx:1")))
        .await
        .expect_err("a conflict");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("expected an API error, got {other:?}"),
    }

    // Dry run through kube.
    let dry = api
        .patch(
            "web",
            &PatchParams::apply("tally").force().dry_run(),
            &Patch::Apply(deployment(7, "nginx:2")),
        )
        .await
        .expect("dry run");
    assert_eq!(dry.spec.replicas, Some(7));
    let live = api.get("web").await.expect("get");
    assert_eq!(live.spec.replicas, Some(2));

    // The simulated controller makes it available.
    let ready = loop {
        let d = api.get_status("web").await.expect("status");
        if d.status.as_ref().and_then(|s| s.available_replicas) == Some(2) {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ready.status.and_then(|s| s.observed_generation), Some(1));

    // Dynamic objects through discovery, as the engine applies arbitrary kinds.
    let (cm_resource, _) = discovery
        .get("")
        .expect("core")
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "ConfigMap")
        .expect("configmaps");
    let dynamic: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &cm_resource);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "labels": {"app.kubernetes.io/managed-by": "tally"}},
        "data": {"a": "1"}});
    let first = dynamic
        .patch("settings", &ssa, &Patch::Apply(cm.clone()))
        .await
        .expect("dynamic apply");
    // A no-op apply keeps the resourceVersion.
    let again = dynamic
        .patch("settings", &ssa, &Patch::Apply(cm))
        .await
        .expect("dynamic apply");
    assert_eq!(again.resource_version(), first.resource_version());
    let listed = dynamic
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=tally"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    dynamic
        .delete("settings", &DeleteParams::background())
        .await
        .expect("delete");

    let counters = server.counters();
    assert_eq!(counters.get(Verb::Apply, "deployments.apps"), 4);
    assert_eq!(counters.get(Verb::Apply, "configmaps"), 2);
    assert_eq!(counters.get(Verb::Delete, "configmaps"), 1);
}

#[tokio::test]
async fn kube_runtime_watcher_follows_changes_and_relists() {
    let server = FakeApiServer::start(Config::default())
        .await
        .expect("server");
    let client = client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
            .expect("configmap")
    };
    api.create(&PostParams::default(), &cm("first"))
        .await
        .expect("create");

    let mut stream = Box::pin(watcher::watcher(api.clone(), watcher::Config::default()));
    // The initial list.
    let mut names = Vec::new();
    loop {
        match next_event(&mut stream).await {
            Event::InitApply(o) => names.push(o.name_any()),
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, ["first"]);

    api.create(&PostParams::default(), &cm("second"))
        .await
        .expect("create");
    match next_event(&mut stream).await {
        Event::Apply(o) => assert_eq!(o.name_any(), "second"),
        other => panic!("expected an apply event, got {other:?}"),
    }

    // The watch is dropped, then the history it would resume from expires: the watcher
    // re-watches, gets the 410 ERROR event and relists.
    server.faults().drop_watches();
    while server.open_watches() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    api.create(&PostParams::default(), &cm("third"))
        .await
        .expect("create");
    server.store().compact();
    let mut relisted = Vec::new();
    loop {
        match next_event(&mut stream).await {
            Event::InitApply(o) => relisted.push(o.name_any()),
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(relisted, ["first", "second", "third"]);
    let lists = server.counters().get(Verb::List, "configmaps");
    assert_eq!(lists, 2, "one initial list and one relist");
    assert!(server.counters().verb(Verb::Watch) >= 2);
}

/// Reading a watcher stream without pulling in futures-util's combinators.
mod tokio_stream_lite {
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::time::Duration;

    use futures_core::Stream;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher::{Error, Event};

    /// The next successful watcher event; errors (like the 410 that triggers a relist) are
    /// skipped. Panics after 5 s without one.
    pub async fn next_event<S>(stream: &mut Pin<Box<S>>) -> Event<ConfigMap>
    where
        S: Stream<Item = Result<Event<ConfigMap>, Error>> + ?Sized,
    {
        let wait = async {
            loop {
                match poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                    Some(Ok(event)) => return event,
                    Some(Err(_)) => continue,
                    None => panic!("the watcher ended"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("a watcher event within 5 s")
    }
}
