//! `[log]`: the transparency log of pulses (docs/transparency.md) — its origin, its key in
//! the HSM and the witnesses it submits checkpoints to; `[witness]`: this beacon as a witness
//! of other logs.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Sign a checkpoint of the log after each pulse (the entries are kept either way).
    pub enabled: bool,
    /// The log's name: its checkpoints' first line and its key's name, a schema-less URL
    /// (`beacon.example.org/log`). Default: `beacon.base_uri`'s host and port, then `/log`.
    pub origin: Option<String>,
    /// The label of the log's Ed25519 key in the signer's token (made there on first start).
    pub key_label: String,
    /// On API nodes (no HSM): the log's verifier key to publish at `/log/key`.
    pub vkey: Option<String>,
    /// The witnesses checkpoints go to.
    pub witnesses: Vec<WitnessPeerConfig>,
    /// How many cosignatures a checkpoint needs to count (published at `/log/witnesses`,
    /// what the explorer checks). Default: every witness.
    pub witnesses_required: Option<usize>,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            enabled: true,
            origin: None,
            key_label: "log-key".into(),
            vkey: None,
            witnesses: Vec::new(),
            witnesses_required: None,
        }
    }
}

impl LogSection {
    /// What serde cannot check: each witness once, and no more required than there are.
    pub fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for w in &self.witnesses {
            let name = w.name();
            if !names.insert(name) {
                return Err(format!(
                    "log.witnesses names the witness {name:?} twice (cosignatures are kept by name)"
                ));
            }
        }
        if let Some(n) = self.witnesses_required {
            if n > self.witnesses.len() {
                return Err(format!(
                    "log.witnesses_required is {n}, more than the {} witnesses listed",
                    self.witnesses.len()
                ));
            }
        }
        Ok(())
    }
}

/// A witness of this log.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WitnessPeerConfig {
    /// Its cosignature key, `<name>+<id>+<base64(0x04 ‖ key)>`.
    pub vkey: String,
    /// Its submission prefix (`<url>/add-checkpoint` takes checkpoints).
    pub url: String,
}

impl WitnessPeerConfig {
    /// The witness's name: its key's, the vkey up to the first `+` (names hold no `+`).
    pub fn name(&self) -> &str {
        self.vkey.split('+').next().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessSection {
    /// The logs this beacon witnesses, each by its verifier key (`<origin>+<id>+<base64(0x01 ‖
    /// key)>`); the witness is on when there is one.
    pub logs: Vec<String>,
    /// The witness's name (its key's name). Default: `beacon.base_uri`'s host and port, then
    /// `/witness`.
    pub name: Option<String>,
    /// The label of the witness's Ed25519 key in the signer's token (made on first start).
    pub key_label: String,
}

impl Default for WitnessSection {
    fn default() -> Self {
        WitnessSection {
            logs: Vec::new(),
            name: None,
            key_label: "witness-key".into(),
        }
    }
}

/// `base_uri`'s host and port: `http://localhost:8080/beacon/2.0` → `localhost:8080`.
pub fn host_of(base_uri: &str) -> String {
    let rest = base_uri.split_once("://").map_or(base_uri, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_witness_twice_or_more_required_than_listed_is_refused() {
        let w = |v: &str| WitnessPeerConfig {
            vkey: v.into(),
            url: "http://w".into(),
        };
        let mut s = LogSection {
            witnesses: vec![w("a+1+x"), w("a+2+y")],
            ..LogSection::default()
        };
        assert!(s.check().unwrap_err().contains("twice"));
        s.witnesses.pop();
        s.witnesses_required = Some(2);
        assert!(s.check().unwrap_err().contains("more than the 1"));
        s.witnesses_required = Some(1);
        assert!(s.check().is_ok());
    }

    #[test]
    fn the_default_names_come_from_the_base_uri_host() {
        assert_eq!(
            host_of("https://beacon.example.org/beacon/2.0"),
            "beacon.example.org"
        );
        assert_eq!(
            host_of("http://127.0.0.1:9090/beacon/2.0"),
            "127.0.0.1:9090"
        );
    }
}
