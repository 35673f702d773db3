//! Logging: every message goes through `tracing` to standard error, plain text by default or
//! one JSON object a line (`--log-format json`, or `LAVABEACON_LOG_FORMAT=json`). The level
//! comes from `LAVABEACON_LOG` (an `EnvFilter` directive such as `info` or
//! `lavabeacon_engine=debug`), `info` by default.
//!
//! Writing a log line can never end the process: a closed or full standard error loses the
//! line, not the beacon (the writer below swallows write errors, and Rust ignores SIGPIPE).

use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line an event.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// Makes [`LossyStderrWriter`]s for the subscriber.
struct LossyStderr;

/// Standard error, with write errors ignored.
struct LossyStderrWriter(std::io::Stderr);

impl Write for LossyStderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A closed stderr must not stop the beacon: report the line as written.
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LossyStderr {
    type Writer = LossyStderrWriter;
    fn make_writer(&'a self) -> LossyStderrWriter {
        LossyStderrWriter(std::io::stderr())
    }
}

/// Installs the subscriber once, at start.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("LAVABEACON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LossyStderr)
        .with_ansi(false)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Prints a line on standard output for scripts (`listening on …`), never panicking when
/// standard output is closed.
pub fn stdout_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
