//! The API's error shape: `{"error": "snake_case_code", "detail": "..."}`
//! with a 4xx/5xx status (ARCHITECTURE.md, HTTP API). Details say what is
//! wrong with the request; they never carry internals such as store paths
//! or the token.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
    /// Extra members of the body (e.g. the verdict of a refused
    /// registration).
    pub(crate) extra: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: Vec::new(),
        }
    }

    /// 400 with this code.
    pub(crate) fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 404 for an unknown connection id.
    pub(crate) fn unknown_connection(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_connection",
            format!("no connection is registered with id '{id}'"),
        )
    }

    /// 503: the store could not make a change durable.
    pub(crate) fn store(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "store write failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the change could not be made durable; nothing was changed",
        )
    }

    /// A fleet operation that failed.
    pub(crate) fn cluster(e: vigil_cluster::ClusterError) -> Self {
        match e {
            vigil_cluster::ClusterError::CannotSign => {
                Self::new(StatusCode::CONFLICT, "deny_unsigned", e.to_string())
            }
            vigil_cluster::ClusterError::Store(detail) => Self::store(detail),
        }
    }

    pub(crate) fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "detail": self.detail});
        if let Value::Object(map) = &mut body {
            for (k, v) in self.extra {
                map.insert(k.to_owned(), v);
            }
        }
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme (and why, for a bad token).
            let value = if self.code == "invalid_token" {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            };
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        response
    }
}
