//! Which chunks a search may return.

use crate::metadata::MetadataFilter;
use crate::{DocumentId, TenantId};

/// The chunks a search may return: one tenant's, and only some of its
/// documents when the caller narrows it (by id, by metadata, or both). Every store applies the scope as a
/// filter inside the search, so a narrowed search still returns its full
/// `limit` where enough chunks match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchScope {
    tenant: TenantId,
    documents: Option<Vec<DocumentId>>,
    metadata: MetadataFilter,
}

impl SearchScope {
    /// Every chunk of `tenant`.
    pub fn tenant(tenant: TenantId) -> Self {
        Self {
            tenant,
            documents: None,
            metadata: MetadataFilter::default(),
        }
    }

    /// Only the chunks of `documents` (an empty list matches nothing).
    pub fn with_documents(mut self, documents: Vec<DocumentId>) -> Self {
        self.documents = Some(documents);
        self
    }

    /// Only the chunks of documents whose metadata passes `filter`.
    pub fn with_metadata(mut self, filter: MetadataFilter) -> Self {
        self.metadata = filter;
        self
    }

    /// The tenant searched.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    /// The documents searched, if narrowed.
    pub fn documents(&self) -> Option<&[DocumentId]> {
        self.documents.as_deref()
    }

    /// The filter on documents' metadata (empty: every document).
    pub fn metadata(&self) -> &MetadataFilter {
        &self.metadata
    }
}

impl From<&TenantId> for SearchScope {
    fn from(tenant: &TenantId) -> Self {
        Self::tenant(tenant.clone())
    }
}
