//! The configuration: defaults, then a TOML file, then environment variables, into typed
//! structs that refuse unknown keys. Secrets are never in it in clear: the HSM PIN comes from a
//! file or an environment variable it names, and a database password from
//! `LAVABEACON_DATABASE_URL`.

use lavabeacon_signer::pkcs11::Pkcs11Config;
use lavabeacon_signer::{PinSource, Suite};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub beacon: BeaconConfig,
    pub database: DatabaseConfig,
    pub signer: SignerConfig,
    pub engine: EngineSection,
    pub api: ApiSection,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Where `serve` and `api` listen, HOST:PORT.
    pub listen: String,
    /// HTTP worker threads (one per core is right for most machines).
    pub workers: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: "127.0.0.1:8080".into(),
            workers: 2,
        }
    }
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Sources by name: `os`, `hsm`, `cpu`, `camera`, `synthetic-camera`, `spool`.
    pub sources: Vec<String>,
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
                "os".into(),
                "hsm".into(),
                "cpu".into(),
                "synthetic-camera".into(),
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BeaconConfig {
    /// Base of pulse URIs, e.g. `https://beacon.example.org/beacon/2.0`.
    pub base_uri: String,
    pub chain: u64,
    pub period_ms: u32,
    /// Where the SQLite database, software keys and leader lock live.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` or `postgres://user@host/db` (no password here: use the environment).
    pub url: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SignerConfig {
    /// `pkcs11` (an HSM) or `software` (development only).
    pub kind: String,
    /// `ed25519`, `rsa-3072` or `rsa-4096`.
    pub suite: String,
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
    /// A file holding the user PIN (mode 0600).
    pub pin_file: Option<PathBuf>,
    /// Or an environment variable holding it.
    pub pin_env: Option<String>,
    /// The key's certificate (PEM).
    pub certificate: PathBuf,
    /// For SoftHSM2 dev tokens: the SoftHSM configuration to use (sets SOFTHSM2_CONF).
    pub softhsm_conf: Option<PathBuf>,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            base_uri: "http://localhost:8080/beacon/2.0".into(),
            chain: 1,
            period_ms: 60_000,
            data_dir: PathBuf::from("./data"),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite:./data/lavabeacon.db".into(),
        }
    }
}

impl Default for SignerConfig {
    fn default() -> Self {
        SignerConfig {
            kind: "pkcs11".into(),
            suite: "ed25519".into(),
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            token_label: "lavabeacon".into(),
            key_label: "pulse-key".into(),
            pin_file: None,
            pin_env: Some("LAVABEACON_HSM_PIN".into()),
            certificate: PathBuf::from("./data/pulse-key.pem"),
            softhsm_conf: None,
        }
    }
}

impl Config {
    /// Defaults, then `path` (relative paths in it are taken from the file's directory), then
    /// the environment (`LAVABEACON_DATABASE_URL`).
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let mut c = match path {
            None => Config::default(),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let mut c: Config =
                    toml::from_str(&text).map_err(|e| describe_toml_error(p, &text, &e))?;
                let base = p.parent().unwrap_or(Path::new("."));
                c.resolve_paths(base);
                c
            }
        };
        if let Ok(url) = std::env::var("LAVABEACON_DATABASE_URL") {
            c.database.url = url;
        }
        if c.signer.pin_file.is_some() && c.signer.pin_env.is_some() && path.is_some() {
            // A file names a PIN file: the default environment variable does not apply.
            c.signer.pin_env = None;
        }
        Ok(c)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.beacon.data_dir);
        abs(&mut self.engine.spool_dir);
        abs(&mut self.signer.certificate);
        if let Some(p) = self
            .engine
            .external
            .as_mut()
            .and_then(|e| e.certificate.as_mut())
        {
            abs(p);
        }
        if let Some(p) = self.signer.pin_file.as_mut() {
            abs(p);
        }
        if let Some(p) = self.signer.softhsm_conf.as_mut() {
            abs(p);
        }
        if let Some(rest) = self.database.url.strip_prefix("sqlite:") {
            let p = Path::new(rest.trim_start_matches("//"));
            if p.is_relative() {
                self.database.url = format!("sqlite:{}", base.join(p).display());
            }
        }
    }

    /// The PKCS#11 key this configuration names. Sets SOFTHSM2_CONF first when configured.
    pub fn pkcs11(&self) -> Result<Pkcs11Config, String> {
        if let Some(conf) = &self.signer.softhsm_conf {
            // Before the module is first loaded in this process: SoftHSM reads it at C_Initialize.
            std::env::set_var("SOFTHSM2_CONF", conf);
        }
        let pin = match (&self.signer.pin_file, &self.signer.pin_env) {
            (Some(f), _) => PinSource::File(f.clone()),
            (None, Some(v)) => PinSource::Env(v.clone()),
            (None, None) => return Err(
                "signer: set pin_file or pin_env (the PIN itself never goes in the configuration)"
                    .into(),
            ),
        };
        Ok(Pkcs11Config {
            module: self.signer.module.clone(),
            token_label: self.signer.token_label.clone(),
            pin,
            key_label: self.signer.key_label.clone(),
            suite: self.suite()?,
        })
    }

    pub fn suite(&self) -> Result<Suite, String> {
        self.signer
            .suite
            .parse()
            .map_err(|e: lavabeacon_signer::SignerError| e.to_string())
    }
}

/// `file: line N: message`, without the offending line itself: a PIN typed into the file by
/// mistake must not reach a terminal or a log through this message.
fn describe_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
    match line {
        Some(l) => format!("{}: line {l}: {}", path.display(), e.message()),
        None => format!("{}: {}", path.display(), e.message()),
    }
}

/// Reads a period such as `1s`, `60s`, `500ms` or `1m` as milliseconds; at least one second.
pub fn parse_period(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("period {text:?}: expected e.g. 1s, 60s or 1m"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" | "min" => n * 60_000,
        _ => return Err(format!("period {text:?}: unit must be ms, s or m")),
    };
    if ms < 1000 || ms % 1000 != 0 {
        return Err(format!("period {text:?}: whole seconds, at least 1s"));
    }
    u32::try_from(ms).map_err(|_| format!("period {text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_resolves_paths() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("lavabeacon.example.toml");
        let c = Config::load(Some(&example)).unwrap();
        assert_eq!(c.signer.kind, "pkcs11");
        assert!(c.signer.certificate.is_absolute());
        assert!(c.pkcs11().is_ok());
    }

    #[test]
    fn periods_are_whole_seconds_of_at_least_one() {
        assert_eq!(parse_period("1s"), Ok(1000));
        assert_eq!(parse_period("60"), Ok(60_000));
        assert_eq!(parse_period("2m"), Ok(120_000));
        assert!(parse_period("500ms").is_err());
        assert!(parse_period("1500ms").is_err());
        assert!(parse_period("soon").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[signer]\npin = \"1234\"\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err();
        assert!(
            e.contains("c.toml: line ") && e.contains("unknown field `pin`"),
            "{e}"
        );
        assert!(!e.contains("1234"), "the value must not be echoed: {e}");
    }
}
