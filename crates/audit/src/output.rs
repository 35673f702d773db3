//! What a command reports as its result, on standard output: the report of `verify` and
//! `replay`. Logs go through `tracing` to standard error instead.

use crate::exit::EXIT_FAILED;
use lavabeacon_format::Report;
use std::io::Write;
use std::process::ExitCode;

/// `--json`: the report's fields with `ok` first.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a Report,
}

/// Prints `report` on standard output, as text or (with `json`) one JSON object. A closed pipe
/// (`| head`) loses it, and is no reason to panic.
pub fn print_report(report: &Report, json: bool) {
    let text = if json {
        let out = JsonReport {
            ok: report.passed(),
            report,
        };
        serde_json::to_string_pretty(&out).expect("report serialises") + "\n"
    } else {
        report.render_text()
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Success when every check passed, [`EXIT_FAILED`] otherwise.
pub fn status(report: &Report) -> ExitCode {
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// Prints `line` on standard output (a generated chain's faults, for a script to read), never
/// panicking when standard output is closed.
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
