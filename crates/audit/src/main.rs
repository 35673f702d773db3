//! `lavabeacon-audit`: the auditor's commands without the beacon, built with Rust alone (see
//! the crate's README). `lavabeacon verify|replay|export|import|dev generate-chain` run the
//! same code.

use clap::{Parser, Subcommand};
use lavabeacon_audit::{draw, export, generate, import, replay, verify};
use std::process::ExitCode;

/// mimalloc instead of the system's allocator: a replay allocates a few dozen small blocks a
/// pulse on one thread and frees them on another, where glibc's malloc spent an eighth of the
/// replay's CPU (perf, on the ten_years bench's store); with mimalloc the whole replay takes
/// 12 % less CPU. (The `lavabeacon` server keeps the system's: see its main.rs.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lavabeacon-audit",
    version,
    about = "Check what a NIST Randomness Beacon 2.0 beacon published: offline, from an export, a database or its API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify pulses offline: signatures, certificateIds, outputValues and every link between
    /// the pulses given (sorted by chain and index first).
    Verify(verify::Args),
    /// Audit everything a beacon published, from an export, a database or its API.
    Replay(replay::Args),
    /// Write published pulses to JSON Lines, with certificates and manifests beside them.
    Export(ExportArgs),
    /// Check an export in full, then load it into a store (a mirror for `lavabeacon api`).
    Import(import::Args),
    /// Generate a valid test chain (marked TEST), optionally with planted faults.
    GenerateChain(generate::Args),
    /// Verifiable draws: RFC 3797 from its inputs, a spec's id, a spec's result, its check.
    Draw(draw::Args),
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The database: `sqlite:PATH` or `postgres://…` (a password belongs in
    /// LAVABEACON_DATABASE_URL instead).
    #[arg(long, env = "LAVABEACON_DATABASE_URL", hide_env_values = true)]
    database: String,
    #[command(flatten)]
    export: export::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Export(args) => export::run(&args.database, args.export),
        Command::Import(args) => import::run(args),
        Command::GenerateChain(args) => generate::run(args),
        Command::Draw(args) => draw::run(args),
    }
}

/// Logs as text on standard error, at the level `LAVABEACON_LOG` says (`info` by default).
/// A closed standard error loses the lines, nothing else.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAVABEACON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        // Otherwise a failed write is reported with `eprintln!`, which panics on a closed
        // standard error.
        .log_internal_errors(false)
        .try_init();
}
