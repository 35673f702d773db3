//! A draw's result: the spec's selection made from the deciding pulse's outputValue.

use crate::spec::{DrawSpec, Pool, SpecError};
use crate::{rfc3797, v1};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

/// One pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pick {
    /// 1 for the first drawn, then 2, …
    pub position: usize,
    /// The entry's 1-based place in the published list.
    pub index: usize,
    /// The entry, when the spec lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a draw selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// The picks (`pick`, `shuffle`, `weighted`), in the order drawn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub picks: Vec<Pick>,
    /// The values (`integers`), as decimal strings, in the order drawn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integers: Vec<String>,
    /// RFC 3797's key string, which anyone can feed to another implementation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A draw's result: the pulse that decided it and what it selected (what `lavabeacon draw
/// result` prints, the registry's `/draws/{id}/result` answers, and `draw verify` checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrawResult {
    /// SHA-512 of the spec's canonical bytes (hex).
    pub draw_id: String,
    /// The pulse that decided (its JSON, as the beacon serves it).
    pub pulse: serde_json::Value,
    /// When that pulse is after the target time: the pulse before it, which shows that none
    /// was published at the target time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<serde_json::Value>,
    /// What was selected.
    pub selection: Selection,
}

/// Makes the spec's selection from the deciding pulse's outputValue.
pub fn select(spec: &DrawSpec, output_value: &[u8; 64]) -> Result<Selection, SpecError> {
    spec.check()?;
    let names = match &spec.pool {
        Some(Pool::Entries { entries }) => Some(entries.as_slice()),
        _ => None,
    };
    let picks = |indexes: Vec<usize>| {
        indexes
            .into_iter()
            .enumerate()
            .map(|(i, index)| Pick {
                position: i + 1,
                index,
                name: names.map(|n| n[index - 1].clone()),
            })
            .collect()
    };
    let pool = spec.pool_size().unwrap_or(0) as usize;
    let count = spec.count as usize;
    if spec.method == "rfc3797" {
        let mut sources: Vec<Vec<BigUint>> = spec
            .sources
            .iter()
            .flatten()
            .map(|s| s.iter().map(|v| v.parse().expect("checked")).collect())
            .collect();
        sources.push(rfc3797::pulse_source(output_value));
        let key = rfc3797::key(&sources);
        let chosen = rfc3797::select(&key, pool, count).map_err(|e| SpecError(e.to_string()))?;
        return Ok(Selection {
            picks: picks(chosen),
            integers: Vec::new(),
            key: Some(key),
        });
    }
    let mut stream = v1::Stream::new(output_value, &spec.id());
    let (chosen, integers) = match spec.operation.as_str() {
        "pick" | "shuffle" => (v1::pick(&mut stream, pool, count), Vec::new()),
        "weighted" => (
            v1::weighted(&mut stream, &spec.weights()?, count),
            Vec::new(),
        ),
        _ => {
            let (min, max) = spec.range()?;
            let values = v1::integers(&mut stream, min, max, count);
            (Vec::new(), values.iter().map(i64::to_string).collect())
        }
    };
    Ok(Selection {
        picks: picks(chosen),
        integers,
        key: None,
    })
}
