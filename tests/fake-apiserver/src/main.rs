//! `tally-fake-apiserver`: runs the fake Kubernetes API server for local trials.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tally_fake_apiserver::{Config, FakeApiServer};

/// A fake Kubernetes API server over plain HTTP on 127.0.0.1, for trying tally without a
/// cluster. Runs until Ctrl-C.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write a kubeconfig that points at the server (context `fake`).
    #[arg(long, default_value = "fake-kubeconfig.yaml")]
    kubeconfig: PathBuf,
    /// Milliseconds until Deployments, StatefulSets, DaemonSets, Jobs and PVCs report ready.
    #[arg(long, default_value_t = 2000)]
    ready_delay_ms: u64,
    /// Container images containing this text never become ready.
    #[arg(long, default_value = "fail")]
    fail_marker: String,
    /// Seconds until a Deployment that cannot become ready reports ProgressDeadlineExceeded
    /// (default: its spec.progressDeadlineSeconds).
    #[arg(long)]
    progress_deadline_secs: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let mut config = Config::default()
        .with_port(args.port)
        .with_ready_delay(Duration::from_millis(args.ready_delay_ms));
    config.controller.fail_image_marker = args.fail_marker;
    config.controller.progress_deadline = args.progress_deadline_secs.map(Duration::from_secs);
    let server = match FakeApiServer::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = server.write_kubeconfig(&args.kubeconfig) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // Whoever started us may have stopped reading stdout: never panic over a closed pipe.
    let say = |text: String| {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{text}");
    };
    say(format!("fake API server listening on {}", server.url()));
    say(format!(
        "kubeconfig written to {} (context: fake)",
        args.kubeconfig.display()
    ));
    say(format!(
        "try: tally plan --env staging examples/ --kubeconfig {}",
        args.kubeconfig.display()
    ));
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: waiting for Ctrl-C: {e}");
    }
    let counters = server.counters();
    say(format!("\n{} requests:\n{counters}", counters.total()));
    server.shutdown().await;
    ExitCode::SUCCESS
}
