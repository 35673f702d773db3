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

/// The first public pulse at or after `t`, from the store; with `wait`, when there is none yet
/// and the slot it would fill is at most one period away, the one published there, waited for
/// (`None` when it does not come: the deadline passed, or the server is stopping). Ready to
/// serve: a waited-for pulse comes with the body made once for all its waiters.
pub(crate) async fn first_at_or_after(
    beacon: &Beacon,
    t: i64,
    wait: bool,
) -> Result<Option<Arc<Served>>, ApiError> {
    // Subscribed before the store is asked, so that a pulse published between the store's
    // answer and the wait is not missed.
    let news = wait.then(|| beacon.subscribe());
    if let Some(p) = public(beacon.ask(beacon.store().at_or_after(t)).await?) {
        return Ok(Some(Arc::new(beacon.served(&p))));
    }
    match news {
        Some(news) => until_published(beacon, news, t).await,
        None => Ok(None),
    }
}

/// Waits on `news` for the first pulse at or after `t`, if the slot it would fill is at most
/// one period away.
async fn until_published(
    beacon: &Beacon,
    mut news: Receiver<Arc<Served>>,
    t: i64,
) -> Result<Option<Arc<Served>>, ApiError> {
    let info = beacon.info();
    let period = i64::from(info.period_ms);
    let now = now_ms();
    let due = beacon.slots().at_or_after(t.max(now + 1));
    if due - now > period {
        return Ok(None);
    }
    let _place = Place::take()?;
    let deadline_ms = due + i64::from(info.late_tolerance_ms) + period;
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(deadline_ms - now).unwrap_or(0));
    let mut stop = beacon.stop_signal();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, news.recv()) => next,
            _ = stop.wait_for(|s| *s) => return Ok(None),
        };
        match next {
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
