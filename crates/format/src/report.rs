//! What a verification found: problems located by chain, pulse and field, and counts of what
//! could be checked. Shared by `verify`, and by auditors' tools built on this crate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kind of check that failed; a caller (or a script reading `--json`) branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The input is not a pulse (bad JSON, bad hex, wrong length, line too long).
    Parse,
    /// The certificate named by certificateId was not given.
    CertificateMissing,
    /// The certificate's key cannot verify this suite.
    CertificateKey,
    /// timeStamp lies outside the validity of the pulse's certificate (or of the CA that
    /// issued it, with `--ca`).
    CertificateValidity,
    /// The certificate was not issued by any of the authorities given (`--ca`).
    CertificateIssuer,
    /// The signature does not verify.
    Signature,
    /// outputValue is not the hash of M and the signature.
    OutputValue,
    /// CLCERT's hashedMessage is not SHA3-512(M).
    HashedMessage,
    /// timeStamp is unreadable, not canonical, or not a multiple of period.
    TimeStamp,
    /// statusCode is unknown, or contradicts the pulse's place in the chain.
    StatusCode,
    /// listValues has the wrong entries, or a chain start has non-zero ones.
    ListValues,
    /// `previous` is not the previous pulse's outputValue.
    Previous,
    /// SHA-512(localRandomValue) differs from the previous pulse's precommitmentValue.
    Precommitment,
    /// The time since the previous pulse does not match period and statusCode.
    Period,
    /// Timestamps do not increase with pulseIndex.
    Order,
    /// The same pulse was given twice.
    Duplicate,
    /// Two different pulses claim the same chain and index.
    Fork,
    /// An hour/day/month/year value is not the first pulse of that period.
    SkipValue,
    /// A skip path is broken.
    SkipPath,
    /// A source manifest does not recombine to its pulse's localRandomValue, or cannot be read.
    Manifest,
}

/// One thing that failed, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Which check.
    pub check: Check,
    /// chainIndex, when the pulse could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<u64>,
    /// pulseIndex, when the pulse could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulse: Option<u64>,
    /// `file:line` of the pulse in the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The JSON field concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What the field should be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// A sentence for people.
    pub message: String,
}

impl Problem {
    /// A problem of `check` with a message; add the rest with the builder methods.
    pub fn new(check: Check, message: impl Into<String>) -> Self {
        Problem {
            check,
            chain: None,
            pulse: None,
            location: None,
            field: None,
            expected: None,
            found: None,
            message: message.into(),
        }
    }

    /// Sets chain and pulse index.
    pub fn at(mut self, chain: u64, pulse: u64) -> Self {
        self.chain = Some(chain);
        self.pulse = Some(pulse);
        self
    }

    /// Sets the input location (`file:line`).
    pub fn located(mut self, location: Option<&impl std::fmt::Display>) -> Self {
        self.location = location.map(|l| l.to_string());
        self
    }

    /// Sets the field.
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    /// Sets expected and found values.
    pub fn values(mut self, expected: impl ToString, found: impl ToString) -> Self {
        self.expected = Some(expected.to_string());
        self.found = Some(found.to_string());
        self
    }

    /// One line for people: `chain 1 pulse 54610 (file:3): previous: … (expected X, found Y)`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        match (self.chain, self.pulse) {
            (Some(c), Some(p)) => s.push_str(&format!("chain {c} pulse {p}")),
            _ => s.push_str("input"),
        }
        if let Some(l) = &self.location {
            s.push_str(&format!(" ({l})"));
        }
        s.push_str(": ");
        if let Some(f) = &self.field {
            s.push_str(f);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        if let (Some(e), Some(f)) = (&self.expected, &self.found) {
            s.push_str(&format!(" (expected {e}, found {f})"));
        }
        s
    }
}

/// Everything a verification run found and counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Pulses read (including unreadable records).
    pub pulses: u64,
    /// Signatures verified (passed or failed).
    pub signatures_checked: u64,
    /// Signatures that could not be checked (no certificate, unknown suite).
    pub signatures_unchecked: u64,
    /// outputValues recomputed.
    pub output_values_checked: u64,
    /// Links between consecutive pulses checked (previous, precommitment, period).
    pub links_checked: u64,
    /// hour/day/month/year values recomputed from earlier pulses.
    pub skip_links_checked: u64,
    /// Hops of a skip path checked (with `--skip-path`).
    pub skip_path_hops: u64,
    /// Source manifests recombined into their pulses' localRandomValue (replay).
    pub manifests_checked: u64,
    /// Pulses per beacon variant (`nist`, `inmetro`, `clcert`).
    pub variants: BTreeMap<String, u64>,
    /// certificateIds (hex) that pulses named but nobody provided.
    pub missing_certificates: Vec<String>,
    /// Checks that were not possible, said once each.
    pub not_checked: Vec<String>,
    /// Every problem found, in chain and pulse order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether everything that was checked passed and nothing needed was missing.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The one summary line ending a human report.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} pulses, {} signatures, {} links, {} skip links{} checked{}{}; {} problems",
            if self.passed() { "OK" } else { "FAILED" },
            self.pulses,
            self.signatures_checked,
            self.links_checked,
            self.skip_links_checked,
            if self.manifests_checked > 0 {
                format!(", {} source manifests", self.manifests_checked)
            } else {
                String::new()
            },
            if self.skip_path_hops > 0 {
                format!(", skip path of {} hops", self.skip_path_hops)
            } else {
                String::new()
            },
            if self.signatures_unchecked > 0 {
                format!(" ({} signatures not checked)", self.signatures_unchecked)
            } else {
                String::new()
            },
            self.problems.len()
        )
    }

    /// The whole human report: one line per problem, notes on what was not checked, summary.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for p in &self.problems {
            s.push_str(&p.render());
            s.push('\n');
        }
        for n in &self.not_checked {
            s.push_str("note: ");
            s.push_str(n);
            s.push('\n');
        }
        s.push_str(&self.summary());
        s.push('\n');
        s
    }

    /// Adds a note on what could not be checked (once).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.not_checked.contains(&note) {
            self.not_checked.push(note);
        }
    }
}
