//! The public beacon over HTTP. Handlers are thin: extract and parse, ask the store (or the
//! cached last pulse), and map the one error type ([`ApiError`]) to a status in one place.
//!
//! A pulse whose time has not come is never served, whoever wrote it to the store: every
//! answer is checked against the wall clock.
//!
//! New pulses reach the API two ways: the engine in the same process tells it at once
//! ([`Beacon::published`]), and a watcher polls the store ([`Beacon::watch`]) so that a
//! read-only API node, or a standby, serves what another engine writes.
//!
//! It never waits long and no client can starve it: every store call a request makes is
//! bounded ([`BeaconInfo::store_timeout_ms`], then 503), `/health` answers from memory and one
//! cheap lookup, long answers (SSE catch-up, bulk) read the store a page at a time and hold no
//! database connection while they wait on a client, and each client may hold only so many of
//! them open ([`BeaconInfo::max_streams_per_client`], then 429). [`Beacon::begin_shutdown`]
//! ends every stream at once, so the server stops within [`SHUTDOWN_TIMEOUT_SECS`].
//!
//! # Layout
//!
//! A request goes down this list and never up it: each module uses only modules below it.
//!
//! - `server.rs`: [`serve`] and [`serve_on`], the actix-web server over HTTP or HTTPS (default
//!   headers with CORS, HSTS, oversized requests refused as JSON, request counts, prompt stop), and [`serve_redirect`] (308 to https);
//!   `tls.rs`: [`Tls`], the certificate and key, reloaded without dropping a connection.
//! - `routes.rs`: the route table only: each path, its handler and its description, which
//!   makes both the registration and `/openapi.json` ([`ROUTES`]); 404 and 405 answers and
//!   CORS preflights.
//! - The handlers, one file per kind of answer: `pulses.rs` (one pulse: the newest, by time,
//!   by index; its manifest; certificates; external sources' descriptions), `bulk.rs`
//!   (JSON Lines or XML windows with `Link: rel="next"`, skip paths, NIST's chain between two
//!   times, each streamed in the form asked for), `stream.rs` (Server-Sent Events), `status.rs`
//!   (`/health`, `/metrics`), `page.rs` (the explorer: `/` rendered with the
//!   newest pulse, its files embedded from `web/` and served under `/assets/{version}/`, the icon), `draws.rs` (the draw registry: `POST /draws` with a signed receipt, its entry
//!   appended to the transparency log in the same transaction; the draw, its result),
//!   `private.rs` (private random bytes for authenticated clients; the checks are
//!   `lavabeacon_private`'s), `log.rs` (the transparency log, C2SP formats: `/log/key`,
//!   `/log/checkpoint` with the stored cosignatures appended, `/log/tile/…` hash tiles and
//!   entry bundles, `/log/consistency`, `/log/witnesses`, and a pulse's or a draw's
//!   `…/inclusion`; everything within the newest checkpoint, 404 where no log is configured,
//!   [`BeaconInfo::log`]), `witness.rs` (the beacon as a C2SP tlog-witness of other logs:
//!   `POST /witness/add-checkpoint`, [`Beacon::register_witness`]; the checks are
//!   `lavabeacon_tlog::witness`'s, the state is moved by compare-and-swap in the store before
//!   anything is signed).
//! - What long answers share: `paged.rs` (the store read a page at a time, so no database
//!   connection waits on a client) and `body.rs` (a streamed body that holds the client's
//!   place among the open streams and ends at shutdown).
//! - `reply.rs`: the rules every pulse answer shares: the newest pulse (from memory, the store
//!   asked at most every 20 ms), the newest of a chain, caching (`IMMUTABLE`, until the next
//!   is due), JSON or XML with ETag and 304. `xml.rs`: the XML forms of NIST's
//!   `beacon-2.0.xsd` (a `<response>` of pulses, a `<chain>`, a `<skipList>`, an `<error>`).
//! - `wait.rs`: long-polls (`?wait=true`): a request held until its pulse is published, on the
//!   same news the streams get.
//! - (`draws.rs` is a handler file like those above; its checks and formats are
//!   `lavabeacon_draw`'s, its authentication `lavabeacon_private`'s. `log.rs` and `witness.rs`
//!   too: the log's formats, proofs and the witness's decision are `lavabeacon_tlog`'s, the
//!   log's hashes and the witness's state the store's.)
//! - `client.rs`: who a request came from (the peer, or what trusted proxies say).
//! - `state.rs`: [`Beacon`], the shared state (store calls bounded by a timeout, the newest
//!   pulse and its certificate in memory, what the engine said, the draw registry and the
//!   witness when this process has them); `limits.rs`: open streams per client and in all;
//!   `metrics.rs`: the counters; `settings.rs`: [`BeaconInfo`] and its defaults, [`LogInfo`].
//! - `error.rs`: [`ApiError`], the one place an error becomes a status and a body: JSON, or
//!   NIST's XML `<error>` for a request that asked for XML (every error, by one middleware).
//! - `clock.rs`: the wall clock (the one place it is read) and the rule that a pulse is public
//!   once its time has come; below everything, because the shared state applies that rule
//!   too.
//! - `web/` (not Rust): the explorer's files, plain HTML, CSS and JavaScript modules with no
//!   build step: `index.html` (the template `page.rs` fills), `explorer.js` (the page,
//!   navigation, the stream, `/health`), `verify.js` (the checks, with WebCrypto), `x509.js`
//!   (reading the certificate), `charts.js` (the SVG pictures), `draw.js` (a registered draw,
//!   checked), `log.js` (a pulse's inclusion in the transparency log, checked from
//!   `/log/key`, `…/inclusion` and `/log/witnesses`), `explorer.css`, the icons.
//! - `openapi.rs`: the description's types (typed parameters, kinds of answer) and the
//!   OpenAPI 3.1 document made from them, with examples from the chain served;
//!   `schemas.rs`: the JSON Schema of every body (the pulse from NIST's `beacon-2.0.xsd`).
//!
//! This file holds only the declarations. Whether the beacon is a test beacon, and the words
//! of its warning, are decided in `lavabeacon_format::test_beacon`; the API only repeats them.

#![warn(missing_docs)]

mod body;
mod bulk;
mod client;
mod clock;
mod draws;
pub mod error;
mod limits;
mod log;
pub mod metrics;
mod openapi;
mod page;
mod paged;
mod private;
mod pulses;
mod reply;
mod routes;
mod schemas;
mod server;
mod settings;
mod state;
mod status;
mod stream;
pub mod tls;
mod wait;
mod witness;
pub mod xml;

/// Stops a running server ([`serve`]).
pub use actix_web::dev::ServerHandle;
pub use client::client_addr;
pub use draws::ReceiptSigner;
pub use error::ApiError;
pub use openapi::{openapi, Answer, Example, Examples, Kind, Location, Param, RouteDoc, Verb};
pub use routes::ROUTES;
pub use server::{serve, serve_on, serve_redirect, HSTS, SHUTDOWN_TIMEOUT_SECS};
pub use settings::{
    default_late_tolerance_ms, BeaconInfo, LogInfo, WitnessInfo, DEFAULT_BULK_PERIODS,
    DEFAULT_CERTIFICATE_WARNING_SECS, DEFAULT_MAX_CHAIN_PULSES, DEFAULT_MAX_STREAMS,
    DEFAULT_STORE_TIMEOUT_MS, DEFAULT_STREAMS_PER_CLIENT,
};
pub use state::{Beacon, EngineStatus, WATCH_DUE_MS};
pub use tls::{Tls, TlsError};
pub use witness::WitnessRole;
