//! The `tally-fake-apiserver` binary: starts, writes a kubeconfig, prints its URL, serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod support;

/// Kills the child even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tally-fake-apiserver"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--ready-delay-ms")
            .arg("10")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    let url = first
        .trim()
        .strip_prefix("fake API server listening on ")
        .expect("the URL is printed first")
        .to_string();
    let text = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig is written");
    assert!(text.contains(&format!("server: {url}")));
    let client = support::Client::new(&url);
    let ns = client.get("/api/v1/namespaces/default").await;
    assert_eq!(ns.status, 200);
    assert_eq!(ns.body["status"]["phase"], "Active");
}
