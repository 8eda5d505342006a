//! Core types shared by every docpipe stage: identifiers, the ingest message
//! contract, documents and chunks, events, pipeline configuration and error
//! classes.
//!
//! Data flows one way through docpipe: an [`IngestRequest`] becomes a
//! [`ParsedDocument`], then [`Chunk`]s, then [`IndexedChunk`]s written to
//! the stores, then a [`DocumentEvent`].

#![warn(missing_docs)]

pub mod config;
pub mod document;
pub mod error;
pub mod event;
pub mod fusion;
pub mod ids;
pub mod message;
pub mod metadata;
pub mod scope;
pub mod store;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod underway;

pub use config::PipelineConfig;
pub use document::{Block, Chunk, IndexedChunk, ParsedDocument};
pub use error::{Classify, ErrorClass};
pub use event::{DocumentEvent, InFlightDocument, WorkerStatus};
pub use fusion::{Fusion, SearchConfig};
pub use ids::{ChunkId, ContentHash, DocumentId, PipelineVersion, TenantId};
pub use message::{DocumentFormat, IngestRequest, ReindexRequest, RemoveRequest, Request, Source};
pub use metadata::{Metadata, MetadataFilter};
pub use scope::SearchScope;
pub use store::{
    ChunkHit, ChunkStore, ChunkText, RankedChunk, StoreError, StoreStats, StoredChunk,
    StoredDocument,
};
pub use underway::{DocumentsUnderway, Underway};
