//! The HTTP side: routes, conditional GET, and the misbehaviours.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::header::{
    CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::net::ConnHandle;
use super::state::{etag, OcspParams};
use super::wire;
use super::{Behaviour, RequestCounts, Shared};

const CRL_TYPE: &str = "application/pkix-crl";
const PEM_TYPE: &str = "application/x-pem-file";
const OCSP_TYPE: &str = "application/ocsp-response";

/// The body of [`Behaviour::Garbage`]: not DER (a DER SEQUENCE starts with 0x30).
const GARBAGE: &[u8] = b"pki-fixtures: a deliberately garbled body, not DER\n";

type Conn = Option<Extension<ConnectInfo<ConnHandle>>>;

/// The responder's routes over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/crl/{file}", get(crl))
        .route("/ocsp/{ca}", post(ocsp_post))
        .route("/ocsp/{ca}/{*request}", get(ocsp_get))
        .fallback(not_found)
        .with_state(shared)
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().totals.not_found += 1;
    text(StatusCode::NOT_FOUND, "no such CA or route\n")
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn ok(content_type: &'static str, body: impl Into<Body>) -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// Where a request stands after a step: carry on with this behaviour, or answer now.
enum Step {
    Go(Behaviour),
    Done(Response),
}

/// Counts the request against CA `ca`, or answers 404 for an unknown CA; returns the
/// behaviour of this route kind.
fn admit(shared: &Shared, ca: &str, count: fn(&mut RequestCounts), ocsp: bool) -> Step {
    let mut state = shared.lock();
    if !state.cas.contains_key(ca) {
        state.totals.not_found += 1;
        return Step::Done(text(StatusCode::NOT_FOUND, "no such CA\n"));
    }
    count(&mut state.totals);
    count(state.per_ca.entry(ca.to_string()).or_default());
    Step::Go(if ocsp {
        state.behaviours.ocsp
    } else {
        state.behaviours.crl
    })
}

/// The behaviours that need no content: waits for [`Behaviour::Slow`], answers the
/// others that do not depend on the route. `Ok`: what to do with the content.
async fn prelude(behaviour: Behaviour, conn: Conn) -> Step {
    match behaviour {
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Step::Go(Behaviour::Normal)
        }
        Behaviour::Status500 => Step::Done(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "pki-fixtures responder: told to fail\n",
        )),
        Behaviour::ConnectionReset | Behaviour::Down => {
            // Without a socket (a router driven in-process) there is nothing to drop.
            let Some(Extension(ConnectInfo(conn))) = conn else {
                return Step::Done(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "pki-fixtures responder: would drop the connection\n",
                ));
            };
            if behaviour == Behaviour::Down {
                conn.close();
            } else {
                conn.reset();
            }
            // Never written: the connection fails on its first write.
            Step::Done(StatusCode::NO_CONTENT.into_response())
        }
        other => Step::Go(other),
    }
}

fn pad(mut body: Vec<u8>, len: usize) -> Vec<u8> {
    if body.len() < len {
        body.resize(len, 0);
    }
    body
}

async fn crl(
    State(shared): State<Arc<Shared>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    conn: Conn,
) -> Response {
    let Some(ca) = file.strip_suffix(".crl") else {
        return not_found(State(shared)).await;
    };
    let behaviour = match admit(&shared, ca, |c| c.crl += 1, false) {
        Step::Go(b) => b,
        Step::Done(response) => return response,
    };
    let behaviour = match prelude(behaviour, conn).await {
        Step::Go(b) => b,
        Step::Done(response) => return response,
    };
    let content = {
        let state = shared.lock();
        let Some(ca_state) = state.cas.get(ca) else {
            return text(StatusCode::NOT_FOUND, "no such CA\n");
        };
        let served = ca_state.served();
        match behaviour {
            Behaviour::Garbage => return ok(CRL_TYPE, GARBAGE),
            Behaviour::TryLater => {
                let mut response = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "pki-fixtures responder: try later\n",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("60"));
                return response;
            }
            Behaviour::Stale => ca_state
                .stale_crl(shared.clock.now(), state.crl_validity)
                .map(|crl| {
                    let tag = etag(&crl.der);
                    (Bytes::from(crl.der), tag, crl.this_update)
                }),
            Behaviour::WrongSigner => ca_state.forged_crl().map(|crl| {
                let tag = etag(&crl.der);
                (Bytes::from(crl.der), tag, served.last_modified)
            }),
            Behaviour::NonconformingCrl(fault) => ca_state.nonconforming_crl(fault).map(|der| {
                let tag = etag(&der);
                (Bytes::from(der), tag, served.last_modified)
            }),
            _ => Ok((
                served.body.clone(),
                served.etag.clone(),
                served.last_modified,
            )),
        }
    };
    let Ok((der, tag, last_modified)) = content else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "pki-fixtures responder: signing failed\n",
        );
    };
    if let Behaviour::Oversized(len) = behaviour {
        return ok(CRL_TYPE, pad(der.to_vec(), len));
    }
    let pem = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "pem" || p.starts_with("pem=")));
    // One entity tag per representation (RFC 9110 §8.8.3).
    let tag = if pem {
        format!("{}-pem\"", tag.trim_end_matches('"'))
    } else {
        tag
    };
    let mut validators = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&tag) {
        validators.insert(ETAG, value);
    }
    if let Some(value) = http_date(last_modified) {
        validators.insert(LAST_MODIFIED, value);
    }
    if not_modified(&headers, &tag, last_modified) {
        let mut state = shared.lock();
        state.totals.crl_not_modified += 1;
        state
            .per_ca
            .entry(ca.to_string())
            .or_default()
            .crl_not_modified += 1;
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    let (content_type, body) = if pem {
        (PEM_TYPE, Body::from(crate::pem("X509 CRL", &der)))
    } else {
        (CRL_TYPE, Body::from(der))
    };
    validators.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    (StatusCode::OK, validators, body).into_response()
}

/// RFC 9110 §13.1.2 and §13.2.2: If-None-Match (weak comparison) decides when present;
/// otherwise If-Modified-Since.
fn not_modified(headers: &HeaderMap, tag: &str, last_modified: OffsetDateTime) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let matches_tag = |value: &HeaderValue| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == "*" || strip(t) == tag))
    };
    let mut conditions = headers.get_all(IF_NONE_MATCH).iter().peekable();
    if conditions.peek().is_some() {
        return conditions.any(matches_tag);
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .is_some_and(|since| last_modified <= since)
}

const HTTP_DATE: &[time::format_description::FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// IMF-fixdate (RFC 9110 §5.6.7).
fn http_date(t: OffsetDateTime) -> Option<HeaderValue> {
    let text = t.to_offset(time::UtcOffset::UTC).format(HTTP_DATE).ok()?;
    HeaderValue::from_str(&text).ok()
}

fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text.trim(), HTTP_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

async fn ocsp_get(
    State(shared): State<Arc<Shared>>,
    Path((ca, request)): Path<(String, String)>,
    conn: Conn,
) -> Response {
    let der = crate::der::base64_decode(request.trim_start_matches('/'));
    ocsp(shared, &ca, der, |c| c.ocsp_get += 1, conn).await
}

async fn ocsp_post(
    State(shared): State<Arc<Shared>>,
    Path(ca): Path<String>,
    conn: Conn,
    body: Bytes,
) -> Response {
    ocsp(shared, &ca, Some(body.to_vec()), |c| c.ocsp_post += 1, conn).await
}

async fn ocsp(
    shared: Arc<Shared>,
    ca: &str,
    request: Option<Vec<u8>>,
    count: fn(&mut RequestCounts),
    conn: Conn,
) -> Response {
    let behaviour = match admit(&shared, ca, count, true) {
        Step::Go(b) => b,
        Step::Done(response) => return response,
    };
    let behaviour = match prelude(behaviour, conn).await {
        Step::Go(b) => b,
        Step::Done(response) => return response,
    };
    let der = match behaviour {
        Behaviour::Garbage => return ok(OCSP_TYPE, GARBAGE),
        Behaviour::TryLater => return ok(OCSP_TYPE, wire::status_only(wire::status::TRY_LATER)),
        _ => match request.as_deref().and_then(wire::parse_request) {
            None => wire::status_only(wire::status::MALFORMED_REQUEST),
            Some(request) => {
                let state = shared.lock();
                let Some(ca_state) = state.cas.get(ca) else {
                    return text(StatusCode::NOT_FOUND, "no such CA\n");
                };
                let params = OcspParams {
                    signer: state.signer,
                    responder_id: state.responder_id,
                    validity: state.ocsp_validity,
                    stale: behaviour == Behaviour::Stale,
                    wrong_signer: behaviour == Behaviour::WrongSigner,
                };
                match ca_state.answer(&request, shared.clock.now(), params) {
                    Ok(der) => der,
                    Err(_) => {
                        return text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "pki-fixtures responder: signing failed\n",
                        )
                    }
                }
            }
        },
    };
    match behaviour {
        Behaviour::Oversized(len) => ok(OCSP_TYPE, pad(der, len)),
        _ => ok(OCSP_TYPE, der),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let t = time::macros::datetime!(1994-11-06 08:49:37 UTC);
        let v = http_date(t).expect("formats");
        assert_eq!(v, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn conditional_requests() {
        let t = time::macros::datetime!(2030-01-01 00:00:00 UTC);
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "\"a\"", t));
        h.insert(
            IF_MODIFIED_SINCE,
            HeaderValue::from_static("Tue, 01 Jan 2030 00:00:00 GMT"),
        );
        assert!(not_modified(&h, "\"a\"", t));
        assert!(!not_modified(&h, "\"a\"", t + time::Duration::seconds(1)));
        // If-None-Match wins over If-Modified-Since.
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"b\", W/\"c\""));
        assert!(!not_modified(&h, "\"a\"", t));
        assert!(not_modified(&h, "\"c\"", t));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, "\"a\"", t));
    }
}
