//! `/beacon/2.0/stream`: Server-Sent Events, one `pulse` event per new pulse, with id
//! `chain-index`. A client that reconnects with `Last-Event-ID` first gets every pulse it missed
//! (up to [`MAX_CATCH_UP`]; older gaps are for the bulk route), then the live ones.

use crate::bulk::{streamed, Cursor, Out};
use crate::error::ApiError;
use crate::routes::public;
use crate::{now_ms, Beacon};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use lavabeacon_format::json::to_json_line;
use lavabeacon_format::Pulse;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

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

/// Sends every public pulse after `after_ms` (at most [`MAX_CATCH_UP`]), read a page at a
/// time ([`Cursor`]: no database connection is held while the client is waited on); returns
/// the time of the last one sent, or `None` if the stream is over (the client left, the server
/// is stopping, or the store failed).
async fn catch_up(b: &Beacon, after_ms: i64, out: &mut Out) -> Option<i64> {
    let mut last = after_ms;
    let mut sent = 0;
    let mut pages = Cursor::Time {
        from: after_ms + 1,
        to: now_ms() + 1,
    };
    while sent < MAX_CATCH_UP {
        let page = match pages.next_pulses(b).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => page,
            Err(e) => {
                out.send(Err(e)).await;
                return None;
            }
        };
        for p in page.iter().take(MAX_CATCH_UP - sent) {
            if !out.send(Ok(event(p))).await {
                return None;
            }
            last = p.time_ms().unwrap_or(last);
            sent += 1;
        }
    }
    Some(last)
}

pub(crate) async fn stream(
    b: web::Data<Beacon>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The pulse the client has, if it says.
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
            Some((
                c.parse::<u64>().map_err(|_| bad())?,
                i.parse::<u64>().map_err(|_| bad())?,
            ))
        }
    };
    let slot = b.stream_slot(req.peer_addr().map(|a| a.ip()))?;
    // The time of the last pulse the client has.
    let resume = match resume {
        None => None,
        Some((c, i)) => {
            let p = public(b.ask(b.store().by_index(c, i)).await?).ok_or_else(|| {
                ApiError::NotFound(format!("Last-Event-ID {c}-{i}: no such published pulse"))
            })?;
            Some(p.time_ms().unwrap_or(0))
        }
    };
    // Subscribed before catching up, so nothing published meanwhile is missed.
    let mut news = b.subscribe();
    let (mut out, body) = streamed(&b, slot, 16);
    let mut stop = b.stop_signal();
    let beacon = b.into_inner();
    actix_web::rt::spawn(async move {
        let mut last = match resume {
            Some(t) => match catch_up(&beacon, t, &mut out).await {
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
                _ = stop.wait_for(|s| *s) => return,
                n = news.recv() => match n {
                    Ok(s) if s.time_ms > last => {
                        last = s.time_ms;
                        if !out.send(Ok(event(&s.pulse))).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Too slow to keep up: fetch what was missed from the store.
                    Err(RecvError::Lagged(_)) => match catch_up(&beacon, last, &mut out).await {
                        Some(t) => last = t,
                        None => return,
                    },
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if !out.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await {
                        return;
                    }
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // nginx and other proxies must pass events through at once.
        .insert_header(("X-Accel-Buffering", "no"))
        // The connection ends with the stream (at shutdown too), not idles in keep-alive.
        .force_close()
        .content_type("text/event-stream")
        .streaming(body))
}
