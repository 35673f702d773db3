//! Continuous health tests on raw samples (NIST SP 800-90B §4.4): the Repetition Count Test and
//! the Adaptive Proportion Test, with α = 2^-30 and the source's assessed min-entropy H per
//! sample, and a start-up test over the first 1,024 samples.

use thiserror::Error;

/// −log2 of the false-positive probability of each test.
pub const ALPHA_LOG2: f64 = 30.0;
/// Samples the start-up test looks at before the source may contribute.
pub const STARTUP_SAMPLES: usize = 1024;

/// A failed health test.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HealthFailure {
    /// The same sample value came `run` times in a row (cutoff `cutoff`).
    #[error("repetition count test: the same value {run} times in a row (cutoff {cutoff})")]
    Repetition {
        /// Length of the run.
        run: u32,
        /// The cutoff.
        cutoff: u32,
    },
    /// One value took `count` of a window's samples (cutoff `cutoff`).
    #[error("adaptive proportion test: one value {count} times in a window of {window} (cutoff {cutoff})")]
    Proportion {
        /// Occurrences in the window.
        count: u32,
        /// Window size.
        window: u32,
        /// The cutoff.
        cutoff: u32,
    },
}

/// RCT cutoff: 1 + ⌈−log2(α) / H⌉.
pub fn rct_cutoff(h: f64) -> u32 {
    1 + (ALPHA_LOG2 / h).ceil() as u32
}

/// APT cutoff: 1 + CRITBINOM(W, 2^−H, 1 − α), the smallest count a healthy source reaches in a
/// window with probability at most α.
pub fn apt_cutoff(window: u32, h: f64) -> u32 {
    let p = 2f64.powf(-h);
    let n = window;
    let target = 1.0 - 2f64.powf(-ALPHA_LOG2);
    // Binomial CDF, summed term by term (the terms are computed in log space to stay finite).
    let ln = |x: f64| x.ln();
    let mut log_pmf = f64::from(n) * ln(1.0 - p);
    let mut cdf = log_pmf.exp();
    let mut k = 0u32;
    while cdf < target && k < n {
        log_pmf += ln(f64::from(n - k)) - ln(f64::from(k + 1)) + ln(p) - ln(1.0 - p);
        k += 1;
        cdf += log_pmf.exp();
    }
    1 + k
}

/// The running tests for one source.
#[derive(Debug, Clone)]
pub struct HealthTests {
    rct_cutoff: u32,
    apt_cutoff: u32,
    window: u32,
    state: RunState,
}

/// What the tests have seen so far; a failure starts it over.
#[derive(Debug, Clone, Default)]
struct RunState {
    last: Option<u8>,
    run: u32,
    apt_value: u8,
    apt_seen: u32,
    apt_count: u32,
    samples: usize,
}

impl HealthTests {
    /// Tests for 8-bit samples with assessed min-entropy `h` bits per sample (window 512).
    pub fn new(h: f64) -> Self {
        let window = 512;
        HealthTests {
            rct_cutoff: rct_cutoff(h),
            apt_cutoff: apt_cutoff(window, h),
            window,
            state: RunState::default(),
        }
    }

    /// Whether the start-up test (the first 1,024 samples) is complete.
    pub fn started(&self) -> bool {
        self.state.samples >= STARTUP_SAMPLES
    }

    /// Feeds samples; the first failure is returned, and the tests start over so that a source
    /// that recovers can come back.
    pub fn feed(&mut self, samples: &[u8]) -> Result<(), HealthFailure> {
        for &s in samples {
            self.state.samples += 1;
            if self.state.last == Some(s) {
                self.state.run += 1;
                if self.state.run >= self.rct_cutoff {
                    let f = HealthFailure::Repetition {
                        run: self.state.run,
                        cutoff: self.rct_cutoff,
                    };
                    self.reset();
                    return Err(f);
                }
            } else {
                self.state.last = Some(s);
                self.state.run = 1;
            }
            if self.state.apt_seen == 0 {
                self.state.apt_value = s;
                self.state.apt_count = 1;
            } else if s == self.state.apt_value {
                self.state.apt_count += 1;
                if self.state.apt_count >= self.apt_cutoff {
                    let f = HealthFailure::Proportion {
                        count: self.state.apt_count,
                        window: self.window,
                        cutoff: self.apt_cutoff,
                    };
                    self.reset();
                    return Err(f);
                }
            }
            self.state.apt_seen += 1;
            if self.state.apt_seen == self.window {
                self.state.apt_seen = 0;
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.state = RunState::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn cutoffs_follow_sp800_90b() {
        // SP 800-90B's examples: H = 1 bit per sample → RCT cutoff 31.
        assert_eq!(rct_cutoff(1.0), 31);
        assert_eq!(rct_cutoff(8.0), 5);
        // APT, W = 512. SP 800-90B's Table 2 (α = 2^-20) gives 410, 311, 177, 62 and 13 for
        // H = 0.5, 1, 2, 4 and 8; our α = 2^-30 puts each cutoff a little higher.
        let ours: Vec<u32> = [0.5, 1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|h| apt_cutoff(512, *h))
            .collect();
        assert_eq!(ours, vec![422, 325, 190, 71, 16]);
        for (c, table) in ours.iter().zip([410, 311, 177, 62, 13]) {
            assert!(*c > table && *c < table + 15, "{c} vs {table}");
        }
    }

    #[test]
    fn a_healthy_source_passes_a_long_run() {
        let mut t = HealthTests::new(7.0);
        let mut buf = vec![0u8; 1 << 20];
        rand::thread_rng().fill_bytes(&mut buf);
        t.feed(&buf).unwrap();
        assert!(t.started());
    }

    #[test]
    fn a_stuck_source_fails_the_repetition_count_test_at_once() {
        let mut t = HealthTests::new(8.0);
        let e = t.feed(&[42u8; 64]).unwrap_err();
        assert_eq!(e, HealthFailure::Repetition { run: 5, cutoff: 5 });
    }

    #[test]
    fn a_biased_source_fails_the_adaptive_proportion_test() {
        let mut t = HealthTests::new(8.0);
        // Value 7 every other sample: no long runs, but far too frequent.
        let samples: Vec<u8> = (0..512u32)
            .map(|i| if i % 2 == 0 { 7 } else { (i % 251) as u8 })
            .collect();
        match t.feed(&samples).unwrap_err() {
            HealthFailure::Proportion { count, cutoff, .. } => assert_eq!(count, cutoff),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_source_comes_back_after_a_failure() {
        let mut t = HealthTests::new(8.0);
        assert!(t.feed(&[0u8; 10]).is_err());
        assert!(!t.started(), "the start-up test runs again");
        let mut buf = vec![0u8; 2048];
        rand::thread_rng().fill_bytes(&mut buf);
        t.feed(&buf).unwrap();
        assert!(t.started());
    }
}
