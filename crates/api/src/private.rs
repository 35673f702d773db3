//! `/private/v1/bytes` and `/private/v1/integers`: private random bytes for authenticated
//! clients (the protocol: `docs/private-bytes.md`; the checks: `lavabeacon_private`). This
//! handler only translates: the request into what the checks see, the answer or refusal into
//! HTTP. The bytes are never logged (the server keeps no access log) and never stored; the
//! body that carries them is zeroized when the server has written it out.

use crate::client::client_addr;
use crate::clock::now_ms;
use crate::error::json_error;
use crate::state::Beacon;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use lavabeacon_private::gate::{Headers, Request};
use lavabeacon_private::protocol::SCHEME;
use lavabeacon_private::Route;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use zeroize::Zeroizing;

/// The request's headers as the checks want them: a header sent more than once, or not as
/// text, counts as not sent.
pub(crate) struct HeaderView<'a>(pub(crate) &'a actix_web::http::header::HeaderMap);

impl Headers for HeaderView<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let mut all = self.0.get_all(name);
        let first = all.next()?;
        if all.next().is_some() {
            return None;
        }
        first.to_str().ok()
    }
}

/// Random bytes on their way out: handed to the server once, wiped when it lets go of them.
struct SecretBody(Option<Zeroizing<Vec<u8>>>);

/// The owner of a chunk given to the server: zeroized when the server drops the chunk.
struct Secret(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MessageBody for SecretBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .take()
                .map(|b| Ok(Bytes::from_owner(Secret(b)))),
        )
    }
}

/// `GET /private/v1/bytes?n=N&format=F`.
pub(crate) async fn bytes(req: HttpRequest, beacon: web::Data<Beacon>) -> HttpResponse {
    answer(Route::Bytes, &req, &beacon)
}

/// `GET /private/v1/integers?count=C&min=A&max=B&format=F`.
pub(crate) async fn integers(req: HttpRequest, beacon: web::Data<Beacon>) -> HttpResponse {
    answer(Route::Integers, &req, &beacon)
}

fn answer(route: Route, req: &HttpRequest, beacon: &Beacon) -> HttpResponse {
    let Some(service) = beacon.private() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "private bytes are not served by this beacon (no [private] clients_file)",
        );
    };
    let Some(peer) = client_addr(req, &beacon.info().trusted_proxies) else {
        return json_error(StatusCode::BAD_REQUEST, "no client address");
    };
    let host = host_of(req);
    let headers = HeaderView(req.headers());
    let r = Request {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        query: req.query_string(),
        headers: &headers,
        peer,
        body: b"",
    };
    match service.handle(route, &r, now_ms().div_euclid(1000), Instant::now()) {
        Ok(a) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("Lavabeacon-Bytes-Left", a.bytes_left.to_string()))
            .content_type(a.content_type)
            .body(SecretBody(Some(a.body))),
        Err(refusal) => refused(refusal),
    }
}

/// The host a request was sent to, as signed: HTTP/1.1 sends Host; HTTP/2 the authority.
pub(crate) fn host_of(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// The answer to a request the checks refused: its status, a JSON error, and
/// `WWW-Authenticate` or `Retry-After` as the refusal asks.
pub(crate) fn refused(refusal: lavabeacon_private::gate::Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = json_error(status, &refusal.message);
    let h = res.headers_mut();
    if refusal.is_unauthenticated() {
        h.insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(SCHEME),
        );
    }
    if let Some(secs) = refusal.retry_after {
        h.insert(header::RETRY_AFTER, secs.into());
    }
    res
}
