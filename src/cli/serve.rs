//! `lavabeacon serve`: the engine and the public API in one process. The API starts first and
//! serves what the store holds even while this engine is a standby; once it leads, each pulse
//! is served from memory the moment it is stored.

use super::engine::{configure, fail, lead, new_runtime, open, ConfigArgs};
use super::EXIT_USAGE;
use crate::config::Config;
use lavabeacon_api::{Beacon, BeaconInfo};
use lavabeacon_store::Store;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: ConfigArgs,
    /// Where to listen, HOST:PORT (overrides the configuration; port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
    /// The period, e.g. 60s or 1s (overrides the configuration).
    #[arg(long)]
    period: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let c = match configure("serve", args.common, args.period) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (c, listener) = match bind("serve", c, args.listen) {
        Ok(x) => x,
        Err(code) => return code,
    };
    new_runtime().block_on(async move {
        let parts = match open(&c).await {
            Ok(p) => p,
            Err((what, e)) => return fail("serve", what, e),
        };
        let test = parts.test.clone();
        let (beacon, handle) = match start_api("serve", &c, parts.store.clone(), test, listener) {
            Ok(x) => x,
            Err(code) => return code,
        };
        let code = lead("serve", parts, Some(beacon)).await;
        handle.stop(true).await;
        code
    })
}

/// Binds the address `--listen` or the configuration names, before anything else starts, so
/// that a port in use is a usage error at once. Returns the configuration as used.
pub(super) fn bind(
    who: &str,
    mut c: Config,
    listen: Option<String>,
) -> Result<(Config, std::net::TcpListener), ExitCode> {
    if let Some(l) = listen {
        c.api.listen = l;
    }
    match std::net::TcpListener::bind(&c.api.listen) {
        Ok(l) => Ok((c, l)),
        Err(e) => {
            eprintln!("lavabeacon {who}: cannot listen on {}: {e}", c.api.listen);
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// Starts the API over `store` on `listener` (inside the runtime), with the watcher that
/// finds pulses it is not told about (another engine's, or any engine's on a read-only node),
/// and prints the address it listens on.
pub(super) fn start_api(
    who: &str,
    c: &Config,
    store: Arc<dyn Store>,
    test: Option<String>,
    listener: std::net::TcpListener,
) -> Result<(Arc<Beacon>, lavabeacon_api::ServerHandle), ExitCode> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let beacon = Beacon::new(
        store,
        BeaconInfo {
            period_ms: c.beacon.period_ms,
            test,
            bulk_max_periods: lavabeacon_api::DEFAULT_BULK_PERIODS,
        },
    );
    tokio::spawn(beacon.clone().watch(watch_interval(c.beacon.period_ms)));
    let server = lavabeacon_api::serve(beacon.clone(), listener, c.api.workers)
        .map_err(|e| fail(who, "starting the HTTP server", e))?;
    let handle = server.handle();
    tokio::spawn(server);
    // Scripts and tests read the address (with port 0, the one the system chose).
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    Ok((beacon, handle))
}

/// How often the API looks in the store for pulses it was not told about: a quarter period,
/// at most a second.
pub(super) fn watch_interval(period_ms: u32) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(period_ms / 4).clamp(50, 1000))
}
