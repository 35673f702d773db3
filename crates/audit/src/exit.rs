//! The exit statuses of every auditor's command, and of the `lavabeacon` binary, which uses the
//! same ones (docs/auditing.md lists them for users). 0 is success (`ExitCode::SUCCESS`).

/// A check failed (or, for `export`, `import` and `generate-chain`, the work could not be done).
pub const EXIT_FAILED: u8 = 1;
/// Usage and I/O errors: bad arguments, an input that cannot be read (clap uses 2 for usage
/// errors too).
pub const EXIT_USAGE: u8 = 2;
/// `replay --stop-after N` stopped as if interrupted, its checkpoint written (for testing
/// resumes).
pub const EXIT_STOPPED: u8 = 3;
