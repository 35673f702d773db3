//! Many pulses at once: the bulk route (JSON Lines, streamed, a window per answer with a link
//! to the next) and skip paths (spec §6).

use crate::error::ApiError;
use crate::limits::StreamSlot;
use crate::routes::{public, IMMUTABLE};
use crate::{now_ms, Beacon};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream::Stream;
use futures_util::{StreamExt, TryStreamExt};
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::time::{parse_index, parse_millis, parse_when};
use lavabeacon_format::Pulse;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// At most this many periods of pulses per bulk answer by default (so at most this many
/// pulses); [`crate::BeaconInfo::bulk_max_periods`] sets it.
pub const MAX_PERIODS: u32 = 20_000;

/// Bytes gathered before a chunk goes out.
const CHUNK: usize = 64 * 1024;

/// Rows read from the store at a time. A long answer is read a page at a time, and each page
/// is read whole before any of it is sent: the store's stream (and the database connection
/// under it) is closed before the answer waits on the client, so a slow or idle client holds
/// memory (a page, and the channel to its connection), never a connection.
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
    pub(crate) async fn next_pulses(&mut self, b: &Beacon) -> Result<Vec<Pulse>, ApiError> {
        let Cursor::Time { from, to } = *self else {
            *self = Cursor::Done;
            return Ok(Vec::new());
        };
        if from >= to {
            *self = Cursor::Done;
            return Ok(Vec::new());
        }
        let page: Vec<Pulse> = b
            .ask(b.store().range_by_time(from, to).take(PAGE).try_collect())
            .await?;
        *self = match page.last().map(|p| p.time_ms()) {
            Some(Ok(t)) if page.len() == PAGE => Cursor::Time { from: t + 1, to },
            _ => Cursor::Done,
        };
        Ok(page)
    }

    /// The next page of JSON lines (pulses or manifests); empty at the end.
    async fn next_lines(&mut self, b: &Beacon) -> Result<Vec<String>, ApiError> {
        match *self {
            Cursor::Done => Ok(Vec::new()),
            Cursor::Time { .. } => Ok(self
                .next_pulses(b)
                .await?
                .iter()
                .map(to_json_line)
                .collect()),
            Cursor::Manifests { chain, from, to } => {
                if from > to {
                    *self = Cursor::Done;
                    return Ok(Vec::new());
                }
                let page: Vec<(u64, u64, String)> = b
                    .ask(
                        b.store()
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
                Ok(page.into_iter().map(|(_, _, m)| m).collect())
            }
        }
    }
}

/// The sending end of a streamed answer: waits for the client as long as it takes, but not
/// past [`Beacon::begin_shutdown`].
pub(crate) struct Out {
    tx: mpsc::Sender<Result<Bytes, ApiError>>,
    stop: watch::Receiver<bool>,
}

impl Out {
    /// Sends `item`; `false` when the client left or the server is shutting down.
    pub(crate) async fn send(&mut self, item: Result<Bytes, ApiError>) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|s| *s) => false,
            r = self.tx.send(item) => r.is_ok(),
        }
    }
}

/// A streamed answer: what a task sends to `Out` becomes the body, which holds `slot` (the
/// client's place among the open streams) until it is dropped, and ends at once on shutdown.
pub(crate) fn streamed(
    b: &Beacon,
    slot: StreamSlot,
    buffer: usize,
) -> (Out, impl Stream<Item = Result<Bytes, ApiError>>) {
    let (tx, rx) = mpsc::channel(buffer);
    let out = Out {
        tx,
        stop: b.stop_signal(),
    };
    let body = futures_util::stream::unfold(
        (rx, b.stop_signal(), slot),
        |(mut rx, mut stop, slot)| async move {
            let item = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => None,
                item = rx.recv() => item,
            };
            item.map(|item| (item, (rx, stop, slot)))
        },
    );
    (out, body)
}

#[derive(serde::Deserialize)]
pub(crate) struct Window {
    from: Option<String>,
    to: Option<String>,
}

/// `/beacon/2.0/pulses?from=T1&to=T2`: pulses with T1 ≤ timeStamp ≤ T2, oldest first, one
/// JSON object per line. One answer covers at most `bulk_max_periods` periods, from the first
/// pulse at or after T1; when the window
/// asked for is longer, `Link: <…?from=…&to=T2>; rel="next"` continues it.
pub(crate) async fn pulses(
    b: web::Data<Beacon>,
    q: web::Query<Window>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let from = q
        .from
        .as_deref()
        .ok_or_else(|| {
            ApiError::BadRequest(
                "from is required, e.g. ?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z".into(),
            )
        })
        .and_then(|t| Ok(parse_when(t)?))?;
    let now = now_ms();
    let to = match q.to.as_deref() {
        Some(t) => parse_when(t)?,
        None => now,
    };
    if to < from {
        return Err(ApiError::BadRequest(format!(
            "to ({to}) is before from ({from})"
        )));
    }
    let slot = b.stream_slot(req.peer_addr().map(|a| a.ip()))?;
    // The window starts at the first pulse at or after `from`, so that years before the beacon
    // began, or a long outage, do not cost an answer each.
    let from = match public(b.ask(b.store().at_or_after(from)).await?) {
        Some(p) => p.time_ms().unwrap_or(from).max(from),
        None => from,
    };
    let period = i64::from(b.info().period_ms);
    let max = b.info().bulk_max_periods.max(1) as i64;
    let window_end = to.min(from.saturating_add(max * period - 1));
    // Never past now: what is not public is not served.
    let end = window_end.min(now);
    let mut r = HttpResponse::Ok();
    r.content_type("application/x-ndjson");
    if window_end < to {
        r.insert_header((
            header::LINK,
            format!(
                "<{}?from={}&to={to}>; rel=\"next\"",
                req.path(),
                window_end + 1
            ),
        ));
    }
    // A window that closed before the newest pulse never changes.
    let closed = crate::routes::newest(&b)
        .await?
        .is_some_and(|n| n.time_ms > window_end);
    r.insert_header((
        header::CACHE_CONTROL,
        if closed { IMMUTABLE } else { "no-store" },
    ));
    let cursor = Cursor::Time {
        from,
        to: end.saturating_add(1),
    };
    Ok(r.streaming(json_lines(b.into_inner(), slot, cursor)))
}

#[derive(serde::Deserialize)]
pub(crate) struct IndexWindow {
    from: Option<String>,
    to: Option<String>,
}

/// `/beacon/2.0/chain/{c}/sources?from=P1&to=P2`: the source manifests of pulses P1..=P2 of
/// chain c that have one (and are public), as JSON Lines, at most `bulk_max_periods` pulses per
/// answer, then `Link: rel="next"`. A replay recombines each into its pulse's localRandomValue.
pub(crate) async fn sources_bulk(
    b: web::Data<Beacon>,
    c: web::Path<String>,
    q: web::Query<IndexWindow>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let chain = parse_index("chain", &c)?;
    let from = parse_index("from", q.from.as_deref().unwrap_or("1"))?;
    let to = q.to.as_deref().map(|t| parse_index("to", t)).transpose()?;
    let slot = b.stream_slot(req.peer_addr().map(|a| a.ip()))?;
    let newest = public(b.ask(b.store().last_in_chain(chain)).await?);
    let newest = match newest {
        Some(p) => p.pulse_index,
        None => public(b.ask(b.store().before(now_ms() + 1)).await?)
            .filter(|p| p.chain_index == chain)
            .map_or(0, |p| p.pulse_index),
    };
    let to = to.unwrap_or(newest);
    if to < from && newest > 0 {
        return Err(ApiError::BadRequest(format!(
            "to ({to}) is before from ({from})"
        )));
    }
    let max = u64::from(b.info().bulk_max_periods.max(1));
    let window_end = to.min(from.saturating_add(max - 1));
    let end = window_end.min(newest);
    let mut r = HttpResponse::Ok();
    r.content_type("application/x-ndjson");
    if window_end < to {
        r.insert_header((
            header::LINK,
            format!(
                "<{}?from={}&to={to}>; rel=\"next\"",
                req.path(),
                window_end + 1
            ),
        ));
    }
    r.insert_header((
        header::CACHE_CONTROL,
        if end == window_end {
            IMMUTABLE
        } else {
            "no-store"
        },
    ));
    let cursor = Cursor::Manifests {
        chain,
        from,
        to: end,
    };
    Ok(r.streaming(json_lines(b.into_inner(), slot, cursor)))
}

/// A JSON Lines body: the lines read from the store a page at a time, on a task of its own so
/// that the answer streams while the database is read, sent in chunks of about [`CHUNK`]
/// bytes. A store failure after the headers are out cuts the body short (the log has the
/// cause).
fn json_lines(
    beacon: Arc<Beacon>,
    slot: StreamSlot,
    mut cursor: Cursor,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    let (mut out, body) = streamed(&beacon, slot, 4);
    actix_web::rt::spawn(async move {
        let mut buf = String::with_capacity(CHUNK + 4096);
        loop {
            let lines = match cursor.next_lines(&beacon).await {
                Ok(lines) if lines.is_empty() => break,
                Ok(lines) => lines,
                Err(e) => {
                    out.send(Err(e)).await;
                    return;
                }
            };
            for line in lines {
                buf.push_str(&line);
                buf.push('\n');
                if buf.len() >= CHUNK && !out.send(Ok(Bytes::from(std::mem::take(&mut buf)))).await
                {
                    return; // the client left, or the server is stopping
                }
            }
        }
        if !buf.is_empty() {
            out.send(Ok(Bytes::from(buf))).await;
        }
    });
    body
}

fn path_reply(path: Vec<Pulse>) -> HttpResponse {
    let mut body = String::from("[");
    for (i, p) in path.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&to_json_line(p));
    }
    body.push(']');
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .content_type("application/json")
        .body(body)
}

async fn skip_path(b: &Beacon, chain: u64, p1: u64, p2: u64) -> Result<HttpResponse, ApiError> {
    if p1 > p2 {
        return Err(ApiError::BadRequest(format!(
            "the path goes forward: p1 ({p1}) must not be after p2 ({p2})"
        )));
    }
    // Both ends must be public.
    public(b.ask(b.store().by_index(chain, p2)).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {p2} in chain {chain}")))?;
    let path = b
        .ask(lavabeacon_store::skip_path(b.store(), chain, p1, p2))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {p1} in chain {chain}")))?;
    Ok(path_reply(path))
}

/// `/beacon/2.0/skipList/{c}/{p1}/{p2}`.
pub(crate) async fn skip_list_by_index(
    b: web::Data<Beacon>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let c = parse_index("chain", &path.0)?;
    let p1 = parse_index("pulse", &path.1)?;
    let p2 = parse_index("pulse", &path.2)?;
    skip_path(&b, c, p1, p2).await
}

/// `/beacon/2.0/skipList/{t1}/{t2}`: from the pulse at t1 (or the first after it) to the pulse
/// at t2 (or the last before it), which must be in the same chain.
pub(crate) async fn skip_list_by_time(
    b: web::Data<Beacon>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let t1 = parse_millis(&path.0)?;
    let t2 = parse_millis(&path.1)?;
    if t1 > t2 {
        return Err(ApiError::BadRequest(format!(
            "the path goes forward: t1 ({t1}) must not be after t2 ({t2})"
        )));
    }
    let start = public(b.ask(b.store().at_or_after(t1)).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse at or after {t1}")))?;
    let end = public(
        b.ask(b.store().before(t2.saturating_add(1).min(now_ms() + 1)))
            .await?,
    )
    .ok_or_else(|| ApiError::NotFound(format!("no published pulse at or before {t2}")))?;
    if start.chain_index != end.chain_index || start.pulse_index > end.pulse_index {
        return Err(ApiError::NotFound(format!(
            "no skip path: the pulses at {t1} and {t2} are in chains {} and {}",
            start.chain_index, end.chain_index
        )));
    }
    skip_path(&b, start.chain_index, start.pulse_index, end.pulse_index).await
}
