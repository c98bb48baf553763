//! `tally validate`: the gate over plain manifests, or over every environment of a repo.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tally_layout::{load, validate as layout_validate};
use tally_validator::Severity;
use tally_validator::gate::{self, GateOptions, GateReport, InputLimits};
use tally_validator::policy::{self, PolicyConfig};
use tally_validator::report::{self, Format, ReportOptions};
use tally_validator::schema::{MissingSchema, SchemaOptions};
use tally_validator::unit::UnitOptions;

use crate::args::FailOn;
use crate::exit::{CommandResult, Exit};

/// `tally validate PATH...`.
#[derive(Args)]
pub struct ValidateArgs {
    /// Files or directories to check (`-` reads stdin). Directories are walked for .yaml, .yml
    /// and .json files.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,

    /// Report format on stdout: human, json, sarif, junit, github.
    #[arg(long, short = 'f', value_parser = parse_format)]
    format: Option<Format>,

    /// Also write a report to a file, as FORMAT=PATH (repeatable).
    #[arg(long, short = 'o', value_name = "FORMAT=PATH", value_parser = parse_output)]
    output: Vec<(Format, PathBuf)>,

    /// Lowest severity that fails the run.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,

    /// Kubernetes version (X.Y) whose schemas to use; the newest embedded by default.
    #[arg(long, value_name = "X.Y")]
    kubernetes_version: Option<String>,

    /// Extra schemas: a directory or a kubeconform-style template such as
    /// `dir/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json` (repeatable).
    #[arg(long, value_name = "LOCATION")]
    schema_location: Vec<String>,

    /// CustomResourceDefinition files or directories that supply schemas (repeatable).
    #[arg(long, value_name = "PATH")]
    crd: Vec<PathBuf>,

    /// What a kind without a schema is.
    #[arg(long, value_enum, default_value_t = MissingSchemaArg::Warn)]
    missing_schema: MissingSchemaArg,

    /// Skip paths matching this glob (gitignore syntax; repeatable). `.tallyignore` files too.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,

    /// Policy configuration (`tally.yaml`). Default: `tally.yaml` in the current directory, else
    /// the nearest one from the first path up to the repository root.
    #[arg(long, value_name = "PATH", conflicts_with = "no_config")]
    config: Option<PathBuf>,

    /// Read no policy configuration: every rule on, at its default severity.
    #[arg(long)]
    no_config: bool,

    /// Check schemas only; run no policy.
    #[arg(long)]
    no_policies: bool,

    /// In a repo, validate only this environment (default: all of them).
    #[arg(long, short = 'e')]
    env: Option<String>,

    /// With `--github` on a repo: the revision the change is compared to, so each
    /// environment's check run also shows what changes there (default: `origin/<base>` of the
    /// pull request, from `GITHUB_BASE_REF`).
    #[arg(long, value_name = "REF", requires = "github")]
    base: Option<String>,

    /// List on stderr the files set aside because they hold no Kubernetes object.
    #[arg(long, short = 'v')]
    verbose: bool,

    /// Lowest severity the human report prints in detail; lower ones are only counted. Other
    /// formats always list every finding.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = ShowArg::Warning)]
    show: ShowArg,

    /// A values file for every Helm chart met (repeatable; after the chart's own values.yaml).
    #[arg(long, value_name = "FILE")]
    helm_values: Vec<PathBuf>,

    /// Colour in the human format.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,

    /// Largest file read (bytes; K, M, G suffixes are powers of 1024). A larger file is one
    /// `input-limit` finding, not read. Default 256M.
    #[arg(long, value_name = "SIZE", value_parser = tally_validator::size::parse)]
    max_file_size: Option<u64>,

    /// Most bytes read in one run; a file that would take the run past it is one
    /// `input-limit` finding, not read. Default 2G.
    #[arg(long, value_name = "SIZE", value_parser = tally_validator::size::parse)]
    max_input_size: Option<u64>,

    /// Most documents read from one file; the rest of the file is one `input-limit` finding.
    /// Default 100000.
    #[arg(long, value_name = "N")]
    max_documents: Option<usize>,

    /// Deepest nesting read (aliases count with their anchor's depth); at most and by default
    /// 256.
    #[arg(long, value_name = "N")]
    max_depth: Option<usize>,

    #[command(flatten)]
    github: crate::github::GithubArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum MissingSchemaArg {
    Error,
    Warn,
    Ignore,
}

#[derive(Clone, Copy, ValueEnum)]
enum ShowArg {
    Error,
    Warning,
    Info,
}

impl ShowArg {
    fn severity(self) -> Severity {
        match self {
            ShowArg::Error => Severity::Error,
            ShowArg::Warning => Severity::Warning,
            ShowArg::Info => Severity::Info,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_output(s: &str) -> Result<(Format, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FORMAT=PATH, got `{s}`"))?;
    if path.is_empty() {
        return Err(format!("no path after `{format}=`"));
    }
    Ok((format.parse()?, PathBuf::from(path)))
}

/// The limits the flags ask for, `default` (the repo's, or the built-in ones) for the others.
fn input_limits(args: &ValidateArgs, default: InputLimits) -> InputLimits {
    tally_layout::model::LimitsSpec {
        max_file_size: args.max_file_size,
        max_input_size: args.max_input_size,
        max_documents: args.max_documents,
        max_depth: args.max_depth,
    }
    .over(default)
}

/// Runs the gate and writes the reports.
pub fn validate(args: ValidateArgs) -> CommandResult {
    let repo_root = match args.paths.as_slice() {
        [one] if load::is_repo(one) => Some(one.clone()),
        _ => None,
    };
    if args.env.is_some() && repo_root.is_none() {
        return Err("--env needs a tally repo (a directory with a tally.yaml of kind Repo)".into());
    }
    let config_path = match (&args.config, args.no_config, &repo_root) {
        (_, true, _) => None,
        (Some(path), false, _) => Some(path.clone()),
        (None, false, Some(root)) => Some(root.join(load::REPO_FILE)),
        (None, false, None) => policy::config::find(&args.paths),
    };
    let policy = match config_path {
        Some(path) => PolicyConfig::load(&path).map_err(|e| e.to_string())?,
        None => PolicyConfig::default(),
    };
    let options = GateOptions {
        schema: SchemaOptions {
            kubernetes_version: args.kubernetes_version.clone(),
            locations: args.schema_location.clone(),
            missing_schema: match args.missing_schema {
                MissingSchemaArg::Error => MissingSchema::Error,
                MissingSchemaArg::Warn => MissingSchema::Warn,
                MissingSchemaArg::Ignore => MissingSchema::Ignore,
            },
        },
        crds: args.crd.clone(),
        excludes: args.exclude.clone(),
        policy,
        skip_policies: args.no_policies,
        units: UnitOptions {
            helm_values: args.helm_values.clone(),
        },
        limits: input_limits(
            &args,
            match &repo_root {
                Some(root) => load::input_limits(root, InputLimits::default()),
                None => InputLimits::default(),
            },
        ),
    };
    let report = match &repo_root {
        Some(root) => layout_validate::validate_repo(root, &options, args.env.as_deref())
            .map_err(|e| e.to_string())?,
        None => gate::validate_paths(&args.paths, &options).map_err(|e| e.to_string())?,
    };
    if report.files == 0 {
        // A gate that read nothing passes nothing on purpose: say so, so a wrong path in CI shows.
        eprintln!(
            "tally: warning: no .yaml, .yml or .json files under {}",
            args.paths
                .iter()
                .map(
                    |p| tally_validator::text::escape(&tally_validator::source::path_name(p))
                        .into_owned()
                )
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if args.verbose {
        for file in &report.skipped {
            let file = tally_validator::text::escape(file);
            eprintln!("tally: skipped {file}: not a Kubernetes object");
        }
    }
    write_reports(&report, &args)?;
    if let Some(target) = args.github.target()? {
        match &repo_root {
            Some(root) => check_runs(&target, root, &report, &options, &args)?,
            None => target.check_run("tally", &report, args.fail_on.severity(), None),
        }
    }
    Ok(match args.fail_on.severity() {
        Some(level) if report.fails(level) => Exit::Findings,
        _ => Exit::Ok,
    })
}

/// One check run per environment of the repo at `root` (`tally / staging`), each with that
/// environment's findings and, when the base revision is known, what the change does there.
fn check_runs(
    target: &crate::github::Target,
    root: &std::path::Path,
    report: &GateReport,
    options: &GateOptions,
    args: &ValidateArgs,
) -> Result<(), String> {
    let base = args.base.clone().or_else(|| {
        std::env::var("GITHUB_BASE_REF")
            .ok()
            .filter(|b| !b.is_empty())
            .map(|b| format!("origin/{b}"))
    });
    let diffs = match &base {
        Some(base) => match super::diff::environment_diffs(root, base, None, args.env.as_deref()) {
            Ok(diffs) => diffs,
            Err(e) => {
                eprintln!(
                    "tally: warning: the check runs show no diff: {e} (fetch the base \
                         revision: actions/checkout with fetch-depth: 0)"
                );
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let environments: Vec<String> = match &args.env {
        Some(env) => vec![env.clone()],
        None => load::load(root)
            .map_err(|e| e.to_string())?
            .environments
            .into_keys()
            .collect(),
    };
    let fail_on = args.fail_on.severity();
    for env in &environments {
        let own;
        let env_report = if args.env.is_some() {
            report
        } else {
            own = layout_validate::validate_repo(root, options, Some(env))
                .map_err(|e| e.to_string())?;
            &own
        };
        let diff = diffs
            .iter()
            .find(|d| d.environment == *env)
            .map(|d| d.markdown());
        target.check_run(
            &format!("tally / {env}"),
            env_report,
            fail_on,
            diff.as_deref(),
        );
    }
    Ok(())
}

fn write_reports(report: &GateReport, args: &ValidateArgs) -> Result<(), String> {
    let stdout = io::stdout();
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let show = args.show.severity();
    let report_options = ReportOptions { color, show };
    let mut formats = vec![args.format.unwrap_or(Format::Human)];
    // Inside GitHub Actions the human report also becomes annotations on the pull request.
    if args.format.is_none() && std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        formats.push(Format::Github);
    }
    let mut out = BufWriter::new(stdout.lock());
    for format in formats {
        report::write(format, report, report_options, &mut out)
            .map_err(|e| format!("writing the report: {e}"))?;
    }
    out.flush()
        .map_err(|e| format!("writing the report: {e}"))?;
    for (format, path) in &args.output {
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = BufWriter::new(file);
        report::write(
            *format,
            report,
            ReportOptions { color: false, show },
            &mut w,
        )
        .and_then(|()| w.flush())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }

    Ok(())
}
