//! `/openapi.json`: an OpenAPI 3.0 document built from the same route table
//! as the router ([`ROUTES`]), so paths, methods, parameters, auth and
//! documented statuses cannot drift from what is served. The component
//! schemas are written here beside it; the tests check real responses
//! against them.

use serde_json::{json, Map, Value};
use vigil_core::ReasonCode;

use super::api::{Body, ROUTES};
use super::connections::MAX_LEASE_SECS;

/// The document.
pub(crate) fn document() -> Value {
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
            json!({"name": p.name, "in": p.location, "required": false,
                   "description": p.description, "schema": {"type": p.schema}})
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
        if route.auth {
            op.insert("security".into(), json!([{"bearer": []}]));
        }
        let mut responses = Map::new();
        for r in route.responses {
            let mut resp = Map::new();
            resp.insert("description".into(), json!(r.description));
            let content = match r.body {
                Body::None => None,
                Body::Json(schema) => {
                    Some(json!({"application/json": {"schema": reference(schema)}}))
                }
                Body::Text => Some(json!({"text/plain": {"schema": {"type": "string"}}})),
                Body::EventStream => {
                    Some(json!({"text/event-stream": {"schema": {"type": "string"}}}))
                }
            };
            if let Some(content) = content {
                resp.insert("content".into(), content);
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
                {\"error\", \"detail\"}. Mutating endpoints need the bearer token when one \
                is configured (POST /v1/verify does not: it changes nothing). Event data on \
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

fn schemas() -> Value {
    let reasons: Vec<&str> = ReasonCode::all().map(ReasonCode::as_str).collect();
    let usage = json!({"type": "string", "enum": ["client", "server", "any"], "default": "any"});
    let chain = json!({"type": "array", "minItems": 1, "items": string(),
        "description": "Leaf first; each element a PEM block (or bundle) or one base64 DER certificate"});
    let labels = json!({"type": "object", "additionalProperties": string()});
    let lease =
        json!({"type": "integer", "minimum": 1, "maximum": MAX_LEASE_SECS, "nullable": true});
    let hex = json!({"type": "string", "pattern": "^[0-9a-fA-F:]+$"});
    let deny_key = json!({"oneOf": [
        object(&["issuer_serial"], json!({"issuer_serial":
            object(&["issuer", "serial"], json!({"issuer": string(), "serial": hex}))})),
        object(&["cert_sha256"], json!({"cert_sha256": hex})),
        object(&["spki_sha256"], json!({"spki_sha256": hex})),
    ]});
    let teardown_reason = json!({"type": "string",
        "enum": vigil_core::TeardownReason::ALL.map(vigil_core::TeardownReason::as_str)});
    json!({
        "Error": object(&["error", "detail"], json!({"error": string(), "detail": string()})),
        "VerifyRequest": object(&["chain"], json!({"chain": chain, "usage": usage,
            "name": {"type": "string", "nullable": true, "description": "Expected DNS name or IP"}})),
        "ConnectionRequest": object(&["chain"], json!({"chain": chain, "usage": usage,
            "labels": labels, "lease_secs": lease})),
        "RenewRequest": object(&[], json!({"lease_secs": lease})),
        "RefreshRequest": object(&[], json!({"url": string()})),
        "DenyKey": deny_key,
        "DenyRequest": {"allOf": [reference("DenyKey"), object(&["reason"], json!({
            "reason": string(),
            "expires": {"type": "string", "format": "date-time", "nullable": true}}))]},
        "DenyRule": {"allOf": [reference("DenyKey"), object(&["reason", "expires", "active"], json!({
            "reason": string(), "expires": nullable_string(), "active": {"type": "boolean"}}))]},
        "DenyList": object(&["rules"], json!({"rules": {"type": "array", "items": reference("DenyRule")}})),
        "CertSummary": object(&["subject", "issuer", "serial", "sha256", "not_before", "not_after"],
            json!({"subject": string(), "issuer": string(), "serial": string(), "sha256": string(),
                   "not_before": string(), "not_after": string()})),
        "RevocationResult": object(&["serial", "subject", "source", "status"], json!({
            "serial": string(), "subject": string(),
            "source": {"type": "string", "enum": ["crl", "ocsp", "none"]},
            "status": {"type": "string", "enum": ["good", "revoked", "unknown"]},
            "this_update": string(), "next_update": string(), "reason": string(),
            "revoked_at": string()})),
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
            "subject": string(), "detail": string(), "at": string(), "labels": labels})),
        "DegradedEvent": object(&["connection_id", "serial", "subject", "detail", "at"], json!({
            "connection_id": string(), "serial": string(), "subject": string(),
            "detail": string(), "at": string()})),
        "LeaseExpiredEvent": object(&["connection_id", "labels", "at"], json!({
            "connection_id": string(), "labels": labels, "at": string()})),
        "ResetEvent": object(&["detail"], json!({"detail": string()})),
        "Connection": object(&["id", "state", "usage", "labels", "registered_at", "lease_secs",
                               "lease_expires_at", "valid_until", "subject", "serial"], json!({
            "id": string(),
            "state": {"type": "string", "enum": ["active", "torn_down"]},
            "usage": usage, "labels": labels, "registered_at": string(),
            "lease_secs": lease, "lease_expires_at": nullable_string(),
            "valid_until": nullable_string(), "subject": string(), "serial": string(),
            "teardown": reference("TeardownEvent")})),
        "ConnectionList": object(&["connections", "next", "total"], json!({
            "connections": {"type": "array", "items": reference("Connection")},
            "next": nullable_string(), "total": {"type": "integer"}})),
        "SourceState": object(&["url", "kind"], json!({
            "url": string(), "kind": {"type": "string", "enum": ["crl", "ocsp"]},
            "this_update": nullable_string(), "next_update": nullable_string(),
            "last_fetch": nullable_string(), "last_error": nullable_string(),
            "next_attempt": nullable_string(),
            "entries": {"type": "integer", "nullable": true},
            "crl_number": nullable_string()})),
        "SourceList": object(&["sources"], json!({"sources": {"type": "array", "items": reference("SourceState")}})),
        "RefreshResult": object(&["refreshed"], json!({"refreshed": {"type": "array", "items":
            object(&["url", "outcome", "error"], json!({"url": string(),
                "outcome": {"type": "string", "enum": ["updated", "not_modified", "failed"]},
                "error": nullable_string()}))}})),
        "Health": object(&["status"], json!({"status": string()})),
        "Ready": object(&["ready", "anchors", "connections", "sources"], json!({
            "ready": {"type": "boolean"}, "anchors": {"type": "integer"},
            "connections": {"type": "integer"}, "sources": {"type": "integer"}})),
        "OpenApi": {"type": "object"},
    })
}
