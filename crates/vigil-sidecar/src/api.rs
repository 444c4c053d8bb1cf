//! The HTTP API: one table of routes ([`ROUTES`]) from which both the
//! router and `/openapi.json` are built, so the two cannot drift; the
//! checks in front of every handler (loopback `Host`, bearer token on every
//! `/v1` route, `application/json` bodies); bounded JSON bodies.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::handlers as h;
use super::AppState;

/// An HTTP method of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub(crate) fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Delete => MethodFilter::DELETE,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Delete => "delete",
        }
    }
}

/// What a response carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Body {
    None,
    /// JSON of this component schema.
    Json(&'static str),
    /// Plain text (Prometheus exposition format).
    Text,
    /// `text/event-stream`.
    EventStream,
}

/// One documented response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) description: &'static str,
    pub(crate) body: Body,
}

/// A query or header parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Param {
    pub(crate) name: &'static str,
    pub(crate) location: &'static str,
    pub(crate) description: &'static str,
    /// Its JSON schema, as JSON text.
    pub(crate) schema: &'static str,
}

/// One route: method, path, documentation and handler.
pub(crate) struct Route {
    pub(crate) method: Method,
    /// OpenAPI and axum share the `{param}` syntax.
    pub(crate) path: &'static str,
    pub(crate) operation_id: &'static str,
    pub(crate) summary: &'static str,
    /// Needs the bearer token (when one is configured).
    pub(crate) auth: bool,
    /// JSON request body schema, and whether it is required. Renew and
    /// refresh document theirs as required (`{}` for the defaults), while
    /// an empty body with `Content-Type: application/json` is accepted too,
    /// as before.
    pub(crate) request: Option<(&'static str, bool)>,
    pub(crate) params: &'static [Param],
    pub(crate) responses: &'static [Resp],
    pub(crate) handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

/// `Last-Event-ID`: `EPOCH-SEQ` as sent, or `0`; blanks around it and an
/// empty value (live events only) are accepted.
const LAST_EVENT_ID: &str = r#"{"type": "string", "pattern": "^[ \t]*(0|[0-9]+-[0-9]+)?[ \t]*$"}"#;

const fn json(status: u16, description: &'static str, schema: &'static str) -> Resp {
    Resp {
        status,
        description,
        body: Body::Json(schema),
    }
}

const BAD: Resp = json(400, "Malformed request", "Error");
pub(crate) const UNAUTHORIZED: Resp = json(401, "Missing or wrong bearer token", "Error");
const TOO_LARGE: Resp = json(413, "Body over the size limit", "Error");
const UNKNOWN: Resp = json(404, "Unknown connection id", "Error");
const STORE: Resp = json(503, "The store could not make the change durable", "Error");

/// Answered by every route on a loopback bind when `Host` is not loopback.
pub(crate) const MISDIRECTED: Resp = json(
    421,
    "The Host header is not a loopback name or address (loopback bind)",
    "Error",
);
/// Answered by routes with a request body, besides 400 and 413.
pub(crate) const BODY_STATUSES: &[Resp] = &[
    BAD,
    json(408, "The body did not arrive in time", "Error"),
    TOO_LARGE,
    json(415, "Content-Type is not application/json", "Error"),
];

/// Every route of the API. Every `/v1/*` route needs the token when one is
/// configured (reads too: connection labels, events and revocation sources
/// tell an attacker what runs where); `/healthz`, `/readyz` and
/// `/openapi.json` never do, `/metrics` when [`SidecarConfig::metrics_auth`]
/// is set. Routes with a request body need `Content-Type:
/// application/json` ([`require_json`]).
///
/// [`SidecarConfig::metrics_auth`]: crate::SidecarConfig::metrics_auth
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: Method::Post,
        path: "/v1/verify",
        operation_id: "verify",
        summary: "Verify a chain now (accepted and rejected verdicts alike are 200)",
        auth: true,
        request: Some(("VerifyRequest", true)),
        params: &[],
        responses: &[json(200, "The verdict", "Verdict"), BAD, TOO_LARGE],
        handler: |m| on(m, h::verify),
    },
    Route {
        method: Method::Post,
        path: "/v1/connections",
        operation_id: "registerConnection",
        summary: "Verify and track a connection; its teardown is announced on /v1/events",
        auth: true,
        request: Some(("ConnectionRequest", true)),
        params: &[],
        responses: &[
            json(201, "Tracked", "Registered"),
            BAD,
            UNAUTHORIZED,
            json(
                403,
                "The chain is not trusted; nothing is tracked",
                "Refused",
            ),
            TOO_LARGE,
            json(429, "Too many registered connections", "Error"),
            STORE,
        ],
        handler: |m| on(m, h::register),
    },
    Route {
        method: Method::Get,
        path: "/v1/connections",
        operation_id: "listConnections",
        summary: "List active connections in id order, paginated",
        auth: true,
        request: None,
        params: &[
            Param {
                name: "limit",
                location: "query",
                description: "At most this many (1..=10000, default 1000)",
                schema: r#"{"type": "integer", "minimum": 1, "maximum": 10000}"#,
            },
            Param {
                name: "after",
                location: "query",
                description: "Continue after this id (the previous page's `next`)",
                schema: r#"{"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}"#,
            },
            Param {
                name: "label",
                location: "query",
                description: "Only connections with this label, as key=value",
                schema: r#"{"type": "string", "pattern": "="}"#,
            },
        ],
        responses: &[json(200, "A page of connections", "ConnectionList"), BAD],
        handler: |m| on(m, h::list),
    },
    Route {
        method: Method::Get,
        path: "/v1/connections/{id}",
        operation_id: "getConnection",
        summary: "One connection, active or recently torn down",
        auth: true,
        request: None,
        params: &[],
        responses: &[json(200, "The connection", "Connection"), BAD, UNKNOWN],
        handler: |m| on(m, h::get_connection),
    },
    Route {
        method: Method::Delete,
        path: "/v1/connections/{id}",
        operation_id: "deleteConnection",
        summary: "Forget a connection the caller closed",
        auth: true,
        request: None,
        params: &[],
        responses: &[
            Resp {
                status: 204,
                description: "Forgotten",
                body: Body::None,
            },
            BAD,
            UNAUTHORIZED,
            UNKNOWN,
            STORE,
        ],
        handler: |m| on(m, h::delete_connection),
    },
    Route {
        method: Method::Post,
        path: "/v1/connections/{id}/renew",
        operation_id: "renewLease",
        summary: "Renew a connection's lease from now",
        auth: true,
        request: Some(("RenewRequest", true)),
        params: &[],
        responses: &[
            json(200, "The connection with its new lease", "Connection"),
            BAD,
            UNAUTHORIZED,
            UNKNOWN,
            json(
                409,
                "The connection has no lease and none was given",
                "Error",
            ),
            STORE,
        ],
        handler: |m| on(m, h::renew),
    },
    Route {
        method: Method::Get,
        path: "/v1/events",
        operation_id: "events",
        summary: "Server-Sent Events: teardown, degraded, lease_expired (and reset)",
        auth: true,
        request: None,
        params: &[
            Param {
                name: "Last-Event-ID",
                location: "header",
                description: "Resume after this event id (0: everything held; an id \
                    this run has not sent: a reset event, then live events)",
                schema: LAST_EVENT_ID,
            },
            Param {
                name: "last_event_id",
                location: "query",
                description: "Same as the Last-Event-ID header",
                schema: LAST_EVENT_ID,
            },
        ],
        responses: &[
            Resp {
                status: 200,
                description: "The event stream",
                body: Body::EventStream,
            },
            BAD,
            UNAUTHORIZED,
            json(429, "Too many event subscribers", "Error"),
        ],
        handler: |m| on(m, h::events),
    },
    Route {
        method: Method::Get,
        path: "/v1/revocation",
        operation_id: "revocationSources",
        summary: "Cached CRL and OCSP sources and their freshness",
        auth: true,
        request: None,
        params: &[],
        responses: &[json(200, "The sources", "SourceList")],
        handler: |m| on(m, h::revocation),
    },
    Route {
        method: Method::Post,
        path: "/v1/revocation/refresh",
        operation_id: "refreshRevocation",
        summary: "Refresh every source, or one ({\"url\": ...}), now; returns when done",
        auth: true,
        request: Some(("RefreshRequest", true)),
        params: &[],
        responses: &[
            json(200, "What each refresh did", "RefreshResult"),
            BAD,
            UNAUTHORIZED,
            json(404, "Unknown source URL", "Error"),
        ],
        handler: |m| on(m, h::refresh),
    },
    Route {
        method: Method::Post,
        path: "/v1/deny",
        operation_id: "deny",
        summary: "Deny a certificate now: its connections are torn down (denied)",
        auth: true,
        request: Some(("DenyRequest", true)),
        params: &[],
        responses: &[
            json(201, "Denied (a new rule)", "DenyRule"),
            json(
                200,
                "Denied (the rule replaced one with the same key)",
                "DenyRule",
            ),
            BAD,
            UNAUTHORIZED,
            json(429, "The deny list is full", "Error"),
            STORE,
        ],
        handler: |m| on(m, h::deny),
    },
    Route {
        method: Method::Get,
        path: "/v1/deny",
        operation_id: "listDenials",
        summary: "The deny list",
        auth: true,
        request: None,
        params: &[],
        responses: &[json(200, "The rules", "DenyList")],
        handler: |m| on(m, h::deny_list),
    },
    Route {
        method: Method::Delete,
        path: "/v1/deny",
        operation_id: "lift",
        summary: "Lift a deny rule (body: its key)",
        auth: true,
        request: Some(("DenyKey", true)),
        params: &[],
        responses: &[
            Resp {
                status: 204,
                description: "Lifted",
                body: Body::None,
            },
            BAD,
            UNAUTHORIZED,
            json(404, "No such rule", "Error"),
            STORE,
        ],
        handler: |m| on(m, h::lift),
    },
    Route {
        method: Method::Get,
        path: "/healthz",
        operation_id: "health",
        summary: "Liveness: the process serves",
        auth: false,
        request: None,
        params: &[],
        responses: &[json(200, "Alive", "Health")],
        handler: |m| on(m, h::healthz),
    },
    Route {
        method: Method::Get,
        path: "/readyz",
        operation_id: "ready",
        summary: "Readiness: trust store loaded, connections restored, revocation data usable",
        auth: false,
        request: None,
        params: &[],
        responses: &[
            json(200, "Ready", "Ready"),
            json(503, "Not ready (the detail says why)", "Error"),
        ],
        handler: |m| on(m, h::readyz),
    },
    Route {
        method: Method::Get,
        path: "/metrics",
        operation_id: "metrics",
        summary: "Prometheus metrics (text exposition format 0.0.4)",
        auth: false,
        request: None,
        params: &[],
        responses: &[Resp {
            status: 200,
            description: "Metrics",
            body: Body::Text,
        }],
        handler: |m| on(m, h::metrics),
    },
    Route {
        method: Method::Get,
        path: "/openapi.json",
        operation_id: "openapi",
        summary: "This API's OpenAPI 3.0 document, generated from the route table",
        auth: false,
        request: None,
        params: &[],
        responses: &[json(200, "The document", "OpenApi")],
        handler: |m| on(m, h::openapi),
    },
];

impl Route {
    /// Whether the route needs the token (when one is configured).
    pub(crate) fn needs_token(&self, metrics_auth: bool) -> bool {
        self.auth || (metrics_auth && self.path == "/metrics")
    }
}

/// The router over `app`. Checks run in this order: the `Host` (421, on a
/// loopback bind, every route), the token (401), the media type of a body
/// (415), then the body itself (413, 408, 400).
pub(crate) fn router(app: AppState, bench_echo: bool) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let mut methods = (route.handler)(route.method.filter());
        if route.request.is_some() {
            methods = methods.route_layer(middleware::from_fn(require_json));
        }
        if route.needs_token(app.metrics_auth) {
            methods =
                methods.route_layer(middleware::from_fn_with_state(app.clone(), require_token));
        }
        router = router.route(route.path, methods);
    }
    if bench_echo {
        router = router.route("/bench/echo", on(MethodFilter::POST, h::bench_echo));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        .with_state(app)
}

/// DNS rebinding defence of a loopback bind: a page on `attacker.example`
/// whose name the attacker re-points at 127.0.0.1 reaches this listener
/// from the operator's browser, same-origin as far as the browser knows,
/// but its requests carry `Host: attacker.example`. Only loopback names
/// and addresses are answered (421, RFC 9110 §15.5.20: this server is not
/// the one the request was meant for). Applied to every route: `vigil
/// health` and local probes name 127.0.0.1 or localhost.
async fn check_host(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if app.loopback_hosts_only && !names_loopback(&req) {
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            "this sidecar listens on loopback and answers only requests for localhost, \
             127.0.0.0/8 or [::1] (Host header)",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether the request names a loopback host: the `Host` header, and the
/// authority of an absolute-form target when there is one (RFC 9112
/// §3.2.2); at least one must be present and all present must be loopback.
fn names_loopback(req: &Request) -> bool {
    let mut hosts = req.headers().get_all(header::HOST).iter().peekable();
    if hosts.peek().is_none() && req.uri().authority().is_none() {
        return false;
    }
    let headers_ok = hosts.all(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.trim().parse::<axum::http::uri::Authority>().ok())
            .is_some_and(|a| is_loopback_host(a.host()))
    });
    headers_ok
        && req
            .uri()
            .authority()
            .is_none_or(|a| is_loopback_host(a.host()))
}

/// `localhost` (RFC 6761 §6.3), an address in 127.0.0.0/8, or `[::1]`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Routes with a request body take only `Content-Type: application/json`
/// (parameters such as `charset=utf-8` allowed), also when the body is
/// optional and left empty. A browser sends `text/plain`,
/// `application/x-www-form-urlencoded` and `multipart/form-data` (or no
/// type at all, for a bodiless `fetch`) cross-site without a CORS
/// preflight; `application/json` always needs one, and this server grants
/// no CORS. So no page the operator visits can deny, lift, register or
/// refresh.
async fn require_json(req: Request, next: Next) -> Response {
    let mut types = req.headers().get_all(header::CONTENT_TYPE).iter();
    let json = match (types.next(), types.next()) {
        (Some(v), None) => v.to_str().is_ok_and(is_json_media_type),
        _ => false,
    };
    if !json {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "this endpoint takes Content-Type: application/json (also with an empty body)",
        )
        .into_response();
    }
    next.run(req).await
}

/// RFC 9110 §8.3.1: type and subtype are case-insensitive; parameters
/// follow `;`.
fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /openapi.json",
    )
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`. The presented and the
/// configured token are compared as SHA-256 digests in constant time, so the
/// time taken says nothing about either (length included).
async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(expected) = &app.token_digest {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                // RFC 9110 §11.1: the scheme is case-insensitive.
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let Some(token) = presented else {
            app.metrics.auth_failure();
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "this endpoint needs Authorization: Bearer <token>",
            )
            .into_response();
        };
        let digest = vigil_core::sha256(token.as_bytes());
        if !bool::from(digest.ct_eq(expected)) {
            app.metrics.auth_failure();
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the bearer token is not the configured one",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// A JSON body, bounded by the configured limit; errors in the API shape.
pub(crate) struct JsonBody<T>(pub(crate) T);

/// A JSON body that may be absent (empty).
pub(crate) struct OptionalJson<T>(pub(crate) Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, app.max_body_bytes, app.body_read_timeout).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "malformed_json",
                "the request needs a JSON body",
            ));
        }
        parse_json(&bytes).map(Self)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, app.max_body_bytes, app.body_read_timeout).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
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
