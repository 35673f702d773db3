//! `[engine]`: the sources, their limits, the camera, another beacon for `external`, and the
//! late tolerance.

use lavabeacon_engine::engine::EngineConfig;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// The sources, by their names in manifests.
    pub sources: Vec<SourceKind>,
    /// The image spool directory (for `spool`).
    pub spool_dir: PathBuf,
    /// A source slower than this is left out of the pulse.
    pub source_timeout_ms: u64,
    /// A pulse needs one healthy source credited at least this many bits.
    pub full_credit_bits: u32,
    /// The real camera (source `camera`).
    pub camera: CameraSection,
    /// Another beacon for the `external` field (none by default).
    pub external: Option<ExternalSection>,
    /// A pulse not stored within this long after its timestamp is not published: the slot is
    /// skipped and the next pulse marks the gap (default: a tenth of the period, at most 5 s).
    pub late_tolerance_ms: Option<u64>,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            sources: vec![
                SourceKind::Os,
                SourceKind::Hsm,
                SourceKind::Cpu,
                SourceKind::SyntheticCamera,
            ],
            spool_dir: PathBuf::from("./data/spool"),
            source_timeout_ms: 5_000,
            full_credit_bits: 256,
            camera: CameraSection::default(),
            external: None,
            late_tolerance_ms: None,
        }
    }
}

impl EngineSection {
    /// How late a pulse may be stored and still be published: `late_tolerance_ms`, or the
    /// engine's default for `period_ms`. The engine and the API's `/health` both use this.
    pub fn late_tolerance(&self, period_ms: u32) -> Duration {
        self.late_tolerance_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| EngineConfig::default_late_tolerance(period_ms))
    }
}

/// An entropy source, spelled in the configuration as its name in manifests. A name not here
/// is refused when the configuration is read, with the names accepted.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// getrandom.
    Os,
    /// C_GenerateRandom on the signing token.
    Hsm,
    /// RDSEED.
    Cpu,
    /// The V4L2 camera, `[engine.camera]` (needs the `camera` feature).
    Camera,
    /// Frames made in memory: makes the beacon a test beacon.
    SyntheticCamera,
    /// Images a capture program drops in `spool_dir`.
    Spool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSection {
    /// The camera's index (0 is /dev/video0).
    pub index: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Frames hashed per pulse.
    pub frames_per_pulse: usize,
    /// Frames dropped after opening (exposure and gain settle).
    pub warmup_frames: usize,
    /// Entropy credited per unsaturated pixel, bits (conservative: sensor noise gives more).
    pub bits_per_pixel: f64,
}

impl Default for CameraSection {
    fn default() -> Self {
        CameraSection {
            index: 0,
            width: 640,
            height: 480,
            fps: 30,
            frames_per_pulse: 4,
            warmup_frames: 10,
            bits_per_pixel: 0.01,
        }
    }
}

/// Another beacon whose newest pulse fills the `external` field.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExternalSection {
    /// The URL of its newest pulse, e.g. `https://beacon.nist.gov/beacon/2.0/pulse/last`.
    pub url: String,
    /// The description whose SHA-512 is the pulse's external.sourceId (default: the URL).
    pub description: Option<String>,
    /// Its certificate (PEM): when given, a pulse that does not verify is not used.
    pub certificate: Option<PathBuf>,
    /// Give up on it after this long.
    #[serde(default = "external_timeout")]
    pub timeout_ms: u64,
}

fn external_timeout() -> u64 {
    2_000
}
