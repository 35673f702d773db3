//! `lavabeacon api`: the public API alone, read-only, from the database; no engine, no HSM.
//! Several of these can stand behind a load balancer over one PostgreSQL (or its replicas);
//! each watches the database for new pulses, which its stream then pushes.

use super::lifecycle::{configure, fail, multi_thread_runtime, stop_signal, ConfigArgs};
use super::serve::{bind, start_api};
use lavabeacon_format::test_beacon;
use lavabeacon_store::Role;
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
/// certificate, or a synthetic source in its manifest ([`lavabeacon_format::test_beacon`]).
async fn test_mode(store: &dyn Store) -> Option<String> {
    let last = store.last().await.ok()??;
    let subject = match store.certificate(&last.certificate_id).await {
        Ok(Some(der)) => lavabeacon_format::cert::Certificate::from_der(&der)
            .ok()
            .map(|c| c.subject),
        _ => None,
    };
    let manifest = store
        .manifest(last.chain_index, last.pulse_index)
        .await
        .ok()
        .flatten();
    test_beacon::reasons(test_beacon::marks_of_published(
        subject.as_deref(),
        manifest.as_deref(),
    ))
}

pub fn run(args: Args) -> ExitCode {
    super::lifecycle::ignore_hangup_while_starting();
    let c = match configure(args.common, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (c, listener) = match bind(c, args.listen) {
        Ok(x) => x,
        Err(code) => return code,
    };
    multi_thread_runtime().block_on(async move {
        // Read-only: an API node never migrates (it may be on a hot standby); it checks that
        // the schema is the one it knows.
        let store = match lavabeacon_store::open_with(&c.database.url, Role::Api).await {
            Ok(s) => s,
            Err(e) => return fail("database", e),
        };
        let test = test_mode(store.as_ref()).await;
        if let Some(why) = &test {
            tracing::warn!("{}", test_beacon::warning(why));
        }
        let (beacon, handle, _) =
            match start_api(&c, store, test, c.log.vkey.clone(), listener, false) {
                Ok(x) => x,
                Err(code) => return code,
            };
        super::lifecycle::keep_alive_on_hangup();
        stop_signal().await;
        beacon.begin_shutdown();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(4), handle.stop(true)).await;
        ExitCode::SUCCESS
    })
}
