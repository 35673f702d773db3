//! The route table: every path the API serves, its handler, and its description for
//! `/openapi.json`, in one list, so that a route cannot be served without being described, or
//! described without being served. Also the answers for unknown paths and methods. The
//! handlers are in [`crate::pulses`], [`crate::bulk`], [`crate::stream`], [`crate::status`] and
//! [`crate::page`].
//!
//! The table is a `macro_rules!` because one entry must become both a handler registration
//! (each handler has its own type) and a `const` description; it generates no handler logic.

use crate::error::json_error;
use crate::openapi::{Param, RouteDoc};
use crate::{bulk, page, private, pulses, status, stream};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Resource};

/// One table makes both the routes and `/openapi.json`.
macro_rules! routes {
    ($($path:literal => $handler:path {
        $summary:literal,
        params: [$(($param:literal, $location:literal, $description:literal)),* $(,)?],
        produces: $produces:literal,
        statuses: [$($status:literal),* $(,)?] $(,)?
    })*) => {
        fn register(cfg: &mut web::ServiceConfig) {
            $( cfg.service(get($path, $handler)); )*
        }
        /// Every route the API serves, in the order they are matched.
        pub const ROUTES: &[RouteDoc] = &[$(RouteDoc {
            path: $path,
            summary: $summary,
            params: &[$(Param { name: $param, location: $location, description: $description }),*],
            produces: $produces,
            statuses: &[$($status),*],
        }),*];
    };
}

routes! {
    "/" => page::index {
        "The web page: the newest pulse and its sources", params: [],
        produces: "text/html", statuses: [200],
    }
    "/health" => status::health {
        "The pulse expected now against the newest, each source, the HSM and the database", params: [],
        produces: "application/json", statuses: [200, 503],
    }
    "/metrics" => status::metrics {
        "Prometheus metrics", params: [],
        produces: "text/plain; version=0.0.4", statuses: [200],
    }
    "/openapi.json" => openapi_json {
        "This description", params: [],
        produces: "application/json", statuses: [200],
    }
    "/beacon/last" => pulses::beacon_last {
        "The newest pulse", params: [],
        produces: "application/json", statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/pulse/last" => pulses::beacon_last {
        "The newest pulse (NIST path)", params: [],
        produces: "application/json", statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/pulse/time/previous/{t}" => pulses::nist_previous {
        "The newest pulse strictly before t", params: [("t", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/pulse/time/next/{t}" => pulses::nist_next {
        "The first pulse strictly after t", params: [("t", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/pulse/time/{t}" => pulses::nist_at {
        "The pulse at t, else the first after it", params: [("t", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/last/pulse/last" => pulses::beacon_last {
        "The newest pulse of the newest chain", params: [],
        produces: "application/json", statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/last" => pulses::chain_last {
        "The newest pulse of chain c", params: [("c", "path", "chain index, from 1")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/first" => pulses::chain_first {
        "The first pulse of chain c", params: [("c", "path", "chain index, from 1")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/sources" => bulk::sources_bulk {
        "Source manifests of pulses from..=to of chain c, as JSON Lines; at most 20,000 per answer, then a Link header rel=next",
        params: [("c", "path", "chain index, from 1"), ("from", "query", "first pulse index (default 1)"), ("to", "query", "last pulse index (default the newest)")],
        produces: "application/x-ndjson", statuses: [200, 400, 429, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}/sources" => pulses::sources {
        "The source manifest of pulse p: recombines to its localRandomValue",
        params: [("c", "path", "chain index, from 1"), ("p", "path", "pulse index, from 1")],
        produces: "application/json", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}" => pulses::chain_pulse {
        "Pulse p of chain c", params: [("c", "path", "chain index, from 1"), ("p", "path", "pulse index, from 1")],
        produces: "application/json", statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/certificate/{id}" => pulses::certificate {
        "The certificate a pulse's certificateId names (PEM)", params: [("id", "path", "certificateId: 128 hex digits")],
        produces: "application/x-pem-file", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/skipList/{c}/{p1}/{p2}" => bulk::skip_list_by_index {
        "A skip path from pulse p1 to pulse p2 of chain c: a JSON array of pulses, each linked to the one before by a skip-list value",
        params: [("c", "path", "chain index"), ("p1", "path", "pulse index of the start"), ("p2", "path", "pulse index of the end")],
        produces: "application/json", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/skipList/{t1}/{t2}" => bulk::skip_list_by_time {
        "A skip path from the pulse at t1 (or after) to the pulse at t2 (or before)",
        params: [("t1", "path", "Unix milliseconds (RFC 3339 also accepted)"), ("t2", "path", "Unix milliseconds (RFC 3339 also accepted)")],
        produces: "application/json", statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/pulses" => bulk::pulses {
        "Pulses with from <= timeStamp <= to, oldest first, as JSON Lines; at most 20,000 periods per answer, then a Link header rel=next",
        params: [("from", "query", "RFC 3339, Unix seconds or Unix milliseconds"), ("to", "query", "same forms; default now")],
        produces: "application/x-ndjson", statuses: [200, 400, 429, 503],
    }
    "/private/v1/bytes" => private::bytes {
        "Private random bytes for an authenticated client (HMAC-signed request; see docs/private-bytes.md). Never logged or stored",
        params: [("n", "query", "how many bytes, 1 to 65536"), ("format", "query", "hex (default), base64, raw, csv or json"),
                 ("Lavabeacon-Key-Id", "header", "the key that signed, NAME.N"), ("Lavabeacon-Date", "header", "Unix seconds, within 60 s of the server's clock"),
                 ("Lavabeacon-Nonce", "header", "16 to 64 base64url characters, new for every request"), ("Lavabeacon-Signature", "header", "v1= and the base64 HMAC-SHA256 of the string to sign")],
        produces: "text/plain", statuses: [200, 400, 401, 403, 404, 413, 429, 503],
    }
    "/private/v1/integers" => private::integers {
        "Private random integers, uniform in [min, max], for an authenticated client (as /private/v1/bytes)",
        params: [("count", "query", "how many, 1 to 8192"), ("min", "query", "the smallest, a signed 64-bit integer"), ("max", "query", "the largest"),
                 ("format", "query", "json (default) or csv")],
        produces: "application/json", statuses: [200, 400, 401, 403, 404, 413, 429, 503],
    }
    "/beacon/2.0/stream" => stream::stream {
        "Server-Sent Events: one event per new pulse (id chain-index); resumes after Last-Event-ID",
        params: [("Last-Event-ID", "header", "the id of the last event received, e.g. 1-42")],
        produces: "text/event-stream", statuses: [200, 400, 404, 429, 503],
    }
    "/beacon/{timestamp}" => pulses::beacon_at {
        "The pulse at that time or the first after it; 425 with Retry-After before it is published",
        params: [("timestamp", "path", "RFC 3339 (2026-11-21T10:00:00Z), Unix seconds (below 100,000,000,000) or Unix milliseconds")],
        produces: "application/json", statuses: [200, 304, 400, 425, 503],
    }
}

/// Registers every route, and JSON answers for unknown paths.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg);
    cfg.default_service(web::to(not_found));
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
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "{} is not allowed here: the beacon is read with GET",
            req.method()
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    response
}

/// `/openapi.json`: the table describing itself. (Here, not in [`mod@crate::openapi`], because
/// it serves [`ROUTES`]: the table's module may depend on the description's, not the reverse.)
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(crate::openapi::openapi(ROUTES).to_string())
}
