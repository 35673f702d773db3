//! Long-polls: `?wait=true` on a pulse by time holds the request until the pulse at that time
//! is published, when it is due within one period (lottery clients ask for exactly this: the
//! pulse of the draw, the moment it exists). The request waits on the same broadcast the
//! streams use, not on the store: a thousand waiters cost the database nothing.
//!
//! A wait ends when the pulse is published (the answer is that pulse), at the deadline (the
//! slot's time plus the late tolerance and one period: the engine has given up on that slot,
//! and the request is answered as without `wait`), or when the server begins to stop.

use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::state::{Beacon, Served};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Long-polls waiting at once on one server, at most: each holds a connection and a few
/// hundred bytes; past this, 429.
pub const MAX_WAITERS: usize = 50_000;

static WAITERS: AtomicUsize = AtomicUsize::new(0);

/// One waiter's place among [`MAX_WAITERS`], given back when dropped.
struct Place;

impl Place {
    fn take() -> Result<Place, ApiError> {
        let mut n = WAITERS.load(Ordering::Relaxed);
        loop {
            if n >= MAX_WAITERS {
                return Err(ApiError::TooManyStreams {
                    message: format!("{MAX_WAITERS} requests are already waiting for pulses; ask again without wait=true, or after Retry-After"),
                    retry_after: 1,
                });
            }
            match WAITERS.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(Place),
                Err(seen) => n = seen,
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        WAITERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What `?wait=` says: absent or `false` is no, `true` is yes; anything else is a 400.
pub(crate) fn wants_wait(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "wait={:?}: use wait=true or wait=false",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

/// A subscription taken before the store is asked, so that a pulse published between the
/// store's answer and the wait is not missed.
pub(crate) struct Watch(Receiver<Arc<Served>>);

impl Watch {
    pub(crate) fn new(beacon: &Beacon) -> Watch {
        Watch(beacon.subscribe())
    }

    /// Waits for the first pulse at or after `t` to be published, if the slot it would fill,
    /// `due`, is at most one period away; `None` when it is not, or when the wait ended
    /// without it (deadline, shutdown). The caller then answers as it would have at once.
    pub(crate) async fn until_published(
        mut self,
        beacon: &Beacon,
        t: i64,
        due: i64,
    ) -> Result<Option<Arc<Served>>, ApiError> {
        let info = beacon.info();
        let period = i64::from(info.period_ms);
        let now = now_ms();
        if due - now > period {
            return Ok(None);
        }
        let _place = Place::take()?;
        let deadline_ms = due + i64::from(info.late_tolerance_ms) + period;
        let deadline = tokio::time::Instant::now()
            + Duration::from_millis(u64::try_from(deadline_ms - now).unwrap_or(0));
        let mut stop = beacon.stop_signal();
        loop {
            let news = tokio::select! {
                news = tokio::time::timeout_at(deadline, self.0.recv()) => news,
                _ = stop.wait_for(|s| *s) => return Ok(None),
            };
            match news {
                Ok(Ok(served)) if served.time_ms >= t => return Ok(Some(served)),
                Ok(Ok(_)) => {}
                // Missed some news (a flood of pulses): the store knows.
                Ok(Err(RecvError::Lagged(_))) => {
                    if let Some(p) = public(beacon.ask(beacon.store().at_or_after(t)).await?) {
                        return Ok(Some(Arc::new(beacon.served(&p))));
                    }
                }
                Ok(Err(RecvError::Closed)) | Err(_) => return Ok(None),
            }
        }
    }
}
