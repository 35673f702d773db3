//! The command line. Each subcommand is a module here, or, for the auditor's tools (`verify`,
//! `replay`, `export`, `import`, `dev generate-chain`, `draw`), the `lavabeacon-audit` crate's code run
//! in-process. `run` parses arguments and maps outcomes to exit statuses, declared once in
//! `lavabeacon_audit::exit`: 0 success, 1 a check failed, 2 usage or I/O error, 3 a replay
//! stopped by `--stop-after`.

mod api;
mod bytes;
mod clients;
mod dev;
mod draw;
mod engine;
mod export;
mod keys;
mod lifecycle;
mod log;
mod notekeys;
mod rotate;
mod secure;
mod serve;

use clap::{Parser, Subcommand};
use lavabeacon_audit::{import, replay, verify};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lavabeacon",
    version,
    about = "A public randomness beacon (NIST Randomness Beacon 2.0 format)"
)]
struct Cli {
    /// How log lines look on standard error.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "LAVABEACON_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify pulses offline: signatures, certificateIds, outputValues and every link between
    /// the pulses given (sorted by chain and index first).
    Verify(verify::Args),
    /// Run the beacon: the engine and the public API (web page, NIST paths, health).
    Serve(serve::Args),
    /// Run the engine alone (no API): one signed pulse every period into the database.
    Engine(engine::Args),
    /// Serve the public API alone, read-only from the database (API nodes behind a balancer).
    Api(api::Args),
    /// Audit everything a beacon published, from an export, a database or its API.
    Replay(replay::Args),
    /// Write published pulses to JSON Lines, with certificates and manifests beside them.
    Export(export::ExportArgs),
    /// Check an export in full, then load it into a store (a mirror for `lavabeacon api`).
    Import(import::Args),
    /// Tools for developers and auditors' test benches.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Manage signing keys in the HSM.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Issue and show certificates of the signing key.
    #[command(subcommand)]
    Cert(keys::CertCommand),
    /// Ask a beacon for private random bytes with a client's credentials.
    Bytes(bytes::Args),
    /// Manage the clients of the private-bytes service (credentials are printed once).
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// Verifiable draws: RFC 3797 from its inputs, a spec's id, its registration with a
    /// beacon, its result from its pulse, and its offline check (docs/draws.md).
    #[command(subcommand)]
    Draw(draw::DrawCommand),
    /// The transparency log of pulses: its key and this beacon's witness key
    /// (docs/transparency.md).
    #[command(subcommand)]
    Log(log::LogCommand),
}

pub use lavabeacon_audit::exit::{EXIT_FAILED, EXIT_USAGE};

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.log_format);
    match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Engine(args) => engine::run(args),
        Command::Api(args) => api::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Export(args) => export::export(args),
        Command::Import(args) => import::run(args),
        Command::Dev(cmd) => dev::run(cmd),
        Command::Keys(cmd) => keys::keys(cmd),
        Command::Cert(cmd) => keys::cert(cmd),
        Command::Clients(cmd) => clients::run(cmd),
        Command::Bytes(args) => bytes::run(args),
        Command::Draw(cmd) => draw::run(cmd),
        Command::Log(cmd) => log::run(cmd),
    }
}
