//! `tally init`: write the example repo to start from.

use std::path::PathBuf;

use clap::Args;
use tally_layout::init;

use crate::exit::{CommandResult, Exit};

/// `tally init DIR`.
#[derive(Args)]
pub struct InitArgs {
    /// Where to write the repo (created; must be empty).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Writes the repo and says what to run next.
pub fn init(args: InitArgs) -> CommandResult {
    let written = init::init(&args.dir).map_err(|e| e.to_string())?;
    let dir = args.dir.display();
    println!(
        "wrote {} files to {dir}; next: tally validate {dir} && tally render --env staging {dir}",
        written.len(),
    );
    Ok(Exit::Ok)
}
