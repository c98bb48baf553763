//! Blue/green releases end to end: the `tally` binary against the fake API server, which
//! computes Endpoints from Service selectors and ready pods, answers the Service proxy (503 with
//! no ready endpoint, 500 when the pods run a `smoke-bad` image) and logs every request.
//!
//! The example repo's `web` app is released blue/green behind `web` (active) and `web-preview`.

mod common;

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tally_fake_apiserver::{Config, RequestRecord, Store, Verb};

use common::cluster::Cluster;

fn setup(name: &str) -> Cluster {
    setup_with(
        name,
        Config::default()
            .with_ready_delay(Duration::from_millis(150))
            .with_progress_deadline(Duration::from_millis(600)),
    )
}

fn setup_with(name: &str, config: Config) -> Cluster {
    Cluster::start(&format!("bluegreen-{name}"), config)
}

impl Cluster {
    fn tally(&self, command: &str, commit: &str, extra: &[&str]) -> Output {
        common::output(
            common::tally_command()
                .args([command, "--env", "staging", "--commit", commit])
                .args(extra)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg(self.repo()),
        )
    }

    /// `tally run` following the working tree every second, logging to `daemon-N.log`.
    fn daemon(&self, n: u32) -> std::process::Child {
        self.daemon_with(n, &[])
    }

    fn daemon_with(&self, n: u32, extra: &[&str]) -> std::process::Child {
        let log = self.dir.join(format!("daemon-{n}.log"));
        common::tally_command()
            .args([
                "run",
                "--env",
                "staging",
                "--interval",
                "1",
                "--log-format",
                "json",
            ])
            .args(extra)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--path")
            .arg(self.repo())
            .stderr(std::fs::File::create(log).unwrap_or_else(|e| panic!("{e}")))
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn daemon_log(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.join(format!("daemon-{n}.log"))).unwrap_or_default()
    }

    fn apply(&self, commit: &str) -> Output {
        self.tally("apply", commit, &["--timeout", "3"])
    }

    fn release_image(&self, tag: &str) {
        let file = "environments/staging/environment.yaml";
        let path = self.repo().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let start = text
            .find("        web: ")
            .unwrap_or_else(|| panic!("no web image"));
        let end = start + text[start..].find('\n').unwrap_or(0);
        let mut new = text.clone();
        new.replace_range(start..end, &format!("        web: {tag}"));
        std::fs::write(&path, new).unwrap_or_else(|e| panic!("{e}"));
    }

    fn store(&self) -> Store {
        self.server.store()
    }

    fn selector_color(&self, service: &str) -> Value {
        self.store()
            .get("services", "shop", service)
            .map(|s| s["spec"]["selector"]["tally.dev/color"].clone())
            .unwrap_or(Value::Null)
    }

    fn colour(&self, color: &str) -> (Value, Value) {
        let d = self
            .store()
            .get("deployments.apps", "shop", &format!("web-{color}"))
            .unwrap_or_else(|| panic!("no web-{color}"));
        (
            d["spec"]["replicas"].clone(),
            d["spec"]["template"]["spec"]["containers"][0]["image"].clone(),
        )
    }

    fn state(&self) -> Value {
        let cm = self
            .store()
            .get("configmaps", "tally-system", "tally-releases-staging")
            .unwrap_or_else(|| panic!("no release state"));
        serde_json::from_str(cm["data"]["web"].as_str().unwrap_or("{}")).unwrap_or(Value::Null)
    }
}

use common::text;

const IMAGE: &str = "registry.example.com/shop/web";

fn is_write(r: &RequestRecord, resource: &str, name: &str) -> bool {
    matches!(
        r.verb,
        Verb::Apply | Verb::Update | Verb::Patch | Verb::Create
    ) && !r.dry_run
        && r.resource == resource
        && r.name.as_deref() == Some(name)
}

/// Reads the active Service's ready endpoints every few milliseconds until stopped; the fewest
/// seen.
fn sample_ready_endpoints(store: Store, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut fewest = usize::MAX;
        while !stop.load(Ordering::Relaxed) {
            let ready = store
                .get("endpoints", "shop", "web")
                .and_then(|e| e["subsets"].as_array().cloned())
                .map_or(0, |subsets| {
                    subsets
                        .iter()
                        .filter_map(|s| s["addresses"].as_array().map(Vec::len))
                        .sum()
                });
            fewest = fewest.min(ready);
            std::thread::sleep(Duration::from_millis(2));
        }
        fewest
    })
}

#[test]
fn a_release_brings_up_the_idle_colour_checks_it_and_switches_in_one_write() {
    let c = setup("release");
    let out = c.apply("c1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("web: first release, blue live"),
        "{}",
        text(&out)
    );
    assert_eq!(c.selector_color("web"), "blue");
    assert_eq!(
        c.colour("blue"),
        (json!(2), json!(format!("{IMAGE}:1.5.0-rc.1")))
    );
    assert_eq!(c.colour("green").0, json!(0));

    c.release_image("1.5.0-rc.2");
    let plan = c.tally("plan", "c2", &[]);
    assert_eq!(plan.status.code(), Some(3), "{}", text(&plan));
    assert!(
        text(&plan).contains("web: blue live; releasing template"),
        "{}",
        text(&plan)
    );
    c.server.reset_request_log();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_ready_endpoints(c.store(), Arc::clone(&stop));
    let out = c.apply("c2");
    stop.store(true, Ordering::Relaxed);
    let fewest = sampler.join().unwrap_or(0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("web: switched to green"),
        "{}",
        text(&out)
    );
    assert!(fewest > 0, "the active Service had no ready endpoint");

    // The order: the new colour applied, its smoke test, one write to the active Service.
    let log = c.server.request_log();
    let first = |pred: &dyn Fn(&RequestRecord) -> bool| log.iter().position(pred);
    let green = first(&|r| is_write(r, "deployments.apps", "web-green"));
    let smoke = first(&|r| r.path.contains("/services/web-preview:http/proxy/ready"));
    let service_writes: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| is_write(r, "services", "web"))
        .map(|(i, _)| i)
        .collect();
    assert!(green.is_some() && smoke.is_some(), "{log:#?}");
    assert_eq!(service_writes.len(), 1, "{log:#?}");
    assert!(green < smoke && smoke < Some(service_writes[0]));
    assert_eq!(
        log.iter()
            .filter(|r| is_write(r, "deployments.apps", "web-blue"))
            .count(),
        0,
        "the live colour was not touched"
    );

    assert_eq!(c.selector_color("web"), "green");
    assert_eq!(
        c.colour("green"),
        (json!(2), json!(format!("{IMAGE}:1.5.0-rc.2")))
    );
    // The old colour stays up for scaleDownDelaySeconds.
    assert_eq!(
        c.colour("blue"),
        (json!(2), json!(format!("{IMAGE}:1.5.0-rc.1")))
    );
    let state = c.state();
    assert_eq!(state["active"], "green");
    assert_eq!(state["previous"], "blue");
    assert_eq!(state["phase"], "steady");
    let events = c.store().list("events", Some("shop"));
    assert!(
        events.iter().any(|e| e["reason"] == "Switched"),
        "{events:#?}"
    );

    // Nothing left to do: the next apply writes nothing and the plan says the old colour waits.
    c.server.reset_request_log();
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("blue kept up until"), "{}", text(&out));
    assert_eq!(c.server.counters().writes(), 0, "{}", text(&out));

    // Once the delay has passed (moved back here rather than waited for), a later round scales
    // the old colour down.
    let mut state = c.state();
    let at = state["switchedAt"].as_u64().unwrap_or(0);
    state["switchedAt"] = json!(at - 600);
    c.store()
        .edit(
            "test",
            "configmaps",
            "tally-system",
            "tally-releases-staging",
            |cm| {
                cm["data"]["web"] = json!(state.to_string());
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(c.colour("blue").0, json!(0));
    assert_eq!(c.selector_color("web"), "green");
}

#[test]
fn a_colour_that_fails_its_smoke_test_is_never_switched_to() {
    let c = setup("smoke");
    assert_eq!(c.apply("c1").status.code(), Some(0));
    c.release_image("smoke-bad-2");
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("smoke test failed"), "{}", text(&out));
    assert_eq!(c.selector_color("web"), "blue");
    assert_eq!(c.colour("blue").0, json!(2));
    assert_eq!(
        c.colour("green"),
        (json!(0), json!(format!("{IMAGE}:smoke-bad-2")))
    );
    let state = c.state();
    assert_eq!(state["phase"], "aborted");
    assert!(state["blocked"].is_string());
    let events = c.store().list("events", Some("shop"));
    assert!(
        events.iter().any(|e| e["reason"] == "ReleaseAborted"),
        "{events:#?}"
    );

    // The same commit again: the template is blocked, nothing is tried or written.
    c.server.reset_request_log();
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("is blocked"), "{}", text(&out));
    assert_eq!(c.server.counters().writes(), 0, "{}", text(&out));

    // A fix in git releases again.
    c.release_image("1.5.0-rc.3");
    let out = c.apply("c3");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(c.selector_color("web"), "green");
    assert_eq!(
        c.colour("green"),
        (json!(2), json!(format!("{IMAGE}:1.5.0-rc.3")))
    );
}

#[test]
fn a_colour_that_never_becomes_ready_is_scaled_down_and_the_live_one_keeps_serving() {
    let c = setup("unready");
    assert_eq!(c.apply("c1").status.code(), Some(0));
    // The fake never makes an image containing `fail` ready.
    c.release_image("fail-2");
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("release aborted") && text(&out).contains("did not become healthy"),
        "{}",
        text(&out)
    );
    assert_eq!(c.selector_color("web"), "blue");
    assert_eq!(c.colour("blue").0, json!(2));
    assert_eq!(c.colour("green").0, json!(0));
    assert_eq!(c.state()["phase"], "aborted");
}

#[test]
fn a_change_outside_the_pod_template_is_applied_without_a_release() {
    let c = setup("config");
    assert_eq!(c.apply("c1").status.code(), Some(0));
    c.edit(
        "apps/web/manifests/web.yaml",
        "kind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  maxUnavailable: 1",
        "kind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  maxUnavailable: 2",
    );
    c.server.reset_request_log();
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("releasing"), "{}", text(&out));
    let log = c.server.request_log();
    assert!(
        log.iter()
            .any(|r| is_write(r, "poddisruptionbudgets.policy", "web"))
    );
    assert!(!log.iter().any(|r| r.path.contains("/proxy/")), "{log:#?}");
    assert!(!log.iter().any(|r| is_write(r, "services", "web")));
    let deployment_writes = log.iter().filter(|r| {
        r.resource == "deployments.apps"
            && is_write(r, "deployments.apps", r.name.as_deref().unwrap_or(""))
    });
    assert_eq!(deployment_writes.count(), 0, "{log:#?}");
    assert_eq!(c.selector_color("web"), "blue");
}

#[test]
fn a_release_waits_for_tally_promote_when_auto_promote_is_off() {
    let c = setup("promote");
    c.edit(
        "apps/web/app.yaml",
        "    postPromotionSeconds: 1\n",
        "    postPromotionSeconds: 1\n    autoPromote: false\n",
    );
    assert_eq!(c.apply("c1").status.code(), Some(0));
    // Nothing waits yet: promote says so and changes nothing.
    let early = c.tally("promote", "c1", &["web"]);
    assert_eq!(early.status.code(), Some(2), "{}", text(&early));
    assert!(
        text(&early).contains("no release waiting"),
        "{}",
        text(&early)
    );

    c.release_image("1.5.0-rc.2");
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("waiting for `tally promote`"),
        "{}",
        text(&out)
    );
    assert_eq!(c.selector_color("web"), "blue");
    assert_eq!(
        c.colour("green"),
        (json!(2), json!(format!("{IMAGE}:1.5.0-rc.2")))
    );
    let status = common::output(
        common::tally_command()
            .args(["status", "--env", "staging", "--kubeconfig"])
            .arg(&c.kubeconfig),
    );
    assert!(
        text(&status).contains("blue live, waiting")
            && text(&status).contains("`tally promote --env staging web` switches to green"),
        "{}",
        text(&status)
    );
    // Another round does not switch by itself.
    assert_eq!(c.apply("c2").status.code(), Some(0));
    assert_eq!(c.selector_color("web"), "blue");

    let out = c.tally("promote", "c2", &["web"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("approved") && text(&out).contains("switched to green"));
    assert_eq!(c.selector_color("web"), "green");
}

#[test]
fn rollback_switches_back_in_one_write_while_the_old_colour_is_up_and_scales_it_up_after() {
    let c = setup("rollback");
    assert_eq!(c.apply("c1").status.code(), Some(0));
    c.release_image("1.5.0-rc.2");
    assert_eq!(c.apply("c2").status.code(), Some(0));
    assert_eq!(c.selector_color("web"), "green");

    // Within the delay blue is still up: one write, to the Service.
    c.server.reset_request_log();
    let out = c.tally("rollback", "c2", &["web"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("rolled back from green to blue"),
        "{}",
        text(&out)
    );
    assert_eq!(c.selector_color("web"), "blue");
    let log = c.server.request_log();
    let writes: Vec<&RequestRecord> = log
        .iter()
        .filter(|r| {
            matches!(
                r.verb,
                Verb::Apply | Verb::Update | Verb::Patch | Verb::Create
            ) && !r.dry_run
                && r.resource != "configmaps"
                && r.resource != "events"
        })
        .collect();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert!(is_write(writes[0], "services", "web"));
    let state = c.state();
    assert_eq!(state["phase"], "rolledBack");
    assert!(state["blocked"].is_string());

    // Git still says rc.2: the next round does not release it again, and scales green down.
    let out = c.apply("c2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("is blocked"), "{}", text(&out));
    assert_eq!(c.selector_color("web"), "blue");
    assert_eq!(c.colour("green").0, json!(0));

    // Rolling back now (to green, scaled down) scales it up first, then switches.
    c.server.reset_request_log();
    let out = c.tally("rollback", "c2", &["web"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(c.selector_color("web"), "green");
    assert_eq!(c.colour("green").0, json!(2));
    let log = c.server.request_log();
    let scale = log
        .iter()
        .position(|r| is_write(r, "deployments.apps", "web-green"));
    let switch = log.iter().position(|r| is_write(r, "services", "web"));
    assert!(scale.is_some() && scale < switch, "{log:#?}");
}

/// Polls `check` every 20 ms for up to 30 s.
fn eventually(what: &str, c: &Cluster, n: u32, mut check: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "timed out waiting for {what}; the daemon's log:\n{}",
        c.daemon_log(n)
    );
}

/// Where a daemon is killed (`kill -9`) in the middle of a release.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// The new colour applied, not yet healthy.
    Applied,
    /// During the smoke test.
    Smoke,
    /// The switch recorded as begun; the write to the Service in flight.
    Switch,
    /// Switched; the post-switch check running.
    PostCheck,
}

#[test]
fn a_daemon_killed_at_any_step_of_a_release_resumes_and_converges_on_one_colour() {
    for point in [
        KillPoint::Applied,
        KillPoint::Smoke,
        KillPoint::Switch,
        KillPoint::PostCheck,
    ] {
        let ready = match point {
            KillPoint::Applied => 1500,
            _ => 100,
        };
        let c = setup_with(
            &format!("kill-{point:?}").to_lowercase(),
            Config::default().with_ready_delay(Duration::from_millis(ready)),
        );
        if let KillPoint::PostCheck = point {
            c.edit(
                "apps/web/app.yaml",
                "postPromotionSeconds: 1",
                "postPromotionSeconds: 5",
            );
        }
        let mut first = c.daemon(1);
        eventually("the first apply", &c, 1, || {
            c.selector_color("web") == "blue"
        });
        eventually("the first release recorded", &c, 1, || {
            c.store()
                .get("configmaps", "tally-system", "tally-releases-staging")
                .is_some()
        });
        let faults = c.server.faults();
        match point {
            KillPoint::Smoke => {
                faults.add_latency(Some(Verb::Get), Some("services"), Duration::from_secs(3))
            }
            KillPoint::Switch => {
                faults.add_latency(Some(Verb::Apply), Some("services"), Duration::from_secs(2))
            }
            _ => {}
        }
        c.release_image("1.5.0-rc.2");
        let rc2 = json!(format!("{IMAGE}:1.5.0-rc.2"));
        match point {
            KillPoint::Applied => eventually("the new colour applied", &c, 1, || {
                c.colour("green").1 == rc2
            }),
            KillPoint::Smoke => eventually("the smoke test", &c, 1, || {
                c.server
                    .request_log()
                    .iter()
                    .any(|r| r.path.contains("/proxy/"))
            }),
            KillPoint::Switch => eventually("the switch begun", &c, 1, || {
                c.state()["phase"] == "switching"
            }),
            KillPoint::PostCheck => eventually("the post-switch check", &c, 1, || {
                c.selector_color("web") == "green" && c.state()["phase"] == "switched"
            }),
        }
        first.kill().unwrap_or_else(|e| panic!("{e}"));
        let _ = first.wait();
        faults.clear();

        let mut second = c.daemon(2);
        eventually(
            &format!("convergence after a kill at {point:?}"),
            &c,
            2,
            || {
                c.selector_color("web") == "green"
                    && c.colour("green") == (json!(2), rc2.clone())
                    && c.state()["phase"] == "steady"
            },
        );
        // Exactly one colour serves, the old one waits for its delay, nothing else is left.
        assert_eq!(c.selector_color("web-preview"), "green", "{point:?}");
        assert_eq!(c.colour("blue").0, json!(2), "{point:?}");
        let mut deployments: Vec<String> = c
            .store()
            .list("deployments.apps", Some("shop"))
            .iter()
            .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        deployments.sort();
        assert_eq!(deployments, ["api", "web-blue", "web-green"], "{point:?}");
        second.kill().unwrap_or_else(|e| panic!("{e}"));
        let _ = second.wait();
    }
}

fn metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_daemon_releases_a_new_template_and_counts_the_switch() {
    let c = setup("daemon");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = format!("127.0.0.1:{port}");
    let mut daemon = c.daemon_with(1, &["--listen", &addr]);
    eventually("the first apply", &c, 1, || {
        c.selector_color("web") == "blue"
    });
    c.release_image("1.5.0-rc.2");
    let rc2 = json!(format!("{IMAGE}:1.5.0-rc.2"));
    eventually("the switch", &c, 1, || {
        c.selector_color("web") == "green" && c.colour("green").1 == rc2
    });
    eventually("the switch counted", &c, 1, || {
        metrics(&addr)
            .contains("tally_bluegreen_releases_total{app=\"web\",outcome=\"switched\"} 1")
    });
    let text = metrics(&addr);
    assert!(
        text.contains("tally_bluegreen_last_switch_seconds{app=\"web\"}"),
        "{text}"
    );
    // Quiet rounds afterwards write nothing and list nothing: the release state comes from the
    // watch cache like everything else.
    eventually("a quiet round", &c, 1, || c.state()["phase"] == "steady");
    std::thread::sleep(Duration::from_millis(1500));
    c.server.reset_request_log();
    std::thread::sleep(Duration::from_millis(3500));
    let counters = c.server.counters();
    assert_eq!(counters.writes(), 0, "{:#?}", c.server.request_log());
    assert_eq!(
        counters.verb(Verb::List),
        0,
        "{:#?}",
        c.server.request_log()
    );

    // A rollback by hand is seen by the daemon and counted once; it does not release again.
    let out = c.tally("rollback", "c2", &["web"]);
    assert_eq!(out.status.code(), Some(0), "{}", self::text(&out));
    let rolled_back = "tally_bluegreen_releases_total{app=\"web\",outcome=\"rolled_back\"} 1";
    eventually("the rollback counted", &c, 1, || {
        metrics(&addr).contains(rolled_back)
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(c.selector_color("web"), "blue");
    assert!(metrics(&addr).contains(rolled_back));
    daemon.kill().unwrap_or_else(|e| panic!("{e}"));
    let _ = daemon.wait();
}
