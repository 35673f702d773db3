//! The pulse: one signed record of the beacon, field for field as NIST Randomness Beacon 2.0
//! publishes it (spec §1).

use crate::hash::Hash512;
use crate::time::{self, Period, TimeError};

/// One pulse. Field order is NIST's JSON order, which is also the order of the signed message.
///
/// Text fields that are signed (`uri`, `version`, `timeStamp`) are kept exactly as received,
/// because normalising them would change the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulse {
    /// URI of this pulse.
    pub uri: String,
    /// `"Version 2.0"` (NIST until 2020) or `"2.0"`: signed, never normalised.
    pub version: String,
    /// 0 = RSA PKCS#1 v1.5 / SHA-512, 1 = CLCERT's RSA-PSS / SHA3-512, 2 = Ed25519.
    pub cipher_suite: u32,
    /// Milliseconds between pulses.
    pub period: u32,
    /// SHA-512 of the DER of the signing certificate.
    pub certificate_id: Hash512,
    /// Chain number, from 1.
    pub chain_index: u64,
    /// Position in the chain, from 1.
    pub pulse_index: u64,
    /// The signed timestamp text, canonically `YYYY-MM-DDTHH:MM:SS.000Z`.
    pub time_stamp: String,
    /// 512 fresh random bits made by the beacon.
    pub local_random_value: Hash512,
    /// The external input: one object (NIST) or a list (CLCERT).
    pub external: Externals,
    /// The skip list: `previous`, `hour`, `day`, `month`, `year`.
    pub list_values: Vec<ListValue>,
    /// SHA-512 of the next pulse's localRandomValue.
    pub precommitment_value: Hash512,
    /// 0 intact, 1 chain start, 2 gap, 3 gap with a broken precommitment.
    pub status_code: u32,
    /// The signature over the signed message M, big-endian bytes.
    pub signature_value: Vec<u8>,
    /// SHA-512(M ‖ signature) for NIST; see [`crate::Variant`] for others.
    pub output_value: Hash512,
    /// CLCERT only: SHA3-512(M).
    pub hashed_message: Option<Hash512>,
    /// CLCERT only: the Sloth slow-hash witness behind outputValue.
    pub sloth: Option<SlothWitness>,
}

/// CLCERT's Sloth witness: outputValue = SHA3-512(witness as hex text), and `iterations`
/// modular square roots lead from SHA3-512(M ‖ signature) to the witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlothWitness {
    /// The witness as published: lower-case hex of an integer, without leading zeros. Kept as
    /// text because outputValue hashes the text.
    pub witness: String,
    /// The number of Sloth iterations.
    pub iterations: u32,
}

/// The `external` field: NIST publishes one object, CLCERT a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Externals {
    /// A single `{sourceId, statusCode, value}` object.
    One(External),
    /// A list of them, each signed in turn.
    List(Vec<External>),
}

impl Externals {
    /// The external values in signing order.
    pub fn as_slice(&self) -> &[External] {
        match self {
            Externals::One(e) => std::slice::from_ref(e),
            Externals::List(v) => v,
        }
    }
}

/// One external input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct External {
    /// SHA-512 of a description of the source (zeros when there is none).
    pub source_id: Hash512,
    /// The source's status.
    pub status_code: u32,
    /// SHA-512 of the external value (zeros when there is none).
    pub value: Hash512,
}

impl External {
    /// What NIST publishes when it uses no external source.
    pub const NONE: External = External {
        source_id: Hash512::ZERO,
        status_code: 0,
        value: Hash512::ZERO,
    };
}

/// One skip-list entry. Only `value` is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListValue {
    /// URI of the pulse this entry points to; `None` (JSON null) at a chain start.
    pub uri: Option<String>,
    /// `previous`, `hour`, `day`, `month` or `year`.
    pub kind: String,
    /// The outputValue of the pulse pointed to.
    pub value: Hash512,
}

/// The skip-list entry types, in the order they appear in `listValues`.
pub const LIST_TYPES: [&str; 5] = ["previous", "hour", "day", "month", "year"];

impl Pulse {
    /// The signed timestamp as Unix milliseconds.
    pub fn time_ms(&self) -> Result<i64, TimeError> {
        time::parse_time_stamp(&self.time_stamp)
    }

    /// The value of the skip-list entry of type `kind`, if present.
    pub fn list_value(&self, kind: &str) -> Option<&Hash512> {
        self.list_values
            .iter()
            .find(|l| l.kind == kind)
            .map(|l| &l.value)
    }

    /// The `previous` entry's value.
    pub fn previous(&self) -> Option<&Hash512> {
        self.list_value("previous")
    }

    /// The entry for a calendar period.
    pub fn period_value(&self, p: Period) -> Option<&Hash512> {
        self.list_value(p.name())
    }

    /// The type of the first listValues entry that names `older`'s outputValue: how this pulse
    /// links to it in a skip path (spec §6), if it does.
    pub fn linked_by(&self, older: &Pulse) -> Option<&str> {
        self.list_values
            .iter()
            .find(|l| l.value == older.output_value)
            .map(|l| l.kind.as_str())
    }
}
