//! `lavabeacon api`: the public API alone, read-only, from the database; no engine, no HSM.
//! Several of these can stand behind a load balancer over one PostgreSQL (or its replicas);
//! each watches the database for new pulses, which its stream then pushes.

use super::engine::{configure, fail, new_runtime, shutdown, ConfigArgs};
use super::serve::{bind, start_api};
use lavabeacon_store::Store;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Its [beacon], [database] and [api] sections are used.
    #[command(flatten)]
    common: ConfigArgs,
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
    let c = match configure("api", args.common, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (c, listener) = match bind("api", c, args.listen) {
        Ok(x) => x,
        Err(code) => return code,
    };
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
        let (_, handle) = match start_api("api", &c, store, test, listener) {
            Ok(x) => x,
            Err(code) => return code,
        };
        shutdown().await;
        handle.stop(true).await;
        ExitCode::SUCCESS
    })
}
