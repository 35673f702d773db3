//! Reading the store a page at a time, for every long answer (the bulk routes and SSE
//! catch-up). Each page is read whole before any of it is sent: the store's stream (and the
//! database connection under it) is closed before the answer waits on the client, so a slow or
//! idle client holds memory (a page, and the channel to its connection), never a connection.

use crate::error::ApiError;
use crate::state::Beacon;
use futures_util::{StreamExt, TryStreamExt};
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::Pulse;

/// Rows read from the store at a time.
pub(crate) const PAGE: usize = 256;

/// Where a paged read has got to.
pub(crate) enum Cursor {
    /// Pulses with `from <= timeStamp < to`.
    Time {
        /// Unix ms, inclusive.
        from: i64,
        /// Unix ms, exclusive.
        to: i64,
    },
    /// Pulses `from..=to` of `chain`, by index.
    Chain {
        /// The chain.
        chain: u64,
        /// Pulse index, inclusive.
        from: u64,
        /// Pulse index, inclusive.
        to: u64,
    },
    /// Source manifests of pulses `from..=to` of `chain`.
    Manifests {
        /// The chain.
        chain: u64,
        /// Pulse index, inclusive.
        from: u64,
        /// Pulse index, inclusive.
        to: u64,
    },
    /// Nothing more.
    Done,
}

impl Cursor {
    /// The next page of pulses (at most [`PAGE`]), read whole within the store timeout; empty
    /// at the end.
    pub(crate) async fn next_pulses(&mut self, beacon: &Beacon) -> Result<Vec<Pulse>, ApiError> {
        let store = beacon.store();
        match *self {
            Cursor::Time { from, to } if from < to => {
                let page: Vec<Pulse> = beacon
                    .ask(store.range_by_time(from, to).take(PAGE).try_collect())
                    .await?;
                *self = match page.last().map(|p| p.time_ms()) {
                    Some(Ok(t)) if page.len() == PAGE => Cursor::Time { from: t + 1, to },
                    _ => Cursor::Done,
                };
                Ok(page)
            }
            Cursor::Chain { chain, from, to } if from <= to => {
                let page: Vec<Pulse> = beacon
                    .ask(
                        store
                            .range_by_index(chain, from, to)
                            .take(PAGE)
                            .try_collect(),
                    )
                    .await?;
                *self = match page.last() {
                    Some(p) if page.len() == PAGE && p.pulse_index < to => Cursor::Chain {
                        chain,
                        from: p.pulse_index + 1,
                        to,
                    },
                    _ => Cursor::Done,
                };
                Ok(page)
            }
            _ => {
                *self = Cursor::Done;
                Ok(Vec::new())
            }
        }
    }

    /// The next page of JSON lines (pulses or manifests); empty at the end.
    pub(crate) async fn next_lines(&mut self, beacon: &Beacon) -> Result<Vec<String>, ApiError> {
        match *self {
            Cursor::Done => Ok(Vec::new()),
            Cursor::Time { .. } | Cursor::Chain { .. } => Ok(self
                .next_pulses(beacon)
                .await?
                .iter()
                .map(to_json_line)
                .collect()),
            Cursor::Manifests { chain, from, to } => {
                if from > to {
                    *self = Cursor::Done;
                    return Ok(Vec::new());
                }
                let page: Vec<(u64, u64, String)> = beacon
                    .ask(
                        beacon
                            .store()
                            .manifests_by_index(chain, from, to)
                            .take(PAGE)
                            .try_collect(),
                    )
                    .await?;
                *self = match page.last() {
                    Some((_, i, _)) if page.len() == PAGE && *i < to => Cursor::Manifests {
                        chain,
                        from: i + 1,
                        to,
                    },
                    _ => Cursor::Done,
                };
                Ok(page.into_iter().map(|(_, _, manifest)| manifest).collect())
            }
        }
    }
}
