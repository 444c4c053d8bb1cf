//! Request bodies: JSON objects, bounded in size and in the time they take
//! to arrive, refused in the API's error shape.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;

/// A JSON body, bounded by the configured limit; errors in the API shape.
pub(crate) struct JsonBody<T>(pub(crate) T);

/// A JSON body that may be absent (zero bytes).
pub(crate) struct OptionalJson<T>(pub(crate) Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, app.max_body_bytes, app.body_read_timeout).await?;
        required_json(&bytes).map(Self)
    }
}

/// A body as it arrived (bounded like [`JsonBody`]), for a handler that
/// looks at the octets before parsing them with [`required_json`].
pub(crate) struct RawBody(pub(crate) axum::body::Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        read_body(req, app.max_body_bytes, app.body_read_timeout)
            .await
            .map(Self)
    }
}

/// The JSON object `bytes` holds; 400 for an empty, malformed or
/// non-object body.
pub(crate) fn required_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_json",
            "the request needs a JSON body",
        ));
    }
    parse_json(bytes)
}

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, app.max_body_bytes, app.body_read_timeout).await?;
        // Absent means empty: whitespace alone is not JSON (RFC 8259 §2).
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        parse_json(&bytes).map(|v| Self(Some(v)))
    }
}

/// Every request body is a JSON object (serde would also take an array
/// for a struct, which no schema allows).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_request",
            _ => "malformed_json",
        };
        ApiError::bad_request(code, e.to_string())
    })
}

/// The body, refused with 413 before reading when Content-Length is over
/// `limit` (so a client that sent `Expect: 100-continue` never sends it),
/// and while reading when a chunked body grows over it; 408 when it has not
/// all arrived within `deadline`.
async fn read_body(
    req: Request,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are limited to {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(req.into_body(), limit))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    deadline.as_secs_f64()
                ),
            )
        })?;
    read.map_err(|e| {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            if err.to_string().contains("length limit") {
                return too_large();
            }
            source = err.source();
        }
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    })
}
