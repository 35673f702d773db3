//! How the commands that read the configuration start and stop: the configuration with the
//! command line's overrides, the tokio runtime, SIGINT/SIGTERM, and a failure's exit status.

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::{parse_period, Config};
use std::path::PathBuf;
use std::process::ExitCode;

/// The options every command that reads the configuration shares.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The database URL (overrides the configuration; a password belongs in
    /// LAVABEACON_DATABASE_URL instead).
    #[arg(long)]
    pub database: Option<String>,
}

/// The configuration with the command line's overrides, or the exit status of a usage error.
pub fn configure(args: ConfigArgs, period: Option<String>) -> Result<Config, ExitCode> {
    let mut c = Config::load(args.config.as_deref()).map_err(|e| {
        tracing::error!("configuration: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    if let Some(db) = args.database {
        c.database.url = db;
    }
    if let Some(p) = period {
        c.beacon.period_ms = parse_period(&p).map_err(|e| {
            tracing::error!("{e}");
            ExitCode::from(EXIT_USAGE)
        })?;
    }
    Ok(c)
}

/// Ignores SIGHUP until a server's own handlers are in place (they replace this): a
/// `systemctl reload` during start-up (migrations, the HSM, binding) must not stop it, as the
/// signal's default action would. The first thing `serve`, `engine` and `api` do.
pub fn ignore_hangup_while_starting() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code; nothing else
    // in the process runs yet.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// Keeps SIGHUP (`systemctl reload`) from stopping the process, as its default action would:
/// what a reload does is each part's (the TLS and clients files reload themselves); here
/// nothing more is to be done. Inside a runtime.
pub fn keep_alive_on_hangup() {
    tokio::spawn(async {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: an API node has no signing key to switch (TLS and clients files, if any, are read again)");
        }
    });
}

/// Logs why `what` failed and gives the exit status of a failure.
pub fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{what}: {e}");
    ExitCode::from(EXIT_FAILED)
}

/// The runtime a command's async work runs on (the API's, the store's), one worker per core.
/// The engine has a runtime of its own (`super::engine::thread`).
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Returns on SIGINT or SIGTERM.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
