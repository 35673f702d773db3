//! The rules for one pulse on its own, one function per group: outputValue and
//! hashedMessage, timeStamp and period, statusCode, listValues, the signature. The chain
//! rules between pulses are in [`crate::chain`].

use super::batch::Pending;
use crate::cert::{Certificate, PublicKey};
use crate::chain::Facts;
use crate::hash::Hash512;
use crate::input::Location;
use crate::message::{hashed_message, message_len, write_signed_message};
use crate::pulse::{Pulse, LIST_TYPES};
use crate::report::{Check, Problem};
use crate::suite::{ed25519_signature, verify_signature, CipherSuite, SignatureError};
use crate::time::{is_canonical, parse_time_stamp, Slots};
use crate::variant::{check_output, OutputCheck, Variant};
use std::sync::Arc;

/// What checking one pulse on its own gave.
#[derive(Debug)]
pub struct PulseOutcome {
    /// Its facts for the chain rules, when it could be read.
    pub facts: Option<Facts>,
    /// Problems with the pulse itself.
    pub problems: Vec<Problem>,
    /// Whether the signature was checked.
    pub signature_checked: bool,
    /// Whether outputValue was checked.
    pub output_checked: bool,
    /// The certificate it needed and nobody gave.
    pub missing_certificate: Option<Hash512>,
    /// A note on what could not be checked.
    pub note: Option<String>,
}

impl PulseOutcome {
    /// The outcome of text that is not a pulse: no rule could run.
    pub(super) fn unreadable(location: &Location, message: String) -> PulseOutcome {
        PulseOutcome {
            facts: None,
            problems: vec![Problem::new(Check::Parse, message).located(Some(location))],
            signature_checked: false,
            output_checked: false,
            missing_certificate: None,
            note: None,
        }
    }
}

/// The problems found in one pulse so far, each placed at the pulse (chain, index, location).
struct Findings<'a> {
    pulse: &'a Pulse,
    location: Option<&'a Location>,
    problems: Vec<Problem>,
}

impl Findings<'_> {
    /// A problem placed at this pulse, for the caller to add field and values to.
    fn problem(&self, check: Check, message: String) -> Problem {
        Problem::new(check, message)
            .at(self.pulse.chain_index, self.pulse.pulse_index)
            .located(self.location)
    }

    fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }
}

/// Every rule for one pulse on its own. `certificate` is the one its certificateId names, if
/// known. An Ed25519 signature is not checked here but queued in `pending` (as outcome `slot`
/// of its part) for the batch; every other signature is checked here.
pub(super) fn check_pulse(
    p: &Pulse,
    location: Option<Location>,
    certificate: Option<Arc<Certificate>>,
    slot: usize,
    pending: &mut Vec<Pending>,
) -> PulseOutcome {
    let facts = Facts::of(p, location);
    let variant = facts.variant;
    // M is made once: the outputValue and hashedMessage rules read it, then it moves to the
    // signature check (or the Ed25519 queue) without a copy.
    let mut m = Vec::with_capacity(message_len(p));
    write_signed_message(p, &mut m);

    let mut found = Findings {
        pulse: p,
        location: facts.location.as_ref(),
        problems: Vec::new(),
    };
    output_value_rules(&mut found, variant, &m);
    time_stamp_rules(&mut found, facts.time_ms);
    status_code_rules(&mut found, variant);
    list_values_rules(&mut found);
    let signature = signature_rules(&mut found, certificate, m, slot, pending);
    let problems = found.problems;

    PulseOutcome {
        facts: Some(facts),
        problems,
        signature_checked: signature.checked,
        output_checked: true,
        missing_certificate: signature.missing_certificate,
        note: variant_note(variant),
    }
}

/// outputValue follows the variant's rule; hashedMessage, when present, is SHA3-512 of M.
fn output_value_rules(found: &mut Findings, variant: Variant, m: &[u8]) {
    let p = found.pulse;
    match check_output(variant, p, m) {
        OutputCheck::Ok => {}
        OutputCheck::Mismatch { expected, hint } => {
            let msg = match hint {
                Some(h) => format!("does not follow the {} rule, but follows {h}'s: is this pulse from another beacon?", variant.name()),
                None => format!("is not what the {} rule gives", variant.name()),
            };
            let problem = found
                .problem(Check::OutputValue, msg)
                .field("outputValue")
                .values(expected, p.output_value);
            found.push(problem);
        }
    }
    if let Some(h) = p.hashed_message {
        let expected = hashed_message(m);
        if expected != h {
            let problem = found
                .problem(
                    Check::HashedMessage,
                    "is not SHA3-512 of the signed message".into(),
                )
                .field("hashedMessage")
                .values(expected, h);
            found.push(problem);
        }
    }
}

/// timeStamp is readable and canonical, period is not 0, and timeStamp is a multiple of it.
/// `time_ms` is what [`Facts::of`] read: only an unreadable one is parsed again, for its
/// message.
fn time_stamp_rules(found: &mut Findings, time_ms: Option<i64>) {
    let p = found.pulse;
    let Some(t) = time_ms else {
        if let Err(e) = parse_time_stamp(&p.time_stamp) {
            let problem = found
                .problem(Check::TimeStamp, e.to_string())
                .field("timeStamp");
            found.push(problem);
        }
        return;
    };
    if !is_canonical(&p.time_stamp) {
        let problem = found
            .problem(Check::TimeStamp, "not in the canonical form".into())
            .field("timeStamp")
            .values("YYYY-MM-DDTHH:MM:SS.000Z", &p.time_stamp);
        found.push(problem);
    }
    if p.period == 0 {
        let problem = found
            .problem(Check::TimeStamp, "period is 0".into())
            .field("period");
        found.push(problem);
    } else if !Slots::new(p.period).is_some_and(|s| s.is_slot(t)) {
        let problem = found
            .problem(
                Check::TimeStamp,
                format!("is not a multiple of the period ({} ms)", p.period),
            )
            .field("timeStamp");
        found.push(problem);
    }
}

/// statusCode is one the variant defines, and (except for CLCERT) 1 marks the first pulse
/// of a chain and only it.
fn status_code_rules(found: &mut Findings, variant: Variant) {
    let p = found.pulse;
    let known_status = match variant {
        Variant::Clcert => matches!(p.status_code, 0..=3 | 101..=103),
        _ => p.status_code <= 3,
    };
    if !known_status {
        let problem = found
            .problem(
                Check::StatusCode,
                format!("unknown statusCode {}", p.status_code),
            )
            .field("statusCode");
        found.push(problem);
    }
    if variant != Variant::Clcert && ((p.status_code == 1) != (p.pulse_index == 1)) {
        let problem = found
            .problem(
                Check::StatusCode,
                "statusCode 1 marks the first pulse of a chain, and only it".into(),
            )
            .field("statusCode")
            .values(if p.pulse_index == 1 { 1 } else { 0 }, p.status_code);
        found.push(problem);
    }
}

/// listValues holds previous, hour, day, month and year in that order, all zero with a null
/// uri in a chain's first pulse. Whether the values are right is a chain rule.
fn list_values_rules(found: &mut Findings) {
    let p = found.pulse;
    let types: Vec<&str> = p.list_values.iter().map(|l| l.kind.as_str()).collect();
    if types != LIST_TYPES {
        let problem = found
            .problem(
                Check::ListValues,
                "entries must be previous, hour, day, month, year in that order".into(),
            )
            .field("listValues")
            .values(LIST_TYPES.join(","), types.join(","));
        found.push(problem);
    }
    if p.status_code == 1
        && p.list_values
            .iter()
            .any(|l| !l.value.is_zero() || l.uri.is_some())
    {
        let problem = found
            .problem(
                Check::ListValues,
                "a chain's first pulse has all-zero values with a null uri".into(),
            )
            .field("listValues");
        found.push(problem);
    }
}

/// What the signature rule did.
struct SignatureRule {
    /// Checked here, or queued for the Ed25519 batch.
    checked: bool,
    /// The certificate it needs and nobody gave.
    missing_certificate: Option<Hash512>,
}

/// signatureValue verifies over M under the certificate's key for the pulse's cipherSuite.
/// An Ed25519 signature is queued in `pending` for the batch; any other is checked now.
fn signature_rules(
    found: &mut Findings,
    certificate: Option<Arc<Certificate>>,
    m: Vec<u8>,
    slot: usize,
    pending: &mut Vec<Pending>,
) -> SignatureRule {
    let p = found.pulse;
    let mut rule = SignatureRule {
        checked: false,
        missing_certificate: None,
    };
    let Some(cert) = certificate else {
        rule.missing_certificate = Some(p.certificate_id);
        return rule;
    };
    if let Some(problem) = outside_validity(
        p,
        found.location,
        &format!("its certificate {}", cert.id.short()),
        cert.not_before,
        cert.not_after,
    ) {
        found.push(problem);
    }
    match (CipherSuite::from_code(p.cipher_suite), &cert.key) {
        (Some(CipherSuite::Ed25519), PublicKey::Ed25519(vk)) => {
            match ed25519_signature(&p.signature_value) {
                Ok(signature) => {
                    rule.checked = true;
                    pending.push(Pending {
                        outcome: slot,
                        message: m,
                        signature,
                        key: *vk,
                        cert_id: cert.id,
                    });
                }
                Err(e) => {
                    let problem = found
                        .problem(Check::Signature, e.to_string())
                        .field("signatureValue");
                    found.push(problem);
                }
            }
        }
        _ => {
            rule.checked = true;
            if let Err(e) = verify_signature(p.cipher_suite, &m, &p.signature_value, &cert) {
                let check = match e {
                    SignatureError::KeyMismatch { .. } | SignatureError::UnknownSuite(_) => {
                        Check::CertificateKey
                    }
                    _ => Check::Signature,
                };
                let problem = found.problem(check, e.to_string()).field("signatureValue");
                found.push(problem);
            }
        }
    }
    rule
}

/// The problem when `p`'s timeStamp lies outside `[not_before, not_after]` (Unix seconds, both
/// inclusive, as X.509 means them) of `whose` validity: a pulse signed outside it proves
/// nothing, whoever held the key then.
pub(super) fn outside_validity(
    p: &Pulse,
    location: Option<&Location>,
    whose: &str,
    not_before: i64,
    not_after: i64,
) -> Option<Problem> {
    // An unreadable timeStamp is the timeStamp rule's to report.
    let t = p.time_ms().ok()?;
    let when = if t < not_before.saturating_mul(1000) {
        "before"
    } else if t > not_after.saturating_mul(1000) {
        "after"
    } else {
        return None;
    };
    let shown = |s: i64| crate::time::format_time_stamp(s.saturating_mul(1000)).unwrap_or_default();
    Some(
        Problem::new(
            Check::CertificateValidity,
            format!(
                "timeStamp {} is {when} the validity of {whose} ({} to {})",
                p.time_stamp,
                shown(not_before),
                shown(not_after)
            ),
        )
        .at(p.chain_index, p.pulse_index)
        .located(location)
        .field("timeStamp"),
    )
}

/// What the report notes about a variant's pulses: the rules that are checked differently.
fn variant_note(variant: Variant) -> Option<String> {
    match variant {
        Variant::Clcert => Some(
            "CLCERT pulses: statusCodes 101-103 do not state gaps the NIST way, so the period between pulses is not checked; RSA-PSS is checked with salt 20 or 64".into(),
        ),
        Variant::Inmetro => Some("INMETRO pulses: precommitments are checked as next localRandomValue itself, as INMETRO's generator makes them".into()),
        Variant::Nist => None,
    }
}

/// The problem for an Ed25519 signature the batch rejected.
pub(super) fn bad_signature(o: &PulseOutcome, cert: &str) -> Problem {
    let f = o
        .facts
        .as_ref()
        .expect("only parsed pulses have signatures");
    Problem::new(
        Check::Signature,
        format!("signature does not verify against certificate {cert}"),
    )
    .at(f.chain, f.index)
    .located(f.location.as_ref())
    .field("signatureValue")
}
