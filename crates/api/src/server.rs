//! [`serve`]: the actix-web server around the route table, with the headers every response
//! carries (CORS for reads, a test beacon's warning), per-route request counts, and a prompt
//! graceful stop.

use crate::routes;
use crate::state::Beacon;
use crate::tls::Tls;
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders};
use std::sync::Arc;

/// How long an open connection may delay [`serve`]'s graceful stop: after this the server
/// closes it (an SSE client that never reads, a slow download).
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

/// `Strict-Transport-Security` on every answer over HTTPS: a year, subdomains not included
/// (the operator's other hosts are not ours to decide).
pub const HSTS: &str = "max-age=31536000";

/// The headers every response carries: CORS for reads, HSTS over HTTPS, and a test beacon's
/// warning.
fn default_headers(test: Option<&str>, https: bool) -> (DefaultHeaders, Condition<DefaultHeaders>) {
    let mut cors = DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
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
