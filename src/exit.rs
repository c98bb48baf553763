//! Exit statuses, one meaning each, for every command.

use std::process::ExitCode;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; nothing at or above `--fail-on`; no changes (`plan`); applied and healthy.
    Ok,
    /// 1: findings at or above `--fail-on` (the gate rejected the commit; nothing was applied),
    /// or for `status`, something unhealthy, pending or missing.
    Findings,
    /// 2: a usage, I/O or cluster error.
    Error,
    /// 3 (`plan`): changes are pending.
    Changes,
    /// 4 (`apply`): the apply did not complete (a wave failed or timed out; nothing pruned).
    Incomplete,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::Error => 2,
            Exit::Changes => 3,
            Exit::Incomplete => 4,
        })
    }
}

/// What a command returns: how it ended, or the message of the error that stopped it (exit 2).
pub type CommandResult = Result<Exit, String>;
