//! Load.

use super::*;

/// Statistics of a flood.
#[derive(Debug, Default)]
pub struct Flood {
    pub requests: u64,
    pub failures: u64,
    /// Request latencies, ms.
    pub latencies: Vec<i64>,
}

/// `threads` threads, each asking `/health` and `/beacon/last` in turn, as fast as answers
/// come, for `secs` seconds (a bounded flood: at most `threads` requests in flight).
pub fn flood(base: &str, threads: usize, secs: u64) -> std::thread::JoinHandle<Flood> {
    let base = base.to_string();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(secs);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(5))
                        .build();
                    let mut f = Flood::default();
                    let mut n = 0u64;
                    while Instant::now() < until {
                        let path = if n.is_multiple_of(2) {
                            "/health"
                        } else {
                            "/beacon/last"
                        };
                        n += 1;
                        let t = Instant::now();
                        let ok = match agent.get(&format!("{base}{path}")).call() {
                            Ok(r) => r.into_string().is_ok(),
                            Err(ureq::Error::Status(_, r)) => r.into_string().is_ok(),
                            Err(_) => false,
                        };
                        f.latencies.push(t.elapsed().as_millis() as i64);
                        f.requests += 1;
                        f.failures += u64::from(!ok);
                    }
                    f
                })
            })
            .collect();
        let mut all = Flood::default();
        for w in workers {
            let f = w.join().unwrap();
            all.requests += f.requests;
            all.failures += f.failures;
            all.latencies.extend(f.latencies);
        }
        all
    })
}

/// One GET with a timeout: (status or 0 on a transport error, latency ms).
pub fn timed_get(url: &str, timeout: Duration) -> (u16, i64) {
    let t = Instant::now();
    let status = match ureq::AgentBuilder::new()
        .timeout(timeout)
        .build()
        .get(url)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(_) => 0,
    };
    (status, t.elapsed().as_millis() as i64)
}
