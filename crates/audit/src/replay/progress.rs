//! The progress of a replay on standard error: a line redrawn in place on a terminal (output
//! for the person watching, not a log line), a log line every 10 s otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(super) struct Progress {
    started: Instant,
    shown: Instant,
    tty: bool,
    total: Option<u64>,
    /// The command's span, entered for each log line: the verifier may call from any thread.
    span: tracing::Span,
}

impl Progress {
    /// Progress towards `total` pulses, when it is known.
    pub fn new(total: Option<u64>) -> Self {
        Progress {
            started: Instant::now(),
            shown: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            total,
            span: tracing::Span::current(),
        }
    }

    /// `done` pulses checked: shown if it is time to.
    pub fn tick(&mut self, done: u64) {
        let every = if self.tty { 250 } else { 10_000 };
        if self.shown.elapsed() >= Duration::from_millis(every) {
            self.show(done);
        }
    }

    /// The last figures, and the end of the terminal's line.
    pub fn finish(&mut self, done: u64) {
        self.show(done);
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }

    fn show(&mut self, done: u64) {
        self.shown = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = match self.total {
            Some(t) if t > done && rate > 0.0 => {
                let left = ((t - done) as f64 / rate) as u64;
                format!(", ETA {}:{:02}", left / 60, left % 60)
            }
            _ => String::new(),
        };
        let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
        let figures = format!("{done}{of} pulses, {rate:.0}/s{eta}");
        if self.tty {
            // A failed write only loses the line.
            let _ = write!(std::io::stderr(), "\rreplay: {figures}   ");
        } else {
            let _span = self.span.enter();
            tracing::info!("{figures}");
        }
    }
}
