//! The JSON Schemas in `schemas/` are the message contract for publishers
//! in any language: they accept what docpipe accepts and publishes, and
//! refuse what it refuses (as far as a schema can tell: whether a file lies
//! under the allowed roots is for the worker to say). The integration
//! tests also check every event they receive against `event.schema.json`
//! (`tests/common`), and every request they publish through the harness
//! against `request.schema.json`.

mod common;

use docpipe_core::{
    DocumentEvent, DocumentFormat, DocumentId, ErrorClass, IngestRequest, PipelineVersion, Request,
    TenantId,
};
use serde_json::json;

fn ids() -> (TenantId, DocumentId) {
    (
        TenantId::new("acme").unwrap(),
        DocumentId::new("guides/rabbitmq operations é").unwrap(),
    )
}

/// Bodies docpipe itself publishes, and what upload services may add.
fn accepted() -> Vec<serde_json::Value> {
    let (tenant, document) = ids();
    let version = PipelineVersion::from_stored("default@3fa2b1c9d0e1".into());
    let encoded = [
        IngestRequest::for_file(tenant.clone(), document.clone(), "file:///srv/a.pdf".into())
            .encode(),
        IngestRequest::inline(tenant.clone(), document.clone(), b"<html><p>hi</p></html>").encode(),
        Request::remove(tenant.clone(), document.clone()).encode(),
        Request::reindex(tenant, document, version).encode(),
    ];
    let mut bodies: Vec<serde_json::Value> = encoded
        .iter()
        .map(|body| serde_json::from_slice(body).unwrap())
        .collect();
    bodies.push(json!({
        "schema_version": 1, "action": "index", "document_id": "r/2024", "tenant": "t.1",
        "source": {"type": "file", "uri": "file:///srv/docs/r.html"},
        "content_type": "text/html; charset=windows-1252",
        "metadata": {"uploaded_by": "alice", "tags": ["a"]},
        "document_version": 1_733_227_200_000u64
    }));
    bodies.push(json!({
        "schema_version": 1, "document_id": "web/report", "tenant": "t",
        "source": {"type": "https", "uri": "https://docs.example.org/2024/report.pdf?download=1"}
    }));
    bodies.push(json!({
        "schema_version": 1, "document_id": "uploads/report", "tenant": "t",
        "source": {"type": "s3", "uri": "s3://uploads/2024/report.pdf", "etag": "\"9b2cf535f27731c974343645a3985328\""}
    }));
    for extension in [
        "jpg", "docx", "pptx", "xlsx", "odt", "ods", "odp", "epub", "md", "txt", "rtf", "csv",
        "tsv",
    ] {
        let format = DocumentFormat::from_extension(extension).unwrap();
        bodies.push(json!({
            "schema_version": 1, "document_id": format!("uploads/{extension}"), "tenant": "t",
            "source": {"type": "file", "uri": format!("file:///srv/docs/a.{extension}")},
            "content_type": format.media_type()
        }));
    }
    bodies
}

/// Bodies the decoder refuses, each for a reason a schema can see.
fn refused() -> Vec<serde_json::Value> {
    let file = json!({"type": "file", "uri": "file:///srv/a.pdf"});
    vec![
        json!({"schema_version": 2, "document_id": "d", "tenant": "t", "source": file}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": file, "priority": 1}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "a b", "source": file}),
        json!({"schema_version": 1, "document_id": "say \"hi\"", "tenant": "t", "source": file}),
        json!({"schema_version": 1, "document_id": "", "tenant": "t", "source": file}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t"}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": {"type": "s3", "uri": "s3://bucket-only"}}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": {"type": "https", "uri": "http://example.org/a.pdf"}}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": {"type": "https", "uri": "https://user:pw@example.org/a.pdf"}}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": {"type": "file", "uri": "docs/a.pdf"}}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": {"type": "inline", "base64": "@@@"}}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": file, "content_type": "image/gif"}),
        json!({"schema_version": 1, "action": "purge", "document_id": "d", "tenant": "t"}),
        json!({"schema_version": 1, "action": "reindex", "document_id": "d", "tenant": "t"}),
        json!({"schema_version": 1, "action": "remove", "document_id": "d", "tenant": "t", "source": file}),
        json!({"schema_version": 1, "document_id": "d", "tenant": "t", "source": file, "document_version": -1}),
        json!(["not", "an", "object"]),
    ]
}

#[test]
fn the_request_schema_accepts_what_docpipe_accepts() {
    let schema = common::schema("request.schema.json");
    for body in accepted() {
        let decoded = Request::decode(body.to_string().as_bytes());
        assert!(decoded.is_ok(), "{body}: {decoded:?}");
        let errors: Vec<String> = schema
            .iter_errors(&body)
            .map(|error| error.to_string())
            .collect();
        assert!(errors.is_empty(), "{body}: {errors:?}");
    }
}

#[test]
fn the_request_schema_refuses_what_docpipe_refuses() {
    let schema = common::schema("request.schema.json");
    for body in refused() {
        assert!(
            Request::decode(body.to_string().as_bytes()).is_err(),
            "the decoder accepts {body}"
        );
        assert!(!schema.is_valid(&body), "the schema accepts {body}");
    }
}

#[test]
fn every_kind_of_event_fits_the_event_schema() {
    let (tenant, document) = ids();
    let events = [
        DocumentEvent::Indexed {
            document_id: document.clone(),
            tenant: tenant.clone(),
            chunks: 6,
            pipeline_version: "default@3fa2b1c9d0e1".into(),
            at_unix_ms: 1,
        },
        DocumentEvent::Unchanged {
            document_id: document.clone(),
            tenant: tenant.clone(),
            chunks: 6,
            pipeline_version: "int8@053d38694152".into(),
            at_unix_ms: 1,
        },
        DocumentEvent::Superseded {
            document_id: document.clone(),
            tenant: tenant.clone(),
            document_version: 1,
            newer_version: 2,
            at_unix_ms: 1,
        },
        DocumentEvent::Removed {
            document_id: document.clone(),
            tenant: tenant.clone(),
            chunks: 0,
            at_unix_ms: 1,
        },
        DocumentEvent::Failed {
            document_id: Some(document),
            tenant: Some(tenant),
            error_class: ErrorClass::Permanent,
            error_code: "corrupt_pdf".into(),
            reason: "the cross-reference table is broken".into(),
            at_unix_ms: 1,
        },
        DocumentEvent::Failed {
            document_id: None,
            tenant: None,
            error_class: ErrorClass::Permanent,
            error_code: "malformed_message".into(),
            reason: "not JSON".into(),
            at_unix_ms: 1,
        },
    ];
    for event in &events {
        common::assert_fits_event_schema(event);
    }
    let mut wrong = serde_json::to_value(&events[0]).unwrap();
    wrong["chunks"] = json!(-1);
    assert!(!common::schema("event.schema.json").is_valid(&wrong));
}
