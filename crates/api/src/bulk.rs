//! Many pulses at once: the bulk route (JSON Lines, streamed, a window per answer with a link
//! to the next) and skip paths (spec §6).

use crate::error::ApiError;
use crate::routes::{public, IMMUTABLE};
use crate::when::{parse_index, parse_millis, parse_when};
use crate::{now_ms, Beacon};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream::{BoxStream, Stream};
use futures_util::StreamExt;
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::Pulse;
use lavabeacon_store::{Store, StoreError};
use std::sync::Arc;

/// At most this many periods of pulses per bulk answer by default (so at most this many
/// pulses); [`crate::BeaconInfo::bulk_max_periods`] sets it.
pub const MAX_PERIODS: u32 = 20_000;

/// Bytes gathered before a chunk goes out.
const CHUNK: usize = 64 * 1024;

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
        .and_then(parse_when)?;
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
    // The window starts at the first pulse at or after `from`, so that years before the beacon
    // began, or a long outage, do not cost an answer each.
    let from = match public(b.store().at_or_after(from).await?) {
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
    let body = json_lines(b.into_inner(), move |store| {
        store
            .range_by_time(from, end.saturating_add(1))
            .map(|r| r.map(|p| to_json_line(&p)))
            .boxed()
    });
    Ok(r.streaming(body))
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
    let newest = public(b.store().last_in_chain(chain).await?);
    let newest = match newest {
        Some(p) => p.pulse_index,
        None => public(b.store().before(now_ms() + 1).await?)
            .filter(|p| p.chain_index == chain)
            .map_or(0, |p| p.pulse_index),
    };
    let to = match q.to.as_deref() {
        Some(t) => parse_index("to", t)?,
        None => newest,
    };
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
    let body = json_lines(b.into_inner(), move |store| {
        if end < from {
            return futures_util::stream::empty().boxed();
        }
        store
            .manifests_by_index(chain, from, end)
            .map(|r| r.map(|(_, _, m)| m))
            .boxed()
    });
    Ok(r.streaming(body))
}

/// A JSON Lines body: the lines `make` reads from the store, on a task of its own so that the
/// answer streams while the database is read, sent in chunks of about [`CHUNK`] bytes. A store
/// failure after the headers are out cuts the body short (the log has the cause).
fn json_lines<F>(beacon: Arc<Beacon>, make: F) -> impl Stream<Item = Result<Bytes, ApiError>>
where
    F: for<'s> FnOnce(&'s dyn Store) -> BoxStream<'s, Result<String, StoreError>> + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, ApiError>>(4);
    actix_web::rt::spawn(async move {
        let mut lines = make(beacon.store());
        let mut buf = String::with_capacity(CHUNK + 4096);
        while let Some(item) = lines.next().await {
            match item {
                Ok(line) => {
                    buf.push_str(&line);
                    buf.push('\n');
                    if buf.len() >= CHUNK
                        && tx
                            .send(Ok(Bytes::from(std::mem::take(&mut buf))))
                            .await
                            .is_err()
                    {
                        return; // the client left
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(ApiError::Unavailable(e))).await;
                    return;
                }
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(Ok(Bytes::from(buf))).await;
        }
    });
    channel_body(rx)
}

/// A response body made of what a task sends down `rx`.
pub(crate) fn channel_body(
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, ApiError>>,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
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
    public(b.store().by_index(chain, p2).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {p2} in chain {chain}")))?;
    let path = lavabeacon_store::skip_path(b.store(), chain, p1, p2)
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
    let start = public(b.store().at_or_after(t1).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse at or after {t1}")))?;
    let end = public(
        b.store()
            .before(t2.saturating_add(1).min(now_ms() + 1))
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
