//! The checks in front of every handler (see `api::router`): a loopback
//! `Host` on a loopback bind, the bearer token, `application/json` bodies.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// DNS rebinding defence of a loopback bind: a page on `attacker.example`
/// whose name the attacker re-points at 127.0.0.1 reaches this listener
/// from the operator's browser, same-origin as far as the browser knows,
/// but its requests carry `Host: attacker.example`. Only loopback names
/// and addresses are answered (421, RFC 9110 §15.5.20: this server is not
/// the one the request was meant for). Applied to every route: `vigil
/// health` and local probes name 127.0.0.1 or localhost.
pub(crate) async fn check_host(State(app): State<AppState>, req: Request, next: Next) -> Response {
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
pub(crate) async fn require_json(req: Request, next: Next) -> Response {
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

/// RFC 6750 §2.1: `Authorization: Bearer <token>`. The presented and the
/// configured token are compared as SHA-256 digests in constant time, so the
/// time taken says nothing about either (length included).
pub(crate) async fn require_token(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
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
