//! BM25 search: a query's words against the body (and the context field
//! at a boost), within a [`SearchScope`].

use crate::{Inner, rejected, term_query, unavailable};
use docpipe_core::metadata::term as metadata_term;
use docpipe_core::{ChunkHit, SearchScope, StoreError};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, TantivyDocument};
use tantivy::{Searcher, Term};

impl Inner {
    pub(crate) fn search(
        &self,
        scope: &SearchScope,
        query: &str,
        context_boost: f32,
        limit: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.reader
            .reload()
            .map_err(|error| unavailable(error.to_string()))?;
        let searcher = self.reader.searcher();
        let Some(query) = self.terms_query(query, context_boost)? else {
            return Ok(Vec::new());
        };
        // The scope must match but must not shift BM25 scores.
        let Some(scope) = self.scope_filter(scope) else {
            return Ok(Vec::new());
        };
        let scoped = BooleanQuery::new(vec![
            (Occur::Must, Box::new(query) as Box<dyn Query>),
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(scope), 0.0)),
            ),
        ]);
        let top = searcher
            .search(&scoped, &TopDocs::with_limit(limit.max(1)).order_by_score())
            .map_err(|error| unavailable(error.to_string()))?;
        self.hits(&searcher, top)
    }

    /// The query's words as BM25 terms, OR-ed: it goes through the index's
    /// own analyzer (tokenizer, lower case, stemmer) and nothing in it is
    /// query syntax, so "distribution-specific (Debian)" finds what
    /// "distribution specific Debian" does, and a stray quote or colon is
    /// just punctuation. With a `context_boost`, the same words in the
    /// title and heading path add their own BM25 score, times the boost.
    /// `None` if no word is left.
    fn terms_query(
        &self,
        query: &str,
        context_boost: f32,
    ) -> Result<Option<BooleanQuery>, StoreError> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.body)
            .map_err(|error| rejected(format!("the body field has no analyzer: {error}")))?;
        let mut stream = analyzer.token_stream(query);
        let mut words: Vec<String> = Vec::new();
        while let Some(token) = stream.next() {
            if !words.contains(&token.text) {
                words.push(token.text.clone());
            }
        }
        if words.is_empty() {
            return Ok(None);
        }
        let term = |field: Field, word: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, word),
                IndexRecordOption::WithFreqs,
            ))
        };
        // Documents matching more (and rarer) terms score higher, as BM25 intends.
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|word| (Occur::Should, term(self.fields.body, word)))
            .collect();
        if let Some(context) = self.fields.context.filter(|_| context_boost > 0.0) {
            clauses.extend(words.iter().map(|word| {
                let boosted: Box<dyn Query> =
                    Box::new(BoostQuery::new(term(context, word), context_boost));
                (Occur::Should, boosted)
            }));
        }
        Ok(Some(BooleanQuery::new(clauses)))
    }

    /// The documents `scope` admits, as a query; `None` if it admits none.
    fn scope_filter(&self, scope: &SearchScope) -> Option<BooleanQuery> {
        let mut clauses = vec![(
            Occur::Must,
            term_query(self.fields.tenant, scope.tenant_id().as_str()),
        )];
        if let Some(documents) = scope.documents() {
            if documents.is_empty() {
                return None;
            }
            let any_document = documents
                .iter()
                .map(|document| {
                    (
                        Occur::Should,
                        term_query(self.fields.document_id, document.as_str()),
                    )
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any_document))));
        }
        if !scope.metadata().is_empty() {
            // An index that predates metadata holds none to match.
            let field = self.fields.metadata_terms?;
            if scope.metadata().is_unsatisfiable() {
                return None;
            }
            for (key, accepted) in scope.metadata().conditions() {
                let any_value = accepted
                    .iter()
                    .map(|value| (Occur::Should, term_query(field, &metadata_term(key, value))))
                    .collect();
                clauses.push((Occur::Must, Box::new(BooleanQuery::new(any_value))));
            }
        }
        Some(BooleanQuery::new(clauses))
    }

    /// The chunks at `top`'s addresses, with their scores.
    fn hits(
        &self,
        searcher: &Searcher,
        top: Vec<(f32, tantivy::DocAddress)>,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        top.into_iter()
            .map(|(score, address)| {
                let stored: TantivyDocument = searcher
                    .doc(address)
                    .map_err(|error| unavailable(error.to_string()))?;
                self.hit(&stored, score)
            })
            .collect()
    }
}
