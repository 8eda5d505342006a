//! BM25 search: a query's words against the body (and the context field
//! at a boost), within a [`SearchScope`].

use crate::{Inner, rejected, term_query, unavailable};
use docpipe_core::metadata::term as metadata_term;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkText, DocumentId, RankedChunk, SearchScope, StoreError, TenantId,
};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::sync::Arc;
use tantivy::query::{BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery, Weight};
use tantivy::schema::{Field, IndexRecordOption, TantivyDocument, Value};
use tantivy::{
    BitSet, COLLECT_BLOCK_BUFFER_LEN, DocAddress, DocSet, Score, Searcher, SegmentReader, Term,
};

impl Inner {
    pub(crate) fn search(
        &self,
        scope: &SearchScope,
        query: &str,
        context_boost: f32,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        let searcher = self.reader.fresh()?;
        let Some(query) = self.terms_query(query, context_boost)? else {
            return Ok(Vec::new());
        };
        let Some(filter) = self.scope_filter(scope) else {
            return Ok(Vec::new());
        };
        let admitting = filter
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .map_err(|error| unavailable(error.to_string()))?;
        let tenant_only = scope.documents().is_none() && scope.metadata().is_empty();
        let admitted = |segment: &SegmentReader| {
            let make = || admitted_documents(admitting.as_ref(), segment);
            if tenant_only {
                self.admitted.of_tenant(segment, scope.tenant_id(), make)
            } else {
                make().map(Arc::new)
            }
        };
        let top = best_in_scope(&searcher, &query, &admitted, limit.max(1))
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
    ) -> Result<Vec<RankedChunk>, StoreError> {
        top.into_iter()
            .map(|(score, address)| {
                let stored: TantivyDocument = searcher
                    .doc(address)
                    .map_err(|error| unavailable(error.to_string()))?;
                self.ranked(&stored, score)
            })
            .collect()
    }

    /// See [`Bm25Store::chunk_texts`](crate::Bm25Store::chunk_texts).
    pub(crate) fn chunk_texts(
        &self,
        tenant: &TenantId,
        chunks: &[ChunkId],
    ) -> Result<HashMap<ChunkId, ChunkText>, StoreError> {
        if chunks.is_empty() {
            return Ok(HashMap::new());
        }
        let any_chunk = chunks
            .iter()
            .map(|chunk| {
                (
                    Occur::Should,
                    term_query(self.fields.chunk_id, chunk.as_str()),
                )
            })
            .collect();
        let query = BooleanQuery::new(vec![
            (Occur::Must, term_query(self.fields.tenant, tenant.as_str())),
            (Occur::Must, Box::new(BooleanQuery::new(any_chunk))),
        ]);
        // The searcher as last loaded, with no check of its own: the search
        // that ranked these chunks has just loaded the last commit.
        Ok(self
            .every_match(&self.reader.searcher(), &query)?
            .iter()
            .map(|stored| {
                let chunk = ChunkId::from_stored(self.text_of(stored, self.fields.chunk_id));
                (chunk, self.shown(stored))
            })
            .collect())
    }

    /// A stored chunk with what a result shows of it.
    pub(crate) fn hit(&self, stored: &TantivyDocument, score: f32) -> Result<ChunkHit, StoreError> {
        Ok(ChunkHit::new(
            self.ranked(stored, score)?,
            self.shown(stored),
        ))
    }

    /// A stored chunk as a search ranks it.
    fn ranked(&self, stored: &TantivyDocument, score: f32) -> Result<RankedChunk, StoreError> {
        let fields = self.fields;
        let document_id = DocumentId::new(self.text_of(stored, fields.document_id))
            .map_err(|error| rejected(format!("stored document id is invalid: {error}")))?;
        Ok(RankedChunk {
            chunk_id: ChunkId::from_stored(self.text_of(stored, fields.chunk_id)),
            document_id,
            ordinal: self.u64_of(stored, fields.ordinal).unwrap_or_default() as u32,
            score,
        })
    }

    /// What a search result shows of a stored chunk.
    fn shown(&self, stored: &TantivyDocument) -> ChunkText {
        let fields = self.fields;
        ChunkText {
            page: self.u64_of(stored, fields.page).map(|page| page as u32),
            heading_path: fields.heading_path.map_or_else(Vec::new, |field| {
                stored
                    .get_all(field)
                    .filter_map(|value| value.as_str().map(str::to_owned))
                    .collect()
            }),
            text: self.text_of(stored, fields.text),
            ocr_confidence: fields
                .ocr_confidence
                .and_then(|field| stored.get_first(field))
                .and_then(|value| value.as_f64())
                .map(|confidence| confidence as f32),
        }
    }

    fn u64_of(&self, stored: &TantivyDocument, field: Field) -> Option<u64> {
        stored.get_first(field).and_then(|value| value.as_u64())
    }
}

/// The `limit` documents that `query` scores best among those the scope
/// admits (`admitted`: a segment's admitted documents), best first (of
/// equal scores, the lower address first), scored by `query` alone.
///
/// Not `TopDocs` over `query AND scope`: tantivy skips documents that
/// cannot make the top (block-max WAND) only for a plain union of terms,
/// so an intersection with the scope scored every document holding any
/// query word (a third of a search's CPU in `bench --serve`). Here the
/// union runs with skipping, and each candidate is looked up in the set of
/// documents the scope admits, made from its postings (or kept, see
/// [`AdmittedSets`](crate::admitted::AdmittedSets)).
fn best_in_scope(
    searcher: &Searcher,
    query: &dyn Query,
    admitted: &dyn Fn(&SegmentReader) -> tantivy::Result<Arc<BitSet>>,
    limit: usize,
) -> tantivy::Result<Vec<(Score, DocAddress)>> {
    let scoring = query.weight(EnableScoring::enabled_from_searcher(searcher))?;
    // The worst of the best so far on top.
    let mut best: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(limit + 1);
    for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
        let admitted = admitted(segment)?;
        let alive = segment.alive_bitset();
        // Only a score above the worst kept can enter once `limit` are kept.
        let mut threshold = worst_kept(&best, limit);
        scoring.for_each_pruning(threshold, segment, &mut |doc, score| {
            if admitted.contains(doc) && alive.is_none_or(|alive| alive.is_alive(doc)) {
                best.push(Reverse(Ranked {
                    score,
                    address: DocAddress::new(ordinal as u32, doc),
                }));
                if best.len() > limit {
                    best.pop();
                }
                threshold = worst_kept(&best, limit);
            }
            threshold
        })?;
    }
    Ok(best
        .into_sorted_vec()
        .into_iter()
        .map(|Reverse(ranked)| (ranked.score, ranked.address))
        .collect())
}

/// The lowest score in `best` once it holds `limit` documents.
fn worst_kept(best: &BinaryHeap<Reverse<Ranked>>, limit: usize) -> Score {
    match best.peek() {
        Some(Reverse(worst)) if best.len() >= limit => worst.score,
        _ => Score::MIN,
    }
}

/// The documents of `segment` that `admitting` matches, deleted or not.
fn admitted_documents(admitting: &dyn Weight, segment: &SegmentReader) -> tantivy::Result<BitSet> {
    let mut admitted = BitSet::with_max_value(segment.max_doc());
    let mut documents = admitting.scorer(segment, 1.0)?;
    let mut buffer = [0; COLLECT_BLOCK_BUFFER_LEN];
    loop {
        let filled = documents.fill_buffer(&mut buffer);
        for &doc in &buffer[..filled] {
            admitted.insert(doc);
        }
        if filled < COLLECT_BLOCK_BUFFER_LEN {
            return Ok(admitted);
        }
    }
}

/// A scored document; greater is better: a higher score, then a lower
/// address.
#[derive(PartialEq)]
struct Ranked {
    score: Score,
    address: DocAddress,
}

impl Eq for Ranked {}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.address.cmp(&self.address))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::query::ConstScoreQuery;
    use tantivy::schema::{STRING, Schema, TEXT};
    use tantivy::{Index, IndexWriter, doc};

    #[test]
    fn the_best_in_scope_are_the_best_of_the_query_and_the_scope_together() {
        let mut schema = Schema::builder();
        let tenant = schema.add_text_field("tenant", STRING);
        let body = schema.add_text_field("body", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let words = ["tide", "moon", "harbour", "sail", "rope", "gull", "wave"];
        // Several segments, two tenants, repeated texts (equal scores) and
        // deleted documents.
        for segment in 0..3 {
            for number in 0..200usize {
                let text: Vec<&str> = (0..1 + number % 5)
                    .map(|word| words[(number * 7 + word * 3 + segment) % words.len()])
                    .collect();
                let owner = if number % 3 == 0 { "b" } else { "a" };
                writer
                    .add_document(doc!(tenant => owner, body => text.join(" ")))
                    .unwrap();
            }
            writer.commit().unwrap();
        }
        writer.delete_term(Term::from_field_text(body, "gull"));
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() > 1);

        let term = |field: Field, word: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, word),
                IndexRecordOption::WithFreqs,
            ))
        };
        for (query_words, limit) in [
            (&["tide"][..], 5),
            (&["moon", "sail"][..], 17),
            (&["rope", "wave", "tide"][..], 400),
        ] {
            let query = BooleanQuery::new(
                query_words
                    .iter()
                    .map(|word| (Occur::Should, term(body, word)))
                    .collect(),
            );
            let scope = BooleanQuery::new(vec![(Occur::Must, term(tenant, "a"))]);
            let together = BooleanQuery::new(vec![
                (Occur::Must, Box::new(query.clone()) as Box<dyn Query>),
                (
                    Occur::Must,
                    Box::new(ConstScoreQuery::new(Box::new(scope.clone()), 0.0)),
                ),
            ]);
            let expected = searcher
                .search(&together, &TopDocs::with_limit(limit).order_by_score())
                .unwrap();
            let admitting = scope
                .weight(EnableScoring::disabled_from_searcher(&searcher))
                .unwrap();
            let admitted = |segment: &SegmentReader| {
                admitted_documents(admitting.as_ref(), segment).map(Arc::new)
            };
            let found = best_in_scope(&searcher, &query, &admitted, limit).unwrap();
            assert!(!found.is_empty());
            assert_eq!(found, expected, "{query_words:?}, {limit} hits");
        }
    }
}
