//! `/beacon/2.0/stream`: Server-Sent Events, one `pulse` event per new pulse, with id
//! `chain-index`. A client that reconnects with `Last-Event-ID` first gets every pulse it missed
//! (up to [`MAX_CATCH_UP`]; older gaps are for the bulk route), then the live ones.

use crate::body::{streamed_body, BodySender};
use crate::clock::{now_ms, public};
use crate::error::ApiError;
use crate::paged::Cursor;
use crate::reply::{Reply, NO_STORE};
use crate::state::Beacon;
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
async fn catch_up(beacon: &Beacon, after_ms: i64, sender: &mut BodySender) -> Option<i64> {
    let mut last = after_ms;
    let mut sent = 0;
    let mut pages = Cursor::Time {
        from: after_ms + 1,
        to: now_ms() + 1,
    };
    while sent < MAX_CATCH_UP {
        let page = match pages.next_pulses(beacon).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => page,
            Err(e) => {
                sender.send(Err(e)).await;
                return None;
            }
        };
        for p in page.iter().take(MAX_CATCH_UP - sent) {
            if !sender.send(Ok(event(p))).await {
                return None;
            }
            last = p.time_ms().unwrap_or(last);
            sent += 1;
        }
    }
    Some(last)
}

/// The `(chain, pulse)` of a `Last-Event-ID` header, if there is one (an empty one is none).
fn last_event_id(req: &HttpRequest) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(value) = req.headers().get("Last-Event-ID") else {
        return Ok(None);
    };
    let Ok(text) = value.to_str() else {
        return Err(ApiError::BadRequest(
            "Last-Event-ID is not ASCII text: an event id of this stream is chain-index, e.g. 1-42"
                .into(),
        ));
    };
    // EventSource sends none while its last event id is empty; an empty one means the same.
    if text.trim().is_empty() {
        return Ok(None);
    }
    let bad = || {
        ApiError::BadRequest(format!(
            "Last-Event-ID {:?} is not an event id of this stream (chain-index, e.g. 1-42)",
            text.chars().take(40).collect::<String>()
        ))
    };
    let (chain, pulse) = text.split_once('-').ok_or_else(bad)?;
    Ok(Some((
        chain.parse::<u64>().map_err(|_| bad())?,
        pulse.parse::<u64>().map_err(|_| bad())?,
    )))
}

/// `/beacon/2.0/stream`.
pub(crate) async fn stream(beacon: web::Data<Beacon>, req: HttpRequest) -> Reply {
    let resume = last_event_id(&req)?;
    let slot = beacon.stream_slot(crate::client::client_addr(
        &req,
        &beacon.info().trusted_proxies,
    ))?;
    // The time of the last pulse the client has.
    let resume_ms = match resume {
        None => None,
        Some((chain, pulse)) => {
            let p = public(beacon.ask(beacon.store().by_index(chain, pulse)).await?).ok_or_else(
                || {
                    ApiError::NotFound(format!(
                        "Last-Event-ID {chain}-{pulse}: no such published pulse"
                    ))
                },
            )?;
            Some(p.time_ms().unwrap_or(0))
        }
    };
    // Subscribed before catching up, so nothing published meanwhile is missed.
    let mut news = beacon.subscribe();
    let (mut sender, body) = streamed_body(&beacon, slot, 16);
    let mut stop = beacon.stop_signal();
    let beacon = beacon.into_inner();
    actix_web::rt::spawn(async move {
        let mut last = match resume_ms {
            Some(t) => match catch_up(&beacon, t, &mut sender).await {
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
                        let bytes = s.event.get_or_init(|| event(&s.pulse)).clone();
                        if !sender.send(Ok(bytes)).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Too slow to keep up: fetch what was missed from the store.
                    Err(RecvError::Lagged(_)) => match catch_up(&beacon, last, &mut sender).await {
                        Some(t) => last = t,
                        None => return,
                    },
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if !sender.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await {
                        return;
                    }
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, NO_STORE))
        // nginx and other proxies must pass events through at once.
        .insert_header(("X-Accel-Buffering", "no"))
        // The connection ends with the stream (at shutdown too), not idles in keep-alive.
        .force_close()
        .content_type("text/event-stream")
        .streaming(body))
}
