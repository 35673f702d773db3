//! The engine's loop: wait for the leader lock, then one [`Engine::step`] after another until
//! told to stop. Every failure is logged for the operator and told to the [`Observer`] as a
//! category; the loop backs off briefly and tries again (the same slot while it is still
//! ahead), acquires the leader lock again when it was lost (a database restart ends the
//! session that held it), and never returns on an ordinary fault.
//!
//! The skip policy the public sees lives here too: a slot whose attempt failed is told to
//! [`Observer::slot_failed`] once, however many retries fail in it, so that `/health` and the
//! metrics count slots, not attempts.

use crate::engine::{Engine, EngineError, Published};
use lavabeacon_store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Who hears about each pulse and each failure (the API in `serve`, nobody in `engine`). The
/// calls come from the engine's own thread, between two attempts: they must return quickly.
pub trait Observer: Send + Sync {
    /// A pulse was stored and is public (the on-publish hand-off).
    fn published(&self, _pulse: &Published) {}
    /// An attempt failed; the slot it was for is skipped unless a retry makes it in time.
    /// Told of every attempt.
    fn failed(&self, _slot_ms: Option<i64>, _error: &EngineError) {}
    /// The first failed attempt for a slot (retries in the same slot are not told again; a
    /// failure before any slot was chosen, `None`, is told each time).
    fn slot_failed(&self, _slot_ms: Option<i64>, _error: &EngineError) {}
}

/// Nobody listening.
pub struct NoObserver;
impl Observer for NoObserver {}

/// Waits for the leader lock (as a standby while another engine leads), then makes pulses
/// until `stop` completes. Returns only then.
pub async fn run(
    mut engine: Engine,
    observer: Arc<dyn Observer>,
    stop: impl Future<Output = ()> + Send,
) {
    tokio::pin!(stop);
    let store = engine.store().clone();
    tracing::info!("certificate {}", engine.signer().certificate().id.short());
    tracing::info!("waiting for the leader lock (another engine may be leading)");
    tokio::select! {
        biased;
        _ = &mut stop => return,
        l = acquire(store.as_ref()) => engine.set_leader(Some(l)),
    }
    tracing::info!("leading");
    let period = Duration::from_millis(u64::from(engine.config().params.period_ms));
    let mut backoff = Backoff::new(period);
    let mut last_failed_slot = None;
    loop {
        let outcome = tokio::select! {
            biased;
            _ = &mut stop => return,
            r = engine.step() => r,
        };
        match outcome {
            Ok(p) => {
                backoff.reset();
                tracing::info!(
                    chain = p.pulse.chain_index,
                    index = p.pulse.pulse_index,
                    status = p.pulse.status_code,
                    "pulse {}/{} {} status {} published",
                    p.pulse.chain_index,
                    p.pulse.pulse_index,
                    p.pulse.time_stamp,
                    p.pulse.status_code
                );
                // The checkpoint before the hand-off: what the stream announces is in the log.
                engine.after_pulse().await;
                observer.published(&p);
            }
            Err(e) => {
                let slot = engine.attempted_slot();
                tracing::warn!(
                    category = e.category(),
                    "pulse attempt for slot {} failed: {e}",
                    slot.map_or_else(|| "?".to_string(), |t| t.to_string())
                );
                observer.failed(slot, &e);
                if slot.is_none() || slot != last_failed_slot {
                    last_failed_slot = slot;
                    observer.slot_failed(slot, &e);
                }
                if e.lost_leadership() {
                    engine.set_leader(None);
                    tracing::warn!("the leader lock was lost; acquiring it again");
                    tokio::select! {
                        biased;
                        _ = &mut stop => return,
                        l = acquire(store.as_ref()) => engine.set_leader(Some(l)),
                    }
                    tracing::info!("leading again");
                    continue;
                }
                // A certificate outside its validity stays so until a key is rotated in: one
                // look a period, not a retry every few seconds for days.
                let wait = if matches!(e, EngineError::Certificate { .. }) {
                    period
                } else {
                    backoff.next()
                };
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = engine.clock().sleep(wait) => {}
                }
            }
        }
    }
}

/// The leader lock, waiting through outages of the database as long as it takes.
async fn acquire(store: &dyn Store) -> lavabeacon_store::Leadership {
    let mut wait = Duration::from_millis(200);
    loop {
        match store.acquire_leadership(None).await {
            Ok(l) => return l,
            Err(e) => {
                tracing::warn!("leader lock: {e}; trying again in {} ms", wait.as_millis());
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// How long to wait after a failed attempt: short at first, so that a fault that has already
/// ended costs no slot, then doubling up to half a period (at most 5 s), so that a long
/// outage costs the database and the log little.
struct Backoff {
    first: Duration,
    cap: Duration,
    now: Duration,
}

impl Backoff {
    fn new(period: Duration) -> Backoff {
        let first = (period / 20).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let cap = (period / 2).clamp(first, Duration::from_secs(5));
        Backoff {
            first,
            cap,
            now: first,
        }
    }
    fn next(&mut self) -> Duration {
        let d = self.now;
        self.now = (self.now * 2).min(self.cap);
        d
    }
    fn reset(&mut self) {
        self.now = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_starts_short_and_stays_under_half_a_period() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let waits: Vec<u128> = (0..6).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next().as_millis(), 50);
        let mut b = Backoff::new(Duration::from_secs(60));
        let waits: Vec<u128> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [1000, 2000, 4000, 5000, 5000]);
    }
}
