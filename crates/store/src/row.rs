//! The one mapping between a [`Pulse`] and a database row, shared by both backends.

use crate::StoreError;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::pulse::{External, Externals, ListValue, LIST_TYPES};
use lavabeacon_format::time::{format_time_stamp, parse_time_stamp};
use lavabeacon_format::Pulse;
use serde::{Deserialize, Serialize};

#[derive(sqlx::FromRow)]
pub(crate) struct PulseRow {
    pub chain_index: i64,
    pub pulse_index: i64,
    pub time_ms: i64,
    pub uri: String,
    pub version: String,
    pub cipher_suite: i64,
    pub period: i64,
    pub certificate_id: Vec<u8>,
    pub local_random_value: Vec<u8>,
    pub ext_source_id: Option<Vec<u8>>,
    pub ext_status: i64,
    pub ext_value: Option<Vec<u8>>,
    pub previous_value: Vec<u8>,
    pub hour_value: Vec<u8>,
    pub day_value: Vec<u8>,
    pub month_value: Vec<u8>,
    pub year_value: Vec<u8>,
    pub previous_index: Option<i64>,
    pub hour_index: Option<i64>,
    pub day_index: Option<i64>,
    pub month_index: Option<i64>,
    pub year_index: Option<i64>,
    pub precommitment: Vec<u8>,
    pub status_code: i64,
    pub signature: Vec<u8>,
    pub output_value: Vec<u8>,
    pub extra: Option<String>,
}

/// What a row cannot derive from its columns, kept so that storing loses nothing.
#[derive(Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Extra {
    /// The timestamp text, when it is not the canonical form of `time_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    time_stamp: Option<String>,
    /// The list URIs, when they do not follow `{base}/pulse/{index}` of the pulse's own URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    list_uris: Option<Vec<Option<String>>>,
}

/// The URI of pulse `index` of the same chain as a pulse with URI `uri` and index `own`.
fn sibling_uri(uri: &str, own: u64, index: u64) -> Option<String> {
    let base = uri.strip_suffix(&own.to_string())?;
    base.ends_with("/pulse/").then(|| format!("{base}{index}"))
}

fn index_in_uri(uri: &str) -> Option<u64> {
    uri.rsplit('/').next()?.parse().ok()
}

fn int(field: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| {
        StoreError::Unsupported(format!("{field} {v} does not fit a database integer"))
    })
}

fn opt_hash(h: &Hash512) -> Option<Vec<u8>> {
    (!h.is_zero()).then(|| h.0.to_vec())
}

impl PulseRow {
    /// The row for a pulse. Only NIST-shaped pulses are stored: one external value and the five
    /// list values in order (CLCERT's list of externals is verified, never published by us).
    pub fn from_pulse(p: &Pulse) -> Result<PulseRow, StoreError> {
        let external = match &p.external {
            Externals::One(e) => *e,
            Externals::List(_) => {
                return Err(StoreError::Unsupported(
                    "a list of external values (CLCERT) cannot be stored".into(),
                ))
            }
        };
        if p.hashed_message.is_some() || p.sloth.is_some() {
            return Err(StoreError::Unsupported(
                "CLCERT's hashedMessage and Sloth witness cannot be stored".into(),
            ));
        }
        let kinds: Vec<&str> = p.list_values.iter().map(|l| l.kind.as_str()).collect();
        if kinds != LIST_TYPES {
            return Err(StoreError::Unsupported(format!(
                "listValues must be {} in that order, found {}",
                LIST_TYPES.join(","),
                kinds.join(",")
            )));
        }
        let time_ms =
            parse_time_stamp(&p.time_stamp).map_err(|e| StoreError::Unsupported(e.to_string()))?;
        let mut extra = Extra::default();
        if format_time_stamp(time_ms).as_deref() != Some(p.time_stamp.as_str()) {
            extra.time_stamp = Some(p.time_stamp.clone());
        }
        let mut indexes = [None; 5];
        let mut derivable = true;
        for (slot, l) in indexes.iter_mut().zip(&p.list_values) {
            if let Some(u) = &l.uri {
                *slot = index_in_uri(u);
                let rebuilt = slot.and_then(|i| sibling_uri(&p.uri, p.pulse_index, i));
                derivable &= rebuilt.as_deref() == Some(u.as_str());
            }
        }
        if !derivable {
            extra.list_uris = Some(p.list_values.iter().map(|l| l.uri.clone()).collect());
        }
        let idx = |i: usize| indexes[i].map(|v| int("list index", v)).transpose();
        Ok(PulseRow {
            chain_index: int("chainIndex", p.chain_index)?,
            pulse_index: int("pulseIndex", p.pulse_index)?,
            time_ms,
            uri: p.uri.clone(),
            version: p.version.clone(),
            cipher_suite: i64::from(p.cipher_suite),
            period: i64::from(p.period),
            certificate_id: p.certificate_id.0.to_vec(),
            local_random_value: p.local_random_value.0.to_vec(),
            ext_source_id: opt_hash(&external.source_id),
            ext_status: i64::from(external.status_code),
            ext_value: opt_hash(&external.value),
            previous_value: p.list_values[0].value.0.to_vec(),
            hour_value: p.list_values[1].value.0.to_vec(),
            day_value: p.list_values[2].value.0.to_vec(),
            month_value: p.list_values[3].value.0.to_vec(),
            year_value: p.list_values[4].value.0.to_vec(),
            previous_index: idx(0)?,
            hour_index: idx(1)?,
            day_index: idx(2)?,
            month_index: idx(3)?,
            year_index: idx(4)?,
            precommitment: p.precommitment_value.0.to_vec(),
            status_code: i64::from(p.status_code),
            signature: p.signature_value.clone(),
            output_value: p.output_value.0.to_vec(),
            extra: (extra != Extra::default())
                .then(|| serde_json::to_string(&extra).expect("extra serialises")),
        })
    }

    /// The pulse this row holds.
    pub fn into_pulse(self) -> Result<Pulse, StoreError> {
        let at = format!("pulse {}/{}", self.chain_index, self.pulse_index);
        let corrupt = |what: &str| StoreError::Corrupt(format!("{at}: {what}"));
        let hash = |what: &str, v: &[u8]| -> Result<Hash512, StoreError> {
            v.try_into()
                .map(Hash512)
                .map_err(|_| corrupt(&format!("{what} is {} bytes, not 64", v.len())))
        };
        let opt = |what: &str, v: &Option<Vec<u8>>| {
            v.as_deref().map_or(Ok(Hash512::ZERO), |b| hash(what, b))
        };
        let u32_of = |what: &str, v: i64| {
            u32::try_from(v).map_err(|_| corrupt(&format!("{what} {v} out of range")))
        };
        let extra: Extra = match &self.extra {
            Some(t) => serde_json::from_str(t).map_err(|e| corrupt(&format!("extra: {e}")))?,
            None => Extra::default(),
        };
        let pulse_index = self.pulse_index as u64;
        let values = [
            &self.previous_value,
            &self.hour_value,
            &self.day_value,
            &self.month_value,
            &self.year_value,
        ];
        let indexes = [
            self.previous_index,
            self.hour_index,
            self.day_index,
            self.month_index,
            self.year_index,
        ];
        let mut list_values = Vec::with_capacity(5);
        for (i, kind) in LIST_TYPES.iter().enumerate() {
            let uri = match &extra.list_uris {
                Some(uris) => uris.get(i).cloned().flatten(),
                None => indexes[i].and_then(|ix| sibling_uri(&self.uri, pulse_index, ix as u64)),
            };
            list_values.push(ListValue {
                uri,
                kind: kind.to_string(),
                value: hash(kind, values[i])?,
            });
        }
        let time_stamp = match extra.time_stamp {
            Some(t) => t,
            None => format_time_stamp(self.time_ms).ok_or_else(|| corrupt("time out of range"))?,
        };
        Ok(Pulse {
            certificate_id: hash("certificate_id", &self.certificate_id)?,
            local_random_value: hash("local_random_value", &self.local_random_value)?,
            external: Externals::One(External {
                source_id: opt("ext_source_id", &self.ext_source_id)?,
                status_code: u32_of("ext_status", self.ext_status)?,
                value: opt("ext_value", &self.ext_value)?,
            }),
            precommitment_value: hash("precommitment", &self.precommitment)?,
            output_value: hash("output_value", &self.output_value)?,
            cipher_suite: u32_of("cipher_suite", self.cipher_suite)?,
            period: u32_of("period", self.period)?,
            status_code: u32_of("status_code", self.status_code)?,
            uri: self.uri,
            version: self.version,
            chain_index: self.chain_index as u64,
            pulse_index,
            time_stamp,
            list_values,
            signature_value: self.signature,
            hashed_message: None,
            sloth: None,
        })
    }
}

/// Binds a row's columns, in `COLUMNS` order, to a query builder's value list.
macro_rules! push_row {
    ($b:expr, $r:expr) => {{
        let r = $r;
        $b.push_bind(r.chain_index)
            .push_bind(r.pulse_index)
            .push_bind(r.time_ms)
            .push_bind(r.uri)
            .push_bind(r.version)
            .push_bind(r.cipher_suite)
            .push_bind(r.period)
            .push_bind(r.certificate_id)
            .push_bind(r.local_random_value)
            .push_bind(r.ext_source_id)
            .push_bind(r.ext_status)
            .push_bind(r.ext_value)
            .push_bind(r.previous_value)
            .push_bind(r.hour_value)
            .push_bind(r.day_value)
            .push_bind(r.month_value)
            .push_bind(r.year_value)
            .push_bind(r.previous_index)
            .push_bind(r.hour_index)
            .push_bind(r.day_index)
            .push_bind(r.month_index)
            .push_bind(r.year_index)
            .push_bind(r.precommitment)
            .push_bind(r.status_code)
            .push_bind(r.signature)
            .push_bind(r.output_value)
            .push_bind(r.extra);
    }};
}
pub(crate) use push_row;
