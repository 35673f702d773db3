//! [`serve`]: the actix-web server around the route table, with the headers every response
//! carries (CORS for reads, a test beacon's warning), per-route request counts, and a prompt
//! graceful stop.

use crate::routes;
use crate::state::Beacon;
use actix_web::http::header;
use actix_web::middleware::{Condition, DefaultHeaders};
use std::sync::Arc;

/// How long an open connection may delay [`serve`]'s graceful stop: after this the server
/// closes it (an SSE client that never reads, a slow download).
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

/// The headers every response carries: CORS for reads, and a test beacon's warning.
fn default_headers(test: Option<&str>) -> (DefaultHeaders, Condition<DefaultHeaders>) {
    let cors = DefaultHeaders::new().add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
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
    use actix_web::dev::Service;
    let test = beacon.test_warning();
    let data = actix_web::web::Data::from(beacon);
    Ok(actix_web::HttpServer::new(move || {
        let (cors, warning) = default_headers(test.as_deref());
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
    .h1_allow_half_closed(false)
    .listen(listener)?
    .run())
}
