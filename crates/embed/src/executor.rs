//! One embedding executor fed by every document in flight.
//!
//! Documents arrive with a handful of chunks each; embedding them one
//! document at a time leaves batches small and the model waiting between
//! documents. The executor takes the tokenized texts of every caller and
//! forms batches across documents by token budget (see [`next_batch`]),
//! letting documents take turns. A lone document is not held back: a batch
//! waits at most `deadline` for company. At most `capacity` callers are
//! admitted at once; the others block (and a worker stops taking
//! deliveries) while the model is saturated.
//!
//! Batches run on lanes: threads of their own, each with its own ONNX
//! Runtime session. For a worker, two single-threaded sessions side by side
//! keep both cores busy even when other work preempts one of them, where
//! one two-threaded session stalls at every operator until its slower
//! thread catches up. Search queries take one lane of their own (see
//! [`BatchingEmbedder::for_queries`]).

use crate::batch::next_batch;
use crate::onnx::record_embed_fields;
use crate::{
    BatchLimits, EmbedError, Embedder, ModelDir, ModelManifest, OnnxEmbedder, resolve_threads,
};
use docpipe_core::config::ModelConfig;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokenizers::Encoding;

/// Embeds with [`OnnxEmbedder`] lanes on threads of their own, batching
/// texts across concurrent callers: documents a worker prepares, or the
/// queries of concurrent searches.
pub struct BatchingEmbedder {
    model: Arc<OnnxEmbedder>,
    shared: Arc<Shared>,
}

/// One caller's vectors, and the model calls that made them.
#[derive(Debug)]
pub struct Embedded {
    /// The vectors, in the order of the texts.
    pub vectors: Vec<Vec<f32>>,
    /// Model tokens the texts had (with special tokens, truncated).
    pub tokens: usize,
    /// Model calls the texts were part of.
    pub batches: usize,
    /// Texts in the largest of those calls, the caller's and others'.
    pub largest_batch: usize,
}

impl BatchingEmbedder {
    /// Starts one lane per session in `lanes` (all of the same model). At
    /// most `capacity` callers are admitted at once; a batch waits at most
    /// `deadline` to fill up.
    pub fn start(
        lanes: Vec<OnnxEmbedder>,
        capacity: usize,
        deadline: Duration,
    ) -> Result<Self, EmbedError> {
        let lanes: Vec<Arc<OnnxEmbedder>> = lanes.into_iter().map(Arc::new).collect();
        let model = lanes
            .first()
            .cloned()
            .ok_or_else(|| EmbedError::Inference("the executor needs at least one lane".into()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
            deadline,
        });
        for (number, lane) in lanes.into_iter().enumerate() {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("docpipe-embed-{number}"))
                .spawn(move || shared.run_lane(&lane))
                .map_err(|error| {
                    EmbedError::Inference(format!("cannot start an embedding lane: {error}"))
                })?;
        }
        Ok(Self { model, shared })
    }

    /// The model in `model` with `config`'s session layout, batch limits and
    /// deadline: what a worker embeds documents with. At most `capacity`
    /// callers are admitted at once.
    pub fn for_model(
        model: &ModelDir,
        config: &ModelConfig,
        capacity: usize,
    ) -> Result<Self, EmbedError> {
        let layout = config.session_layout(resolve_threads(config.intra_threads));
        Self::with_layout(model, config, capacity, layout)
    }

    /// The model in `model` for search queries: `config`'s batch limits and
    /// deadline, and one session of `config.query_threads` threads,
    /// whatever the worker's layout. Queries arrive one at a time, so one
    /// lane gathers those arriving during a call into the next; two
    /// single-threaded lanes each took them one at a time. One thread
    /// spends the least CPU per query where one core keeps up (bench
    /// --serve: docs/performance.md, seventh and eighth).
    pub fn for_queries(model: &ModelDir, config: &ModelConfig) -> Result<Self, EmbedError> {
        let layout = (1, resolve_threads(config.query_threads));
        // Callers beyond capacity would wait for a place; the server in
        // front bounds how many searches are in flight.
        Self::with_layout(model, config, usize::MAX, layout)
    }

    /// `sessions` lanes of `threads` threads each.
    fn with_layout(
        model: &ModelDir,
        config: &ModelConfig,
        capacity: usize,
        (sessions, threads): (usize, usize),
    ) -> Result<Self, EmbedError> {
        let limits = BatchLimits::new(config.batch_size, config.batch_tokens);
        let lanes = (0..sessions)
            .map(|_| OnnxEmbedder::load(model, limits, threads))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(
            model = %model.manifest().name,
            sessions,
            threads_per_session = threads,
            batch_texts = limits.max_texts,
            batch_tokens = limits.max_tokens,
            "embedding executor started"
        );
        Self::start(
            lanes,
            capacity,
            Duration::from_millis(config.batch_deadline_ms),
        )
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &ModelManifest {
        self.model.manifest()
    }

    /// Embeds texts to be indexed: tokenizes them on the calling thread,
    /// then waits while the lanes embed them along with other callers'.
    pub fn embed(&self, texts: &[&str]) -> Result<Embedded, EmbedError> {
        if texts.is_empty() {
            return Ok(Embedded {
                vectors: Vec::new(),
                tokens: 0,
                batches: 0,
                largest_batch: 0,
            });
        }
        self.run(self.model.tokenize_documents(texts)?)
    }

    /// Waits while the lanes embed `encodings` along with other callers'.
    fn run(&self, encodings: Vec<Encoding>) -> Result<Embedded, EmbedError> {
        let (reply, replied) = sync_channel(1);
        self.shared.admit(Job { encodings, reply });
        replied
            .recv()
            .map_err(|_| EmbedError::Inference("the embedding executor stopped".into()))?
    }
}

impl Drop for BatchingEmbedder {
    fn drop(&mut self) {
        // Lanes finish what is pending, then exit.
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }
}

impl Embedder for BatchingEmbedder {
    fn dimension(&self) -> usize {
        self.model.dimension()
    }

    fn model_name(&self) -> &str {
        self.model.model_name()
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let embedded = self.embed(texts)?;
        record_embed_fields(embedded.tokens, embedded.batches, embedded.largest_batch);
        Ok(embedded.vectors)
    }

    fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError> {
        let mut embedded = self.run(vec![self.model.tokenize_query(query)?])?;
        Ok(embedded.vectors.remove(0))
    }
}

/// One caller's texts, tokenized.
struct Job {
    encodings: Vec<Encoding>,
    reply: SyncSender<Result<Embedded, EmbedError>>,
}

/// A pending text: which job and which of its texts.
struct Pending {
    job: usize,
    text: usize,
    length: usize,
    arrived: Instant,
}

/// A job in progress.
struct Progress {
    job: Job,
    vectors: Vec<Vec<f32>>,
    tokens: usize,
    left: usize,
    batches: usize,
    largest_batch: usize,
    failed: bool,
}

#[derive(Default)]
struct State {
    /// Texts not yet in a batch, oldest first.
    pending: Vec<Pending>,
    /// Jobs by slot; a finished job's slot is reused.
    jobs: Vec<Option<Progress>>,
    /// Jobs admitted and not finished.
    admitted: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when texts arrive (lanes wait on it).
    work: Condvar,
    /// Signalled when a job finishes (callers over capacity wait on it).
    room: Condvar,
    capacity: usize,
    deadline: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job once fewer than `capacity` are in progress.
    fn admit(&self, job: Job) {
        let mut state = self.lock();
        while state.admitted >= self.capacity {
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.admitted += 1;
        let slot = match state.jobs.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                state.jobs.push(None);
                state.jobs.len() - 1
            }
        };
        let arrived = Instant::now();
        for (text, encoding) in job.encodings.iter().enumerate() {
            state.pending.push(Pending {
                job: slot,
                text,
                length: encoding.len(),
                arrived,
            });
        }
        state.jobs[slot] = Some(Progress {
            vectors: vec![Vec::new(); job.encodings.len()],
            tokens: job.encodings.iter().map(Encoding::len).sum(),
            left: job.encodings.len(),
            batches: 0,
            largest_batch: 0,
            failed: false,
            job,
        });
        drop(state);
        self.work.notify_one();
    }

    fn run_lane(&self, model: &OnnxEmbedder) {
        let mut state = self.lock();
        loop {
            if state.pending.is_empty() {
                if state.closed {
                    return;
                }
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state = self.fill_until_deadline(state, model);
            let batch = state.take_batch(model);
            if !state.pending.is_empty() {
                // More than this lane can take: wake another.
                self.work.notify_one();
            }
            // Encodings are moved out for the call (the job keeps its slot).
            let encodings: Vec<Encoding> = batch
                .iter()
                .map(|text| std::mem::take(&mut state.job(text.job).job.encodings[text.text]))
                .collect();
            drop(state);
            // A panic in the model fails this batch's documents; the lane,
            // and every other document, carry on.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                model.run_batch(&encodings.iter().collect::<Vec<_>>())
            }))
            .unwrap_or_else(|_| Err(EmbedError::Inference("the model panicked".into())));
            state = self.lock();
            if state.settle(&batch, result) {
                self.room.notify_all();
            }
        }
    }

    /// Waits for more texts while the batch is not full and the oldest
    /// pending text has waited less than the deadline.
    fn fill_until_deadline<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        model: &OnnxEmbedder,
    ) -> MutexGuard<'a, State> {
        let limits = model.limits();
        loop {
            let Some(oldest) = state.pending.first().map(|text| text.arrived) else {
                return state;
            };
            let longest = state.pending.iter().map(|text| text.length).max();
            let full = state.pending.len() >= limits.max_texts
                || state.pending.len() * longest.unwrap_or(0) >= limits.max_tokens;
            let waited = oldest.elapsed();
            if full || waited >= self.deadline || state.closed {
                return state;
            }
            state = self
                .work
                .wait_timeout(state, self.deadline - waited)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl State {
    fn job(&mut self, slot: usize) -> &mut Progress {
        self.jobs[slot].as_mut().expect("the job is in progress")
    }

    /// Takes the next batch out of `pending`, counting it for its jobs.
    fn take_batch(&mut self, model: &OnnxEmbedder) -> Vec<Pending> {
        let lengths: Vec<usize> = self.pending.iter().map(|text| text.length).collect();
        let mut chosen = next_batch(&lengths, self.anchor(), model.limits());
        chosen.sort_unstable();
        let batch: Vec<Pending> = chosen
            .iter()
            .rev()
            .map(|&position| self.pending.remove(position))
            .collect();
        let mut jobs: Vec<usize> = batch.iter().map(|text| text.job).collect();
        jobs.sort_unstable();
        jobs.dedup();
        for slot in jobs {
            let progress = self.job(slot);
            progress.batches += 1;
            progress.largest_batch = progress.largest_batch.max(batch.len());
        }
        batch
    }

    /// The text the next batch is built around: the oldest text of the job
    /// that has been in the fewest batches. Jobs take turns, so a document
    /// of thousands of chunks does not hold back the small ones that arrive
    /// after it; texts of one job go oldest first.
    fn anchor(&self) -> usize {
        let served = |text: &Pending| {
            let progress = self.jobs[text.job].as_ref();
            progress.expect("the job is in progress").batches
        };
        let mut anchor = 0;
        for (position, text) in self.pending.iter().enumerate() {
            if served(text) < served(&self.pending[anchor]) {
                anchor = position;
            }
        }
        anchor
    }

    /// Hands a batch's vectors (or its error) to its jobs and replies to
    /// those now complete; returns whether any finished.
    fn settle(&mut self, batch: &[Pending], result: Result<Vec<Vec<f32>>, EmbedError>) -> bool {
        let mut finished = false;
        match result {
            Ok(vectors) => {
                for (text, vector) in batch.iter().zip(vectors) {
                    self.job(text.job).vectors[text.text] = vector;
                    finished |= self.count_done(text.job);
                }
            }
            Err(error) => {
                for text in batch {
                    let progress = self.job(text.job);
                    if !progress.failed {
                        progress.failed = true;
                        let _ = progress
                            .job
                            .reply
                            .send(Err(EmbedError::Inference(error.to_string())));
                    }
                    finished |= self.count_done(text.job);
                }
            }
        }
        finished
    }

    /// Counts one of the job's texts as done; replies and frees the slot
    /// when it was the last. Returns whether the job finished.
    fn count_done(&mut self, slot: usize) -> bool {
        let progress = self.job(slot);
        progress.left -= 1;
        if progress.left > 0 {
            return false;
        }
        let progress = self.jobs[slot].take().expect("the job is in progress");
        self.admitted -= 1;
        if !progress.failed {
            let _ = progress.job.reply.send(Ok(Embedded {
                vectors: progress.vectors,
                tokens: progress.tokens,
                batches: progress.batches,
                largest_batch: progress.largest_batch,
            }));
        }
        true
    }
}
