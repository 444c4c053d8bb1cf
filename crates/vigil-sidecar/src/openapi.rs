//! `/openapi.json`: an OpenAPI 3.0 document built from the same route table
//! as the router ([`ROUTES`]), so paths, methods, parameters, auth and
//! documented statuses cannot drift from what is served. The component
//! schemas are written here beside it; the tests check real responses
//! against them.

use serde_json::{json, Map, Value};
use vigil_core::ReasonCode;

use super::api::{Body, Resp, BODY_STATUSES, MISDIRECTED, ROUTES, UNAUTHORIZED};
use super::chain::MAX_CHAIN;
use super::connections::MAX_LEASE_SECS;
use super::events::EVENT_NAMES;
use super::handlers::{
    MAX_BY, MAX_EXPIRES, MAX_LABELS, MAX_LABEL_KEY, MAX_LABEL_VALUE, MAX_REASON, MIN_EXPIRES,
};

/// The document; `metrics_auth`: `/metrics` needs the token.
pub(crate) fn document(metrics_auth: bool) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(route.operation_id));
        op.insert("summary".into(), json!(route.summary));
        let mut params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        params.extend(route.params.iter().map(|p| {
            let schema = serde_json::from_str::<Value>(p.schema).unwrap_or_else(|_| string());
            json!({"name": p.name, "in": p.location, "required": false,
                   "description": p.description, "schema": schema})
        }));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some((schema, required)) = route.request {
            op.insert(
                "requestBody".into(),
                json!({"required": required,
                       "content": {"application/json": {"schema": reference(schema)}}}),
            );
        }
        let token = route.needs_token(metrics_auth);
        if token {
            op.insert("security".into(), json!([{"bearer": []}]));
        }
        // What the layers in front of every handler answer (api::router).
        let mut answers: Vec<Resp> = route.responses.to_vec();
        let mut add = |r: Resp| {
            if !answers.iter().any(|a| a.status == r.status) {
                answers.push(r);
            }
        };
        add(MISDIRECTED);
        if token {
            add(UNAUTHORIZED);
        }
        if route.request.is_some() {
            BODY_STATUSES.iter().copied().for_each(&mut add);
        }
        let mut responses = Map::new();
        for r in &answers {
            let mut resp = Map::new();
            resp.insert("description".into(), json!(r.description));
            let content = match r.body {
                Body::None => None,
                Body::Json(schema) => {
                    Some(json!({"application/json": {"schema": reference(schema)}}))
                }
                Body::Text => Some(json!({"text/plain": {"schema": {"type": "string"}}})),
                // OpenAPI 3.0 has no itemSchema: under text/event-stream,
                // `schema` describes one event (its fields as the SSE
                // parser reads them), as schemathesis and others read it.
                Body::EventStream => {
                    Some(json!({"text/event-stream": {"schema": reference("ServerSentEvent")}}))
                }
            };
            if let Some(content) = content {
                resp.insert("content".into(), content);
            }
            if route.operation_id == "registerConnection" && r.status == 201 {
                // What a client does with the id it gets (OpenAPI 3.0 §4.7.20).
                let id = json!({"id": "$response.body#/id"});
                resp.insert(
                    "links".into(),
                    json!({
                        "GetConnection": {"operationId": "getConnection", "parameters": id},
                        "RenewLease": {"operationId": "renewLease", "parameters": id},
                        "DeleteConnection": {"operationId": "deleteConnection", "parameters": id},
                    }),
                );
            }
            responses.insert(r.status.to_string(), Value::Object(resp));
        }
        op.insert("responses".into(), Value::Object(responses));
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.method.as_str().into(), Value::Object(op));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Vigil sidecar API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Verifies peer certificate chains, tracks live connections and \
                announces on /v1/events which must be torn down. Errors are \
                {\"error\", \"detail\"}. When a token is configured every /v1 route needs \
                it (Authorization: Bearer); /healthz, /readyz and /openapi.json never do. \
                Request bodies are Content-Type: application/json (415 otherwise; also for \
                the optional bodies of refresh and renew, which may be empty). On a loopback \
                bind a Host that is not localhost, 127.0.0.0/8 or [::1] gets 421. \
                Certificates are format x509-certificate (a PEM block or bundle, or base64 \
                DER), issuer names format x509-name (RFC 4514 syntax, RDNs in the order the \
                Name holds them, matched by RFC 5280 §7.1 comparison), peer names format \
                peer-name (a DNS name or an IP address). Event data on \
                /v1/events: `teardown` is a TeardownEvent, `degraded` a DegradedEvent, \
                `lease_expired` a LeaseExpiredEvent, `reset` a ResetEvent."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable_string() -> Value {
    json!({"type": "string", "nullable": true})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// An object the server refuses unknown members of.
fn closed(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties,
           "additionalProperties": false})
}

/// Hex as deny keys take it: pairs of digits, optionally `:`-separated.
const HEX: &str = "^[0-9a-fA-F]{2}(:?[0-9a-fA-F]{2})*$";
const SHA256_HEX: &str = "^[0-9a-fA-F]{2}(:?[0-9a-fA-F]{2}){31}$";

/// The three kinds of deny key, each a closed object with `extra`
/// members besides its key (`extra_required` of them required).
fn deny_variants(extra: &Value, extra_required: &[&str]) -> Value {
    let issuer_serial = closed(
        &["issuer", "serial"],
        json!({
            "issuer": {"type": "string", "format": "x509-name", "minLength": 1, "maxLength": 4096,
                "description": "Issuer DN as verdicts render it (RFC 4514 syntax, RDNs in the \
                    Name's order), compared by RFC 5280 §7.1 rules; rules show it canonical \
                    (case folded, whitespace collapsed)"},
            "serial": {"type": "string", "pattern": HEX},
        }),
    );
    let sha = json!({"type": "string", "pattern": SHA256_HEX});
    let variants: Vec<Value> = [
        ("issuer_serial", issuer_serial),
        ("cert_sha256", sha.clone()),
        ("spki_sha256", sha),
    ]
    .into_iter()
    .map(|(key, schema)| {
        let mut properties = extra.as_object().cloned().unwrap_or_default();
        properties.insert(key.to_owned(), schema);
        let mut required = vec![key];
        required.extend_from_slice(extra_required);
        closed(&required, Value::Object(properties))
    })
    .collect();
    json!({"oneOf": variants})
}

fn schemas() -> Value {
    let event_names: Vec<&str> = EVENT_NAMES.iter().copied().chain(["reset"]).collect();
    let reasons: Vec<&str> = ReasonCode::all().map(ReasonCode::as_str).collect();
    let usage = json!({"type": "string", "enum": ["client", "server", "any"], "default": "any"});
    let chain = json!({"type": "array", "minItems": 1, "maxItems": MAX_CHAIN,
        "items": {"type": "string", "format": "x509-certificate", "minLength": 1},
        "description": "Leaf first; each element a PEM block (or bundle) or one base64 DER \
            certificate; at most 16 certificates in all"});
    let labels = json!({"type": "object", "maxProperties": MAX_LABELS,
        "propertyNames": {"maxLength": MAX_LABEL_KEY},
        "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE}});
    let labels_out = json!({"type": "object", "additionalProperties": string()});
    let lease =
        json!({"type": "integer", "minimum": 1, "maximum": MAX_LEASE_SECS, "nullable": true});
    let reason = json!({"type": "string", "minLength": 1, "maxLength": MAX_REASON,
        "pattern": "[^ \t\n\r]",
        "description": "Why; blanks around it are trimmed"});
    let by = json!({"type": "string", "nullable": true, "minLength": 1, "maxLength": MAX_BY,
        "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\x00-\\x20\\x7f][^\\x00-\\x1f\\x7f]*$",
        "description": "Who sets the rule (an operator's name); blanks around it are trimmed"});
    let expires = json!({"nullable": true, "description": "When the rule stops applying: \
    RFC 3339, or Unix seconds; absent or null: until lifted",
    "oneOf": [
        {"type": "string", "format": "date-time"},
        {"type": "integer", "minimum": MIN_EXPIRES, "maximum": MAX_EXPIRES},
    ]});
    let node = json!({"type": "string",
        "description": "Fleet mode only: the node that announced the event"});
    let teardown_reason = json!({"type": "string",
        "enum": vigil_core::TeardownReason::ALL.map(vigil_core::TeardownReason::as_str)});
    json!({
        "Error": object(&["error", "detail"], json!({"error": string(), "detail": string()})),
        "VerifyRequest": closed(&["chain"], json!({"chain": chain, "usage": usage,
            "name": {"type": "string", "nullable": true, "format": "peer-name",
                "minLength": 1, "maxLength": 253,
                "description": "Expected DNS name or IP address"}})),
        "ConnectionRequest": closed(&["chain"], json!({"chain": chain, "usage": usage,
            "labels": labels, "lease_secs": lease})),
        "RenewRequest": closed(&[], json!({"lease_secs": lease})),
        "RefreshRequest": closed(&[], json!({"url": nullable_string()})),
        "DenyKey": deny_variants(&json!({}), &[]),
        "DenyRequest": deny_variants(&json!({"reason": reason, "expires": expires, "by": by}), &["reason"]),
        "DenyRule": deny_variants(
            &json!({"reason": string(), "expires": nullable_string(), "active": {"type": "boolean"},
                "set_by": string(), "set_at": {"type": "string", "format": "date-time"}}),
            &["reason", "expires", "active"],
        ),
        "DenyList": object(&["rules"], json!({"rules": {"type": "array", "items": reference("DenyRule")}})),
        "CertSummary": object(&["subject", "issuer", "serial", "sha256", "not_before", "not_after"],
            json!({"subject": string(), "issuer": string(), "serial": string(), "sha256": string(),
                   "not_before": string(), "not_after": string()})),
        "RevocationResult": object(&["serial", "source", "status", "this_update", "next_update",
                                     "reason", "subject"], json!({
            "serial": string(),
            "source": {"type": "string", "enum": ["crl", "ocsp", "none"]},
            "status": {"type": "string", "enum": ["good", "revoked", "unknown"]},
            "this_update": nullable_string(), "next_update": nullable_string(),
            "reason": nullable_string(), "subject": string(),
            "revoked_at": string(), "warning": string()})),
        "Verdict": object(&["verdict", "status", "reason", "detail", "chain", "revocation", "valid_until"], json!({
            "verdict": {"type": "string", "enum": ["accepted", "rejected"]},
            "status": {"type": "string", "enum": ["good", "revoked", "unknown", "invalid"]},
            "reason": {"type": "string", "enum": reasons},
            "detail": string(),
            "chain": {"type": "array", "items": reference("CertSummary")},
            "revocation": {"type": "array", "items": reference("RevocationResult")},
            "valid_until": nullable_string()})),
        "Registered": object(&["id", "verdict", "lease_expires_at"], json!({
            "id": string(), "verdict": reference("Verdict"), "lease_expires_at": nullable_string()})),
        "Refused": object(&["error", "detail", "verdict"], json!({
            "error": string(), "detail": string(), "verdict": reference("Verdict")})),
        "TeardownEvent": object(&["connection_id", "reason", "serial", "subject", "detail", "at", "labels"], json!({
            "connection_id": string(), "reason": teardown_reason, "serial": string(),
            "subject": string(), "detail": string(), "at": string(), "labels": labels_out,
            "node": node})),
        "DegradedEvent": object(&["connection_id", "serial", "subject", "detail", "at", "labels"], json!({
            "connection_id": string(), "serial": string(), "subject": string(),
            "detail": string(), "at": string(), "labels": labels_out, "node": node})),
        "LeaseExpiredEvent": object(&["connection_id", "serial", "subject", "at", "labels"], json!({
            "connection_id": string(), "serial": string(), "subject": string(),
            "at": string(), "labels": labels_out, "node": node})),
        "ResetEvent": object(&["detail"], json!({"detail": string()})),
        "ServerSentEvent": object(&["event", "data"], json!({
            "event": {"type": "string", "enum": event_names},
            "data": {"type": "string", "description": "JSON: the event's schema by its name"},
            "id": {"type": "string", "description": "resume point for Last-Event-ID; reset has none"},
            "retry": {"type": "integer"}})),
        "Connection": object(&["id", "state", "usage", "labels", "registered_at", "lease_secs",
                               "lease_expires_at", "valid_until", "subject", "serial"], json!({
            "id": string(),
            "state": {"type": "string", "enum": ["active", "torn_down"]},
            "usage": usage, "labels": labels_out, "registered_at": string(),
            "lease_secs": lease, "lease_expires_at": nullable_string(),
            "valid_until": nullable_string(), "subject": string(), "serial": string(),
            "teardown": reference("TeardownEvent")})),
        "ConnectionList": object(&["connections", "next", "total"], json!({
            "connections": {"type": "array", "items": reference("Connection")},
            "next": nullable_string(), "total": {"type": "integer"}})),
        "SourceState": object(&["url", "kind", "serial", "this_update", "next_update",
                                "last_fetch", "last_error", "next_attempt", "entries",
                                "crl_number"], json!({
            "url": string(), "kind": {"type": "string", "enum": ["crl", "ocsp"]},
            "serial": nullable_string(),
            "this_update": nullable_string(), "next_update": nullable_string(),
            "last_fetch": nullable_string(), "last_error": nullable_string(),
            "next_attempt": nullable_string(),
            "entries": {"type": "integer", "nullable": true},
            "crl_number": nullable_string()})),
        "SourceList": object(&["sources"], json!({"sources": {"type": "array", "items": reference("SourceState")}})),
        "RefreshResult": object(&["refreshed"], json!({"refreshed": {"type": "array", "items":
            object(&["url", "serial", "outcome", "error"], json!({"url": string(),
                "serial": nullable_string(),
                "outcome": {"type": "string", "enum": ["updated", "not_modified", "failed"]},
                "error": nullable_string()}))}})),
        "Health": object(&["status"], json!({"status": string()})),
        "Ready": object(&["ready", "anchors", "connections", "sources"], json!({
            "ready": {"type": "boolean"}, "anchors": {"type": "integer"},
            "connections": {"type": "integer"}, "sources": {"type": "integer"},
            "cluster": {"type": "object", "description": "Fleet mode: the connection to \
                NATS and the deny rules' catch-up"}})),
        "OpenApi": {"type": "object"},
    })
}
