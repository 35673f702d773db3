//! `lavabeacon draw`: the auditor's draw commands (`run`, `spec`, `result`, `verify`, from
//! `lavabeacon_audit::draw`) and `register`, which registers a spec with the beacon's registry
//! with a client's credentials (docs/draws.md) and prints the draw with its signed receipt.

use super::EXIT_USAGE;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum DrawCommand {
    #[command(flatten)]
    Offline(lavabeacon_audit::draw::Command),
    /// Register a draw spec with a beacon before its target time (POST /draws, signed with a
    /// client's credentials); prints {"drawId", "spec", "receipt"}: keep the receipt.
    Register(RegisterArgs),
}

#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The beacon, e.g. https://beacon.example.org.
    #[arg(long)]
    url: String,
    /// The credentials `lavabeacon clients add` printed (a JSON file).
    #[arg(long, value_name = "FILE")]
    credentials: PathBuf,
    /// The spec (JSON), sent as it is.
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// Trust this CA certificate (PEM) instead of the system's roots, e.g. for a test beacon.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

pub fn run(command: DrawCommand) -> ExitCode {
    match command {
        DrawCommand::Offline(c) => lavabeacon_audit::draw::run_command(c),
        DrawCommand::Register(a) => register(a),
    }
}

fn register(a: RegisterArgs) -> ExitCode {
    let body = match std::fs::read(&a.spec) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("{}: {e}", a.spec.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match super::bytes::signed_call(
        &a.url,
        &a.credentials,
        a.ca.as_ref(),
        ("POST", "/draws", ""),
        &body,
    ) {
        Ok(answer) => {
            println!("{}", String::from_utf8_lossy(&answer));
            ExitCode::SUCCESS
        }
        Err((code, why)) => {
            tracing::error!("registering the draw: {why}");
            ExitCode::from(code)
        }
    }
}
