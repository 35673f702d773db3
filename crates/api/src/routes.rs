//! The route table: every path the API serves, its handler, and its description for
//! `/openapi.json`, in one list, so that a route cannot be served without being described, or
//! described without being served. Also the answers for unknown paths and methods. The
//! handlers are in [`crate::pulses`], [`crate::bulk`], [`crate::stream`], [`crate::status`],
//! [`crate::page`], [`crate::draws`], [`crate::private`], [`mod@crate::log`] and
//! [`crate::witness`].
//!
//! The table is a `macro_rules!` because one entry must become both a handler registration
//! (each handler has its own type) and a `const` description; it generates no handler logic.

use crate::error::json_error;
use crate::openapi::{Answer, Example, Examples, Kind, Location, Param, RouteDoc, Verb};
use crate::state::Beacon;
use crate::{bulk, draws, log, page, private, pulses, status, stream, witness};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Resource};

/// One table makes both the routes and `/openapi.json`.
macro_rules! routes {
    ($($path:literal => $handler:path {
        $(method: $method:ident,)?
        $operation:literal, $summary:literal,
        params: [$($param:expr),* $(,)?],
        answer: $answer:ident,
        statuses: [$($status:literal),* $(,)?] $(,)?
    })*) => {
        fn register(cfg: &mut web::ServiceConfig) {
            $( cfg.service(resource!($($method)?; $path, $handler)); )*
        }
        /// Every route the API serves, in the order they are matched.
        pub const ROUTES: &[RouteDoc] = &[$(RouteDoc {
            path: $path,
            method: verb!($($method)?),
            operation_id: $operation,
            summary: $summary,
            params: &[$($param),*],
            answer: Answer::$answer,
            statuses: &[$($status),*],
        }),*];
    };
}

/// The resource of a route: GET (and HEAD) unless the table says POST.
macro_rules! resource {
    (; $path:expr, $handler:path) => {
        get($path, $handler)
    };
    (POST; $path:expr, $handler:path) => {
        post($path, $handler)
    };
}

/// The method a route's description names.
macro_rules! verb {
    () => {
        Verb::Get
    };
    (POST) => {
        Verb::Post
    };
}

const fn path(
    name: &'static str,
    kind: Kind,
    description: &'static str,
    example: Example,
) -> Param {
    Param {
        name,
        location: Location::Path,
        required: true,
        kind,
        description,
        example,
    }
}

const fn query(name: &'static str, required: bool, kind: Kind, description: &'static str) -> Param {
    Param {
        name,
        location: Location::Query,
        required,
        kind,
        description,
        example: Example::None,
    }
}

const fn head(name: &'static str, required: bool, kind: Kind, description: &'static str) -> Param {
    Param {
        name,
        location: Location::Header,
        required,
        kind,
        description,
        example: Example::None,
    }
}

const C: Param = path("c", Kind::Index, "chain index, from 1", Example::Chain);
const P: Param = path("p", Kind::Index, "pulse index, from 1", Example::Pulse);
const P1: Param = path(
    "p1",
    Kind::Index,
    "pulse index of the start",
    Example::Pulse,
);
const P2: Param = path(
    "p2",
    Kind::Index,
    "pulse index of the end (at or after p1)",
    Example::Pulse,
);
const T: Param = path(
    "t",
    Kind::Millis,
    "Unix milliseconds (RFC 3339 also accepted)",
    Example::Time,
);
const T1: Param = path(
    "t1",
    Kind::Millis,
    "the start: Unix milliseconds (RFC 3339 also accepted)",
    Example::Time,
);
const T2: Param = path(
    "t2",
    Kind::Millis,
    "the end: Unix milliseconds (RFC 3339 also accepted)",
    Example::Time,
);
const SIZE: Param = query(
    "size",
    false,
    Kind::Range(1, i64::MAX),
    "the tree size of a checkpoint the log signed, to prove against (default: the newest checkpoint)",
);
const WAIT: Param = query("wait", false, Kind::Flag,
    "true: when the pulse is due within one period, hold the request until it is published (then 200) instead of answering at once");
const PRIVATE_AUTH: [Param; 4] = [
    head(
        "Lavabeacon-Key-Id",
        true,
        Kind::Pattern("^[A-Za-z0-9_-]{1,64}\\.[0-9]{1,9}$"),
        "the key that signed, NAME.N",
    ),
    head(
        "Lavabeacon-Date",
        true,
        Kind::Range(0, 253_402_300_799),
        "Unix seconds, within 60 s of the server's clock",
    ),
    head(
        "Lavabeacon-Nonce",
        true,
        Kind::Pattern("^[A-Za-z0-9_-]{16,64}$"),
        "16 to 64 base64url characters, new for every request",
    ),
    head(
        "Lavabeacon-Signature",
        true,
        Kind::Pattern("^v1=[A-Za-z0-9+/]{43}=$"),
        "v1= and the base64 HMAC-SHA256 of the string to sign",
    ),
];

routes! {
    "/" => page::index {
        "getPage", "The web page: the beacon explorer, with the newest pulse in it (readable without JavaScript); it verifies pulses in the browser", params: [],
        answer: Page, statuses: [200, 304],
    }
    "/assets/{version}/{file}" => page::asset {
        "getAsset", "One of the explorer's files (scripts, stylesheet, icon); kept for a year under the version the page names",
        params: [path("version", Kind::Pattern("^[0-9a-f]{16}$"), "the assets' version, as the page names it (another version is answered with today's file, not kept)", Example::None),
                 path("file", Kind::OneOf(page::ASSET_NAMES), "the file", Example::None)],
        answer: Asset, statuses: [200, 304, 400, 404],
    }
    "/favicon.ico" => page::favicon {
        "getFavicon", "The beacon's icon", params: [],
        answer: Icon, statuses: [200, 304],
    }
    "/health" => status::health {
        "getHealth", "The pulse expected now against the newest, each source, the HSM and the database", params: [],
        answer: Health, statuses: [200, 503],
    }
    "/metrics" => status::metrics {
        "getMetrics", "Prometheus metrics", params: [],
        answer: Metrics, statuses: [200],
    }
    "/openapi.json" => openapi_json {
        "getOpenApi", "This description", params: [],
        answer: OpenApi, statuses: [200],
    }
    "/beacon/last" => pulses::beacon_last {
        "getLast", "The newest pulse", params: [],
        answer: Pulse, statuses: [200, 304, 404, 503],
    }
    // Early: the busiest dynamic route (lottery clients, long-polls) should not be matched
    // against every NIST path first. It takes only one segment after /beacon/, so it cannot
    // shadow any route below; `/beacon/2.0` alone is answered as the unknown path it is.
    "/beacon/{timestamp}" => pulses::beacon_at {
        "getPulseAt",
        "The pulse at that time or the first after it; 425 with Retry-After before it is published, or with wait=true, held until then if it is due within a period",
        params: [path("timestamp", Kind::AnyTime, "RFC 3339 (2026-11-21T10:00:00Z), Unix seconds (below 100,000,000,000) or Unix milliseconds", Example::Time), WAIT],
        answer: Pulse, statuses: [200, 304, 400, 404, 425, 429, 503],
    }
    "/beacon/2.0/pulse/last" => pulses::beacon_last {
        "getNistLast", "The newest pulse (NIST path)", params: [],
        answer: Pulse, statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/pulse/time/previous/{t}" => pulses::nist_previous {
        "getPulseBefore", "The newest pulse strictly before t", params: [T],
        answer: Pulse, statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/pulse/time/next/{t}" => pulses::nist_next {
        "getPulseAfter", "The first pulse strictly after t", params: [T],
        answer: Pulse, statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/pulse/time/{t}" => pulses::nist_at {
        "getPulseAtTime", "The pulse at t, else the first after it; with wait=true, held until it is published if it is due within a period",
        params: [T, WAIT],
        answer: Pulse, statuses: [200, 304, 400, 404, 429, 503],
    }
    "/beacon/2.0/chain/last/pulse/last" => pulses::beacon_last {
        "getLastOfLastChain", "The newest pulse of the newest chain", params: [],
        answer: Pulse, statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/chain/last/pulse/1" => pulses::last_chain_first {
        "getFirstOfLastChain", "The first pulse of the newest chain", params: [],
        answer: Pulse, statuses: [200, 304, 404, 503],
    }
    "/beacon/2.0/chain/time/{t1}/{t2}/previous" => bulk::chain_between {
        "getChainBetween",
        "Every pulse from the one at t1 (or the first after it) to the one at t2 (or the last before it), in one chain, linked by previous; 400 past the server's limit (max_chain_pulses, 20,000 by default)",
        params: [T1, T2],
        answer: Chain, statuses: [200, 400, 404, 429, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/last" => pulses::chain_last {
        "getChainLast", "The newest pulse of chain c", params: [C],
        answer: Pulse, statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/first" => pulses::chain_first {
        "getChainFirst", "The first pulse of chain c", params: [C],
        answer: Pulse, statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/sources" => bulk::sources_bulk {
        "getChainSources",
        "Source manifests of pulses from..=to of chain c, as JSON Lines; at most 20,000 per answer, then a Link header rel=next",
        params: [C, query("from", false, Kind::Index, "first pulse index (default 1)"), query("to", false, Kind::Index, "last pulse index (default the newest)")],
        answer: ManifestLines, statuses: [200, 400, 404, 429, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}/sources" => pulses::sources {
        "getPulseSources", "The source manifest of pulse p: recombines to its localRandomValue",
        params: [C, P],
        answer: Manifest, statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}/inclusion" => log::pulse_inclusion {
        "getPulseInclusion",
        "The inclusion proof of pulse p's entry (its outputValue) in the transparency log, with the signed checkpoint (and its cosignatures) it leads to: the newest, or the one of tree size `size`; 404 until a checkpoint covers the pulse, or when the beacon keeps no log",
        params: [C, P, SIZE],
        answer: LogInclusion, statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/chain/{c}/pulse/{p}" => pulses::chain_pulse {
        "getPulse", "Pulse p of chain c", params: [C, P],
        answer: Pulse, statuses: [200, 304, 400, 404, 503],
    }
    "/beacon/2.0/certificate/{id}" => pulses::certificate {
        "getCertificate", "The certificate a pulse's certificateId names (PEM)",
        params: [path("id", Kind::Sha512Hex, "certificateId: 128 hex digits", Example::CertificateId)],
        answer: Certificate, statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/externalSource/{id}" => pulses::external_source {
        "getExternalSource", "The description of an external source (text/plain) whose SHA-512 is a pulse's external.sourceId",
        params: [path("id", Kind::Sha512Hex, "external.sourceId: 128 hex digits", Example::SourceId)],
        answer: ExternalSource, statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/skipList/{c}/{p1}/{p2}" => bulk::skip_list_by_index {
        "getSkipPathByIndex",
        "A skip path from pulse p1 to pulse p2 of chain c: a JSON array of pulses (or NIST's XML <skipList>), each linked to the one before by a skip-list value",
        params: [C, P1, P2],
        answer: SkipPath, statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/skipList/{t1}/{t2}" => bulk::skip_list_by_time {
        "getSkipPathByTime", "A skip path from the pulse at t1 (or after) to the pulse at t2 (or before)",
        params: [T1, T2],
        answer: SkipPath, statuses: [200, 400, 404, 503],
    }
    "/beacon/2.0/pulses" => bulk::pulses {
        "getPulses",
        "Pulses with from <= timeStamp <= to, oldest first, as JSON Lines (or NIST's XML); at most 20,000 periods per answer, then a Link header rel=next",
        params: [query("from", true, Kind::AnyTime, "RFC 3339, Unix seconds or Unix milliseconds"), query("to", false, Kind::AnyTime, "same forms; default now")],
        answer: PulseLines, statuses: [200, 400, 404, 429, 503],
    }
    "/private/v1/bytes" => private::bytes {
        "getPrivateBytes",
        "Private random bytes for an authenticated client (HMAC-signed request over HTTPS; see docs/private-bytes.md). Never logged or stored; 404 where the operator has not turned it on",
        params: [query("n", true, Kind::Range(1, 65_536), "how many bytes"),
                 query("format", false, Kind::OneOf(&["hex", "base64", "raw", "csv", "json"]), "the form of the answer (default hex)"),
                 PRIVATE_AUTH[0], PRIVATE_AUTH[1], PRIVATE_AUTH[2], PRIVATE_AUTH[3]],
        answer: PrivateBytes, statuses: [200, 400, 401, 403, 404, 413, 429, 503],
    }
    "/private/v1/integers" => private::integers {
        "getPrivateIntegers", "Private random integers, uniform in [min, max], for an authenticated client (as /private/v1/bytes)",
        params: [query("count", true, Kind::Range(1, 8192), "how many"), query("min", true, Kind::Range(i64::MIN, i64::MAX), "the smallest"),
                 query("max", true, Kind::Range(i64::MIN, i64::MAX), "the largest, at least min"),
                 query("format", false, Kind::OneOf(&["json", "csv"]), "the form of the answer (default json)"),
                 PRIVATE_AUTH[0], PRIVATE_AUTH[1], PRIVATE_AUTH[2], PRIVATE_AUTH[3]],
        answer: PrivateIntegers, statuses: [200, 400, 401, 403, 404, 413, 429, 503],
    }
    "/draws" => draws::register {
        method: POST,
        "registerDraw",
        "Registers a draw spec before its pulse, for an authenticated client (HMAC-signed request, as /private/v1/bytes; docs/draws.md): 201 with the receipt the beacon's key signs (200 with the first receipt for a spec registered before); 400 when its target pulse is less than two periods away",
        params: [PRIVATE_AUTH[0], PRIVATE_AUTH[1], PRIVATE_AUTH[2], PRIVATE_AUTH[3]],
        answer: Draw, statuses: [200, 201, 400, 401, 403, 404, 413, 429, 503],
    }
    "/draws/{id}/result" => draws::result {
        "getDrawResult", "A registered draw's result: the pulse that decided it and the selection; 425 with Retry-After before that pulse is published",
        params: [path("id", Kind::Sha512Hex, "the draw's id: 128 hex digits", Example::None)],
        answer: DrawResult, statuses: [200, 400, 404, 425, 503],
    }
    "/draws/{id}/inclusion" => log::draw_inclusion {
        "getDrawInclusion", "The inclusion proof of a registered draw's entry in the transparency log, as for a pulse",
        params: [path("id", Kind::Sha512Hex, "the draw's id: 128 hex digits", Example::None), SIZE],
        answer: LogInclusion, statuses: [200, 304, 400, 404, 503],
    }
    "/draws/{id}" => draws::get {
        "getDraw", "A registered draw: its spec and the receipt the beacon signed",
        params: [path("id", Kind::Sha512Hex, "the draw's id: 128 hex digits", Example::None)],
        answer: Draw, statuses: [200, 400, 404, 503],
    }
    "/log/key" => log::key {
        "getLogKey", "The transparency log's verifier key (a C2SP signed-note vkey) and a newline; 404 when the beacon keeps no log",
        params: [],
        answer: LogKey, statuses: [200, 404],
    }
    "/log/checkpoint" => log::checkpoint {
        "getLogCheckpoint", "The log's newest checkpoint (C2SP tlog-checkpoint), a signed note with the witnesses' cosignatures as further signature lines",
        params: [],
        answer: LogCheckpoint, statuses: [200, 304, 404, 503],
    }
    "/log/tile/{path:.*}" => log::tile {
        "getLogTile", "A C2SP tlog-tiles tile within the newest checkpoint's tree: hashes (<L>/<N>[.p/<W>], 32 bytes each) or an entry bundle (entries/<N>[.p/<W>]); kept for a year",
        params: [path("path", Kind::Pattern(log::TILE_PATTERN), "the tile's path after tile/: <L>/<N>[.p/<W>] or entries/<N>[.p/<W>], N in groups of three digits, all but the last prefixed x", Example::Text("0/000.p/1"))],
        answer: LogTile, statuses: [200, 400, 404, 503],
    }
    "/log/consistency" => log::consistency {
        "getLogConsistency", "The consistency proof (RFC 9162) from the log's tree of `from` entries to its tree of `to`, for `to` within the newest checkpoint; 404 beyond it or for from > to",
        params: [query("from", true, Kind::Range(0, i64::MAX), "the old tree size"),
                 query("to", true, Kind::Range(0, i64::MAX), "the new tree size, at least from")],
        answer: LogConsistency, statuses: [200, 400, 404, 503],
    }
    "/log/witnesses" => log::witnesses {
        "getLogWitnesses", "The witnesses whose cosignatures the log's checkpoints carry (name, cosignature vkey, submission URL), and how many are required",
        params: [],
        answer: LogWitnesses, statuses: [200, 404],
    }
    "/witness/add-checkpoint" => witness::add_checkpoint {
        method: POST,
        "addCheckpoint",
        "C2SP tlog-witness: a log's checkpoint with a consistency proof from the size this witness last cosigned; 200 with the witness's cosignature/v1 line, 409 with its size, 403, 404 (unknown log, or this beacon is no witness), 422 (inconsistent) as the spec says; 503 while a configured witness is not ready",
        params: [],
        answer: Cosignature, statuses: [200, 400, 403, 404, 409, 413, 422, 503],
    }
    "/beacon/2.0/stream" => stream::stream {
        "getStream", "Server-Sent Events: one event per new pulse (id chain-pulse); resumes after Last-Event-ID",
        params: [head("Last-Event-ID", false, Kind::EventId, "the id of the last event received, e.g. 1-42")],
        answer: Events, statuses: [200, 400, 404, 429, 503],
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
        .route(web::method(Method::OPTIONS).to(preflight))
        .default_service(web::to(method_not_allowed))
}

/// The methods every GET route takes.
const ALLOWED: &str = "GET, HEAD, OPTIONS";

/// The methods of a POST route.
const ALLOWED_POST: &str = "POST, OPTIONS";

/// A POST resource (a JSON body); other methods get a JSON 405.
fn post<F, Args>(path: &str, handler: F) -> Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .route(web::method(Method::OPTIONS).to(preflight_post))
        .default_service(web::to(post_only))
}

/// `OPTIONS` of a POST route.
async fn preflight_post() -> HttpResponse {
    let mut response = preflight().await;
    let h = response.headers_mut();
    h.insert(
        header::ALLOW,
        header::HeaderValue::from_static(ALLOWED_POST),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static(ALLOWED_POST),
    );
    response
}

async fn post_only(req: HttpRequest) -> HttpResponse {
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "{} is not allowed here: this path takes POST",
            req.method().as_str().chars().take(20).collect::<String>()
        ),
    );
    response.headers_mut().insert(
        header::ALLOW,
        header::HeaderValue::from_static(ALLOWED_POST),
    );
    response
}

/// The request headers a script on another origin may send: content negotiation, revalidation,
/// resuming a stream, and the private routes' signature headers (those requests are still
/// checked against the client's allowed origins).
const ALLOWED_HEADERS: &str = "Accept, Content-Type, If-None-Match, Last-Event-ID, Cache-Control, \
    Lavabeacon-Key-Id, Lavabeacon-Date, Lavabeacon-Nonce, Lavabeacon-Signature";

/// `OPTIONS`: the CORS preflight a browser sends before a cross-origin `fetch` with headers of
/// its own (If-None-Match, Last-Event-ID); also what any client learns from `Allow`.
async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ALLOW, ALLOWED))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
        // Browsers keep a preflight at most this long (Chromium caps it at 2 hours).
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    no_such_path(&req)
}

/// The 404 of a path that names nothing.
pub(crate) fn no_such_path(req: &HttpRequest) -> HttpResponse {
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
            req.method().as_str().chars().take(20).collect::<String>()
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(ALLOWED));
    response
}

/// `/openapi.json`: the table describing itself, with examples from the newest pulse served.
/// (Here, not in [`mod@crate::openapi`], because it serves [`ROUTES`]: the table's module may
/// depend on the description's, not the reverse.)
async fn openapi_json(beacon: web::Data<Beacon>) -> HttpResponse {
    let mut examples = Examples::default();
    // Examples are a courtesy: a store that fails leaves the document without them.
    if let Ok(Some(newest)) = crate::reply::newest(&beacon).await {
        examples.pulse = serde_json::from_slice(&newest.body).ok();
        let (c, p) = (newest.pulse.chain_index, newest.pulse.pulse_index);
        if let Ok(Some(m)) = beacon.ask(beacon.store().manifest(c, p)).await {
            examples.manifest = serde_json::from_str(&m).ok();
        }
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(crate::openapi::openapi(ROUTES, &examples).to_string())
}
