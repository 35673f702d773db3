//! # lavabeacon
//!
//! A public randomness beacon speaking NIST Randomness Beacon 2.0, byte for byte.
//!
//! # Layout
//! Data flows sources → combine → sign → store → HTTP; the verifier reads it back from the
//! other side. The pulse format and every check live in `crates/format` (no server
//! dependencies), the engine and its loop in `crates/engine`, the HTTP API in `crates/api`;
//! this binary holds the commands and wires the crates together.
//! - `cli`: the command line, one module a command (`serve`, `engine`, `api`, `keys` with
//!   `cert`, and `rotate` for keys over the years: rotate, switch, schedule, retire, the
//!   switch on SIGHUP; `export`, `dev`; `verify`, `replay` and `import` run `lavabeacon_audit`'s code
//!   in-process); `cli::engine` builds the engine from the configuration and gives it a
//!   thread of its own; `cli::lifecycle`: reading the configuration, the runtime, the stop
//!   signals, exit statuses.
//! - `config`: defaults, then a TOML file, then the environment, into typed sections (choices
//!   are enums); no side effects.
//! - `softhsm`: the one place the process's environment is written (SOFTHSM2_CONF, before the
//!   PKCS#11 module loads).
//! - `logging`: `tracing` to standard error (text or JSON), never fatal.

mod cli;
mod config;
mod logging;
mod softhsm;

fn main() -> std::process::ExitCode {
    cli::run()
}

// The system's allocator, not mimalloc (which the auditor's `lavabeacon-audit` uses for its 12 %
// less CPU a replay): with 10,000 clients waiting on one node, mimalloc's per-thread heaps held
// 300 MiB against glibc's 235 MiB (benches/fanout.rs, docs/fanout.md), and a server's memory
// under fan-out matters more than a replay's CPU run from this binary.
