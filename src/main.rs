//! # lavabeacon
//!
//! A public randomness beacon speaking NIST Randomness Beacon 2.0, byte for byte.
//!
//! ## Layout
//! Data flows sources → combine → sign → store → HTTP; the verifier reads it back from the
//! other side. The pulse format and every check live in `crates/format` (no server
//! dependencies); this binary holds the commands.
//! - `cli`: the command line (`lavabeacon verify`, `keys`, `cert`, …).
//! - `config`: defaults, then a TOML file, then the environment.
//! - `logging`: `tracing` to standard error (text or JSON), never fatal.

mod cli;
mod config;
mod logging;

fn main() -> std::process::ExitCode {
    cli::run()
}
