//! One module per subcommand: its flags and the library calls they become.

pub mod deploy;
pub mod diff;
pub mod init;
pub mod policies;
pub mod render;
pub mod run;
pub mod status;
pub mod validate;

/// A current-thread runtime for the commands that talk to a cluster.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}
