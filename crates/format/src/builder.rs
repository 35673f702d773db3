//! The chain builder: from the facts of the chain so far, a fresh localRandomValue and the
//! commitment to the next one, it makes the next valid pulse. The engine publishes what it
//! builds; tests and benchmarks use it with a software key to make long valid chains.
//!
//! ```
//! use lavabeacon_format::builder::{ChainBuilder, ChainParams, NextPulse};
//! use lavabeacon_format::suite::Ed25519KeySigner;
//! use lavabeacon_format::{hash::Hash512, message::precommitment};
//!
//! let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
//! let signer = Ed25519KeySigner::new(key, Hash512([1u8; 64]));
//! let mut b = ChainBuilder::new_chain(ChainParams::new("https://beacon.example.org/beacon/2.0", 1, 60_000));
//! let values = [Hash512([0xAA; 64]), Hash512([0xBB; 64]), Hash512([0xCC; 64])];
//! let first = b.next(NextPulse::new(1_700_000_040_000, values[0], precommitment(&values[1])), &signer).unwrap();
//! let second = b.next(NextPulse::new(1_700_000_100_000, values[1], precommitment(&values[2])), &signer).unwrap();
//! assert_eq!((first.status_code, second.status_code), (1, 0));
//! assert_eq!(second.previous(), Some(&first.output_value));
//! ```

use crate::hash::Hash512;
use crate::message::{output_value, precommitment, signed_message};
use crate::pulse::{External, Externals, ListValue, Pulse, LIST_TYPES};
use crate::suite::{PulseSigner, SignError};
use crate::time::{format_time_stamp, Period, Slots};
use thiserror::Error;

/// What stays the same for every pulse of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainParams {
    /// Base of pulse URIs, e.g. `https://beacon.example.org/beacon/2.0`; pulses get
    /// `{base}/chain/{c}/pulse/{p}`.
    pub base_uri: String,
    /// The version string (`"2.0"`, as NIST writes it since 2020).
    pub version: String,
    /// chainIndex.
    pub chain_index: u64,
    /// Milliseconds between pulses.
    pub period_ms: u32,
}

impl ChainParams {
    /// Parameters with version `"2.0"`.
    pub fn new(base_uri: &str, chain_index: u64, period_ms: u32) -> Self {
        ChainParams {
            base_uri: base_uri.trim_end_matches('/').to_string(),
            version: "2.0".into(),
            chain_index,
            period_ms,
        }
    }

    /// The URI of pulse `index` of this chain.
    pub fn pulse_uri(&self, index: u64) -> String {
        format!(
            "{}/chain/{}/pulse/{}",
            self.base_uri, self.chain_index, index
        )
    }
}

/// A pulse as a link target: what later pulses need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    /// pulseIndex.
    pub index: u64,
    /// timeStamp, Unix ms.
    pub time_ms: i64,
    /// outputValue.
    pub output: Hash512,
    /// Its URI.
    pub uri: String,
}

impl LinkFacts {
    /// The link facts of a pulse (its timestamp must be readable).
    pub fn of(p: &Pulse) -> Result<LinkFacts, BuildError> {
        Ok(LinkFacts {
            index: p.pulse_index,
            time_ms: p
                .time_ms()
                .map_err(|e| BuildError::BadState(e.to_string()))?,
            output: p.output_value,
            uri: p.uri.clone(),
        })
    }
}

/// The chain so far, as the next pulse needs it: the last pulse and the first pulses of the
/// hour, day, month and year that contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    /// The last pulse.
    pub last: LinkFacts,
    /// Its precommitmentValue.
    pub last_precommitment: Hash512,
    /// First pulse of the chain in the hour, day, month and year containing `last`.
    pub first_of: [LinkFacts; 4],
}

impl ChainState {
    /// The state after `last`, given the first pulses of its hour, day, month and year (the
    /// store finds them on restart).
    pub fn resume(last: &Pulse, first_of: [&Pulse; 4]) -> Result<ChainState, BuildError> {
        Ok(ChainState {
            last: LinkFacts::of(last)?,
            last_precommitment: last.precommitment_value,
            first_of: [
                LinkFacts::of(first_of[0])?,
                LinkFacts::of(first_of[1])?,
                LinkFacts::of(first_of[2])?,
                LinkFacts::of(first_of[3])?,
            ],
        })
    }
}

/// The inputs of the next pulse.
#[derive(Debug, Clone)]
pub struct NextPulse {
    /// Its timestamp, Unix ms: a multiple of the period, after the last pulse.
    pub time_ms: i64,
    /// Its localRandomValue.
    pub local_random_value: Hash512,
    /// The precommitment to the following pulse's localRandomValue.
    pub precommitment: Hash512,
    /// The external value (zeros when there is none).
    pub external: External,
    /// Set when the value committed to last time was lost: the pulse gets statusCode 3.
    pub commitment_lost: bool,
}

impl NextPulse {
    /// Inputs with no external value and the commitment kept.
    pub fn new(time_ms: i64, local_random_value: Hash512, precommitment: Hash512) -> Self {
        NextPulse {
            time_ms,
            local_random_value,
            precommitment,
            external: External::NONE,
            commitment_lost: false,
        }
    }
}

/// Why the next pulse could not be built.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The timestamp is not a multiple of the period.
    #[error("timestamp {0} ms is not a multiple of the period")]
    NotOnPeriod(i64),
    /// The timestamp is not after the last pulse.
    #[error("timestamp {time} ms is not after the last pulse's ({last} ms)")]
    NotAfterLast {
        /// The new time.
        time: i64,
        /// The last pulse's.
        last: i64,
    },
    /// The localRandomValue does not match what the last pulse committed to.
    #[error("localRandomValue does not match the last pulse's precommitment (set commitment_lost if it was lost)")]
    CommitmentMismatch,
    /// statusCode 3 needs a gap (spec §5); a lost commitment without one cannot be published.
    #[error("a lost commitment needs a gap of at least one period before the next pulse")]
    LostWithoutGap,
    /// The timestamp cannot be written.
    #[error("timestamp {0} ms is out of range")]
    OutOfRange(i64),
    /// The chain state is unusable.
    #[error("chain state: {0}")]
    BadState(String),
    /// The signer failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Builds the pulses of one chain, one after another.
#[derive(Debug, Clone)]
pub struct ChainBuilder {
    params: ChainParams,
    state: Option<ChainState>,
}

impl ChainBuilder {
    /// A builder whose next pulse starts the chain (pulseIndex 1, statusCode 1).
    pub fn new_chain(params: ChainParams) -> Self {
        ChainBuilder {
            params,
            state: None,
        }
    }

    /// A builder that continues a chain from `state`.
    pub fn resume(params: ChainParams, state: ChainState) -> Self {
        ChainBuilder {
            params,
            state: Some(state),
        }
    }

    /// The chain parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The state after the last pulse built (None before the first).
    pub fn state(&self) -> Option<&ChainState> {
        self.state.as_ref()
    }

    /// Builds and signs the next pulse, and advances the state.
    pub fn next(
        &mut self,
        input: NextPulse,
        signer: &dyn PulseSigner,
    ) -> Result<Pulse, BuildError> {
        let slots = match Slots::new(self.params.period_ms) {
            Some(s) if s.is_slot(input.time_ms) => s,
            _ => return Err(BuildError::NotOnPeriod(input.time_ms)),
        };
        let period = slots.period_ms();
        let time_stamp =
            format_time_stamp(input.time_ms).ok_or(BuildError::OutOfRange(input.time_ms))?;
        let (index, status, list_values) = match &self.state {
            None => {
                let zeros = LIST_TYPES
                    .iter()
                    .map(|t| ListValue {
                        uri: None,
                        kind: t.to_string(),
                        value: Hash512::ZERO,
                    })
                    .collect();
                (1, 1, zeros)
            }
            Some(s) => {
                let dt = input.time_ms - s.last.time_ms;
                if dt <= 0 {
                    return Err(BuildError::NotAfterLast {
                        time: input.time_ms,
                        last: s.last.time_ms,
                    });
                }
                let status = if input.commitment_lost {
                    if dt == period {
                        return Err(BuildError::LostWithoutGap);
                    }
                    3
                } else if precommitment(&input.local_random_value) != s.last_precommitment {
                    return Err(BuildError::CommitmentMismatch);
                } else if dt > period {
                    2
                } else {
                    0
                };
                let mut list = vec![ListValue {
                    uri: Some(s.last.uri.clone()),
                    kind: "previous".into(),
                    value: s.last.output,
                }];
                for (p, f) in Period::ALL.iter().zip(&s.first_of) {
                    list.push(ListValue {
                        uri: Some(f.uri.clone()),
                        kind: p.name().into(),
                        value: f.output,
                    });
                }
                (s.last.index + 1, status, list)
            }
        };
        let mut pulse = Pulse {
            uri: self.params.pulse_uri(index),
            version: self.params.version.clone(),
            cipher_suite: signer.cipher_suite(),
            period: self.params.period_ms,
            certificate_id: signer.certificate_id(),
            chain_index: self.params.chain_index,
            pulse_index: index,
            time_stamp,
            local_random_value: input.local_random_value,
            external: Externals::One(input.external),
            list_values,
            precommitment_value: input.precommitment,
            status_code: status,
            signature_value: Vec::new(),
            output_value: Hash512::ZERO,
            hashed_message: None,
            sloth: None,
        };
        let m = signed_message(&pulse);
        pulse.signature_value = signer.sign(&m)?;
        pulse.output_value = output_value(&m, &pulse.signature_value);
        self.advance(&pulse);
        Ok(pulse)
    }

    fn advance(&mut self, p: &Pulse) {
        let link = LinkFacts {
            index: p.pulse_index,
            time_ms: p.time_ms().expect("built from a valid time"),
            output: p.output_value,
            uri: p.uri.clone(),
        };
        let first_of = match self.state.take() {
            None => std::array::from_fn(|_| link.clone()),
            Some(s) => {
                let mut f = s.first_of;
                for (slot, period) in f.iter_mut().zip(Period::ALL) {
                    if period.start_of(link.time_ms) != period.start_of(s.last.time_ms) {
                        *slot = link.clone();
                    }
                }
                f
            }
        };
        self.state = Some(ChainState {
            last: link,
            last_precommitment: p.precommitment_value,
            first_of,
        });
    }
}
