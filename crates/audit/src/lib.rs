//! # lavabeacon-audit
//!
//! The auditor's tools, as a library and the `lavabeacon-audit` binary: check pulses offline
//! (`verify`), audit everything a beacon published from an export, a database or its API
//! (`replay`), write and load exports (`export`, `import`), and make test chains with planted
//! faults (`generate-chain`). The `lavabeacon` binary runs the very same commands: it embeds
//! the `Args` structs below in its own command line and calls their `run`.
//!
//! It builds with Rust alone (`cargo install --path crates/audit`): it depends on the pulse
//! format, the store (for `--database`) and an HTTP client, never on actix, cryptoki, nokhwa or
//! anything that needs libclang or a system package.
//!
//! # Layout
//! - [`exit`]: the exit statuses of every command, in one place.
//! - [`verify`]: pulses in any order, held in memory; with `--checkpoint`, each pulse's
//!   inclusion proof in the transparency log.
//! - [`replay`]: a chain in order and in constant memory, with every source manifest
//!   recombined; its submodules are the sources of pulses (`feed` for files and databases,
//!   `remote` for a beacon's API), the manifests matched to their pulses (`manifests`), the
//!   resumable position (`checkpoint`) and the progress line (`progress`); with
//!   `--log-checkpoint`, the log's entries beside the pulses.
//! - [`log`]: the transparency log as an auditor checks it: a checkpoint's signature and
//!   witnesses' cosignatures (here), inclusion proofs for `verify` (`inclusion`), every entry
//!   replayed and hashed again to the root for `replay` (`entries`), the log's report line.
//! - [`export`] and [`import`]: a store to an export and back; [`layout`]: how an export lies
//!   on disk.
//! - [`draw`]: verifiable draws: RFC 3797 from its own inputs, a draw spec's id, the result of
//!   a spec from its pulse, and its offline check (the methods are `lavabeacon_draw`'s).
//! - [`generate`]: test chains signed by a fresh TEST ONLY key, with planted faults.
//! - [`output`]: the commands' own output (reports), as opposed to their logs (`tracing`).

pub mod draw;
pub mod exit;
pub mod export;
pub mod generate;
pub mod import;
pub mod layout;
pub mod log;
pub mod output;
pub mod replay;
pub mod verify;

/// The certificates named on a command line: `--cert FILE`s, then `--certs DIR`s.
pub(crate) fn load_certificates(
    files: &[std::path::PathBuf],
    dirs: &[std::path::PathBuf],
) -> Result<lavabeacon_format::cert::CertificateSet, String> {
    let mut certs = lavabeacon_format::cert::CertificateSet::new();
    for path in files {
        certs
            .load_file(path)
            .map_err(|e| format!("certificate {e}"))?;
    }
    for dir in dirs {
        certs
            .load_dir(dir)
            .map_err(|e| format!("certificates {e}"))?;
    }
    Ok(certs)
}

/// The authorities of `--ca FILE`, if given.
pub(crate) fn load_authorities(
    file: Option<&std::path::Path>,
) -> Result<Option<lavabeacon_format::authority::Authorities>, String> {
    file.map(|f| {
        lavabeacon_format::authority::Authorities::load_file(f).map_err(|e| format!("--ca {e}"))
    })
    .transpose()
}

/// The runtime for the store's async calls (the tools themselves are synchronous).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Now, in Unix milliseconds: what is already public (`export`), where a generated chain ends.
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
