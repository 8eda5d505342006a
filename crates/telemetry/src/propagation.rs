//! W3C trace context (`traceparent`) across RabbitMQ: a publisher's span
//! becomes the parent of the worker's, and a retried delivery links to the
//! attempt before it. Without an OpenTelemetry layer (tracing export off
//! and human logs) these do nothing.

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

fn context_of(traceparent: &str) -> opentelemetry::Context {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// Makes the span described by `traceparent` the parent of `span`, which
/// must not have been entered yet. Malformed values are ignored (the span
/// starts a trace of its own), as W3C trace context requires.
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let _ = span.set_parent(context_of(traceparent));
    }
}

/// Links `span` to the span described by `traceparent` (a retried
/// delivery to its previous attempt).
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    let context = context_of(traceparent);
    span.add_link(context.span().span_context().clone());
}

/// The `traceparent` of `span`, for the messages it publishes; `None` when
/// spans carry no OpenTelemetry context.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}
