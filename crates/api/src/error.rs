//! The one error type of the API and the one place it becomes a status code and a body:
//! `{"error": {"status": 404, "message": "..."}}`. Bad input is a 4xx, never a 500; a store
//! failure is a 503 that names no internals (the operator's log has them).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use lavabeacon_store::StoreError;

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
    /// The database failed or is unreachable.
    #[error("the pulse store is unavailable")]
    Unavailable(#[source] StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooEarly { .. } => StatusCode::from_u16(425).expect("425 is a status code"),
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unavailable(e) = self {
            // The cause goes to the operator's log, never to the client.
            eprintln!("lavabeacon api: store: {e}");
        }
        let status = self.status_code();
        let mut r = HttpResponse::build(status);
        r.insert_header((header::CACHE_CONTROL, "no-store"));
        if let ApiError::TooEarly { retry_after, .. } = self {
            r.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        r.content_type("application/json")
            .body(error_body(status, &self.to_string()))
    }
}

/// The JSON body of an error.
pub fn error_body(status: StatusCode, message: &str) -> String {
    serde_json::json!({"error": {"status": status.as_u16(), "message": message}}).to_string()
}
