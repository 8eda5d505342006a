//! What a failed request answers: a status and a JSON body naming the
//! problem with a stable code and saying what to do.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docpipe_catalog::CatalogError;
use docpipe_core::{Classify, ErrorClass, StoreError};
use docpipe_embed::EmbedError;
use docpipe_queue::QueueError;
use docpipe_search::SearchError;

/// A request the server cannot answer as asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No API key was sent.
    #[error("no API key: send it as `Authorization: Bearer <key>`")]
    MissingKey,
    /// The key is not in the keys file.
    #[error("the API key is not valid")]
    InvalidKey,
    /// The key may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The body or the query is larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The document is unknown to every generation, event and dead letter.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (a rollback confirmed
    /// for a generation no longer live).
    #[error("{0}")]
    Conflict(String),
    /// Too many searches are in flight.
    #[error("the server is at capacity ({0} searches in flight); retry after a moment")]
    Overloaded(usize),
    /// The search took longer than the request timeout.
    #[error("the search took longer than {0} ms; retry, or narrow it (smaller top_k)")]
    Timeout(u128),
    /// Nothing was indexed yet.
    #[error("{0}")]
    NothingIndexed(String),
    /// A store, the model or the broker failed.
    #[error("{message}")]
    Backend {
        /// Whether retrying may help.
        transient: bool,
        /// What failed.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::NothingIndexed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Backend {
                transient: true, ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Backend { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body (and the `outcome` label of metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing_api_key",
            Self::InvalidKey => "invalid_api_key",
            Self::Forbidden(_) => "forbidden",
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge(_) => "too_large",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Overloaded(_) => "overloaded",
            Self::Timeout(_) => "timeout",
            Self::NothingIndexed(_) => "nothing_indexed",
            Self::Backend {
                transient: true, ..
            } => "unavailable",
            Self::Backend { .. } => "internal",
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::TopK(_) => Self::BadRequest(error.to_string()),
            SearchError::NothingIndexed(_) => Self::NothingIndexed(error.to_string()),
            other => Self::Backend {
                transient: other.is_transient(),
                message: other.to_string(),
            },
        }
    }
}

/// Store, catalog, model and broker failures: 503 when retrying may help.
macro_rules! backend_errors {
    ($($error:ty => $transient:expr),* $(,)?) => {$(
        impl From<$error> for ApiError {
            fn from(error: $error) -> Self {
                let transient: fn(&$error) -> bool = $transient;
                Self::Backend { transient: transient(&error), message: error.to_string() }
            }
        }
    )*};
}

backend_errors! {
    StoreError => |error| error.class() == ErrorClass::Transient,
    CatalogError => CatalogError::is_transient,
    EmbedError => |error| error.class() == ErrorClass::Transient,
    QueueError => |error| error.class() == ErrorClass::Transient,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        });
        let mut response = (status, Json(body)).into_response();
        if matches!(self, Self::Overloaded(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, Self::MissingKey | Self::InvalidKey) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
