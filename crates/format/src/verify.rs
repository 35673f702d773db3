//! The verifier: each pulse on its own (signature, certificateId, outputValue, fields), then
//! every link between them. Pulses are checked in parallel on all cores, Ed25519 signatures in
//! batches; the chain rules then run over compact [`Facts`] sorted by chain and index.

use crate::cert::{CertificateSet, PublicKey};
use crate::chain::{check_skip_path, ChainChecker, Facts};
use crate::hash::Hash512;
use crate::input::{InputError, Item, Location};
use crate::json::parse_pulse;
use crate::message::{hashed_message, write_signed_message};
use crate::pulse::{Pulse, LIST_TYPES};
use crate::report::{Check, Problem, Report};
use crate::suite::{
    ed25519_signature, ed25519_verify_batch, verify_signature, CipherSuite, SignatureError,
};
use crate::time::{is_canonical, parse_time_stamp, Slots};
use crate::variant::{check_output, OutputCheck, Variant};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// How to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Verify each Ed25519 signature alone with `verify_strict` instead of in batches.
    /// Batches are about 2.5 times as fast. Their equation is the cofactored one, so a
    /// signature hand-crafted with a small-order component could pass a batch and fail the
    /// strict check; honest signatures pass both.
    pub strict: bool,
    /// Treat the pulses as a skip path from the oldest to the newest instead of a run of
    /// consecutive pulses.
    pub skip_path: bool,
    /// The input is in (chain, index) order, as exports, databases and the bulk API give it:
    /// the chain rules run as pulses come and nothing is kept per pulse, so memory stays flat
    /// however long the chain; a pulse out of order is reported, not sorted in.
    pub ordered: bool,
}

/// Where the verifier finds certificates by certificateId: a [`CertificateSet`], or a source
/// that fetches them when first needed.
pub trait CertLookup: Sync {
    /// The certificate with this id (SHA-512 of its DER), if known.
    fn get(&self, id: &Hash512) -> Option<std::sync::Arc<crate::cert::Certificate>>;
}

impl CertLookup for CertificateSet {
    fn get(&self, id: &Hash512) -> Option<std::sync::Arc<crate::cert::Certificate>> {
        CertificateSet::get(self, id).cloned()
    }
}

/// One pulse for [`Verifier::verify_stream`]: JSON text still to parse, or a pulse already
/// read (from a database).
pub enum Input {
    /// Text from a file or stream.
    Item(Item),
    /// A pulse, and where it came from.
    Pulse(Box<Pulse>, Location),
}

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

/// A verifier over a set of known certificates.
pub struct Verifier<'c> {
    certs: &'c dyn CertLookup,
    options: Options,
}

struct Pending {
    outcome: usize,
    message: Vec<u8>,
    signature: ed25519_dalek::Signature,
    key: ed25519_dalek::VerifyingKey,
    short_id: String,
}

/// One pulse to check: text still to parse, or a pulse already in memory.
enum Source<'a> {
    Item(&'a Item),
    Pulse(&'a Pulse, Location),
}

/// Gathers per-pulse outcomes into a report and runs the chain rules.
///
/// While pulses arrive in (chain, index) order, as exports and databases give them, the chain
/// rules run as they come. If one arrives out of order, the rules are run again at the end
/// over all pulses sorted, so the outcome never depends on input order.
struct Accumulator {
    options: Options,
    report: Report,
    facts: Vec<Facts>,
    problems: Vec<Problem>,
    missing: BTreeMap<Hash512, (u64, Problem)>,
    checker: ChainChecker,
    chain_problems: Vec<Problem>,
    /// How many of `facts` the checker has seen; None once they came out of order.
    streamed: Option<usize>,
    /// In ordered mode, the (chain, index) of the last pulse.
    last_key: Option<(u64, u64)>,
}

/// Called with each pulse's facts, in input order, once the pulse itself has been checked;
/// it may add problems (a replay checks source manifests here).
pub type FactsHook<'h> = &'h mut (dyn FnMut(&Facts, &mut Vec<Problem>) + Send);

impl Accumulator {
    fn new(options: Options) -> Self {
        Accumulator {
            options,
            report: Report::default(),
            facts: Vec::new(),
            problems: Vec::new(),
            missing: BTreeMap::new(),
            checker: ChainChecker::new(),
            chain_problems: Vec::new(),
            streamed: (!options.skip_path).then_some(0),
            last_key: None,
        }
    }

    /// Ordered mode: each pulse goes to the chain rules and the hook, and is not kept.
    fn absorb_ordered(&mut self, f: Facts, hook: &mut Option<FactsHook>) {
        let key = (f.chain, f.index);
        if let Some(h) = hook.as_mut() {
            h(&f, &mut self.problems);
        }
        if self.last_key.is_some_and(|l| key < l) {
            let (c, i) = self.last_key.expect("checked");
            self.problems.push(
                Problem::new(
                    Check::Order,
                    format!("out of order: after pulse {i} of chain {c}"),
                )
                .at(f.chain, f.index)
                .located(f.location.as_ref()),
            );
            return;
        }
        self.last_key = Some(key);
        // Straight into the problems, so that the hook (a replay's checkpoint) sees them too.
        self.checker.push(f, &mut self.problems);
    }

    fn absorb(&mut self, outcomes: Vec<PulseOutcome>) {
        self.absorb_with(outcomes, &mut None)
    }

    fn absorb_with(&mut self, outcomes: Vec<PulseOutcome>, hook: &mut Option<FactsHook>) {
        for o in outcomes {
            self.report.pulses += 1;
            self.report.signatures_checked += u64::from(o.signature_checked);
            self.report.signatures_unchecked += u64::from(!o.signature_checked);
            self.report.output_values_checked += u64::from(o.output_checked);
            if let Some(n) = o.note {
                self.report.note(n);
            }
            if let (Some(id), Some(f)) = (o.missing_certificate, &o.facts) {
                self.missing
                    .entry(id)
                    .or_insert_with(|| {
                        let p = Problem::new(
                            Check::CertificateMissing,
                            format!("certificate {} not provided; pass --cert", id.short()),
                        );
                        (
                            0,
                            p.field("certificateId")
                                .at(f.chain, f.index)
                                .located(f.location.as_ref()),
                        )
                    })
                    .0 += 1;
            }
            self.problems.extend(o.problems);
            if let Some(f) = o.facts {
                *self
                    .report
                    .variants
                    .entry(f.variant.name().to_string())
                    .or_default() += 1;
                if self.options.ordered && !self.options.skip_path {
                    self.absorb_ordered(f, hook);
                    continue;
                }
                if let Some(h) = hook.as_mut() {
                    h(&f, &mut self.problems);
                }
                self.facts.push(f);
            }
        }
        if self.options.ordered && !self.options.skip_path {
            self.streamed = Some(0);
            return;
        }
        if let Some(seen) = self.streamed {
            let key = |f: &Facts| (f.chain, f.index);
            let mut last = seen.checked_sub(1).map(|i| key(&self.facts[i]));
            for f in &self.facts[seen..] {
                if last.is_some_and(|l| key(f) < l) {
                    self.streamed = None;
                    return;
                }
                last = Some(key(f));
                self.checker.push(f.clone(), &mut self.chain_problems);
            }
            self.streamed = Some(self.facts.len());
        }
    }

    fn finish(mut self) -> Report {
        for (id, (count, mut p)) in std::mem::take(&mut self.missing) {
            self.report.missing_certificates.push(id.to_hex_lower());
            p.message = format!("{} (needed by {count} pulses)", p.message);
            self.problems.push(p);
        }
        if self.options.skip_path {
            self.facts.par_sort_by_key(|f| (f.chain, f.index));
            let hops = check_skip_path(&self.facts, &mut self.problems);
            self.report.skip_path_hops = hops.len() as u64;
        } else {
            if self.streamed.is_none() {
                // Stable sort: duplicates keep their input order.
                self.facts.par_sort_by_key(|f| (f.chain, f.index));
                self.checker = ChainChecker::new();
                self.chain_problems.clear();
                for f in self.facts {
                    self.checker.push(f, &mut self.chain_problems);
                }
            }
            self.problems.append(&mut self.chain_problems);
            self.report.links_checked = self.checker.links;
            self.report.skip_links_checked = self.checker.skip_links;
        }
        self.problems
            .sort_by_key(|p| (p.chain.is_some(), p.chain, p.pulse));
        self.report.problems = self.problems;
        self.report
    }
}

/// Pulses checked together: one Ed25519 batch, one task for a core.
const PART: usize = 256;

impl<'c> Verifier<'c> {
    /// A verifier that knows `certs`.
    pub fn new(certs: &'c dyn CertLookup, options: Options) -> Self {
        Verifier { certs, options }
    }

    /// Checks one pulse on its own, signature included (Ed25519 strictly).
    pub fn check_pulse(&self, p: &Pulse, location: Option<Location>) -> PulseOutcome {
        let mut pending = Vec::new();
        let mut out = self.check_fields(p, location, 0, &mut pending);
        for job in pending {
            if job.key.verify_strict(&job.message, &job.signature).is_err() {
                out.problems.push(bad_signature(&out, &job.short_id));
            }
        }
        out
    }

    /// Checks every pulse of `items`, then the links between them, and reports everything.
    /// Only an input that cannot be read at all stops it.
    pub fn verify_items<I>(&self, items: I) -> Result<Report, InputError>
    where
        I: Iterator<Item = Result<Item, InputError>> + Send,
    {
        self.verify_stream(items.map(|r| r.map(Input::Item)), None)
    }

    /// Like [`Verifier::verify_items`], for text or pulses already read, calling `hook` with
    /// each pulse's facts in input order (a replay checks manifests and shows progress there).
    pub fn verify_stream<I>(&self, items: I, hook: Option<FactsHook>) -> Result<Report, InputError>
    where
        I: Iterator<Item = Result<Input, InputError>> + Send,
    {
        const CHUNK: usize = 16 * PART;
        let mut hook = hook;
        let mut acc = Accumulator::new(self.options);
        // Reading runs on its own thread so that parsing and signatures never wait for I/O.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Input>, InputError>>(4);
        std::thread::scope(|s| -> Result<(), InputError> {
            s.spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                for item in items {
                    match item {
                        Ok(i) => chunk.push(i),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                    if chunk.len() == CHUNK
                        && tx
                            .send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                            .is_err()
                    {
                        return;
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.send(Ok(chunk));
                }
            });
            // Chunk n is checked on the pool while chunk n-1's outcomes are absorbed, so the
            // serial bookkeeping never leaves a core idle.
            let mut previous: Option<Vec<PulseOutcome>> = None;
            for chunk in rx {
                let chunk = chunk?;
                let sources: Vec<Source> = chunk
                    .iter()
                    .map(|i| match i {
                        Input::Item(item) => Source::Item(item),
                        Input::Pulse(p, location) => Source::Pulse(p, location.clone()),
                    })
                    .collect();
                let (outcomes, ()) = rayon::join(
                    || {
                        sources
                            .par_chunks(PART)
                            .flat_map_iter(|part| self.check_sources(part))
                            .collect()
                    },
                    || {
                        if let Some(p) = previous.take() {
                            acc.absorb_with(p, &mut hook)
                        }
                    },
                );
                previous = Some(outcomes);
            }
            if let Some(p) = previous {
                acc.absorb_with(p, &mut hook);
            }
            Ok(())
        })?;
        Ok(acc.finish())
    }

    /// Checks pulses already in memory; locations read `<memory>:N` for the N-th pulse.
    pub fn verify_pulses(&self, pulses: &[Pulse]) -> Report {
        let name: std::sync::Arc<str> = std::sync::Arc::from("<memory>");
        let sources: Vec<Source> = pulses
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Source::Pulse(
                    p,
                    Location {
                        source: name.clone(),
                        line: i + 1,
                    },
                )
            })
            .collect();
        let mut acc = Accumulator::new(self.options);
        acc.absorb(
            sources
                .par_chunks(PART)
                .flat_map_iter(|part| self.check_sources(part))
                .collect(),
        );
        acc.finish()
    }

    fn check_sources(&self, sources: &[Source]) -> Vec<PulseOutcome> {
        let mut outcomes = Vec::with_capacity(sources.len());
        let mut pending: Vec<Pending> = Vec::new();
        for source in sources {
            let o = match source {
                Source::Item(Item::Unreadable { location, message }) => {
                    unreadable(location, message.clone())
                }
                Source::Item(Item::Record { location, text }) => match parse_pulse(text) {
                    Ok(p) => {
                        self.check_fields(&p, Some(location.clone()), outcomes.len(), &mut pending)
                    }
                    Err(e) => unreadable(location, e.to_string()),
                },
                Source::Pulse(p, location) => {
                    self.check_fields(p, Some(location.clone()), outcomes.len(), &mut pending)
                }
            };
            outcomes.push(o);
        }
        if pending.is_empty() {
            return outcomes;
        }
        let batch_ok = !self.options.strict && {
            let batch: Vec<_> = pending
                .iter()
                .map(|j| (j.message.as_slice(), &j.signature, &j.key))
                .collect();
            ed25519_verify_batch(&batch)
        };
        if !batch_ok {
            // Strict mode, or a batch with at least one bad signature: find which.
            for j in &pending {
                if j.key.verify_strict(&j.message, &j.signature).is_err() {
                    let o = &mut outcomes[j.outcome];
                    let p = bad_signature(o, &j.short_id);
                    o.problems.push(p);
                }
            }
        }
        outcomes
    }

    /// Every check of one pulse on its own; Ed25519 signatures are queued in `pending`.
    fn check_fields(
        &self,
        p: &Pulse,
        location: Option<Location>,
        slot: usize,
        pending: &mut Vec<Pending>,
    ) -> PulseOutcome {
        let facts = Facts::of(p, location);
        let variant = facts.variant;
        let mut problems = Vec::new();
        let problem = |check, msg: String| {
            Problem::new(check, msg)
                .at(p.chain_index, p.pulse_index)
                .located(facts.location.as_ref())
        };
        let mut m = Vec::with_capacity(crate::message::message_len(p));
        write_signed_message(p, &mut m);

        // outputValue
        match check_output(variant, p, &m) {
            OutputCheck::Ok => {}
            OutputCheck::Mismatch { expected, hint } => {
                let msg = match hint {
                    Some(h) => format!("does not follow the {} rule, but follows {h}'s: is this pulse from another beacon?", variant.name()),
                    None => format!("is not what the {} rule gives", variant.name()),
                };
                problems.push(
                    problem(Check::OutputValue, msg)
                        .field("outputValue")
                        .values(expected, p.output_value),
                );
            }
        }
        if let Some(h) = p.hashed_message {
            let expected = hashed_message(&m);
            if expected != h {
                problems.push(
                    problem(
                        Check::HashedMessage,
                        "is not SHA3-512 of the signed message".into(),
                    )
                    .field("hashedMessage")
                    .values(expected, h),
                );
            }
        }

        // timeStamp
        // Facts::of has parsed it already; only an unreadable one is parsed again, for its message.
        match facts.time_ms {
            None => {
                if let Err(e) = parse_time_stamp(&p.time_stamp) {
                    problems.push(problem(Check::TimeStamp, e.to_string()).field("timeStamp"));
                }
            }
            Some(t) => {
                if !is_canonical(&p.time_stamp) {
                    problems.push(
                        problem(Check::TimeStamp, "not in the canonical form".into())
                            .field("timeStamp")
                            .values("YYYY-MM-DDTHH:MM:SS.000Z", &p.time_stamp),
                    );
                }
                if p.period == 0 {
                    problems.push(problem(Check::TimeStamp, "period is 0".into()).field("period"));
                } else if !Slots::new(p.period).is_some_and(|s| s.is_slot(t)) {
                    problems.push(
                        problem(
                            Check::TimeStamp,
                            format!("is not a multiple of the period ({} ms)", p.period),
                        )
                        .field("timeStamp"),
                    );
                }
            }
        }

        // statusCode and the chain start
        let known_status = match variant {
            Variant::Clcert => matches!(p.status_code, 0..=3 | 101..=103),
            _ => p.status_code <= 3,
        };
        if !known_status {
            problems.push(
                problem(
                    Check::StatusCode,
                    format!("unknown statusCode {}", p.status_code),
                )
                .field("statusCode"),
            );
        }
        if variant != Variant::Clcert && ((p.status_code == 1) != (p.pulse_index == 1)) {
            problems.push(
                problem(
                    Check::StatusCode,
                    "statusCode 1 marks the first pulse of a chain, and only it".into(),
                )
                .field("statusCode")
                .values(if p.pulse_index == 1 { 1 } else { 0 }, p.status_code),
            );
        }
        let types: Vec<&str> = p.list_values.iter().map(|l| l.kind.as_str()).collect();
        if types != LIST_TYPES {
            problems.push(
                problem(
                    Check::ListValues,
                    "entries must be previous, hour, day, month, year in that order".into(),
                )
                .field("listValues")
                .values(LIST_TYPES.join(","), types.join(",")),
            );
        }
        if p.status_code == 1
            && p.list_values
                .iter()
                .any(|l| !l.value.is_zero() || l.uri.is_some())
        {
            problems.push(
                problem(
                    Check::ListValues,
                    "a chain's first pulse has all-zero values with a null uri".into(),
                )
                .field("listValues"),
            );
        }

        // Signature
        let mut out = PulseOutcome {
            facts: None,
            problems: Vec::new(),
            signature_checked: false,
            output_checked: true,
            missing_certificate: None,
            note: None,
        };
        match self.certs.get(&p.certificate_id) {
            None => out.missing_certificate = Some(p.certificate_id),
            Some(cert) => match (CipherSuite::from_code(p.cipher_suite), &cert.key) {
                (Some(CipherSuite::Ed25519), PublicKey::Ed25519(vk)) => {
                    match ed25519_signature(&p.signature_value) {
                        Ok(signature) => {
                            out.signature_checked = true;
                            pending.push(Pending {
                                outcome: slot,
                                message: m,
                                signature,
                                key: *vk,
                                short_id: cert.id.short(),
                            });
                        }
                        Err(e) => problems
                            .push(problem(Check::Signature, e.to_string()).field("signatureValue")),
                    }
                }
                _ => {
                    out.signature_checked = true;
                    if let Err(e) = verify_signature(p.cipher_suite, &m, &p.signature_value, &cert)
                    {
                        let check = match e {
                            SignatureError::KeyMismatch { .. }
                            | SignatureError::UnknownSuite(_) => Check::CertificateKey,
                            _ => Check::Signature,
                        };
                        problems.push(problem(check, e.to_string()).field("signatureValue"));
                    }
                }
            },
        }
        if variant == Variant::Clcert {
            out.note = Some(
                "CLCERT pulses: statusCodes 101-103 do not state gaps the NIST way, so the period between pulses is not checked; RSA-PSS is checked with salt 20 or 64".into(),
            );
        } else if variant == Variant::Inmetro {
            out.note = Some("INMETRO pulses: precommitments are checked as next localRandomValue itself, as INMETRO's generator makes them".into());
        }
        out.problems = problems;
        out.facts = Some(facts);
        out
    }
}

fn unreadable(location: &Location, message: String) -> PulseOutcome {
    PulseOutcome {
        facts: None,
        problems: vec![Problem::new(Check::Parse, message).located(Some(location))],
        signature_checked: false,
        output_checked: false,
        missing_certificate: None,
        note: None,
    }
}

fn bad_signature(o: &PulseOutcome, cert: &str) -> Problem {
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
