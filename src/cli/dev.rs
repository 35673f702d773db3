//! `lavabeacon dev`: tools for developers and auditors' test benches. `generate-chain` is the
//! auditor's crate's (`lavabeacon_audit::generate`), also `lavabeacon-audit generate-chain`.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum DevCommand {
    /// Generate a valid test chain (marked TEST), optionally with planted faults.
    GenerateChain(lavabeacon_audit::generate::Args),
}

pub fn run(cmd: DevCommand) -> ExitCode {
    match cmd {
        DevCommand::GenerateChain(args) => lavabeacon_audit::generate::run(args),
    }
}
