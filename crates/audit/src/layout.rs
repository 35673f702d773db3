//! How an export lies on disk, for `export`, `generate-chain`, `verify`, `replay` and
//! `import`: `NAME.jsonl` (the pulses, JSON Lines, oldest first), beside it
//! `NAME.certificates/` (each certificate as `<certificateId>.pem`), `NAME.sources.jsonl` (the
//! source manifests, when there are any), `NAME.external-sources/` (the description of each
//! external source the pulses name, as `<sourceId>.txt`, when there are any) and, for generated
//! chains with faults, `NAME.faults.json`.

use lavabeacon_format::cert::{Certificate, CertificateSet};
use std::io::BufRead;
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

/// `NAME.external-sources/`.
pub fn external_sources_dir(pulses: &Path) -> PathBuf {
    with_suffix(pulses, ".external-sources")
}

/// Writes an external source's description into `NAME.external-sources/` as
/// `<sourceId>.txt`, its bytes exactly (the sourceId is their SHA-512).
pub fn write_external_source(pulses: &Path, description: &str) -> std::io::Result<()> {
    let dir = external_sources_dir(pulses);
    std::fs::create_dir_all(&dir)?;
    let id = lavabeacon_format::hash::sha512(&[description.as_bytes()]);
    std::fs::write(dir.join(format!("{}.txt", id.to_hex_upper())), description)
}

/// The descriptions in `NAME.external-sources/` (none when there is no such folder), in name
/// order; each file's name must be the SHA-512 of its bytes (a changed file is refused: the
/// store keeps descriptions for ever).
pub fn read_external_sources(pulses: &Path) -> Result<Vec<String>, String> {
    let dir = external_sources_dir(pulses);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let at = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(at)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(at)?;
    paths.retain(|p| p.extension().is_some_and(|x| x == "txt"));
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let id = lavabeacon_format::hash::sha512(&[text.as_bytes()]);
            let named = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if !named.eq_ignore_ascii_case(&id.to_hex_upper()) {
                return Err(format!(
                    "{}: its SHA-512 is {}, not its name: the description was changed",
                    p.display(),
                    id.to_hex_upper()
                ));
            }
            Ok(text)
        })
        .collect()
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

/// A source manifest with the pulse it belongs to: (chainIndex, pulseIndex, manifest JSON).
pub type ManifestLine = (u64, u64, String);

/// The (chain, index) a source manifest belongs to.
pub fn manifest_key(json: &str) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Key {
        chain_index: u64,
        pulse_index: u64,
    }
    serde_json::from_str::<Key>(json)
        .ok()
        .map(|k| (k.chain_index, k.pulse_index))
}

/// The manifests in `NAME.sources.jsonl`, one a line, in file order (lines that name no pulse
/// are passed over; reading ends at one that cannot be read). `None` when there is no such file.
pub fn read_manifests(
    pulses: &Path,
) -> Result<Option<impl Iterator<Item = ManifestLine> + Send>, String> {
    let path = sources_file(pulses);
    if !path.exists() {
        return Ok(None);
    }
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines = std::io::BufReader::new(file).lines().map_while(Result::ok);
    Ok(Some(lines.filter_map(|line| {
        manifest_key(&line).map(|(chain, index)| (chain, index, line))
    })))
}
