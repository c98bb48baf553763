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
//!    its apply: how many writes it sends;
//! 5. the daemon (`tally run`) following a git repository of the same files: its rounds with
//!    nothing to do, each triggered by a signed push webhook (the round's own time, from its JSON
//!    log, and the requests each sends), its resident memory, and with `--edit`, push to applied:
//!    a commit, its webhook, and the time until the daemon logs the commit applied;
//! 6. a blue/green release on the example repo (`tally init`): the `web` app's image changed and
//!    applied: the time from the start of the round to the one write that switches its Service
//!    (as `tally apply` reports it, less `--ready-delay-ms`), and the requests and writes of the
//!    release; then an apply of the same commit, which must write nothing.
//!
//! It measures and prints; nothing here asserts a time.
#![forbid(unsafe_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
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
    daemon(args, server, dir, &kubeconfig)?;
    blue_green(args, server, dir, &kubeconfig)
}

/// Step 6: one blue/green release of the example repo's `web` app.
fn blue_green(args: &Args, server: &Handle, dir: &Path, kubeconfig: &Path) -> Result<(), String> {
    let repo = dir.join("bluegreen");
    let init = run_timed(
        &args.tally,
        &["init".into(), repo.to_string_lossy().into_owned()],
        dir,
    )?;
    expect_exit(&init, 0, "tally init")?;
    let app = repo.join("apps/web/app.yaml");
    let text = std::fs::read_to_string(&app).map_err(|e| format!("{}: {e}", app.display()))?;
    // The post-switch check comes after the switch and is not what is timed; keep it short.
    let text = text.replace(
        "    scaleDownDelaySeconds: 600\n",
        "    scaleDownDelaySeconds: 600\n    postPromotionSeconds: 1\n",
    );
    std::fs::write(&app, text).map_err(|e| format!("{}: {e}", app.display()))?;
    let apply = |commit: &str| -> Result<Run, String> {
        let cmd = [
            "apply".to_owned(),
            "--env".into(),
            "staging".into(),
            "--commit".into(),
            commit.to_owned(),
            "--kubeconfig".into(),
            kubeconfig.to_string_lossy().into_owned(),
            repo.to_string_lossy().into_owned(),
        ];
        run_timed(&args.tally, &cmd, dir)
    };
    let first = apply("bg-1")?;
    expect_exit(&first, 0, "the example repo's first apply")?;
    let env = repo.join("environments/staging/environment.yaml");
    let text = std::fs::read_to_string(&env).map_err(|e| format!("{}: {e}", env.display()))?;
    std::fs::write(&env, text.replace("web: 1.5.0-rc.1", "web: 1.5.0-rc.2"))
        .map_err(|e| format!("{}: {e}", env.display()))?;
    server.reset_request_log();
    let release = apply("bg-2")?;
    expect_exit(&release, 0, "the blue/green release")?;
    let switched = release
        .stdout
        .lines()
        .find_map(|l| l.split("switched to green (").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("no switch reported:\n{}", release.stdout))?;
    let delay = args.ready_delay_ms as f64 / 1000.0;
    println!(
        "\nblue/green release (example repo, web's image changed): {}",
        timing(&release)
    );
    println!(
        "  start of the round to the switch: {:.0} ms ({:.0} ms less the {} ms readiness delay)",
        switched * 1000.0,
        (switched - delay) * 1000.0,
        args.ready_delay_ms
    );
    print_counters(&server.counters());
    let writes: Vec<String> = server
        .request_log()
        .iter()
        .filter(|r| {
            !r.dry_run
                && matches!(
                    r.verb,
                    Verb::Apply | Verb::Create | Verb::Patch | Verb::Update
                )
        })
        .map(|r| format!("{} {}", r.resource, r.name.as_deref().unwrap_or("")))
        .collect();
    println!("  the writes, in order: {}", writes.join(", "));
    server.reset_request_log();
    let again = apply("bg-2")?;
    expect_exit(&again, 0, "an apply after the release")?;
    println!("  apply of the same commit after it: {}", timing(&again));
    print_counters(&server.counters());
    Ok(())
}

/// Step 5: the daemon following a git repository, driven by push webhooks.
fn daemon(args: &Args, server: &Handle, dir: &Path, kubeconfig: &Path) -> Result<(), String> {
    let git = dir.join("git");
    copy_tree(&args.repo, &git)?;
    let mut head = commit_all(&git)?;
    let secret = b"bench-secret";
    let secret_file = dir.join("webhook-secret");
    std::fs::write(&secret_file, secret).map_err(|e| format!("writing the secret: {e}"))?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .to_string();
    let mut child = Command::new(&args.tally)
        .arg("run")
        .arg("--repo")
        .arg(&git)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(["--branch", "main", "--env", &args.env])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        // Only pushes start a round, so each one is measured alone.
        .args([
            "--interval",
            "3600",
            "--timeout",
            "600",
            "--log-format",
            "json",
            // Rounds with nothing to do are logged at debug; the bench times them too.
            "--log-level",
            "debug",
        ])
        .args(["--listen", &addr])
        .arg("--webhook-secret-file")
        .arg(&secret_file)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the daemon: {e}"))?;
    let result = drive_daemon(args, server, &git, &addr, secret, &mut head, &mut child);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    result
}

fn drive_daemon(
    args: &Args,
    server: &Handle,
    git: &Path,
    addr: &str,
    secret: &[u8],
    head: &mut String,
    child: &mut std::process::Child,
) -> Result<(), String> {
    let pid = child.id();
    let stderr = child.stderr.take().ok_or("the daemon's stderr")?;
    // Every log line, with when it was read.
    let (lines, rounds) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    // The next `reconciled` line; other lines are kept to explain a daemon that stopped.
    let mut other = Vec::new();
    let mut next = |what: &str| -> Result<(Instant, Value), String> {
        loop {
            let Ok((at, line)) = rounds.recv_timeout(Duration::from_secs(900)) else {
                return Err(format!(
                    "the daemon logged no round for {what}:\n{}",
                    other.join("\n")
                ));
            };
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v["msg"] == "reconciled" => return Ok((at, v)),
                _ => other.push(line),
            }
        }
    };
    let started = Instant::now();
    let (at, first) = next("its start")?;
    println!(
        "\ndaemon (tally run --repo, git), first round: {} after start, result {}",
        ms(at - started),
        first["result"]
    );

    // Rounds with nothing to do, each started by a signed push of the same head.
    server.reset_request_log();
    let mut round_ms = Vec::new();
    let mut push_ms = Vec::new();
    let count = (args.runs.max(1) * 4) as u64;
    for _ in 0..count {
        let sent = Instant::now();
        push(addr, secret, head)?;
        let (at, round) = next("a no-op push")?;
        if round["result"] != "no_change" {
            return Err(format!("a no-op round ended {round}"));
        }
        round_ms.push(round["duration_ms"].as_u64().unwrap_or(0));
        push_ms.push((at - sent).as_millis() as u64);
    }
    let c = server.counters();
    round_ms.sort_unstable();
    push_ms.sort_unstable();
    let spread = |v: &[u64]| {
        format!(
            "min {} ms median {} ms max {} ms",
            v.first().unwrap_or(&0),
            v.get(v.len() / 2).unwrap_or(&0),
            v.last().unwrap_or(&0)
        )
    };
    println!(
        "  no-op rounds, {count} pushes of the same head: the round (after the fetch) {}; push to done {}",
        spread(&round_ms),
        spread(&push_ms)
    );
    println!(
        "  requests per round: {:.1} (get {:.1}, list {:.1}, watch opened {}, writes {}, dry runs {})",
        c.total() as f64 / count as f64,
        c.verb(Verb::Get) as f64 / count as f64,
        c.verb(Verb::List) as f64 / count as f64,
        c.verb(Verb::Watch),
        c.writes(),
        c.dry_runs()
    );
    println!("  daemon memory: {}", memory(pid));

    let (Some(file), Some(from), Some(to)) = (&args.edit, &args.from, &args.to) else {
        return Ok(());
    };
    let path = git.join(file);
    for i in 0..args.runs.max(1) {
        let (a, b) = if i % 2 == 0 { (from, to) } else { (to, from) };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        std::fs::write(&path, text.replacen(a.as_str(), b, 1))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        *head = commit_all(git)?;
        server.reset_request_log();
        let sent = Instant::now();
        push(addr, secret, head)?;
        let (at, round) = loop {
            let (at, round) = next("the pushed commit")?;
            if round["commit"] == head.as_str() {
                break (at, round);
            }
        };
        if round["result"] != "applied" {
            return Err(format!("the pushed commit ended {round}"));
        }
        let c = server.counters();
        println!(
            "  push to applied (one change, commit {}): {} (the round itself {} ms); writes {}, dry runs {}",
            &head[..8],
            ms(at - sent),
            round["duration_ms"],
            c.writes(),
            c.dry_runs()
        );
    }
    println!("  daemon memory: {}", memory(pid));
    Ok(())
}

/// The process's resident memory now and at its peak, from /proc.
fn memory(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or("n/a".to_owned(), |k| {
                format!("{:.1} MiB", k as f64 / 1024.0)
            })
    };
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

/// Sends a signed GitHub push of `commit` to `main`.
fn push(addr: &str, secret: &[u8], commit: &str) -> Result<(), String> {
    let body = format!(r#"{{"ref":"refs/heads/main","after":"{commit}"}}"#);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body.as_bytes());
    let signature: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let request = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: {addr}\r\nX-GitHub-Event: push\r\n\
         Content-Type: application/json\r\nX-Hub-Signature-256: sha256={signature}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream =
        std::net::TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the webhook: {e}"))?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    if answer.starts_with("HTTP/1.1 202") {
        Ok(())
    } else {
        Err(format!(
            "the webhook answered {:?}",
            answer.lines().next().unwrap_or("")
        ))
    }
}

/// Copies a directory tree (files and directories only).
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("copying {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Commits every file of the work tree at `dir` to `main` (the repository is created on first
/// use); returns the commit id.
fn commit_all(dir: &Path) -> Result<String, String> {
    let git = |e: git2::Error| format!("git in {}: {e}", dir.display());
    let repo = git2::Repository::open(dir)
        .or_else(|_| git2::Repository::init(dir))
        .map_err(git)?;
    let mut index = repo.index().map_err(git)?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(git)?;
    index.write().map_err(git)?;
    let tree = repo
        .find_tree(index.write_tree().map_err(git)?)
        .map_err(git)?;
    let sig = git2::Signature::now("bench", "bench@example.com").map_err(git)?;
    let parent = repo
        .find_reference("refs/heads/main")
        .ok()
        .and_then(|r| r.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            "bench",
            &tree,
            &parents,
        )
        .map_err(git)?;
    Ok(id.to_string())
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
        "  requests: {} ({by_verb}); writes {}, dry runs {}",
        c.total(),
        c.writes(),
        c.dry_runs()
    );
    let writes: Vec<String> = c
        .iter()
        .filter(|(v, _, _)| v.is_write())
        .map(|(v, r, n)| format!("{v} {r} {n}"))
        .collect();
    if !writes.is_empty() {
        println!(
            "  writes by resource (dry runs included): {}",
            writes.join(", ")
        );
    }
}
