//! `tally status`: an environment as the cluster has it. It reads no repo, so there is nothing to
//! gate: the inventory, the daemon's last attempt and each app's health come from the cluster.

use clap::Args;
use tally_engine::cluster::Backoff;
use tally_engine::{KubeCluster, PlanOptions, Retrying};

use crate::args::KubeArgs;
use crate::exit::{CommandResult, Exit};

/// `tally status --env ENV`.
#[derive(Args)]
pub struct StatusArgs {
    /// The environment.
    #[arg(long, short = 'e')]
    env: String,

    #[command(flatten)]
    kube: KubeArgs,
}

/// Prints the status; exit 1 when something is unhealthy, pending or missing.
pub fn status(args: StatusArgs) -> CommandResult {
    super::runtime()?.block_on(async {
        let cluster = KubeCluster::connect(&args.kube.options())
            .await
            .map_err(|e| format!("connecting to the cluster: {e}"))?;
        let cluster = Retrying::new(cluster, Backoff::default());
        let namespace = PlanOptions::default().inventory_namespace;
        let status = tally_engine::status::status(&cluster, &args.env, &namespace)
            .await
            .map_err(|e| format!("reading the status: {e}"))?;
        print!("{}", status.text());
        Ok(if status.is_healthy() {
            Exit::Ok
        } else {
            Exit::Findings
        })
    })
}
