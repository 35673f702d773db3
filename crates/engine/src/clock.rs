//! Where the engine gets the time. The only thing in the engine that reads the wall clock is
//! [`SystemClock`]; tests use [`ManualClock`] and run hours of pulses in milliseconds.

use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The engine's time source.
pub trait Clock: Send + Sync {
    /// Now, Unix milliseconds.
    fn now_ms(&self) -> i64;
    /// Now, Unix microseconds (publication latency is measured in these).
    fn now_us(&self) -> i64 {
        self.now_ms() * 1000
    }
    /// Returns at `t_ms` or later.
    fn sleep_until(&self, t_ms: i64) -> BoxFuture<'_, ()>;
    /// Returns after `d` of this clock's time (backoff between retries).
    fn sleep(&self, d: Duration) -> BoxFuture<'_, ()> {
        let t = self.now_ms() + d.as_millis() as i64;
        self.sleep_until(t)
    }
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        self.now_us().div_euclid(1000)
    }
    fn now_us(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
    fn sleep_until(&self, t_ms: i64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left_us = t_ms * 1000 - self.now_us();
                if left_us <= 0 {
                    return;
                }
                if left_us > 3_000 {
                    tokio::time::sleep(Duration::from_micros(left_us as u64 - 2_000)).await;
                } else {
                    // The last milliseconds on a blocking thread: tokio's timer works in whole
                    // milliseconds and would publish up to 1–2 ms late.
                    let d = Duration::from_micros(left_us as u64);
                    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
                }
            }
        })
    }
}

/// A clock for tests: time moves only when someone sleeps (to the time they asked for) or
/// when the test advances it.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `t_ms`.
    pub fn new(t_ms: i64) -> Self {
        ManualClock(AtomicI64::new(t_ms))
    }
    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    fn sleep_until(&self, t_ms: i64) -> BoxFuture<'_, ()> {
        self.0.fetch_max(t_ms, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}
