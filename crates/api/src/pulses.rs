//! The one-pulse routes: the newest pulse, a pulse by time or by index (NIST's paths and
//! `/beacon/{timestamp}`), a pulse's source manifest, and certificates. Each parses its path,
//! reads the cached newest pulse or the store, and answers through [`crate::reply`].

use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::reply::{newest, newest_in_chain, pulse_reply, reply_for, until_next, Reply, IMMUTABLE};
use crate::state::Beacon;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lavabeacon_format::time::{format_time_stamp, parse_index, parse_millis, parse_when};
use lavabeacon_format::Pulse;

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

/// `/beacon/{timestamp}`: the pulse at that time or the first after it; 425 when it is not
/// out yet.
pub(crate) async fn beacon_at(
    beacon: web::Data<Beacon>,
    t: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let t = parse_when(&t)?;
    if let Some(p) = public(beacon.ask(beacon.store().at_or_after(t)).await?) {
        return Ok(reply_for(&beacon, &req, &p, IMMUTABLE));
    }
    // The first period boundary at or after `t` that is still to come.
    let now = now_ms();
    let due = beacon.slots().at_or_after(t.max(now + 1));
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

/// `/beacon/2.0/pulse/time/{t}`: the pulse at `t`, else the first after it.
pub(crate) async fn nist_at(
    beacon: web::Data<Beacon>,
    t: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let t = parse_millis(&t)?;
    let p = public(beacon.ask(beacon.store().at_or_after(t)).await?).ok_or_else(|| not_out(t))?;
    Ok(reply_for(&beacon, &req, &p, IMMUTABLE))
}

/// `/beacon/2.0/pulse/time/next/{t}`: the first pulse strictly after `t`.
pub(crate) async fn nist_next(
    beacon: web::Data<Beacon>,
    t: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let t = parse_millis(&t)?;
    let p = public(beacon.ask(beacon.store().after(t)).await?).ok_or_else(|| not_out(t))?;
    Ok(reply_for(&beacon, &req, &p, IMMUTABLE))
}

/// `/beacon/2.0/pulse/time/previous/{t}`: the newest public pulse strictly before `t`.
pub(crate) async fn nist_previous(
    beacon: web::Data<Beacon>,
    t: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let t = parse_millis(&t)?;
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
}

/// `/beacon/2.0/chain/{c}/pulse/last`: the newest public pulse of chain `c`.
pub(crate) async fn chain_last(
    beacon: web::Data<Beacon>,
    chain: web::Path<String>,
    req: HttpRequest,
) -> Reply {
    let chain = parse_index("chain", &chain)?;
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
    let chain = parse_index("chain", &chain)?;
    let p = public(beacon.ask(beacon.store().first_in_chain(chain)).await?)
        .ok_or_else(|| unknown_chain(chain))?;
    Ok(reply_for(&beacon, &req, &p, IMMUTABLE))
}

/// The public pulse at `(chain, pulse)` as written in a path.
async fn pulse_by_index(
    beacon: &Beacon,
    chain_and_pulse: &(String, String),
) -> Result<Pulse, ApiError> {
    let chain = parse_index("chain", &chain_and_pulse.0)?;
    let pulse = parse_index("pulse", &chain_and_pulse.1)?;
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

/// `/beacon/2.0/certificate/{id}`: the certificate a pulse's certificateId names, as PEM.
pub(crate) async fn certificate(beacon: web::Data<Beacon>, id: web::Path<String>) -> Reply {
    let shown: String = id.chars().take(40).collect();
    let hash = lavabeacon_format::json::hash_field("certificateId", &id).map_err(|_| {
        ApiError::BadRequest(format!(
            "certificate id {shown:?} is not 128 hex digits (the certificateId of a pulse)"
        ))
    })?;
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
