//! The shipped example repo, rendered by the layout and reconciled against the in-memory cluster:
//! every rendered kind round-trips through apply and diff without noise.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tally_engine::layout::{load, render};
use tally_engine::{ApplyOptions, Desired, MemoryCluster, PlanOptions, apply, plan};

fn desired(env: &str, commit: &str) -> Desired {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let repo = load::load(&root).unwrap_or_else(|e| panic!("load: {e}"));
    let rendered = render::render(&repo, env, &[], &Default::default())
        .unwrap_or_else(|e| panic!("render: {e}"));
    assert!(rendered.findings.is_empty(), "{:?}", rendered.findings);
    Desired::from_rendered(rendered, &repo, commit)
}

fn options() -> ApplyOptions {
    ApplyOptions {
        wait_timeout: Duration::from_millis(200),
        poll_interval: Duration::from_millis(1),
        ..ApplyOptions::default()
    }
}

#[tokio::test]
async fn the_example_repo_applies_cleanly_and_then_reconciles_without_writes() {
    for env in ["staging", "production"] {
        let cluster = MemoryCluster::new();
        cluster.insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "tally-system"}, "status": {"phase": "Active"}}));

        let d = desired(env, "c1");
        let count = d.objects.len();
        let first = plan(&cluster, d, &PlanOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{env}: {e}"));
        assert_eq!(first.summary().create, count);
        let report = apply(&cluster, &first, &options()).await;
        assert!(report.is_clean(), "{env}:\n{}", report.text());
        assert_eq!(report.applied().count(), count);

        cluster.reset_counts();
        let second = plan(&cluster, desired(env, "c1"), &PlanOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{env}: {e}"));
        assert!(
            !second.has_changes(),
            "{env}: noise in the diff:\n{}",
            second.text()
        );
        let report = apply(&cluster, &second, &options()).await;
        assert!(report.is_clean(), "{env}:\n{}", report.text());
        let counts = cluster.counts();
        assert_eq!(counts.writes(), 0, "{env}: {:?}", cluster.log());
        assert_eq!(counts.gets, 1, "{env}: only the inventory is read by name");
    }
}
