//! The verifier: each pulse on its own (signature, certificateId, the certificate's validity
//! at its timeStamp, outputValue, fields; with `--ca`, the certificate's issuer), then every
//! link between them. Pulses are checked in parallel on all cores, Ed25519 signatures in
//! batches; the chain rules then run over compact [`Facts`](crate::chain::Facts) sorted by
//! chain and index.
//!
//! ## Layout
//! - this file: the public API ([`Verifier`], [`Options`], [`CertLookup`], [`Input`]), the
//!   work's shape (a reading thread, chunks of pulses checked in parts on the rayon pool), and
//!   the `--ca` rule (each certificate's issuer checked once, then every pulse held to that
//!   authority's validity).
//! - `rules`: the rules for one pulse on its own, one function per group; [`PulseOutcome`].
//! - `batch`: the queue of Ed25519 signatures each part checks as one batch.
//! - `accumulate`: outcomes into a [`Report`], and the chain rules in one of three modes
//!   (ordered input, any order, skip path); [`FactsHook`].

mod accumulate;
mod batch;
mod rules;

pub use accumulate::FactsHook;
pub use rules::PulseOutcome;

use crate::authority::Authorities;
use crate::cert::{Certificate, CertificateSet};
use crate::hash::Hash512;
use crate::input::{InputError, Item, Location};
use crate::json::parse_pulse;
use crate::pulse::Pulse;
use crate::report::{Check, Problem, Report};
use accumulate::Accumulator;
use batch::{check_queued, Pending};
use rayon::prelude::*;
use rules::bad_signature;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
    fn get(&self, id: &Hash512) -> Option<Arc<Certificate>>;
}

impl CertLookup for CertificateSet {
    fn get(&self, id: &Hash512) -> Option<Arc<Certificate>> {
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

/// A verifier over a set of known certificates.
pub struct Verifier<'c> {
    certs: &'c dyn CertLookup,
    options: Options,
    /// With `--ca`: the authorities every certificate must be issued by.
    authorities: Option<&'c Authorities>,
    /// Per certificate (with authorities), once: the validity and name of the authority that
    /// issued it, or why none did.
    issuers: RwLock<HashMap<Hash512, Issuer>>,
}

/// What [`Authorities::issuer_of`] found for one certificate.
type Issuer = Result<(i64, i64, String), String>;

/// One pulse to check: text still to parse, or a pulse already in memory.
enum Source<'a> {
    Item(&'a Item),
    Pulse(&'a Pulse, Location),
}

/// Pulses checked together: one Ed25519 batch, one task for a core.
const PART: usize = 256;

impl<'c> Verifier<'c> {
    /// A verifier that knows `certs`.
    pub fn new(certs: &'c dyn CertLookup, options: Options) -> Self {
        Verifier {
            certs,
            options,
            authorities: None,
            issuers: RwLock::new(HashMap::new()),
        }
    }

    /// Also holds every certificate to `authorities` (`--ca`): it must be issued by one of
    /// them ([`Check::CertificateIssuer`](crate::report::Check::CertificateIssuer), reported
    /// once per certificate), and each pulse's timeStamp must lie within that authority's
    /// validity too.
    pub fn with_authorities(mut self, authorities: &'c Authorities) -> Self {
        self.authorities = Some(authorities);
        self
    }

    /// Checks one pulse on its own, signature included (Ed25519 strictly).
    pub fn check_pulse(&self, p: &Pulse, location: Option<Location>) -> PulseOutcome {
        let mut pending = Vec::new();
        let mut out = self.check_one(p, location, 0, &mut pending);
        check_queued(&pending, true, |job| {
            let problem = bad_signature(&out, &job.cert_id.short());
            out.problems.push(problem);
        });
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
        let mut acc = self.accumulator();
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
                            .flat_map_iter(|part| self.check_part(part))
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
        let name: Arc<str> = Arc::from("<memory>");
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
        let mut acc = self.accumulator();
        acc.absorb(
            sources
                .par_chunks(PART)
                .flat_map_iter(|part| self.check_part(part))
                .collect(),
        );
        acc.finish()
    }

    /// The accumulator for these options; a skip path wins over ordered input.
    fn accumulator(&self) -> Accumulator {
        if self.options.skip_path {
            Accumulator::skip_path()
        } else if self.options.ordered {
            Accumulator::ordered()
        } else {
            Accumulator::any_order()
        }
    }

    /// Checks one part (one task for a core): every pulse's rules, then the part's Ed25519
    /// signatures as one batch.
    fn check_part(&self, sources: &[Source]) -> Vec<PulseOutcome> {
        let mut outcomes = Vec::with_capacity(sources.len());
        let mut pending: Vec<Pending> = Vec::new();
        for source in sources {
            let o = match source {
                Source::Item(Item::Unreadable { location, message }) => {
                    PulseOutcome::unreadable(location, message.clone())
                }
                Source::Item(Item::Record { location, text }) => match parse_pulse(text) {
                    Ok(p) => {
                        self.check_one(&p, Some(location.clone()), outcomes.len(), &mut pending)
                    }
                    Err(e) => PulseOutcome::unreadable(location, e.to_string()),
                },
                Source::Pulse(p, location) => {
                    self.check_one(p, Some(location.clone()), outcomes.len(), &mut pending)
                }
            };
            outcomes.push(o);
        }
        check_queued(&pending, self.options.strict, |job| {
            let o = &mut outcomes[job.outcome];
            let p = bad_signature(o, &job.cert_id.short());
            o.problems.push(p);
        });
        outcomes
    }

    /// Every rule for one pulse on its own, with the certificate it names; an Ed25519
    /// signature is queued in `pending` as outcome `slot` of its part.
    fn check_one(
        &self,
        p: &Pulse,
        location: Option<Location>,
        slot: usize,
        pending: &mut Vec<Pending>,
    ) -> PulseOutcome {
        let certificate = self.certs.get(&p.certificate_id);
        let mut out = rules::check_pulse(p, location, certificate.clone(), slot, pending);
        if let (Some(authorities), Some(cert)) = (self.authorities, certificate) {
            self.issuer_rules(authorities, &cert, p, &mut out);
        }
        out
    }

    /// `cert` was issued by one of `authorities` (said once per certificate), and `p` lies
    /// within that authority's validity.
    fn issuer_rules(
        &self,
        authorities: &Authorities,
        cert: &Certificate,
        p: &Pulse,
        out: &mut PulseOutcome,
    ) {
        // Read-mostly: every pulse reads; a certificate's first pulse checks its issuer
        // outside the lock, and the first to record the verdict reports it.
        let known = self
            .issuers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cert.id)
            .cloned();
        let (issuer, first) = match known {
            Some(found) => (found, false),
            None => {
                let found = authorities
                    .issuer_of(cert)
                    .map(|a| (a.not_before, a.not_after, a.subject.clone()));
                let mut issuers = self.issuers.write().unwrap_or_else(|e| e.into_inner());
                let first = !issuers.contains_key(&cert.id);
                issuers.entry(cert.id).or_insert_with(|| found.clone());
                (found, first)
            }
        };
        let location = out.facts.as_ref().and_then(|f| f.location.as_ref());
        let problem = match issuer {
            Err(why) if first => Some(
                Problem::new(
                    Check::CertificateIssuer,
                    format!(
                        "certificate {} does not chain to the authorities given with --ca: {why}",
                        cert.id.short()
                    ),
                )
                .at(p.chain_index, p.pulse_index)
                .located(location)
                .field("certificateId"),
            ),
            Err(_) => None,
            Ok((not_before, not_after, subject)) => rules::outside_validity(
                p,
                location,
                &format!("the authority that issued its certificate ({subject})"),
                not_before,
                not_after,
            ),
        };
        out.problems.extend(problem);
    }
}
