//! NIST's JSON forms of a pulse: reading `{"pulse": {...}}` or a bare pulse object, and writing
//! the NIST shape back (field order preserved, so parse → serialise keeps M identical).
//!
//! Reading whole files (arrays, JSON Lines, several objects) is in [`crate::input`].
//!
//! About 400 lines, and kept whole on purpose: the read shape (`RawPulse`) and the write shape
//! (`OutPulse`) list the same fields in the same order, and side by side a field added to one
//! is seen missing from the other.

use crate::hash::Hash512;
use crate::pulse::{External, Externals, ListValue, Pulse, SlothWitness};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use thiserror::Error;

/// Why a JSON text is not a pulse. Messages name the field and say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong shape (missing field, wrong type, truncated text).
    #[error("{0}")]
    Json(String),
    /// A hex field has a character that is not a hex digit, or an odd number of digits.
    #[error("field `{field}`: not hex ({reason})")]
    BadHex {
        /// The JSON field name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A hash field decoded to the wrong number of bytes.
    #[error("field `{field}`: expected {expected} bytes ({} hex digits), found {found} bytes", expected * 2)]
    WrongLength {
        /// The JSON field name.
        field: String,
        /// Required bytes.
        expected: usize,
        /// Decoded bytes.
        found: usize,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPulse<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    cipher_suite: u32,
    period: u32,
    #[serde(borrow)]
    certificate_id: Cow<'a, str>,
    chain_index: u64,
    pulse_index: u64,
    #[serde(borrow)]
    time_stamp: Cow<'a, str>,
    #[serde(borrow)]
    local_random_value: Cow<'a, str>,
    #[serde(borrow)]
    external: &'a RawValue,
    #[serde(borrow)]
    list_values: Vec<RawListValue<'a>>,
    #[serde(borrow)]
    precommitment_value: Cow<'a, str>,
    status_code: u32,
    #[serde(borrow)]
    signature_value: Cow<'a, str>,
    #[serde(borrow)]
    output_value: Cow<'a, str>,
    #[serde(borrow, default)]
    hashed_message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    witness: Option<Cow<'a, str>>,
    #[serde(default)]
    iterations: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExternal<'a> {
    #[serde(borrow)]
    source_id: Cow<'a, str>,
    status_code: u32,
    #[serde(borrow)]
    value: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawListValue<'a> {
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    pulse: RawPulse<'a>,
}

/// Parses one pulse from `{"pulse": {...}}` or a bare pulse object.
///
/// Hex is accepted in either case; every hash field must decode to exactly 64 bytes.
/// Fields other than NIST's (and CLCERT's `hashedMessage`) are ignored: they are not signed.
pub fn parse_pulse(text: &str) -> Result<Pulse, ParseError> {
    let trimmed = text.trim_start();
    let wrapped = trimmed
        .strip_prefix('{')
        .map(|r| r.trim_start().starts_with("\"pulse\""))
        .unwrap_or(false);
    let raw = if wrapped {
        serde_json::from_str::<Envelope>(text).map(|e| e.pulse)
    } else {
        serde_json::from_str::<RawPulse>(text)
    }
    .map_err(|e| ParseError::Json(describe_json_error(&e)))?;
    from_raw(raw)
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "truncated JSON".to_string(),
        Category::Syntax => "not valid JSON".to_string(),
        Category::Data => "not a pulse".to_string(),
        Category::Io => "read error".to_string(),
    };
    // serde_json's own message names the field or token; drop its " at line L column C" suffix
    // because callers report the location in the file themselves.
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    format!("{what}: {msg} (column {})", e.column())
}

fn from_raw(r: RawPulse<'_>) -> Result<Pulse, ParseError> {
    let external = parse_externals(r.external)?;
    let list_values = r
        .list_values
        .into_iter()
        .map(|l| {
            Ok(ListValue {
                uri: l.uri.map(Cow::into_owned),
                value: hash_field("listValues.value", &l.value)?,
                kind: l.kind.into_owned(),
            })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;
    Ok(Pulse {
        certificate_id: hash_field("certificateId", &r.certificate_id)?,
        local_random_value: hash_field("localRandomValue", &r.local_random_value)?,
        precommitment_value: hash_field("precommitmentValue", &r.precommitment_value)?,
        signature_value: hex_field("signatureValue", &r.signature_value)?,
        output_value: hash_field("outputValue", &r.output_value)?,
        hashed_message: r
            .hashed_message
            .map(|h| hash_field("hashedMessage", &h))
            .transpose()?,
        sloth: match (r.witness, r.iterations) {
            (Some(w), Some(iterations)) => {
                if w.is_empty() || !w.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ParseError::BadHex {
                        field: "witness".into(),
                        reason: "expected a hex integer".into(),
                    });
                }
                Some(SlothWitness {
                    witness: w.into_owned(),
                    iterations,
                })
            }
            (None, None) => None,
            _ => {
                return Err(ParseError::Json(
                    "not a pulse: `witness` and `iterations` come together".into(),
                ))
            }
        },
        uri: r.uri.into_owned(),
        version: r.version.into_owned(),
        cipher_suite: r.cipher_suite,
        period: r.period,
        chain_index: r.chain_index,
        pulse_index: r.pulse_index,
        time_stamp: r.time_stamp.into_owned(),
        external,
        list_values,
        status_code: r.status_code,
    })
}

fn parse_externals(raw: &RawValue) -> Result<Externals, ParseError> {
    let err = |e: serde_json::Error| {
        ParseError::Json(format!("field `external`: {}", describe_json_error(&e)))
    };
    if raw.get().trim_start().starts_with('[') {
        let list: Vec<RawExternal> = serde_json::from_str(raw.get()).map_err(err)?;
        Ok(Externals::List(
            list.iter()
                .map(convert_external)
                .collect::<Result<_, _>>()?,
        ))
    } else {
        let one: RawExternal = serde_json::from_str(raw.get()).map_err(err)?;
        Ok(Externals::One(convert_external(&one)?))
    }
}

fn convert_external(e: &RawExternal<'_>) -> Result<External, ParseError> {
    Ok(External {
        source_id: hash_field("external.sourceId", &e.source_id)?,
        status_code: e.status_code,
        value: hash_field("external.value", &e.value)?,
    })
}

/// Decodes a hex field of any even length (case-insensitive).
pub fn hex_field(field: &str, text: &str) -> Result<Vec<u8>, ParseError> {
    let mut out = vec![0u8; text.len() / 2];
    decode_into(field, text, &mut out)?;
    Ok(out)
}

/// Decodes a hex field that must be exactly 64 bytes.
pub fn hash_field(field: &str, text: &str) -> Result<Hash512, ParseError> {
    if text.len() != 128 {
        if text.len() % 2 == 0 {
            // Check the digits first so "not hex" wins over "wrong length" for garbage.
            hex_field(field, text)?;
        }
        return Err(ParseError::WrongLength {
            field: field.into(),
            expected: 64,
            found: text.len() / 2,
        });
    }
    let mut out = [0u8; 64];
    decode_into(field, text, &mut out)?;
    Ok(Hash512(out))
}

fn decode_into(field: &str, text: &str, out: &mut [u8]) -> Result<(), ParseError> {
    if text.len() % 2 != 0 {
        return Err(ParseError::BadHex {
            field: field.into(),
            reason: format!("odd number of digits ({})", text.len()),
        });
    }
    if !decode_hex(text.as_bytes(), out) {
        let (pos, c) = text
            .char_indices()
            .find(|(_, c)| !c.is_ascii_hexdigit())
            .unwrap_or((0, '?'));
        return Err(ParseError::BadHex {
            field: field.into(),
            reason: format!("character {c:?} at position {pos}"),
        });
    }
    Ok(())
}

/// Hex digit values; 0xFF marks a non-digit. Decoding is on the verifier's hot path (a pulse
/// has about 1,500 hex digits), and a table is several times faster than branching per digit.
const HEX: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes `hex` (twice as long as `out`) into `out`; false if a character is not a hex digit.
pub(crate) fn decode_hex(hex: &[u8], out: &mut [u8]) -> bool {
    debug_assert_eq!(hex.len(), out.len() * 2);
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let hi = HEX[pair[0] as usize];
        let lo = HEX[pair[1] as usize];
        bad |= (hi | lo) & 0xF0;
        *o = (hi << 4) | (lo & 0x0F);
    }
    bad == 0
}

// ---- writing ----------------------------------------------------------------------------

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OutPulse<'a> {
    uri: &'a str,
    version: &'a str,
    cipher_suite: u32,
    period: u32,
    certificate_id: String,
    chain_index: u64,
    pulse_index: u64,
    time_stamp: &'a str,
    local_random_value: String,
    external: OutExternals,
    list_values: Vec<OutListValue<'a>>,
    precommitment_value: String,
    status_code: u32,
    signature_value: String,
    output_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hashed_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    witness: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iterations: Option<u32>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum OutExternals {
    One(OutExternal),
    List(Vec<OutExternal>),
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OutExternal {
    source_id: String,
    status_code: u32,
    value: String,
}

#[derive(serde::Serialize)]
struct OutListValue<'a> {
    uri: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    value: String,
}

#[derive(serde::Serialize)]
struct OutEnvelope<'a> {
    pulse: OutPulse<'a>,
}

fn out_external(e: &External) -> OutExternal {
    OutExternal {
        source_id: e.source_id.to_hex_upper(),
        status_code: e.status_code,
        value: e.value.to_hex_upper(),
    }
}

fn out_pulse(p: &Pulse) -> OutPulse<'_> {
    OutPulse {
        uri: &p.uri,
        version: &p.version,
        cipher_suite: p.cipher_suite,
        period: p.period,
        certificate_id: p.certificate_id.to_hex_lower(),
        chain_index: p.chain_index,
        pulse_index: p.pulse_index,
        time_stamp: &p.time_stamp,
        local_random_value: p.local_random_value.to_hex_upper(),
        external: match &p.external {
            Externals::One(e) => OutExternals::One(out_external(e)),
            Externals::List(v) => OutExternals::List(v.iter().map(out_external).collect()),
        },
        list_values: p
            .list_values
            .iter()
            .map(|l| OutListValue {
                uri: l.uri.as_deref(),
                kind: &l.kind,
                value: l.value.to_hex_upper(),
            })
            .collect(),
        precommitment_value: p.precommitment_value.to_hex_upper(),
        status_code: p.status_code,
        signature_value: crate::hash::encode_hex(&p.signature_value, true),
        output_value: p.output_value.to_hex_upper(),
        hashed_message: p.hashed_message.map(|h| h.to_hex_upper()),
        witness: p.sloth.as_ref().map(|s| s.witness.as_str()),
        iterations: p.sloth.as_ref().map(|s| s.iterations),
    }
}

/// The pulse as a bare JSON object on one line, NIST field order (one JSON Lines record).
pub fn to_json_line(p: &Pulse) -> String {
    serde_json::to_string(&out_pulse(p)).expect("pulse serialises")
}

/// The pulse in NIST's response shape `{"pulse": {...}}`, pretty-printed.
pub fn to_nist_json(p: &Pulse) -> String {
    serde_json::to_string_pretty(&OutEnvelope {
        pulse: out_pulse(p),
    })
    .expect("pulse serialises")
}
