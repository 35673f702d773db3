//! Many pulses at once: the bulk routes (JSON Lines, or NIST's XML, streamed, a window per
//! answer with a link to the next), skip paths (spec §6) and NIST's chain between two times,
//! in JSON or in NIST's XML as asked.

use crate::body::streamed_body;
use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::limits::StreamSlot;
use crate::paged::Cursor;
use crate::pulses::path_index;
use crate::reply::{newest, newest_in_chain, until_next, wants_xml, Reply, IMMUTABLE, NO_STORE};
use crate::state::Beacon;
use crate::xml::{self, List};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::stream::Stream;
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::time::{format_time_stamp, parse_index, parse_millis, parse_when};
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

/// A long answer for a window (of times or of pulse indexes) whose last item is
/// `window_end`, of a request that asked up to `to`: when the window stops short,
/// `Link: <path?from=window_end+1&to=to>; rel="next"` continues it.
fn windowed_answer<T>(req: &HttpRequest, window_end: T, to: T) -> HttpResponseBuilder
where
    T: Display + PartialOrd + Add<Output = T> + From<u8>,
{
    let mut response = HttpResponse::Ok();
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
    let first = public(beacon.ask(beacon.store().at_or_after(from)).await?)
        .map(|p| p.time_ms().unwrap_or(from).max(from));
    let from = first.unwrap_or(from);
    let period = i64::from(beacon.info().period_ms);
    let max = beacon.info().bulk_max_periods.max(1) as i64;
    let window_end = to.min(from.saturating_add(max * period - 1));
    // Never past now: what is not public is not served.
    let end = window_end.min(now);
    let framing = Framing::of_pulses(&beacon, &req, Framing::Lines, None);
    // NIST's XML has no empty `<response>`: a window without pulses is "not there" in XML.
    if matches!(framing, Framing::Xml { .. }) && first.is_none_or(|t| t > end) {
        return Err(ApiError::NotFound(format!(
            "no published pulse between {} and {}",
            format_time_stamp(from).unwrap_or_default(),
            format_time_stamp(end).unwrap_or_default()
        )));
    }
    let mut response = windowed_answer(&req, window_end, to);
    response
        .content_type(framing.media_type())
        .insert_header((header::VARY, "Accept"));
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
    Ok(response.streaming(streamed(beacon.into_inner(), slot, cursor, framing)))
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
    response.content_type(Framing::Lines.media_type());
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
    Ok(response.streaming(streamed(beacon.into_inner(), slot, cursor, Framing::Lines)))
}

/// The answer for a window that ends before it starts: nothing is in it, now or ever (a
/// well-formed question with an empty answer, not a bad request).
fn empty_window() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .finish()
}

/// A skip path or chain asked from a later pulse to an earlier one: they only run forward, so
/// there is none (the reverse of it is the one to ask for).
fn backwards(from: impl Display, to: impl Display) -> ApiError {
    ApiError::NotFound(format!(
        "nothing runs backwards, from {from} to {to}: skip paths and chains go from the older pulse to the newer; swap them"
    ))
}

/// How the items of a long answer are written: what comes before them, between them and after.
pub(crate) enum Framing {
    /// JSON Lines (pulses or manifests), an item a line.
    Lines,
    /// A JSON array of bare pulses.
    Array,
    /// NIST's XML: a `<response>` of `<pulse>` elements, inside a `<chain>` (each pulse after
    /// the first with `type="previous"`) when `list` says so.
    Xml {
        list: Option<List>,
        warning: Option<String>,
    },
}

impl Framing {
    /// The form a request asked for (`Accept`) of a sequence of pulses: `json` when it did
    /// not ask for XML.
    fn of_pulses(beacon: &Beacon, req: &HttpRequest, json: Framing, list: Option<List>) -> Self {
        if wants_xml(req.headers()) {
            Framing::Xml {
                list,
                warning: beacon.test_warning(),
            }
        } else {
            json
        }
    }

    fn media_type(&self) -> &'static str {
        match self {
            Framing::Lines => "application/x-ndjson",
            Framing::Array => "application/json",
            Framing::Xml { .. } => xml::MEDIA_TYPE,
        }
    }

    fn head(&self) -> String {
        match self {
            Framing::Lines => String::new(),
            Framing::Array => "[".into(),
            Framing::Xml { list, warning } => {
                let mut head = xml::open(warning.as_deref());
                if let Some(list) = list {
                    head.push_str(&list.open());
                }
                head
            }
        }
    }

    fn tail(&self) -> String {
        match self {
            Framing::Lines => String::new(),
            Framing::Array => "]".into(),
            Framing::Xml { list, .. } => {
                let mut tail = list.map(List::close).unwrap_or_default();
                tail.push_str(xml::CLOSE);
                tail
            }
        }
    }

    /// Writes the `n`th pulse (from 0) of the answer.
    fn push_pulse(&self, out: &mut String, n: u64, p: &Pulse) {
        match self {
            Framing::Lines => {
                out.push_str(&to_json_line(p));
                out.push('\n');
            }
            Framing::Array => {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&to_json_line(p));
            }
            Framing::Xml { list, .. } => {
                let link = (*list == Some(List::Chain) && n > 0).then_some("previous");
                xml::push_pulse(out, p, link, list.is_some());
            }
        }
    }
}

/// A long body: what `cursor` reads from the store a page at a time, written as `framing`
/// says, on a task of its own so that the answer streams while the database is read, sent in
/// chunks of about [`CHUNK`] bytes. A store failure after the headers are out cuts the body
/// short (the log has the cause), so a client never takes a cut answer for a whole one.
fn streamed(
    beacon: Arc<Beacon>,
    slot: StreamSlot,
    mut cursor: Cursor,
    framing: Framing,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    let (mut sender, body) = streamed_body(&beacon, slot, 4);
    actix_web::rt::spawn(async move {
        let mut chunk = String::with_capacity(CHUNK + 4096);
        chunk.push_str(&framing.head());
        let mut n = 0;
        loop {
            let page = match &framing {
                // Manifests are only ever JSON Lines, and are read as lines.
                Framing::Lines => cursor.next_lines(&beacon).await.map(|lines| {
                    lines.into_iter().for_each(|line| {
                        chunk.push_str(&line);
                        chunk.push('\n');
                    })
                }),
                _ => cursor.next_pulses(&beacon).await.map(|pulses| {
                    for p in &pulses {
                        framing.push_pulse(&mut chunk, n, p);
                        n += 1;
                    }
                }),
            };
            if let Err(e) = page {
                sender.send(Err(e)).await;
                return;
            }
            if matches!(cursor, Cursor::Done) {
                break;
            }
            if chunk.len() >= CHUNK
                && !sender
                    .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                    .await
            {
                return; // the client left, or the server is stopping
            }
        }
        chunk.push_str(&framing.tail());
        if !chunk.is_empty() {
            sender.send(Ok(Bytes::from(chunk))).await;
        }
    });
    body
}

/// A skip path: a JSON array of bare pulses, or NIST's XML `<skipList>` (each pulse after the
/// first with the `type` of the listValue that links it to the one before).
fn skip_path_reply(
    beacon: &Beacon,
    req: &HttpRequest,
    path: Vec<Pulse>,
    cache: &str,
) -> HttpResponse {
    let (media_type, body) = if wants_xml(req.headers()) {
        let body = xml::skip_list_xml(&path, beacon.test_warning().as_deref());
        (xml::MEDIA_TYPE, body)
    } else {
        let mut body = String::from("[");
        for (n, p) in (0..).zip(&path) {
            Framing::Array.push_pulse(&mut body, n, p);
        }
        body.push(']');
        (Framing::Array.media_type(), body)
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, cache.to_string()))
        .insert_header((header::VARY, "Accept"))
        .content_type(media_type)
        .body(body)
}

/// `Cache-Control` of an answer that ends at the last public pulse at or before `t2`: final
/// once a pulse after `t2` is out (nothing can come before it any more), until then cacheable
/// until the next pulse is due.
async fn until_final(beacon: &Beacon, t2: i64) -> Result<String, ApiError> {
    Ok(match newest(beacon).await? {
        Some(n) if n.time_ms > t2 => IMMUTABLE.to_string(),
        Some(n) => until_next(beacon, n.time_ms),
        None => NO_STORE.to_string(),
    })
}

/// The skip path from pulse `p1` to pulse `p2` of `chain`, both public.
async fn skip_path(
    beacon: &Beacon,
    req: &HttpRequest,
    (chain, p1, p2): (u64, u64, u64),
    cache: &str,
) -> Reply {
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
    Ok(skip_path_reply(beacon, req, path, cache))
}

/// `/beacon/2.0/skipList/{c}/{p1}/{p2}`.
pub(crate) async fn skip_list_by_index(
    beacon: web::Data<Beacon>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Reply {
    let chain = path_index("chain", &path.0)?;
    let p1 = path_index("pulse", &path.1)?;
    let p2 = path_index("pulse", &path.2)?;
    skip_path(&beacon, &req, (chain, p1, p2), IMMUTABLE).await
}

/// The ends of a span of one chain given by two times: the pulse at `t1` (or the first after
/// it) and the pulse at `t2` (or the last before it), both public and in the same chain.
async fn ends_between(beacon: &Beacon, t1: i64, t2: i64) -> Result<(Pulse, Pulse), ApiError> {
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
            "no pulse at or after {t1} and at or before {t2} in one chain (the nearest are pulse {} of chain {} and pulse {} of chain {})",
            start.pulse_index, start.chain_index, end.pulse_index, end.chain_index
        )));
    }
    Ok((start, end))
}

/// `/beacon/2.0/skipList/{t1}/{t2}`: from the pulse at t1 (or the first after it) to the pulse
/// at t2 (or the last before it), which must be in the same chain.
pub(crate) async fn skip_list_by_time(
    beacon: web::Data<Beacon>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let t2 = parse_millis(&path.1)?;
    let (start, end) = ends_between(&beacon, parse_millis(&path.0)?, t2).await?;
    let cache = until_final(&beacon, t2).await?;
    let ends = (start.chain_index, start.pulse_index, end.pulse_index);
    skip_path(&beacon, &req, ends, &cache).await
}

/// `/beacon/2.0/chain/time/{t1}/{t2}/previous`: every pulse from the one at t1 (or the first
/// after it) to the one at t2 (or the last before it), in one chain, each linked to the one
/// before by `previous`: a JSON array, or NIST's XML `<chain>`. At most
/// [`BeaconInfo::max_chain_pulses`](crate::BeaconInfo::max_chain_pulses) pulses (400 past it,
/// before anything is read); streamed from the store a page at a time.
pub(crate) async fn chain_between(
    beacon: web::Data<Beacon>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let (t1, t2) = (parse_millis(&path.0)?, parse_millis(&path.1)?);
    let (start, end) = ends_between(&beacon, t1, t2).await?;
    let count = end.pulse_index - start.pulse_index + 1;
    let max = u64::from(beacon.info().max_chain_pulses);
    if count > max {
        return Err(ApiError::BadRequest(format!(
            "the chain from {} to {} holds {count} pulses, more than this server answers at once ({max}); ask for a shorter span, or page through /beacon/2.0/pulses",
            start.time_stamp, end.time_stamp
        )));
    }
    let slot = beacon.stream_slot(crate::client::client_addr(
        &req,
        &beacon.info().trusted_proxies,
    ))?;
    let framing = Framing::of_pulses(&beacon, &req, Framing::Array, Some(List::Chain));
    let cursor = Cursor::Chain {
        chain: start.chain_index,
        from: start.pulse_index,
        to: end.pulse_index,
    };
    Ok(HttpResponse::Ok()
        .content_type(framing.media_type())
        .insert_header((header::VARY, "Accept"))
        .insert_header((header::CACHE_CONTROL, until_final(&beacon, t2).await?))
        .streaming(streamed(beacon.into_inner(), slot, cursor, framing)))
}
