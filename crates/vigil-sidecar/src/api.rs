//! The HTTP API: one table of routes ([`ROUTES`]) from which both the
//! router and `/openapi.json` are built, so the two cannot drift. The
//! checks the router puts in front of every handler (loopback `Host`,
//! bearer token on every `/v1` route, `application/json` bodies) are in
//! `guard`; bounded JSON bodies in `body`.

use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use super::error::ApiError;
use super::guard::{check_host, require_json, require_token};
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
const SCOPE: &str = r#"{"type": "string", "enum": ["node", "fleet"]}"#;

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
            Param {
                name: "scope",
                location: "query",
                description: "node (default): this node's events; fleet: every node's \
                    (in fleet mode: live, each with node, no ids; otherwise the same as node)",
                schema: SCOPE,
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
        summary: "Refresh every source, or those at one URL ({\"url\": ...}: a CRL, or an OCSP \
                  responder and every certificate asked about there), now; returns when done",
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
