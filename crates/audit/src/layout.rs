//! How an export lies on disk, for `export`, `dev generate-chain`, `verify`, `replay` and
//! `import`: `NAME.jsonl` (the pulses, JSON Lines, oldest first), beside it
//! `NAME.certificates/` (each certificate as `<certificateId>.pem`), `NAME.sources.jsonl` (the
//! source manifests, when there are any) and, for generated chains with faults,
//! `NAME.faults.json`.

use lavabeacon_format::cert::{Certificate, CertificateSet};
use std::path::{Path, PathBuf};

/// The export's name without `.jsonl`.
fn stem(pulses: &Path) -> PathBuf {
    let s = pulses.to_string_lossy();
    PathBuf::from(s.strip_suffix(".jsonl").unwrap_or(&s).to_string())
}

fn with_suffix(pulses: &Path, suffix: &str) -> PathBuf {
    let mut s = stem(pulses).into_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// `NAME.certificates/`.
pub fn certificates_dir(pulses: &Path) -> PathBuf {
    with_suffix(pulses, ".certificates")
}

/// `NAME.sources.jsonl`.
pub fn sources_file(pulses: &Path) -> PathBuf {
    with_suffix(pulses, ".sources.jsonl")
}

/// `NAME.faults.json`.
pub fn faults_file(pulses: &Path) -> PathBuf {
    with_suffix(pulses, ".faults.json")
}

/// Writes `cert` into `NAME.certificates/` as `<certificateId>.pem`.
pub fn write_certificate(pulses: &Path, cert: &Certificate) -> std::io::Result<()> {
    let dir = certificates_dir(pulses);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join(format!("{}.pem", cert.id.to_hex_lower())),
        cert.to_pem(),
    )
}

/// Adds the certificates found beside `pulses` (none is fine). Returns how many.
pub fn load_beside(certs: &mut CertificateSet, pulses: &Path) -> Result<usize, String> {
    let dir = certificates_dir(pulses);
    if !dir.is_dir() {
        return Ok(0);
    }
    certs
        .load_dir(&dir)
        .map_err(|e| format!("certificates beside {}: {e}", pulses.display()))
}
