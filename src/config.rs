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

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` or `postgres://user@host/db` (no password here: use the environment).
    pub url: String,
}

/// The URL with its password taken out: `LAVABEACON_DATABASE_URL` may carry one.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &lavabeacon_store::redact(&self.url))
            .finish()
    }
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
        if let Some(v) = &c.signer.pin_env {
            if !is_variable_name(v) {
                // Most likely the PIN itself: say so without repeating it.
                return Err(format!(
                    "{}signer.pin_env must be the name of an environment variable that holds \
                     the PIN (e.g. LAVABEACON_HSM_PIN), never the PIN itself; its value is \
                     not shown",
                    path.map(|p| format!("{}: ", p.display()))
                        .unwrap_or_default()
                ));
            }
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
    ///
    /// Note: `std::env::set_var` is not thread-safe on Unix (another thread reading the
    /// environment at the same time is undefined behaviour, and it is `unsafe` from Rust
    /// 2024 on). It is called here before the module is loaded and, in every command today,
    /// before any other thread is started; keep it that way, or pass the path to the signer.
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

/// `file: line N: key: message`, without the offending line and without the value: a PIN or a
/// password typed into the file by mistake (an unquoted `pin_file = 548083359663` is a type
/// error) must not reach a terminal or a log through this message. serde's type errors quote
/// the value (``invalid type: integer `548083359663`, expected …``); only its kind and what was
/// expected are kept, whatever the key, so that no key with an unexpected name can leak.
fn describe_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|s| s.start.min(text.len()));
    let line = at.map(|a| text[..a].lines().count().max(1));
    let key = at.and_then(|a| key_at(text, a));
    let message = without_values(e.message());
    let mut out = path.display().to_string();
    if let Some(l) = line {
        out.push_str(&format!(": line {l}"));
    }
    if let Some(k) = key {
        out.push_str(&format!(": {k}"));
    }
    out.push_str(&format!(": {message}"));
    out
}

/// The dotted name (`signer.pin_file`) of the key whose value starts at byte `at`: the key
/// left of the `=` on that line, under the last `[table]` header before it. Only names, never
/// what follows the `=`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    let (lhs, _) = before.rsplit_once('=')?;
    // In an inline table the key follows `{` or `,`.
    let key = lhs.rsplit(['{', ',']).next()?.trim();
    let plain = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '))
    };
    if !plain(key) {
        return None;
    }
    let key = key.replace(['"', ' '], "");
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']', ' ']).to_string());
    Some(match table {
        Some(t) if plain(&t) => format!("{}.{key}", t.replace(['"', ' '], "")),
        _ => key,
    })
}

/// A deserialiser's message with any quoted value taken out: "invalid type: integer
/// `548083359663`, expected path string" becomes "invalid type: integer, expected path
/// string (the value is not shown)". Messages that quote no value pass unchanged.
fn without_values(message: &str) -> String {
    let message = message.trim();
    for head in ["invalid type: ", "invalid value: ", "invalid length "] {
        let Some(rest) = message.strip_prefix(head) else {
            continue;
        };
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        // The kind is what precedes the quoted value: `integer`, `string`, `floating point`.
        let kind = found
            .split(['`', '"'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_end_matches(':');
        let mut out = format!("{head}{kind}");
        if !expected.is_empty() {
            out.push_str(&format!(", expected {expected}"));
        }
        out.push_str(" (the value is not shown)");
        return out;
    }
    message.to_string()
}

/// Whether `name` can be an environment variable's name (letters, digits and `_`, not
/// starting with a digit). A PIN put in `pin_env` by mistake is all digits, or at least not
/// a name anyone gives a variable.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` with every URL in it (a word holding `://`) passed through
/// [`lavabeacon_store::redact`]: for messages that quote a URL given by the user, or an
/// error of a library that names the URL it failed on, so that no password in it is shown.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The word around `://`: back to the last space, quote or bracket, on to the next.
        let stop =
            |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '`');
        let start = rest[..i].rfind(stop).map_or(0, |j| {
            j + rest[j..].chars().next().map_or(1, char::len_utf8)
        });
        let end = rest[i..].find(stop).map_or(rest.len(), |j| i + j);
        // A URL ends before trailing punctuation of the sentence.
        let word = rest[start..end].trim_end_matches([',', ';', '.', ':']);
        out.push_str(&rest[..start]);
        out.push_str(&lavabeacon_store::redact(word));
        rest = &rest[start + word.len()..];
    }
    out.push_str(rest);
    out
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

    fn load_text(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(Some(&p))
    }

    #[test]
    fn a_type_error_names_key_line_and_type_but_not_the_value() {
        let e =
            load_text("[beacon]\nchain = 1\n\n[signer]\npin_file = 548083359663\n").unwrap_err();
        assert!(
            !e.contains("548083359663"),
            "the value must not be echoed: {e}"
        );
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("signer.pin_file"), "{e}");
        assert!(e.contains("invalid type: integer, expected"), "{e}");
        // The same in an inline table, and for a string where a number belongs.
        let e = load_text("signer = { pin_file = 548083359663 }\n").unwrap_err();
        assert!(!e.contains("548083359663") && e.contains("pin_file"), "{e}");
        let e = load_text("[beacon]\nchain = \"s3cret-value\"\n").unwrap_err();
        assert!(
            !e.contains("s3cret-value") && e.contains("beacon.chain"),
            "{e}"
        );
    }

    #[test]
    fn a_pin_in_pin_env_is_refused_without_being_echoed() {
        let e = load_text("[signer]\npin_env = \"548083359663\"\n").unwrap_err();
        assert!(!e.contains("548083359663"), "{e}");
        assert!(
            e.contains("signer.pin_env must be the name of an environment variable"),
            "{e}"
        );
        let e = load_text("[signer]\npin_env = \"my pin 1234\"\n").unwrap_err();
        assert!(!e.contains("1234"), "{e}");
        let c = load_text("[signer]\npin_env = \"LAVABEACON_HSM_PIN\"\n").unwrap();
        assert_eq!(c.signer.pin_env.as_deref(), Some("LAVABEACON_HSM_PIN"));
    }

    #[test]
    fn the_debug_form_hides_the_database_password() {
        let mut c = Config::default();
        c.database.url = "postgres://beacon:Pw-4-debug@127.0.0.1/beacon".into();
        let shown = format!("{c:?}");
        assert!(!shown.contains("Pw-4-debug"), "{shown}");
        assert!(shown.contains("127.0.0.1"), "{shown}");
    }

    #[test]
    fn urls_in_messages_are_redacted() {
        let m = redact_urls("error: http://u:pw1@host:1/x: Connection refused");
        assert!(
            !m.contains("pw1") && m.contains("host:1/x: Connection refused"),
            "{m}"
        );
        let m = redact_urls("no URL here");
        assert_eq!(m, "no URL here");
    }
}
