//! The one error type of the API and the one place it becomes a status code and a body:
//! `{"error": {"status": 404, "message": "..."}}`, or NIST's XML `<error>` when XML was asked
//! for ([`in_xml`]). Bad input is a 4xx, never a 500; a store
//! failure is a 503 that names no internals (the operator's log has them, at most one line a
//! second so that a flood while the database is down cannot flood the log too).

use crate::clock::now_ms;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use lavabeacon_store::StoreError;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (a bad timestamp, index or id).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there (no such pulse, chain or certificate; or not yet public, on NIST paths).
    #[error("{0}")]
    NotFound(String),
    /// The pulse asked for is not public yet; retry after this many seconds.
    #[error("{message}")]
    TooEarly {
        /// What to tell the client.
        message: String,
        /// Seconds until it is due.
        retry_after: u64,
    },
    /// Too many open streams (SSE and bulk), from this client or in all: 429 with
    /// `Retry-After`.
    #[error("{message}")]
    TooManyStreams {
        /// What to tell the client.
        message: String,
        /// Seconds to wait before trying again.
        retry_after: u64,
    },
    /// The database failed, is unreachable, or did not answer in time
    /// ([`crate::BeaconInfo::store_timeout_ms`]).
    #[error("the pulse store is unavailable")]
    Unavailable(#[source] StoreError),
    /// The beacon cannot do this now (its key does not sign): 503 with `Retry-After`. The
    /// message is the public one; the cause goes to the log.
    #[error("{0}")]
    NotNow(String),
    /// The server is shutting down ([`crate::Beacon::begin_shutdown`]): no new streams.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl From<lavabeacon_format::time::BadInput> for ApiError {
    fn from(e: lavabeacon_format::time::BadInput) -> ApiError {
        ApiError::BadRequest(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e)
    }
}

/// Whether `e` says the database is down (rather than that one query went wrong).
pub(crate) fn is_outage(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Unavailable { .. } | StoreError::DiskFull { .. }
    )
}

/// When the last store error was logged, and how many were not logged since.
static LOGGED_MS: AtomicI64 = AtomicI64::new(i64::MIN);
static UNLOGGED: AtomicU64 = AtomicU64::new(0);

/// Logs a store error that became a 503, at most one line a second (with a count of those
/// left out).
fn log_store_error(e: &StoreError) {
    let now = now_ms();
    let last = LOGGED_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 1000
        && LOGGED_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let also = UNLOGGED.swap(0, Ordering::Relaxed);
        tracing::warn!(
            // A public category; the error's own text can name tables, hosts or paths.
            category = e.category(),
            error = %e,
            unlogged = also,
            "store read failed; answered 503"
        );
    } else {
        UNLOGGED.fetch_add(1, Ordering::Relaxed);
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooEarly { .. } => StatusCode::from_u16(425).expect("425 is a status code"),
            ApiError::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::ShuttingDown | ApiError::NotNow(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unavailable(e) = self {
            // The cause goes to the operator's log, never to the client.
            log_store_error(e);
        }
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            ApiError::TooEarly { retry_after, .. }
            | ApiError::TooManyStreams { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unavailable(_) | ApiError::ShuttingDown | ApiError::NotNow(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        let message = self.to_string();
        let mut response = response
            .content_type("application/json")
            .body(error_body(status, &message));
        set_reason(&mut response);
        response.extensions_mut().insert(ErrorText(message));
        response
    }
}

/// An error answer's message, kept on the response so that [`in_xml`] can write it again in
/// XML for a client that asked for XML.
#[derive(Debug, Clone)]
pub(crate) struct ErrorText(String);

/// An error answer made for a request that asked for XML (`Accept: application/xml`), written
/// again as NIST's XML `<error>` ([`crate::xml::error_xml`]), keeping every header but the
/// media type; any other answer as it is. One place for every error: handlers', unknown paths
/// and methods, unreadable queries and oversized requests.
pub(crate) fn in_xml<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>> {
    let text = res.response().extensions().get::<ErrorText>().cloned();
    let Some(ErrorText(message)) = text else {
        return res.map_into_left_body();
    };
    let status = res.status();
    let (req, response) = res.into_parts();
    let mut response = response.set_body(crate::xml::error_xml(status.as_u16(), &message));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(crate::xml::MEDIA_TYPE),
    );
    headers.insert(header::VARY, header::HeaderValue::from_static("Accept"));
    actix_web::dev::ServiceResponse::new(req, response.map_into_boxed_body()).map_into_right_body()
}

/// The JSON body of an error.
pub fn error_body(status: StatusCode, message: &str) -> String {
    serde_json::json!({"error": {"status": status.as_u16(), "message": message}}).to_string()
}

/// Gives a status the `http` crate has no phrase for its RFC's phrase, so the status line
/// reads `425 Too Early`, not `425 <unknown status code>`.
pub(crate) fn set_reason(response: &mut HttpResponse) {
    if response.status().as_u16() == 425 {
        response.head_mut().reason = Some("Too Early");
    }
}

/// An error answer made outside a handler (unknown paths and methods), shaped as
/// [`ApiError`]'s are.
pub(crate) fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(error_body(status, message));
    response
        .extensions_mut()
        .insert(ErrorText(message.to_string()));
    response
}
