//! Gathering the per-pulse outcomes into a [`Report`] and running the chain rules over them,
//! in one of three modes ([`Mode`]): as the pulses come (ordered input), at the end over the
//! sorted pulses (any order), or as a skip path.

use super::rules::PulseOutcome;
use crate::chain::{check_skip_path, ChainChecker, Facts};
use crate::hash::Hash512;
use crate::report::{Check, Problem, Report};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Called with each pulse's facts, in input order, once the pulse itself has been checked;
/// it may add problems (a replay checks source manifests here).
pub type FactsHook<'h> = &'h mut (dyn FnMut(&Facts, &mut Vec<Problem>) + Send);

/// How the chain rules meet the pulses.
enum Mode {
    /// [`super::Options::ordered`]: each pulse goes to the chain rules as it comes and is not
    /// kept, so memory stays flat; one out of order is reported, not sorted in.
    Ordered {
        /// The (chain, index) of the last pulse taken.
        last: Option<(u64, u64)>,
    },
    /// Any order, in order so far: every pulse is kept, and the chain rules have already run
    /// over the first `checked` of them.
    InOrderSoFar {
        /// How many of the kept facts the chain checker has seen.
        checked: usize,
    },
    /// Any order, and one came out of order: the chain rules run again at the end over all
    /// pulses sorted, so the outcome never depends on input order.
    OutOfOrder,
    /// [`super::Options::skip_path`]: every pulse is kept; at the end they are sorted and
    /// checked as a skip path from the oldest to the newest.
    SkipPath,
}

/// Gathers per-pulse outcomes into a report and runs the chain rules.
pub(super) struct Accumulator {
    mode: Mode,
    report: Report,
    /// The facts kept (none in [`Mode::Ordered`]).
    facts: Vec<Facts>,
    problems: Vec<Problem>,
    /// Each missing certificate, how many pulses needed it, and the problem for the first.
    missing: BTreeMap<Hash512, (u64, Problem)>,
    checker: ChainChecker,
    /// What the chain rules found while pulses came in any order: dropped and found again if
    /// one comes out of order.
    chain_problems: Vec<Problem>,
}

impl Accumulator {
    fn with_mode(mode: Mode) -> Self {
        Accumulator {
            mode,
            report: Report::default(),
            facts: Vec::new(),
            problems: Vec::new(),
            missing: BTreeMap::new(),
            checker: ChainChecker::new(),
            chain_problems: Vec::new(),
        }
    }

    /// For input in (chain, index) order: see [`Mode::Ordered`].
    pub(super) fn ordered() -> Self {
        Self::with_mode(Mode::Ordered { last: None })
    }

    /// For consecutive pulses in any order.
    pub(super) fn any_order() -> Self {
        Self::with_mode(Mode::InOrderSoFar { checked: 0 })
    }

    /// For a skip path: see [`Mode::SkipPath`].
    pub(super) fn skip_path() -> Self {
        Self::with_mode(Mode::SkipPath)
    }

    /// Takes the outcomes of one chunk of pulses, in input order.
    pub(super) fn absorb(&mut self, outcomes: Vec<PulseOutcome>) {
        self.absorb_with(outcomes, &mut None)
    }

    /// Like [`Accumulator::absorb`], calling `hook` with each pulse's facts.
    pub(super) fn absorb_with(
        &mut self,
        outcomes: Vec<PulseOutcome>,
        hook: &mut Option<FactsHook>,
    ) {
        for o in outcomes {
            self.report.pulses += 1;
            self.report.signatures_checked += u64::from(o.signature_checked);
            self.report.signatures_unchecked += u64::from(!o.signature_checked);
            self.report.output_values_checked += u64::from(o.output_checked);
            if let Some(n) = o.note {
                self.report.note(n);
            }
            if let (Some(id), Some(f)) = (o.missing_certificate, &o.facts) {
                self.count_missing(id, f);
            }
            self.problems.extend(o.problems);
            let Some(f) = o.facts else { continue };
            *self
                .report
                .variants
                .entry(f.variant.name().to_string())
                .or_default() += 1;
            if let Some(h) = hook.as_mut() {
                h(&f, &mut self.problems);
            }
            match &mut self.mode {
                Mode::Ordered { last } => {
                    Self::take_ordered(f, last, &mut self.checker, &mut self.problems)
                }
                Mode::InOrderSoFar { .. } | Mode::OutOfOrder | Mode::SkipPath => self.facts.push(f),
            }
        }
        if let Mode::InOrderSoFar { checked } = self.mode {
            self.check_new_facts(checked);
        }
    }

    /// Counts a pulse whose certificate nobody gave: one problem per certificate, placed at
    /// the first pulse that needed it.
    fn count_missing(&mut self, id: Hash512, f: &Facts) {
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

    /// [`Mode::Ordered`]: the pulse goes to the chain rules, or is reported out of order.
    fn take_ordered(
        f: Facts,
        last: &mut Option<(u64, u64)>,
        checker: &mut ChainChecker,
        problems: &mut Vec<Problem>,
    ) {
        let key = (f.chain, f.index);
        if let Some((c, i)) = last.filter(|l| key < *l) {
            problems.push(
                Problem::new(
                    Check::Order,
                    format!("out of order: after pulse {i} of chain {c}"),
                )
                .at(f.chain, f.index)
                .located(f.location.as_ref()),
            );
            return;
        }
        *last = Some(key);
        // Straight into the problems, so that the hook (a replay's checkpoint) sees them too.
        checker.push(f, problems);
    }

    /// [`Mode::InOrderSoFar`]: runs the chain rules over the facts kept since the first
    /// `checked`, while they stay in order; the first out of order ends that.
    fn check_new_facts(&mut self, checked: usize) {
        let key = |f: &Facts| (f.chain, f.index);
        let mut last = checked.checked_sub(1).map(|i| key(&self.facts[i]));
        for f in &self.facts[checked..] {
            if last.is_some_and(|l| key(f) < l) {
                self.mode = Mode::OutOfOrder;
                return;
            }
            last = Some(key(f));
            self.checker.push(f.clone(), &mut self.chain_problems);
        }
        self.mode = Mode::InOrderSoFar {
            checked: self.facts.len(),
        };
    }

    /// The report: what was counted, every problem sorted by chain and pulse.
    pub(super) fn finish(mut self) -> Report {
        for (id, (count, mut p)) in std::mem::take(&mut self.missing) {
            self.report.missing_certificates.push(id.to_hex_lower());
            p.message = format!("{} (needed by {count} pulses)", p.message);
            self.problems.push(p);
        }
        match self.mode {
            Mode::SkipPath => {
                self.facts.par_sort_by_key(|f| (f.chain, f.index));
                let hops = check_skip_path(&self.facts, &mut self.problems);
                self.report.skip_path_hops = hops.len() as u64;
            }
            Mode::Ordered { .. } | Mode::InOrderSoFar { .. } | Mode::OutOfOrder => {
                if let Mode::OutOfOrder = self.mode {
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
        }
        self.problems
            .sort_by_key(|p| (p.chain.is_some(), p.chain, p.pulse));
        self.report.problems = self.problems;
        self.report
    }
}
