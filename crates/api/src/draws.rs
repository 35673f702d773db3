//! The draw registry (docs/draws.md): `POST /draws` registers a draw spec for an authenticated
//! client (the private-bytes credentials and checks) and answers with a receipt the beacon's
//! key signs; `GET /draws/{id}` serves the spec and receipt to anyone; `GET
//! /draws/{id}/result` makes the selection once the deciding pulse is public (425 before).
//! A new draw's entry in the transparency log (`lavabeacon_draw::receipt::log_entry`) is
//! appended in the transaction that stores it; its inclusion proof is served by
//! [`mod@crate::log`] at `/draws/{id}/inclusion`.
//! The methods, the spec and the receipt are `lavabeacon_draw`'s; this module only translates.

use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::reply::{Reply, IMMUTABLE, NO_STORE};
use crate::state::Beacon;
use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use lavabeacon_draw::receipt::{NewestPulse, Receipt, VERSION};
use lavabeacon_draw::{select, DrawResult, DrawSpec};
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::time::format_time_stamp;
use lavabeacon_format::{Hash512, Pulse};
use lavabeacon_store::StoredDraw;

/// Signs receipts with the beacon's key: what the process that runs the engine gives the API
/// (an API node has none, and refuses registrations). Blocking: it is called off the server's
/// threads.
pub trait ReceiptSigner: Send + Sync {
    /// The certificateId of the key that signs, and the cipher suite of its signatures.
    fn key(&self) -> (Hash512, u32);
    /// Signs `message` (an error's text goes to the operator's log, not to the client).
    fn sign_receipt(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

fn spec_and_receipt(d: &StoredDraw) -> serde_json::Value {
    let spec: serde_json::Value = serde_json::from_str(&d.spec).unwrap_or_default();
    let receipt: serde_json::Value = serde_json::from_str(&d.receipt).unwrap_or_default();
    serde_json::json!({"drawId": d.id.to_hex_lower(), "spec": spec, "receipt": receipt})
}

pub(crate) fn draw_id(text: &str) -> Result<Hash512, ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(Hash512::from)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{} is not a draw id: 128 hex digits, SHA-512 of the spec's canonical bytes",
                text.chars().take(140).collect::<String>()
            ))
        })
}

/// `POST /draws`.
pub(crate) async fn register(req: HttpRequest, body: Bytes, beacon: web::Data<Beacon>) -> Reply {
    let Some((signer, writer)) = beacon.draw_registry().cloned() else {
        return Err(ApiError::NotFound(
            "draws are registered with the beacon that runs the engine, not this API node".into(),
        ));
    };
    let Some(service) = beacon.private().cloned() else {
        return Err(ApiError::NotFound(
            "draw registration needs client credentials, and this beacon has none ([private] clients_file)".into(),
        ));
    };
    let peer = crate::client::client_addr(&req, &beacon.info().trusted_proxies)
        .ok_or_else(|| ApiError::BadRequest("no client address".into()))?;
    let host = crate::private::host_of(&req);
    let headers = crate::private::HeaderView(req.headers());
    let r = lavabeacon_private::gate::Request {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        query: req.query_string(),
        headers: &headers,
        peer,
        body: &body,
    };
    if let Err(refusal) = service.authenticate(&r, now_ms().div_euclid(1000)) {
        return Ok(crate::private::refused(refusal));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the spec is not UTF-8 JSON".into()))?;
    let spec = DrawSpec::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let id = Hash512::from(spec.id());
    if let Some(d) = beacon.ask(beacon.store().draw(&id)).await? {
        // Registered before: the first receipt stays the answer.
        return Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, NO_STORE))
            .json(spec_and_receipt(&d)));
    }
    let newest = crate::reply::newest(&beacon).await?.ok_or_else(|| {
        ApiError::NotNow("no pulse yet: nothing to register a draw against".into())
    })?;
    let now = now_ms();
    let period = i64::from(beacon.info().period_ms);
    let target = spec
        .target_ms()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    check_beacon(&spec, &newest.pulse)?;
    if target.rem_euclid(period) != 0 {
        return Err(ApiError::BadRequest(format!(
            "targetTime {} is not a pulse time: pulses are {} ms apart",
            spec.target_time, period
        )));
    }
    if target < now + 2 * period {
        return Err(ApiError::BadRequest(format!(
            "too late: targetTime {} must be at least two periods ({} ms) after the registration ({}), since the beacon knows its next value a period early",
            spec.target_time,
            2 * period,
            format_time_stamp(now).unwrap_or_default()
        )));
    }
    let mut receipt = Receipt {
        version: VERSION,
        draw_id: spec.id_hex(),
        registered_at: format_time_stamp(now).unwrap_or_default(),
        target_time: spec.target_time.clone(),
        period_ms: u64::from(beacon.info().period_ms),
        newest: NewestPulse {
            chain_index: newest.pulse.chain_index,
            pulse_index: newest.pulse.pulse_index,
            time_stamp: newest.pulse.time_stamp.clone(),
            output_value: newest.pulse.output_value.to_hex_upper(),
        },
        certificate_id: String::new(),
        cipher_suite: 0,
        signature_value: None,
    };
    // The receipt names the certificate and suite that sign it.
    let (certificate_id, suite) = signer.key();
    receipt.certificate_id = certificate_id.to_hex_lower();
    receipt.cipher_suite = suite;
    let message = receipt.message();
    let signature = tokio::task::spawn_blocking(move || signer.sign_receipt(&message))
        .await
        .map_err(|_| ApiError::NotNow("the beacon's key cannot sign now".into()))?
        .map_err(|e| {
            tracing::warn!("signing a draw receipt: {e}");
            ApiError::NotNow("the beacon's key cannot sign now; try again".into())
        })?;
    receipt.signature_value = Some(hex::encode_upper(&signature));
    let stored = StoredDraw {
        id,
        spec: String::from_utf8(spec.canonical()).expect("JSON is UTF-8"),
        receipt: serde_json::to_string(&receipt).expect("JSON"),
        target_ms: target,
        registered_ms: now,
    };
    // The draw's entry in the transparency log, appended with it in one transaction: the
    // receipt as signed, so the log commits to exactly what the key signed.
    let entry = lavabeacon_draw::receipt::log_entry(id.as_bytes(), &receipt.message(), &signature);
    let kept = beacon.ask(writer.put_draw(&stored, &entry)).await?;
    Ok(HttpResponse::build(if kept == stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
    .insert_header((header::LOCATION, format!("/draws/{}", id.to_hex_lower())))
    .insert_header((header::CACHE_CONTROL, NO_STORE))
    .json(spec_and_receipt(&kept)))
}

/// The spec must name this beacon, its current chain and its current certificate.
fn check_beacon(spec: &DrawSpec, newest: &Pulse) -> Result<(), ApiError> {
    let base = newest.uri.split("/chain/").next().unwrap_or("");
    if spec.beacon.base_uri.trim_end_matches('/') != base {
        return Err(ApiError::BadRequest(format!(
            "beacon.baseUri {} is not this beacon's ({base})",
            spec.beacon.base_uri
        )));
    }
    if spec.beacon.chain_index != newest.chain_index {
        return Err(ApiError::BadRequest(format!(
            "beacon.chainIndex {} is not the current chain ({})",
            spec.beacon.chain_index, newest.chain_index
        )));
    }
    if !spec
        .beacon
        .certificate_id
        .eq_ignore_ascii_case(&newest.certificate_id.to_hex_lower())
    {
        return Err(ApiError::BadRequest(format!(
            "beacon.certificateId is not the certificate of this beacon's pulses ({})",
            newest.certificate_id.to_hex_lower()
        )));
    }
    Ok(())
}

/// `GET /draws/{id}`.
pub(crate) async fn get(beacon: web::Data<Beacon>, id: web::Path<String>) -> Reply {
    let id = draw_id(&id)?;
    let d = found(&beacon, &id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .json(spec_and_receipt(&d)))
}

async fn found(beacon: &Beacon, id: &Hash512) -> Result<StoredDraw, ApiError> {
    beacon.ask(beacon.store().draw(id)).await?.ok_or_else(|| {
        ApiError::NotFound(format!("no draw {} is registered here", id.to_hex_lower()))
    })
}

/// `GET /draws/{id}/result`.
pub(crate) async fn result(beacon: web::Data<Beacon>, id: web::Path<String>) -> Reply {
    let id = draw_id(&id)?;
    let d = found(&beacon, &id).await?;
    let corrupt = |e: lavabeacon_draw::SpecError| {
        ApiError::Unavailable(lavabeacon_store::StoreError::corrupt(format!(
            "draw {}: {e}",
            id.to_hex_lower()
        )))
    };
    let spec = DrawSpec::parse(&d.spec).map_err(corrupt)?;
    let too_early = || {
        let wait = (d.target_ms - now_ms()).max(0) / 1000 + 1;
        ApiError::TooEarly {
            message: format!(
                "the pulse that decides this draw ({}) is not published yet",
                spec.target_time
            ),
            retry_after: wait as u64,
        }
    };
    if d.target_ms > now_ms() {
        return Err(too_early());
    }
    let store = beacon.store();
    let pulse = public(beacon.ask(store.at_or_after(d.target_ms)).await?).ok_or_else(too_early)?;
    let previous = if pulse.time_ms().ok() != Some(d.target_ms) && pulse.pulse_index > 1 {
        beacon
            .ask(store.by_index(pulse.chain_index, pulse.pulse_index - 1))
            .await?
    } else {
        None
    };
    let json =
        |p: &Pulse| serde_json::from_str::<serde_json::Value>(&to_json_line(p)).unwrap_or_default();
    let selection = select(&spec, pulse.output_value.as_bytes()).map_err(corrupt)?;
    let result = DrawResult {
        draw_id: id.to_hex_lower(),
        pulse: json(&pulse),
        previous: previous.as_ref().map(json),
        selection,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .json(result))
}
