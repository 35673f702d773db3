//! The routes. Each handler parses its path, asks the store (or the cached last pulse) and
//! returns a pulse response; every failure is an [`ApiError`].

use crate::error::{error_body, ApiError};
use crate::openapi::{Param, RouteDoc};
use crate::{now_ms, Beacon, Served};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{Condition, DefaultHeaders};
use actix_web::{web, HttpRequest, HttpResponse, Resource};
use lavabeacon_format::time::format_time_stamp;
use lavabeacon_format::time::{parse_index, parse_millis, parse_when};
use lavabeacon_format::Pulse;
use std::sync::Arc;

type Reply = Result<HttpResponse, ApiError>;
type B = web::Data<Beacon>;

/// Past pulses never change.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One table makes both the routes and `/openapi.json`.
macro_rules! routes {
    ($($path:literal => $handler:path {
        $summary:literal,
        params: [$(($pn:literal, $pin:literal, $pd:literal)),* $(,)?],
        produces: $produces:literal,
        statuses: [$($st:literal),* $(,)?] $(,)?
    })*) => {
        fn register(cfg: &mut web::ServiceConfig) {
            $( cfg.service(get($path, $handler)); )*
        }
        /// Every route the API serves, in the order they are matched.
        pub const ROUTES: &[RouteDoc] = &[$(RouteDoc {
            path: $path,
            summary: $summary,
            params: &[$(Param { name: $pn, location: $pin, description: $pd }),*],
            produces: $produces,
            statuses: &[$($st),*],
        }),*];
    };
}

routes! {
    "/" => crate::page::index {
        "The web page: the newest pulse and its sources", params: [],
        produces: "text/html", statuses: [200],
    }
    "/health" => health {
        "The pulse expected now against the newest, each source, the HSM and the database", params: [],
        produces: "application/json", statuses: [200, 503],
    }
    "/metrics" => metrics {
        "Prometheus metrics", params: [],
        produces: "text/plain; version=0.0.4", statuses: [200],
    }
    "/openapi.json" => openapi_json {
        "This description", params: [],
        produces: "application/json", statuses: [200],
    }
    "/beacon/last" => beacon_last {
        "The newest pulse", params: [],
        produces: "application/json", statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/pulse/last" => beacon_last {
        "The newest pulse (NIST path)", params: [],
        produces: "application/json", statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/pulse/time/previous/{t}" => nist_previous {
        "The newest pulse strictly before t", params: [("t", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/pulse/time/next/{t}" => nist_next {
        "The first pulse strictly after t", params: [("t", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/pulse/time/{t}" => nist_at {
        "The pulse at t, else the first after it", params: [("t", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/last/pulse/last" => beacon_last {
        "The newest pulse of the newest chain", params: [],
        produces: "application/json", statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/last" => chain_last {
        "The newest pulse of chain c", params: [("c", "path", "chain index, from 1")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/first" => chain_first {
        "The first pulse of chain c", params: [("c", "path", "chain index, from 1")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/sources" => crate::bulk::sources_bulk {
        "Source manifests of pulses from..=to of chain c, as JSON Lines; at most 20,000 per answer, then a Link header rel=next",
        params: [("c", "path", "chain index, from 1"), ("from", "query", "first pulse index (default 1)"), ("to", "query", "last pulse index (default the newest)")],
        produces: "application/x-ndjson", statuses: [200, 400, 429, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}/sources" => sources {
        "The source manifest of pulse p: recombines to its localRandomValue",
        params: [("c", "path", "chain index, from 1"), ("p", "path", "pulse index, from 1")],
        produces: "application/json", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}" => chain_pulse {
        "Pulse p of chain c", params: [("c", "path", "chain index, from 1"), ("p", "path", "pulse index, from 1")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/certificate/{id}" => certificate {
        "The certificate a pulse's certificateId names (PEM)", params: [("id", "path", "certificateId: 128 hex digits")],
        produces: "application/x-pem-file", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/skipList/{c}/{p1}/{p2}" => crate::bulk::skip_list_by_index {
        "A skip path from pulse p1 to pulse p2 of chain c: a JSON array of pulses, each linked to the one before by a skip-list value",
        params: [("c", "path", "chain index"), ("p1", "path", "pulse index of the start"), ("p2", "path", "pulse index of the end")],
        produces: "application/json", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/skipList/{t1}/{t2}" => crate::bulk::skip_list_by_time {
        "A skip path from the pulse at t1 (or after) to the pulse at t2 (or before)",
        params: [("t1", "path", "Unix milliseconds (RFC 3339 also accepted)"), ("t2", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/pulses" => crate::bulk::pulses {
        "Pulses with from <= timeStamp <= to, oldest first, as JSON Lines; at most 20,000 periods per answer, then a Link header rel=next",
        params: [("from", "query", "RFC 3339, Unix seconds or Unix milliseconds"), ("to", "query", "same forms; default now")],
        produces: "application/x-ndjson", statuses: [200, 400, 429, 503],
    }
    "/beacon/2.0/stream" => crate::stream::stream {
        "Server-Sent Events: one event per new pulse (id chain-index); resumes after Last-Event-ID",
        params: [("Last-Event-ID", "header", "the id of the last event received, e.g. 1-42")],
        produces: "text/event-stream", statuses: [200, 400, 404, 429, 503],
    }
    "/beacon/{timestamp}" => beacon_at {
        "The pulse at that time or the first after it; 425 with Retry-After before it is published",
        params: [("timestamp", "path", "RFC 3339 (2026-11-21T10:00:00Z), Unix seconds (below 100,000,000,000) or Unix milliseconds")],
        produces: "application/json", statuses: [200, 304, 400, 425, 503],
    }
}

/// Registers every route, and JSON answers for unknown paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg);
    cfg.default_service(web::to(not_found));
}

/// The headers every response carries: CORS for reads, and a test beacon's warning.
pub fn headers(test: Option<&str>) -> (DefaultHeaders, Condition<DefaultHeaders>) {
    let cors = DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    let warning = DefaultHeaders::new().add((
        "Lavabeacon-Test",
        test.map(|w| w.replace(['\r', '\n'], " "))
            .unwrap_or_default(),
    ));
    (cors, Condition::new(test.is_some(), warning))
}

/// A GET (and HEAD) resource; other methods get a JSON 405.
fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        &format!(
            "no such path: {}; see /openapi.json for every route",
            req.path().chars().take(200).collect::<String>()
        ),
    )
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut r = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "{} is not allowed here: the beacon is read with GET",
            req.method()
        ),
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    r
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(error_body(status, message))
}

/// Whether the client asked for XML: the first media range of `Accept` we can serve decides
/// (q-values are not weighed).
fn wants_xml(req: &HttpRequest) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
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

/// A pulse answer, JSON or XML as asked: the body, its ETag (from the outputValue), `Vary:
/// Accept`, and a 304 when the client already has it.
fn pulse_reply(
    b: &Beacon,
    req: &HttpRequest,
    pulse: &Pulse,
    made: Option<&Served>,
    cache: &str,
) -> HttpResponse {
    let xml = wants_xml(req);
    let json_etag = made.map_or_else(|| crate::etag_of(pulse), |s| s.etag.clone());
    let etag = if xml {
        format!("{}-xml\"", &json_etag[..json_etag.len() - 1])
    } else {
        json_etag
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    r.insert_header((header::ETAG, etag))
        .insert_header((header::VARY, "Accept"))
        .insert_header((header::CACHE_CONTROL, cache.to_string()));
    // The body is only made when it is sent, in the form asked for.
    if fresh {
        r.finish()
    } else if xml {
        r.content_type("application/xml")
            .body(crate::xml::pulse_xml(pulse, b.test_warning().as_deref()))
    } else {
        let body = made.map_or_else(|| b.envelope(pulse).into(), |s| s.body.clone());
        r.content_type("application/json").body(body)
    }
}

/// An answer for a pulse found in the store.
fn reply_for(b: &Beacon, req: &HttpRequest, p: &Pulse, cache: &str) -> HttpResponse {
    pulse_reply(b, req, p, None, cache)
}

/// A pulse that is public: its time has come.
pub(crate) fn public(p: Option<Pulse>) -> Option<Pulse> {
    p.filter(|p| p.time_ms().is_ok_and(|t| t <= now_ms()))
}

/// Cache lifetime of "the newest pulse": until the next one is due.
fn until_next(b: &Beacon, time_ms: i64) -> String {
    let due = time_ms.saturating_add(i64::from(b.info().period_ms));
    let secs = ((due - now_ms()).max(0) / 1000).max(0);
    format!("public, max-age={secs}")
}

/// The newest public pulse: from memory while no newer one can be due; after that (the
/// engine is late, or stopped) from the store, asked at most every [`RECHECK_MS`] however many
/// requests come. While the store fails, the newest pulse in memory is still the newest known.
pub(crate) async fn newest(b: &Beacon) -> Result<Option<Arc<Served>>, ApiError> {
    let now = now_ms();
    let cached = b.cached_last();
    if let Some(s) = &cached {
        if s.time_ms <= now
            && (now < s.time_ms + i64::from(b.info().period_ms) || !b.time_to_recheck(now))
        {
            return Ok(cached);
        }
    }
    let store = b.store();
    let found = b
        .ask(async {
            match public(store.last().await?) {
                Some(p) => Ok(Some(p)),
                // Something future-dated is in the store: serve the newest pulse that is public.
                None => Ok(public(store.before(now + 1).await?)),
            }
        })
        .await;
    match found {
        Ok(last) => Ok(last.map(|p| b.remember(&p)).or(cached)),
        Err(_) if cached.is_some() => Ok(cached),
        Err(e) => Err(e),
    }
}

/// How often an overdue newest pulse is looked for in the store.
pub(crate) const RECHECK_MS: i64 = 20;

fn no_pulses() -> ApiError {
    ApiError::NotFound("the beacon has published no pulse yet".into())
}

async fn beacon_last(b: B, req: HttpRequest) -> Reply {
    let s = newest(&b).await?.ok_or_else(no_pulses)?;
    Ok(pulse_reply(
        &b,
        &req,
        &s.pulse,
        Some(&s),
        &until_next(&b, s.time_ms),
    ))
}

/// `/beacon/{timestamp}`: the pulse at that time or the first after it; 425 when it is not
/// out yet.
async fn beacon_at(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_when(&t)?;
    if let Some(p) = public(b.ask(b.store().at_or_after(t)).await?) {
        return Ok(reply_for(&b, &req, &p, IMMUTABLE));
    }
    // The first period boundary at or after `t` that is still to come.
    let now = now_ms();
    let due = b.slots().at_or_after(t.max(now + 1));
    let wait_ms = due - now;
    Err(ApiError::TooEarly {
        message: format!(
            "no pulse at or after {} has been published yet; the next is due at {}",
            format_time_stamp(t).unwrap_or_default(),
            format_time_stamp(due).unwrap_or_default()
        ),
        retry_after: ((wait_ms + 999) / 1000).max(1) as u64,
    })
}

fn not_out(t: i64) -> ApiError {
    ApiError::NotFound(format!(
        "no published pulse for {}",
        format_time_stamp(t).unwrap_or_else(|| t.to_string())
    ))
}

async fn nist_at(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_millis(&t)?;
    let p = public(b.ask(b.store().at_or_after(t)).await?).ok_or_else(|| not_out(t))?;
    Ok(reply_for(&b, &req, &p, IMMUTABLE))
}

async fn nist_next(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_millis(&t)?;
    let p = public(b.ask(b.store().after(t)).await?).ok_or_else(|| not_out(t))?;
    Ok(reply_for(&b, &req, &p, IMMUTABLE))
}

async fn nist_previous(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_millis(&t)?;
    // Only pulses already public count, however far ahead `t` is.
    let p =
        public(b.ask(b.store().before(t.min(now_ms() + 1))).await?).ok_or_else(|| not_out(t))?;
    // The answer is final once a later pulse exists.
    let newest = newest(&b).await?;
    let cache = match &newest {
        Some(n) if n.time_ms >= t => IMMUTABLE.to_string(),
        Some(n) => until_next(&b, n.time_ms),
        None => "no-store".into(),
    };
    Ok(reply_for(&b, &req, &p, &cache))
}

fn unknown_chain(c: u64) -> ApiError {
    ApiError::NotFound(format!("chain {c} has no published pulses"))
}

async fn chain_last(b: B, c: web::Path<String>, req: HttpRequest) -> Reply {
    let c = parse_index("chain", &c)?;
    let p = match public(b.ask(b.store().last_in_chain(c)).await?) {
        Some(p) => p,
        None => public(b.ask(b.store().before(now_ms() + 1)).await?)
            .filter(|p| p.chain_index == c)
            .ok_or_else(|| unknown_chain(c))?,
    };
    let cache = until_next(&b, p.time_ms().unwrap_or(i64::MAX));
    Ok(pulse_reply(&b, &req, &p, None, &cache))
}

async fn chain_first(b: B, c: web::Path<String>, req: HttpRequest) -> Reply {
    let c = parse_index("chain", &c)?;
    let p = public(b.ask(b.store().first_in_chain(c)).await?).ok_or_else(|| unknown_chain(c))?;
    Ok(reply_for(&b, &req, &p, IMMUTABLE))
}

pub(crate) async fn pulse_by_index(b: &Beacon, cp: &(String, String)) -> Result<Pulse, ApiError> {
    let c = parse_index("chain", &cp.0)?;
    let i = parse_index("pulse", &cp.1)?;
    public(b.ask(b.store().by_index(c, i)).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {i} in chain {c}")))
}

async fn chain_pulse(b: B, cp: web::Path<(String, String)>, req: HttpRequest) -> Reply {
    let p = pulse_by_index(&b, &cp).await?;
    Ok(reply_for(&b, &req, &p, IMMUTABLE))
}

/// The source manifest of a published pulse: what an auditor needs to recompute its
/// localRandomValue.
async fn sources(b: B, cp: web::Path<(String, String)>) -> Reply {
    let p = pulse_by_index(&b, &cp).await?;
    let m = b
        .ask(b.store().manifest(p.chain_index, p.pulse_index))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "pulse {} of chain {} has no source manifest (imported or made before manifests)",
                p.pulse_index, p.chain_index
            ))
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .content_type("application/json")
        .body(m))
}

async fn certificate(b: B, id: web::Path<String>) -> Reply {
    let shown: String = id.chars().take(40).collect();
    let h = lavabeacon_format::json::hash_field("certificateId", &id).map_err(|_| {
        ApiError::BadRequest(format!(
            "certificate id {shown:?} is not 128 hex digits (the certificateId of a pulse)"
        ))
    })?;
    let der = b
        .ask(b.store().certificate(&h))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no certificate {}", h.to_hex_lower())))?;
    let pem = lavabeacon_format::cert::Certificate::from_der(&der)
        .map(|c| c.to_pem())
        .map_err(|e| ApiError::NotFound(format!("certificate unreadable: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .content_type("application/x-pem-file")
        .body(pem))
}

/// `/health`: the pulse expected now against the newest one, each source's status in the
/// newest manifest, the HSM and the database. 200 when the beacon is on time and its parts
/// answer, 503 ("degraded") otherwise. On time means: the pulse of the current period is out,
/// or its timestamp is less than the late tolerance ago (and the one before it is out).
///
/// It never waits long and never loads the database: the newest pulse comes from memory (the
/// store is asked only once it is overdue, by one request every [`RECHECK_MS`]), and the
/// database's state from the last store call anyone made (asked with one indexed lookup when
/// nobody has for half a second). Errors are public categories, never internal text.
async fn health(b: B) -> HttpResponse {
    let now = now_ms();
    let slots = b.slots();
    let period = slots.period_ms();
    let tolerance = i64::from(b.info().late_tolerance_ms);
    let expected = slots.at_or_before(now);
    // The oldest pulse that may be the newest one now.
    let due = if now - expected > tolerance {
        expected
    } else {
        expected - period
    };
    let _ = newest(&b).await;
    let db_ok = b.database_ok().await;
    let newest = b.cached_last();
    let engine = b.engine_status();
    let behind = newest.as_ref().map(|s| expected - s.time_ms);
    let on_time = newest.as_ref().is_some_and(|s| s.time_ms >= due);
    let hsm = match engine.signer_ok {
        Some(true) => "ok",
        Some(false) => "failing",
        None => "unknown",
    };
    let healthy = on_time && db_ok && hsm != "failing";
    // What the engine said; else, without one (an API node), what can be seen from here.
    let last_error = engine.last_error.or(if !db_ok {
        Some("database unavailable")
    } else if newest.is_none() {
        Some("no pulse yet")
    } else if !on_time {
        Some("late")
    } else {
        None
    });
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "test": b.info().test.as_deref().map(crate::test_warning),
        "periodMs": period,
        "lateToleranceMs": tolerance,
        "expectedTimeStamp": format_time_stamp(expected),
        "lastPulse": newest.as_ref().map(|s| serde_json::json!({
            "chainIndex": s.pulse.chain_index,
            "pulseIndex": s.pulse.pulse_index,
            "timeStamp": s.pulse.time_stamp,
        })),
        "behindMs": behind,
        "database": if db_ok { "ok" } else { "unavailable" },
        "hsm": hsm,
        "lastError": last_error,
        "sources": engine.manifest.map(|m| m.sources.into_iter().map(|s| serde_json::json!({
            "name": s.name, "status": s.status, "creditedBits": s.credited_bits,
        })).collect::<Vec<_>>()),
    });
    HttpResponse::build(if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    })
    .insert_header((header::CACHE_CONTROL, "no-store"))
    .content_type("application/json")
    .body(body.to_string())
}

async fn metrics(b: B) -> HttpResponse {
    let mut gauges = String::new();
    use std::fmt::Write;
    let newest = newest(&b).await.ok().flatten();
    let _ = writeln!(gauges, "# HELP lavabeacon_test_beacon 1 when this is a test beacon.\n# TYPE lavabeacon_test_beacon gauge\nlavabeacon_test_beacon {}", u8::from(b.info().test.is_some()));
    if let Some(s) = &newest {
        let _ = writeln!(gauges, "# HELP lavabeacon_last_pulse_timestamp_seconds timeStamp of the newest public pulse.\n# TYPE lavabeacon_last_pulse_timestamp_seconds gauge\nlavabeacon_last_pulse_timestamp_seconds {}", s.time_ms as f64 / 1000.0);
        let _ = writeln!(gauges, "# HELP lavabeacon_last_pulse_index pulseIndex of the newest public pulse.\n# TYPE lavabeacon_last_pulse_index gauge\nlavabeacon_last_pulse_index{{chain=\"{}\"}} {}", s.pulse.chain_index, s.pulse.pulse_index);
    }
    let _ = writeln!(gauges, "# HELP lavabeacon_open_streams Streams (SSE, bulk) open now.\n# TYPE lavabeacon_open_streams gauge\nlavabeacon_open_streams {}", b.open_streams());
    if let Some(m) = b.engine_status().manifest {
        let _ = writeln!(gauges, "# HELP lavabeacon_source_healthy 1 when the source contributed to the newest pulse.\n# TYPE lavabeacon_source_healthy gauge");
        for s in &m.sources {
            let _ = writeln!(
                gauges,
                "lavabeacon_source_healthy{{source=\"{}\"}} {}",
                s.name,
                u8::from(s.status == "ok")
            );
        }
        let _ = writeln!(gauges, "# HELP lavabeacon_source_credited_bits Entropy credited to the source in the newest pulse.\n# TYPE lavabeacon_source_credited_bits gauge");
        for s in &m.sources {
            let _ = writeln!(
                gauges,
                "lavabeacon_source_credited_bits{{source=\"{}\"}} {}",
                s.name, s.credited_bits
            );
        }
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; version=0.0.4")
        .body(b.metrics().render(&gauges))
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(crate::openapi::openapi(ROUTES).to_string())
}
