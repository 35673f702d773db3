//! Many pulses at once: the bulk routes (JSON Lines, streamed, a window per answer with a link
//! to the next) and skip paths (spec §6).

use crate::body::streamed_body;
use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::limits::StreamSlot;
use crate::paged::Cursor;
use crate::pulses::path_index;
use crate::reply::{newest, newest_in_chain, Reply, IMMUTABLE, NO_STORE};
use crate::state::Beacon;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::stream::Stream;
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::time::{parse_index, parse_millis, parse_when};
use lavabeacon_format::Pulse;
use std::fmt::Display;
use std::ops::Add;
use std::sync::Arc;

/// Bytes gathered before a chunk goes out.
const CHUNK: usize = 64 * 1024;

/// The `?from=…&to=…` of a bulk route: times on `/pulses`, pulse indexes on `/sources`.
#[derive(serde::Deserialize)]
pub(crate) struct FromTo {
    from: Option<String>,
    to: Option<String>,
}

/// A JSON Lines answer for a window (of times or of pulse indexes) whose last item is
/// `window_end`, of a request that asked up to `to`: when the window stops short,
/// `Link: <path?from=window_end+1&to=to>; rel="next"` continues it.
fn windowed_answer<T>(req: &HttpRequest, window_end: T, to: T) -> HttpResponseBuilder
where
    T: Display + PartialOrd + Add<Output = T> + From<u8>,
{
    let mut response = HttpResponse::Ok();
    response.content_type("application/x-ndjson");
    if window_end < to {
        // `window_end + 1` cannot overflow: it is at most `to`.
        let next_from = window_end + T::from(1);
        response.insert_header((
            header::LINK,
            format!("<{}?from={next_from}&to={to}>; rel=\"next\"", req.path()),
        ));
    }
    response
}

/// `/beacon/2.0/pulses?from=T1&to=T2`: pulses with T1 ≤ timeStamp ≤ T2, oldest first, one
/// JSON object per line. One answer covers at most `bulk_max_periods` periods, from the first
/// pulse at or after T1; when the window asked for is longer, `Link: <…?from=…&to=T2>;
/// rel="next"` continues it.
pub(crate) async fn pulses(
    beacon: web::Data<Beacon>,
    query: web::Query<FromTo>,
    req: HttpRequest,
) -> Reply {
    let from = query
        .from
        .as_deref()
        .ok_or_else(|| {
            ApiError::BadRequest(
                "from is required, e.g. ?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z".into(),
            )
        })
        .and_then(|t| Ok(parse_when(t)?))?;
    let now = now_ms();
    let to = match query.to.as_deref() {
        Some(t) => parse_when(t)?,
        None => now,
    };
    if to < from {
        return Ok(empty_window());
    }
    let slot = beacon.stream_slot(crate::client::client_addr(
        &req,
        &beacon.info().trusted_proxies,
    ))?;
    // The window starts at the first pulse at or after `from`, so that years before the beacon
    // began, or a long outage, do not cost an answer each.
    let from = match public(beacon.ask(beacon.store().at_or_after(from)).await?) {
        Some(p) => p.time_ms().unwrap_or(from).max(from),
        None => from,
    };
    let period = i64::from(beacon.info().period_ms);
    let max = beacon.info().bulk_max_periods.max(1) as i64;
    let window_end = to.min(from.saturating_add(max * period - 1));
    // Never past now: what is not public is not served.
    let end = window_end.min(now);
    let mut response = windowed_answer(&req, window_end, to);
    // A window that closed before the newest pulse never changes.
    let closed = newest(&beacon)
        .await?
        .is_some_and(|n| n.time_ms > window_end);
    response.insert_header((
        header::CACHE_CONTROL,
        if closed { IMMUTABLE } else { NO_STORE },
    ));
    let cursor = Cursor::Time {
        from,
        to: end.saturating_add(1),
    };
    Ok(response.streaming(json_lines(beacon.into_inner(), slot, cursor)))
}

/// `/beacon/2.0/chain/{c}/sources?from=P1&to=P2`: the source manifests of pulses P1..=P2 of
/// chain c that have one (and are public), as JSON Lines, at most `bulk_max_periods` pulses per
/// answer, then `Link: rel="next"`. A replay recombines each into its pulse's localRandomValue.
pub(crate) async fn sources_bulk(
    beacon: web::Data<Beacon>,
    chain: web::Path<String>,
    query: web::Query<FromTo>,
    req: HttpRequest,
) -> Reply {
    let chain = path_index("chain", &chain)?;
    let from = parse_index("from", query.from.as_deref().unwrap_or("1"))?;
    let to = query
        .to
        .as_deref()
        .map(|t| parse_index("to", t))
        .transpose()?;
    let slot = beacon.stream_slot(crate::client::client_addr(
        &req,
        &beacon.info().trusted_proxies,
    ))?;
    let newest = newest_in_chain(&beacon, chain)
        .await?
        .map_or(0, |p| p.pulse_index);
    let to = to.unwrap_or(newest);
    if to < from && newest > 0 {
        return Ok(empty_window());
    }
    let max = u64::from(beacon.info().bulk_max_periods.max(1));
    let window_end = to.min(from.saturating_add(max - 1));
    let end = window_end.min(newest);
    let mut response = windowed_answer(&req, window_end, to);
    response.insert_header((
        header::CACHE_CONTROL,
        if end == window_end {
            IMMUTABLE
        } else {
            NO_STORE
        },
    ));
    let cursor = Cursor::Manifests {
        chain,
        from,
        to: end,
    };
    Ok(response.streaming(json_lines(beacon.into_inner(), slot, cursor)))
}

/// The answer for a window that ends before it starts: nothing is in it, now or ever (a
/// well-formed question with an empty answer, not a bad request).
fn empty_window() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .finish()
}

/// A skip path asked from a later pulse to an earlier one: skip lists only point back, so
/// there is no such path (the reverse of it is the one to ask for).
fn backwards(from: impl Display, to: impl Display) -> ApiError {
    ApiError::NotFound(format!(
        "no skip path runs backwards, from {from} to {to}: skip paths go from the older pulse to the newer; swap them"
    ))
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
    let (mut sender, body) = streamed_body(&beacon, slot, 4);
    actix_web::rt::spawn(async move {
        let mut chunk = String::with_capacity(CHUNK + 4096);
        loop {
            let lines = match cursor.next_lines(&beacon).await {
                Ok(lines) if lines.is_empty() => break,
                Ok(lines) => lines,
                Err(e) => {
                    sender.send(Err(e)).await;
                    return;
                }
            };
            for line in lines {
                chunk.push_str(&line);
                chunk.push('\n');
                if chunk.len() >= CHUNK
                    && !sender
                        .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                        .await
                {
                    return; // the client left, or the server is stopping
                }
            }
        }
        if !chunk.is_empty() {
            sender.send(Ok(Bytes::from(chunk))).await;
        }
    });
    body
}

/// A skip path as a JSON array of bare pulses.
fn skip_path_reply(path: Vec<Pulse>) -> HttpResponse {
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

/// The skip path from pulse `p1` to pulse `p2` of `chain`, both public.
async fn skip_path(beacon: &Beacon, chain: u64, p1: u64, p2: u64) -> Reply {
    if p1 > p2 {
        return Err(backwards(p1, p2));
    }
    // Both ends must be public.
    public(beacon.ask(beacon.store().by_index(chain, p2)).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {p2} in chain {chain}")))?;
    let path = beacon
        .ask(lavabeacon_store::skip_path(beacon.store(), chain, p1, p2))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {p1} in chain {chain}")))?;
    Ok(skip_path_reply(path))
}

/// `/beacon/2.0/skipList/{c}/{p1}/{p2}`.
pub(crate) async fn skip_list_by_index(
    beacon: web::Data<Beacon>,
    path: web::Path<(String, String, String)>,
) -> Reply {
    let chain = path_index("chain", &path.0)?;
    let p1 = path_index("pulse", &path.1)?;
    let p2 = path_index("pulse", &path.2)?;
    skip_path(&beacon, chain, p1, p2).await
}

/// `/beacon/2.0/skipList/{t1}/{t2}`: from the pulse at t1 (or the first after it) to the pulse
/// at t2 (or the last before it), which must be in the same chain.
pub(crate) async fn skip_list_by_time(
    beacon: web::Data<Beacon>,
    path: web::Path<(String, String)>,
) -> Reply {
    let t1 = parse_millis(&path.0)?;
    let t2 = parse_millis(&path.1)?;
    if t1 > t2 {
        return Err(backwards(t1, t2));
    }
    let start = public(beacon.ask(beacon.store().at_or_after(t1)).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse at or after {t1}")))?;
    let end = public(
        beacon
            .ask(
                beacon
                    .store()
                    .before(t2.saturating_add(1).min(now_ms() + 1)),
            )
            .await?,
    )
    .ok_or_else(|| ApiError::NotFound(format!("no published pulse at or before {t2}")))?;
    if start.chain_index != end.chain_index || start.pulse_index > end.pulse_index {
        return Err(ApiError::NotFound(format!(
            "no skip path: the pulses at {t1} and {t2} are in chains {} and {}",
            start.chain_index, end.chain_index
        )));
    }
    skip_path(
        &beacon,
        start.chain_index,
        start.pulse_index,
        end.pulse_index,
    )
    .await
}
