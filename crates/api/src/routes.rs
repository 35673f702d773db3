//! The routes. Each handler parses its path, asks the store (or the cached last pulse) and
//! returns a pulse response; every failure is an [`ApiError`].

use crate::error::{error_body, ApiError};
use crate::when::{parse_index, parse_millis, parse_when};
use crate::{now_ms, Beacon, Served};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{Condition, DefaultHeaders};
use actix_web::{web, HttpRequest, HttpResponse, Resource};
use lavabeacon_format::time::format_time_stamp;
use lavabeacon_format::Pulse;
use std::sync::Arc;

type Reply = Result<HttpResponse, ApiError>;
type B = web::Data<Beacon>;

/// Past pulses never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Registers every route, the test-mode and CORS headers, and JSON answers for unknown paths.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/", crate::page::index))
        .service(get("/health", health))
        .service(get("/beacon/last", beacon_last))
        .service(get("/beacon/{timestamp}", beacon_at))
        .service(
            web::scope("/beacon/2.0")
                .service(get("/pulse/last", nist_last))
                .service(get("/pulse/time/previous/{t}", nist_previous))
                .service(get("/pulse/time/next/{t}", nist_next))
                .service(get("/pulse/time/{t}", nist_at))
                .service(get("/chain/last/pulse/last", nist_last))
                .service(get("/chain/{c}/pulse/last", chain_last))
                .service(get("/chain/{c}/pulse/first", chain_first))
                .service(get("/chain/{c}/pulse/{p}/sources", sources))
                .service(get("/chain/{c}/pulse/{p}", chain_pulse))
                .service(get("/certificate/{id}", certificate))
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

/// Wraps an app in the headers every response carries: CORS for reads, and a test beacon's
/// warning.
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
            "no such path: {}; see /beacon/last, /beacon/{{timestamp}} and /beacon/2.0/pulse/last",
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

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(error_body(status, message))
}

/// A pulse answer: the body, its ETag (the outputValue) and a 304 when the client has it.
fn pulse_reply(req: &HttpRequest, body: &str, pulse: &Pulse, cache: &str) -> HttpResponse {
    let etag = format!("\"{}\"", pulse.output_value.to_hex_lower());
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
        .insert_header((header::CACHE_CONTROL, cache.to_string()));
    if fresh {
        r.finish()
    } else {
        r.content_type("application/json").body(body.to_string())
    }
}

/// A pulse that is public: its time has come.
fn public(p: Option<Pulse>) -> Option<Pulse> {
    p.filter(|p| p.time_ms().is_ok_and(|t| t <= now_ms()))
}

/// Cache lifetime of "the newest pulse": until the next one is due.
fn until_next(b: &Beacon, served: &Served) -> String {
    let due = served.time_ms + i64::from(b.info().period_ms);
    let secs = ((due - now_ms()).max(0) / 1000).max(0);
    format!("public, max-age={secs}")
}

/// The newest public pulse: from memory while no newer one can be due, else from the store.
pub(crate) async fn newest(b: &Beacon) -> Result<Option<Arc<Served>>, ApiError> {
    let now = now_ms();
    if let Some(s) = b.cached_last() {
        if now < s.time_ms + i64::from(b.info().period_ms) && s.time_ms <= now {
            return Ok(Some(s));
        }
    }
    let last = match public(b.store().last().await?) {
        Some(p) => Some(p),
        // Something future-dated is in the store: serve the newest pulse that is public.
        None => public(b.store().before(now + 1).await?),
    };
    Ok(last.map(|p| b.remember(&p)))
}

fn no_pulses() -> ApiError {
    ApiError::NotFound("the beacon has published no pulse yet".into())
}

async fn beacon_last(b: B, req: HttpRequest) -> Reply {
    let s = newest(&b).await?.ok_or_else(no_pulses)?;
    Ok(pulse_reply(&req, &s.body, &s.pulse, &until_next(&b, &s)))
}

async fn nist_last(b: B, req: HttpRequest) -> Reply {
    beacon_last(b, req).await
}

/// `/beacon/{timestamp}`: the pulse at that time or the first after it; 425 when it is not
/// out yet.
async fn beacon_at(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_when(&t)?;
    if let Some(p) = public(b.store().at_or_after(t).await?) {
        return Ok(pulse_reply(&req, &b.envelope(&p), &p, IMMUTABLE));
    }
    // The first period boundary at or after `t` that is still to come.
    let period = i64::from(b.info().period_ms);
    let now = now_ms();
    let due = (t.max(now + 1) + period - 1).div_euclid(period) * period;
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
    let p = public(b.store().at_or_after(t).await?).ok_or_else(|| not_out(t))?;
    Ok(pulse_reply(&req, &b.envelope(&p), &p, IMMUTABLE))
}

async fn nist_next(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_millis(&t)?;
    let p = public(b.store().after(t).await?).ok_or_else(|| not_out(t))?;
    Ok(pulse_reply(&req, &b.envelope(&p), &p, IMMUTABLE))
}

async fn nist_previous(b: B, t: web::Path<String>, req: HttpRequest) -> Reply {
    let t = parse_millis(&t)?;
    // Only pulses already public count, however far ahead `t` is.
    let p = public(b.store().before(t.min(now_ms() + 1)).await?).ok_or_else(|| not_out(t))?;
    // The answer is final once a later pulse exists.
    let newest = newest(&b).await?;
    let cache = match &newest {
        Some(n) if n.time_ms >= t => IMMUTABLE.to_string(),
        Some(n) => until_next(&b, n),
        None => "no-store".into(),
    };
    Ok(pulse_reply(&req, &b.envelope(&p), &p, &cache))
}

fn unknown_chain(c: u64) -> ApiError {
    ApiError::NotFound(format!("chain {c} has no published pulses"))
}

async fn chain_last(b: B, c: web::Path<String>, req: HttpRequest) -> Reply {
    let c = parse_index("chain", &c)?;
    let p = match public(b.store().last_in_chain(c).await?) {
        Some(p) => p,
        None => public(b.store().before(now_ms() + 1).await?)
            .filter(|p| p.chain_index == c)
            .ok_or_else(|| unknown_chain(c))?,
    };
    let s = b.served(&p);
    Ok(pulse_reply(&req, &s.body, &p, &until_next(&b, &s)))
}

async fn chain_first(b: B, c: web::Path<String>, req: HttpRequest) -> Reply {
    let c = parse_index("chain", &c)?;
    let p = public(b.store().first_in_chain(c).await?).ok_or_else(|| unknown_chain(c))?;
    Ok(pulse_reply(&req, &b.envelope(&p), &p, IMMUTABLE))
}

async fn pulse_by_index(b: &Beacon, cp: &(String, String)) -> Result<Pulse, ApiError> {
    let c = parse_index("chain", &cp.0)?;
    let i = parse_index("pulse", &cp.1)?;
    public(b.store().by_index(c, i).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {i} in chain {c}")))
}

async fn chain_pulse(b: B, cp: web::Path<(String, String)>, req: HttpRequest) -> Reply {
    let p = pulse_by_index(&b, &cp).await?;
    Ok(pulse_reply(&req, &b.envelope(&p), &p, IMMUTABLE))
}

/// The source manifest of a published pulse: what an auditor needs to recompute its
/// localRandomValue.
async fn sources(b: B, cp: web::Path<(String, String)>) -> Reply {
    let p = pulse_by_index(&b, &cp).await?;
    let m = b
        .store()
        .manifest(p.chain_index, p.pulse_index)
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
        .store()
        .certificate(&h)
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
/// answer, 503 otherwise.
async fn health(b: B) -> HttpResponse {
    let now = now_ms();
    let period = i64::from(b.info().period_ms);
    let expected = now - now.rem_euclid(period);
    let db = b.store().counts().await;
    let newest = newest(&b).await.ok().flatten();
    let engine = b.engine_status();
    let behind = newest.as_ref().map(|s| expected - s.time_ms);
    // The pulse of this very boundary may still be on its way for a few milliseconds.
    let on_time = behind.is_some_and(|d| d <= period);
    let hsm = match engine.signer_ok {
        Some(true) => "ok",
        Some(false) => "failing",
        None => "unknown",
    };
    let healthy = on_time && db.is_ok() && hsm != "failing";
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "test": b.info().test.as_deref().map(crate::test_warning),
        "periodMs": period,
        "expectedTimeStamp": format_time_stamp(expected),
        "lastPulse": newest.as_ref().map(|s| serde_json::json!({
            "chainIndex": s.pulse.chain_index,
            "pulseIndex": s.pulse.pulse_index,
            "timeStamp": s.pulse.time_stamp,
        })),
        "behindMs": behind,
        "database": match &db { Ok(_) => "ok".to_string(), Err(_) => "unavailable".to_string() },
        "hsm": hsm,
        "lastError": engine.last_error,
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
