//! A streamed response body (bulk answers and SSE): a task sends to a [`BodySender`], the
//! client receives. The body holds the client's place among the open streams until it is
//! dropped, and both ends stop at once when the server shuts down.

use crate::error::ApiError;
use crate::limits::StreamSlot;
use crate::state::Beacon;
use actix_web::web::Bytes;
use futures_util::stream::Stream;
use tokio::sync::{mpsc, watch};

/// The sending end of a streamed answer: waits for the client as long as it takes, but not
/// past [`Beacon::begin_shutdown`].
pub(crate) struct BodySender {
    tx: mpsc::Sender<Result<Bytes, ApiError>>,
    stop: watch::Receiver<bool>,
}

impl BodySender {
    /// Sends `item`; `false` when the client left or the server is shutting down.
    pub(crate) async fn send(&mut self, item: Result<Bytes, ApiError>) -> bool {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|s| *s) => false,
            sent = self.tx.send(item) => sent.is_ok(),
        }
    }
}

/// A streamed answer: what a task sends to the [`BodySender`] becomes the body (at most
/// `buffer` items wait unsent), which holds `slot` (the client's place among the open streams)
/// until it is dropped, and ends at once on shutdown.
pub(crate) fn streamed_body(
    beacon: &Beacon,
    slot: StreamSlot,
    buffer: usize,
) -> (BodySender, impl Stream<Item = Result<Bytes, ApiError>>) {
    let (tx, rx) = mpsc::channel(buffer);
    let sender = BodySender {
        tx,
        stop: beacon.stop_signal(),
    };
    let body = futures_util::stream::unfold(
        (rx, beacon.stop_signal(), slot),
        |(mut rx, mut stop, slot)| async move {
            let item = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => None,
                item = rx.recv() => item,
            };
            item.map(|item| (item, (rx, stop, slot)))
        },
    );
    (sender, body)
}
