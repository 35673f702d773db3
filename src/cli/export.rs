//! `lavabeacon export`: the auditor's export (`lavabeacon_audit::export`), from the database the
//! beacon's configuration names (or `--database`).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    common: super::lifecycle::ConfigArgs,
    #[command(flatten)]
    export: lavabeacon_audit::export::Args,
}

pub fn export(args: ExportArgs) -> ExitCode {
    match super::lifecycle::configure(args.common, None) {
        Ok(c) => lavabeacon_audit::export::run(&c.database.url, args.export),
        Err(code) => code,
    }
}
