//! [`serve`]: the actix-web server around the route table, with the headers every response
//! carries (CORS for reads, a test beacon's warning), per-route request counts, and a prompt
//! graceful stop.

use crate::error::json_error;
use crate::routes;
use crate::state::Beacon;
use crate::tls::Tls;
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders};
use futures_util::future::Either;
use std::sync::Arc;

/// How long an open connection may delay [`serve`]'s graceful stop: after this the server
/// closes it (an SSE client that never reads, a slow download).
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

/// `Strict-Transport-Security` on every answer over HTTPS: a year, subdomains not included
/// (the operator's other hosts are not ours to decide).
pub const HSTS: &str = "max-age=31536000";

/// The response headers a script on another origin may read (beyond those CORS always lets
/// through, such as Cache-Control and Content-Type).
const EXPOSED: &str = "ETag, Link, Retry-After, Allow, Lavabeacon-Test, Lavabeacon-Warning";

/// The longest URL a route reads: the longest real one (a skip path by RFC 3339 times) is under
/// 200 bytes; past this, 414. (URLs past 64 KiB never reach the routes: the HTTP layer
/// answers them with a bare 400.)
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// The most header bytes a request may carry; past this, 431. (Past 128 KiB of request head
/// the HTTP layer answers a bare 431 itself.)
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The JSON error for a request too large to read, if it is: its URL ([`MAX_URL_BYTES`]) or
/// its headers ([`MAX_HEADER_BYTES`]). Checked before routing, so every route answers alike.
fn oversized(req: &actix_web::dev::ServiceRequest) -> Option<actix_web::HttpResponse> {
    use actix_web::http::StatusCode;
    // The request target's length, counted without writing it out (this runs on every request).
    let uri = req.uri();
    let url = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    if url > MAX_URL_BYTES {
        return Some(json_error(
            StatusCode::URI_TOO_LONG,
            &format!("the URL is {url} bytes; this server reads at most {MAX_URL_BYTES}"),
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("the request's headers are {headers} bytes; this server reads at most {MAX_HEADER_BYTES}"),
        )
    })
}

/// The headers every response carries: CORS for reads, HSTS over HTTPS, and a test beacon's
/// warning.
fn default_headers(test: Option<&str>, https: bool) -> (DefaultHeaders, Condition<DefaultHeaders>) {
    let mut cors = DefaultHeaders::new()
        .add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .add((header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED));
    if https {
        cors = cors.add((header::STRICT_TRANSPORT_SECURITY, HSTS));
    }
    let warning = DefaultHeaders::new().add((
        "Lavabeacon-Test",
        test.map(|w| w.replace(['\r', '\n'], " "))
            .unwrap_or_default(),
    ));
    (cors, Condition::new(test.is_some(), warning))
}

/// Starts the HTTP server on `listener` with `workers` worker threads. The returned server
/// runs when awaited (or spawned); its handle stops it. To stop promptly, end the streams
/// first: `beacon.begin_shutdown(); handle.stop(true).await;` returns within
/// [`SHUTDOWN_TIMEOUT_SECS`] however many clients are connected (one that never reads is cut
/// off then).
pub fn serve(
    beacon: Arc<Beacon>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    serve_on(beacon, listener, workers, None)
}

/// [`serve`], over HTTPS when `tls` is given: each handshake takes the certificate current at
/// that moment, so [`Tls::reload`] changes it without closing a connection.
pub fn serve_on(
    beacon: Arc<Beacon>,
    listener: std::net::TcpListener,
    workers: usize,
    tls: Option<Arc<Tls>>,
) -> std::io::Result<actix_web::dev::Server> {
    use actix_web::dev::Service;
    let test = beacon.test_warning();
    let https = tls.is_some();
    let data = actix_web::web::Data::from(beacon);
    let server = actix_web::HttpServer::new(move || {
        let (cors, warning) = default_headers(test.as_deref(), https);
        let counted = data.clone();
        actix_web::App::new()
            // Inside the default headers, so that these answers carry CORS and the test flag.
            .wrap_fn(|req, srv| match oversized(&req) {
                Some(answer) => Either::Left(std::future::ready(Ok(req.into_response(answer)))),
                None => Either::Right(srv.call(req)),
            })
            // Outside the size check, so that its answers too are in XML when XML was asked.
            .wrap_fn(|req, srv| {
                let xml = crate::reply::wants_xml(req.headers());
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    Ok(if xml {
                        crate::error::in_xml(res)
                    } else {
                        res.map_into_left_body()
                    })
                }
            })
            .wrap(cors)
            .wrap(warning)
            .wrap_fn(move |req, srv| {
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let fut = srv.call(req);
                let counted = counted.clone();
                async move {
                    let res = fut.await?;
                    counted.metrics().request(route, res.status().as_u16());
                    Ok(res)
                }
            })
            .app_data(data.clone())
            .app_data(
                actix_web::web::QueryConfig::default().error_handler(|e, _| {
                    crate::error::ApiError::BadRequest(format!(
                        "the query string cannot be read: {}",
                        e.to_string().chars().take(200).collect::<String>()
                    ))
                    .into()
                }),
            )
            .configure(routes::configure)
    })
    .workers(workers.max(1))
    // actix waits 30 s for open connections by default; streams end at `begin_shutdown`, and
    // a client that never reads must not hold the stop up for longer than this.
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    // A client that closes its connection is gone at once, and so is its stream (and its place
    // among the open streams), instead of at the next write to it. (No beacon client sends a
    // request and then half-closes while it waits for the answer.)
    .h1_allow_half_closed(false);
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls.server_config())?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// A plain-HTTP listener that answers every request with 308 to the same path and query on
/// `https://` and the host asked for (with `https_port` unless it is 443), so old links and
/// typed addresses reach the HTTPS listener.
pub fn serve_redirect(
    listener: std::net::TcpListener,
    https_port: u16,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(actix_web::HttpServer::new(move || {
        actix_web::App::new().default_service(actix_web::web::to(
            move |req: actix_web::HttpRequest| async move { redirect(&req, https_port) },
        ))
    })
    .workers(1)
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .listen(listener)?
    .run())
}

fn redirect(req: &actix_web::HttpRequest, https_port: u16) -> actix_web::HttpResponse {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    // The host without its port (an IPv6 literal keeps its brackets).
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let target = match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_string(),
        None => "/".into(),
    };
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, format!("https://{name}{port}{target}")))
        .finish()
}
