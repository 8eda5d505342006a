//! AMQP headers docpipe reads and writes: trace context, retry state and
//! dead-letter reasons.

use docpipe_core::event::now_unix_ms;
use docpipe_core::{Classify, DocumentId, TenantId};
use lapin::types::{AMQPValue, FieldArray, FieldTable};

/// The W3C trace-context header publishers may set; docpipe carries it onto
/// retries, dead letters and events.
pub const TRACEPARENT: &str = "traceparent";
const ATTEMPTS: &str = "x-docpipe-attempts";
const FIRST_FAILED: &str = "x-docpipe-first-failed-at-ms";
const LAST_FAILED: &str = "x-docpipe-failed-at-ms";
const ERRORS: &str = "x-docpipe-errors";
const ERROR_CLASS: &str = "x-docpipe-error-class";
const ERROR_CODE: &str = "x-docpipe-error-code";
const REASON: &str = "x-docpipe-reason";
const DOCUMENT_ID: &str = "x-docpipe-document-id";
const TENANT: &str = "x-docpipe-tenant";

/// How often a message has failed before, carried in its headers from
/// delivery to delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureHistory {
    /// Failed deliveries so far.
    pub attempts: u32,
    /// When the first delivery failed, in milliseconds since the Unix epoch.
    pub first_failed_at_unix_ms: Option<u64>,
    /// One line per failed delivery: `code: reason`.
    pub errors: Vec<String>,
}

impl FailureHistory {
    /// The history read from a message's headers (empty for a first delivery).
    pub(crate) fn from_headers(headers: Option<&FieldTable>) -> Self {
        Self {
            attempts: get_string(headers, ATTEMPTS)
                .and_then(|attempts| attempts.parse().ok())
                .unwrap_or_default(),
            first_failed_at_unix_ms: get_string(headers, FIRST_FAILED)
                .and_then(|ms| ms.parse().ok()),
            errors: get_strings(headers, ERRORS),
        }
    }

    /// The history after one more failure with `error`.
    pub fn after(&self, error: &(impl Classify + std::fmt::Display)) -> Self {
        let mut errors = self.errors.clone();
        errors.push(format!("{}: {error}", error.code()));
        Self {
            attempts: self.attempts + 1,
            first_failed_at_unix_ms: Some(self.first_failed_at_unix_ms.unwrap_or_else(now_unix_ms)),
            errors,
        }
    }

    pub(crate) fn write(&self, headers: &mut FieldTable) {
        put(headers, ATTEMPTS, &self.attempts.to_string());
        if let Some(first) = self.first_failed_at_unix_ms {
            put(headers, FIRST_FAILED, &first.to_string());
        }
        let errors: Vec<AMQPValue> = self
            .errors
            .iter()
            .map(|error| AMQPValue::LongString(error.as_str().into()))
            .collect();
        headers.insert(
            ERRORS.into(),
            AMQPValue::FieldArray(FieldArray::from(errors)),
        );
    }
}

/// A message that cannot be processed, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Identifies the dead letter for `docpipe dlq show|replay`.
    pub id: String,
    /// The original message body, byte for byte.
    pub body: Vec<u8>,
    /// `transient` or `permanent`.
    pub error_class: String,
    /// A stable failure code, e.g. `corrupt_pdf`.
    pub error_code: String,
    /// A human-readable reason.
    pub reason: String,
    /// The document, if the message named one.
    pub document_id: Option<DocumentId>,
    /// The tenant, if the message named one.
    pub tenant: Option<TenantId>,
    /// The publisher's trace context, if any.
    pub traceparent: Option<String>,
    /// Deliveries that failed, the last included, and why.
    pub history: FailureHistory,
    /// When the last delivery failed, in milliseconds since the Unix epoch.
    pub failed_at_unix_ms: u64,
}

impl DeadLetter {
    /// A dead letter for `body`, whose last delivery failed with `error`
    /// after the failures in `history` (which must include this one).
    pub fn new(
        body: &[u8],
        error: &(impl Classify + std::fmt::Display),
        history: FailureHistory,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            body: body.to_vec(),
            error_class: error.class().as_str().to_owned(),
            error_code: error.code().to_owned(),
            reason: error.to_string(),
            document_id: None,
            tenant: None,
            traceparent: None,
            history,
            failed_at_unix_ms: now_unix_ms(),
        }
    }

    /// What lists of dead letters show: everything but the body, the
    /// trace context and the failure history.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "error_class": self.error_class,
            "error_code": self.error_code,
            "reason": self.reason,
            "document_id": self.document_id,
            "tenant": self.tenant,
            "attempts": self.history.attempts,
            "failed_at_unix_ms": self.failed_at_unix_ms,
        })
    }

    /// The summary with the failure history, the first failure's time, the
    /// `traceparent` and the original body: all an operator needs to decide
    /// whether to replay it.
    pub fn detail(&self) -> serde_json::Value {
        let mut detail = self.summary();
        detail["history"] = serde_json::json!(self.history.errors);
        detail["first_failed_at_unix_ms"] = serde_json::json!(self.history.first_failed_at_unix_ms);
        detail["traceparent"] = serde_json::json!(self.traceparent);
        detail["body"] = serde_json::json!(String::from_utf8_lossy(&self.body));
        detail
    }

    /// Reads a dead letter back from a delivery of the dead-letter queue.
    pub fn from_delivery(delivery: &lapin::message::Delivery) -> Self {
        let properties = &delivery.properties;
        let headers = properties.headers().as_ref();
        let text = |key| get_string(headers, key);
        Self {
            id: properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            body: delivery.data.clone(),
            error_class: text(ERROR_CLASS).unwrap_or_default(),
            error_code: text(ERROR_CODE).unwrap_or_default(),
            reason: text(REASON).unwrap_or_default(),
            document_id: text(DOCUMENT_ID).and_then(|id| DocumentId::new(id).ok()),
            tenant: text(TENANT).and_then(|tenant| TenantId::new(tenant).ok()),
            traceparent: text(TRACEPARENT),
            history: FailureHistory::from_headers(headers),
            failed_at_unix_ms: text(LAST_FAILED)
                .and_then(|ms| ms.parse().ok())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn headers(&self) -> FieldTable {
        let mut headers = FieldTable::default();
        put(&mut headers, ERROR_CLASS, &self.error_class);
        put(&mut headers, ERROR_CODE, &self.error_code);
        put(&mut headers, REASON, &self.reason);
        put(
            &mut headers,
            LAST_FAILED,
            &self.failed_at_unix_ms.to_string(),
        );
        self.history.write(&mut headers);
        put_optional(
            &mut headers,
            DOCUMENT_ID,
            self.document_id.as_ref().map(DocumentId::as_str),
        );
        put_optional(
            &mut headers,
            TENANT,
            self.tenant.as_ref().map(TenantId::as_str),
        );
        put_optional(&mut headers, TRACEPARENT, self.traceparent.as_deref());
        headers
    }
}

fn put(headers: &mut FieldTable, key: &str, value: &str) {
    headers.insert(key.into(), AMQPValue::LongString(value.into()));
}

pub(crate) fn put_optional(headers: &mut FieldTable, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        put(headers, key, value);
    }
}

/// A string header's value, whichever AMQP string type the publisher used.
pub(crate) fn get_string(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    as_string(headers?.inner().get(key)?)
}

fn get_strings(headers: Option<&FieldTable>, key: &str) -> Vec<String> {
    match headers.and_then(|headers| headers.inner().get(key)) {
        Some(AMQPValue::FieldArray(values)) => {
            values.as_slice().iter().filter_map(as_string).collect()
        }
        _ => Vec::new(),
    }
}

fn as_string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("milvus is down")]
    struct Down;

    impl Classify for Down {
        fn class(&self) -> docpipe_core::ErrorClass {
            docpipe_core::ErrorClass::Transient
        }
        fn code(&self) -> &'static str {
            "store_unavailable"
        }
    }

    #[test]
    fn failure_history_round_trips_through_headers() {
        let twice = FailureHistory::default().after(&Down).after(&Down);
        let mut headers = FieldTable::default();
        twice.write(&mut headers);
        let read = FailureHistory::from_headers(Some(&headers));
        assert_eq!(read, twice);
        assert_eq!(read.attempts, 2);
        assert_eq!(read.errors, ["store_unavailable: milvus is down"; 2]);
        assert!(read.first_failed_at_unix_ms.is_some());
    }
}
