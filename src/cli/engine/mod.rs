//! `lavabeacon engine`: the engine alone (no HTTP API): samples the sources, signs with the HSM
//! (or the development key) and appends one pulse every period. A second engine on the same
//! database waits as a standby until the leader lock is free. `serve` runs the same engine
//! with the API beside it.
//!
//! This binary only wires the engine: [`build`] makes it from the configuration, [`thread`]
//! gives it a thread and a runtime of its own; the loop (schedule, retries, leadership, stop,
//! the hand-off of each pulse) is `lavabeacon_engine::run`.

pub(super) mod build;
mod thread;

pub(crate) use build::suite_of;
pub use thread::EngineThread;

use super::lifecycle::{configure, multi_thread_runtime, stop_signal, ConfigArgs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: ConfigArgs,
    /// The period, e.g. 60s or 1s (overrides the configuration).
    #[arg(long)]
    period: Option<String>,
}

/// How long a stopping engine may take to let go of its thread.
pub const ENGINE_STOP: Duration = Duration::from_secs(2);

pub fn run(args: Args) -> ExitCode {
    super::lifecycle::ignore_hangup_while_starting();
    let path = args.common.config.clone();
    let c = match configure(args.common, args.period) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut engine = match EngineThread::open(&c) {
        Ok(e) => e,
        Err(code) => return code,
    };
    engine.run(Arc::new(lavabeacon_engine::run::NoObserver));
    multi_thread_runtime().block_on(async {
        super::rotate::spawn_switch_on_hangup(path, c.clone());
        stop_signal().await
    });
    engine.stop(ENGINE_STOP);
    ExitCode::SUCCESS
}
