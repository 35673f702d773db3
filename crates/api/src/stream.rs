//! `/beacon/2.0/stream`: Server-Sent Events, one `pulse` event per new pulse, with id
//! `chain-index`. A client that reconnects with `Last-Event-ID` first gets every pulse it missed
//! (up to [`MAX_CATCH_UP`]; older gaps are for the bulk route), then the live ones.

use crate::error::ApiError;
use crate::routes::public;
use crate::{now_ms, Beacon};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::Pulse;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Pulses sent on reconnection before the live ones.
pub const MAX_CATCH_UP: usize = 10_000;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn event(p: &Pulse) -> Bytes {
    Bytes::from(format!(
        "id: {}-{}\nevent: pulse\ndata: {{\"pulse\":{}}}\n\n",
        p.chain_index,
        p.pulse_index,
        to_json_line(p)
    ))
}

/// Sends every public pulse after `after_ms` (at most [`MAX_CATCH_UP`]); returns the time of
/// the last one sent, or `None` if the client left.
async fn catch_up(
    b: &Beacon,
    after_ms: i64,
    tx: &mpsc::Sender<Result<Bytes, ApiError>>,
) -> Option<i64> {
    let mut last = after_ms;
    let mut s = b
        .store()
        .range_by_time(after_ms + 1, now_ms() + 1)
        .take(MAX_CATCH_UP);
    while let Some(item) = s.next().await {
        match item {
            Ok(p) => {
                last = p.time_ms().unwrap_or(last);
                tx.send(Ok(event(&p))).await.ok()?;
            }
            Err(e) => {
                let _ = tx.send(Err(ApiError::Unavailable(e))).await;
                return None;
            }
        }
    }
    Some(last)
}

pub(crate) async fn stream(
    b: web::Data<Beacon>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The time of the last pulse the client has, if it says.
    let resume = match req.headers().get("Last-Event-ID") {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or("");
            let bad = || {
                ApiError::BadRequest(format!(
                    "Last-Event-ID {:?} is not an event id of this stream (chain-index, e.g. 1-42)",
                    text.chars().take(40).collect::<String>()
                ))
            };
            let (c, i) = text.split_once('-').ok_or_else(bad)?;
            let (c, i) = (
                c.parse::<u64>().map_err(|_| bad())?,
                i.parse::<u64>().map_err(|_| bad())?,
            );
            let p = public(b.store().by_index(c, i).await?).ok_or_else(|| {
                ApiError::NotFound(format!("Last-Event-ID {c}-{i}: no such published pulse"))
            })?;
            Some(p.time_ms().unwrap_or(0))
        }
    };
    // Subscribed before catching up, so nothing published meanwhile is missed.
    let mut news = b.subscribe();
    let (tx, rx) = mpsc::channel::<Result<Bytes, ApiError>>(16);
    let beacon = b.into_inner();
    actix_web::rt::spawn(async move {
        let mut last = match resume {
            Some(t) => match catch_up(&beacon, t, &tx).await {
                Some(t) => t,
                None => return,
            },
            // A new client gets the pulses from now on.
            None => beacon.cached_last().map_or(now_ms(), |s| s.time_ms),
        };
        let mut tick = tokio::time::interval(KEEP_ALIVE);
        tick.tick().await;
        loop {
            tokio::select! {
                n = news.recv() => match n {
                    Ok(s) if s.time_ms > last => {
                        last = s.time_ms;
                        if tx.send(Ok(event(&s.pulse))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Too slow to keep up: fetch what was missed from the store.
                    Err(RecvError::Lagged(_)) => match catch_up(&beacon, last, &tx).await {
                        Some(t) => last = t,
                        None => return,
                    },
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let body = crate::bulk::channel_body(rx);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // nginx and other proxies must pass events through at once.
        .insert_header(("X-Accel-Buffering", "no"))
        .content_type("text/event-stream")
        .streaming(body))
}
