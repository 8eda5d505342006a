//! Events published to the `docpipe.events` exchange after each document.

use crate::error::ErrorClass;
use crate::ids::{DocumentId, TenantId};
use serde::{Deserialize, Serialize};

/// What happened to a document; the routing key is [`DocumentEvent::routing_key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum DocumentEvent {
    /// The document's chunks are durably in both stores.
    #[serde(rename = "document.indexed")]
    Indexed {
        /// The document.
        document_id: DocumentId,
        /// Its tenant.
        tenant: TenantId,
        /// How many chunks it now has.
        chunks: u32,
        /// The pipeline version that indexed it.
        pipeline_version: String,
        /// Milliseconds since the Unix epoch.
        at_unix_ms: u64,
    },
    /// The document was already indexed with the same content and pipeline
    /// version (a redelivery or re-publication): nothing was re-embedded.
    #[serde(rename = "document.unchanged")]
    Unchanged {
        /// The document.
        document_id: DocumentId,
        /// Its tenant.
        tenant: TenantId,
        /// How many chunks it has.
        chunks: u32,
        /// The pipeline version that indexed it.
        pipeline_version: String,
        /// Milliseconds since the Unix epoch.
        at_unix_ms: u64,
    },
    /// A newer version of the document (a larger `document_version`) was
    /// already indexed, so this one was not: the stores keep the newer one.
    #[serde(rename = "document.superseded")]
    Superseded {
        /// The document.
        document_id: DocumentId,
        /// Its tenant.
        tenant: TenantId,
        /// The version this request carried.
        document_version: u64,
        /// The version the stores hold.
        newer_version: u64,
        /// Milliseconds since the Unix epoch.
        at_unix_ms: u64,
    },
    /// The document was removed from every generation of the index.
    #[serde(rename = "document.removed")]
    Removed {
        /// The document.
        document_id: DocumentId,
        /// Its tenant.
        tenant: TenantId,
        /// How many chunks it had.
        chunks: u32,
        /// Milliseconds since the Unix epoch.
        at_unix_ms: u64,
    },
    /// The document could not be indexed and was dead-lettered.
    #[serde(rename = "document.failed")]
    Failed {
        /// The document, when the message was readable enough to name it.
        document_id: Option<DocumentId>,
        /// Its tenant, likewise.
        tenant: Option<TenantId>,
        /// Transient or permanent.
        error_class: ErrorClass,
        /// Stable failure code, e.g. `corrupt_pdf`.
        error_code: String,
        /// Human-readable reason.
        reason: String,
        /// Milliseconds since the Unix epoch.
        at_unix_ms: u64,
    },
}

impl DocumentEvent {
    /// The binding pattern that matches every document event's routing key.
    pub const ROUTING_PATTERN: &str = "document.*";

    /// The routing key the event is published with.
    pub fn routing_key(&self) -> &'static str {
        match self {
            Self::Indexed { .. } => "document.indexed",
            Self::Unchanged { .. } => "document.unchanged",
            Self::Superseded { .. } => "document.superseded",
            Self::Removed { .. } => "document.removed",
            Self::Failed { .. } => "document.failed",
        }
    }

    /// The tenant and document the event is about, when known (a message
    /// too malformed to name them still yields a `document.failed`).
    pub fn subject(&self) -> (Option<&TenantId>, Option<&DocumentId>) {
        match self {
            Self::Indexed {
                tenant,
                document_id,
                ..
            }
            | Self::Unchanged {
                tenant,
                document_id,
                ..
            }
            | Self::Superseded {
                tenant,
                document_id,
                ..
            }
            | Self::Removed {
                tenant,
                document_id,
                ..
            } => (Some(tenant), Some(document_id)),
            Self::Failed {
                tenant,
                document_id,
                ..
            } => (tenant.as_ref(), document_id.as_ref()),
        }
    }
}

/// What a worker is handling now. Each worker publishes one every few
/// seconds to the events exchange with the routing key
/// [`WorkerStatus::ROUTING_KEY`] (not a document event: subscribers of
/// [`DocumentEvent::ROUTING_PATTERN`] never see it), so that operators see documents in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// The worker: its host name and process id.
    pub worker: String,
    /// The documents it is handling, oldest first.
    pub in_flight: Vec<InFlightDocument>,
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

impl WorkerStatus {
    /// The routing key worker statuses are published with.
    pub const ROUTING_KEY: &str = "worker.status";
}

/// A document a worker is handling: what its message names, which may be
/// malformed (it is still in flight until it is dead-lettered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlightDocument {
    /// The tenant the message names, if it names one.
    pub tenant: Option<String>,
    /// The document the message names, if it names one.
    pub document_id: Option<String>,
    /// When the worker took the delivery, in milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
}

/// Milliseconds since the Unix epoch, for event and dead-letter timestamps.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
