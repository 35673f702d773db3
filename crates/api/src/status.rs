//! What the beacon says about itself: `/health` (JSON, 200 or 503) and `/metrics`
//! (Prometheus). Both answer from memory and at most one cheap store lookup, so a monitor that
//! polls them never loads the database.

use crate::clock::now_ms;
use crate::reply::{newest, NO_STORE};
use crate::state::Beacon;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use lavabeacon_format::time::format_time_stamp;
use std::fmt::Write;

/// `/health`: the pulse expected now against the newest one, each source's status in the
/// newest manifest, the HSM and the database. 200 when the beacon is on time and its parts
/// answer, 503 ("degraded") otherwise. On time means: the pulse of the current period is out,
/// or its timestamp is less than the late tolerance ago (and the one before it is out).
///
/// It never waits long and never loads the database: the newest pulse comes from memory (the
/// store is asked only once it is overdue, by one request every
/// [`crate::state::RECHECK_MS`]), and the database's state from the last store call anyone
/// made (asked with one indexed lookup when nobody has for half a second). Errors are public
/// categories, never internal text.
pub(crate) async fn health(beacon: web::Data<Beacon>) -> HttpResponse {
    let now = now_ms();
    let slots = beacon.slots();
    let period = slots.period_ms();
    let tolerance = i64::from(beacon.info().late_tolerance_ms);
    let expected = slots.at_or_before(now);
    // The oldest pulse that may be the newest one now.
    let due = if now - expected > tolerance {
        expected
    } else {
        expected - period
    };
    // Refreshes the newest pulse in memory if it is overdue; its answer is read below.
    let _ = newest(&beacon).await;
    let db_ok = beacon.database_ok().await;
    let newest = beacon.cached_last();
    let engine = beacon.engine_status();
    let behind = newest.as_ref().map(|s| expected - s.time_ms);
    let on_time = newest.as_ref().is_some_and(|s| s.time_ms >= due);
    let hsm = match engine.signer_ok {
        Some(true) => "ok",
        Some(false) => "failing",
        None => "unknown",
    };
    // Never waits on a database known to be down (the cached certificate still answers).
    let certificate = if db_ok {
        beacon.newest_certificate().await
    } else {
        beacon.cached_certificate()
    };
    let cert_state = certificate.as_ref().map(|c| {
        // As the engine and the verifier read it: valid up to and including the second
        // not_after names, and not after it.
        let left_ms = c.not_after.saturating_mul(1000) - now;
        let left = left_ms.div_euclid(1000);
        let state = if now < c.not_before.saturating_mul(1000) {
            "not yet valid"
        } else if left_ms < 0 {
            "expired"
        } else if left < beacon.info().certificate_warning_secs as i64 {
            "expiring"
        } else {
            "ok"
        };
        (c, left, state)
    });
    let cert_ok = cert_state
        .as_ref()
        .is_none_or(|(_, _, s)| matches!(*s, "ok" | "expiring"));
    let healthy = on_time && db_ok && hsm != "failing" && cert_ok;
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
        "test": beacon.info().test.as_deref().map(lavabeacon_format::test_beacon::warning),
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
        "certificate": cert_state.map(|(c, left, state)| serde_json::json!({
            "certificateId": c.id.to_hex_lower(),
            "notBefore": format_time_stamp(c.not_before.saturating_mul(1000)),
            "notAfter": format_time_stamp(c.not_after.saturating_mul(1000)),
            "expiresInSeconds": left,
            "status": state,
        })),
    });
    HttpResponse::build(if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    })
    .insert_header((header::CACHE_CONTROL, NO_STORE))
    .content_type("application/json")
    .body(body.to_string())
}

/// `/metrics`: the gauges read now (test beacon, newest pulse, open streams, each source in
/// the newest manifest), then the counters ([`crate::metrics::Metrics::render`]).
pub(crate) async fn metrics(beacon: web::Data<Beacon>) -> HttpResponse {
    let mut gauges = String::new();
    let newest = newest(&beacon).await.ok().flatten();
    let _ = writeln!(gauges, "# HELP lavabeacon_test_beacon 1 when this is a test beacon.\n# TYPE lavabeacon_test_beacon gauge\nlavabeacon_test_beacon {}", u8::from(beacon.info().test.is_some()));
    if let Some(s) = &newest {
        let _ = writeln!(gauges, "# HELP lavabeacon_last_pulse_timestamp_seconds timeStamp of the newest public pulse.\n# TYPE lavabeacon_last_pulse_timestamp_seconds gauge\nlavabeacon_last_pulse_timestamp_seconds {}", s.time_ms as f64 / 1000.0);
        let _ = writeln!(gauges, "# HELP lavabeacon_last_pulse_index pulseIndex of the newest public pulse.\n# TYPE lavabeacon_last_pulse_index gauge\nlavabeacon_last_pulse_index{{chain=\"{}\"}} {}", s.pulse.chain_index, s.pulse.pulse_index);
    }
    if let Some(c) = beacon.newest_certificate().await {
        let _ = writeln!(gauges, "# HELP lavabeacon_certificate_expiry_seconds Seconds until the certificate of the newest pulse expires (negative: expired).\n# TYPE lavabeacon_certificate_expiry_seconds gauge\nlavabeacon_certificate_expiry_seconds{{certificate=\"{}\"}} {}", &c.id.to_hex_lower()[..16], c.not_after - now_ms().div_euclid(1000));
    }
    let _ = writeln!(gauges, "# HELP lavabeacon_open_streams Streams (SSE, bulk) open now.\n# TYPE lavabeacon_open_streams gauge\nlavabeacon_open_streams {}", beacon.open_streams());
    if let Some(manifest) = beacon.engine_status().manifest {
        let _ = writeln!(gauges, "# HELP lavabeacon_source_healthy 1 when the source contributed to the newest pulse.\n# TYPE lavabeacon_source_healthy gauge");
        for source in &manifest.sources {
            let _ = writeln!(
                gauges,
                "lavabeacon_source_healthy{{source=\"{}\"}} {}",
                source.name,
                u8::from(source.status == "ok")
            );
        }
        let _ = writeln!(gauges, "# HELP lavabeacon_source_credited_bits Entropy credited to the source in the newest pulse.\n# TYPE lavabeacon_source_credited_bits gauge");
        for source in &manifest.sources {
            let _ = writeln!(
                gauges,
                "lavabeacon_source_credited_bits{{source=\"{}\"}} {}",
                source.name, source.credited_bits
            );
        }
    }
    if let Some(private) = beacon.private() {
        private_counters(&mut gauges, private);
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, NO_STORE))
        .content_type("text/plain; version=0.0.4")
        .body(beacon.metrics().render(&gauges))
}

/// Each private-bytes client's requests, bytes and refusals by reason: counts only, never a
/// value or a secret (client names are the operator's labels).
fn private_counters(out: &mut String, private: &lavabeacon_private::Service) {
    let counters = private.counters();
    let _ = writeln!(out, "# HELP lavabeacon_private_clients Clients in the clients file.\n# TYPE lavabeacon_private_clients gauge\nlavabeacon_private_clients {}", private.client_count());
    let _ = writeln!(out, "# HELP lavabeacon_private_requests_total Private-bytes requests served.\n# TYPE lavabeacon_private_requests_total counter");
    for (client, c) in &counters {
        let _ = writeln!(
            out,
            "lavabeacon_private_requests_total{{client=\"{client}\"}} {}",
            c.requests
        );
    }
    let _ = writeln!(out, "# HELP lavabeacon_private_bytes_total Bytes of private answers sent (in the form asked for).\n# TYPE lavabeacon_private_bytes_total counter");
    for (client, c) in &counters {
        let _ = writeln!(
            out,
            "lavabeacon_private_bytes_total{{client=\"{client}\"}} {}",
            c.bytes
        );
    }
    let _ = writeln!(out, "# HELP lavabeacon_private_refused_total Private-bytes requests refused, by reason.\n# TYPE lavabeacon_private_refused_total counter");
    for (client, c) in &counters {
        for (reason, n) in &c.refused {
            let _ = writeln!(
                out,
                "lavabeacon_private_refused_total{{client=\"{client}\",reason=\"{reason}\"}} {n}"
            );
        }
    }
}
