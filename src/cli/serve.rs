//! `lavabeacon serve`: the engine and the public API in one process. The API starts first and
//! serves what the store holds even while this engine is a standby; once it leads, each pulse
//! is served from memory the moment it is stored.

use super::engine::{configure, fail, lead, new_runtime, open};
use super::EXIT_USAGE;
use lavabeacon_api::{Beacon, BeaconInfo};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The database URL (overrides the configuration; a password belongs in
    /// LAVABEACON_DATABASE_URL instead).
    #[arg(long)]
    database: Option<String>,
    /// Where to listen, HOST:PORT (overrides the configuration; port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
    /// The period, e.g. 60s or 1s (overrides the configuration).
    #[arg(long)]
    period: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let mut c = match configure("serve", args.config.as_deref(), args.database, args.period) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(l) = args.listen {
        c.api.listen = l;
    }
    let listener = match std::net::TcpListener::bind(&c.api.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lavabeacon serve: cannot listen on {}: {e}", c.api.listen);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    new_runtime().block_on(async move {
        let parts = match open(&c).await {
            Ok(p) => p,
            Err((what, e)) => return fail("serve", what, e),
        };
        let beacon = Beacon::new(
            parts.store.clone(),
            BeaconInfo {
                chain: c.beacon.chain,
                period_ms: c.beacon.period_ms,
                test: parts.test.clone(),
                engine: true,
                bulk_max_periods: lavabeacon_api::DEFAULT_BULK_PERIODS,
            },
        );
        // Pulses another engine writes (while this one is a standby) are served too.
        tokio::spawn(beacon.clone().watch(watch_interval(c.beacon.period_ms)));
        let server = match lavabeacon_api::serve(beacon.clone(), listener, c.api.workers) {
            Ok(s) => s,
            Err(e) => return fail("serve", "starting the HTTP server", e),
        };
        let handle = server.handle();
        tokio::spawn(server);
        // Scripts and tests read the address (with port 0, the one the system chose).
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
        let code = lead("serve", parts, Some(beacon)).await;
        handle.stop(true).await;
        code
    })
}

/// How often the API looks in the store for pulses it was not told about: a quarter period,
/// at most a second.
pub(super) fn watch_interval(period_ms: u32) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(period_ms / 4).clamp(50, 1000))
}
