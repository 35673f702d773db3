//! [`skip_path`]: a skip path (spec §6) planned with the store's own lookups, so it works the
//! same over any backend (or the fake).

use crate::error::StoreError;
use crate::Store;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;

/// A skip path (spec §6) from pulse `from` to pulse `to` of `chain`, oldest first: from each
/// pulse, the farthest pulse not after `to` that names it in its listValues.
pub async fn skip_path(
    store: &dyn Store,
    chain: u64,
    from: u64,
    to: u64,
) -> Result<Option<Vec<Pulse>>, StoreError> {
    if from > to {
        return Ok(None);
    }
    let Some(mut cur) = store.by_index(chain, from).await? else {
        return Ok(None);
    };
    let mut path = vec![cur.clone()];
    while cur.pulse_index < to {
        let t = cur
            .time_ms()
            .map_err(|e| StoreError::corrupt(e.to_string()))?;
        let mut best = cur.pulse_index + 1;
        for period in Period::ALL {
            // cur is named by the first pulse after its period only if it is the first of it.
            let first = store.first_in_period(chain, period, t).await?;
            if first.as_ref().map(|f| f.pulse_index) != Some(cur.pulse_index) {
                continue;
            }
            let Some(end) = period.next_start(t) else {
                continue;
            };
            if let Some(next) = store.at_or_after(end).await? {
                if next.chain_index == chain
                    && next.pulse_index <= to
                    && next.period_value(period) == Some(&cur.output_value)
                {
                    best = best.max(next.pulse_index);
                }
            }
        }
        match store.by_index(chain, best).await? {
            Some(p) => cur = p,
            None => return Ok(None),
        }
        path.push(cur.clone());
    }
    Ok(Some(path))
}
