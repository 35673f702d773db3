//! When each pulse first becomes readable.

use super::*;

/// One pulse as the watcher first saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub index: u64,
    pub time_ms: i64,
    pub status: u32,
    pub output: String,
    /// A query that started at this time did not see it yet (strict lower bound of when it
    /// became readable); `None` when that is not known (the watcher was not watching: first
    /// look, database down, several pulses found at once).
    pub after_ms: Option<i64>,
    /// It was readable at this time (upper bound).
    pub by_ms: i64,
}

/// A thread that asks the database for the next pulse of `chain` every 20 ms (or as told), through the
/// store's own code (its own connections, apart from the beacon's).
pub struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    errors: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `chain` in the database at `url` (which must exist), every 20 ms.
    pub fn start(url: &str, chain: u64) -> Watch {
        Watch::start_every(url, chain, Duration::from_millis(20))
    }

    /// As [`Watch::start`], asking every `every`.
    pub fn start_every(url: &str, chain: u64, every: Duration) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let (s, v, e, url) = (stop.clone(), seen.clone(), errors.clone(), url.to_string());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let store = loop {
                    match lavabeacon_store::open(&url).await {
                        Ok(st) => break st,
                        Err(_) if !s.load(Ordering::Relaxed) => {
                            e.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => return,
                    }
                };
                let mut next = 1u64;
                let mut quiet_since: Option<i64> = None;
                while !s.load(Ordering::Relaxed) {
                    let start = now_ms();
                    let r =
                        tokio::time::timeout(Duration::from_secs(2), store.by_index(chain, next))
                            .await;
                    match r {
                        Ok(Ok(Some(p))) => {
                            v.lock().unwrap().push(Seen {
                                index: next,
                                time_ms: p.time_ms().unwrap(),
                                status: p.status_code,
                                output: p.output_value.to_hex_upper(),
                                after_ms: quiet_since,
                                by_ms: now_ms(),
                            });
                            next += 1;
                            // The next one found at once would have been there already.
                            quiet_since = None;
                            continue;
                        }
                        Ok(Ok(None)) => quiet_since = Some(start),
                        _ => {
                            e.fetch_add(1, Ordering::Relaxed);
                            quiet_since = None;
                        }
                    }
                    tokio::time::sleep(every).await;
                }
            })
        });
        Watch {
            stop,
            seen,
            errors,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }

    /// Waits up to `within` for `n` pulses in all.
    pub fn wait_count(&self, n: usize, within: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let have = self.seen.lock().unwrap().len();
            if have >= n {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(format!("{have} pulses, not {n}, within {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The first pulse seen whose timestamp is after `since_ms`, waiting up to `within`.
    pub fn wait_after(&self, since_ms: i64, within: Duration) -> Option<Seen> {
        let started = Instant::now();
        loop {
            if let Some(s) = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.time_ms > since_ms)
                .cloned()
            {
                return Some(s);
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for `n` more pulses than seen now (at most `n` periods and 10 s more).
    pub fn wait_more(&self, n: usize) {
        let have = self.seen.lock().unwrap().len();
        let within = Duration::from_millis(n as u64 * PERIOD_MS as u64 + 10_000);
        if let Err(e) = self.wait_count(have + n, within) {
            panic!("the beacon stopped publishing: {e}");
        }
    }

    /// The index of the newest pulse seen (0 for none).
    pub fn head(&self) -> u64 {
        self.last().map_or(0, |s| s.index)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits for the first pulse published after the fault: the first whose timestamp is after
/// `since_ms`, a time from which no pulse could have been made before the fault (for most
/// faults, when it began plus one period: a pulse is prepared up to a period ahead). It must be
/// readable within [`RECOVERY_MS`] of `ended_ms`, when the fault ended. Returns it and how long
/// after the end it was readable (ms).
pub fn recovered(watch: &Watch, since_ms: i64, ended_ms: i64, what: &str) -> (Seen, i64) {
    let s = watch
        .wait_after(since_ms, Duration::from_millis(RECOVERY_MS as u64 + 10_000))
        .unwrap_or_else(|| {
            panic!(
                "{what}: no new pulse within {} s of the fault ending: the beacon did not recover without a restart (newest seen: {:?})",
                RECOVERY_MS / 1000 + 10,
                watch.last()
            )
        });
    let took = s.by_ms - ended_ms;
    assert!(
        took <= RECOVERY_MS,
        "{what}: the first pulse after the fault (#{}, status {}) was readable {took} ms after the fault ended; it must be within two periods ({RECOVERY_MS} ms with the slack)",
        s.index,
        s.status
    );
    (s, took)
}

/// Every pulse the watcher timed was readable no earlier than its timestamp and, when the
/// watcher was looking, no later than the tolerance plus the slack. Returns the lateness
/// estimates (upper bounds, ms) of the timed pulses.
pub fn assert_punctual(seen: &[Seen], what: &str) -> Vec<i64> {
    let mut problems = Vec::new();
    let mut lateness = Vec::new();
    for s in seen {
        if s.by_ms < s.time_ms {
            problems.push(format!(
                "pulse #{} readable {} ms before its timestamp",
                s.index,
                s.time_ms - s.by_ms
            ));
        }
        if let Some(a) = s.after_ms {
            if a > s.time_ms + TOLERANCE_MS + SLACK_MS {
                problems.push(format!(
                    "pulse #{} (status {}) still unreadable {} ms after its timestamp and published later (tolerance {TOLERANCE_MS} ms + slack {SLACK_MS} ms): a late slot must be skipped",
                    s.index,
                    s.status,
                    a - s.time_ms
                ));
            }
            lateness.push(s.by_ms - s.time_ms);
        }
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
    lateness
}
