//! Another beacon's newest pulse in our pulse's `external` field: sourceId = SHA-512 of the
//! source's description, value = SHA-512 of that pulse's outputValue, statusCode 0 when it was
//! fresh and verified, 1 when stale, 2 when it could not be had (value zero). The manifest keeps
//! the other pulse's uri, timeStamp and outputValue, so an auditor can fetch and verify it.

use lavabeacon_format::cert::CertificateSet;
use lavabeacon_format::manifest::ExternalEntry;
use lavabeacon_format::pulse::External;
use lavabeacon_format::verify::{Options, Verifier};
use std::io::Read;
use std::time::Duration;

/// Where the other beacon is and how far to trust it.
pub struct ExternalBeacon {
    url: String,
    description: String,
    certs: Option<CertificateSet>,
    agent: ureq::Agent,
}

/// Larger answers are not a pulse.
const MAX_BODY: u64 = 1 << 20;

impl ExternalBeacon {
    /// The beacon whose newest pulse is at `url` (e.g. `…/beacon/2.0/pulse/last`); with
    /// `certs`, a pulse that does not verify against them is not used.
    pub fn new(
        url: &str,
        description: &str,
        certs: Option<CertificateSet>,
        timeout: Duration,
    ) -> Self {
        ExternalBeacon {
            url: url.to_string(),
            description: description.to_string(),
            certs,
            agent: ureq::AgentBuilder::new()
                .timeout(timeout)
                .user_agent(concat!("lavabeacon/", env!("CARGO_PKG_VERSION")))
                .build(),
        }
    }

    /// The description whose SHA-512 is our pulses' external.sourceId.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Fetches its newest pulse for our pulse at `our_time_ms` (blocking: run it off the
    /// async threads). Never fails: what went wrong is in the entry's status.
    pub fn fetch(&self, our_time_ms: i64) -> (External, ExternalEntry) {
        let p = match self.newest() {
            Ok(p) => p,
            Err(why) => return self.failed(&why),
        };
        let age = p.time_ms().map(|t| our_time_ms - t).unwrap_or(i64::MAX);
        let limit = 2 * i64::from(p.period.max(1000)) + 10_000;
        let mut entry = self.entry(if age > limit {
            format!("stale: its newest pulse is {} s old", age / 1000)
        } else {
            "ok".into()
        });
        entry.uri = Some(p.uri.clone());
        entry.time_stamp = Some(p.time_stamp.clone());
        entry.output_value = Some(p.output_value.to_hex_upper());
        let external = entry
            .external()
            .expect("an entry made from a parsed pulse is well formed");
        (external, entry)
    }

    /// What a pulse carries when the other beacon's pulse could not be had: statusCode 2,
    /// value zero, and why in the manifest.
    pub fn failed(&self, why: &str) -> (External, ExternalEntry) {
        let entry = self.entry(format!("failed: {why}"));
        let external = entry
            .external()
            .expect("an entry without a value is well formed");
        (external, entry)
    }

    fn entry(&self, status: String) -> ExternalEntry {
        ExternalEntry {
            description: self.description.clone(),
            url: self.url.clone(),
            status,
            uri: None,
            time_stamp: None,
            output_value: None,
        }
    }

    fn newest(&self) -> Result<lavabeacon_format::Pulse, String> {
        let resp = self
            .agent
            .get(&self.url)
            .set("Accept", "application/json")
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(code, _) => format!("HTTP {code}"),
                ureq::Error::Transport(t) => t.to_string(),
            })?;
        let mut body = String::new();
        resp.into_reader()
            .take(MAX_BODY)
            .read_to_string(&mut body)
            .map_err(|e| format!("reading the answer: {e}"))?;
        let p =
            lavabeacon_format::json::parse_pulse(&body).map_err(|e| format!("not a pulse: {e}"))?;
        if let Some(certs) = &self.certs {
            let r =
                Verifier::new(certs, Options::default()).verify_pulses(std::slice::from_ref(&p));
            if !r.passed() {
                let why = r
                    .problems
                    .first()
                    .map(|p| p.message.clone())
                    .unwrap_or_default();
                return Err(format!("its pulse does not verify: {why}"));
            }
        }
        Ok(p)
    }
}
