//! `lavabeacon api`: the public API alone, read-only, from the database; no engine, no HSM.
//! Several of these can stand behind a load balancer over one PostgreSQL (or its replicas);
//! each watches the database for new pulses, which its stream then pushes.

use super::engine::{configure, fail, new_runtime, shutdown};
use super::serve::watch_interval;
use super::EXIT_USAGE;
use lavabeacon_api::{Beacon, BeaconInfo};
use lavabeacon_store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (its [beacon], [database] and [api] sections are used).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The database URL (overrides the configuration; a password belongs in
    /// LAVABEACON_DATABASE_URL instead).
    #[arg(long)]
    database: Option<String>,
    /// Where to listen, HOST:PORT (overrides the configuration; port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
}

/// Why the beacon in the store is a test beacon, judged from its newest pulse: a TEST
/// certificate, or a synthetic source in its manifest.
async fn test_mode(store: &dyn Store) -> Option<String> {
    let last = store.last().await.ok()??;
    let mut why = Vec::new();
    if let Ok(Some(der)) = store.certificate(&last.certificate_id).await {
        if lavabeacon_format::cert::Certificate::from_der(&der)
            .is_ok_and(|c| c.subject.contains(lavabeacon_signer::TEST_ONLY))
        {
            why.push("TEST certificate");
        }
    }
    if let Ok(Some(m)) = store.manifest(last.chain_index, last.pulse_index).await {
        if m.contains("\"synthetic-camera\"") {
            why.push("synthetic camera");
        }
    }
    (!why.is_empty()).then(|| why.join(", "))
}

pub fn run(args: Args) -> ExitCode {
    let mut c = match configure("api", args.config.as_deref(), args.database, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(l) = args.listen {
        c.api.listen = l;
    }
    let listener = match std::net::TcpListener::bind(&c.api.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lavabeacon api: cannot listen on {}: {e}", c.api.listen);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    new_runtime().block_on(async move {
        let store = match lavabeacon_store::open(&c.database.url).await {
            Ok(s) => s,
            Err(e) => return fail("api", "database", e),
        };
        let test = test_mode(store.as_ref()).await;
        if let Some(why) = &test {
            eprintln!(
                "lavabeacon api: WARNING: {}",
                lavabeacon_api::test_warning(why)
            );
        }
        let beacon = Beacon::new(
            store,
            BeaconInfo {
                chain: c.beacon.chain,
                period_ms: c.beacon.period_ms,
                test,
                engine: false,
                bulk_max_periods: lavabeacon_api::DEFAULT_BULK_PERIODS,
            },
        );
        tokio::spawn(beacon.clone().watch(watch_interval(c.beacon.period_ms)));
        let server = match lavabeacon_api::serve(beacon, listener, c.api.workers) {
            Ok(s) => s,
            Err(e) => return fail("api", "starting the HTTP server", e),
        };
        let handle = server.handle();
        tokio::spawn(server);
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
        shutdown().await;
        handle.stop(true).await;
        ExitCode::SUCCESS
    })
}
