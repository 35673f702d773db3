//! The rules every pulse answer shares: which pulse is the newest, how long an answer may be
//! cached, and the answer itself (JSON or XML as asked, ETag, 304). Handlers decide what to
//! read; this decides how it is answered, the same way on every route.

use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::state::{etag_of, Beacon, Served};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use lavabeacon_format::Pulse;
use std::sync::Arc;

/// What every handler returns: an answer, or the one error type (mapped to a status in
/// [`crate::error`]).
pub(crate) type Reply = Result<HttpResponse, ApiError>;

/// `Cache-Control` of what never changes: past pulses, certificates, manifests.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of what may change at any moment.
pub(crate) const NO_STORE: &str = "no-store";

/// Whether the client asked for XML: the first media range of `Accept` we can serve decides
/// (q-values are not weighed).
pub(crate) fn wants_xml(headers: &header::HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for range in accept.split(',') {
        match range.split(';').next().unwrap_or("").trim() {
            "application/xml" | "text/xml" => return true,
            "application/json" | "*/*" | "application/*" => return false,
            _ => {}
        }
    }
    false
}

/// Whether the request's `If-None-Match` matches `etag` (a strong tag we made): `*`, or any
/// tag of the list(s) by RFC 9110's weak comparison (`W/"x"` matches `"x"`). A header that
/// cannot be read as entity tags matches nothing, so the full answer is sent.
fn none_match(req: &HttpRequest, etag: &str) -> bool {
    use actix_web::http::header::{EntityTag, Header, IfNoneMatch};
    if !req.headers().contains_key(header::IF_NONE_MATCH) {
        return false;
    }
    let Ok(ours) = etag.parse::<EntityTag>() else {
        return false;
    };
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&ours)),
        Err(_) => false,
    }
}

/// A pulse answer, JSON or XML as asked: the body, its ETag (from the outputValue), `Vary:
/// Accept`, and a 304 when the client already has it. `made` is the pulse's body and ETag
/// when they are already made (the newest pulse, kept in memory).
pub(crate) fn pulse_reply(
    beacon: &Beacon,
    req: &HttpRequest,
    pulse: &Pulse,
    made: Option<&Served>,
    cache: &str,
) -> HttpResponse {
    let xml = wants_xml(req.headers());
    let json_etag = made.map_or_else(|| etag_of(pulse), |s| s.etag.clone());
    let etag = if xml {
        format!("{}-xml\"", &json_etag[..json_etag.len() - 1])
    } else {
        json_etag
    };
    let (mut response, fresh) = revalidated(req, etag, cache);
    response.insert_header((header::VARY, "Accept"));
    // The body is only made when it is sent, in the form asked for.
    if fresh {
        response.finish()
    } else if xml {
        response
            .content_type(crate::xml::MEDIA_TYPE)
            .body(crate::xml::pulse_xml(
                pulse,
                beacon.test_warning().as_deref(),
            ))
    } else {
        let body = made.map_or_else(|| beacon.envelope(pulse).into(), |s| s.body.clone());
        response.content_type("application/json").body(body)
    }
}

/// The start of an answer the client may already have: a 304 when its `If-None-Match` names
/// `etag`, else a 200, with the ETag and `Cache-Control`. The flag says it is the 304, which
/// gets no body.
pub(crate) fn revalidated(
    req: &HttpRequest,
    etag: String,
    cache: &str,
) -> (HttpResponseBuilder, bool) {
    let fresh = none_match(req, &etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache.to_string()));
    (response, fresh)
}

/// An answer for a pulse read from the store (its body is made now).
pub(crate) fn reply_for(
    beacon: &Beacon,
    req: &HttpRequest,
    pulse: &Pulse,
    cache: &str,
) -> HttpResponse {
    pulse_reply(beacon, req, pulse, None, cache)
}

/// `Cache-Control` of "the newest pulse", whose timestamp is `time_ms`: until the next one is
/// due.
pub(crate) fn until_next(beacon: &Beacon, time_ms: i64) -> String {
    let due = time_ms.saturating_add(i64::from(beacon.info().period_ms));
    let secs = ((due - now_ms()).max(0) / 1000).max(0);
    format!("public, max-age={secs}")
}

/// The newest public pulse: from memory while no newer one can be due; after that (the
/// engine is late, or stopped) from the store, asked at most every
/// [`RECHECK_MS`](crate::state::RECHECK_MS) however many requests come. While the store
/// fails, the newest pulse in memory is still the newest known.
pub(crate) async fn newest(beacon: &Beacon) -> Result<Option<Arc<Served>>, ApiError> {
    let now = now_ms();
    let cached = beacon.cached_last();
    if let Some(s) = &cached {
        if s.time_ms <= now
            && (now < s.time_ms + i64::from(beacon.info().period_ms)
                || !beacon.time_to_recheck(now))
        {
            return Ok(cached);
        }
    }
    let store = beacon.store();
    let found = beacon
        .ask(async {
            match public(store.last().await?) {
                Some(p) => Ok(Some(p)),
                // Something future-dated is in the store: serve the newest pulse that is public.
                None => Ok(public(store.before(now + 1).await?)),
            }
        })
        .await;
    match found {
        Ok(last) => Ok(last.map(|p| beacon.remember(&p)).or(cached)),
        Err(_) if cached.is_some() => Ok(cached),
        Err(e) => Err(e),
    }
}

/// The newest public pulse of chain `chain`. The store's newest of the chain may not be public
/// yet (future-dated); then the answer is the newest public pulse overall, if it is of that
/// chain.
pub(crate) async fn newest_in_chain(
    beacon: &Beacon,
    chain: u64,
) -> Result<Option<Pulse>, ApiError> {
    if let Some(p) = public(beacon.ask(beacon.store().last_in_chain(chain)).await?) {
        return Ok(Some(p));
    }
    Ok(
        public(beacon.ask(beacon.store().before(now_ms() + 1)).await?)
            .filter(|p| p.chain_index == chain),
    )
}
