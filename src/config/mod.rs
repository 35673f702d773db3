//! The configuration: defaults, then a TOML file, then environment variables, into typed
//! structs that refuse unknown keys and, where a value is one of a few choices (`signer.kind`,
//! `signer.suite`, `engine.sources`), enums that refuse any other with the list of those
//! accepted. Secrets are never in it in clear: the HSM PIN comes from a file or an environment
//! variable it names, and a database password from `LAVABEACON_DATABASE_URL`. Reading it has no
//! side effect.
//!
//! This file: the whole [`Config`], `[beacon]`, `[database]`, `[api]`, and loading;
//! [`engine`]: `[engine]`; [`signer`]: `[signer]`; [`log`]: `[log]` and `[witness]`; [`redact`]: error messages without secrets.

pub mod engine;
pub mod log;
pub mod redact;
pub mod signer;

pub use engine::{EngineSection, SourceKind};
pub use redact::redact_urls;
pub use signer::{SignerConfig, SignerKind};

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
    pub private: PrivateSection,
    pub log: log::LogSection,
    pub witness: log::WitnessSection,
}

/// `[api.tls]`: serve over HTTPS.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain, PEM, the server's certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM (readable by the beacon's user only).
    pub key: PathBuf,
}

/// `[private]`: private random bytes for authenticated clients.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivateSection {
    /// The clients file (`lavabeacon clients`); the service is on when it is set.
    pub clients_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Where `serve` and `api` listen, HOST:PORT.
    pub listen: String,
    /// HTTP worker threads (one per core is right for most machines).
    pub workers: usize,
    /// A plain-HTTP address that answers 308 to the HTTPS listener (with `[api.tls]`).
    pub redirect_http: Option<String>,
    /// Proxies (CIDR) whose `Forwarded` / `X-Forwarded-For` are believed for the client's
    /// address; from anyone else they are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Open streams (SSE and bulk answers) allowed per client address (IPv6: per /64); more
    /// get a 429. Behind a proxy not in `trusted_proxies` every client is the proxy, so it
    /// needs raising there.
    pub max_streams_per_client: u32,
    /// Open streams allowed in all; more get a 429. Each holds a socket, so the file limit
    /// (`LimitNOFILE=` in the systemd units) must be above it.
    pub max_streams: u32,
    /// The most pulses one answer of `/beacon/2.0/chain/time/{t1}/{t2}/previous` holds; a
    /// longer span is answered 400.
    pub max_chain_pulses: u32,
    pub tls: Option<TlsSection>,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: "127.0.0.1:8080".into(),
            workers: 2,
            redirect_http: None,
            trusted_proxies: Vec::new(),
            max_streams_per_client: lavabeacon_api::DEFAULT_STREAMS_PER_CLIENT,
            max_streams: lavabeacon_api::DEFAULT_MAX_STREAMS,
            max_chain_pulses: lavabeacon_api::DEFAULT_MAX_CHAIN_PULSES,
            tls: None,
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

impl Config {
    /// The transparency log's origin: configured, or `<base_uri host>/log`.
    pub fn log_origin(&self) -> String {
        self.log
            .origin
            .clone()
            .unwrap_or_else(|| format!("{}/log", log::host_of(&self.beacon.base_uri)))
    }

    /// This beacon's name as a witness: configured, or `<base_uri host>/witness`.
    pub fn witness_name(&self) -> String {
        self.witness
            .name
            .clone()
            .unwrap_or_else(|| format!("{}/witness", log::host_of(&self.beacon.base_uri)))
    }
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
                    toml::from_str(&text).map_err(|e| redact::describe_toml_error(p, &text, &e))?;
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
            if !signer::is_variable_name(v) {
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
        c.log.check().map_err(|e| {
            format!(
                "{}{e}",
                path.map(|p| format!("{}: ", p.display()))
                    .unwrap_or_default()
            )
        })?;
        Ok(c)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.beacon.data_dir);
        if let Some(tls) = &mut self.api.tls {
            abs(&mut tls.cert);
            abs(&mut tls.key);
        }
        if let Some(f) = &mut self.private.clients_file {
            abs(f);
        }
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
}

/// Reads a period such as `1s`, `60s` or `1m` as milliseconds; whole seconds, at least one
/// (the rule lives with the other times people type, so that `generate-chain` shares it).
pub use lavabeacon_format::time::parse_period;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses_and_resolves_paths() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("lavabeacon.example.toml");
        let c = Config::load(Some(&example)).unwrap();
        assert_eq!(c.signer.kind, SignerKind::Pkcs11);
        assert!(c.signer.certificate.is_absolute());
        assert!(c.signer.pkcs11().is_ok());
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

    #[test]
    fn stream_limits_default_to_the_apis_and_are_read_from_api() {
        let c = load_text("[api]\nworkers = 2\n").unwrap();
        assert_eq!(
            (c.api.max_streams_per_client, c.api.max_streams),
            (
                lavabeacon_api::DEFAULT_STREAMS_PER_CLIENT,
                lavabeacon_api::DEFAULT_MAX_STREAMS
            )
        );
        let c = load_text("[api]\nmax_streams_per_client = 100\nmax_streams = 20000\n").unwrap();
        assert_eq!(
            (c.api.max_streams_per_client, c.api.max_streams),
            (100, 20_000)
        );
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
    fn a_wrong_choice_fails_at_load_naming_the_choices_accepted() {
        let e = load_text("[signer]\nkind = \"pkcs12\"\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("signer.kind") && e.contains("`software`"),
            "{e}"
        );
        assert!(!e.contains("pkcs12"), "the value is not echoed: {e}");
        let e = load_text("[signer]\nsuite = \"rsa-2048\"\n").unwrap_err();
        assert!(
            e.contains("signer.suite") && e.contains("`rsa-3072`"),
            "{e}"
        );
        let e = load_text("[engine]\nsources = [\"os\", \"lava\"]\n").unwrap_err();
        assert!(
            e.contains("engine.sources") && e.contains("`synthetic-camera`"),
            "{e}"
        );
        let c = load_text("[signer]\nkind = \"software\"\nsuite = \"rsa\"\n").unwrap();
        assert_eq!(c.signer.kind, SignerKind::Software);
        assert_eq!(
            lavabeacon_signer::Suite::from(c.signer.suite),
            lavabeacon_signer::Suite::Rsa { bits: 4096 }
        );
    }

    #[test]
    fn reading_the_configuration_leaves_the_environment_alone() {
        // SOFTHSM2_CONF is set by `crate::softhsm` right before the module loads, never here.
        let before = std::env::var_os("SOFTHSM2_CONF");
        let c = load_text("[signer]\nsofthsm_conf = \"./elsewhere/softhsm2.conf\"\n").unwrap();
        assert!(c.signer.pkcs11().is_ok());
        assert!(c.signer.softhsm_conf.unwrap().is_absolute());
        assert_eq!(std::env::var_os("SOFTHSM2_CONF"), before);
    }
}
