//! The engine's benchmark: what `tally apply` costs against the fake API server, counted by the
//! server itself.
//!
//! ```text
//! cargo build --release --bin tally --example engine-bench
//! target/release/examples/engine-bench --repo REPO --env ENV [--runs 5]
//!     [--edit FILE --from TEXT --to TEXT]
//! ```
//!
//! `python3 bench/run.py --engine-only` generates a repo of about 1,000 objects and runs this.
//! The fake API server runs in this process, so its request counters can be read and reset
//! between steps; `tally` runs as a child process (the release binary), under GNU time for its
//! peak resident memory. Steps:
//!
//! 1. the first apply (everything is created; workloads report ready after `--ready-delay-ms`);
//! 2. `--runs` no-op applies of the same commit: wall time, peak memory and every request;
//! 3. `tally plan` of the same commit (exit 0 expected);
//! 4. with `--edit`, one change (`FROM` replaced by `TO` in `FILE`, restored afterwards) and
//!    its apply: how many writes it sends.
//!
//! It measures and prints; nothing here asserts a time.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use tally_fake_apiserver::{Config, Counters, FakeApiServer, Handle, Verb};

/// Times `tally apply` against the fake API server and counts its requests.
#[derive(Parser)]
struct Args {
    /// The tally repo to apply.
    #[arg(long)]
    repo: PathBuf,
    /// Its environment.
    #[arg(long)]
    env: String,
    /// The tally binary.
    #[arg(long, default_value = "target/release/tally")]
    tally: PathBuf,
    /// No-op applies to time.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Milliseconds until the fake controllers report workloads ready.
    #[arg(long, default_value_t = 50)]
    ready_delay_ms: u64,
    /// A file of the repo to change for the one-change step.
    #[arg(long, requires_all = ["from", "to"])]
    edit: Option<PathBuf>,
    /// Text to replace in `--edit`.
    #[arg(long)]
    from: Option<String>,
    /// Its replacement.
    #[arg(long)]
    to: Option<String>,
}

/// One run of tally.
struct Run {
    wall: Duration,
    /// Peak resident memory in KiB, when GNU time is there to tell.
    peak_kib: Option<u64>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The plan's summary line (`ENV: N to create, N to update, N to prune, N unchanged`).
    fn summary(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| l.contains(" to create, "))
            .unwrap_or("(no summary line)")
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("engine-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> Result<(), String> {
    if !args.tally.is_file() {
        return Err(format!(
            "{} not found: cargo build --release --bin tally",
            args.tally.display()
        ));
    }
    let config = Config::default().with_ready_delay(Duration::from_millis(args.ready_delay_ms));
    let server = FakeApiServer::start_in_background(config)
        .map_err(|e| format!("starting the fake API server: {e}"))?;
    let dir = std::env::temp_dir().join(format!("tally-engine-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let result = steps(args, &server, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn steps(args: &Args, server: &Handle, dir: &Path) -> Result<(), String> {
    let kubeconfig = dir.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .map_err(|e| format!("writing the kubeconfig: {e}"))?;
    let tally = |command: &str, commit: &str| -> Result<Run, String> {
        let mut cmd = vec![
            command.to_owned(),
            "--env".into(),
            args.env.clone(),
            "--commit".into(),
            commit.to_owned(),
            "--kubeconfig".into(),
            kubeconfig.to_string_lossy().into_owned(),
        ];
        if command == "apply" {
            cmd.extend(["--timeout".into(), "600".into()]);
        }
        cmd.push(args.repo.to_string_lossy().into_owned());
        run_timed(&args.tally, &cmd, dir)
    };
    println!(
        "fake API server {}; tally {}; repo {} (environment {})",
        server.url(),
        args.tally.display(),
        args.repo.display(),
        args.env
    );

    // The gate alone, for scale: what every apply spends before it contacts the cluster.
    let validate = [
        "validate".to_owned(),
        args.repo.to_string_lossy().into_owned(),
        "--env".into(),
        args.env.clone(),
        "--fail-on".into(),
        "never".into(),
    ];
    let mut gate = Vec::new();
    for _ in 0..args.runs.max(1) {
        gate.push(run_timed(&args.tally, &validate, dir)?);
    }
    println!(
        "\ngate (tally validate --env {}), {} runs: {}",
        args.env,
        gate.len(),
        spread(&gate)
    );

    server.reset_request_log();
    let first = tally("apply", "bench-1")?;
    expect_exit(&first, 0, "the first apply")?;
    println!("\nfirst apply: {}", timing(&first));
    println!("  {}", first.summary());
    println!("  objects in the fake cluster: {}", server.store().len());
    print_counters(&server.counters());

    let mut runs = Vec::new();
    let mut counters = None;
    for _ in 0..args.runs.max(1) {
        server.reset_request_log();
        let run = tally("apply", "bench-1")?;
        expect_exit(&run, 0, "a no-op apply")?;
        runs.push(run);
        counters = Some(server.counters());
    }
    println!(
        "\nno-op apply, same commit, {} runs: {}",
        runs.len(),
        spread(&runs)
    );
    if let (Some(run), Some(counters)) = (runs.last(), counters) {
        println!("  {}", run.summary());
        print_counters(&counters);
    }

    server.reset_request_log();
    let plan = tally("plan", "bench-1")?;
    expect_exit(&plan, 0, "a plan with nothing to change")?;
    println!("\nplan, nothing to change: {}", timing(&plan));
    print_counters(&server.counters());

    if let (Some(file), Some(from), Some(to)) = (&args.edit, &args.from, &args.to) {
        let path = args.repo.join(file);
        let original = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if !original.contains(from.as_str()) {
            return Err(format!("{from:?} is not in {}", path.display()));
        }
        std::fs::write(&path, original.replacen(from.as_str(), to, 1))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        server.reset_request_log();
        let changed = tally("apply", "bench-2");
        // Put the repo back whatever happened.
        std::fs::write(&path, &original)
            .map_err(|e| format!("restoring {}: {e}", path.display()))?;
        let changed = changed?;
        expect_exit(&changed, 0, "the one-change apply")?;
        println!(
            "\none change (--edit {}), new commit: {}",
            file.display(),
            timing(&changed)
        );
        println!("  {}", changed.summary());
        print_counters(&server.counters());
    }
    Ok(())
}

/// Runs `program args` under GNU time (when installed) for its peak resident memory.
fn run_timed(program: &Path, args: &[String], dir: &Path) -> Result<Run, String> {
    let gnu_time = Path::new("/usr/bin/time");
    let rss_file = dir.join("rss");
    let mut cmd = if gnu_time.is_file() {
        let mut c = Command::new(gnu_time);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("GITHUB_ACTIONS");
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    let wall = start.elapsed();
    let peak_kib = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    let _ = std::fs::remove_file(&rss_file);
    Ok(Run {
        wall,
        peak_kib,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn expect_exit(run: &Run, code: i32, what: &str) -> Result<(), String> {
    if run.code == Some(code) {
        return Ok(());
    }
    let tail: Vec<&str> = run.stdout.lines().rev().take(20).collect();
    Err(format!(
        "{what} exited with {:?}, not {code}:\n{}\n{}",
        run.code,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        run.stderr
    ))
}

fn timing(run: &Run) -> String {
    match run.peak_kib {
        Some(k) => format!("{}, peak RSS {:.1} MiB", ms(run.wall), k as f64 / 1024.0),
        None => ms(run.wall),
    }
}

/// Wall time min, median and max of several runs, and their highest peak memory.
fn spread(runs: &[Run]) -> String {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    let peak = runs
        .iter()
        .filter_map(|r| r.peak_kib)
        .max()
        .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    match (walls.first(), walls.last()) {
        (Some(min), Some(max)) => format!(
            "wall min {} median {} max {}; peak RSS {peak}",
            ms(*min),
            ms(walls[walls.len() / 2]),
            ms(*max)
        ),
        _ => "no runs".into(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print_counters(c: &Counters) {
    let by_verb = [
        Verb::Discovery,
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Apply,
        Verb::Patch,
        Verb::Update,
        Verb::Delete,
    ]
    .iter()
    .map(|v| format!("{v} {}", c.verb(*v)))
    .collect::<Vec<_>>()
    .join(", ");
    println!(
        "  requests: {} ({by_verb}); writes {}",
        c.total(),
        c.writes()
    );
    let writes: Vec<String> = c
        .iter()
        .filter(|(v, _, _)| v.is_write())
        .map(|(v, r, n)| format!("{v} {r} {n}"))
        .collect();
    if !writes.is_empty() {
        println!("  writes by resource: {}", writes.join(", "));
    }
}
