//! `tally policies`: the rule catalog, or one rule explained.

use std::io::{self, Write};

use clap::{Args, Subcommand};
use tally_validator::policy::Catalog;

use crate::exit::{CommandResult, Exit};

/// `tally policies [explain ID]`.
#[derive(Args)]
pub struct PoliciesArgs {
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

/// Prints the table, or one rule's explanation.
pub fn policies(args: PoliciesArgs) -> CommandResult {
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
    Ok(Exit::Ok)
}
