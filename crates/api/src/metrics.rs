//! Prometheus metrics: pulses and gaps, each source's health and credit, publication latency,
//! and requests by route and status. Counters are atomics; the per-route table is one short
//! lock per request.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the publication-latency histogram, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The counters.
#[derive(Default)]
pub struct Metrics {
    pub(crate) published: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) streams_refused: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    requests: Mutex<HashMap<(String, u16), u64>>,
}

impl Metrics {
    /// A pulse was published `latency_us` after its timestamp.
    pub fn published(&self, latency_us: i64) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let us = latency_us.max(0) as u64;
        let secs = us as f64 / 1e6;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A request to `route` (its pattern, or `unmatched`) was answered with `status`.
    pub(crate) fn request(&self, route: String, status: u16) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route, status))
            .or_insert(0) += 1;
    }

    /// The counters in Prometheus's text format, with `extra` lines (gauges read at scrape
    /// time) before them.
    pub(crate) fn render(&self, extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(extra);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP lavabeacon_pulses_published_total Pulses this engine published.\n# TYPE lavabeacon_pulses_published_total counter\nlavabeacon_pulses_published_total {}", load(&self.published));
        let _ = writeln!(out, "# HELP lavabeacon_pulses_skipped_total Slots this engine skipped (each becomes a gap).\n# TYPE lavabeacon_pulses_skipped_total counter\nlavabeacon_pulses_skipped_total {}", load(&self.skipped));
        let _ = writeln!(out, "# HELP lavabeacon_streams_refused_total Streams (SSE, bulk) refused with 429: a client or the server had its maximum open.\n# TYPE lavabeacon_streams_refused_total counter\nlavabeacon_streams_refused_total {}", load(&self.streams_refused));
        let _ = writeln!(out, "# HELP lavabeacon_publication_latency_seconds Time from a pulse's timestamp to its being stored and served.\n# TYPE lavabeacon_publication_latency_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "lavabeacon_publication_latency_seconds_bucket{{le=\"{b}\"}} {}",
                load(&self.latency_buckets[i])
            );
        }
        let n = load(&self.latency_count);
        let _ = writeln!(
            out,
            "lavabeacon_publication_latency_seconds_bucket{{le=\"+Inf\"}} {n}"
        );
        let _ = writeln!(
            out,
            "lavabeacon_publication_latency_seconds_sum {}",
            load(&self.latency_sum_us) as f64 / 1e6
        );
        let _ = writeln!(out, "lavabeacon_publication_latency_seconds_count {n}");
        let _ = writeln!(out, "# HELP lavabeacon_http_requests_total HTTP requests by route and status.\n# TYPE lavabeacon_http_requests_total counter");
        let mut rows: Vec<_> = self
            .requests
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|((r, s), n)| (r.clone(), *s, *n))
            .collect();
        rows.sort();
        for (route, status, n) in rows {
            let _ = writeln!(
                out,
                "lavabeacon_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                route.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        out
    }
}
