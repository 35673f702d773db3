//! The engine on a thread and a tokio runtime of its own, with a store opened for it alone:
//! nothing the API does — a flood of requests, streams held open by slow clients — can take its
//! connections or its threads. The loop itself is `lavabeacon_engine::run`.

use super::build::build;
use crate::cli::lifecycle::fail;
use crate::config::{Config, SignerKind};
use lavabeacon_engine::run::Observer;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The exit status when the engine panicked: a bug, not a fault the loop can retry
/// (EX_SOFTWARE).
const EXIT_ENGINE_PANICKED: i32 = 70;

/// The engine's thread. Started in two steps: [`EngineThread::open`] opens and checks
/// everything (so a wrong PIN ends the command before the API starts), [`EngineThread::run`]
/// lets it lead.
pub struct EngineThread {
    /// Why this is a test beacon, if it is.
    pub test_reason: Option<String>,
    /// The transparency log's verifier key, when the log signs checkpoints.
    pub log_vkey: Option<String>,
    go: Option<tokio::sync::oneshot::Sender<Arc<dyn Observer>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl EngineThread {
    /// Opens the engine's store, signer and sources on its own thread; fails with the part
    /// that failed. Call it while the process has one thread (see `crate::softhsm`).
    pub fn open(c: &Config) -> Result<EngineThread, ExitCode> {
        if c.signer.kind == SignerKind::Pkcs11 {
            crate::softhsm::point_at_configuration(&c.signer);
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<Arc<dyn Observer>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let c = c.clone();
        let spawned = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                raise_priority();
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("engine")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(("engine runtime", e.to_string())));
                        return;
                    }
                };
                // A panic here is a bug, not a fault the loop can retry: end the process so
                // that its supervisor restarts it, rather than serve on with a dead engine.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    rt.block_on(async move {
                        let built = match build(&c).await {
                            Ok(b) => b,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let vkey = built.log.as_ref().map(|l| l.vkey.clone());
                        let _ = ready_tx.send(Ok((built.test_reason.clone(), vkey)));
                        let Ok(observer) = go_rx.await else { return };
                        // The witnesses are asked beside the engine, never in its way.
                        if let Some(log) = built.log {
                            if !log.witnesses.is_empty() {
                                tokio::spawn(lavabeacon_engine::log::submit(
                                    log.store,
                                    log.witnesses,
                                    log.wake,
                                ));
                            }
                        }
                        if let Some(why) = &built.test_reason {
                            tracing::warn!("{}", lavabeacon_format::test_beacon::warning(why));
                        }
                        lavabeacon_engine::run::run(built.engine, observer, async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                    })
                }));
                if outcome.is_err() {
                    tracing::error!("the engine panicked; exiting so that the service restarts");
                    std::process::exit(EXIT_ENGINE_PANICKED);
                }
                // A source stuck in a driver call must not hold up the exit.
                rt.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            return Err(fail("engine thread", e));
        }
        match ready_rx.recv() {
            Ok(Ok((test_reason, log_vkey))) => Ok(EngineThread {
                test_reason,
                log_vkey,
                go: Some(go_tx),
                stop: Some(stop_tx),
                done: done_rx,
            }),
            Ok(Err((what, e))) => Err(fail(what, e)),
            Err(_) => Err(fail("engine", "its thread ended while starting")),
        }
    }

    /// Lets the engine lead (waiting for the lock first); each pulse and failure goes to
    /// `observer`.
    pub fn run(&mut self, observer: Arc<dyn Observer>) {
        if let Some(go) = self.go.take() {
            let _ = go.send(observer);
        }
    }

    /// Stops the engine (its leader lock is released at once) and waits for its thread, at
    /// most `wait`.
    pub fn stop(mut self, wait: Duration) {
        self.go.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.done.recv_timeout(wait).is_err() {
            tracing::warn!("the engine did not stop within {} ms", wait.as_millis());
        }
    }
}

/// The engine's threads get a larger share of the CPU than the API's: on a machine saturated
/// by requests (a flood on a 2-core host), the scheduler would otherwise give the engine's
/// database and signing threads one share among hundreds and its appends would take seconds.
/// Threads created from this one (the runtime's, the blocking pool's, the SQLite driver's)
/// inherit the priority. Needs CAP_SYS_NICE; without it the engine runs at the normal priority.
fn raise_priority() {
    const ENGINE_NICE: i32 = -10;
    // SAFETY: setpriority on the calling thread (`who` = 0 under Linux's per-thread nice) with
    // a constant; it touches no memory of ours.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, ENGINE_NICE) };
    if r != 0 {
        tracing::warn!(
            "could not raise the engine's scheduling priority to nice {ENGINE_NICE} ({}); under heavy API load its pulses may be late",
            std::io::Error::last_os_error()
        );
    }
}
