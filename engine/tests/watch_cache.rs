//! The watch cache over real HTTP, against the fake API server: lists served from memory, kept
//! current by watches through edits, deletes, dropped watches and expired versions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_engine::cluster::{ApplyParams, Backoff, Cluster, Propagation, Resource, Watched};
use tally_engine::{KubeCluster, Retrying};
use tally_fake_apiserver::{Config, FakeApiServer, Handle, Verb};

const SELECTOR: &str = "app.kubernetes.io/managed-by=tally";

fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default",
            "labels": {"app.kubernetes.io/managed-by": "tally"}},
        "data": {"k": value}})
}

async fn start() -> (Handle, Watched<Retrying<KubeCluster>>, Resource) {
    let server = match FakeApiServer::start(Config::default().without_controller()).await {
        Ok(s) => s,
        Err(e) => panic!("fake API server: {e}"),
    };
    let uri = match server.url().parse() {
        Ok(u) => u,
        Err(e) => panic!("{e}"),
    };
    let kube = match KubeCluster::from_config(kube::Config::new(uri)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let backoff = Backoff {
        attempts: 3,
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    let cluster = Watched::new(Retrying::new(kube, backoff), backoff);
    let resource = match cluster.resource("v1", "ConfigMap").await {
        Ok(Some(r)) => r,
        other => panic!("ConfigMap is served: {other:?}"),
    };
    (server, cluster, resource)
}

/// The cached list's `data.k` by name, sorted.
async fn values(cluster: &Watched<Retrying<KubeCluster>>, r: &Resource) -> Vec<(String, String)> {
    let listed = match cluster.list(r, None, SELECTOR).await {
        Ok(l) => l,
        Err(e) => panic!("list: {e}"),
    };
    let mut out: Vec<(String, String)> = listed
        .iter()
        .map(|v| {
            let s = |p: &str| {
                v.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            (s("/metadata/name"), s("/data/k"))
        })
        .collect();
    out.sort();
    out
}

/// Waits (up to 20 s) until the cached list equals `want`.
async fn until(
    cluster: &Watched<Retrying<KubeCluster>>,
    r: &Resource,
    want: &[(&str, &str)],
) -> Vec<(String, String)> {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = values(cluster, r).await;
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn lists_come_from_memory_and_follow_the_cluster() {
    let (server, cluster, r) = start().await;
    let store = server.store();
    if let Err(e) = store.apply("tally", config_map("a", "1"), true) {
        panic!("{e}");
    }
    assert_eq!(values(&cluster, &r).await, pairs(&[("a", "1")]));
    server.reset_request_log();
    for _ in 0..5 {
        assert_eq!(values(&cluster, &r).await, pairs(&[("a", "1")]));
    }
    // The same objects as text, straight from the cache.
    let texts = match cluster.list_text(&r, None, SELECTOR).await {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let parsed: Vec<Value> = texts
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0]["data"]["k"], "1");
    let c = server.counters();
    assert_eq!(
        (c.verb(Verb::List), c.verb(Verb::Get)),
        (0, 0),
        "cached lists send no request"
    );

    // Someone else edits, adds and deletes; the cache follows.
    let edited = store.edit("kubectl", "configmaps", "default", "a", |v| {
        v["data"]["k"] = json!("2");
    });
    assert!(edited.is_ok(), "{edited:?}");
    if let Err(e) = store.apply("tally", config_map("b", "1"), true) {
        panic!("{e}");
    }
    assert_eq!(
        until(&cluster, &r, &[("a", "2"), ("b", "1")]).await,
        pairs(&[("a", "2"), ("b", "1")])
    );
    if let Err(e) = store.delete("configmaps", "default", "a") {
        panic!("{e}");
    }
    assert_eq!(
        until(&cluster, &r, &[("b", "1")]).await,
        pairs(&[("b", "1")])
    );
    // An object whose labels stop matching leaves the cache.
    let unlabelled = store.edit("kubectl", "configmaps", "default", "b", |v| {
        v["metadata"]["labels"] = json!({});
    });
    assert!(unlabelled.is_ok(), "{unlabelled:?}");
    assert_eq!(until(&cluster, &r, &[]).await, Vec::new());
    assert_eq!(server.counters().verb(Verb::List), 0, "no relist needed");
}

#[tokio::test]
async fn writes_through_the_cache_are_seen_at_once() {
    let (server, cluster, r) = start().await;
    assert_eq!(values(&cluster, &r).await, Vec::new());
    let applied = cluster
        .apply(&r, &config_map("a", "1"), &ApplyParams::default())
        .await;
    assert!(applied.is_ok(), "{applied:?}");
    // No wait: the write is in the cache before the watch event arrives.
    assert_eq!(values(&cluster, &r).await, pairs(&[("a", "1")]));
    let dry = ApplyParams {
        dry_run: true,
        ..ApplyParams::default()
    };
    let applied = cluster.apply(&r, &config_map("a", "9"), &dry).await;
    assert!(applied.is_ok(), "{applied:?}");
    assert_eq!(
        values(&cluster, &r).await,
        pairs(&[("a", "1")]),
        "a dry run changes nothing"
    );
    assert_eq!(
        cluster
            .delete(&r, Some("default"), "a", Propagation::Background)
            .await,
        Ok(())
    );
    assert_eq!(values(&cluster, &r).await, Vec::new());
    assert!(server.store().get("configmaps", "default", "a").is_none());
}

/// Waits (up to 20 s) until the follower's watch is open on the server.
async fn watching(server: &Handle) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.open_watches() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.open_watches(), 1);
}

#[tokio::test]
async fn dropped_watches_resume_and_expired_versions_relist() {
    let (server, cluster, r) = start().await;
    let store = server.store();
    assert_eq!(values(&cluster, &r).await, Vec::new());

    // The server closes the watch; a change made meanwhile still arrives, resumed from the last
    // version seen, not listed again.
    watching(&server).await;
    server.faults().drop_watches();
    if let Err(e) = store.apply("tally", config_map("a", "1"), true) {
        panic!("{e}");
    }
    assert_eq!(
        until(&cluster, &r, &[("a", "1")]).await,
        pairs(&[("a", "1")])
    );
    let stats = cluster.stats();
    assert_eq!((stats.lists, stats.watches), (1, 2), "{stats:?}");

    // The watch is dropped, and before it resumes the change it missed leaves the server's
    // history: resuming gets 410 Gone, the follower lists again, and the cache is right.
    watching(&server).await;
    server
        .faults()
        .add_latency(Some(Verb::Watch), None, Duration::from_secs(1));
    server.faults().drop_watches();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.open_watches() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Err(e) = store.apply("tally", config_map("b", "1"), true) {
        panic!("{e}");
    }
    store.compact();
    assert_eq!(
        until(&cluster, &r, &[("a", "1"), ("b", "1")]).await,
        pairs(&[("a", "1"), ("b", "1")])
    );
    let stats = cluster.stats();
    assert_eq!(
        (stats.followed, stats.objects, stats.lists),
        (1, 2, 2),
        "{stats:?}"
    );
}

#[tokio::test]
async fn unlabelled_lists_and_gets_go_to_the_server() {
    let (server, cluster, r) = start().await;
    server.reset_request_log();
    let all = cluster.list(&r, None, "").await;
    assert!(all.is_ok(), "{all:?}");
    let got = cluster.get(&r, Some("default"), "nothing").await;
    assert_eq!(got, Ok(None));
    let c = server.counters();
    assert_eq!((c.verb(Verb::List), c.verb(Verb::Get)), (1, 1));
    assert_eq!(cluster.stats().followed, 0);
}
