//! The one-pulse routes: the newest pulse, a pulse by time or by index (NIST's paths and
//! `/beacon/{timestamp}`), the first pulse of the newest chain, a pulse's source manifest, and
//! what pulses name by hash: certificates and external sources' descriptions. Each parses its path,
//! reads the cached newest pulse or the store, and answers through [`crate::reply`].

use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::reply::{newest, newest_in_chain, pulse_reply, reply_for, until_next, Reply, IMMUTABLE};
use crate::state::Beacon;
use crate::wait::{first_at_or_after, wants_wait};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lavabeacon_format::time::{
    format_time_stamp, parse_index, parse_millis, parse_when, SECONDS_BELOW,
};
use lavabeacon_format::Pulse;

/// A chain or pulse index in a path. Only the canonical form (no sign, no leading zeros) names
/// a pulse: every pulse answer may be cached for a year, so it must have one address, not many.
pub(crate) fn path_index(what: &str, text: &str) -> Result<u64, ApiError> {
    if what == "chain" && text == "last" {
        return Err(ApiError::BadRequest(
            "chain \"last\" is only in NIST's /beacon/2.0/chain/last/pulse/last and \
             /beacon/2.0/chain/last/pulse/1; elsewhere name the chain by its index"
                .into(),
        ));
    }
    let n = parse_index(what, text)?;
    // Parsed, it is digits with at most a leading '+': canonical when it starts 1 to 9.
    if !text.starts_with(|c: char| ('1'..='9').contains(&c)) {
        return Err(ApiError::NotFound(format!(
            "{what} {:?} is not how this beacon writes an index: write {n} (no sign, no leading zeros)",
            text.chars().take(40).collect::<String>()
        )));
    }
    Ok(n)
}

fn no_pulses() -> ApiError {
    ApiError::NotFound("the beacon has published no pulse yet".into())
}

fn not_out(t: i64) -> ApiError {
    ApiError::NotFound(format!(
        "no published pulse for {}",
        format_time_stamp(t).unwrap_or_else(|| t.to_string())
    ))
}

fn unknown_chain(chain: u64) -> ApiError {
    ApiError::NotFound(format!("chain {chain} has no published pulses"))
}

/// `/beacon/last` and its NIST aliases: the newest pulse, from memory, cacheable until the
/// next is due.
pub(crate) async fn beacon_last(beacon: web::Data<Beacon>, req: HttpRequest) -> Reply {
    let newest = newest(&beacon).await?.ok_or_else(no_pulses)?;
    Ok(pulse_reply(
        &beacon,
        &req,
        &newest.pulse,
        Some(&newest),
        &until_next(&beacon, newest.time_ms),
    ))
}

/// The `?wait=` of the routes that take it.
#[derive(serde::Deserialize)]
pub(crate) struct WaitQuery {
    wait: Option<String>,
}

/// `/beacon/{timestamp}`: the pulse at that time or the first after it; 425 when it is not
/// out yet, or with `?wait=true`, the pulse the moment it is published if it is due within a
/// period.
pub(crate) async fn beacon_at(
    beacon: web::Data<Beacon>,
    raw: web::Path<String>,
    query: web::Query<WaitQuery>,
    req: HttpRequest,
) -> Reply {
    // `/beacon/2.0` is NIST's prefix, not a time: answered as the unknown path it is.
    if raw.as_str() == "2.0" {
        return Ok(crate::routes::no_such_path(&req));
    }
    let t = parse_when(&raw)?;
    let wait = wants_wait(query.wait.as_deref())?;
    if let Some(s) = first_at_or_after(&beacon, t, wait).await? {
        return Ok(pulse_reply(&beacon, &req, &s.pulse, Some(&s), IMMUTABLE));
    }
    // The first period boundary at or after `t` that is still to come.
    let due = beacon.slots().at_or_after(t.max(now_ms() + 1));
    let wait_ms = due - now_ms();
    Err(ApiError::TooEarly {
        message: format!(
            "no pulse at or after {} has been published yet; the next is due at {}",
            format_time_stamp(t).unwrap_or_default(),
            format_time_stamp(due).unwrap_or_default()
        ),
        retry_after: ((wait_ms + 999) / 1000).max(1) as u64,
    })
}

/// `Lavabeacon-Warning` for a NIST time path given a number that reads as Unix seconds: NIST's
/// paths take milliseconds, so it is served as a 1970 time, and the answer says so.
fn millis_warning(raw: &str, t: i64) -> Option<String> {
    let number = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    (number && t < SECONDS_BELOW).then(|| {
        format!(
            "{raw} was read as Unix milliseconds ({}), as NIST's paths read times; for Unix seconds, multiply by 1000",
            format_time_stamp(t).unwrap_or_default()
        )
    })
}

/// The answer of a NIST time path, with [`millis_warning`] when it applies, whether the answer
/// is a pulse or an error.
fn warned(raw: &str, t: i64, reply: Reply) -> Reply {
    let Some(warning) = millis_warning(raw, t) else {
        return reply;
    };
    let mut response = reply.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
    if let Ok(v) = header::HeaderValue::from_str(&warning) {
        response.headers_mut().insert(WARNING.clone(), v);
    }
    Ok(response)
}

/// The header of [`millis_warning`].
static WARNING: header::HeaderName = header::HeaderName::from_static("lavabeacon-warning");

/// `/beacon/2.0/pulse/time/{t}`: the pulse at `t`, else the first after it; with `?wait=true`,
/// held until it is published if it is due within a period.
pub(crate) async fn nist_at(
    beacon: web::Data<Beacon>,
    raw: web::Path<String>,
    query: web::Query<WaitQuery>,
    req: HttpRequest,
) -> Reply {
    let t = parse_millis(&raw)?;
    let wait = wants_wait(query.wait.as_deref())?;
    let reply = async {
        let s = first_at_or_after(&beacon, t, wait)
            .await?
            .ok_or_else(|| not_out(t))?;
        Ok(pulse_reply(&beacon, &req, &s.pulse, Some(&s), IMMUTABLE))
    };
    warned(&raw, t, reply.await)
}

/// `/beacon/2.0/pulse/time/next/{t}`: the first pulse strictly after `t`.
pub(crate) async fn nist_next(
    beacon: web::Data<Beacon>,
    raw: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let t = parse_millis(&raw)?;
    let reply = async {
        let p = public(beacon.ask(beacon.store().after(t)).await?).ok_or_else(|| not_out(t))?;
        Ok(reply_for(&beacon, &req, &p, IMMUTABLE))
    };
    warned(&raw, t, reply.await)
}

/// `/beacon/2.0/pulse/time/previous/{t}`: the newest public pulse strictly before `t`.
pub(crate) async fn nist_previous(
    beacon: web::Data<Beacon>,
    raw: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let t = parse_millis(&raw)?;
    let reply = async {
        // Only pulses already public count, however far ahead `t` is.
        let p = public(
            beacon
                .ask(beacon.store().before(t.min(now_ms() + 1)))
                .await?,
        )
        .ok_or_else(|| not_out(t))?;
        // The answer is final once a later pulse exists.
        let cache = match &newest(&beacon).await? {
            Some(n) if n.time_ms >= t => IMMUTABLE.to_string(),
            Some(n) => until_next(&beacon, n.time_ms),
            None => "no-store".into(),
        };
        Ok(reply_for(&beacon, &req, &p, &cache))
    };
    warned(&raw, t, reply.await)
}

/// `/beacon/2.0/chain/{c}/pulse/last`: the newest public pulse of chain `c`.
pub(crate) async fn chain_last(
    beacon: web::Data<Beacon>,
    chain: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let chain = path_index("chain", &chain)?;
    let p = newest_in_chain(&beacon, chain)
        .await?
        .ok_or_else(|| unknown_chain(chain))?;
    let cache = until_next(&beacon, p.time_ms().unwrap_or(i64::MAX));
    Ok(reply_for(&beacon, &req, &p, &cache))
}

/// `/beacon/2.0/chain/{c}/pulse/first`.
pub(crate) async fn chain_first(
    beacon: web::Data<Beacon>,
    chain: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let chain = path_index("chain", &chain)?;
    let p = public(beacon.ask(beacon.store().first_in_chain(chain)).await?)
        .ok_or_else(|| unknown_chain(chain))?;
    Ok(reply_for(&beacon, &req, &p, IMMUTABLE))
}

/// `/beacon/2.0/chain/last/pulse/1`: the first pulse of the newest chain (the chain of the
/// newest public pulse). It changes when a new chain starts, so it is cached as the newest
/// pulse is: until the next is due.
pub(crate) async fn last_chain_first(beacon: web::Data<Beacon>, req: HttpRequest) -> Reply {
    let newest = newest(&beacon).await?.ok_or_else(no_pulses)?;
    let chain = newest.pulse.chain_index;
    let p = public(beacon.ask(beacon.store().first_in_chain(chain)).await?)
        .ok_or_else(|| unknown_chain(chain))?;
    Ok(reply_for(
        &beacon,
        &req,
        &p,
        &until_next(&beacon, newest.time_ms),
    ))
}

/// The public pulse at `(chain, pulse)` as written in a path.
async fn pulse_by_index(
    beacon: &Beacon,
    chain_and_pulse: &(String, String),
) -> Result<Pulse, ApiError> {
    let chain = path_index("chain", &chain_and_pulse.0)?;
    let pulse = path_index("pulse", &chain_and_pulse.1)?;
    public(beacon.ask(beacon.store().by_index(chain, pulse)).await?)
        .ok_or_else(|| ApiError::NotFound(format!("no published pulse {pulse} in chain {chain}")))
}

/// `/beacon/2.0/chain/{c}/pulse/{p}`.
pub(crate) async fn chain_pulse(
    beacon: web::Data<Beacon>,
    chain_and_pulse: web::Path<(String, String)>,
    req: HttpRequest,
) -> Reply {
    let p = pulse_by_index(&beacon, &chain_and_pulse).await?;
    Ok(reply_for(&beacon, &req, &p, IMMUTABLE))
}

/// `/beacon/2.0/chain/{c}/pulse/{p}/sources`: the source manifest of a published pulse, what
/// an auditor needs to recompute its localRandomValue.
pub(crate) async fn sources(
    beacon: web::Data<Beacon>,
    chain_and_pulse: web::Path<(String, String)>,
) -> Reply {
    let p = pulse_by_index(&beacon, &chain_and_pulse).await?;
    let manifest = beacon
        .ask(beacon.store().manifest(p.chain_index, p.pulse_index))
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
        .body(manifest))
}

/// A SHA-512 that names something in a path (a certificateId, an external sourceId): 128 hex
/// digits, in either case.
fn path_hash(what: &str, field: &str, text: &str) -> Result<lavabeacon_format::Hash512, ApiError> {
    lavabeacon_format::json::hash_field(field, text).map_err(|_| {
        ApiError::BadRequest(format!(
            "{what} id {:?} is not 128 hex digits (the {field} of a pulse)",
            text.chars().take(40).collect::<String>()
        ))
    })
}

/// `/beacon/2.0/certificate/{id}`: the certificate a pulse's certificateId names, as PEM.
pub(crate) async fn certificate(beacon: web::Data<Beacon>, id: web::Path<String>) -> Reply {
    let hash = path_hash("certificate", "certificateId", &id)?;
    let der = beacon
        .ask(beacon.store().certificate(&hash))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no certificate {}", hash.to_hex_lower())))?;
    let pem = lavabeacon_format::cert::Certificate::from_der(&der)
        .map(|c| c.to_pem())
        .map_err(|e| ApiError::NotFound(format!("certificate unreadable: {e}")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .content_type("application/x-pem-file")
        .body(pem))
}

/// `/beacon/2.0/externalSource/{id}`: the description of an external source, as `text/plain`,
/// whose SHA-512 is the `external.sourceId` of the pulses that used it (NIST's schema). Stored
/// by the engine before its first pulse that names it, and kept for ever, so it never changes.
pub(crate) async fn external_source(beacon: web::Data<Beacon>, id: web::Path<String>) -> Reply {
    let hash = path_hash("source", "external.sourceId", &id)?;
    let description = beacon
        .ask(beacon.store().external_source(&hash))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no external source {}: this beacon has published no pulse with that sourceId \
                 (all zeros means no external source was used)",
                hash.to_hex_upper()
            ))
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .content_type("text/plain; charset=utf-8")
        .body(description))
}
