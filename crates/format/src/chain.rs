//! Chain rules between pulses (spec §5–§7), enforced once here for every caller: the offline
//! verifier, auditors' replays and the store's check before every append.
//!
//! The link rule (previous = the earlier pulse's outputValue, a later time: [`link_breaks`])
//! and the append rule built on it ([`check_append`]: the next index too) are written once,
//! at the end of this file; the store calls `check_append` before every append. (Over 400
//! lines for that reason: the whole-chain checks and the append rule share the link rule.)
//!
//! [`ChainChecker`] consumes [`Facts`] in (chainIndex, pulseIndex) order and keeps O(1) state
//! per chain, so a replay of millions of pulses runs in flat memory.

use crate::hash::Hash512;
use crate::input::Location;
use crate::pulse::{Pulse, LIST_TYPES};
use crate::report::{Check, Problem};
use crate::time::Period;
use crate::variant::Variant;

/// What the chain rules need to know of one pulse, once its own checks are done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// chainIndex.
    pub chain: u64,
    /// pulseIndex.
    pub index: u64,
    /// timeStamp in Unix milliseconds, if readable.
    pub time_ms: Option<i64>,
    /// period in milliseconds.
    pub period: u32,
    /// statusCode.
    pub status: u32,
    /// Which beacon's rules apply.
    pub variant: Variant,
    /// outputValue.
    pub output: Hash512,
    /// precommitmentValue.
    pub precommitment: Hash512,
    /// What the previous pulse's precommitmentValue must be (the variant's hash of
    /// localRandomValue).
    pub commitment: Hash512,
    /// The listValues by type: previous, hour, day, month, year.
    pub list: [Option<Hash512>; 5],
    /// Where the pulse is in the input, when known.
    pub location: Option<Location>,
}

impl Facts {
    /// The facts of a pulse.
    pub fn of(p: &Pulse, location: Option<Location>) -> Facts {
        let variant = Variant::detect(p);
        let mut list = [None; 5];
        for (slot, kind) in list.iter_mut().zip(LIST_TYPES) {
            *slot = p.list_value(kind).copied();
        }
        Facts {
            chain: p.chain_index,
            index: p.pulse_index,
            time_ms: p.time_ms().ok(),
            period: p.period,
            status: p.status_code,
            variant,
            output: p.output_value,
            precommitment: p.precommitment_value,
            commitment: variant.commitment_of(&p.local_random_value),
            list,
            location,
        }
    }

    fn problem(&self, check: Check, message: impl Into<String>) -> Problem {
        Problem::new(check, message)
            .at(self.chain, self.index)
            .located(self.location.as_ref())
    }
}

#[derive(Debug, Clone, Copy)]
struct Link {
    index: u64,
    time_ms: Option<i64>,
    output: Hash512,
    precommitment: Hash512,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    start: i64,
    index: u64,
    output: Hash512,
}

/// Checks the rules between consecutive pulses and recomputes skip-list values.
#[derive(Debug, Default)]
pub struct ChainChecker {
    chain: Option<u64>,
    /// The pulse just before, whatever its status.
    prev: Option<(Link, u32, Option<Location>)>,
    /// The pulse the next valid pulse links to (the previous one, or for CLCERT the closest
    /// earlier valid one), while no index is missing in between.
    link_to: Option<Link>,
    /// The first pulse of the hour/day/month/year it lies in, where that is known for sure.
    first_of: [Option<Anchor>; 4],
    /// Links checked so far.
    pub links: u64,
    /// Skip-list values recomputed so far.
    pub skip_links: u64,
}

impl ChainChecker {
    /// A checker with no state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `f` against the pulses pushed before it; problems go to `out`.
    pub fn push(&mut self, f: Facts, out: &mut Vec<Problem>) {
        if self.chain != Some(f.chain) {
            *self = ChainChecker {
                chain: Some(f.chain),
                links: self.links,
                skip_links: self.skip_links,
                ..Default::default()
            };
        }
        let link = Link {
            index: f.index,
            time_ms: f.time_ms,
            output: f.output,
            precommitment: f.precommitment,
        };
        let mut direct_prev = None;
        if let Some((p, p_status, p_loc)) = &self.prev {
            if p.index == f.index {
                let (check, msg) = if p.output == f.output {
                    (Check::Duplicate, "the same pulse appears twice".to_string())
                } else {
                    (
                        Check::Fork,
                        "two different pulses have this chain and pulse index: the chain forks"
                            .to_string(),
                    )
                };
                let also = p_loc
                    .as_ref()
                    .map(|l| format!(" (the other at {l})"))
                    .unwrap_or_default();
                out.push(f.problem(check, format!("{msg}{also}")).field("pulseIndex"));
                return;
            }
            if p.index > f.index {
                out.push(
                    f.problem(
                        Check::Order,
                        "pulse comes after a pulse with a higher index",
                    )
                    .field("pulseIndex")
                    .values(format!("more than {}", p.index), f.index),
                );
                return;
            }
            if p.index + 1 == f.index {
                direct_prev = Some((*p, *p_status));
            } else {
                self.link_to = None; // a missing index: nothing links across it
            }
        }
        let valid = f.variant.is_link_valid(f.status);
        if valid {
            if let Some(a) = self.link_to {
                self.check_link(&a, &f, out);
            }
            if f.status != 1 {
                self.check_skip_values(direct_prev.map(|(p, _)| p), &f, out);
            }
        }
        self.update_anchors(direct_prev.map(|(p, _)| p), &f);
        if valid {
            self.link_to = Some(link);
        }
        self.prev = Some((link, f.status, f.location));
    }

    fn check_link(&mut self, a: &Link, b: &Facts, out: &mut Vec<Problem>) {
        self.links += 1;
        let [previous, order] = link_breaks(&a.output, a.time_ms, b.list[0].as_ref(), b.time_ms);
        match previous {
            Some(LinkBreak::PreviousWrong(v)) => out.push(
                b.problem(
                    Check::Previous,
                    format!("is not pulse {}'s outputValue", a.index),
                )
                .field("listValues.previous")
                .values(a.output, v),
            ),
            Some(LinkBreak::PreviousMissing) => out.push(
                b.problem(Check::Previous, "missing")
                    .field("listValues.previous"),
            ),
            _ => {}
        }
        let honoured = a.precommitment == b.commitment;
        let excused = b.status == 3 && b.variant != Variant::Clcert;
        if !honoured && !excused {
            out.push(
                b.problem(
                    Check::Precommitment,
                    format!(
                        "does not match pulse {}'s precommitmentValue (statusCode {} does not excuse it)",
                        a.index, b.status
                    ),
                )
                .field("localRandomValue")
                .values(format!("a value whose hash is {}", a.precommitment), format!("one whose hash is {}", b.commitment)),
            );
        }
        if let Some(LinkBreak::NotLater(dt)) = order {
            out.push(
                b.problem(
                    Check::Order,
                    format!(
                        "timeStamp is not after pulse {}'s ({} ms difference)",
                        a.index, dt
                    ),
                )
                .field("timeStamp"),
            );
            return;
        }
        let (Some(ta), Some(tb)) = (a.time_ms, b.time_ms) else {
            return;
        };
        let dt = tb - ta;
        if b.variant == Variant::Clcert {
            return; // CLCERT's 101-103 status codes do not state gaps the NIST way
        }
        let period = i64::from(b.period);
        match b.status {
            0 if dt != period => out.push(
                b.problem(
                    Check::Period,
                    format!(
                        "statusCode 0 says no gap, but pulse {} is {} ms earlier",
                        a.index, dt
                    ),
                )
                .field("timeStamp")
                .values(
                    format!("{period} ms after the previous pulse"),
                    format!("{dt} ms"),
                ),
            ),
            2 | 3 if dt <= period => out.push(
                b.problem(
                    Check::Period,
                    format!(
                        "statusCode {} says there was a gap, but pulse {} is only {} ms earlier",
                        b.status, a.index, dt
                    ),
                )
                .field("statusCode")
                .values(0, b.status),
            ),
            _ => {}
        }
    }

    fn check_skip_values(&mut self, direct_prev: Option<Link>, f: &Facts, out: &mut Vec<Problem>) {
        // The skip values point into the periods containing pulse i-1. Its time is known when it
        // is present, or, with statusCode 0, exactly one period before this pulse.
        let prev_time = match (direct_prev.and_then(|p| p.time_ms), f.time_ms) {
            (Some(t), _) => Some(t),
            (None, Some(t)) if f.status == 0 => Some(t - i64::from(f.period)),
            _ => None,
        };
        let Some(prev_time) = prev_time else { return };
        for (i, period) in Period::ALL.into_iter().enumerate() {
            let Some(anchor) = self.first_of[i] else {
                continue;
            };
            if Some(anchor.start) != period.start_of(prev_time) || anchor.index >= f.index {
                continue;
            }
            self.skip_links += 1;
            let slot = period.list_position();
            match f.list[slot] {
                Some(v) if v == anchor.output => {}
                Some(v) => out.push(
                    f.problem(
                        Check::SkipValue,
                        format!("is not the outputValue of pulse {}, the chain's first pulse in that {}", anchor.index, period.name()),
                    )
                    .field(&format!("listValues.{}", period.name()))
                    .values(anchor.output, v),
                ),
                None => out.push(f.problem(Check::SkipValue, "missing").field(&format!("listValues.{}", period.name()))),
            }
        }
    }

    fn update_anchors(&mut self, direct_prev: Option<Link>, f: &Facts) {
        let Some(t) = f.time_ms else { return };
        for (i, period) in Period::ALL.into_iter().enumerate() {
            let Some(start) = period.start_of(t) else {
                continue;
            };
            // f is the first of its period if the chain starts with it, or if pulse i-1 lies
            // in an earlier period (its time known directly or through statusCode 0).
            let prev_time = match direct_prev {
                Some(p) => p.time_ms,
                None if f.status == 0 && f.index > 1 => Some(t - i64::from(f.period)),
                None => None,
            };
            let first = f.index == 1
                || prev_time
                    .and_then(|pt| period.start_of(pt))
                    .is_some_and(|ps| ps < start);
            if first {
                self.first_of[i] = Some(Anchor {
                    start,
                    index: f.index,
                    output: f.output,
                });
            }
        }
    }
}

/// One hop of a skip path: `to` names `from`'s outputValue in its listValues entry `via`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hop {
    /// pulseIndex of the older pulse.
    pub from: u64,
    /// pulseIndex of the newer pulse.
    pub to: u64,
    /// The listValues type that links them.
    pub via: &'static str,
}

/// Checks that `path` (oldest first) is a skip path (spec §6): same chain, strictly increasing
/// index and time, and each pulse's listValues naming the one before it. Each pulse's own
/// signature and outputValue are the caller's to check.
pub fn check_skip_path(path: &[Facts], out: &mut Vec<Problem>) -> Vec<Hop> {
    let mut hops = Vec::new();
    for w in path.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.chain != b.chain {
            out.push(
                b.problem(
                    Check::SkipPath,
                    format!(
                        "is in chain {}, the path so far in chain {}",
                        b.chain, a.chain
                    ),
                )
                .field("chainIndex"),
            );
            continue;
        }
        if b.index <= a.index || matches!((a.time_ms, b.time_ms), (Some(x), Some(y)) if y <= x) {
            out.push(
                b.problem(
                    Check::SkipPath,
                    format!("does not come after pulse {}", a.index),
                )
                .field("pulseIndex"),
            );
            continue;
        }
        match b.list.iter().position(|v| *v == Some(a.output)) {
            Some(i) => hops.push(Hop {
                from: a.index,
                to: b.index,
                via: LIST_TYPES[i],
            }),
            None => out.push(
                b.problem(
                    Check::SkipPath,
                    format!(
                        "no listValues entry is pulse {}'s outputValue {}",
                        a.index,
                        a.output.short()
                    ),
                )
                .field("listValues"),
            ),
        }
    }
    hops
}

// ---------------------------------------------------------------------------------------------
// The link rule and the append rule: written once, here, for the verifier above and the store.

/// The newest stored pulse of a chain, as an append sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// pulseIndex.
    pub index: u64,
    /// timeStamp, Unix milliseconds.
    pub time_ms: i64,
    /// outputValue.
    pub output: Hash512,
}

/// How a pulse fails to link to the pulse it follows (see [`link_breaks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkBreak {
    /// It has no listValues entry of type previous.
    PreviousMissing,
    /// Its previous value (this one) is not the earlier pulse's outputValue.
    PreviousWrong(Hash512),
    /// Its timeStamp is not after the earlier pulse's: the difference, ms (zero or less).
    NotLater(i64),
}

/// The link rule between a pulse and the valid pulse it follows (spec §5): its previous value
/// is that pulse's outputValue, and its time is later. Gives what breaks, in that order, as
/// [previous, time]; a time that is not known is not checked.
pub fn link_breaks(
    earlier_output: &Hash512,
    earlier_time_ms: Option<i64>,
    previous: Option<&Hash512>,
    time_ms: Option<i64>,
) -> [Option<LinkBreak>; 2] {
    let previous = match previous {
        Some(v) if v == earlier_output => None,
        Some(v) => Some(LinkBreak::PreviousWrong(*v)),
        None => Some(LinkBreak::PreviousMissing),
    };
    let time = match (earlier_time_ms, time_ms) {
        (Some(a), Some(b)) if b - a <= 0 => Some(LinkBreak::NotLater(b - a)),
        _ => None,
    };
    [previous, time]
}

/// Why a pulse may not be appended to a chain (see [`check_append`]). `Display` says it in a
/// sentence for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendRefusal {
    /// The chain is empty and the pulse is not its pulse 1.
    NotFirst {
        /// chainIndex.
        chain: u64,
    },
    /// A new chain starts at or before the newest stored pulse (of any chain).
    NewChainTooEarly {
        /// The newest stored time, Unix ms.
        newest_ms: i64,
    },
    /// The pulse's index is not the one after the head's.
    NotNext {
        /// chainIndex.
        chain: u64,
        /// The head's pulseIndex.
        head: u64,
    },
    /// The pulse does not link to the head.
    Link {
        /// The head's pulseIndex.
        head: u64,
        /// How.
        broken: LinkBreak,
    },
}

impl std::fmt::Display for AppendRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendRefusal::NotFirst { chain } => {
                write!(f, "chain {chain} is empty, so the next pulse is 1")
            }
            AppendRefusal::NewChainTooEarly { newest_ms } => write!(
                f,
                "a new chain must start after the newest stored pulse ({newest_ms} ms)"
            ),
            AppendRefusal::NotNext { chain, head } => write!(
                f,
                "the head of chain {chain} is pulse {head}, so the next is {}",
                head + 1
            ),
            AppendRefusal::Link {
                head,
                broken: LinkBreak::PreviousMissing | LinkBreak::PreviousWrong(_),
            } => write!(f, "previous is not the outputValue of pulse {head}"),
            AppendRefusal::Link {
                head,
                broken: LinkBreak::NotLater(_),
            } => write!(f, "timeStamp is not after pulse {head}'s"),
        }
    }
}

/// The append rule: `next` (whose time is `next_time_ms`) may be appended to its chain if it
/// extends `head`, the chain's newest pulse: the next index, and the link rule
/// ([`link_breaks`]). With no head (an empty chain) it must be pulse 1 and come after
/// `newest_ms`, the newest stored pulse of any chain. The store calls this before every
/// append; the chain's own checks of a whole chain ([`ChainChecker`]) share the link rule.
pub fn check_append(
    next: &Pulse,
    next_time_ms: i64,
    head: Option<&Head>,
    newest_ms: Option<i64>,
) -> Result<(), AppendRefusal> {
    let Some(head) = head else {
        if next.pulse_index != 1 {
            return Err(AppendRefusal::NotFirst {
                chain: next.chain_index,
            });
        }
        return match newest_ms {
            Some(newest_ms) if next_time_ms <= newest_ms => {
                Err(AppendRefusal::NewChainTooEarly { newest_ms })
            }
            _ => Ok(()),
        };
    };
    if Some(next.pulse_index) != head.index.checked_add(1) {
        return Err(AppendRefusal::NotNext {
            chain: next.chain_index,
            head: head.index,
        });
    }
    let breaks = link_breaks(
        &head.output,
        Some(head.time_ms),
        next.previous(),
        Some(next_time_ms),
    );
    match breaks.into_iter().flatten().next() {
        Some(broken) => Err(AppendRefusal::Link {
            head: head.index,
            broken,
        }),
        None => Ok(()),
    }
}
