//! `tally render`: an environment's complete desired state, gated as `validate` gates it.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tally_layout::validate::{gate_repo, repo_options};
use tally_layout::{emit, load};

use crate::args::FailOn;
use crate::exit::{CommandResult, Exit};

/// `tally render --env ENV [REPO]`.
#[derive(Args)]
pub struct RenderArgs {
    /// The environment to render.
    #[arg(long, short = 'e')]
    env: String,

    /// The repo's root.
    #[arg(default_value = ".")]
    path: PathBuf,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = RenderFormat::Yaml)]
    format: RenderFormat,

    /// Lowest gate severity that fails the render (the objects are printed all the same).
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
}

#[derive(Clone, Copy, ValueEnum)]
enum RenderFormat {
    Yaml,
    Json,
}

/// Prints the objects on stdout and the findings that fail on stderr.
pub fn render(args: RenderArgs) -> CommandResult {
    if !load::is_repo(&args.path) {
        return Err(format!(
            "{} is not a tally repo (no tally.yaml of kind Repo); `tally init` writes one",
            args.path.display()
        ));
    }
    let options = repo_options(&args.path).map_err(|e| e.to_string())?;
    let mut gated = gate_repo(&args.path, &options, Some(&args.env)).map_err(|e| e.to_string())?;
    let rendered = gated
        .take_environment(&args.env)
        .ok_or_else(|| format!("environment {} was not rendered", args.env))?;
    let mut out = BufWriter::new(io::stdout().lock());
    let written = match args.format {
        RenderFormat::Yaml => rendered.objects.iter().try_for_each(|o| {
            let origin = format!("{}:{}", o.provenance.file, o.positions.pos().line);
            write!(out, "---\n# source: {origin}\n{}", emit::to_yaml(&o.value))
        }),
        RenderFormat::Json => {
            let objects: Vec<_> = rendered
                .objects
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "source": {"file": &*o.provenance.file, "line": o.positions.pos().line},
                        "object": o.value,
                    })
                })
                .collect();
            let doc = serde_json::json!({"environment": args.env, "objects": objects});
            serde_json::to_writer_pretty(&mut out, &doc)
                .map_err(io::Error::from)
                .and_then(|()| writeln!(out))
        }
    };
    match written.and_then(|()| out.flush()) {
        // A closed pipe (`tally render | head`) is the reader's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.map_err(|e| format!("writing to stdout: {e}"))?,
    }
    let failing: Vec<_> = match args.fail_on.severity() {
        Some(level) => gated
            .report
            .findings
            .iter()
            .filter(|f| f.fails(level))
            .collect(),
        None => Vec::new(),
    };
    for f in &failing {
        eprintln!(
            "{}:{}:{}: {}[{}]: {}",
            f.file, f.pos.line, f.pos.column, f.severity, f.rule, f.message
        );
    }
    Ok(if failing.is_empty() {
        Exit::Ok
    } else {
        Exit::Findings
    })
}
