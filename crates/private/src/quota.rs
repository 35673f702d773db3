//! Each client's rate (requests a minute, governor's GCRA: a burst of the whole minute's
//! allowance, then one request every 60/N s) and its bytes a UTC day. Both survive a reload
//! of the clients file when the client's numbers did not change; neither survives a restart
//! (a restart is rare, and persisting them would write on every request).

use crate::gate::{Refusal, Registry};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

const DAY_SECS: i64 = 86_400;

struct Limit {
    rate_per_minute: u32,
    bytes_per_day: u64,
    rate: Arc<DefaultDirectRateLimiter>,
    /// (UTC day number, bytes given that day).
    day: Mutex<(i64, u64)>,
}

impl Limit {
    /// This client's (UTC day, bytes given that day), started afresh when the day has turned.
    fn today(&self, now_secs: i64) -> std::sync::MutexGuard<'_, (i64, u64)> {
        let today = now_secs.div_euclid(DAY_SECS);
        let mut day = self.day.lock().unwrap_or_else(|e| e.into_inner());
        if day.0 != today {
            *day = (today, 0);
        }
        day
    }
}

/// The limits of every client.
#[derive(Default)]
pub struct Quotas {
    limits: Mutex<HashMap<String, Arc<Limit>>>,
}

/// What one request took of its client's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// Bytes the client may still have today, after this request.
    pub bytes_left: u64,
}

impl Quotas {
    /// Matches the limits to the clients of `registry`: new clients get fresh limits, clients
    /// whose numbers changed get fresh ones, removed clients lose theirs.
    pub fn sync(&self, registry: &Registry) {
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = HashMap::new();
        for c in registry.clients() {
            let kept = limits.remove(&c.name).filter(|l| {
                l.rate_per_minute == c.rate_per_minute && l.bytes_per_day == c.bytes_per_day
            });
            let limit = kept.unwrap_or_else(|| {
                let per_minute = NonZeroU32::new(c.rate_per_minute).unwrap_or(NonZeroU32::MIN);
                Arc::new(Limit {
                    rate_per_minute: c.rate_per_minute,
                    bytes_per_day: c.bytes_per_day,
                    rate: Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))),
                    day: Mutex::new((0, 0)),
                })
            });
            next.insert(c.name.clone(), limit);
        }
        *limits = next;
    }

    /// Takes one request and `bytes` bytes from `client`'s allowance, or says when to come
    /// back (429 with Retry-After). A request refused for its bytes still counts against the
    /// rate, so a client cannot probe its quota faster than its rate.
    pub fn take(&self, client: &str, bytes: u64, now_secs: i64) -> Result<Granted, Refusal> {
        let Some(limit) = self.limit(client) else {
            // Removed by a reload between the checks and here.
            return Err(Refusal::new(
                401,
                "key",
                "unknown or retired key id in Lavabeacon-Key-Id",
            ));
        };
        if let Err(not_until) = limit.rate.check() {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Refusal::new(
                429,
                "rate",
                format!(
                    "over this client's rate of {} requests a minute",
                    limit.rate_per_minute
                ),
            )
            .retry_after(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)));
        }
        let mut day = limit.today(now_secs);
        let left = limit.bytes_per_day.saturating_sub(day.1);
        if bytes > left {
            let until_midnight = (day.0 + 1) * DAY_SECS - now_secs;
            return Err(Refusal::new(
                429,
                "quota",
                format!(
                    "over this client's {} bytes a day: {left} left today (UTC)",
                    limit.bytes_per_day
                ),
            )
            .retry_after(until_midnight.max(1) as u64));
        }
        day.1 += bytes;
        Ok(Granted {
            bytes_left: left - bytes,
        })
    }

    /// Gives back `bytes` taken by a request that could not be served after all (a day that
    /// has turned since has nothing to give back).
    pub fn refund(&self, client: &str, bytes: u64, now_secs: i64) {
        if let Some(limit) = self.limit(client) {
            let mut day = limit.today(now_secs);
            day.1 = day.1.saturating_sub(bytes);
        }
    }

    /// Bytes `client` may still have today.
    pub fn bytes_left(&self, client: &str, now_secs: i64) -> Option<u64> {
        let limit = self.limit(client)?;
        let used = limit.today(now_secs).1;
        Some(limit.bytes_per_day.saturating_sub(used))
    }

    /// `client`'s limits (`None` once a reload removed it).
    fn limit(&self, client: &str) -> Option<Arc<Limit>> {
        let limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.get(client).cloned()
    }
}
