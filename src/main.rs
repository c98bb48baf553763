//! `tally`: the command line. Arguments in, library calls out; nothing else lives here.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tally_validator::Severity;
use tally_validator::gate::{self, GateOptions};
use tally_validator::policy::{self, Catalog, PolicyConfig};
use tally_validator::report::{self, Format, ReportOptions};
use tally_validator::schema::{MissingSchema, SchemaOptions};

/// Exit status: nothing at or above --fail-on.
const EXIT_OK: u8 = 0;
/// Exit status: findings at or above --fail-on.
const EXIT_FINDINGS: u8 = 1;
/// Exit status: usage or I/O error.
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "GitOps reconciliation engine with a built-in manifest gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check manifests against Kubernetes schemas; report findings at their lines.
    ///
    /// Exit status: 0 when no finding is at or above --fail-on, 1 when one is, 2 on usage or
    /// I/O errors.
    Validate(ValidateArgs),
    /// List the policy rules (id, severity, title), or explain one.
    Policies(PoliciesArgs),
}

#[derive(Args)]
struct PoliciesArgs {
    #[command(subcommand)]
    command: Option<PoliciesCommand>,
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// Show one rule: why it matters, how to fix it, references, a violation and its fix.
    Explain {
        /// The rule id, as `tally policies` lists it.
        id: String,
    },
}

#[derive(Args)]
struct ValidateArgs {
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

    /// Colour in the human format.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

#[derive(Clone, Copy, ValueEnum)]
enum MissingSchemaArg {
    Error,
    Warn,
    Ignore,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate(args),
        Command::Policies(args) => policies(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("tally: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn policies(args: PoliciesArgs) -> Result<u8, String> {
    let catalog = Catalog::builtin();
    let text = match args.command {
        None => catalog.table(),
        Some(PoliciesCommand::Explain { id }) => match catalog.explain(&id) {
            Some(text) => text,
            None => {
                let hint = match catalog.suggest(&id) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => "; `tally policies` lists them".to_owned(),
                };
                return Err(format!("unknown rule `{id}`{hint}"));
            }
        },
    };
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))?;
    Ok(EXIT_OK)
}

fn validate(args: ValidateArgs) -> Result<u8, String> {
    let config_path = match (&args.config, args.no_config) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => policy::config::find(&args.paths),
    };
    let policy = match config_path {
        Some(path) => PolicyConfig::load(&path).map_err(|e| e.to_string())?,
        None => PolicyConfig::default(),
    };
    let options = GateOptions {
        schema: SchemaOptions {
            kubernetes_version: args.kubernetes_version,
            locations: args.schema_location,
            missing_schema: match args.missing_schema {
                MissingSchemaArg::Error => MissingSchema::Error,
                MissingSchemaArg::Warn => MissingSchema::Warn,
                MissingSchemaArg::Ignore => MissingSchema::Ignore,
            },
        },
        crds: args.crd,
        excludes: args.exclude,
        policy,
        skip_policies: args.no_policies,
    };
    let report = gate::run(&args.paths, &options).map_err(|e| e.to_string())?;

    let stdout = io::stdout();
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let report_options = ReportOptions { color };
    let mut formats = vec![args.format.unwrap_or(Format::Human)];
    // Inside GitHub Actions the human report also becomes annotations on the pull request.
    if args.format.is_none() && std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        formats.push(Format::Github);
    }
    let mut out = BufWriter::new(stdout.lock());
    for format in formats {
        report::write(format, &report, report_options, &mut out)
            .map_err(|e| format!("writing the report: {e}"))?;
    }
    out.flush()
        .map_err(|e| format!("writing the report: {e}"))?;
    for (format, path) in &args.output {
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = BufWriter::new(file);
        report::write(*format, &report, ReportOptions { color: false }, &mut w)
            .and_then(|()| w.flush())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }

    let fail_on = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    Ok(match fail_on {
        Some(level) if report.fails(level) => EXIT_FINDINGS,
        _ => EXIT_OK,
    })
}
