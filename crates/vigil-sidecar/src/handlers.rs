//! Route handlers. Each parses its input into checked values first (400 on
//! anything malformed), then acts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use vigil_core::{DenyKey, DenyRule, Verdict, VerifyOptions};
use vigil_runtime::Refreshed;

use super::body::{required_json, JsonBody, OptionalJson, RawBody};
use super::chain::{parse_chain, ChainItem};
use super::connections::{ConnError, Registered, MAX_LEASE_SECS};
use super::error::ApiError;
use super::record::{ApiId, UsageKind};
use super::AppState;

/// Most labels on one connection, and their sizes (characters).
pub(crate) const MAX_LABELS: usize = 32;
pub(crate) const MAX_LABEL_KEY: usize = 128;
pub(crate) const MAX_LABEL_VALUE: usize = 1024;
/// Largest page of `GET /v1/connections`.
pub(crate) const MAX_PAGE: usize = 10_000;
/// Longest `by` (who set a deny rule), characters.
pub(crate) const MAX_BY: usize = DenyRule::MAX_SET_BY;
/// Longest deny reason, characters.
pub(crate) const MAX_REASON: usize = DenyRule::MAX_REASON;
/// Range of a deny rule's `expires`: 0000-01-01T00:00:00Z to
/// 9999-12-31T23:59:59Z (what RFC 3339 can write).
pub(crate) const MIN_EXPIRES: i64 = -62_167_219_200;
pub(crate) const MAX_EXPIRES: i64 = 253_402_300_799;

/// `POST /v1/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    chain: Vec<ChainItem>,
    #[serde(default)]
    usage: UsageKind,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/connections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionRequest {
    chain: Vec<ChainItem>,
    #[serde(default)]
    usage: UsageKind,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    lease_secs: Option<u32>,
}

/// `POST /v1/connections/{id}/renew`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewRequest {
    #[serde(default)]
    lease_secs: Option<u32>,
}

/// `POST /v1/revocation/refresh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// One source; absent: all.
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
    label: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    last_event_id: Option<String>,
    /// `node` (default): this node's events; `fleet`: every node's.
    scope: Option<String>,
}

pub(crate) async fn verify(
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    // The same octets as an accepted request before: straight to the
    // verdict cache, which decides whether that verdict still holds.
    if let Some(seen) = app.memo.get(&body) {
        if let Some(hit) = app.engine.cached_verdict(&seen.chain, &seen.options) {
            app.metrics.verified(&hit, Some(started.elapsed()));
            return Ok(verdict_response(&app, &hit));
        }
    }
    let req: VerifyRequest = required_json(&body)?;
    let chain = parse_chain(req.chain)?;
    let options = VerifyOptions::new(req.usage.usage())
        .with_name(req.name)
        .with_policy(app.policy);
    let started = Instant::now();
    // A cached verdict is an accepted one, for octets equal to a chain that
    // passed the checks below before: they need not run again.
    let verdict = match app.engine.cached_verdict(&chain.certs, &options) {
        Some(hit) => hit,
        None => {
            chain.check()?;
            if let Some(name) = &options.name {
                vigil_core::check_peer_name(name)
                    .map_err(|e| ApiError::bad_request("invalid_request", format!("name: {e}")))?;
            }
            super::verify_chain(&app.engine, &chain.certs, &options).await
        }
    };
    app.metrics.verified(&verdict, Some(started.elapsed()));
    let response = verdict_response(&app, &verdict);
    if verdict.is_accepted() {
        app.memo.insert(body, chain.certs, options);
    }
    Ok(response)
}

fn verdict_response(app: &AppState, verdict: &Arc<Verdict>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        app.rendered.get(verdict),
    )
        .into_response()
}

pub(crate) async fn register(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<ConnectionRequest>,
) -> Result<Response, ApiError> {
    read_only(&app)?;
    let chain = parse_chain(req.chain)?;
    chain.check()?;
    let chain = chain.certs;
    check_labels(&req.labels)?;
    let lease = check_lease(req.lease_secs)?;
    match app
        .conns
        .register(chain, req.usage, req.labels, lease)
        .await
    {
        Ok(Registered::Accepted {
            id,
            verdict,
            lease_expires_at,
        }) => {
            app.metrics.verified(&verdict, None);
            let body = json!({
                "id": id.to_string(),
                "verdict": &*verdict,
                "lease_expires_at": lease_expires_at,
            });
            Ok(json_response(StatusCode::CREATED, &body))
        }
        Ok(Registered::Rejected(verdict)) => {
            app.metrics.verified(&verdict, None);
            Err(
                ApiError::new(StatusCode::FORBIDDEN, "rejected", verdict.detail.clone()).with(
                    "verdict",
                    serde_json::to_value(&*verdict).unwrap_or_default(),
                ),
            )
        }
        Err(e) => Err(conn_error(e, "")),
    }
}

pub(crate) async fn list(State(app): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let query = axum::extract::Query::<ListQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?
        .0;
    let limit = query.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("limit must be within 1..={MAX_PAGE}"),
        ));
    }
    let after = match &query.after {
        Some(a) => Some(ApiId::parse(a).ok_or_else(|| {
            ApiError::bad_request("invalid_request", "after: not a connection id")
        })?),
        None => None,
    };
    let filter = match &query.label {
        Some(l) => Some(l.split_once('=').ok_or_else(|| {
            ApiError::bad_request("invalid_request", "label: expected key=value")
        })?),
        None => None,
    };
    let (connections, next, total) = app.conns.list(after, limit, filter);
    Ok(json_response(
        StatusCode::OK,
        &json!({"connections": connections, "next": next, "total": total}),
    ))
}

pub(crate) async fn get_connection(
    State(app): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let id = connection_id(path)?;
    let view = app
        .conns
        .get(id)
        .ok_or_else(|| ApiError::unknown_connection(&id.to_string()))?;
    Ok(json_response(StatusCode::OK, &view))
}

pub(crate) async fn delete_connection(
    State(app): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    read_only(&app)?;
    let id = connection_id(path)?;
    app.conns
        .remove(id)
        .await
        .map_err(|e| conn_error(e, &id.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn renew(
    State(app): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    OptionalJson(req): OptionalJson<RenewRequest>,
) -> Result<Response, ApiError> {
    read_only(&app)?;
    let id = connection_id(path)?;
    let secs = check_lease(req.and_then(|r| r.lease_secs))?;
    let view = app
        .conns
        .renew(id, secs)
        .await
        .map_err(|e| conn_error(e, &id.to_string()))?;
    Ok(json_response(StatusCode::OK, &view))
}

pub(crate) async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = axum::extract::Query::<EventsQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?
        .0;
    let header_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("invalid_request", "Last-Event-ID is not ASCII"))
        })
        .transpose()?;
    let last = header_id.or(query.last_event_id.as_deref());
    let mut response = match query.scope.as_deref() {
        // Without fleet mode this node is the whole fleet.
        None | Some("node") | Some("fleet") if app.cluster.is_none() => app
            .hub
            .subscribe(last, app.shutdown.clone(), app.keep_alive)?
            .into_response(),
        None | Some("node") => app
            .hub
            .subscribe(last, app.shutdown.clone(), app.keep_alive)?
            .into_response(),
        Some("fleet") => app
            .hub
            .subscribe_fleet(app.shutdown.clone(), app.keep_alive)?
            .into_response(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "scope is node (this node's events) or fleet (every node's)",
            ))
        }
    };
    // Proxies must not buffer the stream.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

pub(crate) async fn revocation(State(app): State<AppState>) -> Response {
    json_response(StatusCode::OK, &json!({"sources": app.engine.sources()}))
}

pub(crate) async fn refresh(
    State(app): State<AppState>,
    OptionalJson(req): OptionalJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    // Each source's URL and serial as shown, by the engine's key; read
    // once, before the refresh (a source evicted meanwhile shows its key).
    let sources = app.engine.sources();
    let results = match req.and_then(|r| r.url) {
        // A CRL's URL, or an OCSP responder's (every certificate asked
        // about there); an OCSP source's own key is taken too.
        Some(url) => {
            let keys: Vec<&str> = sources
                .iter()
                .filter(|s| s.url == url || s.key == url)
                .map(|s| s.key.as_str())
                .collect();
            if keys.is_empty() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_source",
                    "no revocation source with that URL is known (see GET /v1/revocation)",
                ));
            }
            let engine = &app.engine;
            let runs = keys.into_iter().map(|key| async move {
                let outcome = engine.refresh(key).await;
                outcome.map(|o| (key.to_owned(), o))
            });
            // An operator's request: in fleet mode the CA is asked even
            // if another node did in this refresh window.
            vigil_runtime::Engine::asked(futures_util::future::join_all(runs))
                .await
                .into_iter()
                .flatten()
                .collect()
        }
        None => vigil_runtime::Engine::asked(app.engine.refresh_all()).await,
    };
    let names: std::collections::HashMap<&str, (&str, Option<&[u8]>)> = sources
        .iter()
        .map(|s| (s.key.as_str(), (s.url.as_str(), s.serial.as_deref())))
        .collect();
    let refreshed: Vec<Value> = results
        .into_iter()
        .map(|(key, outcome)| {
            let (outcome, error) = match outcome {
                Refreshed::Updated => ("updated", None),
                Refreshed::NotModified => ("not_modified", None),
                Refreshed::Failed(e) => ("failed", Some(e)),
                _ => ("failed", Some("unknown outcome".to_owned())),
            };
            let (url, serial) = names.get(key.as_str()).copied().unwrap_or((&key, None));
            json!({"url": url, "serial": serial.map(vigil_core::text::hex),
                   "outcome": outcome, "error": error})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"refreshed": refreshed}),
    ))
}

pub(crate) async fn deny(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let rule = parse_deny(body)?;
    // The cap check and the insertion are one step.
    let _serial = app.deny_lock.lock().await;
    let rules = app.engine.denials();
    if rules.len() >= app.max_deny_rules && !rules.iter().any(|r| r.key == rule.key) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_deny_rules",
            format!(
                "the deny list holds at most {} rules; lift some first",
                app.max_deny_rules
            ),
        ));
    }
    // As held: in fleet mode with who set it and when.
    let (added, rule) = match &app.cluster {
        // Set here at once, and written to the fleet's bucket.
        Some(cluster) => cluster.deny(rule).await.map_err(ApiError::cluster)?,
        None => {
            let engine = app.engine.clone();
            let stored = rule.clone();
            let added = tokio::task::spawn_blocking(move || engine.deny(stored))
                .await
                .map_err(ApiError::store)?
                .map_err(ApiError::store)?;
            (added, rule)
        }
    };
    tracing::warn!(rule = %deny_label(&rule.key), reason = %rule.reason, "deny rule set");
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &rule_json(&rule, now_secs())))
}

pub(crate) async fn deny_list(State(app): State<AppState>) -> Response {
    let now = now_secs();
    let rules: Vec<Value> = app
        .engine
        .denials()
        .iter()
        .map(|r| rule_json(r, now))
        .collect();
    json_response(StatusCode::OK, &json!({"rules": rules}))
}

pub(crate) async fn lift(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let key: DenyKey = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("expected one of issuer_serial, cert_sha256, spki_sha256 ({e})"),
        )
    })?;
    let key = key
        .normalized()
        .map_err(|e| ApiError::bad_request("invalid_request", e))?;
    let label = deny_label(&key);
    let lifted = match &app.cluster {
        Some(cluster) => cluster.lift(&key).await.map_err(ApiError::cluster)?,
        None => {
            let engine = app.engine.clone();
            tokio::task::spawn_blocking(move || engine.lift(&key))
                .await
                .map_err(ApiError::store)?
                .map_err(ApiError::store)?
        }
    };
    if !lifted {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_rule",
            "no deny rule has that key",
        ));
    }
    tracing::warn!(rule = %label, "deny rule lifted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    match super::readiness(&app) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(detail) => {
            let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", detail);
            match &app.cluster {
                Some(cluster) => error.with("cluster", super::state::cluster_json(cluster)),
                None => error,
            }
            .into_response()
        }
    }
}

pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        super::metrics::render(&app),
    )
        .into_response()
}

pub(crate) async fn openapi(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        app.openapi.clone(),
    )
        .into_response()
}

/// The load benchmark's ceiling: reads the body, answers a constant.
pub(crate) async fn bench_echo(_body: axum::body::Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "{\"ok\":true}",
    )
        .into_response()
}

fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("response serialization: {e}"),
        )
        .into_response(),
    }
}

fn connection_id(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<ApiId, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    ApiId::parse(&text).ok_or_else(|| ApiError::unknown_connection(&text))
}

fn conn_error(e: ConnError, id: &str) -> ApiError {
    match e {
        ConnError::Unknown => ApiError::unknown_connection(id),
        ConnError::NoLease => ApiError::new(
            StatusCode::CONFLICT,
            "no_lease",
            "the connection was registered without a lease; give lease_secs",
        ),
        ConnError::TooMany(max) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!("at most {max} connections may be registered; remove some first"),
        ),
        ConnError::Store(e) => ApiError::store(e),
        ConnError::Live => ApiError::new(
            StatusCode::CONFLICT,
            "live_connection",
            format!("connection '{id}' is held by this process; it ends when its peer does"),
        ),
    }
}

/// 405 on a read-only connection list (the admin API of `vigil proxy`).
fn read_only(app: &AppState) -> Result<(), ApiError> {
    if app.connections_read_only {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "read_only",
            "connections here are the proxy's own: they are listed, not registered or removed",
        ));
    }
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for (k, v) in labels {
        if k.chars().count() > MAX_LABEL_KEY || v.chars().count() > MAX_LABEL_VALUE {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "label keys are at most {MAX_LABEL_KEY} characters and values at most \
                     {MAX_LABEL_VALUE}"
                ),
            ));
        }
    }
    Ok(())
}

fn check_lease(secs: Option<u32>) -> Result<Option<u32>, ApiError> {
    match secs {
        Some(s) if s == 0 || s > MAX_LEASE_SECS => Err(ApiError::bad_request(
            "invalid_request",
            format!("lease_secs must be within 1..={MAX_LEASE_SECS}"),
        )),
        other => Ok(other),
    }
}

/// `{"issuer_serial"|"cert_sha256"|"spki_sha256": ..., "reason": ...,
/// "expires": RFC 3339 | Unix seconds | null}`.
fn parse_deny(body: Value) -> Result<DenyRule, ApiError> {
    let bad = |d: String| ApiError::bad_request("invalid_request", d);
    let Value::Object(mut map) = body else {
        return Err(bad("expected a JSON object".into()));
    };
    // As the schema says: 1..=1024 characters, not only spaces, tabs and
    // line breaks (those are trimmed).
    let reason = match map.remove("reason") {
        Some(Value::String(r)) if !trim_blank(&r).is_empty() && r.chars().count() <= MAX_REASON => {
            trim_blank(&r).to_owned()
        }
        Some(_) => {
            return Err(bad(format!(
                "reason: a string of 1..={MAX_REASON} characters, not only blanks"
            )))
        }
        None => return Err(bad("reason is required".into())),
    };
    let expires = match map.remove("expires") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(vigil_core::text::parse_rfc3339(&t).ok_or_else(|| {
            bad(format!(
                "expires: '{t}' is not an RFC 3339 time such as 2030-01-31T12:00:00Z"
            ))
        })?),
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| bad("expires: Unix seconds as an integer".into()))?,
        ),
        Some(_) => return Err(bad("expires: an RFC 3339 string or null".into())),
    };
    if expires.is_some_and(|t| !(MIN_EXPIRES..=MAX_EXPIRES).contains(&t)) {
        return Err(bad(
            "expires: between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z".into(),
        ));
    }
    let by = match map.remove("by") {
        None | Some(Value::Null) => None,
        Some(Value::String(b))
            if !trim_blank(&b).is_empty()
                && b.chars().count() <= MAX_BY
                && !b.chars().any(|c| c.is_ascii_control()) =>
        {
            Some(trim_blank(&b).to_owned())
        }
        Some(_) => {
            return Err(bad(format!(
                "by: a string of 1..={MAX_BY} characters, no control characters"
            )))
        }
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    let known = ["issuer_serial", "cert_sha256", "spki_sha256"];
    if let Some(unknown) = keys.iter().find(|k| !known.contains(&k.as_str())) {
        return Err(bad(format!("unknown field '{unknown}'")));
    }
    if keys.len() != 1 {
        return Err(bad(
            "give exactly one of issuer_serial, cert_sha256, spki_sha256".into(),
        ));
    }
    let key: DenyKey = serde_json::from_value(Value::Object(map)).map_err(|e| {
        bad(format!(
            "issuer_serial is {{\"issuer\": DN, \"serial\": hex}}; the others a hex string ({e})"
        ))
    })?;
    let key = key.normalized().map_err(bad)?;
    Ok(DenyRule {
        key,
        reason,
        expires,
        set_by: by,
        set_at: Some(super::record::now_ms()),
    })
}

fn rule_json(rule: &DenyRule, now: i64) -> Value {
    let mut map = match serde_json::to_value(&rule.key) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    map.insert("reason".into(), Value::String(rule.reason.clone()));
    map.insert(
        "expires".into(),
        rule.expires
            .map_or(Value::Null, |t| Value::String(vigil_core::text::rfc3339(t))),
    );
    map.insert("active".into(), Value::Bool(rule.is_active(now)));
    if let Some(by) = &rule.set_by {
        map.insert("set_by".into(), Value::String(by.clone()));
    }
    if let Some(at) = rule.set_at {
        map.insert(
            "set_at".into(),
            Value::String(vigil_core::text::rfc3339(at.div_euclid(1000))),
        );
    }
    Value::Object(map)
}

/// What identifies a rule in logs (digests and serials only).
fn deny_label(key: &DenyKey) -> String {
    match key {
        DenyKey::IssuerSerial { issuer, serial } => format!("issuer {issuer} serial {serial}"),
        DenyKey::CertSha256(h) => format!("cert sha256 {h}"),
        DenyKey::SpkiSha256(h) => format!("spki sha256 {h}"),
    }
}

fn trim_blank(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r'])
}

fn now_secs() -> i64 {
    super::record::now_ms() / 1000
}
